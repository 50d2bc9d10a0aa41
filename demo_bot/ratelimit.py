"""Per-sender rate limit: a fixed 60-second window, counted in Redis (or in memory when degraded).

The Redis count is done inside the intake script (one round trip, see ``intake.py``); this module
holds the window arithmetic both paths share and the in-memory limiter used while Redis is down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WINDOW_S = 60
"""Length of one rate-limit window, seconds."""


@dataclass(frozen=True, slots=True)
class Window:
    """One fixed window: its number and the seconds left until the next one starts."""

    number: int
    retry_after_s: int
    """Whole seconds (>= 1) until the window ends: the Retry-After of a 429."""

    @classmethod
    def at(cls, now_s: float) -> Window:
        """The window containing ``now_s`` (seconds since the epoch)."""
        number = int(now_s // WINDOW_S)
        left = (number + 1) * WINDOW_S - now_s
        return cls(number, max(1, math.ceil(left)))


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether one more message from a sender is allowed now."""

    allowed: bool
    count: int
    """Messages from this sender in the current window, this one included."""
    retry_after_s: int


class MemoryRateLimiter:
    """The fallback limiter: counts per sender in this process only (bounded memory)."""

    def __init__(self, limit_per_window: int, max_senders: int = 100_000) -> None:
        self.limit_per_window = limit_per_window
        """Allowed messages per sender per window; 0 disables the limit."""
        self.max_senders = max_senders
        self._window = -1
        self._counts: dict[str, int] = {}

    def check(self, sender: str, now_s: float) -> RateDecision:
        """Count one message from ``sender`` at ``now_s`` and decide."""
        window = Window.at(now_s)
        if self.limit_per_window <= 0:
            return RateDecision(True, 0, window.retry_after_s)
        if window.number != self._window or len(self._counts) >= self.max_senders:
            self._window = window.number
            self._counts.clear()
        count = self._counts.get(sender, 0) + 1
        self._counts[sender] = count
        return RateDecision(count <= self.limit_per_window, count, window.retry_after_s)


__all__ = ["WINDOW_S", "MemoryRateLimiter", "RateDecision", "Window"]
