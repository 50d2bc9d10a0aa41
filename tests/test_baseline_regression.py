"""The regression gate on real runs written through the collector into a private Redis: verdicts
that hold between runs, the within-run interval as information, and the run's own statistics."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from baseline.comparator import Comparison, RunSide, compare
from baseline.gate import between_runs
from baseline.job import history_of
from baseline.regression import Verdict, point_statistics, within_run_intervals
from baseline.sides import run_side
from baseline.synthetic import SyntheticProfile, write_run
from perfsuite.collector import CollectorReader
from perfsuite.config import BaselineConfig
from perfsuite.history import RunHistory
from perfsuite.intervals import IntervalSamples

STATISTICS = ("avg", "p50", "p95", "p99", "success_rate")
LOWER_IS_BETTER = {"avg": True, "p50": True, "p95": True, "p99": True, "success_rate": False}
STEADY = SyntheticProfile(seconds=60, rps=200, median_ms=20.0, sigma=0.5, drift=0.15)
SHORT = SyntheticProfile(seconds=20, rps=100, median_ms=20.0, sigma=0.5, drift=0.1, run_drift=0.08)
"""A short run whose whole level differs from run to run by ~8% (machine load): what two runs of
the same build differ by, and what no interval inside one run shows."""
START_S = 1_767_225_600


def _samples(
    redis_url: str, run_id: str, profile: SyntheticProfile, seed: int, tmp_path: Path
) -> IntervalSamples:
    write_run(redis_url, run_id, profile, seed=seed, spill_dir=tmp_path / "spill")
    return IntervalSamples.from_run(CollectorReader(redis_url).load(run_id))


def _store_runs(
    redis_url: str, tmp_path: Path, profiles: list[SyntheticProfile], first_seed: int = 0
) -> tuple[RunHistory, list[str]]:
    """Runs one minute apart, oldest first, each with a graded result stored as `perfsuite run` does."""
    history = RunHistory(redis_url, "perfsuite")
    ids = []
    for i, profile in enumerate(profiles):
        run_id = f"20260101T{i // 60:02d}{i % 60:02d}00Z-{first_seed + i:06d}"
        write_run(
            redis_url,
            run_id,
            profile,
            seed=first_seed + i,
            start_s=START_S + 60 * i,
            spill_dir=tmp_path / "spill",
        )
        history.store(history.result(run_id))
        ids.append(run_id)
    return history, ids


DEFAULTS = BaselineConfig()


def _compare(
    history: RunHistory, baseline: list[str], current: list[str], settings: BaselineConfig = DEFAULTS
) -> Comparison:
    base: list[RunSide] = [run_side(history, run_id) for run_id in baseline]
    now: list[RunSide] = [run_side(history, run_id) for run_id in current]
    return compare(now, settings, base, history=history_of(history, base, now, settings))


def _verdicts(comparison: Comparison) -> dict[str, Verdict]:
    return {row.spec.key: row.difference.verdict for row in comparison.rows if row.difference is not None}


def test_runs_of_the_same_build_with_history_are_never_flagged(redis_url: str, tmp_path: Path) -> None:
    """Twelve runs of one build whose level wanders ~8% from run to run: each run compared with the
    one before it, joined by the earlier ones, shows no regression on any statistic, although the
    within-run interval alone (the gate before issue 10) would have called one of those pairs a
    regression: the issue's false alarm."""
    history, ids = _store_runs(redis_url, tmp_path, [SHORT] * 12)
    within_alarm = False
    for k in range(3, len(ids)):
        comparison = _compare(history, [ids[k - 1]], [ids[k]])
        assert not comparison.regressions, [row.difference.reason for row in comparison.regressions]  # type: ignore[union-attr]
        assert comparison.grade.exit_code == 0
        p95 = next(row.difference for row in comparison.rows if row.spec.key == "webhook_p95_ms")
        assert p95 is not None and p95.noise is not None and p95.noise.history_runs == min(k - 1, 10)
        within, effect = p95.within, p95.effect or 0.0
        within_alarm |= within is not None and (within[0] > 0 or within[1] < 0) and abs(effect) > 0.10
    assert within_alarm, "the synthetic runs should differ by more than one run's own intervals show"


def test_a_thirty_percent_slowdown_against_history_is_a_regression(redis_url: str, tmp_path: Path) -> None:
    """Eight runs of one build, then a build 30% slower at every request: against the last run joined
    by the seven before it, P95 (and the other latency statistics) regress beyond the 10% minimum
    effect (30%, less what this run's own level drew), with a between-run interval above zero; the
    grade is POOR (exit 2)."""
    history, ids = _store_runs(redis_url, tmp_path, [SHORT] * 8 + [dataclasses.replace(SHORT, slowdown=1.3)])
    comparison = _compare(history, [ids[7]], [ids[8]])
    verdicts = _verdicts(comparison)
    assert verdicts["webhook_p95_ms"] is Verdict.REGRESSION, verdicts
    assert (
        verdicts["webhook_p50_ms"] is Verdict.REGRESSION and verdicts["webhook_avg_ms"] is Verdict.REGRESSION
    )
    assert verdicts["webhook_success_rate"] is Verdict.NO_CHANGE
    p95 = next(row.difference for row in comparison.rows if row.spec.key == "webhook_p95_ms")
    assert p95 is not None and p95.ci_low is not None and p95.ci_low > 0
    assert p95.effect is not None and 0.10 < p95.effect < 0.50
    assert p95.noise is not None and (p95.noise.baseline_runs, p95.noise.history_runs) == (1, 7)
    assert "outside the run-to-run variation" in p95.reason
    assert comparison.grade.exit_code == 2


def test_one_run_each_side_is_inconclusive_even_when_twice_as_slow(redis_url: str, tmp_path: Path) -> None:
    """Without history and with one run each side nothing estimates the variation between runs:
    a run twice as slow is 'inconclusive (run-to-run noise unknown)', never a regression, and the
    within-run interval is kept as information."""
    history, ids = _store_runs(redis_url, tmp_path, [SHORT, dataclasses.replace(SHORT, slowdown=2.0)])
    comparison = _compare(history, [ids[0]], [ids[1]])
    assert not comparison.regressions and comparison.grade.exit_code == 0
    p95 = next(row.difference for row in comparison.rows if row.spec.key == "webhook_p95_ms")
    assert p95 is not None and p95.verdict is Verdict.INCONCLUSIVE and p95.noise_unknown
    assert p95.ci_low is None and p95.within is not None and p95.within[0] > 0.5
    assert p95.reason.startswith("run-to-run noise unknown")
    assert {row.spec.key for row in comparison.noise_unknown} >= {"webhook_p95_ms", "webhook_p99_ms"}


def test_repeated_runs_on_each_side_are_enough_without_history(redis_url: str, tmp_path: Path) -> None:
    """Three runs each side (two `--repeat 3` groups) and no history: the groups' own spread is the
    noise estimate; the same build is no change, a 30% slower build is a P95 regression."""
    slower = dataclasses.replace(SHORT, slowdown=1.3)
    history, ids = _store_runs(redis_url, tmp_path, [SHORT] * 6 + [slower] * 3)
    no_history = BaselineConfig(history_runs=0)
    same = _compare(history, ids[0:3], ids[3:6], no_history)
    assert not same.regressions and not same.noise_unknown
    worse = _verdicts(_compare(history, ids[3:6], ids[6:9], no_history))
    assert worse["webhook_p95_ms"] is Verdict.REGRESSION


def test_microsecond_wobbles_never_count(redis_url: str, tmp_path: Path) -> None:
    """A 60-microsecond endpoint 30% slower is real and stands out against very steady history,
    but 18 microseconds are below the 0.5 ms floor: no regression."""
    tiny = SyntheticProfile(seconds=10, rps=100, median_ms=0.06, sigma=0.2, drift=0.01)
    history, ids = _store_runs(redis_url, tmp_path, [tiny] * 5 + [dataclasses.replace(tiny, slowdown=1.3)])
    comparison = _compare(history, [ids[4]], [ids[5]])
    p50 = next(row.difference for row in comparison.rows if row.spec.key == "webhook_p50_ms")
    assert p50 is not None and p50.verdict is Verdict.NO_CHANGE
    assert p50.ci_low is not None and p50.ci_low > 0.10
    assert "0.5 ms absolute floor" in p50.reason
    assert not comparison.regressions
    assert between_runs("p50", [0.060] * 3, [0.078], True, BaselineConfig(min_absolute_ms=0.0)).regression


def test_a_success_rate_drop_against_history_is_a_regression(redis_url: str, tmp_path: Path) -> None:
    """5% of requests failing where none failed in five earlier runs: the success rate regresses
    by ~5 points (a share is judged in points, with the 1-point floor)."""
    failing = dataclasses.replace(SHORT, failure_rate=0.05)
    history, ids = _store_runs(redis_url, tmp_path, [SHORT] * 5 + [failing])
    rate = next(
        row.difference
        for row in _compare(history, [ids[4]], [ids[5]]).rows
        if row.spec.key == "webhook_success_rate"
    )
    assert rate is not None and rate.verdict is Verdict.REGRESSION
    assert rate.is_rate and rate.effect == pytest.approx(-0.05, abs=0.01)


def test_history_before_a_change_point_does_not_join_the_baseline(redis_url: str, tmp_path: Path) -> None:
    """Four runs of an old build twice as slow, then five of today's: only today's level (the runs
    since the newest change point) joins the baseline, so the old build neither widens the noise
    nor shifts the centre."""
    old = dataclasses.replace(SHORT, slowdown=2.0)
    history, ids = _store_runs(redis_url, tmp_path, [old] * 4 + [SHORT] * 6)
    comparison = _compare(history, [ids[8]], [ids[9]])
    p95 = next(row.difference for row in comparison.rows if row.spec.key == "webhook_p95_ms")
    assert p95 is not None and p95.noise is not None
    assert (p95.noise.baseline_runs, p95.noise.history_runs) == (1, 4)
    assert comparison.history["webhook"] == tuple(ids[:8])
    assert p95.verdict is Verdict.NO_CHANGE


def test_within_run_interval_of_a_slowdown(redis_url: str, tmp_path: Path) -> None:
    """The within-run bootstrap interval of a 30% slowdown lies around +30% (information shown
    next to an inconclusive verdict); it is symmetric for the reverse comparison."""
    before = _samples(redis_url, "before", STEADY, seed=1, tmp_path=tmp_path)
    after = _samples(redis_url, "after", dataclasses.replace(STEADY, slowdown=1.3), seed=2, tmp_path=tmp_path)
    low, high = within_run_intervals(before, after, STATISTICS, BaselineConfig())["p95"] or (0.0, 0.0)
    assert 0.10 < low < 0.30 < high
    back = within_run_intervals(after, before, STATISTICS, BaselineConfig())["p95"]
    assert back is not None and back[1] < 0


def test_runs_too_short_have_no_within_run_interval(redis_url: str, tmp_path: Path) -> None:
    """Three seconds of data are too few intervals to resample: no within-run interval."""
    short = dataclasses.replace(STEADY, seconds=3)
    before = _samples(redis_url, "short-before", short, seed=7, tmp_path=tmp_path)
    after = _samples(
        redis_url, "short-after", dataclasses.replace(short, slowdown=1.3), seed=8, tmp_path=tmp_path
    )
    assert within_run_intervals(before, after, STATISTICS, BaselineConfig())["p95"] is None


def test_interval_statistics_equal_the_collector_summary(redis_url: str, tmp_path: Path) -> None:
    """The run's own figures (every interval once) are exactly what the collector's summary reports,
    so the values the gate compares are the report's numbers."""
    with_burst = dataclasses.replace(STEADY, burst_at_s=45, burst_seconds=3, burst_factor=3.0)
    write_run(redis_url, "exact", with_burst, seed=9, spill_dir=tmp_path / "spill")
    data = CollectorReader(redis_url).load("exact")
    total = data.total().iloc[0]
    figures = point_statistics(IntervalSamples.from_run(data))
    assert figures["p50"] == pytest.approx(total["p50_ms"], rel=1e-12)
    assert figures["p95"] == pytest.approx(total["p95_ms"], rel=1e-12)
    assert figures["p99"] == pytest.approx(total["p99_ms"], rel=1e-12)
    assert figures["avg"] == pytest.approx(total["avg_ms"], rel=1e-9)


def test_intervals_survive_a_result_file_and_give_the_same_interval(redis_url: str, tmp_path: Path) -> None:
    """Intervals written to JSON and read back give exactly the within-run interval read from Redis."""
    before = _samples(redis_url, "file-before", STEADY, seed=10, tmp_path=tmp_path)
    after = _samples(
        redis_url, "file-after", dataclasses.replace(STEADY, slowdown=1.3), seed=11, tmp_path=tmp_path
    )
    direct = within_run_intervals(before, after, STATISTICS, BaselineConfig())
    via_json = within_run_intervals(
        IntervalSamples.from_dict(before.to_dict()),
        IntervalSamples.from_dict(after.to_dict()),
        STATISTICS,
        BaselineConfig(),
    )
    assert direct == via_json


def test_long_runs_are_cut_into_at_most_max_intervals(redis_url: str, tmp_path: Path) -> None:
    """A 10-minute run becomes 100 intervals of 6 s (bounded work whatever the run length), with the
    burst's stage kept apart from the steady part."""
    profile = dataclasses.replace(STEADY, seconds=600, rps=20, burst_at_s=300, burst_seconds=60)
    write_run(redis_url, "long", profile, seed=12, spill_dir=tmp_path / "spill")
    samples = IntervalSamples.from_run(CollectorReader(redis_url).load("long"), max_intervals=100)
    assert samples.window_s == 6 and samples.n == 100
    assert samples.requests == 540 * 20 + 60 * 20 * 4  # burst seconds carry burst_factor (4) times the load
    strata = samples.strata(5)
    assert [len(group) for group in strata] == [50, 10, 40]
