"""How much a statistic changed between runs: verdicts, and the within-run bootstrap interval.

The verdict itself is the between-run gate's (``baseline/gate.py``): a change must stand out
against the variation *between* runs. This module holds what a verdict is (:class:`Difference`,
:class:`Noise`, :class:`Verdict`) and the **within-run** interval, shown as information: how far
a statistic of one run can move when its own time intervals are drawn again.

The bootstrap: each replicate draws each run's intervals with replacement (as many as it has),
merges the drawn intervals' latency histograms and counts, and computes the statistic exactly (a
percentile of the merged HDR histogram with HdrHistogram's rank rule, the mean of bucket middles,
or good / count); the interval of ``current / baseline - 1`` (``current - baseline`` for a share)
over the replicates is the percentile interval. Drawing whole intervals keeps what happens
together (a burst, a slow minute) together. The random generator is seeded, so the same inputs
always give the same interval. It knows nothing of what differs between two runs (machine load,
caches, the bot's background work), which is why it never decides a verdict on its own.
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
class Noise:
    """What the run-to-run variation of a verdict was estimated from."""

    baseline_runs: int
    """Runs named as the baseline."""
    history_runs: int
    """Earlier runs of the same target and scenario that joined the baseline."""
    current_runs: int
    df: int
    """Degrees of freedom of the pooled spread (0: unknown)."""
    spread: float | None
    """Pooled standard deviation between runs (of the log value for a time, ~ relative; points
    as a fraction for a share); None when unknown."""

    def describe(self) -> str:
        """``6 baseline runs (1 named + 5 earlier), 1 current``."""
        total = self.baseline_runs + self.history_runs
        named = f" ({self.baseline_runs} named + {self.history_runs} earlier)" if self.history_runs else ""
        return f"{total} baseline run{'s' if total != 1 else ''}{named}, {self.current_runs} current"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "baseline_runs": self.baseline_runs,
            "history_runs": self.history_runs,
            "current_runs": self.current_runs,
            "df": self.df,
            "spread": self.spread,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Noise:
        """Inverse of ``to_dict``."""
        spread = data.get("spread")
        return cls(
            int(data["baseline_runs"]),
            int(data["history_runs"]),
            int(data["current_runs"]),
            int(data["df"]),
            None if spread is None else float(spread),
        )


@dataclass(frozen=True, slots=True)
class Difference:
    """One statistic of the current side against the baseline side."""

    statistic: str
    baseline: float | None
    """Centre of the baseline values compared (geometric mean for a time, mean for a share)."""
    current: float | None
    effect: float | None
    """``current / baseline - 1`` (a share: ``current - baseline``, in points as a fraction)."""
    ci_low: float | None
    """Lower end of the effect's between-run interval (None when run-to-run noise is unknown)."""
    ci_high: float | None
    confidence: float
    threshold: float
    """The minimum effect for this statistic (relative, or points for a share)."""
    is_rate: bool
    verdict: Verdict
    reason: str
    """Why, in words (the interval, the threshold, or what was missing)."""
    floor: float = 0.0
    """The absolute floor: milliseconds for a time, points (as a fraction) for a share."""
    noise: Noise | None = None
    """What the between-run variation came from (None: not estimated)."""
    within: tuple[float, float] | None = None
    """The within-run bootstrap interval of the effect (information only; None: not computed)."""

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
    def noise_unknown(self) -> bool:
        """Inconclusive because nothing estimated the run-to-run variation."""
        return self.verdict is Verdict.INCONCLUSIVE and (self.noise is None or self.noise.df < 1)

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
            "floor": self.floor,
            "noise": None if self.noise is None else self.noise.to_dict(),
            "within_low": None if self.within is None else self.within[0],
            "within_high": None if self.within is None else self.within[1],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Difference:
        """Inverse of ``to_dict`` (a ``perfsuite.comparison/1`` difference reads with no noise)."""
        noise, low, high = data.get("noise"), data.get("within_low"), data.get("within_high")
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
            floor=float(data.get("floor") or 0.0),
            noise=None if noise is None else Noise.from_dict(noise),
            within=None if low is None or high is None else (float(low), float(high)),
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


# ---------------------------------------------------------------------- the within-run interval


def _effect(baseline: Any, current: Any, is_rate: bool) -> Any:
    if is_rate:
        return current - baseline
    with np.errstate(invalid="ignore", divide="ignore"):
        return current / baseline - 1.0


def within_run_intervals(
    baseline: IntervalSamples,
    current: IntervalSamples,
    statistics: Sequence[str],
    settings: BaselineConfig,
    seed: int = SEED,
) -> dict[str, tuple[float, float] | None]:
    """The ``settings.confidence`` bootstrap interval of each statistic's effect between two runs
    (``current / baseline - 1``; points for a share), from each run's own time intervals. None
    for a statistic not measured on both sides, or when a run has fewer than
    ``settings.min_intervals`` intervals (too few to resample)."""
    wanted = list(statistics)
    _check(wanted)
    if min(baseline.n, current.n) < settings.min_intervals:
        return dict.fromkeys(wanted)
    base_point = point_statistics(baseline, wanted)
    current_point = point_statistics(current, wanted)
    rng = np.random.default_rng(seed)
    base_reps = bootstrap(baseline, wanted, settings.replicates, rng, settings.min_intervals)
    current_reps = bootstrap(current, wanted, settings.replicates, rng, settings.min_intervals)
    tail = (1.0 - settings.confidence) / 2.0
    out: dict[str, tuple[float, float] | None] = {}
    for name in wanted:
        is_rate = name == "success_rate"
        b, c = base_point[name], current_point[name]
        if b is None or c is None or (not is_rate and b == 0):
            out[name] = None
            continue
        effects = _effect(base_reps[name], current_reps[name], is_rate)
        effects = effects[np.isfinite(effects)]
        if not len(effects):
            out[name] = None
            continue
        low, high = (float(v) for v in np.quantile(effects, [tail, 1.0 - tail]))
        out[name] = (low, high)
    return out


__all__ = [
    "PERCENTILES",
    "SEED",
    "STATISTICS",
    "Difference",
    "Noise",
    "Verdict",
    "bootstrap",
    "format_effect",
    "point_statistics",
    "within_run_intervals",
]
