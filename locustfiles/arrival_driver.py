"""The open model's engine: one scheduler greenlet and a bounded pool of sender greenlets.

:class:`ArrivalDriver` issues the arrivals of one load-generating process at their intended times and
counts what became of them (:class:`~perfsuite.arrival.ArrivalCounts`); :class:`ArrivalSettings` holds
the plan and the pool's bounds. Plain gevent, no Locust: ``locustfiles/arrival.py`` runs a driver
inside a Locust user and sends each arrival as a request.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.event
from gevent.hub import Waiter

from perfsuite.arrival import DROPS_MARK, ArrivalCounts, ArrivalPlan
from perfsuite.config import SuiteConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ArrivalSettings:
    """What the driver needs: the plan and the pool's bounds."""

    plan: ArrivalPlan
    max_concurrency: int = 1000
    """Requests in flight at most (per process)."""
    max_waiting: int = 10_000
    """Arrivals waiting for a free slot at most (per process); beyond: dropped."""
    max_lag_s: float = 0.010
    """An arrival sent later than this after its intended start counts as late."""
    drain_timeout_s: float = 20.0
    """After the last arrival, time left for in-flight and waiting requests to finish."""
    early_s: float = 0.001
    """The scheduler wakes up to this much before an arrival's intended time, and admits at once
    every arrival due within this much of the time it woke: the event loop's timers fire up to 1 ms
    late (epoll's millisecond timeouts), which would otherwise add ~0.6 ms to every corrected
    latency (and at high rates one wake-up serves several arrivals). A request sent before its
    intended time is measured from its actual send, so waking early never shortens a latency."""

    @classmethod
    def from_config(cls, config: SuiteConfig) -> ArrivalSettings:
        """Settings from the ``arrival:`` section (its ``rate_per_s`` must be set)."""
        arrival = config.arrival
        return cls(
            plan=ArrivalPlan.from_config(arrival),
            max_concurrency=arrival.max_concurrency,
            max_waiting=arrival.max_waiting,
            max_lag_s=arrival.max_lag_ms / 1000,
            drain_timeout_s=config.target.request_timeout_s + 5,
        )


class ArrivalDriver:
    """Issues arrivals at their intended times: one scheduler and a bounded pool of senders (per process).

    The scheduler (the greenlet that calls :meth:`run`) sleeps until the next intended time (less
    ``settings.early_s``) and then admits every arrival that is due by then, oldest first: each goes
    to an idle sender, or to a new sender while there are fewer than ``max_concurrency``, or waits in
    a FIFO queue of at most ``max_waiting`` (a sender that finishes takes the oldest waiting arrival
    before it goes idle), or is dropped. Senders live until the end of the run: no greenlet is made
    per arrival, and nothing wakes between two arrivals but the requests themselves.

    ``send(intended_at)`` performs one request in a sender greenlet; ``intended_at`` is on ``clock``'s
    scale (``time.perf_counter``) and the sender measures latency from it, or from its actual send if
    that came first (see ``ArrivalSettings.early_s``).
    """

    LAG_BATCH = 4096
    """Scheduling lags are kept in a list and recorded into the histogram this many at a time."""

    def __init__(
        self,
        offsets: Iterable[float],
        send: Callable[[float], object],
        settings: ArrivalSettings,
        *,
        mark: Callable[..., None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._offsets = offsets
        self._send = send
        self.settings = settings
        self._mark = mark
        self._clock = clock
        self._loop = gevent.get_hub().loop
        self._senders: list[gevent.Greenlet[Any, Any]] = []
        self._idle: list[Waiter[Any]] = []
        """Waiters of the senders with nothing to do (the last one to finish is reused first)."""
        self._waiting: deque[float] = deque()
        self._busy = 0
        self._lags_us: list[float] = []
        self._drained: gevent.event.Event | None = None
        """Set by the last busy sender once the scheduler has admitted every arrival."""
        self._drops_unmarked = 0
        self._last_drop_mark = 0.0
        self.counts = ArrivalCounts()
        """Counters so far (final once :meth:`run` returned)."""

    @property
    def in_flight(self) -> int:
        """Requests being sent now (busy senders)."""
        return self._busy

    @property
    def waiting(self) -> int:
        """Arrivals waiting for a free slot now."""
        return len(self._waiting)

    @property
    def senders(self) -> int:
        """Sender greenlets made so far (at most ``max_concurrency``)."""
        return len(self._senders)

    def run(self) -> ArrivalCounts:
        """Issue every arrival, then wait (at most ``drain_timeout_s``) for the requests to finish."""
        clock = self._clock
        counts = self.counts
        early_s = self.settings.early_s
        lags_us = self._lags_us
        admit = self._admit
        start = clock()
        try:
            for offset in self._offsets:
                intended = start + offset
                now = clock()
                if intended - now > early_s:
                    self._sleep(intended - early_s - now)
                    now = clock()
                counts.scheduled += 1
                lags_us.append((now - intended) * 1e6 if now > intended else 0.0)
                if len(lags_us) >= self.LAG_BATCH:
                    self._record_lags()
                admit(intended)
            self._drain(self.settings.drain_timeout_s)
        finally:
            self._record_lags()
            counts.unsent += len(self._waiting)
            self._waiting.clear()
            counts.abandoned += self._busy
            gevent.killall(self._senders, block=True, timeout=1.0)
            self._flush_drop_mark(force=True)
        return counts

    def _sleep(self, seconds: float) -> None:
        # gevent.sleep() without its per-call Event/Waiter machinery: one timer, one switch.
        timer = self._loop.timer(seconds)
        waiter: Waiter[Any] = Waiter()
        timer.start(waiter.switch, None)
        try:
            waiter.get()
        finally:
            timer.close()

    def _admit(self, intended: float) -> None:
        counts = self.counts
        if self._idle:
            self._busy += 1
            self._loop.run_callback(self._idle.pop().switch, intended)
        elif len(self._senders) < self.settings.max_concurrency:
            self._busy += 1
            self._senders.append(gevent.spawn(self._serve, intended))
        elif len(self._waiting) < self.settings.max_waiting:
            self._waiting.append(intended)
            counts.waited += 1
            if len(self._waiting) > counts.max_waiting:
                counts.max_waiting = len(self._waiting)
            return
        else:
            counts.dropped += 1
            self._drops_unmarked += 1
            self._flush_drop_mark()
            return
        if self._busy > counts.max_in_flight:
            counts.max_in_flight = self._busy

    def _serve(self, intended: float) -> None:
        # One sender: serves its arrival, then the oldest waiting ones, then idles until handed another.
        counts = self.counts
        clock = self._clock
        max_lag_s = self.settings.max_lag_s
        send = self._send
        waiting = self._waiting
        waiter: Waiter[Any] = Waiter()
        while True:
            counts.sent += 1
            if clock() - intended > max_lag_s:
                counts.late += 1
            try:
                send(intended)
            except Exception:
                counts.errors += 1
                logger.exception("arrival driver: the sender raised")
            if waiting:
                intended = waiting.popleft()
                continue
            self._busy -= 1
            if self._busy == 0 and self._drained is not None:
                self._drained.set()
            waiter.clear()
            self._idle.append(waiter)
            intended = waiter.get()

    def _drain(self, timeout_s: float) -> None:
        if self._busy:
            self._drained = gevent.event.Event()
            self._drained.wait(timeout_s)

    def _record_lags(self) -> None:
        if self._lags_us:
            self.counts.schedule_lag.record_many(self._lags_us)
            self._lags_us.clear()

    def _flush_drop_mark(self, force: bool = False) -> None:
        now = time.time()
        if self._drops_unmarked and self._mark is not None and (force or now - self._last_drop_mark >= 1.0):
            self._mark(DROPS_MARK, dropped=self._drops_unmarked)
            self._drops_unmarked = 0
            self._last_drop_mark = now


__all__ = ["ArrivalDriver", "ArrivalSettings"]
