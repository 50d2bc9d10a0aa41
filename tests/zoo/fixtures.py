"""pytest fixtures for the zoo (registered in ``tests/conftest.py`` through ``pytest_plugins``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.zoo import ZooBot, start_bot

ZOO_TOKEN = "zoo-auth-token-5d2b9e"
"""The auth token zoo bots get by default (a fake; the suite under test signs with it)."""


class Zoo:
    """Starts zoo bots on demand and keeps each (name, token, public_url) running for the session."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._running: dict[tuple[str, str, str | None, tuple[str, ...]], ZooBot] = {}

    def bot(
        self,
        name: str,
        token: str = ZOO_TOKEN,
        *,
        public_url: str | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> ZooBot:
        """The running bot ``name`` validating with ``token`` (started on first use)."""
        key = (name, token, public_url, extra_args)
        if key not in self._running:
            self._running[key] = start_bot(
                name, token, public_url=public_url, extra_args=extra_args, log_dir=self._log_dir
            )
        return self._running[key]

    def stop_all(self) -> None:
        """Stop every bot this zoo started."""
        for bot in self._running.values():
            bot.stop()
        self._running.clear()


@pytest.fixture(scope="session")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zoo]:
    """Zoo bots shared by the session (bots without Redis; start ``slow_queue`` with ``start_bot``)."""
    keeper = Zoo(tmp_path_factory.mktemp("zoo-logs"))
    yield keeper
    keeper.stop_all()
