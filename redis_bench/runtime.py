"""One process's benchmark engine: pool, breaker, fault injector and workload, with exact counts.

A Locust process builds one :class:`BenchRuntime` per test and every :class:`~redis_bench.user.
RedisUser` in it shares it (one pool and one breaker per process, as in the application). Each
step (:meth:`BenchRuntime.run_step`) sends one command, or ``pipeline_depth`` commands in one round
trip, and reports every command as an :class:`OpResult`:

=====================  ==========================================  ==============
name                   what happened                               outcome
=====================  ==========================================  ==============
``GET/SET/DEL``        sent to the benchmark server                success/failure
``injected <kind>``    sent through an injected fault (faults.py)  failure
``refused by breaker`` the open breaker refused it, nothing sent   backpressure
=====================  ==========================================  ==============

A command succeeded when no exception was raised: the reply's value is never judged (a GET
miss is a success and is counted as a miss). The breaker judges reachability: connection errors,
timeouts and pool timeouts count against it; an error reply (``WRONGTYPE``...) fails the command
but proves the server answered, so it counts as a success for the breaker.

The runtime also counts everything itself (:meth:`BenchRuntime.counters`), independently of the
collector, so that the report can prove that injected + organic failures add up to the failures
seen.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from redis.exceptions import RedisError, ResponseError

from perfsuite.config import RedisBenchConfig
from perfsuite.marks import BREAKER, FAULT, SAMPLE
from redis_bench.breaker import BreakerTransition, CircuitBreaker, CircuitOpenError
from redis_bench.client import BenchClient, BoundedPool, ping_once
from redis_bench.faults import FaultInjector, FaultKind, FaultPlan, FaultServers, OutageWindow
from redis_bench.workload import Operation, WorkItem, Workload

logger = logging.getLogger(__name__)

BENCH_URL_ENV = "REDIS_BENCH_URL"
"""Environment variable naming the Redis to benchmark (a secret: it may hold a password)."""
DEFAULT_BENCH_URL = "redis://127.0.0.1:6379/0"
REQUEST_TYPE = "REDIS"
POOL_WAIT_METRIC = "pool_wait"
"""Timing metric: how long a command waited for one of the benchmark's own pooled connections."""
SERVER_METRIC = "server"
"""Timing metric: a command's time after the pool checkout (the round trip to Redis itself)."""
"""request_type of every event the benchmark fires."""
REFUSED_NAME = "refused by breaker"
"""Request name of commands the open breaker refused."""
INJECTED_PREFIX = "injected "
"""Request names of injected commands: ``injected reset``, ``injected timeout``..."""
ORGANIC_NAMES = tuple(operation.value for operation in Operation)
"""Request names of commands sent to the benchmark server."""


def injected_name(kind: FaultKind) -> str:
    """Request name of commands sent through fault ``kind``."""
    return INJECTED_PREFIX + kind.value


class MarkFn(Protocol):
    """Where marks go (the collector writer's ``mark``)."""

    def __call__(self, kind: str, at_s: float | None = None, **fields: Any) -> None: ...


class OpResult(NamedTuple):
    """One command's fate, as the Locust request event reports it (a named tuple: one per command,
    on the hot path)."""

    name: str
    """``GET``, ``SET``, ``DEL``, ``injected <kind>`` or ``refused by breaker``."""
    response_time_ms: float
    """From the step's start (before waiting for a connection) to its reply or error."""
    response_length: int
    outcome: str
    """success, failure or backpressure (the collector's outcomes)."""
    error: BaseException | None = None
    reason: str | None = None
    pool_wait_ms: float = 0.0
    """Time spent waiting for a free connection (0 when one was free)."""


def describe(error: BaseException) -> str:
    """``ExceptionType: message`` (what failure reasons and error counts are keyed by)."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def process_label() -> str:
    """``host:pid`` of this process (marks carry it, to tell processes apart)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class BenchRuntime:
    """What one process shares between its users (see the module docstring)."""

    def __init__(
        self,
        settings: RedisBenchConfig,
        url: str,
        namespace: str,
        *,
        planned_ops: Callable[[], int],
        mark: MarkFn | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """``planned_ops`` returns how many operations this process will run in all (it places the
        outage windows); ``mark`` records samples, breaker changes and fault windows."""
        self.settings = settings
        self.process = process_label()
        self._mark = mark
        self._planned_ops = planned_ops
        self.pool = BoundedPool.from_config(url, settings)
        self.client = BenchClient(self.pool)
        self.workload = Workload(settings, namespace, rng)
        self.plan = FaultPlan.from_config(settings)
        self.servers = FaultServers() if self.plan.active else None
        self.breaker = CircuitBreaker.from_config(settings.breaker, on_transition=self._on_transition)
        self.injector = FaultInjector(
            self.plan,
            self.servers,
            self.client,
            self.workload.wrongtype_key,
            rng=rng,
            on_outage=self._on_outage,
        )
        self._ping_connection = self.pool.new_connection()
        self._pipelined = settings.pipeline_depth > 1
        self._warned_utilization = False
        self.attempted = 0
        """Commands attempted (every OpResult)."""
        self.organic_success = 0
        self.organic_failure = 0
        self.refused = 0
        self.hits = 0
        self.misses = 0
        self.errors_by_type: Counter[str] = Counter()
        """Organic failures by exception type."""
        self.ping_count = 0
        self.ping_errors = 0
        self.ping_last_ms: float | None = None
        self.ping_max_ms: float = 0.0
        self.ping_total_ms: float = 0.0
        self.utilization_warnings = 0
        """Samples at or above ``pool_warn_utilization``."""
        self.first_step_at: float | None = None
        """Wall-clock start of the first step (epoch seconds)."""
        self.last_step_at: float | None = None
        """Wall-clock end of the latest step (epoch seconds)."""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Open ``pool_size`` connections ahead of the load (failures surface in the first ops)."""
        try:
            self.pool.prewarm()
        except (RedisError, OSError) as error:
            logger.warning(
                "redis_bench: could not open the pool's connections ahead of the load: %s", describe(error)
            )

    def close(self) -> None:
        """Close the pool, the PING connection and the fault servers."""
        self.pool.close()
        self._ping_connection.disconnect()
        if self.servers is not None:
            self.servers.close()

    # ------------------------------------------------------------------ the hot path

    def run_step(self, count: int, emit: Callable[[OpResult], None]) -> float:
        """Run ``count`` commands (pipelined when ``count > 1``) and ``emit`` each one's result.

        Returns the seconds the caller should back off (non-zero after the breaker refused).
        """
        workload = self.workload
        items = [workload.next_item() for _ in range(count)]
        self.attempted += count
        if self.first_step_at is None:
            self.first_step_at = time.time()
        try:
            return self._step(items, count, emit)
        finally:
            self.last_step_at = time.time()

    def _step(self, items: list[WorkItem], count: int, emit: Callable[[OpResult], None]) -> float:
        started = time.perf_counter()
        try:
            permit = self.breaker.before_call()
        except CircuitOpenError as refused:
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.refused += count
            reason = f"circuit breaker {refused.state.value}"
            for _ in items:
                emit(OpResult(REFUSED_NAME, elapsed_ms, 0, "backpressure", refused, reason))
            return refused.retry_after_s
        kind = self.injector.choose(self.attempted, self._planned_ops()) if self.plan.active else None
        commands = [item.packed for item in items]
        try:
            if kind is not None:
                self.injector.inject(kind, commands)
            if count == 1 and not self._pipelined:
                reply, waited_s = self.client.execute(commands[0])
                replies: Sequence[Any] = (reply,)
            else:
                replies, waited_s = self.client.execute_many(commands)
        except (RedisError, OSError) as error:
            elapsed_ms = (time.perf_counter() - started) * 1000
            if isinstance(error, ResponseError):
                self.breaker.record_success(permit)  # the server answered: it is reachable
            else:
                self.breaker.record_failure(permit, error)
            reason = describe(error)
            if kind is not None:
                name = injected_name(kind)
                for _ in items:
                    emit(OpResult(name, elapsed_ms, 0, "failure", error, reason))
            else:
                self.organic_failure += count
                self.errors_by_type[type(error).__name__] += count
                for item in items:
                    emit(OpResult(item.operation.value, elapsed_ms, 0, "failure", error, reason))
            return 0.0
        except BaseException:
            self.breaker.record_abandoned(permit)
            raise
        elapsed_ms = (time.perf_counter() - started) * 1000
        wait_ms = waited_s * 1000
        for item, reply in zip(items, replies, strict=True):
            if isinstance(reply, ResponseError):
                self.organic_failure += 1
                self.errors_by_type[type(reply).__name__] += 1
                emit(
                    OpResult(item.operation.value, elapsed_ms, 0, "failure", reply, describe(reply), wait_ms)
                )
                continue
            self.organic_success += 1
            length = 0
            if item.operation is Operation.GET:
                if reply is None:
                    self.misses += 1
                else:
                    self.hits += 1
                    length = len(reply)
            emit(OpResult(item.operation.value, elapsed_ms, length, "success", None, None, wait_ms))
        self.breaker.record_success(permit)  # error replies too: the server answered
        return 0.0

    # ------------------------------------------------------------------ marks and samples

    def _on_transition(self, transition: BreakerTransition) -> None:
        log = logger.warning if transition.to_state.value == "open" else logger.info
        log(
            "redis_bench: circuit breaker %s -> %s (%s)",
            transition.from_state.value,
            transition.to_state.value,
            transition.reason,
        )
        if self._mark is not None:
            self._mark(
                BREAKER,
                at_s=transition.at_s,
                process=self.process,
                from_state=transition.from_state.value,
                to_state=transition.to_state.value,
                reason=transition.reason,
                elapsed_s=round(transition.elapsed_s, 6),
                trips=self.breaker.trips,
            )

    def _on_outage(self, window: OutageWindow) -> None:
        logger.info(
            "redis_bench: injected outage %d (%s) for %.2f s",
            window.index + 1,
            window.kind.value,
            window.end_s - window.start_s,
        )
        if self._mark is not None:
            self._mark(
                FAULT,
                at_s=window.start_s,
                process=self.process,
                fault="outage",
                fault_kind=window.kind.value,
                index=window.index,
                start_s=window.start_s,
                end_s=window.end_s,
                duration_s=window.end_s - window.start_s,
            )

    def ping(self) -> float | None:
        """One PING on a dedicated connection; its round trip in ms, or None if it failed."""
        try:
            latency_ms = ping_once(self._ping_connection) * 1000
        except (RedisError, OSError):
            self.ping_errors += 1
            return None
        self.ping_count += 1
        self.ping_last_ms = latency_ms
        self.ping_total_ms += latency_ms
        self.ping_max_ms = max(self.ping_max_ms, latency_ms)
        return latency_ms

    def counters(self) -> dict[str, Any]:
        """This process's own cumulative counts (JSON-able)."""
        return {
            "attempted": self.attempted,
            "organic_success": self.organic_success,
            "organic_failure": self.organic_failure,
            "injected": {kind.value: count for kind, count in self.injector.injected.items()},
            "refused": self.refused,
            "hits": self.hits,
            "misses": self.misses,
            "errors_by_type": dict(self.errors_by_type),
            "breaker_trips": self.breaker.trips,
            "breaker_reopens": self.breaker.reopens,
            "breaker_state": self.breaker.state.value,
            "ping_count": self.ping_count,
            "ping_errors": self.ping_errors,
            "ping_avg_ms": self.ping_total_ms / self.ping_count if self.ping_count else None,
            "ping_max_ms": self.ping_max_ms if self.ping_count else None,
            "utilization_warnings": self.utilization_warnings,
            "first_step_at": self.first_step_at,
            "last_step_at": self.last_step_at,
        }

    def sample(self, final: bool = False) -> dict[str, Any]:
        """PING, read the pool gauges, and record one ``sample`` mark; returns its fields."""
        ping_ms = self.ping()
        stats = self.pool.stats(reset_interval=True)
        interval_utilization = stats.interval_peak_in_use / stats.max_connections
        if interval_utilization >= self.settings.pool_warn_utilization:
            self.utilization_warnings += 1
            if not self._warned_utilization:
                self._warned_utilization = True
                logger.warning(
                    "redis_bench: connection pool at %.0f%% of max_connections (%d of %d in use); "
                    "warning threshold %.0f%% (requirement 5.2)",
                    interval_utilization * 100,
                    stats.interval_peak_in_use,
                    stats.max_connections,
                    self.settings.pool_warn_utilization * 100,
                )
        fields: dict[str, Any] = {
            "source": "redis_bench",
            "process": self.process,
            "final": final,
            "ping_ms": ping_ms,
            "pool": stats.to_dict(),
            "interval_utilization": interval_utilization,
            **self.counters(),
        }
        if self._mark is not None:
            self._mark(SAMPLE, **fields)
        return fields


__all__ = [
    "BENCH_URL_ENV",
    "DEFAULT_BENCH_URL",
    "INJECTED_PREFIX",
    "ORGANIC_NAMES",
    "REFUSED_NAME",
    "REQUEST_TYPE",
    "BenchRuntime",
    "MarkFn",
    "OpResult",
    "WorkItem",
    "describe",
    "injected_name",
    "process_label",
]
