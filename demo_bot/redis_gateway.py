"""The bot's access to Redis: a bounded pool, timeouts, retry with backoff and a circuit breaker.

:class:`RedisGateway` is the optimized path: every call goes through the breaker and one shared
``BlockingConnectionPool``; a failure after redis-py's retries counts against the breaker and
surfaces as :class:`RedisUnavailable` so the caller can degrade. Waiting too long for a pooled
connection is overload, not an outage: it raises :class:`PoolExhausted` and does not count.

:class:`PerRequestRedis` is the legacy path: a new connection for every request, no pool, no
breaker; errors propagate.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from demo_bot.breaker import BreakerState, CircuitBreaker
from demo_bot.config import BotConfig

T = TypeVar("T")


class RedisUnavailable(Exception):
    """Redis failed (after retries) or the breaker is open: degrade to the in-memory paths."""


class PoolExhausted(Exception):
    """No pooled connection became free within the pool timeout: the bot is overloaded (503)."""


class _PoolWaitTimeout(redis.ConnectionError):
    """Raised by :class:`CountingBlockingPool` instead of redis-py's generic ConnectionError."""


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Connection pool occupancy for /health and /metrics; ``max`` None means unbounded."""

    in_use: int
    idle: int
    max: int | None
    peak_in_use: int


class CountingBlockingPool(redis.BlockingConnectionPool):
    """A ``BlockingConnectionPool`` that counts connections in use and the peak."""

    def __init__(self, **kwargs: Any) -> None:
        self._checked_out: set[int] = set()
        self.peak_in_use = 0
        """Most connections in use at once since start."""
        super().__init__(**kwargs)

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            connection = super().get_connection(*args, **kwargs)
        except redis.ConnectionError as exc:
            if str(exc) == "No connection available.":
                raise _PoolWaitTimeout(str(exc)) from exc
            raise
        self._checked_out.add(id(connection))
        self.peak_in_use = max(self.peak_in_use, len(self._checked_out))
        return connection

    def release(self, connection: Any) -> None:
        self._checked_out.discard(id(connection))
        super().release(connection)

    def stats(self) -> PoolStats:
        """In use, idle (opened and waiting in the pool), max and peak."""
        in_use = len(self._checked_out)
        created = len(getattr(self, "_connections", ()))
        return PoolStats(in_use, max(created - in_use, 0), self.max_connections, self.peak_in_use)


class RedisGateway:
    """Guarded Redis calls: ``call(fn)`` runs ``fn(client)`` through the breaker and the pool."""

    def __init__(self, config: BotConfig, breaker: CircuitBreaker) -> None:
        self.breaker = breaker
        self.pool = CountingBlockingPool.from_url(
            config.redis_url,
            max_connections=config.redis_max_connections,
            timeout=config.redis_pool_timeout_s,
            socket_connect_timeout=config.redis_connect_timeout_s,
            socket_timeout=config.redis_socket_timeout_s,
            retry=Retry(
                ExponentialWithJitterBackoff(
                    cap=config.redis_backoff_cap_s, base=config.redis_backoff_base_s
                ),
                config.redis_retries,
            ),
        )
        self.client = redis.Redis(connection_pool=self.pool)
        self.errors = 0
        """Calls that failed (after retries) since start."""
        self.last_error: str | None = None
        """Class name of the last error, for /health (never the message: it may name the host)."""

    @property
    def available(self) -> bool:
        """False while the breaker is open (callers should not even try)."""
        return self.breaker.state is not BreakerState.OPEN

    def call(self, fn: Callable[[redis.Redis], T]) -> T:
        """Run ``fn(client)``; raise RedisUnavailable (breaker open or failure) or PoolExhausted."""
        if not self.breaker.allow():
            raise RedisUnavailable("circuit breaker open")
        try:
            result = fn(self.client)
        except _PoolWaitTimeout as exc:
            # Overload, not an outage: nothing is recorded (a stalled half-open trial times out).
            raise PoolExhausted("no Redis connection free within the pool timeout") from exc
        except redis.RedisError as exc:
            self.errors += 1
            self.last_error = type(exc).__name__
            self.breaker.record_failure()
            raise RedisUnavailable(type(exc).__name__) from exc
        self.breaker.record_success()
        return result

    def ping_ms(self) -> float | None:
        """Round-trip time of a PING in milliseconds, or None when Redis is unavailable."""
        started = time.perf_counter()
        try:
            self.call(lambda client: client.ping())
        except (RedisUnavailable, PoolExhausted):
            return None
        return (time.perf_counter() - started) * 1000

    def pool_stats(self) -> PoolStats:
        """Occupancy of the connection pool."""
        return self.pool.stats()

    def close(self) -> None:
        """Close every pooled connection."""
        self.pool.disconnect()


class PerRequestRedis:
    """Legacy Redis access: a brand-new connection per request, closed after it; no pool, no breaker."""

    def __init__(self, config: BotConfig) -> None:
        self._url = config.redis_url
        self._connect_timeout_s = config.redis_connect_timeout_s
        self._socket_timeout_s = config.redis_socket_timeout_s
        self.open_connections = 0
        """Connections open right now (one per request in flight)."""
        self.peak_open = 0
        self.errors = 0

    @contextlib.contextmanager
    def connection(self) -> Iterator[redis.Redis]:
        """A client on its own fresh connection; redis errors propagate to the caller."""
        client = redis.Redis.from_url(
            self._url,
            socket_connect_timeout=self._connect_timeout_s,
            socket_timeout=self._socket_timeout_s,
            single_connection_client=True,
        )
        self.open_connections += 1
        self.peak_open = max(self.peak_open, self.open_connections)
        try:
            yield client
        except redis.RedisError:
            self.errors += 1
            raise
        finally:
            self.open_connections -= 1
            client.close()

    def ping_ms(self) -> float | None:
        """PING on a fresh connection, in milliseconds; None on failure."""
        started = time.perf_counter()
        try:
            with self.connection() as client:
                client.ping()
        except redis.RedisError:
            return None
        return (time.perf_counter() - started) * 1000

    def pool_stats(self) -> PoolStats:
        """No pool: ``in_use`` is the connections open now, ``max`` None (unbounded)."""
        return PoolStats(self.open_connections, 0, None, self.peak_open)


__all__ = [
    "CountingBlockingPool",
    "PerRequestRedis",
    "PoolExhausted",
    "PoolStats",
    "RedisGateway",
    "RedisUnavailable",
]
