"""The Redis client the collector talks through: bounded timeouts, no hidden retries, raw bytes."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from perfsuite.errors import ConfigError

RedisLike = redis.Redis | str
"""A ``redis.Redis`` client (it must not decode responses) or a ``redis://`` URL."""

REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError, OSError)
"""What a write to an unreachable or unhealthy Redis raises: keep the data and retry later."""


def redis_client(
    client_or_url: RedisLike, *, connect_timeout_s: float = 1.0, socket_timeout_s: float = 5.0
) -> redis.Redis:
    """A client for ``client_or_url``.

    A URL gets a client whose calls fail within the given timeouts and are not retried inside
    redis-py (the collector has its own retry: pending batches, spill file). A client is used as
    is, but must return bytes (``decode_responses=False``): batches are binary.
    """
    if isinstance(client_or_url, str):
        if not client_or_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                f"collector Redis URL {client_or_url.split('@')[-1]!r} is invalid: "
                "use redis://host:port/db, rediss:// or unix://"
            )
        return redis.Redis.from_url(
            client_or_url,
            socket_connect_timeout=connect_timeout_s,
            socket_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
    if client_or_url.get_connection_kwargs().get("decode_responses"):
        raise ConfigError("the collector's Redis client must be created with decode_responses=False")
    return client_or_url


__all__ = ["REDIS_ERRORS", "RedisLike", "redis_client"]
