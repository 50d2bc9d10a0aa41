"""One run followed live in the collector's Redis: the batches read once each, folded as they come.

Every Locust process's writer stores a batch per flush (``{writer}:{seq}``, written strictly in seq
order, :mod:`perfsuite.collector.writer`), so :meth:`LiveRun.refresh` asks each registered writer
for its next seq numbers only (one pipelined ``HMGET`` per refresh) and never reads a batch twice.
A batch rewritten after an outage of the collector's Redis has the same field and content, so it
is not counted again. Once every writer closed (or when asked), a full sweep (``HKEYS``) makes sure
nothing was skipped: the totals then equal what :class:`~perfsuite.collector.CollectorReader` reads
for the report, exactly.

Folded per (request_type, name): the outcome counts and the ``rt`` histogram of the whole run
(dense HDR counts, the collector's layout), and per second for a recent horizon (the windowed
figures and the closed model's steady stage); marks go to :class:`~perfsuite.metrics.progress.RunProgress`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perfsuite.arrival import UNCORRECTED_METRIC
from perfsuite.collector.batch import OUTCOMES, decode_batch
from perfsuite.collector.client import RedisLike, redis_client
from perfsuite.collector.histogram import (
    COUNTS_LEN,
    MEDIAN_EQUIVALENT_US,
    IntArray,
    LatencyHistogram,
    decode_many,
)
from perfsuite.collector.histogram_table import GroupStats, HistogramTable
from perfsuite.collector.keys import batch_field, batches_key, meta_key, parse_batch_field, writers_key
from perfsuite.correction import Correction
from perfsuite.metrics.progress import RunProgress
from perfsuite.metrics.recent import Key, RecentSeconds, Sparse

logger = logging.getLogger(__name__)

QUANTILES: tuple[float, ...] = (50.0, 95.0, 99.0)
"""Percentiles of every latency figure (the quantiles 0.5, 0.95, 0.99)."""

MAX_ENDPOINTS = 100
"""Distinct (request_type, name) kept apart; further ones add up under name :data:`OTHER_NAME`."""
OTHER_NAME = "(other)"

FETCH_AHEAD = 32
"""Batch fields asked of each writer per round trip."""

SILENT_WRITER_S = 3.0
"""A writer that brought no batch for this long (seconds) no longer holds back the recent window's
end (a lost worker)."""

META_FIELDS: tuple[str, ...] = ("status", "test_type", "scenario", "host", "started_at")
"""The run's metadata fields read at each refresh (not its configuration snapshot)."""


def _empty() -> IntArray:
    return np.zeros(COUNTS_LEN, np.int64)


@dataclass(slots=True)
class EndpointTotals:
    """One (request_type, name) over the whole run."""

    outcomes: IntArray = field(default_factory=lambda: np.zeros(len(OUTCOMES), np.int64))
    """Counts in :data:`~perfsuite.collector.OUTCOMES` order."""
    rt: IntArray = field(default_factory=_empty)
    """Dense HDR counts of the latency (``rt``)."""
    sum_us: float = 0.0
    """Its values at their HDR bucket middles, added up (the histogram's ``_sum``, HDR's mean)."""


@dataclass(slots=True)
class WriterState:
    """What was read of one writer."""

    next_seq: int = 0
    batches: int = 0
    requests: int = 0
    last_second: int | None = None
    """Newest second of its cells."""
    seen_at: float = 0.0
    """When a batch of it was last read (this process's clock)."""
    closed: bool = False
    declared_batches: int = 0


class LiveRun:
    """One run's figures so far (see the module docstring). Not thread-safe: one caller at a time."""

    def __init__(
        self,
        client: RedisLike,
        key_prefix: str,
        run_id: str,
        *,
        window_s: int = 10,
        correction: Correction | None = None,
        max_cpu_percent: float = 90.0,
        max_lag_ms: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.run_id = run_id
        self.window_s = int(window_s)
        self.correction = correction or Correction.none()
        self._client = redis_client(client)
        self._meta_key = meta_key(key_prefix, run_id)
        self._batches_key = batches_key(key_prefix, run_id)
        self._writers_key = writers_key(key_prefix, run_id)
        self._clock = clock
        self.meta: dict[str, str] = {}
        self.endpoints: dict[Key, EndpointTotals] = {}
        self.writers: dict[str, WriterState] = {}
        self.progress = RunProgress(max_cpu_percent=max_cpu_percent, max_lag_ms=max_lag_ms)
        self.uncorrected: IntArray | None = None
        """Open model: dense counts of the latency from each request's actual send."""
        self.steady: IntArray = _empty()
        """Closed model: every request before the burst (the report's corrected scope)."""
        self.bad_batches = 0
        self.version = 0
        """Grows with every batch folded (caches key on it)."""
        self._recent = RecentSeconds(self.window_s + 60)  # the window, and a late burst mark's margin
        self._seen: set[str] = set()
        self._corrected: tuple[int, Corrected] | None = None
        self._span = (COUNTS_LEN, 0)
        """The bucket indexes any latency landed in so far: [first, last + 1)."""

    # ---------------------------------------------------------------- reading

    def refresh(self, sweep: bool = False) -> int:
        """Read what is new (with ``sweep``, every batch field is checked); batches folded."""
        pipe = self._client.pipeline(transaction=False)
        pipe.hmget(self._meta_key, META_FIELDS)
        pipe.hgetall(self._writers_key)
        raw_meta, raw_records = pipe.execute()
        self.meta = {name: _text(v) for name, v in zip(META_FIELDS, raw_meta, strict=True) if v is not None}
        for writer_id, value in raw_records.items():
            state = self.writers.setdefault(_text(writer_id), WriterState())
            try:
                record = json.loads(value)
            except ValueError:
                continue
            state.closed = bool(record.get("closed"))
            state.declared_batches = int(record.get("batches") or 0)
        folded = self._fetch_ahead()
        missing = any(w.closed and w.batches < w.declared_batches for w in self.writers.values())
        if sweep or missing:
            folded += self._sweep()
        return folded

    def _fetch_ahead(self) -> int:
        folded = 0
        pending = list(self.writers)
        while pending:
            pipe = self._client.pipeline(transaction=False)
            asked: list[tuple[str, list[str]]] = []
            for writer_id in pending:
                start = self.writers[writer_id].next_seq
                names = [batch_field(writer_id, seq) for seq in range(start, start + FETCH_AHEAD)]
                pipe.hmget(self._batches_key, names)
                asked.append((writer_id, names))
            pending = []
            for (writer_id, names), blobs in zip(asked, pipe.execute(), strict=True):
                got = 0
                for name, blob in zip(names, blobs, strict=True):
                    if blob is None:  # written in seq order: nothing after a gap yet
                        break
                    folded += self._take(name, blob)
                    got += 1
                if got == len(names):
                    pending.append(writer_id)
        return folded

    def _sweep(self) -> int:
        names = sorted(
            name for name in map(_text, self._client.hkeys(self._batches_key)) if name not in self._seen
        )
        folded = 0
        for start in range(0, len(names), 256):
            chunk = names[start : start + 256]
            blobs: list[bytes | None] = self._client.hmget(self._batches_key, chunk)  # type: ignore[assignment]
            for name, blob in zip(chunk, blobs, strict=True):
                if blob is not None:
                    folded += self._take(name, blob)
        return folded

    def _take(self, name: str, blob: bytes) -> int:
        if name in self._seen:
            return 0
        self._seen.add(name)
        writer_id, seq = parse_batch_field(name)
        state = self.writers.setdefault(writer_id, WriterState())
        state.next_seq = max(state.next_seq, seq + 1)
        state.batches += 1
        state.seen_at = self._clock()
        try:
            batch = decode_batch(blob)
            self._fold_cells(state, batch.get("cells") or [])
        except (ValueError, KeyError, TypeError) as exc:
            self.bad_batches += 1
            logger.warning("live metrics: batch %s of run %s is unreadable: %s", name, self.run_id, exc)
            return 0
        for mark in batch.get("marks") or []:
            burst = self.progress.burst_second
            self.progress.add(writer_id, mark)
            if self.progress.burst_second is not None and self.progress.burst_second != burst:
                self._leave_burst_out(self.progress.burst_second)
        self.version += 1
        return 1

    # ---------------------------------------------------------------- folding

    def _endpoint(self, request_type: str, name: str) -> tuple[Key, EndpointTotals]:
        key = (request_type, name)
        totals = self.endpoints.get(key)
        if totals is None:
            if len(self.endpoints) >= MAX_ENDPOINTS:
                key = (request_type, OTHER_NAME)
                totals = self.endpoints.get(key)
            if totals is None:
                totals = self.endpoints[key] = EndpointTotals()
        return key, totals

    def _fold_cells(self, writer: WriterState, cells: list[dict[str, Any]]) -> None:
        rt, rt_of, uncorrected, uncorrected_of = [], [], [], []
        for position, cell in enumerate(cells):
            histograms = cell.get("h") or {}
            if "rt" in histograms:
                rt.append(histograms["rt"])
                rt_of.append(position)
            if UNCORRECTED_METRIC in histograms:
                uncorrected.append(histograms[UNCORRECTED_METRIC])
                uncorrected_of.append(position)
        decoded_rt = _per_item(rt, rt_of)
        if uncorrected:
            if self.uncorrected is None:
                self.uncorrected = _empty()
            for index, counts in _per_item(uncorrected, uncorrected_of).values():
                self.uncorrected[index] += counts
        burst = self.progress.burst_second
        newest = self._end_second_hint()
        for position, cell in enumerate(cells):
            second = int(cell["s"])
            key, totals = self._endpoint(str(cell["t"]), str(cell["n"]))
            counts = np.asarray(cell["c"], np.int64)
            totals.outcomes += counts
            writer.requests += int(counts.sum())
            writer.last_second = second if writer.last_second is None else max(writer.last_second, second)
            sparse = decoded_rt.get(position)
            if sparse is None:
                continue
            index, values = sparse
            self._span = (min(self._span[0], int(index[0])), max(self._span[1], int(index[-1]) + 1))
            totals.rt[index] += values
            totals.sum_us += float(np.dot(values, MEDIAN_EQUIVALENT_US[index]))
            in_steady = burst is None or second < burst
            if in_steady:
                self.steady[index] += values
            self._recent.add(second, key, sparse, steady=in_steady, newest=newest)
        self._recent.prune(self._end_second_hint())

    def _leave_burst_out(self, burst: int) -> None:
        """The burst began at ``burst``: its seconds and later leave the steady stage (those read
        before its mark arrived)."""
        for index, values in self._recent.take_steady_from(burst):
            self.steady[index] -= values

    def _end_second_hint(self) -> int:
        seconds = [w.last_second for w in self.writers.values() if w.last_second is not None]
        return max(seconds) if seconds else 0

    # ---------------------------------------------------------------- figures

    @property
    def running(self) -> bool:
        """The run's metadata says it is still running."""
        return self.meta.get("status", "running") == "running"

    @property
    def complete(self) -> bool:
        """The run ended and every writer closed with everything it declared read."""
        return (
            not self.running
            and bool(self.writers)
            and all(w.closed and w.batches >= w.declared_batches for w in self.writers.values())
        )

    @property
    def requests(self) -> int:
        """Requests read so far (every endpoint, every outcome)."""
        return int(sum(int(totals.outcomes.sum()) for totals in self.endpoints.values()))

    def end_second(self) -> int | None:
        """The last second of the recent window: the newest second every writer that is still sending
        has flushed (so the window is not cut short by a writer's flush still to come)."""
        now = self._clock()
        sending = [
            w.last_second
            for w in self.writers.values()
            if w.last_second is not None and not w.closed and now - w.seen_at < SILENT_WRITER_S
        ]
        if sending:
            return min(sending)
        seconds = [w.last_second for w in self.writers.values() if w.last_second is not None]
        return max(seconds) if seconds else None

    def run_stats(self) -> tuple[list[Key], GroupStats]:
        """The endpoints (sorted) and their whole-run statistics, with one more group for every
        request together (the last)."""
        keys = sorted(self.endpoints)
        low, high = self._span
        rows = np.zeros((len(keys) + 1, max(high - low, 0)), np.int64)
        for group, key in enumerate(keys):
            rows[group] = self.endpoints[key].rt[low:high]
        rows[-1] = rows[:-1].sum(axis=0)
        return keys, _table(rows, low).stats(QUANTILES)

    def window_stats(self, keys: list[Key]) -> GroupStats:
        """Statistics over the recent window (``window_s`` seconds up to :meth:`end_second`) of each of
        ``keys``, then every request together (the last group)."""
        low, high = self._span
        rows = self._recent.window(keys, self.end_second(), self.window_s, low, high)
        return _table(rows, low).stats(QUANTILES)

    def corrected(self) -> Corrected | None:
        """The latency corrected for coordinated omission as the report does (None: the test does not
        correct), computed once per new data."""
        if self.correction.kind == "none":
            return None
        if self._corrected is None or self._corrected[0] != self.version:
            dense = self.steady if self.correction.kind == "hdr-expected-interval" else self.total_rt()
            measured = LatencyHistogram.from_sparse(*_sparse(dense))
            corrected, interval_ms = self.correction.apply(measured)
            uncorrected = None
            if self.uncorrected is not None:
                uncorrected = LatencyHistogram.from_sparse(*_sparse(self.uncorrected)).percentiles_us(
                    QUANTILES
                )
            figures = Corrected(
                corrected.percentiles_us(QUANTILES) if corrected.count else {},
                measured.percentiles_us(QUANTILES) if measured.count else {},
                interval_ms,
                uncorrected,
            )
            self._corrected = (self.version, figures)
        return self._corrected[1]

    def total_rt(self) -> IntArray:
        """Dense counts of every request's latency."""
        total = _empty()
        for totals in self.endpoints.values():
            total += totals.rt
        return total


@dataclass(frozen=True, slots=True)
class Corrected:
    """Coordinated-omission-corrected percentiles (us, by percentile) and what they came from."""

    percentiles_us: dict[float, int]
    measured_us: dict[float, int]
    """The same requests as measured (a corrected figure is never reported below it)."""
    expected_interval_ms: float | None
    uncorrected_us: dict[float, int] | None
    """Open model: from each request's actual send."""


def _sparse(dense: IntArray) -> Sparse:
    nonzero = np.flatnonzero(dense)
    return nonzero.astype(np.int64), dense[nonzero]


def _table(rows: IntArray, low: int) -> HistogramTable:
    """A table of one group per row of dense counts of the buckets from ``low`` on (its entries come
    out sorted and unique)."""
    width = rows.shape[1]
    if not width:
        return HistogramTable.empty(rows.shape[0])
    flat = rows.ravel()
    key = np.flatnonzero(flat)
    return HistogramTable(key // width, key % width + low, flat[key], rows.shape[0])


def _per_item(encoded: list[str], items: list[int]) -> dict[int, Sparse]:
    """``{item: (indexes, counts)}`` of encoded histograms that belong to ``items`` (one each)."""
    if not encoded:
        return {}
    which, index, counts = decode_many(encoded)
    starts = np.searchsorted(which, np.arange(len(encoded)), side="left")
    ends = np.searchsorted(which, np.arange(len(encoded)), side="right")
    return {
        item: (index[start:end], counts[start:end])
        for item, start, end in zip(items, starts.tolist(), ends.tolist(), strict=True)
        if end > start
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


__all__ = [
    "MAX_ENDPOINTS",
    "OTHER_NAME",
    "QUANTILES",
    "Corrected",
    "EndpointTotals",
    "LiveRun",
    "WriterState",
]
