"""The two ways the bot handles a signed message, behind one interface the HTTP layer calls.

- :class:`OptimizedPipeline`: admit through Redis in one round trip (or memory when degraded),
  ack at once, analyse in background workers.
- :class:`LegacyPipeline`: the pre-optimization bot (work inside the request, a Redis connection
  per request, no breaker).

Both report their part of /health and /metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from demo_bot.analysis import Analyser
from demo_bot.breaker import BreakerState, CircuitBreaker
from demo_bot.config import BotConfig
from demo_bot.intake import Intake, Outcome
from demo_bot.keys import RedisKeys
from demo_bot.legacy import LegacyHandler, LegacyOutcome
from demo_bot.message import InboundMessage
from demo_bot.message_queue import MessageQueue
from demo_bot.metrics import Labels, Metrics
from demo_bot.redis_gateway import PerRequestRedis, PoolExhausted, RedisGateway
from demo_bot.storage import StorageMonitor
from demo_bot.workers import WorkerPool

Gauges = dict[str, tuple[str, dict[Labels, float]]]

_BREAKER_LEVEL = {BreakerState.CLOSED: 0.0, BreakerState.HALF_OPEN: 1.0, BreakerState.OPEN: 2.0}


@dataclass(frozen=True, slots=True)
class Reply:
    """The pipeline's answer to one message, before it becomes HTTP."""

    status: int
    """200, 429, 500 or 503."""
    reason: str
    """accepted, duplicate, processed, rate_limited, queue_full, pool_exhausted, redis_error or
    storage_error."""
    backend: str
    """Where the message was decided: redis, memory (degraded) or inline (legacy)."""
    retry_after_s: int | None
    phases_ms: tuple[tuple[str, float], ...]
    """Server-Timing phases after the signature check, milliseconds."""


class Pipeline(Protocol):
    """What the HTTP layer needs from a mode."""

    mode: str

    def handle(self, message: InboundMessage, now_s: float) -> Reply:
        """Decide and answer for one signed message."""

    def health(self) -> dict[str, Any]:
        """The mode's part of /health: redis, breaker, pool, queue (and ``degraded``: bool)."""

    def gauges(self) -> Gauges:
        """The mode's gauges for /metrics."""

    def start(self) -> None:
        """Start background work."""

    def stop(self, grace_s: float) -> None:
        """Stop background work and release connections."""


class OptimizedPipeline:
    """Queue + workers, pooled Redis with breaker, in-memory degradation."""

    mode = "optimized"

    def __init__(
        self, config: BotConfig, analyser: Analyser, storage: StorageMonitor, metrics: Metrics
    ) -> None:
        self.config = config
        self.breaker = CircuitBreaker(config.breaker_failure_threshold, config.breaker_reset_s)
        self.gateway = RedisGateway(config, self.breaker)
        self.queue = MessageQueue(self.gateway, RedisKeys(config.key_prefix).queue, config.queue_max)
        self.intake = Intake(config, self.gateway, self.queue)
        self.workers = WorkerPool(config, self.queue, analyser, storage, metrics)

    def handle(self, message: InboundMessage, now_s: float) -> Reply:
        try:
            admission = self.intake.admit(message, now_s)
        except PoolExhausted:
            return Reply(503, "pool_exhausted", "redis", self.config.retry_after_s, ())
        phases: tuple[tuple[str, float], ...] = (("redis", admission.redis_ms),)
        if admission.backend == "memory":
            phases += (("memory", admission.memory_ms),)
        outcome = admission.outcome
        if outcome is Outcome.ACCEPTED:
            return Reply(200, "accepted", admission.backend, None, phases)
        if outcome is Outcome.DUPLICATE:
            return Reply(200, "duplicate", admission.backend, None, phases)
        if outcome is Outcome.RATE_LIMITED:
            return Reply(429, "rate_limited", admission.backend, admission.retry_after_s, phases)
        return Reply(503, "queue_full", admission.backend, admission.retry_after_s, phases)

    def health(self) -> dict[str, Any]:
        latency_ms = self.gateway.ping_ms()
        breaker = self.breaker.snapshot()
        pool = self.gateway.pool_stats()
        depth = self.queue.depth()
        backend = "redis" if breaker.state is BreakerState.CLOSED and latency_ms is not None else "memory"
        return {
            "degraded": latency_ms is None or breaker.state is not BreakerState.CLOSED,
            "redis": {
                "ok": latency_ms is not None,
                "latency_ms": None if latency_ms is None else round(latency_ms, 3),
                "errors": self.gateway.errors,
                "last_error": self.gateway.last_error,
            },
            "breaker": {
                "state": breaker.state.value,
                "trips": breaker.trips,
                "consecutive_failures": breaker.consecutive_failures,
            },
            "pool": {
                "in_use": pool.in_use,
                "idle": pool.idle,
                "max": pool.max,
                "peak_in_use": pool.peak_in_use,
            },
            "queue": {
                "depth": depth.total,
                "max": self.config.queue_max,
                "backend": backend,
                "redis_depth": depth.redis,
                "memory_depth": depth.memory,
            },
            "workers": {"count": self.config.workers, "busy": self.workers.busy},
        }

    def gauges(self) -> Gauges:
        breaker = self.breaker.snapshot()
        pool = self.gateway.pool_stats()
        depth = self.queue.depth()
        return {
            "demo_bot_queue_depth": (
                "Messages waiting, by queue backend (redis is -1 when unknown).",
                {
                    (("backend", "redis"),): -1.0 if depth.redis is None else float(depth.redis),
                    (("backend", "memory"),): float(depth.memory),
                },
            ),
            "demo_bot_queue_max": (
                "Queue depth at which new messages get 503.",
                {(): float(self.config.queue_max)},
            ),
            "demo_bot_redis_pool_connections": (
                "Redis pool connections by state.",
                {(("state", "in_use"),): float(pool.in_use), (("state", "idle"),): float(pool.idle)},
            ),
            "demo_bot_redis_pool_max": ("Redis pool bound.", {(): float(pool.max or 0)}),
            "demo_bot_redis_pool_peak_in_use": (
                "Most pool connections in use at once.",
                {(): float(pool.peak_in_use)},
            ),
            "demo_bot_breaker_state": (
                "Redis breaker: 0 closed, 1 half-open, 2 open.",
                {(): _BREAKER_LEVEL[breaker.state]},
            ),
            "demo_bot_breaker_trips": (
                "Times the Redis breaker tripped since start.",
                {(): float(breaker.trips)},
            ),
            "demo_bot_workers_busy": ("Workers analysing a message now.", {(): float(self.workers.busy)}),
        }

    def start(self) -> None:
        self.workers.start()

    def stop(self, grace_s: float) -> None:
        self.workers.stop(grace_s)
        self.gateway.close()


class LegacyPipeline:
    """The pre-optimization bot."""

    mode = "legacy"

    def __init__(
        self, config: BotConfig, analyser: Analyser, storage: StorageMonitor, metrics: Metrics
    ) -> None:
        self.config = config
        self.redis = PerRequestRedis(config)
        self.handler = LegacyHandler(config, self.redis, analyser, storage, metrics)

    def handle(self, message: InboundMessage, now_s: float) -> Reply:
        result = self.handler.handle(message, now_s)
        status = {
            LegacyOutcome.PROCESSED: 200,
            LegacyOutcome.DUPLICATE: 200,
            LegacyOutcome.RATE_LIMITED: 429,
            LegacyOutcome.REDIS_ERROR: 500,
            LegacyOutcome.STORAGE_ERROR: 500,
        }[result.outcome]
        retry_after = result.retry_after_s if result.outcome is LegacyOutcome.RATE_LIMITED else None
        return Reply(status, result.outcome.value, "inline", retry_after, result.phases_ms)

    def health(self) -> dict[str, Any]:
        latency_ms = self.redis.ping_ms()
        pool = self.redis.pool_stats()
        return {
            "degraded": latency_ms is None,
            "redis": {
                "ok": latency_ms is not None,
                "latency_ms": None if latency_ms is None else round(latency_ms, 3),
                "errors": self.redis.errors,
                "last_error": None,
            },
            "breaker": {"state": "disabled", "trips": 0, "consecutive_failures": 0},
            "pool": {
                "in_use": pool.in_use,
                "idle": pool.idle,
                "max": pool.max,
                "peak_in_use": pool.peak_in_use,
            },
            "queue": {"depth": 0, "max": 0, "backend": "inline", "redis_depth": 0, "memory_depth": 0},
            "workers": {"count": 0, "busy": 0},
        }

    def gauges(self) -> Gauges:
        pool = self.redis.pool_stats()
        return {
            "demo_bot_queue_depth": (
                "Messages waiting (legacy: none, work is inline).",
                {(("backend", "inline"),): 0.0},
            ),
            "demo_bot_redis_pool_connections": (
                "Redis connections by state (legacy: one per request in flight).",
                {(("state", "in_use"),): float(pool.in_use), (("state", "idle"),): 0.0},
            ),
            "demo_bot_redis_pool_peak_in_use": (
                "Most connections open at once.",
                {(): float(pool.peak_in_use)},
            ),
        }

    def start(self) -> None:
        return None

    def stop(self, grace_s: float) -> None:
        return None


def create_pipeline(
    config: BotConfig, analyser: Analyser, storage: StorageMonitor, metrics: Metrics
) -> Pipeline:
    """The pipeline for ``config.mode``."""
    if config.mode == "legacy":
        return LegacyPipeline(config, analyser, storage, metrics)
    return OptimizedPipeline(config, analyser, storage, metrics)


__all__ = ["Gauges", "LegacyPipeline", "OptimizedPipeline", "Pipeline", "Reply", "create_pipeline"]
