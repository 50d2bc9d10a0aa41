"""Worker health read back from a run: who joined, who was lost and when, load and health per worker.

The marks come from :mod:`perfsuite.workers` (the Locust side). :func:`worker_health_of` gives one
frozen :class:`WorkerHealth` per worker; :func:`lost_workers_note` says in words what a run's totals
mean when a worker was lost; :func:`saturated_workers_reasons` names the workers whose saturation
makes the run's latency untrustworthy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, computed_field

from perfsuite.collector.histogram import LatencyHistogram
from perfsuite.marks import WORKER_HEALTH, WORKER_JOINED, WORKER_LOST
from perfsuite.sections import Line, Section, table

if TYPE_CHECKING:
    from perfsuite.collector.reader import RunData


class WorkerHealth(BaseModel):
    """One worker of a run, as its marks and its collector writer record tell."""

    client_id: str
    """Locust's id of the worker (``<hostname>_<hex>``)."""
    host: str
    """Its hostname."""
    writer_id: str | None
    """Its collector writer (None when none of its marks arrived)."""
    pid: int | None
    requests: int
    """Requests the collector holds from it (its flushed batches); else its last sample's count."""
    share: float
    """Its fraction (0-1) of all the workers' ``requests``."""
    closed: bool
    """Its writer's closed record arrived: its ``requests`` are complete."""
    reported_requests: int | None
    """What Locust's master had received in its stats reports (at loss or at test stop)."""
    cpu_max_percent: float | None
    loop_lag_p99_ms: float | None
    """From its whole-test lag histogram; without one (a lost worker), the 99th percentile of its
    per-second maxima (an upper bound)."""
    loop_lag_max_ms: float | None
    heartbeat_gap_max_s: float | None
    """Longest silence between heartbeats, as the master or the worker saw it (seconds)."""
    joined_at_s: float | None
    """Epoch seconds."""
    last_heartbeat_at_s: float | None
    """A lost worker's last heartbeat (epoch seconds): when it was last known alive."""
    lost_at_s: float | None
    """When the master recorded it lost (epoch seconds); None if it was not lost."""
    saturated: bool
    saturation_reasons: tuple[str, ...] = ()

    model_config = ConfigDict(frozen=True, extra="ignore")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def lost(self) -> bool:
        """It was lost mid-run."""
        return self.lost_at_s is not None


def _records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    if frame is None or not len(frame):
        return []
    return [{str(k): v for k, v in row.items() if not _missing(v)} for row in frame.to_dict("records")]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _max(values: Sequence[float]) -> float | None:
    return max(values) if values else None


def summarise_workers(
    joined: pd.DataFrame | None,
    lost: pd.DataFrame | None,
    health: pd.DataFrame | None,
    writers: pd.DataFrame | None = None,
    *,
    max_cpu_percent: float = 90.0,
    max_lag_ms: float = 10.0,
) -> tuple[WorkerHealth, ...]:
    """One :class:`WorkerHealth` per worker, ordered by host then client id.

    ``joined``, ``lost``, ``health``: ``RunData.marks(kind)`` frames of the three kinds;
    ``writers``: ``RunData.writers()`` (links a worker's marks to its writer's request count).
    A worker is saturated when its CPU went over ``max_cpu_percent`` or its loop-lag P99 over
    ``max_lag_ms`` (the limits of ``perfsuite.saturation.assess``).
    """
    writer_rows = {row["writer_id"]: row for row in _records(writers)}
    clients: dict[str, dict[str, Any]] = {}

    def client(client_id: str) -> dict[str, Any]:
        return clients.setdefault(client_id, {"samples": [], "final": None, "master": None, "writer": None})

    for row in _records(joined):
        entry = client(str(row["client_id"]))
        entry.setdefault("joined_at", float(row["at"]))
    for row in _records(lost):
        entry = client(str(row["client_id"]))
        entry["lost"] = row
        entry["reported_writer"] = row.get("writer_id") or entry.get("reported_writer")
    for row in _records(health):
        entry = client(str(row["client_id"]))
        if row.get("source") == "master":
            entry["master"] = row
            entry["reported_writer"] = row.get("writer_id") or entry.get("reported_writer")
            continue
        entry["writer"] = row.get("writer")
        if row.get("final"):
            entry["final"] = row
        else:
            entry["samples"].append(row)
    partial: list[dict[str, Any]] = []
    for client_id, entry in clients.items():
        partial.append(_summarise_one(client_id, entry, writer_rows, max_cpu_percent, max_lag_ms))
    total = sum(item["requests"] for item in partial)
    result = [WorkerHealth(**item, share=item["requests"] / total if total else 0.0) for item in partial]
    return tuple(sorted(result, key=lambda worker: (worker.host, worker.client_id)))


def _summarise_one(
    client_id: str,
    entry: Mapping[str, Any],
    writer_rows: Mapping[str, Mapping[str, Any]],
    max_cpu_percent: float,
    max_lag_ms: float,
) -> dict[str, Any]:
    samples: list[dict[str, Any]] = entry["samples"]
    final: dict[str, Any] | None = entry["final"]
    master: dict[str, Any] | None = entry["master"]
    lost: dict[str, Any] | None = entry.get("lost")
    writer_id = entry["writer"] or entry.get("reported_writer")
    record = writer_rows.get(writer_id) if writer_id else None
    if record is not None:
        requests = int(record["found_requests"])
    else:
        counts = [int(s["requests"]) for s in samples if "requests" in s]
        requests = int(final["requests"]) if final else max(counts, default=0)
    cpu = [float(s["cpu_percent"]) for s in samples if "cpu_percent" in s]
    if final and "cpu_max_percent" in final:
        cpu.append(float(final["cpu_max_percent"]))
    lag_p99 = lag_max = None
    if final and final.get("loop_lag_hist"):
        histogram = LatencyHistogram.decode(final["loop_lag_hist"])
        lag_p99, lag_max = histogram.percentile_us(99) / 1000, histogram.max_us / 1000
    else:
        maxima = [float(s["loop_lag_max_ms"]) for s in samples if "loop_lag_max_ms" in s]
        if maxima:
            lag_p99, lag_max = float(pd.Series(maxima).quantile(0.99)), max(maxima)
    gaps = [float(s["master_heartbeat_age_s"]) for s in samples if "master_heartbeat_age_s" in s]
    if final and "master_heartbeat_gap_max_s" in final:
        gaps.append(float(final["master_heartbeat_gap_max_s"]))
    if master and "heartbeat_gap_max_s" in master:
        gaps.append(float(master["heartbeat_gap_max_s"]))
    if lost and "heartbeat_gap_s" in lost:
        gaps.append(float(lost["heartbeat_gap_s"]))
    reported = lost.get("reported_requests") if lost else (master or {}).get("reported_requests")
    cpu_max = _max(cpu)
    reasons: list[str] = []
    if cpu_max is not None and cpu_max > max_cpu_percent:
        reasons.append(f"CPU reached {cpu_max:.0f}% (limit {max_cpu_percent:g}%)")
    if lag_p99 is not None and lag_p99 > max_lag_ms:
        reasons.append(f"event-loop lag P99 {lag_p99:.1f} ms (limit {max_lag_ms:g} ms)")
    return {
        "client_id": client_id,
        "host": str(record["host"]) if record is not None else client_id.rsplit("_", 1)[0],
        "writer_id": writer_id,
        "pid": int(record["pid"]) if record is not None else None,
        "requests": requests,
        "closed": bool(record["closed"]) if record is not None else False,
        "reported_requests": int(reported) if reported is not None else None,
        "cpu_max_percent": cpu_max,
        "loop_lag_p99_ms": lag_p99,
        "loop_lag_max_ms": lag_max,
        "heartbeat_gap_max_s": _max(gaps),
        "joined_at_s": entry.get("joined_at"),
        "last_heartbeat_at_s": float(lost["last_heartbeat_at"]) if lost else None,
        "lost_at_s": float(lost["at"]) if lost else None,
        "saturated": bool(reasons),
        "saturation_reasons": tuple(reasons),
    }


def worker_health_of(
    run: RunData, *, max_cpu_percent: float = 90.0, max_lag_ms: float = 10.0
) -> tuple[WorkerHealth, ...]:
    """:func:`summarise_workers` over a loaded run."""
    return summarise_workers(
        run.marks(WORKER_JOINED),
        run.marks(WORKER_LOST),
        run.marks(WORKER_HEALTH),
        run.writers(),
        max_cpu_percent=max_cpu_percent,
        max_lag_ms=max_lag_ms,
    )


def _clock(at_s: float, run_started_at_s: float | None) -> str:
    text = datetime.fromtimestamp(at_s, UTC).strftime("%H:%M:%S.%f")[:-5] + " UTC"
    if run_started_at_s is not None:
        text += f" (+{at_s - run_started_at_s:.1f} s into the run)"
    return text


def lost_workers_note(workers: Sequence[WorkerHealth], run_started_at_s: float | None = None) -> str | None:
    """What a report says when workers were lost mid-run (None when none was)."""
    lost = [worker for worker in workers if worker.lost]
    if not lost:
        return None
    lines = [f"{len(lost)} of {len(workers)} workers lost mid-run:"]
    for worker in lost:
        assert worker.lost_at_s is not None
        seen = worker.last_heartbeat_at_s if worker.last_heartbeat_at_s is not None else worker.lost_at_s
        reported = "unknown" if worker.reported_requests is None else f"{worker.reported_requests:,}"
        lines.append(
            f"  - {worker.client_id} (host {worker.host}"
            + (f", pid {worker.pid}" if worker.pid else "")
            + f"): last heartbeat {_clock(seen, run_started_at_s)}, declared lost "
            f"{worker.lost_at_s - seen:.1f} s later; it had flushed {worker.requests:,} requests to the "
            f"collector ({worker.share:.0%} of the run); Locust's master had received {reported} in its "
            "stats reports"
        )
    lines.append(
        "  The collector's totals hold every request of the surviving workers and a lost worker's up to "
        "its last flush: a writer flushes a second once that second has closed, so what a lost worker "
        "sent in its last second and last flush interval, and what it had in flight, is counted "
        "nowhere. Locust's own total holds only what reached the master in stats reports (every 3 s), "
        "so the two totals are expected to differ. The lost worker's users were not replaced (unless "
        "Locust ran with --enable-rebalancing): the run produced less load than planned from then on."
    )
    return "\n".join(lines)


def saturated_workers_reasons(workers: Sequence[WorkerHealth]) -> tuple[str, ...]:
    """One reason per saturated worker, naming it: each makes the run's latency untrustworthy
    (for ``perfsuite.saturation.Trust``)."""
    return tuple(
        f"worker {worker.host} (pid {worker.pid or '?'}, {worker.client_id}) was saturated: "
        + "; ".join(worker.saturation_reasons)
        + ": its requests started and were read late, so the latency figures include its own delay"
        for worker in workers
        if worker.saturated
    )


def workers_section(workers: Sequence[WorkerHealth], run_started_at_s: float | None = None) -> Section:
    """Per-worker health for every report: requests and share, CPU, loop lag, heartbeat gaps,
    status; what the totals mean when one was lost."""

    def number(value: float | None, unit: str, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}f}{unit}"

    rows = []
    for worker in workers:
        status = "LOST" if worker.lost else ("ok" if worker.closed else "unclosed")
        if worker.saturated:
            status += ", SATURATED: " + "; ".join(worker.saturation_reasons)
        rows.append(
            [
                worker.host,
                str(worker.pid or "-"),
                f"{worker.requests:,}",
                f"{worker.share:.0%}",
                number(worker.cpu_max_percent, "%", 0),
                number(worker.loop_lag_p99_ms, " ms"),
                number(worker.loop_lag_max_ms, " ms"),
                number(worker.heartbeat_gap_max_s, " s"),
                status,
            ]
        )
    note = lost_workers_note(workers, run_started_at_s)
    after = tuple(Line(text, "bad") for text in note.splitlines()) if note else ()
    headers = ["worker host", "pid", "requests", "share", "cpu max", "lag p99", "lag max", "hb gap", "status"]
    return Section(
        f"workers ({len(workers)})", table=table(headers, rows, left=(0, 8)), after=after, key="workers"
    )


__all__ = [
    "WorkerHealth",
    "lost_workers_note",
    "saturated_workers_reasons",
    "summarise_workers",
    "worker_health_of",
    "workers_section",
]
