"""Noise-aware regression detection between two runs.

A difference counts only when both hold:

1. it lies outside the run-to-run variation: the ``confidence`` interval (default 95%) of the
   change, from a bootstrap over each run's time intervals, excludes zero; and
2. it is larger than the minimum effect: ``min_effect_size`` of the baseline for times (default
   10%), ``min_rate_effect`` points for a success share (default 1 point).

The bootstrap: each replicate draws each run's intervals with replacement (as many as it has),
merges the drawn intervals' latency histograms and counts, and computes the statistic exactly (a
percentile of the merged HDR histogram with HdrHistogram's rank rule, the mean of bucket middles,
or good / count); the interval of ``current / baseline - 1`` (``current - baseline`` for a share)
over the replicates is the percentile interval. Drawing whole intervals keeps what happens
together (a burst, a slow minute) together, so a run whose latency swings from interval to
interval gets a wide interval and is not flagged for a swing. The random generator is seeded, so
the same inputs always give the same verdicts.

Runs with fewer than ``min_intervals`` intervals cannot tell a change from noise: the verdict is
``inconclusive``. Without interval data (a result file from elsewhere) only the minimum effect
judges, and the verdict says so.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from perfsuite.collector.histogram import HIGHEST_EQUIVALENT_US, MEDIAN_EQUIVALENT_US, FloatArray, IntArray
from perfsuite.config import BaselineConfig
from perfsuite.errors import ConfigError
from perfsuite.intervals import IntervalSamples

PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}
STATISTICS: tuple[str, ...] = ("avg", *PERCENTILES, "success_rate")
"""Statistics the bootstrap computes: latency mean and percentiles in ms, and the good share."""

SEED = 20_240_601
"""The bootstrap's fixed seed: the same inputs give the same verdicts."""

_CHUNK = 250
"""Replicates computed per pass (bounds the replicate x bucket matrices)."""


class Verdict(enum.StrEnum):
    """What a comparison of one statistic concluded."""

    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    NO_CHANGE = "no significant change"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class Difference:
    """One statistic of a current run against a baseline run."""

    statistic: str
    baseline: float | None
    current: float | None
    effect: float | None
    """``current / baseline - 1`` (a share: ``current - baseline``, in points as a fraction)."""
    ci_low: float | None
    """Lower end of the effect's interval (None without interval data)."""
    ci_high: float | None
    confidence: float
    threshold: float
    """The minimum effect for this statistic (relative, or points for a share)."""
    is_rate: bool
    verdict: Verdict
    reason: str
    """Why, in words (the interval, the threshold, or what was missing)."""

    @classmethod
    def inconclusive(
        cls,
        statistic: str,
        baseline: float | None,
        current: float | None,
        confidence: float,
        threshold: float,
        is_rate: bool,
        reason: str,
    ) -> Difference:
        """A difference that cannot be judged (no effect, no interval), with the reason why."""
        return cls(
            statistic,
            baseline,
            current,
            None,
            None,
            None,
            confidence,
            threshold,
            is_rate,
            Verdict.INCONCLUSIVE,
            reason,
        )

    @property
    def regression(self) -> bool:
        """True when this is a significant change for the worse beyond the minimum effect."""
        return self.verdict is Verdict.REGRESSION

    @property
    def regression_size(self) -> float:
        """``|effect|`` when a regression, else 0.0 (what the no-regression check measures)."""
        return abs(self.effect or 0.0) if self.regression else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "statistic": self.statistic,
            "baseline": self.baseline,
            "current": self.current,
            "effect": self.effect,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
            "threshold": self.threshold,
            "is_rate": self.is_rate,
            "verdict": self.verdict.value,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Difference:
        """Inverse of ``to_dict``."""
        return cls(
            statistic=str(data["statistic"]),
            baseline=data.get("baseline"),
            current=data.get("current"),
            effect=data.get("effect"),
            ci_low=data.get("ci_low"),
            ci_high=data.get("ci_high"),
            confidence=float(data["confidence"]),
            threshold=float(data["threshold"]),
            is_rate=bool(data["is_rate"]),
            verdict=Verdict(data["verdict"]),
            reason=str(data["reason"]),
        )


def format_effect(effect: float | None, is_rate: bool) -> str:
    """``+30.1%`` for a relative effect, ``-2.5 pp`` for a share's."""
    if effect is None:
        return "-"
    return f"{effect * 100:+.1f} pp" if is_rate else f"{effect * 100:+.1f}%"


# ---------------------------------------------------------------------- statistics of resamples


COARSE_SHIFT = 3
"""Bootstrap replicates merge 2**3 neighbouring HDR buckets (about 0.8% wide instead of 0.1%): eight
times less work, and the interval it estimates is far wider than that."""


@dataclass(frozen=True, slots=True)
class _Dense:
    """One run's intervals as a dense (interval x used bucket) matrix."""

    counts: FloatArray
    tops_ms: FloatArray
    """Per column: the highest latency (ms) of the bucket(s) it holds (what percentiles report)."""
    latency_sum_us: FloatArray
    """Per interval: sum of bucket middles (exact, for the mean)."""
    good: FloatArray
    total: FloatArray

    @classmethod
    def of(cls, samples: IntervalSamples, coarse: bool = False) -> _Dense:
        table = samples.table
        index = table.index >> COARSE_SHIFT if coarse else table.index
        columns, column_of = np.unique(index, return_inverse=True)
        width = max(len(columns), 1)
        dense = np.bincount(
            table.groups * width + column_of, weights=table.counts, minlength=samples.n * width
        )
        tops = np.zeros(width)
        if len(columns):
            highest = np.zeros(len(columns), np.int64)
            np.maximum.at(highest, column_of, table.index)
            tops = HIGHEST_EQUIVALENT_US[highest] / 1000.0
        latency_sum = np.bincount(
            table.groups, weights=table.counts * MEDIAN_EQUIVALENT_US[table.index], minlength=samples.n
        )
        return cls(
            dense.reshape(samples.n, width).astype(np.float64),
            tops.astype(np.float64),
            latency_sum.astype(np.float64),
            samples.good.astype(np.float64),
            samples.count.astype(np.float64),
        )

    def statistics(self, weights: FloatArray, wanted: Sequence[str]) -> dict[str, FloatArray]:
        """Each wanted statistic for each row of ``weights`` (replicate x interval multiplicities)."""
        out: dict[str, FloatArray] = {}
        with np.errstate(invalid="ignore", divide="ignore"):
            latency_total = weights @ self.counts.sum(axis=1)
            if "avg" in wanted:
                out["avg"] = np.where(
                    latency_total > 0, weights @ self.latency_sum_us / latency_total, np.nan
                )
                out["avg"] /= 1000.0
            percentiles = [name for name in wanted if name in PERCENTILES]
            if percentiles:
                cumulative = np.cumsum(weights @ self.counts, axis=1)
                for name in percentiles:
                    rank = np.maximum(np.floor(PERCENTILES[name] * latency_total / 100.0 + 0.5), 1.0)
                    position = np.minimum((cumulative < rank[:, None]).sum(axis=1), len(self.tops_ms) - 1)
                    out[name] = np.where(latency_total > 0, self.tops_ms[position], np.nan)
            if "success_rate" in wanted:
                count = weights @ self.total
                out["success_rate"] = np.where(count > 0, (weights @ self.good) / count, np.nan)
        return out


def point_statistics(samples: IntervalSamples, wanted: Sequence[str] = STATISTICS) -> dict[str, float | None]:
    """The statistics of the whole run (every interval once)."""
    _check(wanted)
    if samples.n == 0:
        return dict.fromkeys(wanted)
    values = _Dense.of(samples).statistics(np.ones((1, samples.n)), wanted)
    return {name: _finite(values[name][0]) for name in wanted}


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _check(wanted: Sequence[str]) -> None:
    unknown = [name for name in wanted if name not in STATISTICS]
    if unknown:
        raise ConfigError(f"unknown statistic(s) {unknown}: use {', '.join(STATISTICS)}")


def _resample(strata: Sequence[IntArray], n: int, replicates: int, rng: np.random.Generator) -> FloatArray:
    """Replicate x interval multiplicities: each replicate draws, within each stratum, as many
    intervals as the stratum holds, with replacement."""
    flat_parts = []
    offsets = np.arange(replicates)[:, None] * n
    for members in strata:
        drawn = members[rng.integers(0, len(members), size=(replicates, len(members)))]
        flat_parts.append((offsets + drawn).ravel())
    flat = np.concatenate(flat_parts)
    return np.bincount(flat, minlength=replicates * n).reshape(replicates, n).astype(np.float64)


def bootstrap(
    samples: IntervalSamples,
    wanted: Sequence[str],
    replicates: int,
    rng: np.random.Generator,
    min_stratum: int = 5,
) -> dict[str, FloatArray]:
    """``replicates`` bootstrap values of each wanted statistic of one run (intervals resampled
    within stages of at least ``min_stratum`` intervals)."""
    _check(wanted)
    dense = _Dense.of(samples, coarse=True)
    strata = samples.strata(min_stratum)
    pieces: dict[str, list[FloatArray]] = {name: [] for name in wanted}
    for start in range(0, replicates, _CHUNK):
        weights = _resample(strata, samples.n, min(_CHUNK, replicates - start), rng)
        for name, values in dense.statistics(weights, wanted).items():
            pieces[name].append(values)
    return {name: np.concatenate(values) for name, values in pieces.items()}


# ---------------------------------------------------------------------- verdicts


def _effect(baseline: Any, current: Any, is_rate: bool) -> Any:
    if is_rate:
        return current - baseline
    with np.errstate(invalid="ignore", divide="ignore"):
        return current / baseline - 1.0


def _threshold(settings: BaselineConfig, is_rate: bool) -> float:
    return settings.min_rate_effect if is_rate else settings.min_effect_size


def _judge(effect: float, significant: bool, lower_is_better: bool, threshold: float) -> Verdict:
    if not significant or abs(effect) <= threshold:
        return Verdict.NO_CHANGE
    worse = effect > 0 if lower_is_better else effect < 0
    return Verdict.REGRESSION if worse else Verdict.IMPROVEMENT


def point_difference(
    statistic: str,
    baseline: float | None,
    current: float | None,
    lower_is_better: bool,
    settings: BaselineConfig,
    why: str = "no interval data",
) -> Difference:
    """A difference judged by the minimum effect alone (no interval data on one side)."""
    is_rate = statistic == "success_rate"
    threshold = _threshold(settings, is_rate)
    if baseline is None or current is None or (not is_rate and baseline == 0):
        return Difference.inconclusive(
            statistic,
            baseline,
            current,
            settings.confidence,
            threshold,
            is_rate,
            "not measured on both sides",
        )
    effect = float(_effect(baseline, current, is_rate))
    verdict = _judge(effect, True, lower_is_better, threshold)
    reason = (
        f"{why}: judged by the minimum effect alone ({format_effect(effect, is_rate)} against "
        f"{_format_threshold(threshold, is_rate)}); run-to-run noise unknown"
    )
    return Difference(
        statistic,
        baseline,
        current,
        effect,
        None,
        None,
        settings.confidence,
        threshold,
        is_rate,
        verdict,
        reason,
    )


def _format_threshold(threshold: float, is_rate: bool) -> str:
    return f"{threshold * 100:.1f} pp" if is_rate else f"{threshold * 100:.1f}%"


def compare_samples(
    baseline: IntervalSamples,
    current: IntervalSamples,
    statistics: Mapping[str, bool],
    settings: BaselineConfig,
    seed: int = SEED,
) -> dict[str, Difference]:
    """Compare two runs' intervals; ``statistics`` maps statistic -> lower_is_better."""
    wanted = list(statistics)
    _check(wanted)
    base_point = point_statistics(baseline, wanted)
    current_point = point_statistics(current, wanted)
    fewest = min(baseline.n, current.n)
    if fewest < settings.min_intervals:
        out = {}
        for name in wanted:
            is_rate = name == "success_rate"
            b, c = base_point[name], current_point[name]
            effect = (
                None if b is None or c is None or (not is_rate and b == 0) else float(_effect(b, c, is_rate))
            )
            out[name] = Difference(
                name,
                b,
                c,
                effect,
                None,
                None,
                settings.confidence,
                _threshold(settings, is_rate),
                is_rate,
                Verdict.INCONCLUSIVE,
                f"only {fewest} interval(s) of data (at least {settings.min_intervals} needed to tell a "
                "change from run-to-run noise)",
            )
        return out
    rng = np.random.default_rng(seed)
    base_reps = bootstrap(baseline, wanted, settings.replicates, rng, settings.min_intervals)
    current_reps = bootstrap(current, wanted, settings.replicates, rng, settings.min_intervals)
    tail = (1.0 - settings.confidence) / 2.0
    out = {}
    for name, lower_is_better in statistics.items():
        is_rate = name == "success_rate"
        threshold = _threshold(settings, is_rate)
        b, c = base_point[name], current_point[name]
        if b is None or c is None or (not is_rate and b == 0):
            out[name] = Difference.inconclusive(
                name,
                b,
                c,
                settings.confidence,
                threshold,
                is_rate,
                "not measured on both sides",
            )
            continue
        effect = float(_effect(b, c, is_rate))
        replicate_effects = _effect(base_reps[name], current_reps[name], is_rate)
        replicate_effects = replicate_effects[np.isfinite(replicate_effects)]
        low, high = (float(v) for v in np.quantile(replicate_effects, [tail, 1.0 - tail]))
        significant = low > 0.0 or high < 0.0
        verdict = _judge(effect, significant, lower_is_better, threshold)
        interval = (
            f"{format_effect(effect, is_rate)} ({settings.confidence * 100:g}% interval "
            f"{format_effect(low, is_rate)} .. {format_effect(high, is_rate)})"
        )
        if not significant:
            reason = f"{interval}: within run-to-run variation"
        elif abs(effect) <= threshold:
            reason = f"{interval}: real but below the {_format_threshold(threshold, is_rate)} minimum effect"
        else:
            reason = f"{interval}: outside run-to-run variation and beyond the {_format_threshold(threshold, is_rate)} minimum effect"  # noqa: E501
        out[name] = Difference(
            name, b, c, effect, low, high, settings.confidence, threshold, is_rate, verdict, reason
        )
    return out


__all__ = [
    "PERCENTILES",
    "SEED",
    "STATISTICS",
    "Difference",
    "Verdict",
    "bootstrap",
    "compare_samples",
    "format_effect",
    "point_difference",
    "point_statistics",
]
