"""How a bot's answer to one webhook is judged, as Twilio would see it.

- **delivered**: any 2xx to a validly signed message is a delivered webhook (a success), whatever
  the body. Many real bots ack with an empty 200 and reply later through Twilio's REST API.
- **conformance**: Twilio parses the answer of an incoming-message webhook as TwiML and needs
  ``Content-Type: text/xml`` (or ``application/xml``); anything else makes its debugger log error
  12300 (Invalid Content-Type), XML that is not TwiML error 12100 (Document parse failure). The
  message is still delivered: such an answer is a conformance finding, never an availability failure.
- **refused**: a status in ``rejection_statuses`` (default 401 and 403). For a bad signature that is
  the expected answer (:attr:`Outcome.REJECTED`); for a valid one it is a failure.
- **backpressure**: 429 or 503, the bot shedding load on purpose.
- anything else (other 4xx, 5xx, no answer, a bad signature accepted) is a failure, its reason
  carrying a short, redacted excerpt of the bot's own words.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

TWILIO_TIMEOUT_S = 15.0
"""Twilio gives up on a webhook after 15 seconds (and may retry it)."""
BACKPRESSURE_STATUSES = frozenset({429, 503})
"""Statuses that mean "slow down" (usually with Retry-After) rather than a broken bot."""
REJECTION_STATUSES: tuple[int, ...] = (401, 403)
"""Statuses that count as refusing a message by default (``target.rejection_statuses``)."""
TWIML_CONTENT_TYPES = ("text/xml", "application/xml")
"""Content types Twilio parses as TwiML."""
INVALID_CONTENT_TYPE = 12300
"""Twilio's error for an answer whose Content-Type is not XML."""
DOCUMENT_PARSE_FAILURE = 12100
"""Twilio's error for an XML answer that is not TwiML."""


class Outcome(StrEnum):
    """How one webhook request went, judged against what the generator intended."""

    SUCCESS = "success"
    """A valid request delivered: any 2xx (see :attr:`Judgement.conformance` for the body)."""
    REJECTED = "rejected"
    """An invalid signature refused with a rejection status: the expected answer, not an error."""
    BACKPRESSURE = "backpressure"
    """429 or 503: the bot shed load on purpose."""
    FAILURE = "failure"
    """Anything else: errors, a valid message refused, a bad signature accepted, no response."""


@dataclass(frozen=True, slots=True)
class Judgement:
    """The verdict on one answer."""

    outcome: Outcome
    reason: str | None = None
    """Why it is not a success (None for a success)."""
    conformance: str | None = None
    """For a delivered message: the Twilio error its answer would cause, or None."""


def conformance_of(content_type: str | None, body: str | None) -> str | None:
    """What Twilio would log about a 2xx answer to an incoming message, or None when it is TwiML."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in TWIML_CONTENT_TYPES:
        shown = media_type or "no Content-Type"
        body_note = ", empty body" if not (body or "").strip() else ""
        return f"Twilio error {INVALID_CONTENT_TYPE} (Invalid Content-Type): answered {shown}{body_note}"
    if body is not None and "<Response" not in body:
        return f"Twilio error {DOCUMENT_PARSE_FAILURE} (Document parse failure): XML without a <Response>"
    return None


def _with_words(text: str, excerpt: str) -> str:
    return f'{text}: "{excerpt}"' if excerpt else text


def classify(
    status_code: int,
    signature_valid: bool,
    body: str | None = None,
    *,
    content_type: str | None = None,
    rejection_statuses: Collection[int] = REJECTION_STATUSES,
    excerpt: str = "",
) -> Judgement:
    """Judge the bot's answer to one webhook (see the module docstring).

    ``status_code`` 0 means no response at all (Locust's code for connection errors and timeouts).
    ``body`` and ``content_type`` decide conformance on a 2xx (``body`` None: not read, only the
    content type counts). ``excerpt`` is the bot's own words, already redacted, added to the reason
    of anything but a success.
    """
    if status_code in BACKPRESSURE_STATUSES:
        return Judgement(Outcome.BACKPRESSURE, f"HTTP {status_code}")
    if 200 <= status_code < 300:
        if not signature_valid:
            return Judgement(Outcome.FAILURE, f"accepted an invalid signature (HTTP {status_code})")
        return Judgement(Outcome.SUCCESS, conformance=conformance_of(content_type, body))
    if status_code in rejection_statuses:
        if signature_valid:
            return Judgement(
                Outcome.FAILURE, _with_words(f"valid signature refused (HTTP {status_code})", excerpt)
            )
        return Judgement(Outcome.REJECTED, f"invalid signature refused (HTTP {status_code})")
    if status_code == 0:
        return Judgement(Outcome.FAILURE, _with_words("no response", excerpt))
    return Judgement(Outcome.FAILURE, _with_words(f"HTTP {status_code}", excerpt))


__all__ = [
    "BACKPRESSURE_STATUSES",
    "DOCUMENT_PARSE_FAILURE",
    "INVALID_CONTENT_TYPE",
    "REJECTION_STATUSES",
    "TWILIO_TIMEOUT_S",
    "TWIML_CONTENT_TYPES",
    "Judgement",
    "Outcome",
    "classify",
    "conformance_of",
]
