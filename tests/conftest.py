"""Shared fixtures: a private real Redis server on a free port (never the shared 6379); the zoo bots."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from perfsuite.embedded import ManagedProcess, start_redis

pytest_plugins = ("tests.zoo.fixtures",)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ManagedProcess]:
    """A private redis-server for the whole test session; stopped at the end."""
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture()
def redis_url(redis_server: ManagedProcess) -> Iterator[str]:
    """URL of the private Redis with database 0 flushed before the test (it is ours alone)."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    yield redis_server.url
