"""How a bot's answer to one webhook is judged: an :class:`Outcome` and, unless a success, why."""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

TWILIO_TIMEOUT_S = 15.0
"""Twilio gives up on a webhook after 15 seconds (and may retry it)."""
BACKPRESSURE_STATUSES = frozenset({429, 503})
"""Statuses that mean "slow down" (usually with Retry-After) rather than a broken bot."""


class Outcome(StrEnum):
    """How one webhook request went, judged against what the generator intended."""

    SUCCESS = "success"
    """A valid request acknowledged with 2xx (and TwiML when the body was checked)."""
    REJECTED = "rejected"
    """An invalid signature refused with 403: the expected rejection, not an error."""
    BACKPRESSURE = "backpressure"
    """429 or 503: the bot shed load on purpose."""
    FAILURE = "failure"
    """Anything else: errors, wrong acceptance or rejection, non-TwiML replies, no response."""


def classify(
    status_code: int,
    signature_valid: bool,
    body: str | None = None,
    *,
    rejection_statuses: Collection[int] = (403,),
) -> tuple[Outcome, str | None]:
    """Judge the bot's answer to one webhook: the :class:`Outcome` and, unless it is a success, why.

    ``body`` (the response text) is checked for TwiML on a 2xx when given. ``status_code`` 0 means
    no response at all (Locust's code for connection errors and timeouts). ``rejection_statuses``
    are the codes that count as refusing a bad signature (Twilio's convention is 403).
    """
    if status_code in BACKPRESSURE_STATUSES:
        return Outcome.BACKPRESSURE, f"HTTP {status_code}"
    if 200 <= status_code < 300:
        if not signature_valid:
            return Outcome.FAILURE, "accepted invalid signature"
        if body is not None and "<Response" not in body:
            return Outcome.FAILURE, "not TwiML"
        return Outcome.SUCCESS, None
    if status_code in rejection_statuses:
        if signature_valid:
            return Outcome.FAILURE, "valid signature rejected"
        return Outcome.REJECTED, "invalid signature rejected"
    if status_code == 0:
        return Outcome.FAILURE, "no response"
    return Outcome.FAILURE, f"HTTP {status_code}"


__all__ = ["BACKPRESSURE_STATUSES", "TWILIO_TIMEOUT_S", "Outcome", "classify"]
