"""Circuit breaker around Redis: closed -> open after N consecutive failures -> half-open trial.

While open, callers fail fast (the bot degrades to its in-memory paths instead of waiting on a
dead Redis). After ``reset_timeout_s`` one trial call is let through (half-open): success closes
the breaker, failure opens it again for another ``reset_timeout_s``.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("demo_bot.breaker")


class BreakerState(enum.StrEnum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """Breaker state for /health and /metrics."""

    state: BreakerState
    trips: int
    """How many times the breaker tripped (closed -> open) since start; failed trials not counted."""
    consecutive_failures: int


class CircuitBreaker:
    """A consecutive-failure circuit breaker; one instance guards one dependency.

    Greenlet-safe without locks: every method runs without yielding.
    """

    def __init__(
        self,
        failure_threshold: int,
        reset_timeout_s: float,
        name: str = "redis",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        """Consecutive failures that open the breaker."""
        self.reset_timeout_s = reset_timeout_s
        """Seconds open before a half-open trial."""
        self.name = name
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._trips = 0
        self._opened_at = 0.0
        self._trial_started_at: float | None = None

    @property
    def state(self) -> BreakerState:
        """Current state; an open breaker whose timeout passed reads as half-open."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_timeout_s:
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def trips(self) -> int:
        """Times the breaker tripped (closed -> open) since start."""
        return self._trips

    def allow(self) -> bool:
        """True when a call may go through now (closed, or the one half-open trial)."""
        if self._state is BreakerState.CLOSED:
            return True
        now = self._clock()
        if self._state is BreakerState.OPEN:
            if now - self._opened_at < self.reset_timeout_s:
                return False
            self._state = BreakerState.HALF_OPEN
            self._trial_started_at = now
            return True
        # Half-open: one trial at a time; a trial that never reported back is replaced after a timeout.
        if self._trial_started_at is None or now - self._trial_started_at >= self.reset_timeout_s:
            self._trial_started_at = now
            return True
        return False

    def record_success(self) -> None:
        """A guarded call succeeded: reset the failure count, close a half-open breaker."""
        self._failures = 0
        if self._state is not BreakerState.CLOSED:
            log.warning("%s circuit breaker closed: dependency answers again", self.name)
        self._state = BreakerState.CLOSED
        self._trial_started_at = None

    def record_failure(self) -> None:
        """A guarded call failed: count it; open the breaker at the threshold or on a failed trial."""
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold
        ):
            self._open()

    def _open(self) -> None:
        if self._state is BreakerState.CLOSED:
            self._trips += 1
            log.warning(
                "%s circuit breaker opened after %d consecutive failures (trip %d); retry in %.1f s",
                self.name,
                self._failures,
                self._trips,
                self.reset_timeout_s,
            )
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._trial_started_at = None

    def snapshot(self) -> BreakerSnapshot:
        """State, trips and consecutive failures, as one value."""
        return BreakerSnapshot(self.state, self._trips, self._failures)


__all__ = ["BreakerSnapshot", "BreakerState", "CircuitBreaker"]
