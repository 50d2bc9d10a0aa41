"""The live look of the A/B comparison: ends the load as soon as the answer is clear.

While the load runs, a thread reads the run back from the collector every ``POLL_S`` seconds, pairs
the slices that have closed (:func:`abtest.comparison.compare_sides`) and, once the decided
statistic's verdict is clear, sets the run's stop key (``perfsuite.collector.keys.stop_key``): each
process's arrivals end there and what is in flight finishes. Looking as often as it likes is what
the always-valid test allows. The report's verdict is computed again from the whole run afterwards
(the same function), so a look that came a little late changes nothing but the run's length.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis

from abtest.comparison import compare_sides
from perfsuite.collector import CollectorReader
from perfsuite.collector.keys import stop_key
from perfsuite.config import SuiteConfig
from perfsuite.errors import ConfigError

logger = logging.getLogger(__name__)

POLL_S = 2.0
"""Seconds between two looks."""
SETTLE_S = 2
"""A slice is looked at once it ended this many seconds ago (the writers flush every second)."""


class Watcher:
    """Looks at run ``run_id`` until its answer is clear (then asks the load to stop) or it is closed."""

    def __init__(self, config: SuiteConfig, collector_url: str, run_id: str, hosts: Sequence[str]) -> None:
        self._config = config
        self._url = collector_url
        self._run_id = run_id
        self._hosts = tuple(hosts)
        self._closed = threading.Event()
        self.stop_requested_at: float | None = None
        """When the stop key was set (epoch seconds), None while it was not."""
        self.looks = 0
        self._thread = threading.Thread(target=self._run, name="perfsuite-ab-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        settings = self._config.ab
        prefix = self._config.redis.key_prefix
        reader = CollectorReader(self._url, key_prefix=prefix)
        while not self._closed.wait(POLL_S):
            try:
                data = reader.load(self._run_id)
            except ConfigError:  # not registered yet
                continue
            except redis.RedisError as exc:
                logger.debug("ab watch: collector not readable: %s", exc)
                continue
            self.looks += 1
            try:
                figures = compare_sides(data, settings, self._hosts, up_to_s=int(time.time()) - SETTLE_S)
            except Exception:  # a look must never take the run down: the load then runs to its limit
                logger.exception("ab watch: the look failed")
                return
            if figures.decided_at_s is None:
                continue
            try:
                client = redis.Redis.from_url(self._url, socket_timeout=5.0)
                ttl = int(self._config.redis.retention_days * 86_400)
                client.set(stop_key(prefix, self._run_id), figures.verdict, ex=ttl)
                client.close()
            except redis.RedisError as exc:  # the load then runs to its limit
                logger.warning("ab watch: could not ask the load to stop: %s", exc)
                continue
            self.stop_requested_at = time.time()
            logger.info("ab watch: %s after %d slices; stopping the load", figures.verdict, figures.slices)
            return

    def close(self) -> None:
        """Stop looking."""
        self._closed.set()
        self._thread.join(timeout=30)


@contextmanager
def watching(config: SuiteConfig, collector_url: str, run_id: str, hosts: Sequence[str]) -> Iterator[Watcher]:
    """A :class:`Watcher` for the duration of the ``with`` block."""
    watcher = Watcher(config, collector_url, run_id, hosts)
    try:
        yield watcher
    finally:
        watcher.close()


__all__ = ["POLL_S", "Watcher", "watching"]
