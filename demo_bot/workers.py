"""Worker greenlets: take a message off the queue, analyse it, store the result.

A failed store is retried with exponential backoff (``storage_retries`` attempts); after that the
message goes back to the front of the queue with its attempt count raised, and the worker backs
off before taking the next one, so a database outage loses nothing and does not spin.
"""

from __future__ import annotations

import logging
import random
import time

import gevent
import gevent.event
from gevent import Greenlet

from demo_bot.analysis import Analyser, AnalysisResult
from demo_bot.config import BotConfig
from demo_bot.message import InboundMessage
from demo_bot.message_queue import MessageQueue
from demo_bot.metrics import Metrics
from demo_bot.storage import StorageError, StorageMonitor

log = logging.getLogger("demo_bot.workers")


def backoff_s(attempt: int, base_s: float, cap_s: float) -> float:
    """Full-jitter exponential backoff for ``attempt`` (1-based), seconds."""
    return random.uniform(0, min(cap_s, base_s * 2 ** (attempt - 1)))


class WorkerPool:
    """``count`` greenlets draining ``queue``; ``busy`` of them are working on a message right now."""

    def __init__(
        self,
        config: BotConfig,
        queue: MessageQueue,
        analyser: Analyser,
        storage: StorageMonitor,
        metrics: Metrics,
    ) -> None:
        self.config = config
        self.queue = queue
        self.analyser = analyser
        self.storage = storage
        self.metrics = metrics
        self.busy = 0
        """Workers holding a message now."""
        self._greenlets: list[Greenlet] = []
        self._stopping = False
        self._stop_event = gevent.event.Event()
        self._failure_streak = 0

    def start(self) -> None:
        """Spawn the workers and the storage probe."""
        self._greenlets = [gevent.spawn(self._run) for _ in range(self.config.workers)]
        if self.config.storage_probe_interval_s > 0:
            self._greenlets.append(gevent.spawn(self._probe_storage))

    def stop(self, grace_s: float) -> None:
        """Let workers finish their message for up to ``grace_s`` seconds, then kill them.

        A killed worker puts its message back on the queue.
        """
        self._stopping = True
        self._stop_event.set()
        self.queue.notify(self.config.workers)
        gevent.joinall(self._greenlets, timeout=grace_s)
        gevent.killall([g for g in self._greenlets if not g.dead], timeout=1.0)

    def _run(self) -> None:
        while not self._stopping:
            payload = self.queue.pop()
            if payload is None:
                self.queue.wait(self.config.poll_interval_s)
                continue
            self.busy += 1
            try:
                stored = self._process(payload)
            except gevent.GreenletExit:
                self.queue.requeue(payload)
                raise
            except Exception:  # a bad payload must not kill the worker
                log.exception("worker dropped an unreadable message")
                stored = True
            finally:
                self.busy -= 1
            if stored:
                self._failure_streak = 0
            else:
                # The store stayed down through every retry; the message is back on the queue: rest.
                self._failure_streak += 1
                gevent.sleep(
                    backoff_s(
                        self._failure_streak + self.config.storage_retries,
                        self.config.storage_backoff_base_s,
                        self.config.storage_backoff_cap_s,
                    )
                )

    def _process(self, payload: bytes) -> bool:
        """Analyse and store; False when the store failed and the message went back on the queue."""
        message = InboundMessage.from_json(payload)
        result = self.analyser.analyse(message)
        if self._store(result):
            self.metrics.processed.inc(kind=result.kind)
            self.metrics.processing_latency.observe(max(0.0, time.time() - message.received_at_s))
            return True
        retry = InboundMessage(
            message.sid, message.sender, message.params, message.received_at_s, message.attempts + 1
        )
        self.queue.requeue(retry.to_json().encode("utf-8"))
        self.metrics.requeued.inc()
        return False

    def _store(self, result: AnalysisResult) -> bool:
        for attempt in range(1, self.config.storage_retries + 1):
            try:
                self.storage.storage.save(result)
            except StorageError as exc:
                self.storage.record_failure(exc)
                self.metrics.storage_failures.inc()
                if attempt < self.config.storage_retries:
                    gevent.sleep(
                        backoff_s(
                            attempt, self.config.storage_backoff_base_s, self.config.storage_backoff_cap_s
                        )
                    )
                continue
            self.storage.record_success()
            return True
        return False

    def _probe_storage(self) -> None:
        while not self._stop_event.wait(self.config.storage_probe_interval_s):
            if self.busy == 0:  # busy workers report the store's state themselves
                self.storage.probe()


__all__ = ["WorkerPool", "backoff_s"]
