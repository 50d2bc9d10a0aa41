"""Realistic Twilio WhatsApp inbound-message webhooks, signed as Twilio signs them.

Twilio POSTs every inbound WhatsApp message to the bot as a form (``application/x-www-form-urlencoded``)
and signs it (:mod:`perfsuite.twilio.signing`). :class:`TrafficGenerator` builds such requests with the
field set Twilio really sends, for a configurable mix of message kinds, a share of deliberately bad
signatures (wrong token, mangled, missing, wrong URL, tampered body: a validating bot must refuse
them) and a share of retries (the same MessageSid again, as Twilio retries after a timeout: a bot must
ack it without doing the work twice).

Core code: the standard library and :mod:`perfsuite.errors` only; plain values in, frozen dataclasses
out. The auth token never appears in a repr or a message.
"""

from __future__ import annotations

import math
import os
import random
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from urllib.parse import urlencode, urlsplit, urlunsplit

from perfsuite.errors import ConfigError
from perfsuite.twilio.content import (
    BUTTONS,
    COMMANDS,
    DOCUMENT_CAPTIONS,
    IMAGE_CAPTIONS,
    IMAGE_TYPES,
    PLACES,
    job_offer_text,
)
from perfsuite.twilio.names import MAX_SENDERS, Sender, sender_for_index
from perfsuite.twilio.signing import (
    API_VERSION,
    FORM_CONTENT_TYPE,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TWILIO_USER_AGENT,
    new_sid,
    signature_with_key,
)

MESSAGE_KINDS = ("text", "document", "image", "location", "button", "command")
"""Kinds of inbound message a simulated user sends; the keys a message mix may use."""

_FORM_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_FORM_BYTE = tuple(chr(b) if b in _FORM_SAFE else ("+" if b == 32 else f"%{b:02X}") for b in range(256))
_form_cache: dict[str, str] = {}
_FORM_CACHE_MAX = 65_536


def _form_quote(value: str) -> str:
    """``urllib.parse.quote_plus`` of ``value`` (UTF-8); repeated values (names, kinds, statuses) cached."""
    if value.isascii() and value.isalnum():
        return value
    quoted = _form_cache.get(value)
    if quoted is None:
        quoted = "".join(map(_FORM_BYTE.__getitem__, value.encode("utf-8")))
        if len(_form_cache) < _FORM_CACHE_MAX and len(value) < 200:
            _form_cache[value] = quoted
    return quoted


def form_body(params: Iterable[tuple[str, str]]) -> bytes:
    """The form body of ``params`` exactly as ``urlencode(params).encode()`` gives it, at a fraction
    of its cost (it is built once per message on the load generator's hot path)."""
    return "&".join([_form_quote(name) + "=" + _form_quote(value) for name, value in params]).encode("ascii")


_SID_HEX = re.compile(r"[0-9a-fA-F]{32}")
_E164 = re.compile(r"\+[0-9]{7,15}")
_BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


class SignatureFault(StrEnum):
    """How a deliberately invalid request was signed."""

    WRONG_TOKEN = "wrong_token"
    """Signed correctly but with another auth token (a forger or a misconfigured proxy)."""
    MANGLED = "mangled"
    """A valid signature with one significant base64 character changed."""
    MISSING = "missing"
    """No X-Twilio-Signature header at all."""
    WRONG_URL = "wrong_url"
    """Signed for the other scheme (http <-> https) of the public URL."""
    TAMPERED = "tampered"
    """Signed, then the Body was altered in transit."""


_FAULTS = tuple(SignatureFault)


@dataclass(frozen=True, slots=True)
class WebhookMessage:
    """One inbound-message webhook request, ready to POST to the public URL."""

    kind: str
    """One of :data:`MESSAGE_KINDS`."""
    params: tuple[tuple[str, str], ...]
    """The form fields in the order Twilio sends them."""
    message_sid: str
    """MessageSid (= SmsMessageSid = SmsSid): ``SM`` + 32 hex, or ``MM`` + 32 hex with media."""
    signature: str
    """The X-Twilio-Signature to send; empty when the header is deliberately missing."""
    signature_valid: bool
    """Whether the generator meant the signature to validate (a correct bot answers 403 if not)."""
    duplicate: bool = False
    """A retry of an earlier message of the same sender: same MessageSid, params and token."""
    signature_fault: SignatureFault | None = None
    """How the signature was made invalid; None when it is valid."""
    idempotency_token: str = ""
    """The I-Twilio-Idempotency-Token value; retries repeat the original's."""

    @property
    def signature_case(self) -> str:
        """A label for reports: ``valid``, ``replayed`` (a duplicate) or the :class:`SignatureFault`."""
        if self.duplicate:
            return "replayed"
        return "valid" if self.signature_fault is None else self.signature_fault.value

    def form(self) -> dict[str, str]:
        """The form fields as a dict (names are unique), e.g. for ``client.post(data=...)``."""
        return dict(self.params)

    def urlencoded(self) -> str:
        """The request body, form-encoded as UTF-8 in Twilio's field order."""
        return urlencode(self.params)

    def body(self) -> bytes:
        """The request body as sent: form-encoded, UTF-8, Twilio's field order."""
        return form_body(self.params)

    def headers(self) -> dict[str, str]:
        """The HTTP headers Twilio sends with this request (no signature header when it is missing)."""
        headers = {
            "Content-Type": FORM_CONTENT_TYPE,
            "User-Agent": TWILIO_USER_AGENT,
            IDEMPOTENCY_HEADER: self.idempotency_token,
        }
        if self.signature:
            headers[SIGNATURE_HEADER] = self.signature
        return headers


def _require_rate(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"{name}: must be a number between 0 and 1, got {value!r}")
    return float(value)


class TrafficGenerator:
    """Builds signed inbound-message webhooks for simulated WhatsApp users.

    ``mix`` maps message kinds (:data:`MESSAGE_KINDS`; missing kinds weigh 0) to relative
    weights. ``duplicate_rate`` and ``invalid_signature_rate`` are shares of all messages (their
    sum must not exceed 1): a duplicate re-sends the sender's previous message unchanged with a
    valid signature; an invalid one carries one of the :class:`SignatureFault` kinds. A sender's
    first message cannot be a duplicate, so its odds of an invalid signature are slightly higher.

    ``rng`` drives every content and rate decision (seed it for repeatable content); SIDs and
    idempotency tokens always come from os.urandom, so several Locust processes never collide.
    ``first_sender_index`` is the index the first :meth:`new_sender` call without an index gets;
    None draws it at random so that workers which do not coordinate indexes still get distinct users.
    """

    def __init__(
        self,
        account_sid: str,
        bot_number: str,
        public_url: str,
        auth_token: str,
        mix: Mapping[str, float],
        invalid_signature_rate: float,
        duplicate_rate: float,
        rng: random.Random | None = None,
        messaging_service_sid: str | None = None,
        *,
        first_sender_index: int | None = None,
    ) -> None:
        if not isinstance(account_sid, str) or not (
            account_sid.startswith("AC") and _SID_HEX.fullmatch(account_sid[2:])
        ):
            raise ConfigError(f"account_sid: must be 'AC' followed by 32 hex digits, got {account_sid!r}")
        if messaging_service_sid is not None and not (
            isinstance(messaging_service_sid, str)
            and messaging_service_sid.startswith("MG")
            and _SID_HEX.fullmatch(messaging_service_sid[2:])
        ):
            raise ConfigError(
                "messaging_service_sid: must be 'MG' followed by 32 hex digits or None, "
                f"got {messaging_service_sid!r}"
            )
        number = bot_number.removeprefix("whatsapp:") if isinstance(bot_number, str) else bot_number
        if not isinstance(number, str) or not _E164.fullmatch(number):
            raise ConfigError(f"bot_number: must be an E.164 number such as +14155238886, got {bot_number!r}")
        self._public_url = self._check_url(public_url)
        if not isinstance(auth_token, str) or not auth_token:
            raise ConfigError("auth_token: must be a non-empty string (set TWILIO_AUTH_TOKEN)")
        self._kinds, self._cum_weights = self._check_mix(mix)
        self._invalid_rate = _require_rate("invalid_signature_rate", invalid_signature_rate)
        self._duplicate_rate = _require_rate("duplicate_rate", duplicate_rate)
        if self._invalid_rate + self._duplicate_rate > 1:
            raise ConfigError(
                "invalid_signature_rate + duplicate_rate: both are shares of all messages and must not "
                f"add up to more than 1, got {invalid_signature_rate} + {duplicate_rate}"
            )
        # Invalid share among new (non-duplicate) messages, so that it is the overall share.
        remaining = 1.0 - self._duplicate_rate
        self._invalid_among_new = min(1.0, self._invalid_rate / remaining) if remaining > 0 else 0.0
        if first_sender_index is None:
            first_sender_index = int.from_bytes(os.urandom(8), "big") % (MAX_SENDERS // 2)
        elif isinstance(first_sender_index, bool) or not 0 <= first_sender_index < MAX_SENDERS:
            raise ConfigError(
                f"first_sender_index: must be in [0, {MAX_SENDERS}), got {first_sender_index!r}"
            )

        self._account_sid = account_sid
        self._bot_whatsapp = "whatsapp:" + number
        self._messaging_service_sid = messaging_service_sid
        self._rng = rng if rng is not None else random.Random()
        self._key = auth_token.encode("utf-8")
        wrong_key = os.urandom(16).hex().encode("ascii")
        self._wrong_key = wrong_key if wrong_key != self._key else wrong_key[::-1]
        parts = urlsplit(self._public_url)
        other_scheme = "http" if parts.scheme == "https" else "https"
        self._wrong_url = urlunsplit(parts._replace(scheme=other_scheme))
        self._next_sender_index = first_sender_index
        self._previous: dict[str, WebhookMessage] = {}

    @staticmethod
    def _check_url(public_url: str) -> str:
        if not isinstance(public_url, str):
            raise ConfigError(f"public_url: must be an http(s) URL, got {public_url!r}")
        try:
            parts = urlsplit(public_url)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError as exc:
            raise ConfigError(f"public_url: not a valid URL ({exc}), got {public_url!r}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                "public_url: must be an http(s) URL such as https://bot.example.com/webhook, "
                f"got {public_url!r}"
            )
        return public_url

    @staticmethod
    def _check_mix(mix: Mapping[str, float]) -> tuple[tuple[str, ...], list[float]]:
        if not isinstance(mix, Mapping):
            raise ConfigError(f"mix: must be a mapping of message kind -> weight, got {type(mix).__name__}")
        for kind, weight in mix.items():
            if kind not in MESSAGE_KINDS:
                raise ConfigError(f"mix.{kind}: unknown message kind; allowed: {', '.join(MESSAGE_KINDS)}")
            if (
                isinstance(weight, bool)
                or not isinstance(weight, int | float)
                or not math.isfinite(weight)
                or weight < 0
            ):
                raise ConfigError(f"mix.{kind}: weight must be a finite number >= 0, got {weight!r}")
        kinds = tuple(kind for kind in MESSAGE_KINDS if mix.get(kind, 0) > 0)
        if not kinds:
            raise ConfigError(f"mix: weights must add up to more than 0; kinds: {', '.join(MESSAGE_KINDS)}")
        cum_weights: list[float] = []
        total = 0.0
        for kind in kinds:
            total += float(mix[kind])
            cum_weights.append(total)
        return kinds, cum_weights

    def __repr__(self) -> str:
        return (
            f"TrafficGenerator(account_sid={self._account_sid!r}, bot={self._bot_whatsapp!r}, "
            f"public_url={self._public_url!r}, auth_token=<hidden>, kinds={self._kinds!r}, "
            f"invalid_signature_rate={self._invalid_rate}, duplicate_rate={self._duplicate_rate})"
        )

    @property
    def public_url(self) -> str:
        """The URL every message is signed for (what the bot sees)."""
        return self._public_url

    def new_sender(self, index: int | None = None) -> Sender:
        """A simulated user. The same ``index`` always gives the same number and profile name (in any
        process); distinct indexes give distinct numbers. Without an index, the next unused one."""
        if index is None:
            index = self._next_sender_index % MAX_SENDERS
            self._next_sender_index += 1
        elif isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_SENDERS:
            raise ConfigError(f"index: a sender index must be an int in [0, {MAX_SENDERS}), got {index!r}")
        return sender_for_index(index)

    def forget(self, sender: Sender) -> None:
        """Drop the sender's previous message (call when a simulated user stops, to bound memory)."""
        self._previous.pop(sender.number, None)

    def next_message(self, sender: Sender) -> WebhookMessage:
        """The sender's next webhook: a retry of their previous message, or a new one of a kind picked
        by the mix, validly signed or (at the configured rate) deliberately not."""
        rng = self._rng
        previous = self._previous.get(sender.number)
        if previous is not None and self._duplicate_rate and rng.random() < self._duplicate_rate:
            return self._retry(previous)
        kind = rng.choices(self._kinds, cum_weights=self._cum_weights)[0]
        params, sid = self._build(kind, sender)
        fault: SignatureFault | None = None
        if self._invalid_among_new and rng.random() < self._invalid_among_new:
            fault = rng.choice(_FAULTS)
            params, signature = self._badsignature_with_key(fault, params)
        else:
            signature = signature_with_key(self._key, self._public_url, params)
        message = WebhookMessage(
            kind=kind,
            params=params,
            message_sid=sid,
            signature=signature,
            signature_valid=fault is None,
            signature_fault=fault,
            idempotency_token=str(uuid.uuid4()),
        )
        self._previous[sender.number] = message
        return message

    def _retry(self, original: WebhookMessage) -> WebhookMessage:
        signature = original.signature
        if not original.signature_valid:
            signature = signature_with_key(self._key, self._public_url, original.params)
        return replace(
            original, signature=signature, signature_valid=True, signature_fault=None, duplicate=True
        )

    def _badsignature_with_key(
        self, fault: SignatureFault, params: tuple[tuple[str, str], ...]
    ) -> tuple[tuple[tuple[str, str], ...], str]:
        if fault is SignatureFault.WRONG_TOKEN:
            return params, signature_with_key(self._wrong_key, self._public_url, params)
        if fault is SignatureFault.MISSING:
            return params, ""
        if fault is SignatureFault.WRONG_URL:
            return params, signature_with_key(self._key, self._wrong_url, params)
        valid = signature_with_key(self._key, self._public_url, params)
        if fault is SignatureFault.TAMPERED:
            tampered = tuple((name, value + " 💸" if name == "Body" else value) for name, value in params)
            return tampered, valid
        # MANGLED: change one of the first 26 characters, which carry whole 6-bit groups, so that the
        # decoded digest differs too (the 27th carries padding bits a decoder may ignore).
        position = self._rng.randrange(26)
        replacement = self._rng.choice(_BASE64_ALPHABET.replace(valid[position], ""))
        return params, valid[:position] + replacement + valid[position + 1 :]

    def _build(self, kind: str, sender: Sender) -> tuple[tuple[tuple[str, str], ...], str]:
        rng = self._rng
        front: list[tuple[str, str]] = []
        media_types: tuple[str, ...] = ()
        message_type = kind
        if kind == "text":
            body = job_offer_text(rng)
        elif kind == "command":
            body, message_type = rng.choice(COMMANDS), "text"
        elif kind == "document":
            body, media_types = rng.choice(DOCUMENT_CAPTIONS), ("application/pdf",)
        elif kind == "image":
            body, media_types = rng.choice(IMAGE_CAPTIONS), (rng.choice(IMAGE_TYPES),)
        elif kind == "location":
            latitude, longitude, address, label = rng.choice(PLACES)
            body = ""
            front = [
                ("Latitude", f"{latitude + rng.uniform(-0.01, 0.01):.7f}"),
                ("Longitude", f"{longitude + rng.uniform(-0.01, 0.01):.7f}"),
            ]
            if rng.random() < 0.4:  # a shared place rather than a dropped pin
                front += [("Address", address), ("Label", label)]
        else:  # button: a quick reply to the bot's last message
            body, payload = rng.choice(BUTTONS)
            front = [
                ("ButtonPayload", payload),
                ("ButtonText", body),
                ("OriginalRepliedMessageSender", self._bot_whatsapp),
                ("OriginalRepliedMessageSid", new_sid("SM")),
            ]
        sid = new_sid("MM" if media_types else "SM")
        media_urls = [
            f"https://api.twilio.com/{API_VERSION}/Accounts/{self._account_sid}/Messages/{sid}/Media/{new_sid('ME')}"
            for _ in media_types
        ]
        # Field order as captured from real Twilio WhatsApp webhooks.
        params = [(f"MediaContentType{n}", content_type) for n, content_type in enumerate(media_types)]
        params += front
        params += [
            ("SmsMessageSid", sid),
            ("NumMedia", str(len(media_types))),
            ("ProfileName", sender.profile_name),
            ("MessageType", message_type),
            ("SmsSid", sid),
            ("WaId", sender.wa_id),
            ("SmsStatus", "received"),
            ("Body", body),
            ("To", self._bot_whatsapp),
            ("NumSegments", "1"),
            ("ReferralNumMedia", "0"),
            ("MessageSid", sid),
            ("AccountSid", self._account_sid),
        ]
        if self._messaging_service_sid is not None:
            params.append(("MessagingServiceSid", self._messaging_service_sid))
        params.append(("From", sender.whatsapp))
        params += [(f"MediaUrl{n}", url) for n, url in enumerate(media_urls)]
        params.append(("ApiVersion", API_VERSION))
        return tuple(params), sid


__all__ = [
    "MESSAGE_KINDS",
    "Sender",
    "SignatureFault",
    "TrafficGenerator",
    "WebhookMessage",
    "form_body",
]
