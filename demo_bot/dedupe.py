"""MessageSid de-duplication while Redis is down (in Redis it is ``SET NX EX`` in the intake script).

Twilio retries a webhook it got no answer for, with the same MessageSid; the bot answers the
retry 200 but must not analyse the message twice.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class MemoryDeduper:
    """Seen MessageSids with an expiry, oldest evicted first past ``max_entries``."""

    def __init__(
        self, ttl_s: float, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._expires_at: OrderedDict[str, float] = OrderedDict()

    def claim(self, sid: str) -> bool:
        """True the first time ``sid`` is seen (within the TTL), False for a duplicate."""
        now = self._clock()
        while self._expires_at:
            oldest, expires = next(iter(self._expires_at.items()))
            if expires > now and len(self._expires_at) < self.max_entries:
                break
            del self._expires_at[oldest]
        if sid in self._expires_at:
            return False
        self._expires_at[sid] = now + self.ttl_s
        return True

    def release(self, sid: str) -> None:
        """Forget ``sid`` (its message was refused, so a retry must be accepted)."""
        self._expires_at.pop(sid, None)

    def __len__(self) -> int:
        return len(self._expires_at)


__all__ = ["MemoryDeduper"]
