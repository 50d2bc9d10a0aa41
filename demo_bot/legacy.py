"""Legacy mode: the bot as it was before the optimization, kept so before/after is measurable.

Per request: open a new Redis connection, count the rate limit and dedupe with separate commands,
analyse the message inside the request, store it, and only then answer. No pool, no breaker, no
degradation: a Redis or database error answers 500. The signature check is the same as optimized.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

import redis

from demo_bot.analysis import Analyser
from demo_bot.config import BotConfig
from demo_bot.keys import RedisKeys
from demo_bot.message import InboundMessage
from demo_bot.metrics import Metrics
from demo_bot.ratelimit import WINDOW_S, Window
from demo_bot.redis_gateway import PerRequestRedis
from demo_bot.storage import StorageError, StorageMonitor


class LegacyOutcome(enum.StrEnum):
    """What a legacy request ends in."""

    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    RATE_LIMITED = "rate_limited"
    REDIS_ERROR = "redis_error"
    STORAGE_ERROR = "storage_error"


@dataclass(frozen=True, slots=True)
class LegacyResult:
    """Outcome and the time each phase took, milliseconds."""

    outcome: LegacyOutcome
    retry_after_s: int
    phases_ms: tuple[tuple[str, float], ...]


class LegacyHandler:
    """Handles a signed message the pre-optimization way (work inside the request)."""

    def __init__(
        self,
        config: BotConfig,
        redis_access: PerRequestRedis,
        analyser: Analyser,
        storage: StorageMonitor,
        metrics: Metrics,
    ) -> None:
        self.config = config
        self.redis = redis_access
        self.keys = RedisKeys(config.key_prefix)
        self.analyser = analyser
        self.storage = storage
        self.metrics = metrics

    def handle(self, message: InboundMessage, now_s: float) -> LegacyResult:
        """Rate-limit, dedupe, analyse and store ``message`` before returning."""
        phases: list[tuple[str, float]] = []
        mark = time.perf_counter()

        def phase(name: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            phases.append((name, (now - mark) * 1000))
            mark = now

        window = Window.at(now_s)
        try:
            with self.redis.connection() as client:
                if self.config.rate_limit_per_min > 0:
                    key = self.keys.rate(message.sender, window.number)
                    count = int(client.incr(key))
                    if count == 1:
                        client.expire(key, WINDOW_S + 1)
                    if count > self.config.rate_limit_per_min:
                        phase("redis")
                        return LegacyResult(LegacyOutcome.RATE_LIMITED, window.retry_after_s, tuple(phases))
                first = client.set(self.keys.dedupe(message.sid), "1", nx=True, ex=self.config.dedupe_ttl_s)
                phase("redis")
        except redis.RedisError:
            phase("redis")
            return LegacyResult(LegacyOutcome.REDIS_ERROR, 0, tuple(phases))
        if not first:
            return LegacyResult(LegacyOutcome.DUPLICATE, 0, tuple(phases))
        result = self.analyser.analyse(message)
        phase("work")
        try:
            self.storage.storage.save(result)
        except StorageError as exc:
            self.storage.record_failure(exc)
            self.metrics.storage_failures.inc()
            phase("store")
            return LegacyResult(LegacyOutcome.STORAGE_ERROR, 0, tuple(phases))
        self.storage.record_success()
        phase("store")
        self.metrics.processed.inc(kind=result.kind)
        self.metrics.processing_latency.observe(max(0.0, time.time() - message.received_at_s))
        return LegacyResult(LegacyOutcome.PROCESSED, 0, tuple(phases))


__all__ = ["LegacyHandler", "LegacyOutcome", "LegacyResult"]
