"""Reading runs back: run listing, metadata, and a run's data as pandas frames.

``CollectorReader.load(run_id)`` reads every batch of a run once, adds up cells that several batches
or writers hold for the same (second, request_type, name), and returns a ``RunData`` whose methods
compute summaries, time series, merged histograms, failure reasons and marks.

Completeness: a run is ``complete`` when every writer that left data (or registered) wrote its
closed record and the batches and requests found in Redis equal the totals it declared. Since each
writer writes strictly in order and its closed record last, this proves nothing was lost in transit.

Without Redis: ``load_spilled`` reads a run from the spill files and journals its writers left on
local disk (Redis was away when they closed), applying their entries in order as Redis would.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perfsuite.collector.batch import ANSWERED_AS_INTENDED, OUTCOMES, decode_batch
from perfsuite.collector.client import RedisLike, redis_client
from perfsuite.collector.histogram import IntArray, LatencyHistogram, decode_many
from perfsuite.collector.histogram_table import GroupStats, HistogramTable
from perfsuite.collector.keys import (
    DEFAULT_PREFIX,
    batches_key,
    check_prefix,
    check_run_id,
    meta_key,
    parse_batch_field,
    runs_key,
    writers_key,
)
from perfsuite.collector.spill import read_entries, run_files
from perfsuite.errors import ConfigError

SUMMARY_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0)
TIMESERIES_PERCENTILES: tuple[float, ...] = (50.0, 95.0, 99.0)
TOTAL_NAME = "Aggregated"
"""``name`` of the row that ``RunData.total()`` returns (request_type is empty), as in Locust."""

FROM_REDIS = "redis"
FROM_SPILL = "spill files"
"""Values of ``RunData.source``."""

DECODE_CHUNK = 4096
"""Histograms decoded per vectorised pass while a run is read (bounds the transient memory)."""

_COUNT_COLUMNS = [*OUTCOMES, "count"]
_ENDPOINT = ["request_type", "name"]


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _stats_columns(stats: GroupStats, prefix: str = "") -> dict[str, Any]:
    columns: dict[str, Any] = {
        f"{prefix}avg_ms": stats.mean_us / 1000.0,
        f"{prefix}min_ms": stats.min_us / 1000.0,
    }
    for percentile, values in stats.percentiles_us.items():
        columns[f"{prefix}p{percentile:g}_ms"] = values / 1000.0
    columns[f"{prefix}max_ms"] = stats.max_us / 1000.0
    return columns


@dataclass(frozen=True)
class RunData:
    """One run's data as read from Redis. Frames returned by methods are fresh copies."""

    run_id: str
    meta: Mapping[str, str]
    """The run's metadata hash (strings)."""
    cells: pd.DataFrame
    """One row per (second, request_type, name): outcome counts, count, bytes, clamped; row i is cell i."""
    histograms: Mapping[str, HistogramTable]
    """Per metric ("rt", "ttfb", ...): histograms grouped by cell (row of ``cells``)."""
    reasons: pd.DataFrame
    """Rows (cell, outcome, reason, count)."""
    mark_rows: pd.DataFrame
    """Marks as returned by ``marks()``."""
    raw_rows: pd.DataFrame
    """Sampled raw requests as returned by ``rows()``."""
    writer_rows: pd.DataFrame
    """Writers as returned by ``writers()``."""
    problems: tuple[str, ...] = field(default=())
    """Why the run is not complete (empty when it is)."""
    resolution_s: int = 1
    """Seconds per cell (``second`` is the start of each interval)."""
    source: str = FROM_REDIS
    """Where the run was read from: ``FROM_REDIS`` or ``FROM_SPILL`` (local files; Redis was away)."""
    entries_from_files: int = 0
    """Entries read from spill files and journals (``FROM_SPILL`` only)."""
    span_s: float | None = None
    """Exact seconds from the first request's start to the last one's end (None for runs recorded
    before writers kept it: rates then fall back to whole seconds spanned)."""

    # ---------------------------------------------------------------- shape of the run

    @property
    def first_second(self) -> int | None:
        """Epoch second of the first recorded request (None without data)."""
        return int(self.cells["second"].min()) if len(self.cells) else None

    @property
    def last_second(self) -> int | None:
        """Epoch second of the last recorded request (None without data)."""
        return int(self.cells["second"].max()) if len(self.cells) else None

    @property
    def elapsed_s(self) -> float:
        """Seconds the requests spanned: exact when the writers recorded it, else whole seconds."""
        if self.span_s is not None and self.span_s > 0:
            return self.span_s
        return float(self.duration_s)

    @property
    def duration_s(self) -> int:
        """Seconds spanned by the data (first to last recorded interval, inclusive); 0 without data."""
        if self.first_second is None or self.last_second is None:
            return 0
        return self.last_second - self.first_second + self.resolution_s

    @property
    def metrics(self) -> tuple[str, ...]:
        """Histogram metrics present in the run ("rt" always first when present)."""
        return tuple(sorted(self.histograms, key=lambda m: (m != "rt", m)))

    @property
    def requests(self) -> int:
        """Requests recorded in the data."""
        return int(self.cells["count"].sum()) if len(self.cells) else 0

    @property
    def clamped(self) -> int:
        """Latency values outside 0 us .. one hour, recorded at the limit."""
        return int(self.cells["clamped"].sum()) if len(self.cells) else 0

    @property
    def complete(self) -> bool:
        """Every writer closed and what it declared (batches, requests) equals what was found."""
        return not self.problems

    @property
    def redis_outages(self) -> int:
        """Times the writers found the collector's Redis unreachable, or emptied, during the run
        (what their records declare)."""
        return int(self.writer_rows["outages"].sum()) if len(self.writer_rows) else 0

    @property
    def entries_rewritten(self) -> int:
        """Entries the writers wrote again from their journals after an outage (their records)."""
        return int(self.writer_rows["rewritten"].sum()) if len(self.writer_rows) else 0

    @property
    def locust_total_requests(self) -> int | None:
        """Locust's own request total as the master/local process stored it (None if absent)."""
        value = self.meta.get("locust_total_requests")
        return int(value) if value not in (None, "") else None

    @property
    def locust_total_failures(self) -> int | None:
        """Locust's own failure total as the master/local process stored it (None if absent)."""
        value = self.meta.get("locust_total_failures")
        return int(value) if value not in (None, "") else None

    @property
    def matches_locust(self) -> bool | None:
        """Whether the collector's total equals Locust's own total; None when Locust's is unknown or
        was reset mid-run (web UI "reset stats")."""
        locust_total = self.locust_total_requests
        if locust_total is None or self.meta.get("locust_stats_reset"):
            return None
        return locust_total == self.requests

    # ---------------------------------------------------------------- frames

    def _endpoint_groups(self) -> tuple[pd.DataFrame, IntArray]:
        grouped = self.cells.groupby(_ENDPOINT, sort=True)
        endpoints = grouped.size().index.to_frame(index=False)
        return endpoints, np.asarray(grouped.ngroup(), dtype=np.int64)

    def _metric(self, metric: str) -> HistogramTable:
        table = self.histograms.get(metric)
        if table is None:
            if not len(self.cells):
                return HistogramTable.empty(0)
            known = ", ".join(self.metrics) or "none"
            raise ConfigError(
                f"metric {metric!r} not recorded in run {self.run_id}: recorded metrics are {known}"
            )
        return table

    def summary(self) -> pd.DataFrame:
        """Per (request_type, name): count, success, rejected, backpressure, failure, success_rate
        ((success + rejected) / count: a rejection is an expected answer), failure_rate (fractions
        0-1), avg/min/
        p50/p90/p95/p99/max in ms, rps (count over the run's data span), bytes."""
        if not len(self.cells):
            return self._empty_summary()
        endpoints, group_of_cell = self._endpoint_groups()
        return self._summarise(endpoints, group_of_cell, len(endpoints))

    def total(self) -> pd.DataFrame:
        """One row like ``summary()``'s for all requests (request_type "", name "Aggregated")."""
        endpoints = pd.DataFrame({"request_type": [""], "name": [TOTAL_NAME]})
        if not len(self.cells):
            empty = self._empty_summary()
            row: dict[str, Any] = dict.fromkeys(empty.columns, 0.0)
            row.update({"request_type": "", "name": TOTAL_NAME, "count": 0, **dict.fromkeys(OUTCOMES, 0)})
            return pd.DataFrame([row], columns=empty.columns)
        return self._summarise(endpoints, np.zeros(len(self.cells), np.int64), 1)

    def _summarise(self, endpoints: pd.DataFrame, group_of_cell: IntArray, n_groups: int) -> pd.DataFrame:
        frame = endpoints.copy()
        sums = self.cells[[*_COUNT_COLUMNS, "bytes"]].groupby(group_of_cell).sum().reindex(range(n_groups))
        for column in _COUNT_COLUMNS:
            frame[column] = sums[column].fillna(0).astype(np.int64).to_numpy()
        counts = frame["count"].to_numpy(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            answered = sum(frame[outcome] for outcome in ANSWERED_AS_INTENDED)  # batch.success_rate
            frame["success_rate"] = np.where(counts > 0, answered / counts, np.nan)
            frame["failure_rate"] = np.where(counts > 0, frame["failure"] / counts, np.nan)
        stats = self._metric("rt").regroup(group_of_cell, n_groups).stats(SUMMARY_PERCENTILES)
        for column, values in _stats_columns(stats).items():
            frame[column] = values
        frame["rps"] = counts / (self.elapsed_s if self.span_s else max(self.duration_s, 1))
        frame["bytes"] = sums["bytes"].fillna(0).astype(np.int64).to_numpy()
        return frame.reset_index(drop=True)

    def _empty_summary(self) -> pd.DataFrame:
        columns = [*_ENDPOINT, *_COUNT_COLUMNS, "success_rate", "failure_rate", "avg_ms", "min_ms"]
        columns += [f"p{p:g}_ms" for p in SUMMARY_PERCENTILES] + ["max_ms", "rps", "bytes"]
        return pd.DataFrame(columns=columns)

    def timeseries(self, freq_s: int | None = None, *, per_endpoint: bool = False) -> pd.DataFrame:
        """One row per ``freq_s`` interval (default: the loaded resolution, 1 s) from the first to the
        last second with data (empty intervals included with count 0), per endpoint when ``per_endpoint``.

        Intervals start at epoch multiples of ``freq_s``. Columns: second (interval start, epoch),
        time (UTC), elapsed_s (from the first interval's start),
        [request_type, name], count, success, rejected, backpressure, failure, rps, avg/p50/p95/p99/
        max in ms.
        """
        if freq_s is None:
            freq_s = self.resolution_s
        if int(freq_s) != freq_s or freq_s < 1 or freq_s % self.resolution_s:
            raise ConfigError(
                f"timeseries freq_s={freq_s!r} is invalid: use a whole number of seconds, a multiple of "
                f"the run's loaded resolution ({self.resolution_s} s)"
            )
        freq_s = int(freq_s)
        first, last = self.first_second, self.last_second
        key_columns = ["second", *_ENDPOINT] if per_endpoint else ["second"]
        if first is None or last is None:
            columns = [*key_columns, "time", "elapsed_s", *_COUNT_COLUMNS, "rps", "avg_ms", "max_ms"]
            return pd.DataFrame(columns=columns + [f"p{p:g}_ms" for p in TIMESERIES_PERCENTILES])
        first -= first % freq_s  # intervals aligned on epoch multiples of freq_s, as load(resolution_s)
        n_intervals = (last - first) // freq_s + 1
        interval_of_cell = (self.cells["second"].to_numpy(np.int64) - first) // freq_s
        if per_endpoint:
            endpoints, endpoint_of_cell = self._endpoint_groups()
            n_endpoints = len(endpoints)
            group_of_cell = interval_of_cell * n_endpoints + endpoint_of_cell
            n_groups = n_intervals * n_endpoints
            frame = pd.DataFrame(
                {
                    "second": np.repeat(first + np.arange(n_intervals) * freq_s, n_endpoints),
                    "request_type": np.tile(endpoints["request_type"].to_numpy(), n_intervals),
                    "name": np.tile(endpoints["name"].to_numpy(), n_intervals),
                }
            )
        else:
            group_of_cell, n_groups = interval_of_cell, n_intervals
            frame = pd.DataFrame({"second": first + np.arange(n_intervals) * freq_s})
        frame.insert(1, "time", pd.to_datetime(frame["second"], unit="s", utc=True))
        frame.insert(2, "elapsed_s", frame["second"] - first)
        sums = self.cells[_COUNT_COLUMNS].groupby(group_of_cell).sum().reindex(range(n_groups), fill_value=0)
        for column in _COUNT_COLUMNS:
            frame[column] = sums[column].astype(np.int64).to_numpy()
        frame["rps"] = frame["count"] / freq_s
        stats = self._metric("rt").regroup(group_of_cell, n_groups).stats(TIMESERIES_PERCENTILES)
        frame["avg_ms"] = stats.mean_us / 1000.0
        for percentile, values in stats.percentiles_us.items():
            frame[f"p{percentile:g}_ms"] = values / 1000.0
        frame["max_ms"] = stats.max_us / 1000.0
        return frame

    def _cells_matching(self, request_type: str | None, name: str | None) -> IntArray:
        mask = np.ones(len(self.cells), bool)
        if request_type is not None:
            mask &= (self.cells["request_type"] == request_type).to_numpy()
        if name is not None:
            mask &= (self.cells["name"] == name).to_numpy()
        return np.flatnonzero(mask)

    def histogram(
        self, request_type: str | None = None, name: str | None = None, metric: str = "rt"
    ) -> LatencyHistogram:
        """The merged histogram of ``metric`` over the matching cells (None matches everything)."""
        selected = self._cells_matching(request_type, name)
        histogram = self._metric(metric).histogram(selected)
        if metric == "rt":
            histogram.clamped = int(self.cells["clamped"].to_numpy()[selected].sum())
        return histogram

    def metric_summary(self, metric: str) -> pd.DataFrame:
        """Per endpoint statistics of another metric (ttfb, connect, server.<phase>...): request_type,
        name, count, avg/min/p50/p90/p95/p99/max in ms. Endpoints without that metric are left out."""
        table = self._metric(metric)
        if not len(self.cells):
            return pd.DataFrame(columns=[*_ENDPOINT, "count"])
        endpoints, group_of_cell = self._endpoint_groups()
        stats = table.regroup(group_of_cell, len(endpoints)).stats(SUMMARY_PERCENTILES)
        frame = endpoints.copy()
        frame["count"] = stats.count
        for column, values in _stats_columns(stats).items():
            frame[column] = values
        return frame[frame["count"] > 0].reset_index(drop=True)

    def failure_reasons(self) -> pd.DataFrame:
        """Rows request_type, name, outcome, reason, count; most frequent first."""
        columns = [*_ENDPOINT, "outcome", "reason", "count"]
        if not len(self.reasons):
            return pd.DataFrame(columns=columns)
        reasons = self.reasons.join(self.cells[_ENDPOINT], on="cell")
        grouped = reasons.groupby(columns[:-1], as_index=False, sort=False).agg(count=("count", "sum"))
        return grouped.sort_values(
            ["count", *columns[:-1]], ascending=[False, True, True, True, True]
        ).reset_index(drop=True)

    def marks(self, kind: str | None = None) -> pd.DataFrame:
        """Marks ordered by time: at (epoch s), time (UTC), kind, writer, then one column per field."""
        marks = self.mark_rows
        if kind is not None and len(marks):
            marks = marks[marks["kind"] == kind]
        return marks.dropna(axis=1, how="all").reset_index(drop=True) if len(marks) else marks.copy()

    def rows(self) -> pd.DataFrame:
        """Sampled raw requests (only if the writers sampled): at, request_type, name, latency_us,
        outcome, response_length."""
        return self.raw_rows.copy()

    def writers(self) -> pd.DataFrame:
        """Per writer: what it declared (closed, requests, batches, spilled, outages, rewritten, host,
        pid) and what was found (found_requests, found_batches)."""
        return self.writer_rows.copy()


class _RunAccumulator:
    """Adds up the batches of one run as they are read."""

    def __init__(self, resolution_s: int = 1) -> None:
        self.resolution_s = resolution_s
        self.cell_code: dict[tuple[int, str, str], int] = {}
        self.occurrence_code: list[int] = []
        self.occurrence_counts: list[list[int]] = []
        self.occurrence_bytes: list[int] = []
        self.occurrence_clamped: list[int] = []
        self.undecoded: dict[str, tuple[list[int], list[str]]] = {}
        self.decoded: dict[str, list[tuple[IntArray, IntArray, IntArray]]] = {}
        self.reasons: list[tuple[int, str, str, int]] = []
        self.marks: list[dict[str, Any]] = []
        self.rows: list[list[Any]] = []
        self.writer_batches: dict[str, int] = {}
        self.writer_requests: dict[str, int] = {}
        self.bad_batches: list[str] = []
        self.bad_histograms: list[str] = []
        self.span_start = math.inf
        self.span_end = -math.inf

    def add(self, field_name: str, blob: bytes) -> None:
        try:
            writer_id, _ = parse_batch_field(field_name)
            batch = decode_batch(blob)
        except ValueError:
            self.bad_batches.append(field_name)
            return
        self.writer_batches[writer_id] = self.writer_batches.get(writer_id, 0) + 1
        requests = 0
        for cell in batch.get("cells", ()):
            second = int(cell["s"])
            key = (second - second % self.resolution_s, str(cell["t"]), str(cell["n"]))
            code = self.cell_code.setdefault(key, len(self.cell_code))
            counts = cell["c"]
            requests += sum(counts)
            self.occurrence_code.append(code)
            self.occurrence_counts.append(counts)
            self.occurrence_bytes.append(int(cell.get("b", 0)))
            self.occurrence_clamped.append(int(cell.get("x", 0)))
            for metric, encoded in cell.get("h", {}).items():
                codes, histograms = self.undecoded.setdefault(metric, ([], []))
                codes.append(code)
                histograms.append(encoded)
                if len(histograms) >= DECODE_CHUNK:
                    self._decode(metric)
            for outcome, reason, count in cell.get("r", ()):
                self.reasons.append((code, outcome, reason, int(count)))
        self.writer_requests[writer_id] = self.writer_requests.get(writer_id, 0) + requests
        span = batch.get("span")
        if span:
            self.span_start = min(self.span_start, float(span[0]))
            self.span_end = max(self.span_end, float(span[1]))
        for mark in batch.get("marks", ()):
            fields = mark.get("fields") or {}
            self.marks.append({**fields, "at": mark["at"], "kind": mark["kind"], "writer": writer_id})
        self.rows.extend(batch.get("rows", ()))

    def _decode(self, metric: str) -> None:
        """Decode the metric's pending histograms in one vectorised pass."""
        codes, histograms = self.undecoded.pop(metric, ([], []))
        if not histograms:
            return
        code_of = np.asarray(codes, np.int64)
        try:
            which, index, counts = decode_many(histograms)
        except ValueError:  # find the damaged ones, keep the rest
            good = []
            for position, encoded in enumerate(histograms):
                try:
                    decode_many([encoded])
                except ValueError:
                    self.bad_histograms.append(f"{metric} histogram of cell {codes[position]}")
                else:
                    good.append(position)
            code_of = code_of[good]
            which, index, counts = decode_many([histograms[i] for i in good])
        self.decoded.setdefault(metric, []).append((code_of[which], index, counts))

    def cells_frame(self) -> pd.DataFrame:
        n_cells = len(self.cell_code)
        keys = list(self.cell_code)
        codes = np.asarray(self.occurrence_code, np.int64)
        frame = pd.DataFrame(
            {
                "second": np.fromiter((k[0] for k in keys), np.int64, n_cells),
                "request_type": pd.array([k[1] for k in keys], dtype=object),
                "name": pd.array([k[2] for k in keys], dtype=object),
            }
        )
        counts = np.asarray(self.occurrence_counts, np.int64).reshape(-1, len(OUTCOMES))
        for i, outcome in enumerate(OUTCOMES):
            frame[outcome] = np.bincount(codes, weights=counts[:, i], minlength=n_cells).astype(np.int64)
        frame["count"] = frame[list(OUTCOMES)].sum(axis=1).astype(np.int64)
        for column, values in (("bytes", self.occurrence_bytes), ("clamped", self.occurrence_clamped)):
            weights = np.asarray(values, np.float64)
            frame[column] = np.bincount(codes, weights=weights, minlength=n_cells).astype(np.int64)
        return frame

    def tables(self) -> dict[str, HistogramTable]:
        n_cells = len(self.cell_code)
        for metric in list(self.undecoded):
            self._decode(metric)
        tables: dict[str, HistogramTable] = {}
        for metric, pieces in self.decoded.items():
            groups, index, counts = (np.concatenate(column) for column in zip(*pieces, strict=True))
            tables[metric] = HistogramTable.from_entries(groups, index, counts, n_cells)
        return tables


def _writers_frame(records: Mapping[str, dict[str, Any]], accumulator: _RunAccumulator) -> pd.DataFrame:
    writer_ids = sorted(set(records) | set(accumulator.writer_batches))
    rows = []
    for writer_id in writer_ids:
        record = records.get(writer_id, {})
        rows.append(
            {
                "writer_id": writer_id,
                "registered": writer_id in records,
                "closed": bool(record.get("closed", False)),
                "requests": int(record.get("requests", 0)),
                "batches": int(record.get("batches", 0)),
                "spilled": int(record.get("spilled", 0)),
                "outages": int(record.get("outages", 0)),
                "rewritten": int(record.get("rewritten", 0)),
                "host": str(record.get("host", "")),
                "pid": int(record.get("pid", 0)),
                "found_requests": accumulator.writer_requests.get(writer_id, 0),
                "found_batches": accumulator.writer_batches.get(writer_id, 0),
            }
        )
    columns = [
        "writer_id",
        "registered",
        "closed",
        "requests",
        "batches",
        "spilled",
        "outages",
        "rewritten",
        "host",
        "pid",
    ]
    return pd.DataFrame(rows, columns=[*columns, "found_requests", "found_batches"])


def unclosed_writer_problem(writer_id: str) -> str:
    """The problem a run has when writer ``writer_id`` never closed (one wording, looked up by it)."""
    return f"writer {writer_id} never closed (still running, crashed, or its last flush is spilled)"


def _problems(
    writers: pd.DataFrame, bad_batches: Sequence[str], bad_histograms: Sequence[str]
) -> tuple[str, ...]:
    problems: list[str] = []
    if not len(writers):
        problems.append("no writer registered or wrote data for this run")
    for row in writers.to_dict("records"):
        writer = row["writer_id"]
        if not row["registered"]:
            problems.append(f"writer {writer} left data but no writer record")
        elif not row["closed"]:
            problems.append(unclosed_writer_problem(writer))
        else:
            if row["found_batches"] != row["batches"]:
                problems.append(
                    f"writer {writer} declared {row['batches']} batches, found {row['found_batches']}"
                )
            if row["found_requests"] != row["requests"]:
                problems.append(
                    f"writer {writer} declared {row['requests']} requests, found {row['found_requests']}"
                )
    problems.extend(f"batch {name} is unreadable" for name in bad_batches)
    problems.extend(f"{name} is unreadable" for name in bad_histograms)
    return tuple(problems)


class CollectorReader:
    """Reads runs back from Redis."""

    def __init__(self, redis_client_or_url: RedisLike, key_prefix: str = DEFAULT_PREFIX) -> None:
        self._client = redis_client(redis_client_or_url, socket_timeout_s=30.0)
        self._prefix = check_prefix(key_prefix)

    def meta(self, run_id: str) -> dict[str, str]:
        """The run's metadata; ConfigError when the run is unknown (or expired)."""
        check_run_id(run_id)
        raw = self._client.hgetall(meta_key(self._prefix, run_id))
        if not raw:
            raise ConfigError(f"run {run_id!r} not found under prefix {self._prefix!r} (unknown or expired)")
        return {_decode(k): _decode(v) for k, v in raw.items()}

    def list_runs(self, limit: int = 50) -> pd.DataFrame:
        """The newest ``limit`` runs, newest first: run_id, test_type, scenario, started_at,
        stopped_at, status, requests (sum of the writers' declared totals). Expired runs are pruned
        from the index."""
        columns = [
            "run_id",
            "test_type",
            "scenario",
            "host",
            "started_at",
            "stopped_at",
            "status",
            "requests",
        ]
        rows: list[dict[str, Any]] = []
        for run_id, meta, writer_values in self._iter_runs():
            requests = 0
            for value in writer_values:
                try:
                    requests += int(json.loads(value).get("requests", 0))
                except (ValueError, AttributeError):
                    continue
            row = {column: meta.get(column, "") for column in columns[:-1]}
            row["run_id"] = run_id
            row["requests"] = requests
            rows.append(row)
            if len(rows) >= limit:
                break
        return pd.DataFrame(rows, columns=columns)

    def latest_run_id(self, test_type: str | None = None) -> str | None:
        """Id of the newest run (of ``test_type`` when given); None when there is none."""
        for run_id, meta, _ in self._iter_runs(with_writers=False):
            if test_type is None or meta.get("test_type") == test_type:
                return run_id
        return None

    def _iter_runs(self, with_writers: bool = True, page: int = 100) -> Any:
        start = 0
        while True:
            members: list[bytes] = self._client.zrevrange(runs_key(self._prefix), start, start + page - 1)  # type: ignore[assignment]
            run_ids = [_decode(member) for member in members]
            if not run_ids:
                return
            pipe = self._client.pipeline(transaction=False)
            for run_id in run_ids:
                pipe.hgetall(meta_key(self._prefix, run_id))
                if with_writers:
                    pipe.hvals(writers_key(self._prefix, run_id))
            replies = pipe.execute()
            step = 2 if with_writers else 1
            expired = []
            for i, run_id in enumerate(run_ids):
                meta = {_decode(k): _decode(v) for k, v in replies[i * step].items()}
                if not meta:
                    expired.append(run_id)
                    continue
                yield run_id, meta, (replies[i * step + 1] if with_writers else [])
            if expired:
                self._client.zrem(runs_key(self._prefix), *expired)
                start -= len(expired)
            start += page

    def load(self, run_id: str, resolution_s: int = 1) -> RunData:
        """Read every batch of ``run_id``; ConfigError when the run has neither metadata nor data.

        ``resolution_s`` > 1 merges each endpoint's seconds into intervals of that many seconds while
        reading (less memory for long soaks; time series then go no finer than that).
        """
        check_run_id(run_id)
        _check_resolution(resolution_s)
        meta = self._client.hgetall(meta_key(self._prefix, run_id))
        batches = self._client.hscan_iter(batches_key(self._prefix, run_id), count=1000)
        records = self._client.hgetall(writers_key(self._prefix, run_id))
        data = _assemble(run_id, meta, batches, records, int(resolution_s))
        if data is None:
            raise ConfigError(f"run {run_id!r} not found under prefix {self._prefix!r} (unknown or expired)")
        return data


def _check_resolution(resolution_s: int) -> None:
    if int(resolution_s) != resolution_s or resolution_s < 1:
        raise ConfigError(f"resolution_s={resolution_s!r} is invalid: use a whole number of seconds >= 1")


def _assemble(
    run_id: str,
    raw_meta: Mapping[Any, Any],
    batches: Iterable[tuple[Any, bytes]],
    raw_records: Mapping[Any, Any],
    resolution_s: int,
    **source: Any,
) -> RunData | None:
    """A run's data from its meta hash, batch fields and writer records as stored (bytes or str
    keys); None when there is none of them. ``source`` sets ``RunData.source`` and its count."""
    meta = {_decode(k): _decode(v) for k, v in raw_meta.items()}
    accumulator = _RunAccumulator(resolution_s)
    for field_name, blob in batches:
        accumulator.add(_decode(field_name), blob)
    records: dict[str, dict[str, Any]] = {}
    for writer_id, value in raw_records.items():
        try:
            records[_decode(writer_id)] = json.loads(value)
        except ValueError:
            continue
    if not meta and not accumulator.writer_batches and not records:
        return None
    writers = _writers_frame(records, accumulator)
    marks = pd.DataFrame(accumulator.marks)
    if len(marks):
        marks = marks.sort_values("at", kind="stable").reset_index(drop=True)
        marks.insert(1, "time", pd.to_datetime(marks["at"], unit="s", utc=True))
    else:
        marks = pd.DataFrame(columns=["at", "time", "kind", "writer"])
    raw = pd.DataFrame(
        accumulator.rows,
        columns=["at", "request_type", "name", "latency_us", "outcome", "response_length"],
    )
    reasons = pd.DataFrame(accumulator.reasons, columns=["cell", "outcome", "reason", "count"])
    return RunData(
        run_id=run_id,
        meta=meta,
        cells=accumulator.cells_frame(),
        histograms=accumulator.tables(),
        reasons=reasons,
        mark_rows=marks,
        raw_rows=raw,
        writer_rows=writers,
        problems=_problems(writers, accumulator.bad_batches, accumulator.bad_histograms),
        resolution_s=resolution_s,
        span_s=(
            accumulator.span_end - accumulator.span_start
            if accumulator.span_end >= accumulator.span_start
            else None
        ),
        **source,
    )


def load_spilled(
    spill_dir: Path, run_id: str, key_prefix: str = DEFAULT_PREFIX, resolution_s: int = 1
) -> RunData:
    """Read ``run_id`` from the spill files and journals under ``spill_dir`` (what its writers kept
    while the collector's Redis was away), as ``CollectorReader.load`` would read it from Redis once
    they are replayed; ConfigError when they hold nothing of the run. The files are left in place."""
    check_run_id(run_id)
    check_prefix(key_prefix)
    _check_resolution(resolution_s)
    wanted = {
        meta_key(key_prefix, run_id): "meta",
        batches_key(key_prefix, run_id): "batches",
        writers_key(key_prefix, run_id): "writers",
    }
    hashes: dict[str, dict[str, bytes]] = {"meta": {}, "batches": {}, "writers": {}}
    read = 0
    for path in run_files(spill_dir, run_id):
        try:
            entries, _ = read_entries(path)
        except FileNotFoundError:  # replayed meanwhile
            continue
        for entry in entries:
            which = wanted.get(entry.key)
            if which is not None and entry.op == "hset":
                hashes[which][entry.field] = entry.value  # later entries win, as in Redis
                read += 1
    data = _assemble(
        run_id,
        hashes["meta"],
        hashes["batches"].items(),
        hashes["writers"],
        int(resolution_s),
        source=FROM_SPILL,
        entries_from_files=read,
    )
    if data is None:
        raise ConfigError(f"run {run_id!r} not found in the spill files under {spill_dir}")
    return data


__all__ = [
    "FROM_REDIS",
    "FROM_SPILL",
    "SUMMARY_PERCENTILES",
    "TIMESERIES_PERCENTILES",
    "TOTAL_NAME",
    "CollectorReader",
    "RunData",
    "load_spilled",
    "unclosed_writer_problem",
]
