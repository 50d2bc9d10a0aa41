"""Change points in a series of runs: where a metric stepped to a new level and stayed there.

The method is E-divisive with means (Matteson and James, 2014), as MongoDB's and Hunter's
performance CI use it:

1. **Where**: in a segment of the series, every pair of parts ``X = x[lo:tau]``,
   ``Y = x[tau:kappa]`` (at least ``min_size`` runs each) gets the energy statistic::

       Q = m n / (m + n) * (2 mean|X_i - Y_j| - mean_{i<k}|X_i - X_k| - mean_{j<k}|Y_j - Y_k|)

   (``m``, ``n`` the parts' sizes): large when values across the split are further apart than
   values within each part, whatever the shape of the distributions. Letting ``Y`` end before the
   segment does (``kappa``) finds a level that came and went (a regression, then its fix). The
   ``tau`` of the largest ``Q`` is the candidate.
2. **Whether**: the candidate is the best of many splits, so it is tested as E-divisive does, by
   permutation: the segment's values are shuffled ``permutations`` times (199, from a fixed seed)
   and the best ``Q`` recomputed each time; the p-value is the share of shuffles at least as
   extreme (with the observed one counted). It counts when ``p < max_p`` (0.05, the level
   MongoDB's E-divisive used) **and** the two parts' means differ by at least ``min_change`` (10%;
   1 point for a share). Accepted splits are searched again on each side (binary segmentation).
   On a flat series of 30 runs with 15% noise about 3% of series show a change point; a 30% step
   (two sd) between 15 and 10 runs is found about half the time.
3. **Re-check** (Hunter's step): each change point is tested again against its neighbours'
   segments (the runs between the previous and the next change point) with Student's pooled
   two-sample t-test (``p < max_p``, the split now fixed) and the minimum change; one that no
   longer holds is dropped, until every one does.

Latency-like values are compared on a log scale (a change is a ratio: 10 ms -> 13 ms is the same
step as 100 ms -> 130 ms); shares (success rates) as they are. Deterministic: the shuffles come
from a fixed seed, so the same series always gives the same change points. A change needs
``min_size`` (2) runs on each side, so a single outlying run is not taken for a step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from perfsuite.stats import two_sided_p

MAX_P = 0.05
"""A split counts only when the t-test's two-sided p-value is below this."""
MIN_CHANGE = 0.10
"""...and the parts' means differ by at least this (relative)..."""
MIN_SHARE_CHANGE = 0.01
"""...or, for a share (a success rate), by at least this many points (0.01 = 1 point)."""
MIN_SIZE = 2
"""Runs each side of a change point, at least."""
PERMUTATIONS = 199
"""Shuffles of a segment that test its best split."""
PERMUTATION_SEED = 20_240_611
"""Seed of the shuffles: the same series always gives the same change points."""


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
    """Two-sided p-value of the pooled t-test between the segments either side (after the re-check)."""

    def to_dict(self) -> dict[str, float | int]:
        """JSON form."""
        return {
            "index": self.index,
            "before": self.before,
            "after": self.after,
            "change": self.change,
            "p_value": self.p_value,
        }


@dataclass(frozen=True, slots=True)
class _Params:
    max_p: float
    min_change: float
    min_size: int
    permutations: int


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


def _best_split(values: np.ndarray, min_size: int) -> tuple[int, int, float]:
    """``(tau, kappa, Q)`` of the largest energy statistic over parts ``values[:tau]``,
    ``values[tau:kappa]`` (2D prefix sums of the distance matrix: every pair at once)."""
    length = len(values)
    distance = np.abs(values[:, None] - values[None, :])
    prefix = np.zeros((length + 1, length + 1))
    prefix[1:, 1:] = distance.cumsum(axis=0).cumsum(axis=1)

    def block(
        a: np.ndarray | int, b: np.ndarray | int, c: np.ndarray | int, d: np.ndarray | int
    ) -> np.ndarray:
        return np.asarray(prefix[b, d] - prefix[a, d] - prefix[b, c] + prefix[a, c], dtype=np.float64)

    tau, kappa = np.meshgrid(np.arange(length + 1), np.arange(length + 1), indexing="ij")
    valid = (tau >= min_size) & (kappa - tau >= min_size)
    if not valid.any():
        return -1, -1, -math.inf
    t, k = tau[valid], kappa[valid]
    m, n = t.astype(np.float64), (k - t).astype(np.float64)
    across = block(0, t, t, k) / (m * n)
    within_left = block(0, t, 0, t) / (m * (m - 1))
    within_right = block(t, k, t, k) / (n * (n - 1))
    q = m * n / (m + n) * (2.0 * across - within_left - within_right)
    best = int(np.argmax(q))
    return int(t[best]), int(k[best]), float(q[best])


def _centre(values: np.ndarray, log_scale: bool) -> float:
    mean = float(np.mean(values))
    return math.exp(mean) if log_scale else mean


def _change(before: float, after: float, log_scale: bool) -> float:
    if log_scale:
        return after / before - 1.0 if before else math.inf
    return after - before


def _point(values: np.ndarray, lo: int, split: int, hi: int, log_scale: bool, p_value: float) -> ChangePoint:
    before, after = _centre(values[lo:split], log_scale), _centre(values[split:hi], log_scale)
    return ChangePoint(split, before, after, _change(before, after, log_scale), p_value)


def _candidate(values: np.ndarray, lo: int, hi: int, log_scale: bool, params: _Params) -> ChangePoint | None:
    """The best split of ``values[lo:hi]`` when the permutation test and the minimum change accept it."""
    segment = values[lo:hi]
    tau, kappa, q = _best_split(segment, params.min_size)
    if tau < 0:
        return None
    point = _point(values, lo, lo + tau, lo + kappa, log_scale, 1.0)
    if abs(point.change) < params.min_change:
        return None
    rng = np.random.default_rng([PERMUTATION_SEED, lo, hi])
    extreme = sum(
        _best_split(rng.permutation(segment), params.min_size)[2] >= q - 1e-12
        for _ in range(params.permutations)
    )
    p_value = (1 + extreme) / (1 + params.permutations)
    if p_value >= params.max_p:
        return None
    return ChangePoint(point.index, point.before, point.after, point.change, p_value)


def _holds(
    values: np.ndarray, lo: int, split: int, hi: int, log_scale: bool, params: _Params
) -> ChangePoint | None:
    """The change point at ``split`` tested against the segments either side (fixed split: t-test)."""
    p_value = _p_value(values[lo:split].tolist(), values[split:hi].tolist())
    point = _point(values, lo, split, hi, log_scale, p_value)
    if p_value >= params.max_p or abs(point.change) < params.min_change:
        return None
    return point


def change_points(
    series: Sequence[float],
    *,
    log_scale: bool = True,
    max_p: float = MAX_P,
    min_change: float | None = None,
    min_size: int = MIN_SIZE,
    permutations: int = PERMUTATIONS,
) -> list[ChangePoint]:
    """The change points of ``series`` (oldest first), in order; see the module docstring.

    ``log_scale``: compare ratios (latency-like, positive values); False for shares. Non-positive
    values on a log scale are a ValueError. ``min_change`` defaults to :data:`MIN_CHANGE`
    (:data:`MIN_SHARE_CHANGE` for a share).
    """
    if min_change is None:
        min_change = MIN_CHANGE if log_scale else MIN_SHARE_CHANGE
    raw = np.asarray(series, dtype=np.float64)
    if log_scale and len(raw) and (raw <= 0).any():
        raise ValueError("change points on a log scale need positive values")
    values = np.log(raw) if log_scale else raw
    params = _Params(max_p, min_change, min_size, permutations)
    found: set[int] = set()
    pending = [(0, len(values))]
    while pending:
        lo, hi = pending.pop()
        if hi - lo < 2 * min_size:
            continue
        point = _candidate(values, lo, hi, log_scale, params)
        if point is None:
            continue
        found.add(point.index)
        pending += [(lo, point.index), (point.index, hi)]
    while True:  # re-check each against its neighbours' segments until every one holds
        ordered = sorted(found)
        bounds = [0, *ordered, len(values)]
        kept = {
            split: _holds(values, bounds[i], split, bounds[i + 2], log_scale, params)
            for i, split in enumerate(ordered)
        }
        weakest = [split for split, point in kept.items() if point is None]
        if not weakest:
            return [point for point in kept.values() if point is not None]
        found.discard(weakest[0])


def newest_level_start(
    series: Sequence[float], log_scale: bool = True, max_p: float = MAX_P, min_change: float | None = None
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
