"""The last seconds of a followed run, one histogram per (second, endpoint): what the recent window's
rate and percentiles add up, and the pieces of the closed model's steady stage that a burst mark
arriving after its cells takes out again."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from perfsuite.collector.histogram import IntArray

Key = tuple[str, str]
"""(request_type, name)."""

Sparse = tuple[IntArray, IntArray]
"""A histogram's non-empty buckets: (indexes ascending, counts)."""


@dataclass(slots=True)
class _Second:
    entries: dict[Key, list[Sparse]] = field(default_factory=dict)
    steady: list[Sparse] = field(default_factory=list)
    """The pieces of this second counted in the steady stage."""


class RecentSeconds:
    """Per-second histograms by endpoint for the last ``horizon_s`` seconds."""

    def __init__(self, horizon_s: int) -> None:
        self.horizon_s = int(horizon_s)
        self._seconds: dict[int, _Second] = {}

    def add(self, second: int, key: Key, piece: Sparse, *, steady: bool, newest: int) -> None:
        """Keep ``piece`` of ``key`` at ``second`` (``steady``: it was counted in the steady stage);
        a second older than the horizon before ``newest`` is not kept."""
        if second < newest - self.horizon_s:
            return
        kept = self._seconds.setdefault(second, _Second())
        kept.entries.setdefault(key, []).append(piece)
        if steady:
            kept.steady.append(piece)

    def take_steady_from(self, first: int) -> Iterator[Sparse]:
        """The steady-stage pieces of ``first`` and later seconds, forgotten as steady (a burst began)."""
        for second, kept in self._seconds.items():
            if second >= first:
                yield from kept.steady
                kept.steady = []

    def prune(self, newest: int) -> None:
        """Forget the seconds older than the horizon before ``newest``."""
        for second in [s for s in self._seconds if s < newest - self.horizon_s]:
            del self._seconds[second]

    def window(self, keys: Sequence[Key], end: int | None, window_s: int, low: int, high: int) -> IntArray:
        """Dense counts of the buckets ``low`` to ``high - 1`` (every piece lies within) over the
        ``window_s`` seconds up to ``end``: one row per key, and a last row for every request together
        (keys not listed count in that last row only)."""
        rows = np.zeros((len(keys) + 1, max(high - low, 0)), np.int64)
        if end is None or high <= low:
            return rows
        position = {key: row for row, key in enumerate(keys)}
        for second in range(end - window_s + 1, end + 1):
            kept = self._seconds.get(second)
            for key, pieces in kept.entries.items() if kept is not None else ():
                row = rows[position.get(key, len(keys))]
                for index, values in pieces:
                    row[index - low] += values
        if len(keys):
            rows[-1] += rows[:-1].sum(axis=0)
        return rows


__all__ = ["Key", "RecentSeconds", "Sparse"]
