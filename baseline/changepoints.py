"""Change points in a series of runs: where a metric stepped to a new level and stayed there.

The method is E-divisive with means (Matteson and James, 2014), as MongoDB's and Hunter's
performance CI use it, with Hunter's deterministic significance test instead of a permutation test:

1. **Where**: for a segment ``x[lo:hi]``, every split ``tau`` (at least ``min_size`` runs each
   side) gets the energy statistic of its two parts ``X = x[lo:tau]``, ``Y = x[tau:hi]``::

       Q(tau) = m n / (m + n) * (2 mean|X_i - Y_j| - mean_{i<k}|X_i - X_k| - mean_{j<k}|Y_j - Y_k|)

   (``m``, ``n`` the parts' sizes): large when values across the split are further apart than
   values within each part, whatever the shape of the distributions. The split with the largest
   ``Q`` is the candidate.
2. **Whether**: the candidate counts when the two parts differ by Student's pooled two-sample
   t-test at ``p < max_p`` (default 0.01) **and** by at least ``min_change`` (default 10%; the
   relative change of the parts' means, or points for a share). The candidate is the best of
   every split scanned, so its p-value is multiplied by their number (Bonferroni): pure noise
   then shows a change point in about 1% of series, not one in ten. Accepted splits are searched
   again on each side (binary segmentation).
3. **Re-check**: each change point is tested again against its neighbours' segments (the runs
   between the previous and the next change point); one that no longer holds is dropped, until
   none is.

Latency-like values are compared on a log scale (a change is a ratio: 10 ms -> 13 ms is the
same step as 100 ms -> 130 ms); shares (success rates) as they are. Everything is deterministic:
no random permutations, the same series always gives the same change points. A change needs
``min_size`` (2) runs on each side, so a single outlying run is not taken for a step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from baseline.student import two_sided_p

MAX_P = 0.01
"""A split counts only when the t-test's two-sided p-value is below this."""
MIN_CHANGE = 0.10
"""...and the parts' means differ by at least this (relative; points for a share)."""
MIN_SIZE = 2
"""Runs each side of a change point, at least."""


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """A step in a series: ``values[index]`` is the first value of the new level."""

    index: int
    before: float
    """Mean of the segment before (geometric for latency-like values)."""
    after: float
    """Mean of the segment after."""
    change: float
    """``after / before - 1`` (a share: ``after - before``)."""
    p_value: float
    """Two-sided p-value of the pooled t-test between the two segments, times the number of
    splits scanned (at most 1)."""

    def to_dict(self) -> dict[str, float | int]:
        """JSON form."""
        return {
            "index": self.index,
            "before": self.before,
            "after": self.after,
            "change": self.change,
            "p_value": self.p_value,
        }


def pooled_t(left: Sequence[float], right: Sequence[float]) -> tuple[float, float, int]:
    """``(difference of means, its standard error, degrees of freedom)`` of Student's pooled
    two-sample t-test (``right - left``); degrees of freedom 0 when the spread is unknown."""
    n_left, n_right = len(left), len(right)
    df = n_left + n_right - 2
    difference = float(np.mean(right) - np.mean(left))
    if df < 1 or n_left == 0 or n_right == 0:
        return difference, math.nan, 0
    squares = float(np.sum((np.asarray(left) - np.mean(left)) ** 2)) + float(
        np.sum((np.asarray(right) - np.mean(right)) ** 2)
    )
    spread = math.sqrt(squares / df)
    return difference, spread * math.sqrt(1.0 / n_left + 1.0 / n_right), df


def _p_value(left: Sequence[float], right: Sequence[float]) -> float:
    difference, error, df = pooled_t(left, right)
    if df < 1:
        return 1.0
    if error == 0.0:
        return 0.0 if difference != 0.0 else 1.0
    return two_sided_p(difference / error, df)


def _energy(values: np.ndarray, lo: int, hi: int, min_size: int) -> tuple[int, float]:
    """The split of ``values[lo:hi]`` with the largest energy statistic, and that statistic."""
    segment = values[lo:hi]
    distance = np.abs(segment[:, None] - segment[None, :])
    best, best_q = -1, -math.inf
    for tau in range(min_size, len(segment) - min_size + 1):
        m, n = tau, len(segment) - tau
        across = distance[:tau, tau:].mean()
        within_left = distance[:tau, :tau].sum() / (m * (m - 1)) if m > 1 else 0.0
        within_right = distance[tau:, tau:].sum() / (n * (n - 1)) if n > 1 else 0.0
        q = m * n / (m + n) * (2.0 * across - within_left - within_right)
        if q > best_q + 1e-12:
            best, best_q = lo + tau, q
    return best, best_q


def _centre(values: np.ndarray, log_scale: bool) -> float:
    mean = float(np.mean(values))
    return math.exp(mean) if log_scale else mean


def _change(before: float, after: float, log_scale: bool) -> float:
    if log_scale:
        return after / before - 1.0 if before else math.inf
    return after - before


def _holds(
    values: np.ndarray,
    lo: int,
    split: int,
    hi: int,
    log_scale: bool,
    max_p: float,
    min_change: float,
    min_size: int,
) -> ChangePoint | None:
    left, right = values[lo:split], values[split:hi]
    before, after = _centre(left, log_scale), _centre(right, log_scale)
    change = _change(before, after, log_scale)
    scanned = max(1, hi - lo - 2 * min_size + 1)
    p_value = min(1.0, _p_value(left.tolist(), right.tolist()) * scanned)
    if p_value >= max_p or abs(change) < min_change:
        return None
    return ChangePoint(split, before, after, change, p_value)


def change_points(
    series: Sequence[float],
    *,
    log_scale: bool = True,
    max_p: float = MAX_P,
    min_change: float = MIN_CHANGE,
    min_size: int = MIN_SIZE,
) -> list[ChangePoint]:
    """The change points of ``series`` (oldest first), in order; see the module docstring.

    ``log_scale``: compare ratios (latency-like, positive values); False for shares. Non-positive
    values on a log scale are a ValueError.
    """
    raw = np.asarray(series, dtype=np.float64)
    if log_scale and len(raw) and (raw <= 0).any():
        raise ValueError("change points on a log scale need positive values")
    values = np.log(raw) if log_scale else raw
    found: set[int] = set()
    pending = [(0, len(values))]
    while pending:
        lo, hi = pending.pop()
        if hi - lo < 2 * min_size:
            continue
        split, _ = _energy(values, lo, hi, min_size)
        if split < 0 or _holds(values, lo, split, hi, log_scale, max_p, min_change, min_size) is None:
            continue
        found.add(split)
        pending += [(lo, split), (split, hi)]
    while True:  # re-check each against its neighbours' segments until every one holds
        ordered = sorted(found)
        bounds = [0, *ordered, len(values)]
        kept = {
            split: _holds(values, bounds[i], split, bounds[i + 2], log_scale, max_p, min_change, min_size)
            for i, split in enumerate(ordered)
        }
        weakest = [split for split, point in kept.items() if point is None]
        if not weakest:
            return [point for point in kept.values() if point is not None]
        found.discard(weakest[0])


def newest_level_start(
    series: Sequence[float], log_scale: bool = True, max_p: float = MAX_P, min_change: float = MIN_CHANGE
) -> int:
    """Index where the newest level of ``series`` starts (0 when it never changed)."""
    points = change_points(series, log_scale=log_scale, max_p=max_p, min_change=min_change)
    return points[-1].index if points else 0


__all__ = [
    "MAX_P",
    "MIN_CHANGE",
    "MIN_SIZE",
    "ChangePoint",
    "change_points",
    "newest_level_start",
    "pooled_t",
]
