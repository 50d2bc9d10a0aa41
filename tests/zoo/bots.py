"""The zoo's bots: small third-party-style WhatsApp webhook bots, each with ONE behaviour.

They stand in for the real bots perfsuite meets (async ackers, bots refusing with 401, bots with
their own signature scheme, a replay cache, a hidden Redis queue...) so the suite's verdicts are
tested against how real bots answer, not only against the demo bot. Unless its behaviour says
otherwise, a bot validates X-Twilio-Signature exactly as Twilio specifies, with the suite's own
:func:`perfsuite.twilio.sign`, against its public URL.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, ClassVar

from perfsuite.twilio import sign
from tests.zoo.server import Bot, BotSettings, Reply, Request, json_reply

if TYPE_CHECKING:
    import redis

BOTS: dict[str, type[Bot]] = {}
"""Bot name -> class; filled by :func:`register`."""

TWIML_ACK = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
QUEUE_KEY = "zoo:queue"
"""The Redis list ``slow_queue`` pushes every accepted message onto."""


def register(cls: type[Bot]) -> type[Bot]:
    """Class decorator: make ``cls`` runnable as ``python -m tests.zoo <cls.name>``."""
    if cls.name in BOTS:
        raise ValueError(f"zoo bot {cls.name!r} registered twice")
    BOTS[cls.name] = cls
    return cls


def twilio_signed(settings: BotSettings, request: Request) -> bool:
    """Whether the request carries the signature Twilio would send for it (constant-time compare)."""
    signature = request.signature
    if not signature:
        return False
    expected = sign(settings.auth_token, settings.public_url, request.params)
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("ascii", "replace"))


@register
class Twiml(Bot):
    """The reference behaviour; the other validating bots change one thing of it."""

    name = "twiml"
    behaviour = "valid -> 200 TwiML <Response></Response> (text/xml); bad signature -> 403"
    refusal_status: ClassVar[int] = 403

    def webhook(self, request: Request) -> Reply:
        if not twilio_signed(self.settings, request):
            return Reply(self.refusal_status, b"Invalid Twilio signature")
        return self.accept(request)

    def accept(self, request: Request) -> Reply:
        """The answer to a validly signed message."""
        return Reply(200, TWIML_ACK, "text/xml; charset=utf-8")


@register
class AsyncAcker(Twiml):
    name = "async_acker"
    behaviour = "valid -> 200 with an EMPTY text/plain body (replies later via the REST API); bad -> 403"

    def accept(self, request: Request) -> Reply:
        return Reply(200, b"", "text/plain; charset=utf-8")


@register
class NoContentAcker(Twiml):
    name = "no_content_acker"
    behaviour = "valid -> 204 No Content; bad -> 403"

    def accept(self, request: Request) -> Reply:
        return Reply(204, b"", None)


@register
class JsonAcker(Twiml):
    name = "json_acker"
    behaviour = 'valid -> 200 {"status":"queued"} (application/json); bad -> 403'

    def accept(self, request: Request) -> Reply:
        return json_reply(200, {"status": "queued"})


@register
class Rejects401(Twiml):
    name = "rejects_401"
    behaviour = "valid -> 200 TwiML; bad signature -> 401 (not 403)"
    refusal_status = 401


@register
class NoHealth(Twiml):
    name = "no_health"
    behaviour = "the twiml bot without any /health endpoint (404)"
    has_health = False


@register
class RefusesMedia(Twiml):
    name = "refuses_media"
    behaviour = (
        "valid text -> 200 TwiML; valid message with image/webp media -> 400 naming the type; bad -> 403"
    )
    unsupported: ClassVar[frozenset[str]] = frozenset({"image/webp"})

    def accept(self, request: Request) -> Reply:
        for name, value in request.params:
            if name.startswith("MediaContentType") and value in self.unsupported:
                return Reply(400, f"Unsupported media type: {value}".encode())
        return super().accept(request)


@register
class AcceptsAll(Twiml):
    name = "accepts_all"
    behaviour = "no validation at all: every request -> 200 TwiML, whatever its signature"

    def webhook(self, request: Request) -> Reply:
        return self.accept(request)


@register
class OwnScheme(Twiml):
    """Reads X-Twilio-Signature as hex(HMAC-SHA256(token, raw body)): genuine Twilio requests fail."""

    name = "own_scheme"
    behaviour = (
        "validates its own scheme (hex HMAC-SHA256 of the raw body): every Twilio-signed request -> 401"
    )

    def webhook(self, request: Request) -> Reply:
        expected = hmac.new(self.settings.auth_token.encode(), request.body, hashlib.sha256).hexdigest()
        given = (request.signature or "").strip().encode("ascii", "replace")
        if not hmac.compare_digest(expected.encode("ascii"), given):
            return Reply(401, b"Unauthorized")
        return self.accept(request)


@register
class ReplayCache(Twiml):
    """Remembers the MessageSids it accepted and skips validation when one comes again."""

    name = "replay_cache"
    behaviour = "validates a MessageSid once; later requests with that MessageSid are accepted unchecked"
    max_remembered: ClassVar[int] = 100_000

    def __init__(self, settings: BotSettings) -> None:
        super().__init__(settings)
        self._accepted: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def webhook(self, request: Request) -> Reply:
        sid = dict(request.params).get("MessageSid", "")
        with self._lock:
            known = sid in self._accepted
        if known:
            return self.accept(request)
        reply = super().webhook(request)
        if reply.status == 200 and sid:
            with self._lock:
                self._accepted[sid] = None
                while len(self._accepted) > self.max_remembered:
                    self._accepted.popitem(last=False)
        return reply


@register
class ShedsLoad(Twiml):
    name = "sheds_load"
    behaviour = "every webhook -> 503 with Retry-After: 1 (backpressure), whatever its signature"

    def webhook(self, request: Request) -> Reply:
        return Reply(503, b"Busy: retry later", headers=(("Retry-After", "1"),))


@register
class Stalls(Twiml):
    name = "stalls"
    behaviour = "waits --stall-s seconds (default 20, past Twilio's 15 s) before answering like twiml"

    def __init__(self, settings: BotSettings) -> None:
        super().__init__(settings)
        self._stopping = threading.Event()

    def webhook(self, request: Request) -> Reply:
        self._stopping.wait(self.settings.stall_s)
        return super().webhook(request)

    def stop(self) -> None:
        self._stopping.set()


@register
class LeakyErrors(Twiml):
    """Refusals that leak what they should not: the expected signature and the auth token itself."""

    name = "leaky_errors"
    behaviour = "valid -> 200 TwiML; bad -> 403 whose body echoes the expected signature and the auth token"

    def webhook(self, request: Request) -> Reply:
        if twilio_signed(self.settings, request):
            return self.accept(request)
        expected = sign(self.settings.auth_token, self.settings.public_url, request.params)
        leak = f"Invalid signature. Expected {expected} (computed with auth token {self.settings.auth_token})"
        return Reply(403, leak.encode())


@register
class SlowQueue(Twiml):
    """Acks at once and queues in Redis; its worker drains the list slowly. /health hides the queue."""

    name = "slow_queue"
    behaviour = (
        f"valid -> LPUSH to Redis list {QUEUE_KEY!r}, 200 TwiML at once; a worker drains --drain-per-s "
        "messages/s; /health has no queue field; bad -> 403"
    )
    needs_redis = True

    def __init__(self, settings: BotSettings) -> None:
        super().__init__(settings)
        import redis as redis_module  # only this bot needs the client

        assert settings.redis_url is not None
        self._redis_errors: tuple[type[Exception], ...] = (redis_module.RedisError, OSError)
        self._redis: redis.Redis = redis_module.Redis.from_url(
            settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0
        )
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._drain, name="slow_queue-worker", daemon=True)

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._stop.set()
        self._worker.join(timeout=2.0)
        self._redis.close()

    def accept(self, request: Request) -> Reply:
        try:
            self._redis.lpush(QUEUE_KEY, request.body)
        except self._redis_errors:
            return Reply(500, b"queue unavailable")
        return super().accept(request)

    def _drain(self) -> None:
        interval_s = 1.0 / self.settings.drain_per_s
        while not self._stop.wait(interval_s):
            try:
                self._redis.rpop(QUEUE_KEY)
            except self._redis_errors:
                self._stop.wait(0.5)


__all__ = ["BOTS", "QUEUE_KEY", "TWIML_ACK", "register", "twilio_signed"]
