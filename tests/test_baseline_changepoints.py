"""Change points in a series of runs, Student's t, and the gate's rule on plain run values (no Redis)."""

from __future__ import annotations

import numpy as np
import pytest

from baseline.changepoints import change_points, newest_level_start
from baseline.gate import baseline_sample, between_runs
from baseline.regression import Verdict
from perfsuite.config import BaselineConfig
from perfsuite.stats import t_cdf, t_quantile


def _noisy(level_ms: float, n: int, seed: int, spread: float = 0.08) -> list[float]:
    return list(np.exp(np.random.default_rng(seed).normal(np.log(level_ms), spread, n)))


def test_student_t_matches_the_published_table() -> None:
    """The two-sided 95% critical values a t table prints (df 1, 2, 5, 10, 30) and the CDF's symmetry."""
    for df, expected in ((1, 12.706), (2, 4.303), (5, 2.571), (10, 2.228), (30, 2.042)):
        assert t_quantile(0.975, df) == pytest.approx(expected, abs=5e-4)
    assert t_cdf(0.0, 7) == pytest.approx(0.5)
    assert t_cdf(-1.5, 4) == pytest.approx(1.0 - t_cdf(1.5, 4))


def test_one_step_in_a_series_is_found_where_it_happened() -> None:
    """Ten runs at ~20 ms, then eight at ~27 ms (8% noise): exactly one change point, at the first
    slower run, with a change of about +35%."""
    series = _noisy(20.0, 10, seed=1) + _noisy(27.0, 8, seed=2)
    (step,) = change_points(series)
    assert step.index == 10
    assert step.change == pytest.approx(0.35, abs=0.1) and step.p_value < 0.01
    assert newest_level_start(series) == 10


def test_a_flat_noisy_series_and_a_single_outlier_have_no_change_point() -> None:
    """Noise alone, and one run three times slower in the middle of it, are not steps; the result
    is the same every time (deterministic)."""
    flat = _noisy(20.0, 30, seed=3, spread=0.15)
    assert change_points(flat) == []
    with_outlier = [*flat[:15], 60.0, *flat[16:]]
    assert change_points(with_outlier) == change_points(with_outlier) == []


def test_two_steps_and_a_share_series() -> None:
    """A rise and a fall back (each kept by re-checking against its neighbours), and a success rate
    compared in points, not ratios."""
    series = _noisy(10.0, 8, seed=4) + _noisy(20.0, 8, seed=5) + _noisy(10.0, 8, seed=6)
    assert [point.index for point in change_points(series)] == [8, 16]
    rates = [1.0] * 6 + [0.95] * 6
    (drop,) = change_points(rates, log_scale=False)
    assert drop.index == 6 and drop.change == pytest.approx(-0.05)


def test_the_gate_on_plain_values() -> None:
    """The rule itself: one value each side is inconclusive; a spread from history or repeats makes
    a 30% change a regression; a change inside the spread is no change; below 0.5 ms never counts."""
    settings = BaselineConfig()
    alone = between_runs("p95", [20.0], [26.0], True, settings)
    assert alone.verdict is Verdict.INCONCLUSIVE and alone.noise_unknown and not alone.regression
    history = [19.5, 20.4, 20.1, 19.8, 20.6]
    worse = between_runs("p95", [20.0], [26.0], True, settings, history=history)
    assert worse.verdict is Verdict.REGRESSION and worse.noise is not None and worse.noise.df == 5
    wobbly = between_runs("p95", [20.0], [26.0], True, settings, history=[14.0, 27.0, 18.0, 25.0, 16.0])
    assert wobbly.verdict is Verdict.NO_CHANGE and "within the run-to-run variation" in wobbly.reason
    better = between_runs("p95", [26.0, 25.5, 26.4], [20.0, 19.7, 20.3], True, settings)
    assert better.verdict is Verdict.IMPROVEMENT
    tiny = between_runs("p50", [0.40, 0.41, 0.40], [0.60, 0.61], True, settings)
    assert tiny.verdict is Verdict.NO_CHANGE and "floor" in tiny.reason


def test_history_older_than_the_newest_change_point_is_left_out() -> None:
    """Six earlier runs at twice the level, then four at today's: only today's four join the named
    baseline run."""
    history = _noisy(40.0, 6, seed=7) + _noisy(20.0, 4, seed=8)
    sample, joined = baseline_sample([20.3], history, is_rate=False)
    assert joined == 4 and len(sample) == 5
