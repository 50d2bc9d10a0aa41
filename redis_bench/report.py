"""The Redis benchmark's report blocks (drawn by the terminal and the HTML report alike)."""

from __future__ import annotations

from perfsuite.sections import Line, Section, lines, ms, table
from redis_bench.figures import OperationFigures, RedisFigures


def operations_section(figures: RedisFigures) -> Section:
    """Operations sent to the server (4.2), per operation and all together."""
    ops = figures.redis
    total = OperationFigures(
        **ops.organic.model_dump(), operation="all", failures=ops.organic_failures, ops_per_s=ops.ops_per_s
    )
    rows = [
        [
            row.operation,
            f"{row.count:,}",
            f"{row.ops_per_s or 0:,.0f}",
            ms(row.avg_ms, 2),
            ms(row.p50_ms, 2),
            ms(row.p95_ms, 2),
            ms(row.p99_ms, 2),
            ms(row.max_ms, 2),
            f"{row.failures:,}",
        ]
        for row in (*ops.per_operation, total)
    ]
    health = figures.connection_health
    server = ops.server
    after = []
    if server.count:
        after.append(
            "time at Redis after the pool checkout (what the latency checks judge): "
            f"avg {ms(server.avg_ms, 2)}  P50 {ms(server.p50_ms, 2)}  P95 {ms(server.p95_ms, 2)}  "
            f"P99 {ms(server.p99_ms, 2)} ms"
        )
    if health.hit_rate is not None:
        after.append(f"GET hit rate {health.hit_rate * 100:.1f}% ({health.misses:,} misses)")
    return Section(
        f"Redis operations sent to the server (4.2), over {ops.active_s:.2f} s (latency from before the "
        "pool checkout)",
        table=table(["operation", "count", "ops/s", "avg ms", "P50", "P95", "P99", "max", "failed"], rows),
        after=lines(*after),
        key="operations",
    )


def accounting_section(figures: RedisFigures) -> Section:
    """Where every command went: sent, injected, refused; failures adding up to Locust's."""
    ops = figures.redis
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in ops.injected.items()) or "none"
    errors = ", ".join(
        f"{name} {count:,}" for name, count in figures.connection_health.errors_by_type.items()
    )
    failures = ops.injected_failures + ops.organic_failures + ops.refused
    rate = "-" if ops.success_rate is None else f"{ops.success_rate * 100:.3f}%"
    return Section(
        "accounting",
        lines=lines(
            f"commands      {ops.operations_total:,} = sent {ops.operations_sent:,} + injected "
            f"{ops.injected_commands:,} + refused by the open breaker {ops.refused:,}"
            f"   ({ops.total_ops_per_s or 0:,.0f} commands/s)",
            f"failures      injected {ops.injected_failures:,} ({kinds}) + organic {ops.organic_failures:,} "
            f"({errors or 'none'}) + refused {ops.refused:,} = {failures:,}; "
            f"Locust counted {ops.locust_failures:,}",
            f"injectors     applied {ops.injected_applied_total:,} faults; the collector recorded "
            f"{ops.injected_failures:,}",
            f"success rate  {rate} = successes / operations sent "
            "(injected faults and refusals are counted apart)",
        ),
        key="accounting",
    )


def pool_section(figures: RedisFigures) -> Section:
    """The bounded pool: peak, waits, connections (5.1, 5.2)."""
    pool = figures.pool
    peak = "-" if pool.peak_in_use is None else str(pool.peak_in_use)
    warn = pool.peak_utilization is not None and pool.peak_utilization >= pool.warn_utilization
    peak_line = Line(
        f"peak in use   {peak} of {pool.max_connections} ({(pool.peak_utilization or 0) * 100:.0f}%)"
        + (
            f"  WARNING: at or above {pool.warn_utilization * 100:.0f}% in "
            f"{pool.samples_over_warn} of {pool.samples} samples"
            if warn
            else ""
        ),
        "warn" if warn else "",
    )
    return Section(
        f"connection pool (5.1, 5.2): {pool.processes} process(es), each max {pool.max_connections} "
        f"connections, {pool.keep_idle} kept idle",
        lines=lines(
            peak_line,
            f"waits         {pool.waits:,} of {pool.acquires:,} acquisitions waited; wait avg "
            f"{ms(pool.wait_avg_ms, 2)} ms, P95 {ms(pool.wait_p95_ms, 2)} ms, "
            f"P99 {ms(pool.wait_p99_ms, 2)} ms, max {ms(pool.wait_max_ms, 2)} ms; "
            f"{pool.timeouts:,} timed out",
            f"connections   {pool.connects:,} connects, {pool.reconnects:,} reconnects, "
            f"{pool.broken:,} dropped after errors, {pool.closed_idle:,} closed after idling above pool_size",
        ),
        key="pool",
    )


def breaker_section(figures: RedisFigures) -> Section:
    """Trips and the timeline of injected outages and state changes."""
    breaker = figures.breaker
    states = ", ".join(sorted({str(state) for state in breaker.final_states.values()})) or "-"
    events: list[tuple[float, str]] = [
        (window.offset_s or 0.0, f"injected outage ({window.kind}) for {window.duration_s:.2f} s")
        for window in breaker.outages
    ]
    events += [
        (change.offset_s or 0.0, f"{change.from_state:>9} -> {change.to_state:<9}  {change.reason}")
        for change in breaker.timeline
    ]
    return Section(
        f"circuit breaker: {breaker.trips} trip(s), {breaker.reopens} reopen(s) after a failed trial, "
        f"{breaker.recovered_trips} closed again; {breaker.refused:,} calls refused; final state {states}",
        lines=lines(
            *(f"+{offset:8.3f} s  {text}" for offset, text in sorted(events, key=lambda event: event[0]))
        ),
        key="breaker",
    )


def health_section(figures: RedisFigures) -> Section:
    """PING latency measured beside the load, reconnects, organic errors."""
    health = figures.connection_health
    errors = ", ".join(f"{name} {count:,}" for name, count in health.errors_by_type.items()) or "none"
    return Section(
        "connection health",
        lines=lines(
            f"PING avg {ms(health.ping_avg_ms, 2)} ms, median {ms(health.ping_p50_ms, 2)} ms, max "
            f"{ms(health.ping_max_ms, 2)} ms ({health.ping_count} pings, {health.ping_errors} failed); "
            f"{figures.pool.reconnects:,} reconnects; organic errors by type: {errors}"
        ),
        key="health",
    )


def redis_sections(figures: RedisFigures) -> list[Section]:
    """Every Redis benchmark block, in report order."""
    return [
        operations_section(figures),
        accounting_section(figures),
        pool_section(figures),
        breaker_section(figures),
        health_section(figures),
    ]


__all__ = ["redis_sections"]
