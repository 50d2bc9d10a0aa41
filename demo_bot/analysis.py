"""The "reality check" of a job offer: message kind, red-flag score and verdict.

The real bot sends the text (or the PDF) to an analysis API; here that wait is simulated with
``gevent.sleep`` for the configured time per kind, so the work costs latency but no CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gevent

from demo_bot.config import WorkProfile
from demo_bot.message import InboundMessage

RED_FLAGS: tuple[str, ...] = (
    "upfront fee",
    "registration fee",
    "training fee",
    "pay to start",
    "wire transfer",
    "western union",
    "gift card",
    "crypto",
    "bitcoin",
    "no experience needed",
    "work from home",
    "guaranteed income",
    "earn $",
    "per day",
    "telegram",
    "whatsapp only",
    "urgent",
    "limited slots",
    "send your bank",
    "passport copy",
)
"""Phrases that make a job offer suspicious (lower-case substrings of the message body)."""

_DOCUMENT_TYPES = ("application/", "text/")


def classify_kind(params: dict[str, str]) -> str:
    """``text``, ``document``, ``image`` or Twilio's own MessageType (location, button, audio ...)."""
    message_type = params.get("MessageType", "").strip().lower()
    media_type = params.get("MediaContentType0", "").strip().lower()
    try:
        num_media = int(params.get("NumMedia", "0") or "0")
    except ValueError:
        num_media = 0
    if num_media > 0 or message_type in ("document", "image", "media"):
        if media_type.startswith("image/") or message_type == "image":
            return "image"
        if media_type.startswith(_DOCUMENT_TYPES) or message_type == "document":
            return "document"
    if message_type:
        return message_type
    return "text"


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    """What a worker stores for one message."""

    sid: str
    sender: str
    kind: str
    verdict: str
    """``likely_legit``, ``suspicious`` or ``likely_scam``."""
    score: int
    """Number of red-flag phrases found."""
    work_ms: float
    """Simulated analysis time spent, milliseconds."""
    received_at_s: float
    analysed_at_s: float


class Analyser:
    """Classifies a message and scores it, waiting ``profile`` milliseconds per kind."""

    def __init__(self, profile: WorkProfile) -> None:
        self.profile = profile

    def analyse(self, message: InboundMessage) -> AnalysisResult:
        """Analyse ``message``; yields to other greenlets for the simulated API wait."""
        kind = classify_kind(message.params)
        work_ms = self.profile.for_kind(kind)
        if work_ms > 0:
            gevent.sleep(work_ms / 1000)
        body = message.params.get("Body", "").lower()
        if kind == "document":
            # The PDF's text would come back from the API; its file name is all we have here.
            body += " " + message.params.get("MediaUrl0", "").lower()
        score = sum(1 for flag in RED_FLAGS if flag in body)
        verdict = "likely_scam" if score >= 3 else "suspicious" if score >= 1 else "likely_legit"
        return AnalysisResult(
            sid=message.sid,
            sender=message.sender,
            kind=kind,
            verdict=verdict,
            score=score,
            work_ms=work_ms,
            received_at_s=message.received_at_s,
            analysed_at_s=time.time(),
        )


__all__ = ["RED_FLAGS", "Analyser", "AnalysisResult", "classify_kind"]
