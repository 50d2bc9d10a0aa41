"""The statistics of every comparison: Student's t for the between-run gate (``--repeat`` groups,
history) and change points, and the always-valid paired test of the interleaved A/B comparison.

**Student's t distribution**: the CDF and its inverse.

The CDF goes through the regularized incomplete beta function,
``P(T <= t) = 1 - I_x(df / 2, 1 / 2) / 2`` with ``x = df / (df + t^2)`` for ``t >= 0``, evaluated
by its continued fraction (modified Lentz's method, as in Numerical Recipes section 6.4); the
inverse is found by bisection, so both are exact to about 1e-12 and fully deterministic. Written
here so the suite needs no SciPy for two functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_TINY = 1e-300
_EPS = 1e-15
_MAX_TERMS = 500


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (Lentz's method)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_TERMS + 1):
        m2 = 2 * m
        numerator = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + numerator / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        numerator = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + numerator / c
        c = c if abs(c) > _TINY else _TINY
        step = d * c
        h *= step
        if abs(step - 1.0) < _EPS:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)`` for ``0 <= x <= 1``, ``a, b > 0``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """``P(T <= t)`` for Student's t with ``df`` (> 0) degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile (0 < p < 1) of Student's t with ``df`` degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"a quantile needs 0 < p < 1, got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low <= 1e-12 * max(1.0, high):
            break
    return (low + high) / 2.0


def two_sided_p(t: float, df: float) -> float:
    """The two-sided p-value of a t statistic: ``P(|T| >= |t|)``."""
    return 2.0 * (1.0 - t_cdf(abs(t), df))


# ---------------------------------------------------------------- the sequential paired test (A/B)

LOG_RATIO_GRID = np.round(np.arange(-3.0, 3.0 + 1e-9, 0.0025), 6)
"""Candidate differences (log ratios, B over A: 0.0025 is 0.25%) whose wealth the paired test
tracks; the confidence interval is the set it has not rejected. Holds 0 exactly; spans ratios of
1/20 to 20 (a difference beyond shows as the bound)."""

_PRIOR_SPREAD = 0.3
"""Spread (log units) assumed before any slice, worth ``_PRIOR_WEIGHT`` slices."""
_PRIOR_WEIGHT = 2.0
_SCALE_SPREADS = 3.0
"""A slice's difference is clipped at this many spreads (of the slices before it) from the tested value."""
_MIN_SCALE = 0.02
_MAX_BET = 0.8
"""The largest share of its wealth a bettor stakes on one slice."""


@dataclass(frozen=True, slots=True)
class Look:
    """The paired test after ``n`` slices."""

    n: int
    estimate: float
    """The median of the slice differences so far (a log ratio for a time)."""
    low: float
    """The confidence interval: the smallest difference not rejected so far (``-inf`` below the grid)."""
    high: float
    up: bool
    """``difference > 0`` is established: the test rejected 0 betting on B above A."""
    down: bool
    """``difference < 0`` is established."""


def paired_sequence(
    differences: Sequence[float], confidence: float, candidates: Sequence[float] | None = None
) -> list[Look]:
    """Every look of the always-valid paired test of slice differences ``d_1, d_2, ...`` (B minus A,
    one per time slice, in time order): the interval and the decisions after each slice.

    The null hypothesis for a candidate difference ``delta`` is that each slice's ``d - delta`` is
    symmetric about 0 given the slices before it. For ``delta = 0`` an interleaved A/A comparison
    makes that exact: which arrivals of a slice went to A and which to B is random, and swapping the
    labels turns ``d`` into ``-d``. Testing by betting (Shafer 2021; Waudby-Smith and Ramdas 2023):
    for each ``delta`` two bettors start with wealth 1; on slice ``n`` the "up" bettor stakes a share
    ``lambda_n`` (chosen from the slices before, at most 0.8) on ``g_n = clip((d_n - delta) / c_n,
    -1, 1)``, where ``c_n`` is a scale from the slices before (``_SCALE_SPREADS`` spreads), and its
    wealth becomes ``W * (1 + lambda_n * g_n)``; the "down" bettor stakes on ``-g_n``. Under the null
    ``g_n`` is symmetric, each wealth is a nonnegative martingale, and by Ville's inequality the chance
    that it ever reaches ``2 / alpha`` is at most ``alpha / 2``, however many looks are taken and
    whenever the comparison stops. ``delta`` is rejected once either wealth got there; the interval
    is what is left (rejections are kept: the intersection of the intervals so far). ``up``: 0 is
    rejected by the up bettor (B's values above A's); ``down`` the reverse. The stakes follow the
    approximate Kelly rule ``lambda = mean(g) / mean(g^2)`` of the earlier slices (aGRAPA).
    ``candidates``: the differences tested (default :data:`LOG_RATIO_GRID`; it must hold 0).
    """
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    grid = LOG_RATIO_GRID if candidates is None else np.asarray(candidates, np.float64)
    if not (grid == 0.0).any():
        raise ValueError("the grid of candidate differences must hold 0")
    zero = int(np.flatnonzero(grid == 0.0)[0])
    threshold = math.log(2.0 / (1.0 - confidence))
    values = np.asarray(differences, np.float64)
    g_sum = np.zeros(grid.size)
    g2_sum = np.full(grid.size, 0.25 * _PRIOR_WEIGHT)
    wealth_up = np.zeros(grid.size)
    wealth_down = np.zeros(grid.size)
    rejected = np.zeros(grid.size, bool)
    up_rejected = down_rejected = False
    looks: list[Look] = []
    for n, value in enumerate(values, start=1):
        past = values[: n - 1]
        around = float(((past - past.mean()) ** 2).sum()) if n > 1 else 0.0
        spread = math.sqrt((_PRIOR_WEIGHT * _PRIOR_SPREAD**2 + around) / (_PRIOR_WEIGHT + max(n - 2, 0)))
        scale = max(_MIN_SCALE, _SCALE_SPREADS * spread)
        steps = _PRIOR_WEIGHT + n - 1
        mean_g = g_sum / steps
        second = g2_sum / steps
        bet_up = np.clip(mean_g / second, 0.0, _MAX_BET)
        bet_down = np.clip(-mean_g / second, 0.0, _MAX_BET)
        g = np.clip((value - grid) / scale, -1.0, 1.0)
        wealth_up += np.log1p(bet_up * g)
        wealth_down += np.log1p(-bet_down * g)
        g_sum += g
        g2_sum += g * g
        up_now = wealth_up >= threshold
        down_now = wealth_down >= threshold
        rejected |= up_now | down_now
        up_rejected |= bool(up_now[zero])
        down_rejected |= bool(down_now[zero])
        kept = np.flatnonzero(~rejected)
        estimate = float(np.median(values[:n]))
        if kept.size:
            low = float(grid[kept[0]]) if kept[0] > 0 else -math.inf
            high = float(grid[kept[-1]]) if kept[-1] < grid.size - 1 else math.inf
        else:  # every candidate rejected (the slices disagree with any symmetric model): the estimate
            low = high = estimate
        looks.append(Look(n, estimate, low, high, up_rejected, down_rejected))
    return looks


__all__ = [
    "LOG_RATIO_GRID",
    "Look",
    "incomplete_beta",
    "paired_sequence",
    "t_cdf",
    "t_quantile",
    "two_sided_p",
]
