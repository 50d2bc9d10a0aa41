"""Twilio WhatsApp webhook traffic: who sends (names), what (content, messages), how it is signed
(signing), how the bot's answers are judged (responses) and its own timing breakdown (server_timing).

Core code: imports only the standard library and :mod:`perfsuite.errors`.
"""

from __future__ import annotations

from perfsuite.twilio.messages import MESSAGE_KINDS, SignatureFault, TrafficGenerator, WebhookMessage
from perfsuite.twilio.names import MAX_SENDERS, Sender
from perfsuite.twilio.responses import (
    BACKPRESSURE_STATUSES,
    REJECTION_STATUSES,
    TWILIO_TIMEOUT_S,
    Judgement,
    Outcome,
    classify,
    conformance_of,
)
from perfsuite.twilio.server_timing import parse_server_timing
from perfsuite.twilio.signing import (
    API_VERSION,
    FORM_CONTENT_TYPE,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TWILIO_USER_AGENT,
    sign,
)

__all__ = [
    "API_VERSION",
    "BACKPRESSURE_STATUSES",
    "FORM_CONTENT_TYPE",
    "IDEMPOTENCY_HEADER",
    "MAX_SENDERS",
    "MESSAGE_KINDS",
    "REJECTION_STATUSES",
    "SIGNATURE_HEADER",
    "TWILIO_TIMEOUT_S",
    "TWILIO_USER_AGENT",
    "Judgement",
    "Outcome",
    "Sender",
    "SignatureFault",
    "TrafficGenerator",
    "WebhookMessage",
    "classify",
    "conformance_of",
    "parse_server_timing",
    "sign",
]
