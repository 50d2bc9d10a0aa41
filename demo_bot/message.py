"""An inbound WhatsApp message as the bot queues it: the webhook's form fields plus arrival time."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One validated webhook delivery, ready for the queue."""

    sid: str
    """Twilio MessageSid (SM... or MM...)."""
    sender: str
    """The ``From`` field, e.g. ``whatsapp:+15551234567``."""
    params: dict[str, str]
    """Every form field Twilio sent (first value of each name), unknown fields included."""
    received_at_s: float
    """Arrival time, seconds since the epoch (wall clock: it crosses process boundaries)."""
    attempts: int = 0
    """Times a worker failed to store this message's result (it went back to the queue)."""

    def to_json(self) -> str:
        """Queue payload."""
        return json.dumps(
            {
                "sid": self.sid,
                "sender": self.sender,
                "params": self.params,
                "received_at_s": self.received_at_s,
                "attempts": self.attempts,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, payload: str | bytes) -> InboundMessage:
        """Inverse of :meth:`to_json`."""
        data = json.loads(payload)
        return cls(
            sid=str(data["sid"]),
            sender=str(data["sender"]),
            params={str(k): str(v) for k, v in data["params"].items()},
            received_at_s=float(data["received_at_s"]),
            attempts=int(data.get("attempts", 0)),
        )


__all__ = ["InboundMessage"]
