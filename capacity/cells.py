"""Figures of a stretch of a run: the requests recorded in whole seconds from ``start_s`` to ``end_s``.

The collector keeps one cell per (second, endpoint) with outcome counts and an HDR histogram; a
stretch adds up the cells of the whole seconds inside it (a second half in and half out belongs to
neither side) and merges their histograms, so every figure of a step, an outage or a rolling
recovery window is computed the same way, here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from perfsuite.collector import RunData
from perfsuite.collector.batch import success_rate
from perfsuite.collector.histogram_table import HistogramTable


@dataclass(frozen=True, slots=True)
class Stretch:
    """The requests recorded in the whole seconds of ``[start_s, end_s)`` (epoch seconds)."""

    start_s: float
    end_s: float
    seconds: int
    """Whole seconds counted (0: the stretch holds none)."""
    requests: int = 0
    success: int = 0
    rejected: int = 0
    backpressure: int = 0
    failure: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None

    @property
    def success_rate(self) -> float | None:
        """Share answered as intended (:func:`perfsuite.collector.batch.success_rate`)."""
        return success_rate(self.success, self.rejected, self.requests)

    @property
    def throughput_rps(self) -> float:
        """Requests per second (every outcome)."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def good_rps(self) -> float:
        """Requests answered as intended per second."""
        return (self.success + self.rejected) / self.seconds if self.seconds else 0.0


class RunCells:
    """A run's cells indexed by second, for :meth:`stretch`."""

    def __init__(self, data: RunData) -> None:
        cells = data.cells
        self._seconds = cells["second"].to_numpy(np.int64) if len(cells) else np.empty(0, np.int64)
        self._counts = {
            outcome: cells[outcome].to_numpy(np.int64) if len(cells) else np.empty(0, np.int64)
            for outcome in ("success", "rejected", "backpressure", "failure")
        }
        self._rt: HistogramTable = data.histograms.get("rt") or HistogramTable.empty(len(cells))

    @property
    def first_s(self) -> int | None:
        """Epoch second of the first cell."""
        return int(self._seconds.min()) if self._seconds.size else None

    @property
    def last_s(self) -> int | None:
        """Epoch second of the last cell."""
        return int(self._seconds.max()) if self._seconds.size else None

    def stretch(self, start_s: float, end_s: float) -> Stretch:
        """Figures of the whole seconds in ``[start_s, end_s)``."""
        first, stop = math.ceil(start_s), math.floor(end_s)
        seconds = max(0, stop - first)
        if not seconds:
            return Stretch(start_s, end_s, 0)
        selected = np.flatnonzero((self._seconds >= first) & (self._seconds < stop))
        counts = {outcome: int(values[selected].sum()) for outcome, values in self._counts.items()}
        requests = sum(counts.values())
        p50 = p95 = p99 = None
        if requests:
            histogram = self._rt.histogram(selected)
            if histogram.count:
                values = histogram.percentiles_us((50.0, 95.0, 99.0))
                p50, p95, p99 = (values[p] / 1000 for p in (50.0, 95.0, 99.0))
        return Stretch(start_s, end_s, seconds, requests, **counts, p50_ms=p50, p95_ms=p95, p99_ms=p99)


__all__ = ["RunCells", "Stretch"]
