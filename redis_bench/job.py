"""``perfsuite run --test-type redis``: preflight, Locust, read-back, thresholds, grade.

What the figures mean (also printed with the report):

- **operations sent**: GET/SET/DEL commands that went to the benchmarked server. Latency
  (avg/P50/P95/P99, from before waiting for a pooled connection to the reply), throughput and the
  **success rate** are computed over these only: successes / operations sent. A GET that finds no
  key is a success (a miss); a command failed only when it raised (timeout, connection error,
  pool timeout, error reply), never because of its reply's value.
- **injected**: commands deliberately sent through a real fault (faults.py); they are expected to
  fail and are reported apart, per fault kind, and not counted against the success rate.
- **refused by breaker**: commands the open breaker refused without sending; reported apart
  (outcome backpressure) and not counted against the success rate either.
- Failures add up: Locust's failure count = injected + organic failures + refusals, and the
  injected failures the collector recorded = the faults the injectors applied.
- **throughput**: operations sent per second over the span from the first to the last operation
  (all processes); **total ops/s** counts every command (sent, injected, refused).
- Breaker trips during injected outages are expected: the checks ask that it tripped and closed
  again after every trip; without injection, any trip is a failed check.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import redis

from perfsuite.collector import CollectorReader, LatencyHistogram, RunData, new_run_id
from perfsuite.config import RedisBenchConfig, SuiteConfig, redact_url
from perfsuite.errors import ConfigError, PerfsuiteError, ServiceUnavailable
from perfsuite.grading import Check
from perfsuite.launcher import LOCUSTFILES, LocustJob, LocustOutcome, run_locust
from perfsuite.result import JobResult
from perfsuite.services import collector_redis, ping_redis
from perfsuite.webhook_job import RunOptions
from redis_bench.faults import FaultKind
from redis_bench.runtime import BENCH_URL_ENV, INJECTED_PREFIX, ORGANIC_NAMES, REFUSED_NAME, REQUEST_TYPE
from redis_bench.workload import cleanup, count_keys, namespace_for

LOCUSTFILE = LOCUSTFILES / "redis_benchmark.py"
PERCENTILES = (50.0, 95.0, 99.0)
STOP_TIMEOUT_S = 5
"""Locust's --stop-timeout (whole seconds: Locust rejects "5.0")."""


def resolve_bench_url(config: SuiteConfig, collector_url: str, host: str | None = None) -> str:
    """The Redis to benchmark: a ``redis://`` ``--host``, else ``redis_bench.url``, else the
    collector's; it must answer PING (else :class:`ServiceUnavailable` naming where it came from)."""
    if host and host.startswith(("redis://", "rediss://", "unix://")):
        url, source = host, "--host"
    elif config.redis_bench.url:
        url, source = config.redis_bench.url, f"{config.source}: redis_bench.url"
    else:
        url, source = collector_url, "the collector's Redis"
    if not ping_redis(url, timeout_s=max(config.redis_bench.connect_timeout_s, 2.0)):
        raise ServiceUnavailable(
            f"{source}: Redis at {redact_url(url)} does not answer; start it or fix the URL"
        )
    return url


# ---------------------------------------------------------------------- figures


def _plain(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and math.isnan(value):
            value = None
        out[str(key)] = value
    return out


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        _plain({str(key): value for key, value in row.items()}) for row in frame.to_dict(orient="records")
    ]


def read_back(data: RunData, locust: LocustOutcome) -> dict[str, Any]:
    """Per-endpoint rows, failure reasons and the collector-vs-Locust integrity block."""
    recorded = data.requests
    return {
        "endpoints": _records(data.summary()),
        "failure_reasons": _records(data.failure_reasons()),
        "collector": {
            "requests": recorded,
            "locust_requests": locust.total_requests,
            "exact": recorded == locust.total_requests and data.complete,
            "writers_complete": data.complete,
            "problems": list(data.problems),
            "clamped": data.clamped,
        },
    }


def _latency(histogram: LatencyHistogram) -> dict[str, Any]:
    count = histogram.count
    if not count:
        return {"count": 0, "avg_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    percentiles = histogram.percentiles_us(PERCENTILES)
    return {
        "count": count,
        "avg_ms": histogram.mean_us / 1000,
        **{f"p{p:g}_ms": percentiles[p] / 1000 for p in PERCENTILES},
        "max_ms": histogram.max_us / 1000,
    }


def _merged(data: RunData, names: Iterable[str], metric: str = "rt") -> LatencyHistogram:
    merged = LatencyHistogram()
    for name in names:
        with contextlib.suppress(Exception):  # a metric no cell recorded
            merged.merge(data.histogram(REQUEST_TYPE, name, metric=metric))
    return merged


def _final_samples(data: RunData) -> list[dict[str, Any]]:
    """The last sample of every process (its ``final`` one when it wrote it)."""
    samples = data.marks("sample")
    if not len(samples) or "process" not in samples:
        return []
    last: dict[str, dict[str, Any]] = {}
    for row in _records(samples):
        if row.get("source") == "redis_bench":
            last[str(row["process"])] = row
    return list(last.values())


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def pool_figures(data: RunData, settings: RedisBenchConfig, finals: list[dict[str, Any]]) -> dict[str, Any]:
    """Pool peak and waits over every process, from the samples and the pool_wait histograms."""
    pools = [row["pool"] for row in finals if isinstance(row.get("pool"), Mapping)]
    waits = _latency(
        _merged(data, [*ORGANIC_NAMES, f"{INJECTED_PREFIX}{FaultKind.ERROR.value}"], "pool_wait")
    )
    samples = data.marks("sample")
    over = []
    first_over = None
    if len(samples) and "interval_utilization" in samples:
        for row in _records(samples):
            utilization = _number(row.get("interval_utilization"))
            if utilization is not None and utilization >= settings.pool_warn_utilization:
                over.append(row)
                first_over = first_over if first_over is not None else float(row["at"])
    peak = max((int(pool["peak_in_use"]) for pool in pools), default=None)
    max_connections = max((int(pool["max_connections"]) for pool in pools), default=settings.max_connections)
    acquires = sum(int(pool["acquires"]) for pool in pools)
    figures: dict[str, Any] = {
        "processes": len(pools),
        "max_connections": max_connections,
        "keep_idle": settings.pool_size,
        "peak_in_use": peak,
        "peak_utilization": (peak / max_connections) if peak is not None else None,
        "warn_utilization": settings.pool_warn_utilization,
        "samples": len(samples),
        "samples_over_warn": len(over),
        "first_over_warn_at": first_over,
        "acquires": acquires,
        "waits": sum(int(pool["waits"]) for pool in pools),
        "wait_total_s": sum(float(pool["wait_total_s"]) for pool in pools),
        "wait_max_ms": max((float(pool["wait_max_s"]) * 1000 for pool in pools), default=None),
        "wait_avg_ms": waits["avg_ms"],
        "wait_p50_ms": waits["p50_ms"],
        "wait_p95_ms": waits["p95_ms"],
        "wait_p99_ms": waits["p99_ms"],
        "timeouts": sum(int(pool["timeouts"]) for pool in pools),
        "connects": sum(int(pool["connects"]) for pool in pools),
        "reconnects": sum(int(pool["reconnects"]) for pool in pools),
        "connect_failures": sum(int(pool["connect_failures"]) for pool in pools),
        "closed_idle": sum(int(pool["closed"]) for pool in pools),
        "broken": sum(int(pool["broken"]) for pool in pools),
    }
    return figures


def breaker_figures(data: RunData, finals: list[dict[str, Any]], started_at: float | None) -> dict[str, Any]:
    """Trips, reopens, final states and the timeline of state changes (all processes)."""
    marks = data.marks("breaker")
    timeline = []
    for row in _records(marks):
        at = float(row["at"])
        timeline.append(
            {
                "at": at,
                "time": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
                "offset_s": (at - started_at) if started_at is not None else None,
                "process": row.get("process"),
                "from": row.get("from_state"),
                "to": row.get("to_state"),
                "reason": row.get("reason"),
            }
        )
    trips = sum(1 for change in timeline if change["from"] == "closed" and change["to"] == "open")
    reopens = sum(1 for change in timeline if change["from"] == "half-open" and change["to"] == "open")
    recovered = 0
    by_process: dict[str, list[dict[str, Any]]] = {}
    for change in timeline:
        by_process.setdefault(str(change["process"]), []).append(change)
    for changes in by_process.values():
        open_trip = False
        for change in changes:
            if change["from"] == "closed" and change["to"] == "open":
                open_trip = True
            elif change["to"] == "closed" and open_trip:
                recovered += 1
                open_trip = False
    outages = data.marks("fault")
    windows = [
        {
            "process": row.get("process"),
            "kind": row.get("fault_kind"),
            "start_s": float(row["start_s"]),
            "duration_s": float(row["duration_s"]),
            "offset_s": (float(row["start_s"]) - started_at) if started_at is not None else None,
        }
        for row in _records(outages)
        if row.get("fault") == "outage"
    ]
    return {
        "trips": trips,
        "reopens": reopens,
        "recovered_trips": recovered,
        "refused": sum(int(row.get("refused", 0)) for row in finals),
        "final_states": {str(row["process"]): row.get("breaker_state") for row in finals},
        "timeline": timeline,
        "outages": windows,
    }


def health_figures(finals: list[dict[str, Any]], data: RunData) -> dict[str, Any]:
    """PING latency, reconnects and organic errors by type (all processes)."""
    pings = int(sum(int(row.get("ping_count", 0)) for row in finals))
    total_ms = sum((_number(row.get("ping_avg_ms")) or 0.0) * int(row.get("ping_count", 0)) for row in finals)
    samples = data.marks("sample")
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
    return {
        "ping_count": pings,
        "ping_errors": int(sum(int(row.get("ping_errors", 0)) for row in finals)),
        "ping_avg_ms": total_ms / pings if pings else None,
        "ping_p50_ms": float(pd.Series(ping_values).quantile(0.5)) if ping_values else None,
        "ping_max_ms": max((_number(row.get("ping_max_ms")) or 0.0 for row in finals), default=None)
        if pings
        else None,
        "errors_by_type": dict(errors),
        "hits": hits,
        "misses": misses,
        "hit_rate": hits / (hits + misses) if hits + misses else None,
    }


def redis_figures(
    data: RunData, settings: RedisBenchConfig, locust: LocustOutcome, endpoints: list[dict[str, Any]]
) -> dict[str, Any]:
    """Everything the checks and the report need, from the stored run and Locust's own counts."""
    rows = {row["name"]: row for row in endpoints if row.get("request_type") == REQUEST_TYPE}
    finals = _final_samples(data)
    firsts = [v for v in (_number(row.get("first_step_at")) for row in finals) if v is not None]
    lasts = [v for v in (_number(row.get("last_step_at")) for row in finals) if v is not None]
    started_at = min(firsts) if firsts else (float(data.first_second) if data.first_second else None)
    active_s = (max(lasts) - min(firsts)) if firsts and lasts else float(data.duration_s)
    organic = _latency(_merged(data, ORGANIC_NAMES))
    sent = sum(int(rows[name]["count"]) for name in ORGANIC_NAMES if name in rows)
    organic_success = sum(int(rows[name]["success"]) for name in ORGANIC_NAMES if name in rows)
    organic_failures = sum(int(rows[name]["failure"]) for name in ORGANIC_NAMES if name in rows)
    injected = {
        kind.value: int(rows[INJECTED_PREFIX + kind.value]["failure"])
        for kind in FaultKind
        if INJECTED_PREFIX + kind.value in rows
    }
    injected_commands = sum(
        int(rows[INJECTED_PREFIX + kind.value]["count"])
        for kind in FaultKind
        if INJECTED_PREFIX + kind.value in rows
    )
    refused = int(rows[REFUSED_NAME]["count"]) if REFUSED_NAME in rows else 0
    applied: Counter[str] = Counter()
    for row in finals:
        applied.update({str(k): int(v) for k, v in (row.get("injected") or {}).items()})
    total_commands = sum(int(row["count"]) for row in rows.values())
    per_operation = []
    for name in ORGANIC_NAMES:
        if name not in rows:
            continue
        figures = _latency(data.histogram(REQUEST_TYPE, name))
        figures.update(
            operation=name,
            failures=int(rows[name]["failure"]),
            ops_per_s=int(rows[name]["count"]) / active_s if active_s > 0 else None,
        )
        per_operation.append(figures)
    return {
        "started_at": started_at,
        "active_s": active_s,
        "operations_total": total_commands,
        "operations_sent": sent,
        "ops_per_s": sent / active_s if active_s > 0 else None,
        "total_ops_per_s": total_commands / active_s if active_s > 0 else None,
        "organic": organic,
        "organic_success": organic_success,
        "organic_failures": organic_failures,
        "success_rate": organic_success / sent if sent else None,
        "per_operation": per_operation,
        "injected": injected,
        "injected_failures": sum(injected.values()),
        "injected_commands": injected_commands,
        "injected_applied": dict(applied),
        "injected_applied_total": sum(applied.values()),
        "refused": refused,
        "locust_failures": locust.total_failures,
        "processes": len(finals),
        "pool": pool_figures(data, settings, finals),
        "breaker": breaker_figures(data, finals, started_at),
        "health": health_figures(finals, data),
    }


# ---------------------------------------------------------------------- checks and report


def redis_checks(
    settings: RedisBenchConfig, figures: Mapping[str, Any], collector: Mapping[str, Any], keys_left: int
) -> list[Check]:
    """The seed's thresholds plus the integrity checks (see the module docstring)."""
    organic = figures["organic"]
    pool = figures["pool"]
    breaker = figures["breaker"]
    injecting = settings.test_circuit_breaker and (
        settings.failure_injection_rate > 0 or settings.outages > 0
    )
    checks = [
        Check("Redis average latency", organic["avg_ms"], "<=", settings.target_avg_latency_ms, "ms", "4.2"),
        Check(
            "Redis P99 latency",
            organic["p99_ms"],
            "<=",
            settings.max_p99_latency_ms,
            "ms",
            "4.2",
            critical=True,
        ),
        Check(
            "Redis throughput (operations sent)",
            figures["ops_per_s"],
            ">=",
            settings.min_ops_per_s,
            "ops/s",
            "4.2",
        ),
        Check(
            "Redis success rate (operations sent)",
            figures["success_rate"],
            ">=",
            settings.min_success_rate,
            "%",
            "5.1",
            critical=True,
        ),
        Check(
            "connection pool stayed within max_connections",
            pool["peak_in_use"],
            "<=",
            pool["max_connections"],
            "conn",
            "5.1",
        ),
        Check(
            "failures add up (injected + organic + refused = Locust's failures)",
            figures["injected_failures"] + figures["organic_failures"] + figures["refused"],
            "==",
            figures["locust_failures"],
            "ops",
        ),
        Check(
            "collector counted exactly what Locust sent",
            collector["requests"],
            "==",
            collector["locust_requests"],
            "req",
            critical=True,
        ),
        Check("benchmark keys removed (none left behind)", keys_left, "==", 0, "keys", critical=True),
    ]
    if injecting:
        checks.append(
            Check(
                "every injected fault recorded",
                figures["injected_failures"],
                "==",
                figures["injected_applied_total"],
                "ops",
            )
        )
        if settings.outages > 0:
            checks.append(
                Check(
                    "circuit breaker tripped under injected outages",
                    breaker["trips"],
                    ">=",
                    1,
                    "trips",
                    "5.1",
                )
            )
        trips = breaker["trips"]
        recovered = breaker["recovered_trips"] / trips if trips else (1.0 if settings.outages == 0 else None)
        checks.append(
            Check("circuit breaker closed again after every trip", recovered, ">=", 1.0, "%", "5.1")
        )
    else:
        checks.append(
            Check(
                "circuit breaker never tripped (no faults injected)",
                breaker["trips"],
                "==",
                0,
                "trips",
                "5.1",
            )
        )
    return checks


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.2f}"


def report_sections(settings: RedisBenchConfig, figures: Mapping[str, Any]) -> list[list[str]]:
    """The Redis-specific blocks of the terminal report."""
    organic = figures["organic"]
    rate = figures["success_rate"]
    header = (
        f"{'operation':<10}{'count':>10}{'ops/s':>10}{'avg ms':>9}{'P50':>8}{'P95':>8}{'P99':>8}{'max':>9}"
    )
    header += f"{'failed':>8}"
    ops = [f"Redis operations sent to the server (4.2), over {figures['active_s']:.2f} s", header]
    for row in [
        *figures["per_operation"],
        {
            **organic,
            "operation": "all",
            "ops_per_s": figures["ops_per_s"],
            "failures": figures["organic_failures"],
        },
    ]:
        ops.append(
            f"{row['operation']:<10}{row['count']:>10,}{(row.get('ops_per_s') or 0):>10,.0f}"
            f"{_ms(row['avg_ms']):>9}"
            f"{_ms(row['p50_ms']):>8}{_ms(row['p95_ms']):>8}{_ms(row['p99_ms']):>8}{_ms(row['max_ms']):>9}"
            f"{row['failures']:>8,}"
        )
    health = figures["health"]
    if health["hit_rate"] is not None:
        ops.append(f"GET hit rate {health['hit_rate'] * 100:.1f}% ({health['misses']:,} misses)")
    injected = figures["injected"]
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in injected.items()) or "none"
    errors = ", ".join(f"{name} {count:,}" for name, count in health["errors_by_type"].items()) or "none"
    accounting = [
        "accounting",
        f"  commands      {figures['operations_total']:,} = sent {figures['operations_sent']:,} + injected "
        f"{figures['injected_commands']:,} + refused by the open breaker {figures['refused']:,}"
        f"   ({(figures['total_ops_per_s'] or 0):,.0f} commands/s)",
        f"  failures      injected {figures['injected_failures']:,} ({kinds}) + organic "
        f"{figures['organic_failures']:,} ({errors}) + refused {figures['refused']:,} = "
        f"{figures['injected_failures'] + figures['organic_failures'] + figures['refused']:,}; "
        "Locust counted "
        f"{figures['locust_failures']:,}",
        f"  injectors     applied {figures['injected_applied_total']:,} faults; the collector recorded "
        f"{figures['injected_failures']:,}",
        "  success rate  "
        + ("-" if rate is None else f"{rate * 100:.3f}%")
        + " = successes / operations sent (injected faults and refusals are counted apart)",
    ]
    pool = figures["pool"]
    peak = pool["peak_in_use"]
    warn = pool["peak_utilization"] is not None and pool["peak_utilization"] >= settings.pool_warn_utilization
    pool_lines = [
        f"connection pool (5.1, 5.2): {pool['processes']} process(es), each max {pool['max_connections']} "
        f"connections, {pool['keep_idle']} kept idle",
        f"  peak in use   {'-' if peak is None else peak} of {pool['max_connections']} "
        f"({(pool['peak_utilization'] or 0) * 100:.0f}%)"
        + (
            f"  WARNING: at or above {settings.pool_warn_utilization * 100:.0f}% in "
            f"{pool['samples_over_warn']} of {pool['samples']} samples"
            if warn
            else ""
        ),
        f"  waits         {pool['waits']:,} of {pool['acquires']:,} acquisitions waited; wait avg "
        f"{_ms(pool['wait_avg_ms'])} ms, P95 {_ms(pool['wait_p95_ms'])} ms, "
        f"P99 {_ms(pool['wait_p99_ms'])} ms, "
        f"max {_ms(pool['wait_max_ms'])} ms; {pool['timeouts']:,} timed out",
        f"  connections   {pool['connects']:,} connects, {pool['reconnects']:,} reconnects, "
        f"{pool['broken']:,} dropped after errors, "
        f"{pool['closed_idle']:,} closed after idling above pool_size",
    ]
    breaker = figures["breaker"]
    states = ", ".join(sorted(set(str(state) for state in breaker["final_states"].values()))) or "-"
    events: list[tuple[float, str]] = [
        (window["offset_s"] or 0.0, f"injected outage ({window['kind']}) for {window['duration_s']:.2f} s")
        for window in breaker["outages"]
    ]
    events += [
        (change["offset_s"] or 0.0, f"{change['from']:>9} -> {change['to']:<9}  {change['reason']}")
        for change in breaker["timeline"]
    ]
    breaker_lines = [
        f"circuit breaker: {breaker['trips']} trip(s), {breaker['reopens']} reopen(s) after a failed trial, "
        f"{breaker['recovered_trips']} closed again; {breaker['refused']:,} calls refused; "
        f"final state {states}",
        *(f"  +{offset:8.3f} s  {text}" for offset, text in sorted(events, key=lambda event: event[0])),
    ]
    ping = (
        f"PING avg {_ms(health['ping_avg_ms'])} ms, median {_ms(health['ping_p50_ms'])} ms, max "
        f"{_ms(health['ping_max_ms'])} ms ({health['ping_count']} pings, {health['ping_errors']} failed)"
    )
    health_lines = [
        f"connection health: {ping}; {pool['reconnects']:,} reconnects; organic errors by type: {errors}",
    ]
    return [ops, accounting, pool_lines, breaker_lines, health_lines]


# ---------------------------------------------------------------------- the job


def run_redis(config: SuiteConfig, options: RunOptions) -> JobResult:
    """Run the Redis benchmark end to end and return its graded result."""
    settings = config.redis_bench
    with contextlib.ExitStack() as stack:
        collector_url = collector_redis(config, stack, options.state_dir)
        url = resolve_bench_url(config, collector_url, options.host)
        run_id = options.run_id or new_run_id()
        env = {**config.process_env(), "REDIS_URL": collector_url, BENCH_URL_ENV: url}
        job = LocustJob(
            locustfile=LOCUSTFILE,
            host=redact_url(url) or "redis",
            run_id=run_id,
            env=env,
            workers=options.workers,
            log_dir=options.state_dir / "logs",
            stop_timeout_s=STOP_TIMEOUT_S,
        )
        outcome = run_locust(job, timeout_s=settings.max_duration_s + 60, verbose=options.verbose)
        keys_left, removed_after = _sweep(url, namespace_for(settings.key_prefix, run_id), settings)
        reader = CollectorReader(collector_url, key_prefix=config.redis.key_prefix)
        try:
            data = reader.load(run_id)
        except ConfigError:
            where = f"; see {outcome.log_path}" if outcome.log_path else ""
            raise PerfsuiteError(
                f"the Redis benchmark stored no results (Locust exited with code {outcome.returncode}{where})"
            ) from None
        meta = reader.meta(run_id)
    base = read_back(data, outcome)
    figures = redis_figures(data, settings, outcome, base["endpoints"])
    organic = figures["organic"]
    summary = {
        "requests": figures["operations_sent"],
        "success": figures["organic_success"],
        "failure": figures["organic_failures"],
        "rejected": 0,
        "backpressure": figures["refused"],
        "success_rate": figures["success_rate"] or 0.0,
        "avg_ms": organic["avg_ms"],
        "p50_ms": organic["p50_ms"],
        "p95_ms": organic["p95_ms"],
        "p99_ms": organic["p99_ms"],
        "max_ms": organic["max_ms"],
        "rps": figures["ops_per_s"] or 0.0,
        "duration_s": figures["active_s"],
        "operations_total": figures["operations_total"],
        "injected": figures["injected_failures"],
    }
    result = JobResult(
        test_type="redis",
        run_id=run_id,
        scenario=config.scenario,
        host=redact_url(url) or "",
        started_at=str(meta.get("started_at", "")),
        stopped_at=str(meta.get("stopped_at", "")),
        summary=summary,
        endpoints=base["endpoints"],
        collector=base["collector"],
        failure_reasons=base["failure_reasons"],
        interrupted=outcome.interrupted,
        config=config.snapshot(),
    )
    plain = {key: value for key, value in figures.items() if key not in ("pool", "breaker", "health")}
    result.extra["redis"] = {
        **plain,
        "namespace": namespace_for(settings.key_prefix, run_id),
        "keys_left_behind": keys_left,
        "keys_removed_after_run": removed_after,
    }
    result.extra["pool"] = figures["pool"]
    result.extra["breaker"] = figures["breaker"]
    result.extra["connection_health"] = figures["health"]
    result.extra["report_sections"] = report_sections(settings, figures)
    result.checks = redis_checks(settings, figures, base["collector"], keys_left)
    pool = figures["pool"]
    if pool["peak_utilization"] is not None and pool["peak_utilization"] >= settings.pool_warn_utilization:
        result.warnings.append(
            f"connection pool reached {pool['peak_utilization'] * 100:.0f}% of max_connections "
            f"({pool['peak_in_use']} of {pool['max_connections']}; warning at "
            f"{settings.pool_warn_utilization * 100:.0f}%, requirement 5.2): {pool['waits']:,} acquisitions "
            "waited for a connection"
        )
    if outcome.timed_out:
        result.warnings.append("Locust did not finish in time and was stopped; figures cover what ran")
    if figures["processes"] == 0:
        result.warnings.append("no pool/breaker samples were recorded (did the Locust processes start?)")
    stages = data.marks("stage")
    if len(stages) and "reason" in stages and (stages["reason"] == "max_duration_s").any():
        result.warnings.append(
            f"stopped at redis_bench.max_duration_s ({settings.max_duration_s:g} s) "
            "before every operation ran"
        )
    if outcome.returncode not in (0, None) and not outcome.interrupted:
        where = f" (log: {outcome.log_path})" if outcome.log_path else ""
        result.warnings.append(f"Locust exited with code {outcome.returncode}{where}")
    if not base["collector"]["exact"]:
        result.warnings.append(
            "the collector's totals differ from Locust's: latency figures may be incomplete"
        )
    if keys_left:
        result.warnings.append(f"{keys_left:,} benchmark keys were still present after the run; removed now")
    return result


def _sweep(url: str, namespace: str, settings: RedisBenchConfig) -> tuple[int, int]:
    """After Locust: (keys found left in the run's namespace, keys removed now)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=settings.connect_timeout_s, socket_timeout=5.0)
    try:
        left = count_keys(client, namespace)
        removed = cleanup(client, namespace) if left else 0
        return left, removed
    finally:
        client.close()


__all__ = [
    "LOCUSTFILE",
    "read_back",
    "redis_checks",
    "redis_figures",
    "report_sections",
    "resolve_bench_url",
    "run_redis",
]
