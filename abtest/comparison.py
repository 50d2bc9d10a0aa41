"""The A/B comparison's statistics: a run's two sides paired slice by slice, and the verdict.

The collector keeps the two targets' requests in rows of their own (``A webhook text``, ``B webhook
text``...). Every slice (``slice_s`` seconds; by default as few as give each side
``min_slice_requests``) yields, per statistic (P50, P95, P99, mean), the log ratio of B's value over
A's, both from the merged HDR histograms of that slice's requests: ``d = log(B / A)``. What the
machine did in that slice (another process's CPU burst, a GC pause in the generator) is common to
both and cancels. The slices' ``d`` go, in time order, to the always-valid paired test
(:func:`perfsuite.stats.paired_sequence`): after each slice it gives an interval of the difference
and whether "B slower" or "B faster" is established, with the false-alarm rate held however often
it is looked at. The verdict is read at the first slice (from ``min_slices`` on) where the decided
statistic (``ab.metric``) is clear:

- **slower**: B above A established and the estimate beyond the sensitivity (``min_effect``);
- **faster**: the reverse;
- **no difference**: the interval lies within plus or minus the sensitivity;

else, at the last slice, **no difference** when only a change smaller than the sensitivity was
established, otherwise **inconclusive** (the interval still admits a change beyond it: run longer or
at a higher rate). Every statistic's interval is shown at that same slice (an always-valid interval
holds at any stopping time). Pure: data in, figures out; the live watcher (``abtest/watch.py``) and
the report use the same function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel

from perfsuite.collector import RunData
from perfsuite.config import AB_METRICS, AbConfig
from perfsuite.stats import Look, paired_sequence
from perfsuite.twilio.rows import is_bad_signature_row

SIDES = ("A", "B")
SLOWER, FASTER, SAME, INCONCLUSIVE = "slower", "faster", "no difference", "inconclusive"
VERDICTS = (SLOWER, FASTER, SAME, INCONCLUSIVE)
LABELS = {"p50": "P50", "p95": "P95", "p99": "P99", "avg": "mean"}
_PERCENTILE = {"p50": 50.0, "p95": 95.0, "p99": 99.0}


class MetricComparison(BaseModel):
    """One statistic of B against A."""

    metric: str
    """``p50``, ``p95``, ``p99`` or ``avg``."""
    a_ms: float | None = None
    """A's value over the compared slices' requests (merged histograms)."""
    b_ms: float | None = None
    change: float | None = None
    """B's value relative to A's minus 1, as the paired test estimates it (median of the slices' log
    ratios): 0.12 is 12% slower."""
    low: float | None = None
    """The interval of ``change`` (None: beyond the grid, below it)."""
    high: float | None = None
    verdict: str = INCONCLUSIVE


class SideFigures(BaseModel):
    """What one target answered."""

    side: str
    host: str = ""
    requests: int = 0
    """Requests sent to it (every row of its side, bad signatures included)."""
    answered: int = 0
    """Answered as intended (delivered, or a bad signature refused)."""
    compared: int = 0
    """Requests in the compared slices (valid signatures only)."""

    @property
    def success_rate(self) -> float | None:
        """Share answered as intended (None without requests)."""
        return self.answered / self.requests if self.requests else None


class AbFigures(BaseModel):
    """The comparison's figures (a result's ``figures`` for test type ``ab``)."""

    metric: str = "p95"
    """The statistic the verdict is decided on."""
    verdict: str = INCONCLUSIVE
    reason: str = ""
    confidence: float = 0.95
    min_effect: float = 0.05
    slice_s: int = 1
    slices: int = 0
    """Paired slices up to the verdict."""
    slices_total: int = 0
    """Paired slices in the whole run."""
    decided_at_s: float | None = None
    """Seconds of load (from the first compared slice's start) when the verdict was clear; None when
    it never was before the end."""
    stopped_early: bool = False
    """The watcher ended the load once the verdict was clear."""
    max_run_time_s: float = 0.0
    rate_per_s: float = 0.0
    metrics: list[MetricComparison] = []
    sides: list[SideFigures] = []

    def of(self, metric: str) -> MetricComparison | None:
        """The comparison of ``metric`` (None when it was not compared)."""
        return next((row for row in self.metrics if row.metric == metric), None)


@dataclass(frozen=True, slots=True)
class Slices:
    """A run's paired slices: per statistic, B's and A's value in each slice (microseconds)."""

    slice_s: int
    starts_s: np.ndarray
    a: dict[str, np.ndarray]
    b: dict[str, np.ndarray]
    counts: np.ndarray
    """Requests per slice and side, shape (slices, 2)."""

    @property
    def n(self) -> int:
        return len(self.starts_s)

    def differences(self, metric: str) -> np.ndarray:
        """``log(B / A)`` per slice."""
        return np.log(np.maximum(self.b[metric], 1.0) / np.maximum(self.a[metric], 1.0))


def slice_seconds(settings: AbConfig) -> int:
    """Seconds per slice: ``slice_s``, or as few as give each side ``min_slice_requests`` (with a 20%
    margin; each side gets half the rate)."""
    if settings.slice_s is not None:
        return int(settings.slice_s)
    return max(1, math.ceil(settings.min_slice_requests / (settings.rate_per_s / 2.0) * 1.2))


def side_of(name: str) -> int | None:
    """0 for an ``A ...`` row, 1 for ``B ...``, None for anything else."""
    for index, side in enumerate(SIDES):
        if name.startswith(side + " "):
            return index
    return None


def pair_slices(data: RunData, settings: AbConfig, up_to_s: int | None = None) -> Slices:
    """The run's valid-signature requests cut into slices from ``warmup_s`` after its first second;
    slices where either side has fewer than ``min_slice_requests`` are left out. ``up_to_s`` (an epoch
    second): only slices that end by then (a live look leaves out the slice still filling)."""
    slice_s = slice_seconds(settings)
    none = {metric: np.empty(0) for metric in AB_METRICS}
    empty = Slices(slice_s, np.empty(0, np.int64), none, dict(none), np.empty((0, 2), np.int64))
    cells = data.cells
    if not len(cells) or "rt" not in data.histograms:
        return empty
    names = cells["name"].astype(str).tolist()
    side = np.array(
        [-1 if (s := side_of(name)) is None or is_bad_signature_row(name[2:]) else s for name in names],
        np.int64,
    )
    seconds = cells["second"].to_numpy(np.int64)
    if not (side >= 0).any():
        return empty
    first = int(seconds[side >= 0].min()) + math.ceil(settings.warmup_s)
    slice_of = (seconds - first) // slice_s
    keep = (side >= 0) & (seconds >= first)
    if up_to_s is not None:
        keep &= first + (slice_of + 1) * slice_s <= up_to_s
    if not keep.any():
        return empty
    n_slices = int(slice_of[keep].max()) + 1
    group = np.where(keep, slice_of * 2 + side, -1).astype(np.int64)
    stats = data.histograms["rt"].regroup(group, n_slices * 2).stats(tuple(_PERCENTILE.values()))
    counts = stats.count.reshape(n_slices, 2)
    paired = np.flatnonzero((counts >= settings.min_slice_requests).all(axis=1))
    values: dict[str, np.ndarray] = {"avg": stats.mean_us}
    for metric, percentile in _PERCENTILE.items():
        values[metric] = stats.percentiles_us[percentile]
    a = {metric: values[metric].reshape(n_slices, 2)[paired, 0] for metric in AB_METRICS}
    b = {metric: values[metric].reshape(n_slices, 2)[paired, 1] for metric in AB_METRICS}
    return Slices(slice_s, first + paired * slice_s, a, b, counts[paired])


def _decided(look: Look, margin: float) -> str | None:
    if look.up and look.estimate > margin:
        return SLOWER
    if look.down and look.estimate < -margin:
        return FASTER
    if look.low >= -margin and look.high <= margin:
        return SAME
    return None


def _final(look: Look, margin: float) -> str:
    decided = _decided(look, margin)
    if decided is not None:
        return decided
    if look.up or look.down:  # a change was established, but smaller than the sensitivity
        return SAME
    return INCONCLUSIVE


def _ratio(value: float) -> float | None:
    return None if not math.isfinite(value) else math.expm1(value)


@dataclass(frozen=True, slots=True)
class Decision:
    """Where the decided statistic's answer was read."""

    n: int
    """Paired slices up to the verdict."""
    verdict: str
    clear: bool
    """The answer was clear at slice ``n`` (the comparison may stop there); False: read at the last slice."""
    looks: dict[str, list[Look]]
    """Every statistic's looks, slice by slice."""


def decide(slices: Slices, settings: AbConfig) -> Decision:
    """The verdict of ``slices`` (see the module docstring)."""
    looks = {
        metric: paired_sequence(slices.differences(metric).tolist(), settings.confidence)
        for metric in AB_METRICS
    }
    primary = looks[settings.metric]
    margin = math.log1p(settings.min_effect)
    for look in primary:
        if look.n >= settings.min_slices and (verdict := _decided(look, margin)) is not None:
            return Decision(look.n, verdict, True, looks)
    if not primary:
        return Decision(0, INCONCLUSIVE, False, looks)
    return Decision(primary[-1].n, _final(primary[-1], margin), False, looks)


def _side_ms(values: np.ndarray, counts: np.ndarray) -> float | None:
    """A side's statistic over slices, weighted by their requests (ms; for display: the test uses the
    paired ratios)."""
    if not values.size or counts.sum() == 0:
        return None
    return float(np.exp(np.average(np.log(np.maximum(values, 1.0)), weights=counts))) / 1000


def _reason(verdict: str, row: MetricComparison, settings: AbConfig, n: int) -> str:
    label = LABELS[row.metric]
    sensitivity = f"{settings.min_effect * 100:g}%"
    interval = f"{_percent(row.low)} to {_percent(row.high)}"
    if verdict in (SLOWER, FASTER):
        return f"B's {label} is {_percent(row.change)} of A's (interval {interval}) after {n} paired slices"
    if verdict == SAME:
        return (
            f"B's {label} is within {sensitivity} of A's (estimate {_percent(row.change)}, "
            f"interval {interval}) after {n} paired slices"
        )
    if not n:
        return "no slice had enough requests on both sides to compare (raise the rate or the run time)"
    return (
        f"after {n} paired slices B's {label} may still differ from A's by more than {sensitivity} "
        f"(estimate {_percent(row.change)}, interval {interval}): run longer or at a higher rate"
    )


def _percent(value: float | None) -> str:
    if value is None:
        return "beyond the grid"
    return f"{value * 100:+.1f}%"


def compare_sides(
    data: RunData, settings: AbConfig, hosts: Sequence[str] = ("", ""), up_to_s: int | None = None
) -> AbFigures:
    """The comparison of ``data``'s two sides (``hosts``: A's and B's URLs, for the report)."""
    slices = pair_slices(data, settings, up_to_s)
    decision = decide(slices, settings)
    n, verdict, looks = decision.n, decision.verdict, decision.looks
    rows: list[MetricComparison] = []
    upto = slice(0, n)
    for metric in AB_METRICS:
        look = looks[metric][n - 1] if n else None
        counts = slices.counts[upto]
        rows.append(
            MetricComparison(
                metric=metric,
                a_ms=_side_ms(slices.a[metric][upto], counts[:, 0]) if slices.n else None,
                b_ms=_side_ms(slices.b[metric][upto], counts[:, 1]) if slices.n else None,
                change=_ratio(look.estimate) if look is not None else None,
                low=_ratio(look.low) if look is not None else None,
                high=_ratio(look.high) if look is not None else None,
                verdict=_final(look, math.log1p(settings.min_effect)) if look is not None else INCONCLUSIVE,
            )
        )
    primary = next(row for row in rows if row.metric == settings.metric)
    primary.verdict = verdict
    sides = _side_figures(data, hosts, slices, n)
    return AbFigures(
        metric=settings.metric,
        verdict=verdict,
        reason=_reason(verdict, primary, settings, n),
        confidence=settings.confidence,
        min_effect=settings.min_effect,
        slice_s=slices.slice_s,
        slices=n,
        slices_total=slices.n,
        decided_at_s=float(slices.starts_s[n - 1] - slices.starts_s[0] + slices.slice_s)
        if decision.clear
        else None,
        max_run_time_s=settings.max_run_time_s,
        rate_per_s=settings.rate_per_s,
        metrics=rows,
        sides=sides,
    )


def _side_figures(data: RunData, hosts: Sequence[str], slices: Slices, n: int) -> list[SideFigures]:
    cells = data.cells
    out = []
    for index, label in enumerate(SIDES):
        if len(cells):
            mask = cells["name"].astype(str).str.startswith(label + " ").to_numpy()
            requests = int(cells["count"].to_numpy()[mask].sum())
            answered = int((cells["success"] + cells["rejected"]).to_numpy()[mask].sum())
        else:
            requests = answered = 0
        compared = int(slices.counts[:n, index].sum()) if n else 0
        out.append(
            SideFigures(
                side=label,
                host=hosts[index] if index < len(hosts) else "",
                requests=requests,
                answered=answered,
                compared=compared,
            )
        )
    return out


__all__ = [
    "FASTER",
    "INCONCLUSIVE",
    "LABELS",
    "SAME",
    "SIDES",
    "SLOWER",
    "VERDICTS",
    "AbFigures",
    "Decision",
    "MetricComparison",
    "SideFigures",
    "Slices",
    "compare_sides",
    "decide",
    "pair_slices",
    "side_of",
    "slice_seconds",
]
