"""Many latency histograms at once, in columnar sparse form, with numpy-speed merge and percentiles.

A run of one hour at 1,000 requests/s has thousands of per-second histograms per endpoint; building
one HdrHistogram object for each and asking it for percentiles costs milliseconds apiece. Here all
of them live in three aligned arrays (group, bucket index, count) sorted by group then index, and
every statistic of every group comes out of a handful of vectorised numpy calls. Results equal
HdrHistogram's own (same bucket layout, same percentile rank rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from perfsuite.collector.histogram import (
    COUNTS_LEN,
    HIGHEST_EQUIVALENT_US,
    LOWEST_EQUIVALENT_US,
    MEDIAN_EQUIVALENT_US,
    FloatArray,
    IntArray,
    LatencyHistogram,
)

_DENSE_LIMIT = 4_000_000
"""Regrouping into at most this many (group, bucket) cells uses a dense bincount instead of a sort."""


@dataclass(frozen=True, slots=True)
class GroupStats:
    """Per-group statistics (arrays indexed by group id); empty groups have count 0 and NaN values."""

    count: IntArray
    mean_us: FloatArray
    min_us: FloatArray
    max_us: FloatArray
    percentiles_us: dict[float, FloatArray]
    """Keyed by the requested percentile (0-100]."""


@dataclass(frozen=True, slots=True)
class HistogramTable:
    """Histograms of ``n_groups`` groups: entries sorted by (group, index), one entry per bucket."""

    groups: IntArray
    index: IntArray
    counts: IntArray
    n_groups: int

    @classmethod
    def empty(cls, n_groups: int = 0) -> HistogramTable:
        """A table of ``n_groups`` empty histograms."""
        none = np.empty(0, np.int64)
        return cls(none, none, none, n_groups)

    @classmethod
    def from_entries(
        cls, groups: IntArray, index: IntArray, counts: IntArray, n_groups: int
    ) -> HistogramTable:
        """Merge unsorted entries (duplicates of a (group, index) pair add up)."""
        if groups.size == 0:
            return cls.empty(n_groups)
        key = groups.astype(np.int64) * COUNTS_LEN + index
        if key.size > 1 and bool(np.all(key[1:] > key[:-1])):  # already sorted, no duplicates
            return cls(
                groups.astype(np.int64, copy=False), index, counts.astype(np.int64, copy=False), n_groups
            )
        order = np.argsort(key, kind="stable")  # input is mostly sorted: timsort runs are cheap
        key = key[order]
        counts = counts[order]
        starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        merged = np.add.reduceat(counts, starts)
        unique_key = key[starts]
        return cls(unique_key // COUNTS_LEN, unique_key % COUNTS_LEN, merged.astype(np.int64), n_groups)

    def regroup(self, new_group_of: IntArray, n_groups: int) -> HistogramTable:
        """Merge groups: old group ``g`` becomes ``new_group_of[g]`` (negative drops it)."""
        if self.groups.size == 0:
            return HistogramTable.empty(n_groups)
        new_groups = new_group_of[self.groups]
        keep = new_groups >= 0
        if not keep.all():
            new_groups, index, counts = new_groups[keep], self.index[keep], self.counts[keep]
        else:
            index, counts = self.index, self.counts
        if n_groups * COUNTS_LEN <= _DENSE_LIMIT:  # few groups: add up densely, no sort
            dense = np.bincount(
                new_groups * COUNTS_LEN + index, weights=counts, minlength=n_groups * COUNTS_LEN
            )
            key = np.flatnonzero(dense)
            return HistogramTable(key // COUNTS_LEN, key % COUNTS_LEN, dense[key].astype(np.int64), n_groups)
        return HistogramTable.from_entries(new_groups, index, counts, n_groups)

    def stats(self, percentiles: Sequence[float] = (50.0, 90.0, 95.0, 99.0)) -> GroupStats:
        """Count, mean, min, max and percentiles of every group, HdrHistogram's definitions."""
        n = self.n_groups
        count = np.bincount(self.groups, weights=self.counts, minlength=n).astype(np.int64)[:n]
        nan = np.full(n, np.nan)
        if self.groups.size == 0:
            return GroupStats(count, nan, nan.copy(), nan.copy(), {p: nan.copy() for p in percentiles})
        ids = np.arange(n)
        starts = np.searchsorted(self.groups, ids, side="left")
        ends = np.searchsorted(self.groups, ids, side="right")
        present = ends > starts
        cumulative = np.cumsum(self.counts)
        before = np.where(starts > 0, cumulative[np.maximum(starts - 1, 0)], 0)
        weighted = np.bincount(
            self.groups, weights=self.counts * MEDIAN_EQUIVALENT_US[self.index], minlength=n
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(present, weighted[:n] / count, np.nan)
        minimum = np.where(
            present, LOWEST_EQUIVALENT_US[self.index[np.minimum(starts, self.index.size - 1)]], np.nan
        )
        maximum = np.where(present, HIGHEST_EQUIVALENT_US[self.index[np.maximum(ends - 1, 0)]], np.nan)
        values: dict[float, FloatArray] = {}
        for percentile in percentiles:
            rank = np.maximum(np.floor(min(percentile, 100.0) * count / 100.0 + 0.5).astype(np.int64), 1)
            position = np.searchsorted(cumulative, before + rank, side="left")
            position = np.minimum(position, self.index.size - 1)
            values[percentile] = np.where(present, HIGHEST_EQUIVALENT_US[self.index[position]], np.nan)
        return GroupStats(count, mean, minimum, maximum, values)

    def histogram(self, groups: Sequence[int] | IntArray | None = None) -> LatencyHistogram:
        """One ``LatencyHistogram`` merging ``groups`` (all when None)."""
        if groups is None:
            mask = np.ones(self.groups.size, bool)
        else:
            mask = np.isin(self.groups, np.asarray(groups, np.int64))
        index, counts = self.index[mask], self.counts[mask]
        if index.size == 0:
            return LatencyHistogram()
        dense = np.bincount(index, weights=counts, minlength=COUNTS_LEN).astype(np.int64)
        nonzero = np.flatnonzero(dense)
        return LatencyHistogram.from_sparse(nonzero.astype(np.int64), dense[nonzero])


__all__ = ["GroupStats", "HistogramTable"]
