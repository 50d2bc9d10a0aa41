"""The Locust side of the benchmark: ``RedisUser``, its load shape, and the per-test lifecycle.

- :class:`RedisUser`: one of ``concurrent_operations`` concurrent clients; it runs
  ``operations_per_worker`` operations (``pipeline_depth`` per round trip) through its process's
  :class:`~redis_bench.runtime.BenchRuntime` and fires one Locust ``request`` event per command
  (request_type ``REDIS``, name = the operation; see runtime.py for the other names), with
  ``context["outcome"]`` and ``context["failure_reason"]`` for the collector.
- :class:`RedisBenchShape`: spawns the users at once and stops the test when every operation is
  done (Locust's request count) or after ``max_duration_s``.
- :func:`on_test_start` / :func:`on_test_stop`: the master (or local runner) preloads the run's key
  namespace before any user starts and removes it at the end; every process that runs users
  builds its runtime, samples it every ``sample_interval_s`` (collector marks ``sample``) and
  closes it. ``on_test_stop`` must run *before* the collector's own test_stop listener, which
  closes the writer the final sample goes to: register it at import time (the collector is
  installed later, in ``init``), as ``locustfiles/redis_bench.py`` does.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any, ClassVar

import gevent
import redis
from locust import LoadTestShape, User, constant, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from perfsuite.collector import locust_plugin
from perfsuite.config import RedisBenchConfig, SuiteConfig, redact_url
from perfsuite.marks import STAGE
from redis_bench.runtime import (
    BENCH_URL_ENV,
    DEFAULT_BENCH_URL,
    POOL_WAIT_METRIC,
    REQUEST_TYPE,
    SERVER_METRIC,
    BenchRuntime,
    OpResult,
    describe,
)
from redis_bench.workload import Workload, cleanup, namespace_for, preload

logger = logging.getLogger(__name__)

IDLE_SLEEP_S = 0.5
"""How long a user that finished its operations sleeps between checks (until the shape stops)."""

STEPS_PER_TASK = 8
"""Steps a user runs per Locust task call (bounded, so a stopping test never waits long)."""

_STATE_ATTR = "_perfsuite_redis_bench"


class _TestState:
    """What one test of one process holds."""

    def __init__(self, namespace: str, url: str) -> None:
        self.namespace = namespace
        self.url = url
        self.runtime: BenchRuntime | None = None
        self.sampler: gevent.Greenlet[Any, Any] | None = None
        self.preloaded = 0


def bench_url(config: SuiteConfig, environment: Environment | None = None) -> str:
    """The Redis to benchmark: ``REDIS_BENCH_URL``, else a ``redis://`` ``--host``, else
    ``redis_bench.url``, else the collector's Redis (``REDIS_URL``), else 127.0.0.1:6379."""
    host = environment.host if environment is not None else None
    if host and not host.startswith(("redis://", "rediss://", "unix://")):
        host = None
    return (
        os.environ.get(BENCH_URL_ENV)
        or host
        or config.redis_bench.url
        or config.collector_redis_url
        or DEFAULT_BENCH_URL
    )


def _admin_client(url: str, settings: RedisBenchConfig) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=settings.connect_timeout_s,
        socket_timeout=max(settings.socket_timeout_s, 5.0),
    )


def state_of(environment: Environment) -> _TestState | None:
    """This process's state for the current test (None outside a test)."""
    state = getattr(environment, _STATE_ATTR, None)
    return state if isinstance(state, _TestState) else None


def runtime_of(environment: Environment) -> BenchRuntime | None:
    """This process's runtime for the current test (None on a master or outside a test)."""
    state = state_of(environment)
    return state.runtime if state is not None else None


def _mark(environment: Environment, kind: str, at_s: float | None = None, **fields: Any) -> None:
    writer = locust_plugin.current_writer(environment)
    if writer is None:
        logger.warning("redis_bench: no collector writer open; %s mark lost", kind)
        return
    writer.mark(kind, at_s=at_s, **fields)


def on_test_start(environment: Environment, config: SuiteConfig) -> None:
    """Preload (master/local) and build this process's runtime (local/worker)."""
    settings = config.redis_bench
    run_id = locust_plugin.current_run_id(environment)
    if not run_id:
        raise RuntimeError("redis_bench needs the perfsuite collector installed before it (no run id)")
    url = bench_url(config, environment)
    state = _TestState(namespace_for(settings.key_prefix, run_id), url)
    setattr(environment, _STATE_ATTR, state)
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        client = _admin_client(url, settings)
        try:
            state.preloaded = preload(client, Workload(settings, state.namespace))
        except (redis.RedisError, OSError) as error:
            logger.error(
                "redis_bench: preloading %s at %s failed: %s",
                state.namespace,
                redact_url(url),
                describe(error),
            )
        finally:
            client.close()
        _mark(
            environment,
            "redis_bench",
            phase="preloaded",
            namespace=state.namespace,
            keys=state.preloaded,
            url=redact_url(url),
        )
    if isinstance(runner, MasterRunner):
        return

    def planned_ops() -> int:
        # The users this process is spawning (its share of concurrent_operations), not only the
        # ones started so far: outage windows are placed by progress through the whole run.
        users = max(runner.target_user_count, runner.user_count) if runner is not None else 0
        return max(users, 1) * settings.operations_per_worker

    state.runtime = BenchRuntime(
        settings,
        url,
        state.namespace,
        planned_ops=planned_ops,
        mark=lambda kind, at_s=None, **fields: _mark(environment, kind, at_s, **fields),
        rng=random.Random(),
    )
    state.runtime.start()
    state.sampler = gevent.spawn(_sample_forever, state.runtime, settings.sample_interval_s)


def _sample_forever(runtime: BenchRuntime, interval_s: float) -> None:
    while True:
        gevent.sleep(interval_s)
        try:
            runtime.sample()
        except Exception:  # a sample must never end the sampling
            logger.exception("redis_bench: sampling failed")


def on_test_stop(environment: Environment, config: SuiteConfig) -> None:
    """Final sample and close (local/worker); remove the run's keys (master/local)."""
    state = state_of(environment)
    if state is None:
        return
    setattr(environment, _STATE_ATTR, None)
    if state.sampler is not None:
        state.sampler.kill(block=True)
    if state.runtime is not None:
        try:
            state.runtime.sample(final=True)
        finally:
            state.runtime.close()
    if not isinstance(environment.runner, WorkerRunner):
        client = _admin_client(state.url, config.redis_bench)
        try:
            removed = cleanup(client, state.namespace)
            _mark(environment, "redis_bench", phase="cleaned", namespace=state.namespace, keys=removed)
        except (redis.RedisError, OSError) as error:
            logger.error("redis_bench: removing %s failed: %s", state.namespace, describe(error))
        finally:
            client.close()


class RedisUser(User):
    """One concurrent client: ``operations_per_worker`` operations through the process's runtime."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self.done = 0
        """Operations this user has run (every command counts: sent, injected or refused)."""

    def _emit(self, result: OpResult) -> None:
        context: dict[str, Any] = {"outcome": result.outcome}
        if result.reason:
            context["failure_reason"] = result.reason
        if result.outcome != "backpressure":  # sent: its time at Redis apart from our own pool's queue
            context["timings_us"] = {
                POOL_WAIT_METRIC: result.pool_wait_ms * 1000,
                SERVER_METRIC: max(0.0, result.response_time_ms - result.pool_wait_ms) * 1000,
            }
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=result.name,
            response_time=result.response_time_ms,
            response_length=result.response_length,
            exception=result.error,
            context=context,
        )

    @task
    def operate(self) -> None:
        """Run the next few steps (a step is one command, or ``pipeline_depth`` in one round trip)."""
        runtime = runtime_of(self.environment)
        if runtime is None:
            gevent.sleep(IDLE_SLEEP_S)
            return
        settings = runtime.settings
        emit = self._emit
        # Several steps per task: Locust's wait between tasks costs a hub round trip, and each
        # step yields on its own socket I/O anyway.
        for _ in range(STEPS_PER_TASK):
            remaining = settings.operations_per_worker - self.done
            if remaining <= 0:
                gevent.sleep(IDLE_SLEEP_S)  # quota done: wait for the shape to stop the test
                return
            count = min(settings.pipeline_depth, remaining)
            self.done += count
            back_off_s = runtime.run_step(count, emit)
            if back_off_s > 0:
                gevent.sleep(back_off_s)
                return


class RedisBenchShape(LoadTestShape):
    """All users at once, then stop when every operation is done or after ``max_duration_s``."""

    settings: ClassVar[RedisBenchConfig] = RedisBenchConfig()
    """Set by :func:`configure` from the suite configuration."""

    def reset_time(self) -> None:
        super().reset_time()
        self.stage = ""

    def _enter(self, stage: str, **fields: Any) -> None:
        self.stage = stage
        if self.runner is not None:
            writer = locust_plugin.current_writer(self.runner.environment)
            if writer is not None:
                writer.mark(STAGE, name=stage, **fields)

    def tick(self) -> tuple[int, float] | None:
        settings = self.settings
        if self.runner is None:
            return None
        if not getattr(self, "stage", ""):
            self._enter("run")
        planned = settings.concurrent_operations * settings.operations_per_worker
        if self.get_run_time() > settings.max_duration_s:
            self._enter("stopped", reason="max_duration_s", max_duration_s=settings.max_duration_s)
            return None
        if self.runner.stats.total.num_requests >= planned:
            self._enter("done", operations=self.runner.stats.total.num_requests)
            return None
        users = settings.concurrent_operations
        return users, float(users)


def configure(config: SuiteConfig) -> None:
    """Give the shape its settings (call once from the locustfile)."""
    RedisBenchShape.settings = config.redis_bench


__all__ = [
    "RedisBenchShape",
    "RedisUser",
    "bench_url",
    "configure",
    "on_test_start",
    "on_test_stop",
    "runtime_of",
    "state_of",
]
