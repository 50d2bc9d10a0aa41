"""A circuit breaker: closed -> open -> half-open -> closed, with every change recorded.

Policy (the usual consecutive-failure breaker, as in the bot's own Redis layer):

- **closed**: every call goes through; ``failure_threshold`` consecutive failures open it (a *trip*).
- **open**: calls are refused at once with :class:`CircuitOpenError` (nothing is sent) for
  ``reset_timeout_s`` seconds.
- **half-open**: one trial call at a time goes through; ``half_open_successes`` successful trials in
  a row close the breaker, a failed trial opens it again (a *reopen*).

Calls that were let through before a state change and finish after it are *stale*: they are
counted but do not move the state (a slow success admitted while closed must not close a breaker
that has since opened). Not thread-safe across OS threads; any number of greenlets is fine.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from perfsuite.config import BreakerConfig

HALF_OPEN_RETRY_SHARE = 0.25
"""A caller refused while a trial call is in flight retries after this share of reset_timeout_s."""


class BreakerState(enum.StrEnum):
    """The three breaker states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitOpenError(Exception):
    """The breaker refused the call without sending it (open, or a trial already in flight)."""

    def __init__(self, state: BreakerState, retry_after_s: float) -> None:
        super().__init__(f"circuit breaker {state.value}: call refused")
        self.state: BreakerState = state
        self.retry_after_s: float = retry_after_s
        """Seconds until the breaker may let a call through again."""


@dataclass(frozen=True, slots=True)
class BreakerTransition:
    """One state change."""

    at_s: float
    """Wall-clock time of the change (epoch seconds)."""
    elapsed_s: float
    """Seconds since the breaker was created (monotonic)."""
    from_state: BreakerState
    to_state: BreakerState
    reason: str
    """Why: ``5 consecutive failures (last: ConnectionError)``, ``reset timeout elapsed``..."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (states as their string values)."""
        data = asdict(self)
        data["from_state"] = self.from_state.value
        data["to_state"] = self.to_state.value
        return data


@dataclass(frozen=True, slots=True)
class Permit:
    """What :meth:`CircuitBreaker.before_call` hands out; give it back to ``record_*``."""

    epoch: int
    """The breaker's state epoch when the call was admitted (stale if it changed since)."""
    trial: bool
    """True for a half-open trial call."""


class CircuitBreaker:
    """Consecutive-failure circuit breaker (see the module docstring for the policy)."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout_s: float = 1.0,
        half_open_successes: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_transition: Callable[[BreakerTransition], None] | None = None,
    ) -> None:
        """``clock`` (monotonic seconds) and ``wall_clock`` (epoch seconds) are parameters so that
        tests can drive time; ``on_transition`` is called after every state change."""
        if failure_threshold < 1:
            raise ValueError(f"failure_threshold must be >= 1, got {failure_threshold}")
        if reset_timeout_s <= 0:
            raise ValueError(f"reset_timeout_s must be > 0 seconds, got {reset_timeout_s}")
        if half_open_successes < 1:
            raise ValueError(f"half_open_successes must be >= 1, got {half_open_successes}")
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.half_open_successes = half_open_successes
        self._clock = clock
        self._wall_clock = wall_clock
        self._on_transition = on_transition
        self._created = clock()
        self._state = BreakerState.CLOSED
        self._epoch = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self._consecutive_failures = 0
        self._trial_successes = 0
        self._last_failure = ""
        self.transitions: list[BreakerTransition] = []
        """Every state change, oldest first."""
        self.trips: int = 0
        """closed -> open changes."""
        self.reopens: int = 0
        """half-open -> open changes (a trial call failed)."""
        self.refused: int = 0
        """Calls refused without being sent."""
        self.successes: int = 0
        """Admitted calls that succeeded (stale ones included)."""
        self.failures: int = 0
        """Admitted calls that failed (stale ones included)."""

    @classmethod
    def from_config(cls, config: BreakerConfig, **kwargs: Any) -> CircuitBreaker:
        """A breaker with the thresholds of ``redis_bench.breaker``."""
        return cls(config.failure_threshold, config.reset_timeout_s, config.half_open_successes, **kwargs)

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker whose timeout has elapsed reads as half-open)."""
        self._maybe_half_open()
        return self._state

    def _maybe_half_open(self) -> None:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_timeout_s:
            self._change(BreakerState.HALF_OPEN, "reset timeout elapsed")

    def _change(self, to_state: BreakerState, reason: str) -> None:
        now = self._clock()
        transition = BreakerTransition(
            at_s=self._wall_clock(),
            elapsed_s=now - self._created,
            from_state=self._state,
            to_state=to_state,
            reason=reason,
        )
        self._state = to_state
        self._epoch += 1
        self._trial_in_flight = False
        self._trial_successes = 0
        if to_state is BreakerState.OPEN:
            self._opened_at = now
        if to_state is BreakerState.CLOSED:
            self._consecutive_failures = 0
        self.transitions.append(transition)
        if self._on_transition is not None:
            self._on_transition(transition)

    def retry_after_s(self) -> float:
        """Seconds until a refused caller should try again (0 when calls go through now)."""
        state = self.state
        if state is BreakerState.OPEN:
            return max(0.0, self.reset_timeout_s - (self._clock() - self._opened_at))
        if state is BreakerState.HALF_OPEN and self._trial_in_flight:
            return self.reset_timeout_s * HALF_OPEN_RETRY_SHARE
        return 0.0

    def before_call(self) -> Permit:
        """Admit a call or raise :class:`CircuitOpenError`; report its end with ``record_*``."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Permit(self._epoch, trial=False)
        if state is BreakerState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return Permit(self._epoch, trial=True)
        self.refused += 1
        raise CircuitOpenError(state, self.retry_after_s())

    def record_success(self, permit: Permit) -> None:
        """The admitted call succeeded."""
        self.successes += 1
        if permit.epoch != self._epoch:
            return
        if self._state is BreakerState.CLOSED:
            self._consecutive_failures = 0
        elif self._state is BreakerState.HALF_OPEN and permit.trial:
            self._trial_in_flight = False
            self._trial_successes += 1
            if self._trial_successes >= self.half_open_successes:
                self._change(BreakerState.CLOSED, f"{self._trial_successes} trial call(s) succeeded")

    def record_failure(self, permit: Permit, error: BaseException | str) -> None:
        """The admitted call failed with ``error``."""
        self.failures += 1
        self._last_failure = error if isinstance(error, str) else type(error).__name__
        if permit.epoch != self._epoch:
            return
        if self._state is BreakerState.CLOSED:
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.failure_threshold:
                self.trips += 1
                self._change(
                    BreakerState.OPEN,
                    f"{self._consecutive_failures} consecutive failures (last: {self._last_failure})",
                )
        elif self._state is BreakerState.HALF_OPEN and permit.trial:
            self.reopens += 1
            self._change(BreakerState.OPEN, f"trial call failed ({self._last_failure})")

    def record_abandoned(self, permit: Permit) -> None:
        """The admitted call ended without a verdict (its caller was stopped): free the trial slot."""
        if permit.trial and permit.epoch == self._epoch:
            self._trial_in_flight = False

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self.state.value}, trips={self.trips}, reopens={self.reopens}, "
            f"refused={self.refused})"
        )


__all__ = [
    "HALF_OPEN_RETRY_SHARE",
    "BreakerState",
    "BreakerTransition",
    "CircuitBreaker",
    "CircuitOpenError",
    "Permit",
]
