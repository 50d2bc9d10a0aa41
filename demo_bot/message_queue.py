"""The work queue between the webhook and the workers: a Redis list, with an in-memory fallback.

New messages go to the Redis list ``{prefix}queue`` (pushed by the intake script); while Redis is
unavailable they go to a bounded in-process deque instead. Workers drain the memory queue first
(what piled up during an outage), then the Redis list. A message whose result could not be stored
goes back to the front of the queue, never refused by the bound.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import gevent.lock

from demo_bot.redis_gateway import PoolExhausted, RedisGateway, RedisUnavailable


class QueueFull(Exception):
    """The queue holds ``max_depth`` messages: answer 503 with Retry-After."""


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """Messages waiting; ``redis`` is None when Redis could not be asked."""

    redis: int | None
    memory: int

    @property
    def total(self) -> int:
        """Messages waiting in both queues (the Redis part counted as 0 when unknown)."""
        return (self.redis or 0) + self.memory


class MessageQueue:
    """Redis list + memory deque, with a wake-up so idle workers start at once."""

    def __init__(self, gateway: RedisGateway, key: str, max_depth: int) -> None:
        self.gateway = gateway
        self.key = key
        """The Redis list's key."""
        self.max_depth = max_depth
        self._memory: deque[bytes] = deque()
        # One permit per pushed message wakes exactly one idle worker (not all of them, which
        # would cost a wasted LPOP each); permits are capped so a burst does not pile them up.
        self._wakeups = gevent.lock.Semaphore(0)
        self._max_wakeups = 64

    def notify(self, count: int = 1) -> None:
        """Wake up to ``count`` idle workers: messages are waiting (or the pool is stopping)."""
        for _ in range(count):
            if self._wakeups.counter >= self._max_wakeups:
                break
            self._wakeups.release()

    def push_memory(self, payload: bytes) -> None:
        """Queue ``payload`` in memory (Redis is down); raise QueueFull at the bound."""
        if len(self._memory) >= self.max_depth:
            raise QueueFull(f"in-memory queue holds {len(self._memory)} messages")
        self._memory.append(payload)
        self.notify()

    def pop(self) -> bytes | None:
        """The next message (memory first, then Redis), or None when there is none or Redis is down."""
        if self._memory:
            return self._memory.popleft()
        if not self.gateway.available:
            return None
        try:
            payload = self.gateway.call(lambda client: client.lpop(self.key))
        except (RedisUnavailable, PoolExhausted):
            return None
        return payload if isinstance(payload, bytes) else None

    def wait(self, timeout_s: float) -> None:
        """Block the calling worker until a push wakes it or ``timeout_s`` seconds pass."""
        self._wakeups.acquire(timeout=timeout_s)

    def requeue(self, payload: bytes) -> str:
        """Put ``payload`` back at the front (Redis when it answers, else memory); returns the backend."""
        try:
            self.gateway.call(lambda client: client.lpush(self.key, payload))
        except (RedisUnavailable, PoolExhausted):
            self._memory.appendleft(payload)
            return "memory"
        return "redis"

    def memory_depth(self) -> int:
        """Messages waiting in the in-memory queue."""
        return len(self._memory)

    def depth(self) -> QueueDepth:
        """Messages waiting in Redis (asked now, None if unavailable) and in memory."""
        redis_depth: int | None
        try:
            redis_depth = int(self.gateway.call(lambda client: client.llen(self.key)))
        except (RedisUnavailable, PoolExhausted):
            redis_depth = None
        return QueueDepth(redis_depth, len(self._memory))


__all__ = ["MessageQueue", "QueueDepth", "QueueFull"]
