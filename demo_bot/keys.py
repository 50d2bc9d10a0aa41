"""Every Redis key the bot reads or writes; all of them start with the configured prefix.

- ``{prefix}queue``                      list of queued messages (JSON), RPUSH in, LPOP out
- ``{prefix}rl:{sender}:{window}``       per-sender message count in one fixed 60 s window (expires)
- ``{prefix}dedupe:{MessageSid}``        marks a MessageSid as seen (SET NX EX, expires)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Builds the bot's Redis keys under ``prefix``."""

    prefix: str = "demo_bot:"

    @property
    def queue(self) -> str:
        """The message queue (a Redis list)."""
        return f"{self.prefix}queue"

    def rate(self, sender: str, window: int) -> str:
        """The counter of ``sender``'s messages in fixed window number ``window``."""
        return f"{self.prefix}rl:{sender}:{window}"

    def dedupe(self, message_sid: str) -> str:
        """The marker that ``message_sid`` was already accepted."""
        return f"{self.prefix}dedupe:{message_sid}"


__all__ = ["RedisKeys"]
