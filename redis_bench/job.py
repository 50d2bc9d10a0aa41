"""``perfsuite run --test-type redis``: the Redis benchmark as a test type.

What the figures mean: :mod:`redis_bench.figures`. Breaker trips during injected outages are
expected: the checks ask that it tripped and closed again after every trip; without injection, any
trip is a failed check.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import redis
from pydantic import BaseModel

from perfsuite.collect import Collected
from perfsuite.config import RedisBenchConfig, SuiteConfig, redact_url
from perfsuite.embedded import start_redis
from perfsuite.errors import ServiceUnavailable
from perfsuite.grading import Check
from perfsuite.intervals import Selection
from perfsuite.jobs import Metric, Prepared, RunOptions, TestType
from perfsuite.launcher import LOCUSTFILES, LocustOutcome
from perfsuite.marks import STAGE
from perfsuite.result import RunResult, Summary, Target
from perfsuite.sections import Section
from perfsuite.services import ping_redis
from perfsuite.worker_health import WorkerHealth
from redis_bench.figures import RedisFigures, redis_figures
from redis_bench.report import redis_sections
from redis_bench.runtime import BENCH_URL_ENV, ORGANIC_NAMES, REQUEST_TYPE
from redis_bench.workload import cleanup, count_keys, namespace_for

LOCUSTFILE = LOCUSTFILES / "redis_benchmark.py"


def resolve_bench_url(
    config: SuiteConfig, stack: contextlib.ExitStack, host: str | None = None
) -> tuple[str, bool]:
    """The Redis to benchmark and whether the suite started it: a ``redis://`` ``--host``, else
    ``redis_bench.url``, else a private redis-server started for the benchmark (stopped with
    ``stack``). Never the collector's Redis by accident: benchmarking a server means saying which.
    A given one must answer PING (else :class:`ServiceUnavailable` naming where it came from)."""
    if host and host.startswith(("redis://", "rediss://", "unix://")):
        url, source = host, "--host"
    elif config.redis_bench.url:
        url, source = config.redis_bench.url, f"{config.source}: redis_bench.url"
    else:
        server = start_redis()
        stack.callback(server.stop)
        return server.url, True
    if not ping_redis(url, timeout_s=max(config.redis_bench.connect_timeout_s, 2.0)):
        raise ServiceUnavailable(
            f"{source}: Redis at {redact_url(url)} does not answer; start it or fix the URL"
        )
    return url, False


@dataclass(frozen=True, slots=True)
class Swept:
    """Keys of the run's namespace found after Locust stopped, and removed then."""

    namespace: str
    left: int
    removed: int


def sweep(url: str, namespace: str, settings: RedisBenchConfig) -> Swept:
    """After Locust: (keys found left in the run's namespace, keys removed now)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=settings.connect_timeout_s, socket_timeout=5.0)
    try:
        left = count_keys(client, namespace)
        removed = cleanup(client, namespace) if left else 0
        return Swept(namespace, left, removed)
    finally:
        client.close()


def figures_of(result: RunResult) -> RedisFigures:
    """The Redis figures of ``result`` (empty ones when it has none)."""
    return result.figures if isinstance(result.figures, RedisFigures) else RedisFigures()


LATENCY_CHECKS = ("Redis average latency", "Redis P99 latency")


def generator_queue_warning(
    settings: RedisBenchConfig, figures: RedisFigures, saturated: Sequence[WorkerHealth]
) -> str:
    """Why the latency of a run whose generator saturated measures the generator: each of
    ``concurrent_operations`` clients sends its next operation as soon as the last one is answered,
    so a generator out of CPU sets the pace, and every answer waits for its event loop before it is
    timed."""
    names = "; ".join(
        f"{worker.host} pid {worker.pid or '?'}: " + ", ".join(worker.saturation_reasons)
        for worker in saturated
    )
    ops = figures.redis
    pace = f" at {ops.ops_per_s:,.0f} ops/s" if ops.ops_per_s else ""
    return (
        f"the benchmark's own Locust process was saturated ({names}): its {settings.concurrent_operations} "
        f"clients send without pause{pace}, so each answer waited for the generator's event loop before "
        "it was timed and the latency figures measure the generator as much as Redis; for Redis's own "
        "latency use fewer redis_bench.concurrent_operations or more --workers (redis-benchmark beside "
        "it shows what Redis itself answers)"
    )


def redis_checks(settings: RedisBenchConfig, figures: RedisFigures) -> list[Check]:
    """The seed's thresholds plus the benchmark's own integrity checks (see the module docstring)."""
    ops, pool, breaker = figures.redis, figures.pool, figures.breaker
    latency = ops.server if ops.server.count else ops.organic
    injecting = settings.test_circuit_breaker and (
        settings.failure_injection_rate > 0 or settings.outages > 0
    )
    checks = [
        Check("Redis average latency", latency.avg_ms, "<=", settings.target_avg_latency_ms, "ms", "4.2"),
        Check(
            "Redis P99 latency",
            latency.p99_ms,
            "<=",
            settings.max_p99_latency_ms,
            "ms",
            "4.2",
            critical=True,
        ),
        Check(
            "Redis throughput (operations sent)", ops.ops_per_s, ">=", settings.min_ops_per_s, "ops/s", "4.2"
        ),
        Check(
            "Redis success rate (operations sent)",
            ops.success_rate,
            ">=",
            settings.min_success_rate,
            "%",
            "5.1",
            critical=True,
        ),
        Check(
            "connection pool stayed within max_connections",
            None if pool.peak_in_use is None else float(pool.peak_in_use),
            "<=",
            pool.max_connections,
            "conn",
            "5.1",
        ),
        Check(
            "failures add up (injected + organic + refused = Locust's failures)",
            ops.injected_failures + ops.organic_failures + ops.refused,
            "==",
            ops.locust_failures,
            "ops",
        ),
        Check(
            "benchmark keys removed (none left behind)", ops.keys_left_behind, "==", 0, "keys", critical=True
        ),
    ]
    if injecting:
        checks.append(
            Check(
                "every injected fault recorded",
                ops.injected_failures,
                "==",
                ops.injected_applied_total,
                "ops",
            )
        )
        if settings.outages > 0:
            checks.append(
                Check(
                    "circuit breaker tripped under injected outages", breaker.trips, ">=", 1, "trips", "5.1"
                )
            )
        trips = breaker.trips
        recovered = breaker.recovered_trips / trips if trips else (1.0 if settings.outages == 0 else None)
        checks.append(
            Check("circuit breaker closed again after every trip", recovered, ">=", 1.0, "%", "5.1")
        )
    else:
        checks.append(
            Check(
                "circuit breaker never tripped (no faults injected)", breaker.trips, "==", 0, "trips", "5.1"
            )
        )
    return checks


class RedisBenchTest(TestType):
    """The bot's Redis access pattern under load, through a bounded pool and a breaker, with faults."""

    name: ClassVar[str] = "redis"
    title: ClassVar[str] = "Redis benchmark (pool, breaker, injected faults)"
    order: ClassVar[int] = 20
    locustfile = LOCUSTFILE
    figures_model: ClassVar[type[BaseModel]] = RedisFigures
    good_outcomes: ClassVar[tuple[str, ...]] = ("success",)

    def prepare(self, config: SuiteConfig, stack: contextlib.ExitStack, options: RunOptions) -> Prepared:
        url, embedded = resolve_bench_url(config, stack, options.host)
        host = redact_url(url) or "redis"
        return Prepared(
            target=Target(kind="redis", host=host, embedded=embedded),
            locust_host=host,
            env={BENCH_URL_ENV: url},
            timeout_s=config.redis_bench.max_duration_s + 60,
            context=url,
        )

    def observe(self, config: SuiteConfig, prepared: Prepared, outcome: LocustOutcome, run_id: str) -> Swept:
        settings = config.redis_bench
        return sweep(prepared.context, namespace_for(settings.key_prefix, run_id), settings)

    def figures(
        self, config: SuiteConfig, prepared: Prepared, collected: Collected, observed: Any
    ) -> RedisFigures:
        swept = observed if isinstance(observed, Swept) else Swept(namespace="", left=0, removed=0)
        failures = collected.data.locust_total_failures or 0
        return redis_figures(
            collected.data, config.redis_bench, failures, swept.namespace, swept.left, swept.removed
        )

    def summary(self, default: Summary, figures: BaseModel) -> Summary:
        ops = figures.redis if isinstance(figures, RedisFigures) else RedisFigures().redis
        organic = ops.server if ops.server.count else ops.organic  # runs before the server metric: organic
        return Summary(
            requests=ops.operations_sent,
            success=ops.organic_success,
            failure=ops.organic_failures,
            avg_ms=organic.avg_ms,
            p50_ms=organic.p50_ms,
            p95_ms=organic.p95_ms,
            p99_ms=organic.p99_ms,
            max_ms=organic.max_ms,
            rps=ops.ops_per_s or 0.0,
            duration_s=ops.active_s,
            excluded={"injected": ops.injected_commands, "refused_by_breaker": ops.refused},
        )

    def checks(self, config: SuiteConfig, result: RunResult) -> list[Check]:
        figures = figures_of(result)
        checks = redis_checks(config.redis_bench, figures)
        if not any(worker.saturated for worker in result.workers):
            return checks
        note = "measured by a saturated generator: includes its own queue (see the warnings)"
        return [
            dataclasses.replace(check, note=note) if check.name in LATENCY_CHECKS else check
            for check in checks
        ]

    def warnings(self, config: SuiteConfig, result: RunResult) -> list[str]:
        settings = config.redis_bench
        figures = figures_of(result)
        warnings: list[str] = []
        pool = figures.pool
        if pool.peak_utilization is not None and pool.peak_utilization >= settings.pool_warn_utilization:
            warnings.append(
                f"connection pool reached {pool.peak_utilization * 100:.0f}% of max_connections "
                f"({pool.peak_in_use} of {pool.max_connections}; warning at "
                f"{settings.pool_warn_utilization * 100:.0f}%, requirement 5.2): {pool.waits:,} acquisitions "
                "waited for a connection"
            )
        if pool.waits:
            wait = f"avg {pool.wait_avg_ms:.2f} ms" if pool.wait_avg_ms is not None else "some time"
            warnings.append(
                f"{pool.waits:,} of {pool.acquires:,} operations queued for one of the benchmark's own "
                f"{pool.max_connections} pooled connections ({wait}): that queue is ours, not Redis's "
                "(redis_bench.max_connections below concurrent_operations); the latency checks use the "
                "time at Redis after the checkout"
            )
        saturated = [worker for worker in result.workers if worker.saturated]
        if saturated:
            warnings.append(generator_queue_warning(settings, figures, saturated))
        if figures.redis.processes == 0:
            warnings.append("no pool/breaker samples were recorded (did the Locust processes start?)")
        if any(mark.get("kind") == STAGE and mark.get("reason") == "max_duration_s" for mark in result.marks):
            warnings.append(
                f"stopped at redis_bench.max_duration_s ({settings.max_duration_s:g} s) "
                "before every operation ran"
            )
        left = figures.redis.keys_left_behind
        if left:
            warnings.append(f"{left:,} benchmark keys were still present after the run; removed now")
        return warnings

    def sections(self, result: RunResult) -> list[Section]:
        return redis_sections(figures_of(result))

    def selection(self, result: RunResult) -> Selection:
        names = tuple(op.operation for op in figures_of(result).redis.per_operation) or ORGANIC_NAMES
        return Selection(request_type=REQUEST_TYPE, names=names, good_outcomes=self.good_outcomes)

    def metrics(self) -> tuple[Metric, ...]:
        def pool_peak(result: RunResult) -> float | None:
            return figures_of(result).pool.peak_utilization

        def connection_failure_rate(result: RunResult) -> float | None:
            """Share of operations sent that failed (timeouts, refused or reset connections, pool
            exhaustion, error replies): the seed's "connection failure rate"."""
            rate = result.summary.success_rate
            return None if rate is None else 1.0 - rate

        return (
            Metric(
                "redis_avg_ms", "Redis average latency", "ms", True, "4.2", lambda r: r.summary.avg_ms, "avg"
            ),
            Metric("redis_p50_ms", "Redis P50 latency", "ms", True, "4.2", lambda r: r.summary.p50_ms, "p50"),
            Metric("redis_p95_ms", "Redis P95 latency", "ms", True, "4.2", lambda r: r.summary.p95_ms, "p95"),
            Metric("redis_p99_ms", "Redis P99 latency", "ms", True, "4.2", lambda r: r.summary.p99_ms, "p99"),
            Metric(
                "redis_success_rate",
                "Redis success rate",
                "%",
                False,
                "5.1",
                lambda r: r.summary.success_rate,
                "success_rate",
                critical=True,
            ),
            Metric(
                "redis_connection_failure_rate",
                "Redis connection failure rate",
                "%",
                True,
                "5.1",
                connection_failure_rate,
            ),
            Metric("redis_ops_per_s", "Redis throughput", "req/s", False, "4.2", lambda r: r.summary.rps),
            Metric("redis_pool_peak_utilization", "Redis pool peak utilization", "%", True, "5.2", pool_peak),
        )


__all__ = ["LOCUSTFILE", "RedisBenchTest", "figures_of", "redis_checks", "resolve_bench_url", "sweep"]
