"""Admission of a signed message (optimized mode): rate limit, dedupe and enqueue.

With Redis up, all three are one atomic Lua script, so one round trip per webhook:
``INCR`` the sender's window counter, ``SET NX EX`` the MessageSid marker, check the queue's
length and ``RPUSH``. A message refused for a full queue releases its marker, so Twilio's retry
is accepted later. With Redis down or the breaker open, the same steps run in memory.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from redis.commands.core import Script

from demo_bot.config import BotConfig
from demo_bot.dedupe import MemoryDeduper
from demo_bot.keys import RedisKeys
from demo_bot.message import InboundMessage
from demo_bot.message_queue import MessageQueue, QueueFull
from demo_bot.ratelimit import WINDOW_S, MemoryRateLimiter, Window
from demo_bot.redis_gateway import RedisGateway, RedisUnavailable

ADMIT_SCRIPT = """
local limit = tonumber(ARGV[1])
if limit > 0 then
  local count = redis.call('INCR', KEYS[1])
  if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
  if count > limit then return {1, count} end
end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then return {2, 0} end
local depth = redis.call('LLEN', KEYS[3])
if depth >= tonumber(ARGV[4]) then
  redis.call('DEL', KEYS[2])
  return {3, depth}
end
return {0, redis.call('RPUSH', KEYS[3], ARGV[5])}
"""
"""KEYS: rate counter, dedupe marker, queue. ARGV: limit, window TTL s, dedupe TTL s, max depth, payload.
Returns {code, n}: 0 queued (n = depth), 1 rate limited (n = count), 2 duplicate, 3 queue full."""


class Outcome(enum.StrEnum):
    """What the webhook answers for an admitted (or refused) message."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    RATE_LIMITED = "rate_limited"
    QUEUE_FULL = "queue_full"


@dataclass(frozen=True, slots=True)
class Admission:
    """The decision for one message and where it was made."""

    outcome: Outcome
    backend: str
    """``redis`` or ``memory`` (degraded)."""
    retry_after_s: int
    redis_ms: float
    """Time spent on Redis (script or failed attempt), milliseconds."""
    memory_ms: float
    """Time spent on the in-memory path, milliseconds (0 when Redis decided)."""


class Intake:
    """Admits messages through Redis, or through memory while Redis is unavailable."""

    def __init__(self, config: BotConfig, gateway: RedisGateway, queue: MessageQueue) -> None:
        self.config = config
        self.gateway = gateway
        self.queue = queue
        self.keys = RedisKeys(config.key_prefix)
        self.script = Script(gateway.client, ADMIT_SCRIPT)
        self.memory_limiter = MemoryRateLimiter(config.rate_limit_per_min)
        self.memory_deduper = MemoryDeduper(config.dedupe_ttl_s)

    def admit(self, message: InboundMessage, now_s: float) -> Admission:
        """Decide for ``message``; raises PoolExhausted when no Redis connection is free in time."""
        window = Window.at(now_s)
        payload = message.to_json().encode("utf-8")
        started = time.perf_counter()
        try:
            code, _ = self.gateway.call(
                lambda client: self.script(
                    keys=[
                        self.keys.rate(message.sender, window.number),
                        self.keys.dedupe(message.sid),
                        self.queue.key,
                    ],
                    args=[
                        self.config.rate_limit_per_min,
                        WINDOW_S + 1,
                        self.config.dedupe_ttl_s,
                        self.config.queue_max,
                        payload,
                    ],
                    client=client,
                )
            )
        except RedisUnavailable:
            redis_ms = (time.perf_counter() - started) * 1000
            return self._admit_in_memory(message, payload, now_s, redis_ms)
        redis_ms = (time.perf_counter() - started) * 1000
        outcome = (Outcome.ACCEPTED, Outcome.RATE_LIMITED, Outcome.DUPLICATE, Outcome.QUEUE_FULL)[int(code)]
        if outcome is Outcome.ACCEPTED:
            self.queue.notify()
        retry_after = window.retry_after_s if outcome is Outcome.RATE_LIMITED else self.config.retry_after_s
        return Admission(outcome, "redis", retry_after, redis_ms, 0.0)

    def _admit_in_memory(
        self, message: InboundMessage, payload: bytes, now_s: float, redis_ms: float
    ) -> Admission:
        started = time.perf_counter()

        def done(outcome: Outcome, retry_after_s: int) -> Admission:
            return Admission(
                outcome, "memory", retry_after_s, redis_ms, (time.perf_counter() - started) * 1000
            )

        decision = self.memory_limiter.check(message.sender, now_s)
        if not decision.allowed:
            return done(Outcome.RATE_LIMITED, decision.retry_after_s)
        if not self.memory_deduper.claim(message.sid):
            return done(Outcome.DUPLICATE, 0)
        try:
            self.queue.push_memory(payload)
        except QueueFull:
            self.memory_deduper.release(message.sid)
            return done(Outcome.QUEUE_FULL, self.config.retry_after_s)
        return done(Outcome.ACCEPTED, 0)


__all__ = ["ADMIT_SCRIPT", "Admission", "Intake", "Outcome"]
