"""The regression gate: a change counts only when it stands out against the variation *between* runs.

Each run gives one value per statistic (its P95, its success rate...). A side of a comparison is
one run or several (a ``--repeat`` group, or run ids listed together); the baseline side is
joined by the earlier runs of the same test type, target and scenario in the history (at most
``baseline.history_runs``, only those since the newest change point of that metric's series, see
``baseline/changepoints.py``), the way Bencher's thresholds look at a branch's recent history.

With ``n_b`` baseline values and ``n_c`` current values (latency on a log scale, so changes are
ratios; a share as it is), Student's pooled two-sample t-test:

- spread ``s``: the pooled standard deviation of the values around their side's mean, with
  ``df = n_b + n_c - 2`` degrees of freedom;
- interval of the change: ``mean_c - mean_b +- t(confidence, df) * s * sqrt(1/n_b + 1/n_c)``
  (shown as a relative change, or points for a share).

A **regression** (or improvement) needs all three:

1. the interval excludes zero (the change stands out against run-to-run variation);
2. the change exceeds ``min_effect_size`` of the baseline (default 10%; ``min_rate_effect``
   points for a share, default 1);
3. the change exceeds the absolute floor, ``min_absolute_ms`` (default 0.5 ms; for a share the
   same 1 point), so microsecond wobbles near the histogram's resolution never count.

Otherwise the verdict is "no significant change". With one run on each side and no earlier run
of that target and scenario (``df < 1``), the run-to-run variation is unknown: the verdict is
**inconclusive**, never a regression. The within-run bootstrap interval of
``baseline/regression.py`` is then still shown, as information only. Everything is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from baseline.changepoints import newest_level_start, pooled_t
from baseline.regression import Difference, Noise, Verdict, format_effect
from perfsuite.config import BaselineConfig
from perfsuite.stats import t_quantile

NOISE_UNKNOWN = "run-to-run noise unknown"


def _scaled(values: Sequence[float], is_rate: bool) -> list[float]:
    return [float(v) for v in values] if is_rate else [math.log(v) for v in values]


def _centre(values: Sequence[float], is_rate: bool) -> float:
    """Mean of a share; geometric mean of a time (the centre the log-scale test compares)."""
    return float(np.mean(values)) if is_rate else math.exp(float(np.mean(np.log(values))))


def threshold_of(settings: BaselineConfig, is_rate: bool) -> float:
    """The minimum effect: relative for a time, points (as a fraction) for a share."""
    return settings.min_rate_effect if is_rate else settings.min_effect_size


def floor_of(settings: BaselineConfig, is_rate: bool) -> float:
    """The absolute floor: milliseconds for a time, points (as a fraction) for a share."""
    return settings.min_rate_effect if is_rate else settings.min_absolute_ms


def _format_floor(floor: float, is_rate: bool) -> str:
    return f"{floor * 100:.1f} pp" if is_rate else f"{floor:g} ms"


def _format_threshold(threshold: float, is_rate: bool) -> str:
    return f"{threshold * 100:.1f} pp" if is_rate else f"{threshold * 100:.1f}%"


def baseline_sample(
    named: Sequence[float], history: Sequence[float], is_rate: bool, min_change: float | None = None
) -> tuple[list[float], int]:
    """The baseline values the gate compares with, and how many came from the history: the named
    baseline runs plus the earlier runs since the newest change point (at least ``min_change``)
    of the series ``history + named`` (oldest first). Named runs are always kept."""
    if not history:
        return list(named), 0
    series = [*history, *named]
    usable = is_rate or all(value > 0 for value in series)
    start = (
        newest_level_start(series, log_scale=not is_rate, min_change=min_change)
        if usable and len(series) >= 4
        else 0
    )
    kept = list(history[min(start, len(history)) :])
    return [*kept, *named], len(kept)


def between_runs(
    statistic: str,
    baseline: Sequence[float],
    current: Sequence[float],
    lower_is_better: bool,
    settings: BaselineConfig,
    history: Sequence[float] = (),
    within: tuple[float, float] | None = None,
) -> Difference:
    """The verdict on one statistic by the rule in the module docstring.

    ``baseline`` and ``current``: the value of each run on each side (None-free); ``history``:
    the same statistic of earlier runs of that target and scenario, oldest first; ``within``: the
    within-run bootstrap interval of the effect (information only).
    """
    is_rate = statistic == "success_rate"
    threshold, floor = threshold_of(settings, is_rate), floor_of(settings, is_rate)

    def inconclusive(reason: str, effect: float | None = None, noise: Noise | None = None) -> Difference:
        return Difference(
            statistic,
            None if not baseline else _centre(baseline, is_rate),
            None if not current else _centre(current, is_rate),
            effect,
            None,
            None,
            settings.confidence,
            threshold,
            is_rate,
            Verdict.INCONCLUSIVE,
            reason,
            floor=floor,
            noise=noise,
            within=within,
        )

    if not baseline or not current:
        return inconclusive("not measured on both sides")
    if not is_rate and any(value <= 0 for value in (*baseline, *current, *history)):
        return inconclusive("a run measured 0: no relative change")
    sample, from_history = baseline_sample(baseline, history, is_rate, threshold)
    base_centre, current_centre = _centre(sample, is_rate), _centre(current, is_rate)
    difference, error, df = pooled_t(_scaled(sample, is_rate), _scaled(current, is_rate))
    effect = difference if is_rate else math.expm1(difference)
    spread = 0.0 if df < 1 else error / math.sqrt(1.0 / len(sample) + 1.0 / len(current))
    noise = Noise(len(baseline), from_history, len(current), df, spread if df >= 1 else None)
    if df < 1:
        return inconclusive(
            f"{NOISE_UNKNOWN}: one run on each side and no earlier run of this target and scenario "
            f"joined the baseline (within the runs: {_within_text(within, is_rate)}); measure it with "
            "`perfsuite run --repeat N` on either side",
            effect,
            noise,
        )
    critical = t_quantile((1.0 + settings.confidence) / 2.0, df) * error
    low, high = difference - critical, difference + critical
    ci_low, ci_high = (low, high) if is_rate else (math.expm1(low), math.expm1(high))
    significant = low > 0.0 or high < 0.0
    absolute = abs(current_centre - base_centre) if is_rate else abs(effect) * base_centre
    if not significant or abs(effect) <= threshold or absolute <= floor:
        verdict = Verdict.NO_CHANGE
    else:
        worse = effect > 0 if lower_is_better else effect < 0
        verdict = Verdict.REGRESSION if worse else Verdict.IMPROVEMENT
    interval = (
        f"{format_effect(effect, is_rate)} ({settings.confidence * 100:g}% interval "
        f"{format_effect(ci_low, is_rate)} .. {format_effect(ci_high, is_rate)} between runs: "
        f"{noise.describe()})"
    )
    if not significant:
        why = f"within the run-to-run variation (spread {_spread_text(spread, is_rate)} per run)"
    elif abs(effect) <= threshold:
        why = f"stands out, but below the {_format_threshold(threshold, is_rate)} minimum effect"
    elif absolute <= floor:
        why = f"stands out, but below the {_format_floor(floor, is_rate)} absolute floor"
    else:
        why = (
            "outside the run-to-run variation and beyond the "
            f"{_format_threshold(threshold, is_rate)} minimum effect"
            + ("" if is_rate else f" and the {_format_floor(floor, is_rate)} floor")
        )
    return Difference(
        statistic,
        base_centre,
        current_centre,
        effect,
        ci_low,
        ci_high,
        settings.confidence,
        threshold,
        is_rate,
        verdict,
        f"{interval}: {why}",
        floor=floor,
        noise=noise,
        within=within,
    )


def _spread_text(spread: float, is_rate: bool) -> str:
    return f"{spread * 100:.1f} pp" if is_rate else f"{math.expm1(spread) * 100:.1f}%"


def _within_text(within: tuple[float, float] | None, is_rate: bool) -> str:
    if within is None:
        return "no interval data"
    return f"{format_effect(within[0], is_rate)} .. {format_effect(within[1], is_rate)}"


__all__ = ["NOISE_UNKNOWN", "baseline_sample", "between_runs", "floor_of", "threshold_of"]
