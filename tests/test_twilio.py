"""Twilio webhook traffic: signatures a real Twilio validator agrees with, realistic payloads, judging."""

from __future__ import annotations

import base64
import random
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import pytest
from twilio.request_validator import RequestValidator

from perfsuite.errors import ConfigError
from perfsuite.twilio import (
    IDEMPOTENCY_HEADER,
    MAX_SENDERS,
    MESSAGE_KINDS,
    SIGNATURE_HEADER,
    Judgement,
    Outcome,
    Sender,
    SignatureFault,
    TrafficGenerator,
    WebhookMessage,
    classify,
    parse_server_timing,
    sign,
)

TOKEN = "f3b1c2d4e5f60718293a4b5c6d7e8f90"
ACCOUNT_SID = "AC" + "1f2e3d4c" * 4
SERVICE_SID = "MG" + "0a9b8c7d" * 4
BOT_NUMBER = "+14155238886"
PLAIN_URL = "https://bot.example.test/webhook/whatsapp"
PORT_QUERY_URL = "https://bot.example.test:8443/webhook/whatsapp?tenant=acme&v=2"
LOCAL_URL = "http://127.0.0.1:8000/webhook/whatsapp"
EVEN_MIX = dict.fromkeys(MESSAGE_KINDS, 1.0)

MESSAGE_SID = re.compile(r"(SM|MM)[0-9a-f]{32}")
MEDIA_URL = re.compile(
    rf"https://api\.twilio\.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/(MM[0-9a-f]{{32}})/Media/(ME[0-9a-f]{{32}})"
)
E164 = re.compile(r"\+[1-9][0-9]{7,14}")
COMMON_FIELDS = {
    "SmsMessageSid",
    "NumMedia",
    "ProfileName",
    "MessageType",
    "SmsSid",
    "WaId",
    "SmsStatus",
    "Body",
    "To",
    "NumSegments",
    "ReferralNumMedia",
    "MessageSid",
    "AccountSid",
    "From",
    "ApiVersion",
}


def make_generator(
    public_url: str = PLAIN_URL,
    *,
    mix: Mapping[str, float] | None = None,
    invalid: float = 0.2,
    duplicate: float = 0.1,
    seed: int = 7,
    **overrides: Any,
) -> TrafficGenerator:
    """A generator with the test account, bot and token; keyword overrides replace any argument."""
    arguments: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "bot_number": BOT_NUMBER,
        "public_url": public_url,
        "auth_token": TOKEN,
        "mix": EVEN_MIX if mix is None else mix,
        "invalid_signature_rate": invalid,
        "duplicate_rate": duplicate,
        "rng": random.Random(seed),
    }
    arguments.update(overrides)
    return TrafficGenerator(**arguments)


def generate(generator: TrafficGenerator, count: int, users: int = 25) -> list[WebhookMessage]:
    """``count`` messages from ``users`` senders taking turns."""
    senders = [generator.new_sender() for _ in range(users)]
    return [generator.next_message(senders[n % users]) for n in range(count)]


# ------------------------------------------------------------------------------------------ signing


def test_sign_matches_twilio_documentation_example() -> None:
    """The worked example from Twilio's security docs gives Twilio's published signature."""
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675310",
        "Digits": "1234",
        "From": "+14158675310",
        "To": "+18005551212",
    }
    assert (
        sign("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params) == "GvWf1cFY/Q7PnoempGyD5oXAezc="
    )


def test_sign_accepts_pairs_and_repeated_names_like_twilio_validator() -> None:
    """Pairs (with a repeated name and UTF-8 text) sign exactly as the twilio package computes it."""

    class MultiValueForm(dict[str, str]):
        """A form with repeated names, shaped like Django's QueryDict (``getlist``)."""

        def __init__(self, pairs: list[tuple[str, str]]) -> None:
            super().__init__(pairs)
            self.pairs = pairs

        def getlist(self, name: str) -> list[str]:
            return [value for key, value in self.pairs if key == name]

    pairs = [("Tag", "zeta"), ("Body", "Olá 👋 São Paulo & Zürich"), ("Tag", "alpha"), ("Tag", "mid")]
    expected = RequestValidator(TOKEN).compute_signature(PLAIN_URL, MultiValueForm(pairs))
    assert sign(TOKEN, PLAIN_URL, pairs) == expected
    assert sign(TOKEN, PLAIN_URL, list(reversed(pairs))) == expected


def test_sign_keeps_the_port_exactly_as_given() -> None:
    """A URL with an explicit port is signed with that port, which the bot's validator accepts."""
    params = {"Body": "hi", "From": "whatsapp:+15551234567"}
    with_port = sign(TOKEN, "https://bot.example.test:8443/hook", params)
    assert with_port != sign(TOKEN, "https://bot.example.test/hook", params)
    validator = RequestValidator(TOKEN)
    assert validator.validate("https://bot.example.test:8443/hook", params, with_port)
    assert not validator.validate("https://bot.example.test:9443/hook", params, with_port)


@pytest.mark.parametrize("public_url", [PLAIN_URL, PORT_QUERY_URL, LOCAL_URL])
def test_generated_signatures_validate_exactly_when_meant_to(public_url: str) -> None:
    """Of 1,000 mixed messages, the twilio validator accepts every valid one and refuses every invalid
    one, both on the fields and on the form body decoded as the bot would."""
    validator = RequestValidator(TOKEN)
    messages = generate(make_generator(public_url, invalid=0.2, duplicate=0.1), 1000)
    for message in messages:
        decoded = dict(parse_qsl(message.urlencoded(), keep_blank_values=True, strict_parsing=True))
        assert decoded == message.form()
        assert validator.validate(public_url, message.form(), message.signature) is message.signature_valid
        assert validator.validate(public_url, decoded, message.signature) is message.signature_valid
        headers = message.headers()
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert (SIGNATURE_HEADER in headers) is (message.signature_fault is not SignatureFault.MISSING)
        assert message.signature_valid is (message.signature_fault is None)
    faults = Counter(message.signature_fault for message in messages if not message.signature_valid)
    assert set(faults) == set(SignatureFault), "every kind of bad signature is exercised"
    assert sum(message.signature_valid for message in messages) > 600


def test_mangled_signature_differs_in_decoded_bytes_too() -> None:
    """A mangled signature still fails a bot that base64-decodes before comparing digests."""
    generator = make_generator(invalid=1.0, duplicate=0.0)
    mangled = [m for m in generate(generator, 300) if m.signature_fault is SignatureFault.MANGLED]
    assert mangled
    for message in mangled:
        correct = sign(TOKEN, PLAIN_URL, message.params)
        assert len(message.signature) == len(correct)
        assert base64.b64decode(message.signature) != base64.b64decode(correct)


# ------------------------------------------------------------------------------------------ SIDs, retries


def test_sids_are_unique_and_duplicates_repeat_the_original_exactly() -> None:
    """MessageSids are unique and well formed, except retries, which resend the original unchanged
    with a valid signature and the same idempotency token."""
    validator = RequestValidator(TOKEN)
    messages = generate(make_generator(invalid=0.2, duplicate=0.1), 1000)
    originals: dict[str, WebhookMessage] = {}
    retries = 0
    for message in messages:
        form = message.form()
        assert MESSAGE_SID.fullmatch(message.message_sid)
        assert form["MessageSid"] == form["SmsMessageSid"] == form["SmsSid"] == message.message_sid
        if message.duplicate:
            retries += 1
            original = originals[message.message_sid]
            assert message.params == original.params
            assert message.kind == original.kind
            assert message.idempotency_token == original.idempotency_token
            assert message.signature_valid and message.signature_case == "replayed"
            assert validator.validate(PLAIN_URL, form, message.signature)
        else:
            assert message.message_sid not in originals
            originals[message.message_sid] = message
    assert 50 <= retries <= 160
    tokens = [m.idempotency_token for m in originals.values()]
    assert len(set(tokens)) == len(tokens)
    media_sids = [
        MEDIA_URL.fullmatch(value).group(2)  # type: ignore[union-attr]
        for message in originals.values()
        for name, value in message.params
        if name.startswith("MediaUrl")
    ]
    assert media_sids and len(set(media_sids)) == len(media_sids)


def test_sids_differ_between_identically_seeded_generators() -> None:
    """Two workers seeded alike still never reuse each other's MessageSids (SIDs come from os.urandom)."""
    first = generate(make_generator(seed=1, first_sender_index=0), 200)
    second = generate(make_generator(seed=1, first_sender_index=0), 200)
    assert [(m.kind, m.form()["Body"]) for m in first] == [(m.kind, m.form()["Body"]) for m in second]
    assert not {m.message_sid for m in first} & {m.message_sid for m in second}


# ------------------------------------------------------------------------------------------ senders


def test_senders_are_stable_per_index_and_distinct_across_users() -> None:
    """An index always maps to the same user (in any generator); different users get different numbers."""
    one, other = make_generator(seed=1), make_generator(seed=2)
    assert one.new_sender(42) == other.new_sender(42) == one.new_sender(42)
    assert one.new_sender(MAX_SENDERS - 1) != one.new_sender(0)
    senders = [one.new_sender() for _ in range(3000)] + [one.new_sender(i) for i in range(3000)]
    for sender in senders:
        assert E164.fullmatch(sender.number), sender
        assert sender.wa_id == sender.number[1:]
        assert sender.whatsapp == "whatsapp:" + sender.number
        assert sender.profile_name.strip()
    assert len({s.number for s in senders[3000:]}) == 3000
    assert len({s.number for s in senders[:3000]}) == 3000
    assert len({s.profile_name for s in senders}) > 200, "realistic, varied names"


def test_messages_carry_their_senders_identity() -> None:
    """From, WaId and ProfileName are the sender's on every message, and To is the bot."""
    generator = make_generator(bot_number="whatsapp:" + BOT_NUMBER)
    sender = generator.new_sender(7)
    for _ in range(50):
        form = generator.next_message(sender).form()
        assert form["From"] == sender.whatsapp
        assert form["WaId"] == sender.wa_id
        assert form["ProfileName"] == sender.profile_name
        assert form["To"] == "whatsapp:" + BOT_NUMBER


# ------------------------------------------------------------------------------------------ mix and fields


def test_mix_proportions_and_rates_are_respected() -> None:
    """Over 10,000 messages the kinds follow the mix, zero-weight kinds never appear, and invalid and
    duplicate shares are close to their rates."""
    mix = {"text": 50, "document": 15, "image": 10, "location": 5, "button": 20, "command": 0}
    messages = generate(make_generator(mix=mix, invalid=0.2, duplicate=0.1), 10_000, users=50)
    new = [m for m in messages if not m.duplicate]
    kinds = Counter(m.kind for m in new)
    assert "command" not in kinds
    for kind, weight in mix.items():
        assert abs(kinds[kind] / len(new) - weight / 100) < 0.025, (kind, kinds)
    assert abs(sum(m.duplicate for m in messages) / len(messages) - 0.1) < 0.02
    assert abs(sum(not m.signature_valid for m in messages) / len(messages) - 0.2) < 0.02


def test_field_set_per_kind() -> None:
    """Each kind carries Twilio's real field set: media fields and MM SIDs with documents and images,
    coordinates with locations, button text and payload with buttons, commands as text."""
    generator = make_generator(messaging_service_sid=SERVICE_SID, invalid=0.0, duplicate=0.0)
    seen: set[str] = set()
    for message in generate(generator, 600):
        form = message.form()
        names = [name for name, _ in message.params]
        assert len(names) == len(set(names))
        assert COMMON_FIELDS | {"MessagingServiceSid"} <= set(form)
        assert form["AccountSid"] == ACCOUNT_SID and form["MessagingServiceSid"] == SERVICE_SID
        assert form["SmsStatus"] == "received" and form["ApiVersion"] == "2010-04-01"
        assert form["NumSegments"] == "1" and form["ReferralNumMedia"] == "0"
        num_media = int(form["NumMedia"])
        assert sorted(n for n in names if n.startswith("MediaUrl")) == [
            f"MediaUrl{i}" for i in range(num_media)
        ]
        assert sorted(n for n in names if n.startswith("MediaContentType")) == [
            f"MediaContentType{i}" for i in range(num_media)
        ]
        for i in range(num_media):
            media = MEDIA_URL.fullmatch(form[f"MediaUrl{i}"])
            assert media and media.group(1) == message.message_sid
        assert message.message_sid.startswith("MM" if num_media else "SM")
        kind = message.kind
        seen.add(kind)
        assert form["MessageType"] == ("text" if kind == "command" else kind)
        if kind == "document":
            assert num_media == 1 and form["MediaContentType0"] == "application/pdf"
        elif kind == "image":
            assert num_media == 1 and form["MediaContentType0"].startswith("image/")
        else:
            assert num_media == 0
        if kind == "location":
            assert -90 <= float(form["Latitude"]) <= 90 and -180 <= float(form["Longitude"]) <= 180
            assert ("Address" in form) is ("Label" in form)
        else:
            assert "Latitude" not in form and "Longitude" not in form
        if kind == "button":
            assert form["ButtonText"] == form["Body"] and form["ButtonPayload"]
            assert form["OriginalRepliedMessageSender"] == "whatsapp:" + BOT_NUMBER
        else:
            assert "ButtonText" not in form and "ButtonPayload" not in form
        if kind == "command":
            assert form["Body"].lower().lstrip("/") in {"help", "status", "start", "stop", "menu"}
    assert seen == set(MESSAGE_KINDS)
    assert "MessagingServiceSid" not in generate(make_generator(), 1)[0].form()


def test_text_bodies_are_varied_job_offers() -> None:
    """Text messages are many different job offers, short and long, with non-ASCII and form-special
    characters, so signing and form encoding are exercised on real-looking content."""
    messages = generate(make_generator(mix={"text": 1}, invalid=0.0, duplicate=0.0), 1500)
    bodies = [m.form()["Body"] for m in messages]
    assert len(set(bodies)) > 500
    assert any(len(body) < 40 for body in bodies) and any(len(body) > 1000 for body in bodies)
    assert max(len(body) for body in bodies) <= 4096
    assert sum(not body.isascii() for body in bodies) > 150
    assert any(ord(char) > 0xFFFF for body in bodies for char in body), "emoji outside the BMP"
    assert any("&" in body for body in bodies) and any("+" in body for body in bodies)
    lowered = " ".join(bodies).lower()
    assert "registration fee" in lowered and "interview" in lowered


# ------------------------------------------------------------------------------------------ judging


XML = "text/xml; charset=utf-8"
E12300 = "Twilio error 12300 (Invalid Content-Type): answered "


@pytest.mark.parametrize(
    ("status", "valid", "body", "content_type", "expected"),
    [
        (200, True, "<?xml version='1.0'?><Response></Response>", XML, Judgement(Outcome.SUCCESS)),
        (200, True, "<Response/>", "application/xml", Judgement(Outcome.SUCCESS)),
        (
            200,
            True,
            "",
            "text/plain",
            Judgement(Outcome.SUCCESS, conformance=E12300 + "text/plain, empty body"),
        ),
        (
            204,
            True,
            None,
            None,
            Judgement(Outcome.SUCCESS, conformance=E12300 + "no Content-Type, empty body"),
        ),
        (
            200,
            True,
            '{"ok": true}',
            "application/json",
            Judgement(Outcome.SUCCESS, conformance=E12300 + "application/json"),
        ),
        (
            200,
            True,
            "<html/>",
            XML,
            Judgement(
                Outcome.SUCCESS,
                conformance="Twilio error 12100 (Document parse failure): XML without a <Response>",
            ),
        ),
        (
            200,
            False,
            "<Response/>",
            XML,
            Judgement(Outcome.FAILURE, "accepted an invalid signature (HTTP 200)"),
        ),
        (403, False, "Forbidden", None, Judgement(Outcome.REJECTED, "invalid signature refused (HTTP 403)")),
        (401, False, None, None, Judgement(Outcome.REJECTED, "invalid signature refused (HTTP 401)")),
        (403, True, "Forbidden", None, Judgement(Outcome.FAILURE, "valid signature refused (HTTP 403)")),
        (429, True, None, None, Judgement(Outcome.BACKPRESSURE, "HTTP 429")),
        (503, False, None, None, Judgement(Outcome.BACKPRESSURE, "HTTP 503")),
        (500, True, "boom", None, Judgement(Outcome.FAILURE, "HTTP 500")),
        (400, False, None, None, Judgement(Outcome.FAILURE, "HTTP 400")),
        (404, True, None, None, Judgement(Outcome.FAILURE, "HTTP 404")),
        (0, True, None, None, Judgement(Outcome.FAILURE, "no response")),
    ],
)
def test_classify_table(
    status: int, valid: bool, body: str | None, content_type: str | None, expected: Judgement
) -> None:
    """Any 2xx to a valid message is delivered (a body Twilio cannot parse is a conformance finding,
    never a failure); 401 and 403 refuse by default; 429/503 are backpressure; the rest fail."""
    assert classify(status, valid, body, content_type=content_type) == expected


def test_rejection_statuses_are_configurable_and_failures_keep_the_bot_s_words() -> None:
    """Only the configured statuses count as refusing; a failure's reason carries the bot's words."""
    assert classify(401, False, rejection_statuses=(403,)).outcome is Outcome.FAILURE
    assert classify(409, False, rejection_statuses=(409,)).outcome is Outcome.REJECTED
    words = classify(400, True, "x", excerpt="Unsupported media type: image/webp")
    assert words == Judgement(Outcome.FAILURE, 'HTTP 400: "Unsupported media type: image/webp"')


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('db;dur=1.2;desc="x", app;dur=0.3', {"db": 1.2, "app": 0.3}),
        (None, {}),
        ("", {}),
        ('cache;desc="hit"', {}),
        ("db;dur=2, db;dur=3", {"db": 5.0}),
        ('total;dur="12.5"', {"total": 12.5}),
        ('redis;desc="a, b; c";dur=4', {"redis": 4.0}),
        (" DB ; DUR = 7 ", {"DB": 7.0}),
        ("x;dur=1;dur=2", {"x": 1.0}),
        ("queue;dur=1e3", {"queue": 1000.0}),
        ("miss;dur", {}),
        ("x;dur=abc, y;dur=-1, z;dur=nan, w;dur=1_0", {}),
        (';;;,,,=, "quoted";dur=1, bad name;dur=2', {}),
        ('ok;dur=1, broken;desc="unterminated, later;dur=3', {"ok": 1.0}),
    ],
)
def test_parse_server_timing(header: str | None, expected: dict[str, float]) -> None:
    """Server-Timing durations are read per metric; junk is skipped without raising."""
    assert parse_server_timing(header) == pytest.approx(expected)


# ------------------------------------------------------------------------------------------ arguments


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"mix": {"video": 1}}, "mix.video"),
        ({"mix": {"text": -1}}, "mix.text"),
        ({"mix": {"text": float("nan")}}, "mix.text"),
        ({"mix": {"text": "5"}}, "mix.text"),
        ({"mix": {"text": 0, "image": 0}}, "mix"),
        ({"mix": {}}, "mix"),
        ({"mix": [("text", 1)]}, "mix"),
        ({"invalid": 1.5}, "invalid_signature_rate"),
        ({"duplicate": -0.1}, "duplicate_rate"),
        ({"duplicate": True}, "duplicate_rate"),
        ({"invalid": 0.7, "duplicate": 0.5}, "invalid_signature_rate + duplicate_rate"),
        ({"account_sid": "AC123"}, "account_sid"),
        ({"account_sid": "SK" + "a" * 32}, "account_sid"),
        ({"bot_number": "14155238886"}, "bot_number"),
        ({"public_url": "ftp://bot.example.test/hook"}, "public_url"),
        ({"public_url": "/webhook"}, "public_url"),
        ({"public_url": "http://bot.example.test:99999/hook"}, "public_url"),
        ({"auth_token": ""}, "auth_token"),
        ({"messaging_service_sid": "MGxyz"}, "messaging_service_sid"),
        ({"first_sender_index": -1}, "first_sender_index"),
    ],
)
def test_bad_arguments_raise_config_error_naming_them(overrides: dict[str, Any], named: str) -> None:
    """Each bad argument fails at construction with a ConfigError that names it."""
    with pytest.raises(ConfigError) as caught:
        make_generator(**overrides)
    assert str(caught.value).startswith(named + ":")
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("index", [-1, MAX_SENDERS, True])
def test_bad_sender_index_raises_config_error(index: int) -> None:
    """A sender index outside [0, MAX_SENDERS) is refused, naming the index."""
    with pytest.raises(ConfigError, match=r"^index:"):
        make_generator().new_sender(index)


def test_auth_token_never_shows_in_reprs() -> None:
    """Neither the generator nor its messages reveal the auth token."""
    generator = make_generator()
    message = generator.next_message(generator.new_sender())
    assert TOKEN not in repr(generator)
    assert TOKEN not in repr(message)
    assert message.headers()[IDEMPOTENCY_HEADER] == message.idempotency_token


def test_forget_stops_retries_of_a_gone_user() -> None:
    """After forget(), a sender's next message is new even at a 100% duplicate rate."""
    generator = make_generator(invalid=0.0, duplicate=1.0)
    sender = generator.new_sender()
    first = generator.next_message(sender)
    assert generator.next_message(sender).duplicate
    generator.forget(sender)
    fresh = generator.next_message(sender)
    assert not fresh.duplicate and fresh.message_sid != first.message_sid
    assert isinstance(sender, Sender)
