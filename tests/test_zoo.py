"""The zoo bots behave as named: real processes, real HTTP, requests signed by ``perfsuite.twilio``.

The verdict tests judge perfsuite against these bots, so each bot's one behaviour is proven here
first, and the signing they validate with is cross-checked with the ``twilio`` package.
"""

from __future__ import annotations

import http.client
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from twilio.request_validator import RequestValidator

from perfsuite.embedded import free_port
from perfsuite.errors import ConfigError
from perfsuite.twilio import MESSAGE_KINDS, SignatureFault, TrafficGenerator, WebhookMessage, sign
from tests.zoo import BOT_NAMES, QUEUE_KEY, TWIML_ACK, ZooBot, start_bot
from tests.zoo.fixtures import ZOO_TOKEN, Zoo

REPO_ROOT = Path(__file__).resolve().parents[1]
ACCOUNT_SID = "AC" + "0" * 32
BOT_NUMBER = "+14155238886"
REFUSAL = {"rejects_401": 401, "own_scheme": 401}
"""Refusal status per bot; 403 for the others."""
VALIDATING = (
    "twiml",
    "async_acker",
    "no_content_acker",
    "json_acker",
    "rejects_401",
    "no_health",
    "refuses_media",
    "replay_cache",
    "leaky_errors",
)
"""Bots that validate Twilio's signature (on a MessageSid's first request, for replay_cache)."""


@dataclass(frozen=True)
class Answer:
    """One HTTP response, read fully."""

    status: int
    body: bytes
    content_type: str | None
    elapsed_ms: float


def generator(
    public_url: str, invalid_rate: float = 0.0, mix: dict[str, float] | None = None
) -> TrafficGenerator:
    """A seeded traffic generator signing for ``public_url`` with the zoo's token (text unless ``mix``)."""
    return TrafficGenerator(
        ACCOUNT_SID,
        BOT_NUMBER,
        public_url,
        ZOO_TOKEN,
        mix or {"text": 1.0},
        invalid_rate,
        0.0,
        random.Random(7),
    )


def valid_message(bot: ZooBot, kind: str = "text") -> WebhookMessage:
    """A new validly signed message of ``kind`` for ``bot``."""
    gen = generator(bot.public_url, mix={kind: 1.0})
    return gen.next_message(gen.new_sender())


def bad_messages(bot: ZooBot) -> dict[SignatureFault, WebhookMessage]:
    """One message per :class:`SignatureFault`, each signed wrongly for ``bot`` in that way."""
    gen = generator(bot.public_url, invalid_rate=1.0)
    found: dict[SignatureFault, WebhookMessage] = {}
    for _ in range(200):  # bounded: each draw picks one of 5 faults at random
        message = gen.next_message(gen.new_sender())
        assert message.signature_fault is not None
        found.setdefault(message.signature_fault, message)
        if len(found) == len(SignatureFault):
            return found
    raise AssertionError(f"generator gave only {sorted(found)}")


def with_params(message: WebhookMessage, url: str, token: str = ZOO_TOKEN, **changes: str) -> WebhookMessage:
    """``message`` with some fields changed and signed again (validly) for ``url``."""
    params = tuple((name, changes.get(name, value)) for name, value in message.params)
    return replace(message, params=params, signature=sign(token, url, params))


def send(
    bot: ZooBot, message: WebhookMessage, connection: http.client.HTTPConnection | None = None
) -> Answer:
    """POST ``message`` to the bot's webhook (on ``connection`` when given, else a new one)."""
    target = urlsplit(bot.webhook_url)
    conn = connection or http.client.HTTPConnection(target.hostname or "", target.port, timeout=5)
    started = time.perf_counter()
    try:
        conn.request("POST", target.path, body=message.urlencoded().encode(), headers=message.headers())
        response = conn.getresponse()
        body = response.read()
        return Answer(
            response.status, body, response.getheader("Content-Type"), (time.perf_counter() - started) * 1e3
        )
    finally:
        if connection is None:
            conn.close()


def get(bot: ZooBot, path: str) -> Answer:
    """GET ``path`` from the bot."""
    conn = http.client.HTTPConnection("127.0.0.1", int(bot.extra["port"]), timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return Answer(response.status, response.read(), response.getheader("Content-Type"), 0.0)
    finally:
        conn.close()


def test_the_registry_lists_every_bot_with_its_behaviour() -> None:
    """The zoo has exactly the bots the verdict tests rely on, each with a one-line behaviour."""
    from tests.zoo.bots import BOTS

    others = {"own_scheme", "accepts_all", "slow_queue", "sheds_load", "stalls"}
    assert set(BOT_NAMES) == set(VALIDATING) | others
    assert all(BOTS[name].behaviour for name in BOT_NAMES)


def test_bots_validate_signatures_made_by_twilios_own_request_validator(zoo: Zoo) -> None:
    """A signature computed by the ``twilio`` package is accepted (the shared signing is Twilio's)."""
    bot = zoo.bot("twiml")
    message = valid_message(bot)
    twilio_signature = RequestValidator(ZOO_TOKEN).compute_signature(bot.public_url, message.form())
    assert twilio_signature == message.signature
    assert send(bot, replace(message, signature=twilio_signature)).status == 200


@pytest.mark.parametrize(
    ("name", "status", "body", "content_type"),
    [
        ("twiml", 200, TWIML_ACK, "text/xml; charset=utf-8"),
        ("async_acker", 200, b"", "text/plain; charset=utf-8"),
        ("no_content_acker", 204, b"", None),
        ("json_acker", 200, b'{"status": "queued"}', "application/json"),
        ("rejects_401", 200, TWIML_ACK, "text/xml; charset=utf-8"),
        ("no_health", 200, TWIML_ACK, "text/xml; charset=utf-8"),
        ("refuses_media", 200, TWIML_ACK, "text/xml; charset=utf-8"),
        ("replay_cache", 200, TWIML_ACK, "text/xml; charset=utf-8"),
        ("accepts_all", 200, TWIML_ACK, "text/xml; charset=utf-8"),
        ("leaky_errors", 200, TWIML_ACK, "text/xml; charset=utf-8"),
        ("sheds_load", 503, b"Busy: retry later", "text/plain; charset=utf-8"),
    ],
)
def test_each_bot_acks_a_valid_message_its_own_way(
    zoo: Zoo, name: str, status: int, body: bytes, content_type: str | None
) -> None:
    """A validly signed text message gets the bot's own kind of ack (TwiML, empty 200, 204, JSON)."""
    bot = zoo.bot(name)
    answer = send(bot, valid_message(bot))
    assert (answer.status, answer.body, answer.content_type) == (status, body, content_type)


@pytest.mark.parametrize("name", VALIDATING)
def test_validating_bots_refuse_every_kind_of_bad_signature(zoo: Zoo, name: str) -> None:
    """Wrong token, mangled, missing, wrong URL and tampered body are all refused with the bot's status."""
    bot = zoo.bot(name)
    expected = REFUSAL.get(name, 403)
    statuses = {fault: send(bot, message).status for fault, message in bad_messages(bot).items()}
    assert statuses == dict.fromkeys(SignatureFault, expected)


def test_every_message_kind_validates_including_blank_fields(zoo: Zoo) -> None:
    """Text, document, image, location (blank Body), button and command messages are all accepted."""
    bot = zoo.bot("twiml")
    gen = generator(bot.public_url, mix=dict.fromkeys(MESSAGE_KINDS, 1.0))
    kinds: dict[str, int] = {}
    for _ in range(60):
        message = gen.next_message(gen.new_sender())
        kinds[message.kind] = send(bot, message).status
    assert kinds == dict.fromkeys(MESSAGE_KINDS, 200)


def test_own_scheme_refuses_genuine_twilio_requests_but_accepts_its_own_signature(zoo: Zoo) -> None:
    """own_scheme answers 401 to a correctly Twilio-signed request, 200 to hex HMAC-SHA256 of the body."""
    import hashlib
    import hmac

    bot = zoo.bot("own_scheme")
    message = valid_message(bot)
    assert send(bot, message).status == 401
    own = hmac.new(ZOO_TOKEN.encode(), message.urlencoded().encode(), hashlib.sha256).hexdigest()
    assert send(bot, replace(message, signature=own)).status == 200


def test_replay_cache_accepts_a_known_message_sid_with_a_broken_signature(zoo: Zoo) -> None:
    """Once a MessageSid was accepted, the same message with a broken signature gets through;
    a never-seen MessageSid with the same broken signature is still refused."""
    bot = zoo.bot("replay_cache")
    message = valid_message(bot)
    broken = replace(message, signature="A" + message.signature[1:] if message.signature[0] != "A" else "B")
    assert send(bot, broken).status == 403
    assert send(bot, message).status == 200
    assert send(bot, broken).status == 200
    assert send(bot, replace(broken, signature="")).status == 200


def test_accepts_all_accepts_every_bad_signature(zoo: Zoo) -> None:
    """accepts_all acks wrong, missing and misdirected signatures alike."""
    bot = zoo.bot("accepts_all")
    assert {send(bot, message).status for message in bad_messages(bot).values()} == {200}


def test_refuses_media_names_the_unsupported_type_in_its_400(zoo: Zoo) -> None:
    """A valid image/webp message gets 400 ``Unsupported media type: image/webp``; image/jpeg is acked."""
    bot = zoo.bot("refuses_media")
    image = valid_message(bot, "image")
    webp = send(bot, with_params(image, bot.public_url, MediaContentType0="image/webp"))
    assert (webp.status, webp.body) == (400, b"Unsupported media type: image/webp")
    assert send(bot, with_params(image, bot.public_url, MediaContentType0="image/jpeg")).status == 200


def test_sheds_load_answers_503_with_retry_after(zoo: Zoo) -> None:
    """sheds_load asks every sender, valid or not, to come back later."""
    bot = zoo.bot("sheds_load")
    target = urlsplit(bot.webhook_url)
    conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=5)
    try:
        for message in (valid_message(bot), bad_messages(bot)[SignatureFault.MISSING]):
            conn.request("POST", target.path, body=message.urlencoded().encode(), headers=message.headers())
            response = conn.getresponse()
            response.read()
            assert (response.status, response.getheader("Retry-After")) == (503, "1")
    finally:
        conn.close()


def test_stalls_outlasts_a_client_timeout(zoo: Zoo) -> None:
    """stalls (here 5 s) does not answer within a 0.2 s client timeout; it still answers /health."""
    bot = zoo.bot("stalls", extra_args=("--stall-s", "5"))
    target = urlsplit(bot.webhook_url)
    conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=0.2)
    try:
        with pytest.raises(TimeoutError):
            send(bot, valid_message(bot), conn)
    finally:
        conn.close()
    assert get(bot, "/health").status == 200


def test_leaky_errors_echoes_the_token_in_its_refusals(zoo: Zoo) -> None:
    """leaky_errors' 403 body holds the expected signature and the auth token (to test redaction)."""
    bot = zoo.bot("leaky_errors")
    message = bad_messages(bot)[SignatureFault.WRONG_TOKEN]
    answer = send(bot, message)
    assert answer.status == 403
    assert ZOO_TOKEN.encode() in answer.body
    assert sign(ZOO_TOKEN, bot.public_url, message.params).encode() in answer.body


def test_no_health_has_no_health_endpoint_while_the_others_do(zoo: Zoo) -> None:
    """no_health answers /health with 404; twiml answers it with JSON."""
    assert get(zoo.bot("no_health"), "/health").status == 404
    health = get(zoo.bot("twiml"), "/health")
    assert health.status == 200 and json.loads(health.body)["status"] == "ok"


def test_a_bot_with_another_token_refuses_valid_requests(zoo: Zoo) -> None:
    """Token mismatch: the twiml bot started with another token refuses what the suite signs."""
    bot = zoo.bot("twiml", token="the-bots-own-token")
    assert send(bot, valid_message(bot)).status == 403


def test_a_bot_validates_against_its_public_url_not_its_address(zoo: Zoo) -> None:
    """With --public-url the bot accepts signatures for that URL and refuses ones for its own address."""
    public = "https://bot.example.com/webhook/whatsapp"
    bot = zoo.bot("twiml", public_url=public)
    message = valid_message(bot)
    assert send(bot, message).status == 200
    assert send(bot, with_params(message, bot.webhook_url)).status == 403


@pytest.fixture()
def slow_queue(redis_url: str) -> Iterator[ZooBot]:
    """slow_queue on the test's private Redis, draining 20 messages per second."""
    bot = start_bot("slow_queue", ZOO_TOKEN, redis_url=redis_url, extra_args=("--drain-per-s", "20"))
    yield bot
    bot.stop()


def test_slow_queue_acks_at_once_queues_in_redis_and_hides_the_queue(
    slow_queue: ZooBot, redis_url: str
) -> None:
    """Ten valid messages are acked with TwiML and pushed onto zoo:queue, which the worker drains;
    /health says nothing of the queue; a bad signature is refused and not queued."""
    client = redis.Redis.from_url(redis_url)
    try:
        assert send(slow_queue, bad_messages(slow_queue)[SignatureFault.MISSING]).status == 403
        answers = [send(slow_queue, valid_message(slow_queue)) for _ in range(10)]
        assert {(a.status, a.body) for a in answers} == {(200, TWIML_ACK)}
        assert client.llen(QUEUE_KEY) >= 5  # at 20/s, at most a few are gone already
        assert json.loads(get(slow_queue, "/health").body) == {"status": "ok", "bot": "slow_queue"}
        deadline = time.monotonic() + 5
        while client.llen(QUEUE_KEY) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.llen(QUEUE_KEY) == 0
    finally:
        client.close()


def test_keep_alive_connection_serves_many_answers_without_delayed_ack_stall(zoo: Zoo) -> None:
    """Loose guard: on one keep-alive connection, refusals and acks alternate cleanly and the median
    answer is far under the ~40 ms a two-send response would cost (one write, TCP_NODELAY)."""
    bot = zoo.bot("twiml")
    target = urlsplit(bot.webhook_url)
    conn = http.client.HTTPConnection(target.hostname or "", target.port, timeout=5)
    missing = bad_messages(bot)[SignatureFault.MISSING]
    try:
        answers = [send(bot, valid_message(bot) if n % 4 else missing, conn) for n in range(24)]
    finally:
        conn.close()
    assert [a.status for a in answers] == [200 if n % 4 else 403 for n in range(24)]
    median_ms = statistics.median(a.elapsed_ms for a in answers[1:])
    assert median_ms < 20, f"median {median_ms:.1f} ms on keep-alive (delayed-ACK stall?)"


def test_start_bot_refuses_unknown_bots_and_missing_redis() -> None:
    """start_bot names the problem: an unknown bot, or slow_queue without a Redis URL."""
    with pytest.raises(ConfigError, match="unknown"):
        start_bot("no_such_bot", ZOO_TOKEN)
    with pytest.raises(ConfigError, match="redis_url"):
        start_bot("slow_queue", ZOO_TOKEN)


def test_zoo_command_needs_the_token_in_the_environment() -> None:
    """``python -m tests.zoo twiml`` without TWILIO_AUTH_TOKEN exits 64 with a message naming it."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.zoo", "twiml", "--port", str(free_port())],
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT)},
        cwd=REPO_ROOT,
        timeout=20,
        check=False,
    )
    assert done.returncode == 64 and b"TWILIO_AUTH_TOKEN" in done.stderr
