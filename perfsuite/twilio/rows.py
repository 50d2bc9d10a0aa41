"""How webhook requests are named in the statistics: one row per message kind, each bad-signature
case and Twilio's retries apart, so a report shows how the bot answers each."""

from __future__ import annotations

from perfsuite.twilio import WebhookMessage

BAD_SIGNATURE_ROW = "webhook bad-signature"
"""Rows of deliberately bad signatures: ``webhook bad-signature:<case>`` (missing, mangled, ...)."""

DUPLICATE_ROW = "webhook duplicate"
"""Twilio-style retries (the same MessageSid again)."""


def request_name(message: WebhookMessage) -> str:
    """Stats row of a message: its kind, with each bad-signature case and retries kept apart."""
    if not message.signature_valid:
        return f"{BAD_SIGNATURE_ROW}:{message.signature_fault or 'invalid'}"
    if message.duplicate:
        return DUPLICATE_ROW
    return f"webhook {message.kind}"


def is_bad_signature_row(name: str) -> bool:
    """True for a row of deliberately bad signatures."""
    return name.startswith(BAD_SIGNATURE_ROW)


__all__ = ["BAD_SIGNATURE_ROW", "DUPLICATE_ROW", "is_bad_signature_row", "request_name"]
