"""The demo bot (the reference system under test), run as a real process against real Redis.

Every test starts ``python -m demo_bot`` through ``perfsuite.embedded.start_demo_bot`` and talks
to it over real HTTP, signing requests the way Twilio does (a local helper; the result is
cross-checked with the ``twilio`` package's RequestValidator).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from twilio.request_validator import RequestValidator

from perfsuite.embedded import ManagedProcess, free_port, start_demo_bot, start_redis

TOKEN = "test-auth-token-3f9a"  # a fake Twilio auth token; it must never show in the bot's log
WEBHOOK = "/webhook/whatsapp"
TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
POSTGRES = ("127.0.0.1", 5432)


def sign(token: str, url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature: base64(HMAC-SHA1(token, url + sorted name+value pairs))."""
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def whatsapp_message(
    body: str = "Hi, is this job real? Pay the registration fee and start today",
    sender: str = "whatsapp:+15550001111",
    sid: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """The form fields of a Twilio inbound WhatsApp text message (plus ``extra``)."""
    sid = sid or "SM" + uuid.uuid4().hex
    params = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "whatsapp:+14155238886",
        "Body": body,
        "NumMedia": "0",
        "ProfileName": "Test User",
        "WaId": sender.removeprefix("whatsapp:+"),
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
        "MessageType": "text",
        "FieldTwilioAddsNextYear": "unknown fields must be accepted",
    }
    params.update(extra)
    return params


@dataclass
class Answer:
    """One HTTP response, read fully."""

    status: int
    headers: dict[str, str]
    body: bytes
    elapsed_ms: float


class BotClient:
    """A keep-alive HTTP client for one bot, signing webhooks for the URL the bot reconstructs."""

    def __init__(self, bot: ManagedProcess, token: str = TOKEN) -> None:
        parts = urlsplit(bot.url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.token = token
        self.webhook_url = f"http://{self.host}:{self.port}{WEBHOOK}"
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Answer:
        """Send one request on the kept-alive connection (reconnect once if the bot closed it)."""
        for attempt in (1, 2):
            try:
                started = time.perf_counter()
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                data = response.read()
                elapsed_ms = (time.perf_counter() - started) * 1000
                return Answer(
                    response.status, {k.lower(): v for k, v in response.getheaders()}, data, elapsed_ms
                )
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def post(self, params: dict[str, str], signature: str | None = "sign", url: str | None = None) -> Answer:
        """POST ``params`` to the webhook; ``signature`` "sign" signs correctly, None sends none."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature == "sign":
            signature = sign(self.token, url or self.webhook_url, params)
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        return self.request("POST", WEBHOOK, urlencode(params).encode(), headers)

    def health(self) -> dict:
        """GET /health as JSON."""
        answer = self.request("GET", "/health")
        assert answer.status == 200
        return json.loads(answer.body)

    def wait_health(self, predicate: Callable[[dict], bool], timeout_s: float = 10.0) -> dict:
        """Poll /health until ``predicate`` holds; fail with the last document after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        doc = self.health()
        while not predicate(doc):
            if time.monotonic() > deadline:
                raise AssertionError(f"/health never satisfied the condition: {json.dumps(doc)}")
            time.sleep(0.05)
            doc = self.health()
        return doc

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


@pytest.fixture()
def start_bot(tmp_path: Path) -> Iterator[Callable[..., tuple[ManagedProcess, BotClient]]]:
    """Factory: start a bot (``mode``, extra CLI args); every bot started is stopped afterwards."""
    started: list[tuple[ManagedProcess, BotClient]] = []

    def start(redis_url: str, *args: str, mode: str = "optimized") -> tuple[ManagedProcess, BotClient]:
        extra = list(args)
        if "--sqlite-path" not in extra and "--db-url" not in extra:
            extra += ["--sqlite-path", str(tmp_path / f"results-{len(started)}.sqlite3")]
        bot = start_demo_bot(redis_url, TOKEN, mode=mode, log_dir=tmp_path / "logs", extra_args=extra)
        client = BotClient(bot)
        started.append((bot, client))
        return bot, client

    yield start
    for bot, client in started:
        client.close()
        bot.stop()


def sqlite_rows(path: Path) -> list[tuple]:
    """(message_sid, kind, verdict) rows the bot stored in SQLite."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT message_sid, kind, verdict FROM demo_bot_results").fetchall()


def test_local_signing_matches_twilio_request_validator() -> None:
    """The tests' signer agrees with Twilio's own RequestValidator (so the bot is checked against Twilio)."""
    params = whatsapp_message()
    url = "http://127.0.0.1:8123/webhook/whatsapp"
    assert sign(TOKEN, url, params) == RequestValidator(TOKEN).compute_signature(url, params)


def test_signed_message_is_acked_with_twiml_processed_and_stored(start_bot, redis_url, tmp_path) -> None:
    """A validly signed text message gets 200 TwiML at once, is analysed by a worker and stored."""
    bot, client = start_bot(redis_url, "--sqlite-path", str(tmp_path / "r.sqlite3"), "--work-ms-text", "30")
    params = whatsapp_message(body="URGENT: pay the registration fee by gift card, no experience needed")
    answer = client.post(params)
    assert answer.status == 200
    assert answer.body == TWIML
    assert answer.headers["content-type"].startswith("text/xml")
    timing = answer.headers["server-timing"]
    assert "sig;dur=" in timing and "redis;dur=" in timing
    assert answer.headers["x-demo-bot-backend"] == "redis"

    doc = client.wait_health(lambda h: h["processed"] == 1)
    assert doc["status"] == "ok" and doc["mode"] == "optimized"
    assert doc["received"] == 1 and doc["accepted"] == 1
    assert doc["queue"] == {"depth": 0, "max": 10000, "backend": "redis", "redis_depth": 0, "memory_depth": 0}
    assert doc["storage"]["ok"] and doc["storage"]["kind"] == "sqlite"
    assert set(doc["pool"]) >= {"in_use", "idle", "max"} and doc["pool"]["max"] == 20
    assert sqlite_rows(tmp_path / "r.sqlite3") == [(params["MessageSid"], "text", "likely_scam")]

    client.close()
    bot.stop()
    assert bot.process.returncode == 0, "SIGTERM must end the bot cleanly with exit 0"
    log = bot.log_tail(200)
    assert "mode=optimized" in log
    assert TOKEN not in log


def test_wrong_and_missing_signatures_are_rejected_with_403(start_bot, redis_url) -> None:
    """A wrong signature, a missing one and one for another URL are 403, and nothing is queued."""
    _, client = start_bot(redis_url)
    params = whatsapp_message()
    assert client.post(params, signature=sign("not-the-token", client.webhook_url, params)).status == 403
    assert client.post(params, signature=None).status == 403
    assert client.post(params, url="http://elsewhere.example.com/webhook/whatsapp").status == 403
    tampered = dict(params, Body="changed after signing")
    assert client.post(tampered, signature=sign(TOKEN, client.webhook_url, params)).status == 403
    doc = client.health()
    assert doc["rejected"] == 4 and doc["accepted"] == 0 and doc["queue"]["depth"] == 0


def test_replayed_message_sid_is_validated_then_deduplicated(start_bot, redis_url) -> None:
    """A replay is signature-checked first (bad -> 403); a valid replay is 200 but not queued again."""
    # No workers: the queue keeps what was enqueued, so "not queued twice" is exact, not timed.
    _, client = start_bot(redis_url, "--key-prefix", "replaytest:", "--workers", "0")
    params = whatsapp_message()
    assert client.post(params).status == 200
    assert client.post(params, signature="bm90LWEtc2lnbmF0dXJl").status == 403
    assert client.post(params, signature=None).status == 403
    replay = client.post(params)
    assert replay.status == 200 and replay.body == TWIML

    doc = client.health()
    assert doc["accepted"] == 1 and doc["duplicates"] == 1 and doc["rejected"] == 2
    assert doc["queue"]["depth"] == 1
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    assert r.llen("replaytest:queue") == 1
    keys = {str(k) for k in r.keys("*")}
    assert f"replaytest:dedupe:{params['MessageSid']}" in keys
    assert all(k.startswith("replaytest:") for k in keys), keys
    assert 0 < int(r.ttl(f"replaytest:dedupe:{params['MessageSid']}")) <= 86400


def test_per_sender_rate_limit_answers_429_with_retry_after(start_bot, redis_url) -> None:
    """Past --rate-limit-per-min a sender gets 429 with Retry-After; other senders are unaffected."""
    _, client = start_bot(redis_url, "--rate-limit-per-min", "3")
    statuses = [client.post(whatsapp_message(sender="whatsapp:+15550002222")) for _ in range(4)]
    assert [a.status for a in statuses] == [200, 200, 200, 429]
    assert 1 <= int(statuses[-1].headers["retry-after"]) <= 60
    assert client.post(whatsapp_message(sender="whatsapp:+15550003333")).status == 200
    assert client.health()["ratelimited"] == 1


def test_full_queue_answers_503_with_retry_after(start_bot, redis_url) -> None:
    """With the queue at --queue-max, new messages get 503 + Retry-After and are not marked as seen;
    a clean stop puts the message being analysed back on the queue."""
    bot, client = start_bot(redis_url, "--queue-max", "2", "--workers", "1", "--work-ms-text", "3000")
    answers: list[tuple[dict[str, str], Answer]] = []
    # The one worker takes the first message before the queue fills: the depth is then exactly 2.
    answers.append((first := whatsapp_message(sender="whatsapp:+15550009999"), client.post(first)))
    client.wait_health(lambda h: h["workers"]["busy"] == 1)
    for _ in range(6):
        params = whatsapp_message(sender=f"whatsapp:+1555000{len(answers):04d}")
        answers.append((params, client.post(params)))
        if answers[-1][1].status == 503:
            break
    refused_params, refused = answers[-1]
    assert refused.status == 503, [a.status for _, a in answers]
    assert refused.headers["retry-after"] == "1"
    assert all(a.status == 200 for _, a in answers[:-1])
    # Twilio retries the same MessageSid: still refused (the queue is full), never taken for a duplicate.
    assert client.post(refused_params).status == 503
    doc = client.health()
    assert doc["backpressure"] == 2 and doc["duplicates"] == 0
    assert doc["queue"]["depth"] == 2 and doc["queue"]["max"] == 2
    # Stopped mid-analysis, the worker puts its message back: nothing accepted is lost.
    client.close()
    bot.stop()
    assert bot.process.returncode == 0
    assert redis.Redis.from_url(redis_url).llen("demo_bot:queue") == 3


def test_metrics_endpoint_is_valid_prometheus_text(start_bot, redis_url) -> None:
    """/metrics parses as Prometheus text and its counters match what the bot answered."""
    _, client = start_bot(redis_url)
    assert client.post(whatsapp_message()).status == 200
    assert client.post(whatsapp_message(), signature=None).status == 403
    client.wait_health(lambda h: h["processed"] == 1)
    answer = client.request("GET", "/metrics")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(answer.body.decode())}
    value = {
        f.name: {(s.name, tuple(sorted(s.labels.items()))): s.value for s in f.samples}
        for f in families.values()
    }
    assert value["demo_bot_webhooks_received"][("demo_bot_webhooks_received_total", ())] == 2
    assert (
        value["demo_bot_webhooks_rejected"][
            ("demo_bot_webhooks_rejected_total", (("reason", "signature_missing"),))
        ]
        == 1
    )
    assert (
        value["demo_bot_messages_processed"][("demo_bot_messages_processed_total", (("kind", "text"),))] == 1
    )
    for name in (
        "demo_bot_webhooks_ratelimited",
        "demo_bot_webhooks_duplicates",
        "demo_bot_webhooks_backpressure",
    ):
        assert families[name].type == "counter"
    assert families["demo_bot_queue_depth"].type == "gauge"
    assert families["demo_bot_redis_pool_connections"].type == "gauge"
    latency = families["demo_bot_webhook_duration_seconds"]
    assert latency.type == "histogram"
    assert value[latency.name][("demo_bot_webhook_duration_seconds_count", ())] == 2


def test_redis_outage_degrades_to_memory_and_recovers(start_bot) -> None:
    """Redis killed: webhooks still 200 (memory path), /health degraded; Redis back: all recovers."""
    private = start_redis()
    try:
        port = int(private.extra["port"])
        _, client = start_bot(
            private.url,
            "--breaker-failures", "2", "--breaker-reset-s", "0.5",
            "--redis-connect-timeout-ms", "200", "--redis-socket-timeout-ms", "200",
            "--redis-retries", "1", "--work-ms-text", "5",
        )  # fmt: skip
        assert client.post(whatsapp_message()).status == 200
        client.wait_health(lambda h: h["processed"] == 1)

        private.stop()
        during = [client.post(whatsapp_message(sender=f"whatsapp:+1555111{i:04d}")) for i in range(6)]
        assert [a.status for a in during] == [200] * 6
        assert during[-1].headers["x-demo-bot-backend"] == "memory"
        doc = client.wait_health(lambda h: h["processed"] == 7)
        assert doc["status"] == "degraded"
        assert doc["redis"]["ok"] is False
        assert doc["breaker"]["state"] in ("open", "half-open") and doc["breaker"]["trips"] >= 1
        assert doc["queue"]["backend"] == "memory"

        private = start_redis(port=port)
        doc = client.wait_health(lambda h: h["status"] == "ok", timeout_s=15)
        assert doc["breaker"]["state"] == "closed" and doc["queue"]["backend"] == "redis"
        after = client.post(whatsapp_message())
        assert after.status == 200 and after.headers["x-demo-bot-backend"] == "redis"
        client.wait_health(lambda h: h["processed"] == 8)
    finally:
        private.stop()


def test_legacy_mode_does_the_work_inside_the_request(start_bot, redis_url) -> None:
    """Legacy acks only after the analysis (ack time >= work time); optimized acks before it."""
    work_ms = 150
    _, legacy = start_bot(redis_url, "--work-ms-text", str(work_ms), "--key-prefix", "legacy:", mode="legacy")
    params = whatsapp_message()
    answer = legacy.post(params)
    assert answer.status == 200 and answer.body == TWIML
    assert answer.elapsed_ms >= work_ms
    assert "work;dur=" in answer.headers["server-timing"]
    doc = legacy.health()
    assert doc["mode"] == "legacy" and doc["processed"] == 1  # already stored when the ack came
    assert doc["breaker"]["state"] == "disabled" and doc["queue"]["backend"] == "inline"
    assert legacy.post(params).status == 200
    assert legacy.health()["processed"] == 1 and legacy.health()["duplicates"] == 1
    assert legacy.post(params, signature="d3Jvbmc=").status == 403

    _, optimized = start_bot(redis_url, "--work-ms-text", str(work_ms), "--key-prefix", "optimized:")
    quick = optimized.post(whatsapp_message())
    assert quick.status == 200 and "work;dur=" not in quick.headers["server-timing"]
    assert optimized.health()["processed"] == 0  # acked before the analysis finished
    optimized.wait_health(lambda h: h["processed"] == 1)


def test_legacy_mode_answers_500_when_redis_is_down(start_bot) -> None:
    """Legacy has no degradation: without Redis a signed webhook is a 500 (and /health still answers)."""
    _, client = start_bot(
        f"redis://127.0.0.1:{free_port()}/0", "--redis-connect-timeout-ms", "200", mode="legacy"
    )
    assert client.post(whatsapp_message()).status == 500
    doc = client.health()
    assert doc["status"] == "degraded" and doc["redis"]["ok"] is False and doc["failed"] == 1


def _postgres_up() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(POSTGRES, timeout=0.5):
        return True
    return False


@pytest.fixture()
def pg_table() -> Iterator[str]:
    """A unique table name in database ``test`` on 127.0.0.1:5432, dropped afterwards."""
    if not _postgres_up():
        pytest.skip("PostgreSQL is not listening on 127.0.0.1:5432")
    import psycopg2

    table = "demo_bot_test_" + uuid.uuid4().hex[:12]
    yield table
    with contextlib.closing(
        psycopg2.connect(host=POSTGRES[0], port=POSTGRES[1], user="postgres", dbname="test")
    ) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")


def _pg_rows(table: str) -> list[tuple]:
    import psycopg2

    with (
        contextlib.closing(
            psycopg2.connect(host=POSTGRES[0], port=POSTGRES[1], user="postgres", dbname="test")
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(f"SELECT message_sid, kind FROM {table} ORDER BY kind")
        return cur.fetchall()


def test_postgresql_storage_keeps_results(start_bot, redis_url, pg_table) -> None:
    """With --db-url the results of text, document and image messages land in PostgreSQL."""
    db_url = f"postgresql://postgres@{POSTGRES[0]}:{POSTGRES[1]}/test"
    _, client = start_bot(redis_url, "--db-url", db_url, "--db-table", pg_table, "--work-ms-document", "20")
    text = whatsapp_message()
    document = whatsapp_message(
        sid="MM" + uuid.uuid4().hex, MessageType="document", NumMedia="1",
        MediaUrl0="https://api.twilio.com/media/offer.pdf", MediaContentType0="application/pdf",
    )  # fmt: skip
    image = whatsapp_message(
        sid="MM" + uuid.uuid4().hex, MessageType="image", NumMedia="1",
        MediaUrl0="https://api.twilio.com/media/offer.jpg", MediaContentType0="image/jpeg",
    )  # fmt: skip
    for params in (text, document, image):
        assert client.post(params).status == 200
    doc = client.wait_health(lambda h: h["processed"] == 3)
    assert doc["storage"] == {"ok": True, "kind": "postgresql", "failures": 0}
    assert _pg_rows(pg_table) == [
        (document["MessageSid"], "document"),
        (image["MessageSid"], "image"),
        (text["MessageSid"], "text"),
    ]


class TcpForwarder:
    """A tiny TCP forwarder to a real server, which the test can cut and restore (a database outage)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Listen on ``self.port`` and forward every connection."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                return
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Refuse new connections and cut every open one."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in its thread
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()


def test_database_outage_requeues_messages_and_recovers(start_bot, redis_url, pg_table) -> None:
    """Database down: messages are still acked, stores retried and requeued (none lost), /health shows
    the store down; database back: the backlog is stored."""
    forwarder = TcpForwarder(POSTGRES)
    forwarder.start()
    try:
        db_url = f"postgresql://postgres@127.0.0.1:{forwarder.port}/test"
        _, client = start_bot(
            redis_url, "--db-url", db_url, "--db-table", pg_table, "--db-timeout-ms", "500",
            "--work-ms-text", "5", "--storage-probe-interval-s", "0.2",
        )  # fmt: skip
        assert client.post(whatsapp_message()).status == 200
        client.wait_health(lambda h: h["processed"] == 1)

        forwarder.stop()
        assert all(client.post(whatsapp_message()).status == 200 for _ in range(3))
        doc = client.wait_health(lambda h: h["requeued"] >= 1 and not h["storage"]["ok"])
        assert doc["status"] == "degraded" and doc["processed"] == 1

        forwarder.start()
        doc = client.wait_health(lambda h: h["processed"] == 4 and h["storage"]["ok"], timeout_s=20)
        assert doc["queue"]["depth"] == 0
        assert len(_pg_rows(pg_table)) == 4
    finally:
        forwarder.stop()


@pytest.mark.serial
def test_low_latency_with_keep_alive_client(start_bot, redis_url) -> None:
    """Loose latency guard: 50 sequential signed messages on one keep-alive connection have a median
    under 5 ms (a delayed-ACK stall would make it ~40 ms); an invalid signature is refused in < 100 ms."""
    _, client = start_bot(redis_url, "--rate-limit-per-min", "0")
    client.post(whatsapp_message())  # warm-up: script load, pooled connection
    answers = [client.post(whatsapp_message()) for _ in range(50)]
    assert all(a.status == 200 for a in answers)
    median_ms = statistics.median(a.elapsed_ms for a in answers)
    assert median_ms < 5.0, f"median ack {median_ms:.1f} ms over keep-alive (delayed-ACK stall?)"
    rejected = [client.post(whatsapp_message(), signature="aW52YWxpZA==") for _ in range(10)]
    assert all(a.status == 403 for a in rejected)
    assert max(a.elapsed_ms for a in rejected) < 100.0


def test_extra_latency_knob_slows_every_answer_by_a_known_amount(start_bot, redis_url) -> None:
    """`--extra-latency-ms 20` (the regression-gate study's known slowdown): every signed message
    is answered at least 20 ms after it arrived, and still answered 200; a bad value exits 64."""
    _, client = start_bot(redis_url, "--rate-limit-per-min", "0", "--extra-latency-ms", "20")
    client.post(whatsapp_message())  # warm-up
    answers = [client.post(whatsapp_message()) for _ in range(10)]
    assert all(a.status == 200 for a in answers)
    assert min(a.elapsed_ms for a in answers) >= 20.0
    assert statistics.median(a.elapsed_ms for a in answers) < 60.0
    env = dict(os.environ, TWILIO_AUTH_TOKEN=TOKEN, DEMO_BOT_REDIS_URL=redis_url)
    bad = subprocess.run(
        [sys.executable, "-m", "demo_bot", "--slowdown", "0.5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 64 and "--slowdown must be between 1 and 100" in bad.stderr


def test_public_url_is_what_the_signature_covers(start_bot, redis_url) -> None:
    """With --public-url the bot validates against that URL (as Twilio signs it), not its local address."""
    public = "https://bot.example.com:8443/webhook/whatsapp"
    _, client = start_bot(redis_url, "--public-url", public)
    assert client.post(whatsapp_message(), url=public).status == 200
    assert client.post(whatsapp_message()).status == 403


def test_bad_configuration_exits_64_naming_the_problem(redis_url) -> None:
    """A bad flag value or a missing auth token exits 64 with a message naming it, not a traceback."""
    env = dict(os.environ, TWILIO_AUTH_TOKEN=TOKEN, DEMO_BOT_REDIS_URL=redis_url)
    bad = subprocess.run(
        [sys.executable, "-m", "demo_bot", "--queue-max", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 64 and "--queue-max must be >= 1" in bad.stderr
    env.pop("TWILIO_AUTH_TOKEN")
    missing = subprocess.run(
        [sys.executable, "-m", "demo_bot"], env=env, capture_output=True, text=True, timeout=30
    )
    assert missing.returncode == 64 and "TWILIO_AUTH_TOKEN" in missing.stderr
