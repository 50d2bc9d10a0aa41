"""The collector writer: records every request of one process and writes it to Redis, never dropping.

Hot path (``record``): a dict lookup for the (second, request_type, name) cell, an integer increment
and a list append. Latencies are bucketed into HdrHistograms at flush time with numpy, which costs
far less per request than HdrHistogram's per-value Python ``record_value``.

Flushing: a greenlet wakes every ``flush_interval_s``, moves the closed seconds (those before the
current wall-clock second) plus pending marks into one batch, and writes pending entries to Redis in
pipelines (``HSET`` the batch field + ``EXPIRE``). A batch field is ``{writer_id}:{seq}``, so a
rewritten batch replaces itself: retries never double count.

Never loses data (``perfsuite.collector.outbox``): a failed write leaves the entries pending in
memory; past ``max_pending_batches`` the oldest go to an append-only spill file; every entry is also
kept in the writer's journal, so when Redis answers again (having kept its data or not) everything is
written again, in order. ``close()`` flushes everything, then writes the writer record (``closed:
true`` with its totals); what still cannot be written after ``close_timeout_s`` stays in the spill
file for ``replay_spill``. Since entries are written strictly in order, a closed writer record in
Redis proves that every batch of that writer reached Redis. ``put`` carries other entries (the run's
metadata, written by the master's or local process's writer) the same way.

Not thread-safe: use one writer from one OS thread (any number of greenlets).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import gevent.lock

from perfsuite.collector.batch import FORMAT_VERSION, OUTCOME_INDEX, OUTCOMES, encode_batch
from perfsuite.collector.client import RedisLike, redis_client
from perfsuite.collector.histogram import LatencyHistogram
from perfsuite.collector.keys import (
    DEFAULT_PREFIX,
    DEFAULT_RETENTION_S,
    batch_field,
    batches_key,
    check_prefix,
    check_run_id,
    check_writer_id,
    writers_key,
)
from perfsuite.collector.outbox import Outbox
from perfsuite.collector.spill import Entry, journal_path, spill_path
from perfsuite.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_SPILL_DIR = Path(".perfsuite") / "spill"
"""Where writers spill when no directory is given (relative to the working directory)."""

FOLD_AT = 16_384
"""A cell's raw latency list is folded into its histogram at this length (bounds memory)."""

MAX_REASONS_PER_CELL = 100
"""Distinct failure reasons kept per cell; further ones are counted as OTHER_REASONS."""

OTHER_REASONS = "(other reasons)"

YIELD_EVERY_S = 0.001
"""A flush gives the event loop a turn at least this often (seconds) while it encodes cells, so a
request waiting for its answer is not held up by the flush (scheduling lag, open-model lateness)."""

MAX_REASON_CHARS = 300
"""Failure reasons are trimmed to this length."""


def default_writer_id() -> str:
    """``{hostname}-{pid}-{6 hex}``: unique per process and restart."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-._")[:100] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def utc_now_iso() -> str:
    """The current time as ISO-8601 UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Cell:
    """What one writer saw of one (second, request_type, name)."""

    __slots__ = ("clamped", "folded", "latencies_us", "outcomes", "reasons", "response_bytes", "timings")

    def __init__(self) -> None:
        self.outcomes = [0, 0, 0, 0]
        self.latencies_us: list[float] = []
        self.response_bytes = 0
        self.reasons: dict[tuple[int, str], int] | None = None
        self.timings: dict[str, list[float]] | None = None
        self.folded: dict[str, LatencyHistogram] | None = None

    def add_reason(self, outcome_index: int, reason: str) -> None:
        reasons = self.reasons
        if reasons is None:
            reasons = self.reasons = {}
        key = (outcome_index, reason)
        if key not in reasons and len(reasons) >= MAX_REASONS_PER_CELL:
            key = (outcome_index, OTHER_REASONS)
        reasons[key] = reasons.get(key, 0) + 1

    def add_timings(self, timings_us: Mapping[str, float]) -> None:
        timings = self.timings
        if timings is None:
            timings = self.timings = {}
        for metric, value in timings_us.items():
            values = timings.get(metric)
            if values is None:
                values = timings[metric] = []
            values.append(value)
            if len(values) >= FOLD_AT:
                self.fold(metric, values)

    def fold(self, metric: str, values: list[float]) -> None:
        """Move raw values into the metric's histogram (keeps memory bounded under heavy load)."""
        folded = self.folded
        if folded is None:
            folded = self.folded = {}
        histogram = folded.get(metric)
        if histogram is None:
            histogram = folded[metric] = LatencyHistogram()
        histogram.record_many(values)
        values.clear()

    def to_json(self, second: int, request_type: str, name: str) -> tuple[dict[str, Any], int]:
        """The cell as stored in a batch, and how many values were clamped."""
        histograms: dict[str, LatencyHistogram] = dict(self.folded or {})
        series: dict[str, list[float]] = {"rt": self.latencies_us, **(self.timings or {})}
        clamped = 0
        encoded: dict[str, str] = {}
        for metric, values in series.items():
            histogram = histograms.pop(metric, None) or LatencyHistogram()
            histogram.record_many(values)
            clamped += histogram.clamped
            encoded[metric] = histogram.encode()
        for metric, histogram in histograms.items():  # folded metrics with no raw values left
            clamped += histogram.clamped
            encoded[metric] = histogram.encode()
        cell: dict[str, Any] = {"s": second, "t": request_type, "n": name, "c": self.outcomes, "h": encoded}
        if self.response_bytes:
            cell["b"] = self.response_bytes
        if self.reasons:
            cell["r"] = [[OUTCOMES[i], reason, count] for (i, reason), count in self.reasons.items()]
        if clamped:
            cell["x"] = clamped
        return cell, clamped


class CollectorWriter:
    """Records requests, marks and optional raw rows of one process into one run in Redis."""

    def __init__(
        self,
        redis_client_or_url: RedisLike,
        run_id: str,
        writer_id: str | None = None,
        *,
        key_prefix: str = DEFAULT_PREFIX,
        flush_interval_s: float = 1.0,
        max_pending_batches: int = 600,
        spill_dir: Path = DEFAULT_SPILL_DIR,
        retention_s: int = DEFAULT_RETENTION_S,
        close_timeout_s: float = 10.0,
        raw_sample_rate: float = 0.0,
        raw_rows_cap: int = 100_000,
        start: bool = True,
    ) -> None:
        """Open a writer; with ``start`` (default) its flusher greenlet runs at once.

        ``max_pending_batches`` bounds the unsent batches kept in memory while Redis is away (older
        ones go to the spill file under ``spill_dir``). ``raw_sample_rate`` (0-1) keeps that share of
        requests as raw rows, at most ``raw_rows_cap`` per writer. ``retention_s`` is the expiry set
        on the run's keys at every write.
        """
        if flush_interval_s <= 0:
            raise ConfigError(f"collector flush_interval_s={flush_interval_s!r} must be > 0 seconds")
        if max_pending_batches < 0:
            raise ConfigError(f"collector max_pending_batches={max_pending_batches!r} must be >= 0")
        if retention_s <= 0:
            raise ConfigError(f"collector retention_s={retention_s!r} must be > 0 seconds")
        if not 0.0 <= raw_sample_rate <= 1.0:
            raise ConfigError(f"collector raw_sample_rate={raw_sample_rate!r} must be within 0..1")
        if raw_rows_cap < 0:
            raise ConfigError(f"collector raw_rows_cap={raw_rows_cap!r} must be >= 0")
        self.run_id: str = check_run_id(run_id)
        """The run this writer writes into."""
        self.writer_id: str = check_writer_id(writer_id or default_writer_id())
        """This writer's id: the prefix of its batch fields and its field in the writers hash."""
        self._prefix = check_prefix(key_prefix)
        self._client = redis_client(redis_client_or_url)
        self._flush_interval_s = float(flush_interval_s)
        self._retention_s = int(retention_s)
        self._close_timeout_s = float(close_timeout_s)
        self._raw_sample_rate = float(raw_sample_rate)
        self._raw_rows_cap = int(raw_rows_cap)
        self._batches_key = batches_key(self._prefix, self.run_id)
        self._writers_key = writers_key(self._prefix, self.run_id)
        self.spill_path: Path = spill_path(Path(spill_dir), self.run_id, self.writer_id)
        """This writer's spill file (exists only while it holds unsent entries)."""
        self.journal_path: Path = journal_path(Path(spill_dir), self.run_id, self.writer_id)
        """This writer's journal (exists until it closes; kept as the spill file when Redis may have
        lost what it held and still does not answer at close)."""
        self._outbox = Outbox(
            self._client,
            spill_path=self.spill_path,
            journal_path=self.journal_path,
            max_pending=int(max_pending_batches),
            probe=(self._writers_key, self.writer_id),
            name=self.writer_id,
        )

        self._cells: dict[int, dict[tuple[str, str], _Cell]] = {}
        self._current_second: int | None = None
        self._current_cells: dict[tuple[str, str], _Cell] = {}
        self._marks: list[dict[str, Any]] = []
        self._rows: list[list[Any]] = []
        self._rows_taken = 0
        self._seq = 0
        self._span_start = math.inf
        """Earliest start (epoch s) of a request recorded since the previous batch."""
        self._span_end = -math.inf
        """Latest end (epoch s) of a request recorded since the previous batch."""
        self._lock = gevent.lock.RLock()
        self._stop = gevent.event.Event()
        self._flusher: gevent.Greenlet[Any, Any] | None = None
        self._closed = False
        self._close_result = False
        self._started_at = utc_now_iso()
        self._recorded_state = (0, 0)

        self.requests_recorded: int = 0
        """Requests passed to ``record`` (the writer record's ``requests``)."""
        self.batches_created: int = 0
        """Batches built so far (the writer record's ``batches``)."""
        self.clamped: int = 0
        """Latency values clamped to the histogram range so far (flushed cells only)."""
        self.records_after_close: int = 0
        """Requests offered after ``close()``: not recorded (should stay 0)."""

        self._enqueue_writer_record(closed=False)
        if start:
            self.start()

    # ------------------------------------------------------------------ hot path

    def record(
        self,
        request_type: str,
        name: str,
        latency_us: float,
        *,
        outcome: str = "success",
        response_length: int = 0,
        error: object | None = None,
        timings_us: Mapping[str, float] | None = None,
        at_s: float | None = None,
    ) -> None:
        """Record one request that completed at ``at_s`` (epoch seconds, default now).

        ``outcome`` is one of success, rejected, backpressure, failure; ``error`` (any object, kept
        as its trimmed ``str``) is counted as the reason for that outcome; ``timings_us`` adds
        values to other metrics' histograms (e.g. ``{"ttfb": 1200, "server.queue": 80}``).
        """
        index = OUTCOME_INDEX.get(outcome)
        if index is None:
            raise ConfigError(f"request outcome {outcome!r} is invalid: use one of {', '.join(OUTCOMES)}")
        if self._closed:
            self.records_after_close += 1
            return
        now = time.time() if at_s is None else at_s
        if now > self._span_end:  # the span of the requests: exact elapsed time for the rates
            self._span_end = now
        if now - latency_us * 1e-6 < self._span_start:
            self._span_start = now - latency_us * 1e-6
        second = int(now)
        cells = self._current_cells if second == self._current_second else self._cells_for(second)
        key = (request_type, name)
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = _Cell()
        cell.outcomes[index] += 1
        latencies = cell.latencies_us
        latencies.append(latency_us)
        if len(latencies) >= FOLD_AT:
            cell.fold("rt", latencies)
        if response_length:
            cell.response_bytes += response_length
        if error is not None:
            reason = error if isinstance(error, str) else str(error)
            cell.add_reason(index, reason[:MAX_REASON_CHARS])
        if timings_us:
            cell.add_timings(timings_us)
        self.requests_recorded += 1
        if (
            self._raw_sample_rate
            and self._rows_taken < self._raw_rows_cap
            and random.random() < self._raw_sample_rate
        ):
            self._rows_taken += 1
            at = time.time() if at_s is None else at_s
            self._rows.append([at, request_type, name, latency_us, outcome, response_length])

    def _cells_for(self, second: int) -> dict[tuple[str, str], _Cell]:
        cells = self._cells.get(second)
        if cells is None:
            cells = self._cells[second] = {}
        if self._current_second is None or second > self._current_second:
            self._current_second = second
            self._current_cells = cells
        return cells

    def mark(self, kind: str, at_s: float | None = None, **fields: Any) -> None:
        """Record a mark (stage boundary, fault window edge, resource sample...) in the next batch.

        ``fields`` must be JSON-able (other values are stored as their ``str``).
        """
        if not isinstance(kind, str) or not kind:
            raise ConfigError(f"mark kind {kind!r} is invalid: use a non-empty string such as 'stage'")
        self._marks.append({"at": time.time() if at_s is None else at_s, "kind": kind, "fields": fields})

    # ------------------------------------------------------------------ flushing

    def start(self) -> None:
        """Start the flusher greenlet (once)."""
        if self._flusher is None and not self._closed:
            self._flusher = gevent.spawn(self._run_flusher)

    def _run_flusher(self) -> None:
        while not self._stop.wait(self._flush_interval_s):
            try:
                self.flush()
            except Exception:  # keep flushing whatever happened; the data stays pending
                logger.exception("collector writer %s: flush failed", self.writer_id)

    def flush(self, everything: bool = False) -> bool:
        """Batch the closed seconds (all of them with ``everything``) and marks, write what is pending.

        True when nothing is left unsent. Called by the flusher greenlet; call it yourself when the
        writer was created with ``start=False``.
        """
        with self._lock:
            self._enqueue_batch(everything)
            return self._outbox.drain()

    def put(self, entries: Sequence[Entry]) -> None:
        """Write other idempotent entries (the run's metadata: ``perfsuite.collector.runs``) with
        this writer's batches: queued, journaled and rewritten after an outage like them while the
        writer is open; after ``close()``, written at once or kept in the spill file."""
        with self._lock:
            self._outbox.put(entries)

    def _enqueue_batch(self, everything: bool) -> None:
        now_second = int(time.time())
        closed = sorted(s for s in self._cells if everything or s < now_second)
        if not closed and not self._marks and not self._rows:
            return
        cells_json: list[dict[str, Any]] = []
        yielded_at = time.perf_counter()
        for second in closed:
            for (request_type, name), cell in self._cells.pop(second).items():
                cell_json, clamped = cell.to_json(second, request_type, name)
                cells_json.append(cell_json)
                self.clamped += clamped
                # Encoding a busy second's histograms takes milliseconds: let requests run meanwhile
                # (closed seconds get no new records; at close, nothing else runs, so no yield).
                if not everything and time.perf_counter() - yielded_at > YIELD_EVERY_S:
                    gevent.sleep(0)
                    yielded_at = time.perf_counter()
        if self._current_second is not None and self._current_second not in self._cells:
            self._current_second = None
            self._current_cells = {}
        batch: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "writer": self.writer_id,
            "seq": self._seq,
            "written_at": time.time(),
            "cells": cells_json,
        }
        if self._marks:
            batch["marks"], self._marks = self._marks, []
        if self._rows:
            batch["rows"], self._rows = self._rows, []
        if self._span_end >= self._span_start:
            batch["span"] = [round(self._span_start, 6), round(self._span_end, 6)]
            self._span_start, self._span_end = math.inf, -math.inf
        field = batch_field(self.writer_id, self._seq)
        self._outbox.put([Entry(self._batches_key, field, encode_batch(batch), self._retention_s, True)])
        self._seq += 1
        self.batches_created += 1

    def _enqueue_writer_record(self, closed: bool) -> None:
        record = {
            "closed": closed,
            "requests": self.requests_recorded,
            "batches": self.batches_created,
            "spilled": self.batches_spilled,
            "outages": self.redis_outages,
            "rewritten": self.entries_rewritten,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": self._started_at,
        }
        if closed:
            record["closed_at"] = utc_now_iso()
        value = encode_json(record)
        self._outbox.put([Entry(self._writers_key, self.writer_id, value, self._retention_s, False)])
        self._recorded_state = self._delivery_state()

    def _delivery_state(self) -> tuple[int, int]:
        """What the writer record says of the delivery: (outages, entries rewritten)."""
        return self.redis_outages, self.entries_rewritten

    @property
    def pending(self) -> int:
        """Entries (batches, writer records, metadata) not yet in Redis: in memory plus spilled."""
        return self._outbox.pending

    @property
    def batches_written(self) -> int:
        """Batches confirmed written to Redis."""
        return self._outbox.batches_written

    @property
    def batches_spilled(self) -> int:
        """Batches that went through the spill file (written later or still there)."""
        return self._outbox.batches_spilled

    @property
    def redis_outages(self) -> int:
        """Times Redis stopped answering, or answered having lost this writer's entries (the writer
        record's ``outages``)."""
        return self._outbox.outages

    @property
    def entries_rewritten(self) -> int:
        """Entries written again from the journal after outages (the writer record's ``rewritten``)."""
        return self._outbox.entries_rewritten

    @property
    def closed(self) -> bool:
        """True once ``close()`` ran."""
        return self._closed

    def close(self, timeout_s: float | None = None) -> bool:
        """Final flush: every cell and mark, then the closed writer record. Idempotent.

        Retries for up to ``timeout_s`` (default: the constructor's ``close_timeout_s``) while Redis
        does not answer; whatever is still unsent then goes to the spill file (see ``replay_spill``):
        the whole journal when Redis failed during the run. The journal is deleted when everything
        is in Redis. True when everything is in Redis.
        """
        if self._closed:
            return self._close_result
        timeout = self._close_timeout_s if timeout_s is None else float(timeout_s)
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=timeout)
            if not self._flusher.dead:
                self._flusher.kill(block=True, timeout=1.0)
        with self._lock:
            self._enqueue_batch(everything=True)
            self._closed = True
            self._enqueue_writer_record(closed=True)
            done = self._drain_until(deadline)
            if self._recorded_state != self._delivery_state():  # an outage, a rewrite during close
                self._enqueue_writer_record(closed=True)  # the record again, saying so
                done = done and self._drain_until(deadline)
            done = self._outbox.finish()
            if not done:
                logger.warning(
                    "collector writer %s: Redis unreachable at close; %d entries kept in %s "
                    "(write them later with perfsuite.collector.replay_spill)",
                    self.writer_id,
                    self.pending,
                    self.spill_path,
                )
        self._close_result = done
        return done

    def _drain_until(self, deadline: float) -> bool:
        """Drain, retrying while Redis fails until ``deadline`` (monotonic seconds)."""
        done = self._outbox.drain()
        while not done and time.monotonic() < deadline:
            gevent.sleep(min(0.2, max(deadline - time.monotonic(), 0.0)))
            done = self._outbox.drain()
        return done

    def __enter__(self) -> CollectorWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"CollectorWriter(run_id={self.run_id!r}, writer_id={self.writer_id!r}, "
            f"requests={self.requests_recorded}, pending={self.pending}, closed={self._closed})"
        )


def encode_json(value: Any) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(value, separators=(",", ":"), default=str).encode()


__all__ = ["DEFAULT_SPILL_DIR", "CollectorWriter", "default_writer_id", "utc_now_iso"]
