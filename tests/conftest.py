"""Shared fixtures: a private real Redis server on a free port (never the shared 6379), the zoo bots,
a fault proxy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from perfsuite.embedded import ManagedProcess, start_redis

pytest_plugins = ("tests.zoo.fixtures",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the parallel run (a pytest-xdist worker), tests marked ``serial`` are skipped: they measure
    latency against known values, which the other processes' load would distort. ``make test`` runs
    them afterwards on their own (``pytest -m serial -n 0``)."""
    if not hasattr(config, "workerinput"):
        return
    alone = pytest.mark.skip(reason="measures timing: runs alone, `pytest -m serial -n 0` (make test does)")
    for item in items:
        if item.get_closest_marker("serial") is not None:
            item.add_marker(alone)


def pytest_configure(config: pytest.Config) -> None:
    """The capacity test type, when the installed metadata predates it (a checkout whose package was
    installed before ``capacity`` joined pyproject's entry points): registered as the entry point
    would, before any test module computes the result schema."""
    from perfsuite import registry

    if registry.find("capacity") is None:
        from capacity.job import CapacityTest

        registry.register(CapacityTest())


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


@pytest.fixture(scope="session")
def chaos_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    """The fault proxy (``python -m perfsuite.faults``) as a separate process, API on a free port."""
    from perfsuite.faults.api import start_chaos_proxy  # loads gevent's server only where needed

    process = start_chaos_proxy(log_path=tmp_path_factory.mktemp("chaos") / "chaos-proxy.log")
    yield process
    process.stop()
