"""The Redis benchmark's own figures, read back from a stored run.

- **operations sent**: GET/SET/DEL commands that went to the benchmarked server. Latency
  (avg/P50/P95/P99, from before waiting for a pooled connection to the reply), throughput and the
  success rate are computed over these only. A GET that finds no key is a success (a miss); a
  command failed only when it raised (timeout, connection error, pool timeout, error reply).
- **injected**: commands deliberately sent through a real fault (faults.py); they are expected to
  fail and are reported apart, per fault kind, and not judged.
- **refused by breaker**: commands the open breaker refused without sending; reported apart and
  not judged either.
- Failures add up: Locust's failure count = injected + organic failures + refusals, and the
  injected failures the collector recorded = the faults the injectors applied.
- **time at Redis** (``server``): an operation's time after the checkout of a pooled connection;
  the latency checks judge it, so a queue on the benchmark's own pool is never blamed on Redis (that
  queue is reported apart, as pool waits).
- **throughput**: operations sent per second over the span from the first to the last operation
  (all processes); **total ops/s** counts every command (sent, injected, refused).
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from perfsuite.collect import records
from perfsuite.collector import LatencyHistogram, RunData
from perfsuite.config import RedisBenchConfig
from perfsuite.marks import BREAKER, FAULT, SAMPLE
from redis_bench.faults import FaultKind
from redis_bench.runtime import (
    INJECTED_PREFIX,
    ORGANIC_NAMES,
    POOL_WAIT_METRIC,
    REFUSED_NAME,
    REQUEST_TYPE,
    SERVER_METRIC,
)

PERCENTILES = (50.0, 95.0, 99.0)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OpLatency(_Model):
    """Latency of a set of operations (ms)."""

    count: int = 0
    avg_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None

    @classmethod
    def of(cls, histogram: LatencyHistogram) -> OpLatency:
        """The figures of ``histogram`` (empty ones when it holds nothing)."""
        if not histogram.count:
            return cls()
        percentiles = histogram.percentiles_us(PERCENTILES)
        return cls(
            count=histogram.count,
            avg_ms=histogram.mean_us / 1000,
            p50_ms=percentiles[50.0] / 1000,
            p95_ms=percentiles[95.0] / 1000,
            p99_ms=percentiles[99.0] / 1000,
            max_ms=histogram.max_us / 1000,
        )


class OperationFigures(OpLatency):
    """One operation (GET, SET, DEL)."""

    operation: str
    failures: int = 0
    ops_per_s: float | None = None


class RedisOps(_Model):
    """What was sent, what failed and why, and how fast."""

    started_at: float | None = None
    active_s: float = 0.0
    operations_total: int = 0
    operations_sent: int = 0
    ops_per_s: float | None = None
    total_ops_per_s: float | None = None
    organic: OpLatency = OpLatency()
    """Latency of the operations sent, from before the pool checkout (our queue included)."""
    server: OpLatency = OpLatency()
    """Their time after the pool checkout: the round trip to Redis itself (what the checks judge)."""
    organic_success: int = 0
    organic_failures: int = 0
    success_rate: float | None = None
    per_operation: tuple[OperationFigures, ...] = ()
    injected: dict[str, int] = Field(default_factory=dict)
    injected_failures: int = 0
    injected_commands: int = 0
    injected_applied: dict[str, int] = Field(default_factory=dict)
    injected_applied_total: int = 0
    refused: int = 0
    locust_failures: int = 0
    processes: int = 0
    namespace: str = ""
    keys_left_behind: int = 0
    keys_removed_after_run: int = 0


class PoolFigures(_Model):
    """The bounded connection pool over every process (5.1, 5.2)."""

    processes: int = 0
    max_connections: int = 0
    keep_idle: int = 0
    peak_in_use: int | None = None
    peak_utilization: float | None = None
    warn_utilization: float = 0.8
    samples: int = 0
    samples_over_warn: int = 0
    first_over_warn_at: float | None = None
    acquires: int = 0
    waits: int = 0
    wait_total_s: float = 0.0
    wait_max_ms: float | None = None
    wait_avg_ms: float | None = None
    wait_p50_ms: float | None = None
    wait_p95_ms: float | None = None
    wait_p99_ms: float | None = None
    timeouts: int = 0
    connects: int = 0
    reconnects: int = 0
    connect_failures: int = 0
    closed_idle: int = 0
    broken: int = 0


class BreakerChange(_Model):
    """One state change of a process's circuit breaker."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    at: float
    time: str
    offset_s: float | None = None
    process: str | None = None
    from_state: str | None = Field(None, alias="from")
    to_state: str | None = Field(None, alias="to")
    reason: str | None = None


class OutageWindow(_Model):
    """One injected outage window of one process."""

    process: str | None = None
    kind: str | None = None
    start_s: float
    duration_s: float
    offset_s: float | None = None


class BreakerFigures(_Model):
    """Trips, reopens, final states and the timeline of state changes (all processes)."""

    trips: int = 0
    reopens: int = 0
    recovered_trips: int = 0
    refused: int = 0
    final_states: dict[str, str | None] = Field(default_factory=dict)
    timeline: tuple[BreakerChange, ...] = ()
    outages: tuple[OutageWindow, ...] = ()


class ConnectionHealth(_Model):
    """PING latency, reconnects and organic errors by type."""

    ping_count: int = 0
    ping_errors: int = 0
    ping_avg_ms: float | None = None
    ping_p50_ms: float | None = None
    ping_max_ms: float | None = None
    errors_by_type: dict[str, int] = Field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    hit_rate: float | None = None


class RedisFigures(_Model):
    """Everything the Redis benchmark measures beyond the common summary."""

    redis: RedisOps = RedisOps()
    pool: PoolFigures = PoolFigures()
    breaker: BreakerFigures = BreakerFigures()
    connection_health: ConnectionHealth = ConnectionHealth()


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _merged(data: RunData, names: Iterable[str], metric: str = "rt") -> LatencyHistogram:
    merged = LatencyHistogram()
    for name in names:
        with contextlib.suppress(Exception):  # a metric no cell recorded
            merged.merge(data.histogram(REQUEST_TYPE, name, metric=metric))
    return merged


def final_samples(data: RunData) -> list[dict[str, Any]]:
    """The last sample of every process (its ``final`` one when it wrote it)."""
    samples = data.marks(SAMPLE)
    if not len(samples) or "process" not in samples:
        return []
    last: dict[str, dict[str, Any]] = {}
    for row in records(samples):
        if row.get("source") == "redis_bench":
            last[str(row["process"])] = row
    return list(last.values())


def pool_figures(data: RunData, settings: RedisBenchConfig, finals: list[dict[str, Any]]) -> PoolFigures:
    """Pool peak and waits over every process, from the samples and the pool_wait histograms."""
    pools = [row["pool"] for row in finals if isinstance(row.get("pool"), Mapping)]
    waits = OpLatency.of(
        _merged(data, [*ORGANIC_NAMES, f"{INJECTED_PREFIX}{FaultKind.ERROR.value}"], POOL_WAIT_METRIC)
    )
    samples = data.marks(SAMPLE)
    over = 0
    first_over = None
    if len(samples) and "interval_utilization" in samples:
        for row in records(samples):
            utilization = _number(row.get("interval_utilization"))
            if utilization is not None and utilization >= settings.pool_warn_utilization:
                over += 1
                first_over = first_over if first_over is not None else float(row["at"])
    peak = max((int(pool["peak_in_use"]) for pool in pools), default=None)
    max_connections = max((int(pool["max_connections"]) for pool in pools), default=settings.max_connections)
    return PoolFigures(
        processes=len(pools),
        max_connections=max_connections,
        keep_idle=settings.pool_size,
        peak_in_use=peak,
        peak_utilization=(peak / max_connections) if peak is not None else None,
        warn_utilization=settings.pool_warn_utilization,
        samples=len(samples),
        samples_over_warn=over,
        first_over_warn_at=first_over,
        acquires=sum(int(pool["acquires"]) for pool in pools),
        waits=sum(int(pool["waits"]) for pool in pools),
        wait_total_s=sum(float(pool["wait_total_s"]) for pool in pools),
        wait_max_ms=max((float(pool["wait_max_s"]) * 1000 for pool in pools), default=None),
        wait_avg_ms=waits.avg_ms,
        wait_p50_ms=waits.p50_ms,
        wait_p95_ms=waits.p95_ms,
        wait_p99_ms=waits.p99_ms,
        timeouts=sum(int(pool["timeouts"]) for pool in pools),
        connects=sum(int(pool["connects"]) for pool in pools),
        reconnects=sum(int(pool["reconnects"]) for pool in pools),
        connect_failures=sum(int(pool["connect_failures"]) for pool in pools),
        closed_idle=sum(int(pool["closed"]) for pool in pools),
        broken=sum(int(pool["broken"]) for pool in pools),
    )


def breaker_figures(data: RunData, finals: list[dict[str, Any]], started_at: float | None) -> BreakerFigures:
    """Trips, reopens, final states and the timeline of state changes (all processes)."""
    timeline = []
    for row in records(data.marks(BREAKER)):
        at = float(row["at"])
        timeline.append(
            BreakerChange(
                at=at,
                time=datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
                offset_s=(at - started_at) if started_at is not None else None,
                process=row.get("process"),
                from_state=row.get("from_state"),
                to_state=row.get("to_state"),
                reason=row.get("reason"),
            )
        )
    trips = sum(1 for change in timeline if change.from_state == "closed" and change.to_state == "open")
    reopens = sum(1 for change in timeline if change.from_state == "half-open" and change.to_state == "open")
    recovered = 0
    by_process: dict[str, list[BreakerChange]] = {}
    for change in timeline:
        by_process.setdefault(str(change.process), []).append(change)
    for changes in by_process.values():
        open_trip = False
        for change in changes:
            if change.from_state == "closed" and change.to_state == "open":
                open_trip = True
            elif change.to_state == "closed" and open_trip:
                recovered += 1
                open_trip = False
    windows = [
        OutageWindow(
            process=row.get("process"),
            kind=row.get("fault_kind"),
            start_s=float(row["start_s"]),
            duration_s=float(row["duration_s"]),
            offset_s=(float(row["start_s"]) - started_at) if started_at is not None else None,
        )
        for row in records(data.marks(FAULT))
        if row.get("fault") == "outage"
    ]
    return BreakerFigures(
        trips=trips,
        reopens=reopens,
        recovered_trips=recovered,
        refused=sum(int(row.get("refused", 0)) for row in finals),
        final_states={str(row["process"]): row.get("breaker_state") for row in finals},
        timeline=tuple(timeline),
        outages=tuple(windows),
    )


def health_figures(finals: list[dict[str, Any]], data: RunData) -> ConnectionHealth:
    """PING latency, reconnects and organic errors by type (all processes)."""
    pings = int(sum(int(row.get("ping_count", 0)) for row in finals))
    total_ms = sum((_number(row.get("ping_avg_ms")) or 0.0) * int(row.get("ping_count", 0)) for row in finals)
    samples = data.marks(SAMPLE)
    ping_values = [
        v
        for v in (samples["ping_ms"].tolist() if len(samples) and "ping_ms" in samples else [])
        if _number(v) is not None
    ]
    errors: Counter[str] = Counter()
    for row in finals:
        errors.update({str(k): int(v) for k, v in (row.get("errors_by_type") or {}).items()})
    hits = sum(int(row.get("hits", 0)) for row in finals)
    misses = sum(int(row.get("misses", 0)) for row in finals)
    return ConnectionHealth(
        ping_count=pings,
        ping_errors=int(sum(int(row.get("ping_errors", 0)) for row in finals)),
        ping_avg_ms=total_ms / pings if pings else None,
        ping_p50_ms=float(pd.Series(ping_values).quantile(0.5)) if ping_values else None,
        ping_max_ms=max((_number(row.get("ping_max_ms")) or 0.0 for row in finals), default=None)
        if pings
        else None,
        errors_by_type=dict(errors),
        hits=hits,
        misses=misses,
        hit_rate=hits / (hits + misses) if hits + misses else None,
    )


def redis_figures(
    data: RunData,
    settings: RedisBenchConfig,
    locust_failures: int,
    namespace: str,
    keys_left: int,
    removed_after: int,
) -> RedisFigures:
    """Everything the checks and the report need, from the stored run and Locust's own counts."""
    rows = {row["name"]: row for row in records(data.summary()) if row.get("request_type") == REQUEST_TYPE}
    finals = final_samples(data)
    firsts = [v for v in (_number(row.get("first_step_at")) for row in finals) if v is not None]
    lasts = [v for v in (_number(row.get("last_step_at")) for row in finals) if v is not None]
    started_at = min(firsts) if firsts else (float(data.first_second) if data.first_second else None)
    active_s = (max(lasts) - min(firsts)) if firsts and lasts else float(data.duration_s)
    sent = sum(int(rows[name]["count"]) for name in ORGANIC_NAMES if name in rows)
    organic_success = sum(int(rows[name]["success"]) for name in ORGANIC_NAMES if name in rows)
    organic_failures = sum(int(rows[name]["failure"]) for name in ORGANIC_NAMES if name in rows)
    injected_rows = [
        INJECTED_PREFIX + kind.value for kind in FaultKind if INJECTED_PREFIX + kind.value in rows
    ]
    injected = {name.removeprefix(INJECTED_PREFIX): int(rows[name]["failure"]) for name in injected_rows}
    applied: Counter[str] = Counter()
    for row in finals:
        applied.update({str(k): int(v) for k, v in (row.get("injected") or {}).items()})
    total_commands = sum(int(row["count"]) for row in rows.values())
    per_operation = []
    for name in ORGANIC_NAMES:
        if name not in rows:
            continue
        latency = OpLatency.of(data.histogram(REQUEST_TYPE, name))
        per_operation.append(
            OperationFigures(
                **latency.model_dump(),
                operation=name,
                failures=int(rows[name]["failure"]),
                ops_per_s=int(rows[name]["count"]) / active_s if active_s > 0 else None,
            )
        )
    ops = RedisOps(
        started_at=started_at,
        active_s=active_s,
        operations_total=total_commands,
        operations_sent=sent,
        ops_per_s=sent / active_s if active_s > 0 else None,
        total_ops_per_s=total_commands / active_s if active_s > 0 else None,
        organic=OpLatency.of(_merged(data, ORGANIC_NAMES)),
        server=OpLatency.of(_merged(data, ORGANIC_NAMES, SERVER_METRIC)),
        organic_success=organic_success,
        organic_failures=organic_failures,
        success_rate=organic_success / sent if sent else None,
        per_operation=tuple(per_operation),
        injected=injected,
        injected_failures=sum(injected.values()),
        injected_commands=sum(int(rows[name]["count"]) for name in injected_rows),
        injected_applied=dict(applied),
        injected_applied_total=sum(applied.values()),
        refused=int(rows[REFUSED_NAME]["count"]) if REFUSED_NAME in rows else 0,
        locust_failures=locust_failures,
        processes=len(finals),
        namespace=namespace,
        keys_left_behind=keys_left,
        keys_removed_after_run=removed_after,
    )
    return RedisFigures(
        redis=ops,
        pool=pool_figures(data, settings, finals),
        breaker=breaker_figures(data, finals, started_at),
        connection_health=health_figures(finals, data),
    )


__all__ = [
    "BreakerFigures",
    "ConnectionHealth",
    "OpLatency",
    "OperationFigures",
    "PoolFigures",
    "RedisFigures",
    "RedisOps",
    "breaker_figures",
    "final_samples",
    "health_figures",
    "pool_figures",
    "redis_figures",
]
