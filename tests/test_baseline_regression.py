"""Noise-aware regression detection on real runs written through the collector into a private Redis."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from baseline.regression import Verdict, compare_samples, point_statistics
from baseline.synthetic import SyntheticProfile, write_run
from perfsuite.collector import CollectorReader
from perfsuite.config import BaselineConfig
from perfsuite.intervals import IntervalSamples

STATISTICS = {"avg": True, "p50": True, "p95": True, "p99": True, "success_rate": False}
STEADY = SyntheticProfile(seconds=60, rps=200, median_ms=20.0, sigma=0.5, drift=0.15)
WITH_BURST = dataclasses.replace(STEADY, burst_at_s=45, burst_seconds=3, burst_factor=3.0)


def _samples(
    redis_url: str, run_id: str, profile: SyntheticProfile, seed: int, tmp_path: Path
) -> IntervalSamples:
    write_run(redis_url, run_id, profile, seed=seed, spill_dir=tmp_path / "spill")
    return IntervalSamples.from_run(CollectorReader(redis_url).load(run_id))


@pytest.mark.parametrize("profile", [STEADY, WITH_BURST], ids=["steady", "with-burst"])
def test_runs_of_the_same_build_are_never_flagged(
    redis_url: str, tmp_path: Path, profile: SyntheticProfile
) -> None:
    """Four runs of one build (same profile, different randomness): no pair shows a regression or
    an improvement on any statistic, so a CI gate on the comparison does not cry wolf."""
    runs = [_samples(redis_url, f"same-{i}", profile, seed=100 + i, tmp_path=tmp_path) for i in range(4)]
    for baseline, current in ((0, 1), (1, 0), (2, 3), (1, 2), (0, 3)):
        verdicts = compare_samples(runs[baseline], runs[current], STATISTICS, BaselineConfig())
        for name, difference in verdicts.items():
            assert difference.verdict is Verdict.NO_CHANGE, (baseline, current, name, difference.reason)
            assert not difference.regression


def test_a_thirty_percent_p95_slowdown_is_flagged(redis_url: str, tmp_path: Path) -> None:
    """A build 30% slower at every request: P95 is a regression whose interval lies above zero and
    whose effect is about +30%; the reverse comparison calls it an improvement."""
    before = _samples(redis_url, "before", STEADY, seed=1, tmp_path=tmp_path)
    after = _samples(redis_url, "after", dataclasses.replace(STEADY, slowdown=1.3), seed=2, tmp_path=tmp_path)
    p95 = compare_samples(before, after, STATISTICS, BaselineConfig())["p95"]
    assert p95.verdict is Verdict.REGRESSION
    assert p95.ci_low is not None and p95.ci_low > 0.10
    assert p95.effect == pytest.approx(0.30, abs=0.08)
    assert p95.regression_size == pytest.approx(p95.effect)
    assert "outside run-to-run variation" in p95.reason
    back = compare_samples(after, before, STATISTICS, BaselineConfig())["p95"]
    assert back.verdict is Verdict.IMPROVEMENT and not back.regression


def test_a_real_change_below_the_minimum_effect_is_not_a_regression(redis_url: str, tmp_path: Path) -> None:
    """A 6% slowdown, measured on calm runs, may be real, but stays under the 10% minimum effect."""
    calm = dataclasses.replace(STEADY, drift=0.02, rps=400)
    before = _samples(redis_url, "calm-before", calm, seed=3, tmp_path=tmp_path)
    after = _samples(
        redis_url, "calm-after", dataclasses.replace(calm, slowdown=1.06), seed=4, tmp_path=tmp_path
    )
    verdicts = compare_samples(before, after, STATISTICS, BaselineConfig())
    assert not any(d.regression for d in verdicts.values())
    assert verdicts["p50"].effect == pytest.approx(0.06, abs=0.03)
    stricter = compare_samples(before, after, STATISTICS, BaselineConfig(min_effect_size=0.02))
    assert stricter["p50"].verdict is Verdict.REGRESSION


def test_a_success_rate_drop_beyond_one_point_is_a_regression(redis_url: str, tmp_path: Path) -> None:
    """5% of requests failing where none failed before: the success rate regresses by ~5 points."""
    before = _samples(redis_url, "ok", STEADY, seed=5, tmp_path=tmp_path)
    after = _samples(
        redis_url, "failing", dataclasses.replace(STEADY, failure_rate=0.05), seed=6, tmp_path=tmp_path
    )
    rate = compare_samples(before, after, STATISTICS, BaselineConfig())["success_rate"]
    assert rate.verdict is Verdict.REGRESSION
    assert rate.is_rate and rate.effect == pytest.approx(-0.05, abs=0.01)


def test_runs_too_short_to_know_their_noise_are_inconclusive(redis_url: str, tmp_path: Path) -> None:
    """Three seconds of data cannot tell a 30% change from noise: the verdict says so, no regression."""
    short = dataclasses.replace(STEADY, seconds=3)
    before = _samples(redis_url, "short-before", short, seed=7, tmp_path=tmp_path)
    after = _samples(
        redis_url, "short-after", dataclasses.replace(short, slowdown=1.3), seed=8, tmp_path=tmp_path
    )
    p95 = compare_samples(before, after, STATISTICS, BaselineConfig())["p95"]
    assert p95.verdict is Verdict.INCONCLUSIVE and not p95.regression
    assert "interval" in p95.reason and p95.effect is not None


def test_interval_statistics_equal_the_collector_summary(redis_url: str, tmp_path: Path) -> None:
    """The run's own figures (every interval once) are exactly what the collector's summary reports,
    so a verdict's baseline and current are the report's numbers."""
    write_run(redis_url, "exact", WITH_BURST, seed=9, spill_dir=tmp_path / "spill")
    data = CollectorReader(redis_url).load("exact")
    total = data.total().iloc[0]
    figures = point_statistics(IntervalSamples.from_run(data))
    assert figures["p50"] == pytest.approx(total["p50_ms"], rel=1e-12)
    assert figures["p95"] == pytest.approx(total["p95_ms"], rel=1e-12)
    assert figures["p99"] == pytest.approx(total["p99_ms"], rel=1e-12)
    assert figures["avg"] == pytest.approx(total["avg_ms"], rel=1e-9)


def test_intervals_survive_a_result_file_and_give_the_same_verdicts(redis_url: str, tmp_path: Path) -> None:
    """Intervals written to JSON and read back compare exactly like the ones read from Redis."""
    before = _samples(redis_url, "file-before", STEADY, seed=10, tmp_path=tmp_path)
    after = _samples(
        redis_url, "file-after", dataclasses.replace(STEADY, slowdown=1.3), seed=11, tmp_path=tmp_path
    )
    direct = compare_samples(before, after, STATISTICS, BaselineConfig())
    via_json = compare_samples(
        IntervalSamples.from_dict(before.to_dict()),
        IntervalSamples.from_dict(after.to_dict()),
        STATISTICS,
        BaselineConfig(),
    )
    assert {k: v.to_dict() for k, v in direct.items()} == {k: v.to_dict() for k, v in via_json.items()}


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
