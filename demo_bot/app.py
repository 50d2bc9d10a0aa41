"""The WSGI application: routes, Twilio signature check, TwiML answers, /health and /metrics.

Routes:
- ``POST {webhook_path}``: form-encoded Twilio inbound message. 403 on a missing or wrong
  ``X-Twilio-Signature`` (checked before anything else, replays included), 400 without a
  MessageSid, else what the mode's pipeline decides: 200 TwiML, 429 / 503 with Retry-After, 500.
  Every answer carries ``Server-Timing`` (phases in ms) and ``X-Demo-Bot-Backend``.
- ``GET /health``: JSON, always 200 (``status`` says ``ok`` or ``degraded``).
- ``GET /metrics``: Prometheus text exposition.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import gevent

from demo_bot.analysis import Analyser
from demo_bot.config import BotConfig
from demo_bot.message import InboundMessage
from demo_bot.metrics import Metrics
from demo_bot.pipelines import Pipeline, Reply, create_pipeline
from demo_bot.signature import is_valid_signature, request_url
from demo_bot.storage import PostgresStorage, SqliteStorage, Storage, StorageMonitor

log = logging.getLogger("demo_bot.app")

TWIML_EMPTY = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
"""The ack Twilio expects when the bot has nothing to reply (yet)."""

StartResponse = Callable[..., Any]

_STATUS_LINES = {
    200: "200 OK",
    400: "400 Bad Request",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    413: "413 Content Too Large",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP answer; sent in a single write (headers and body together)."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def _server_timing(phases_ms: Iterable[tuple[str, float]]) -> str:
    return ", ".join(f"{name};dur={duration:.3f}" for name, duration in phases_ms)


def open_storage(config: BotConfig) -> tuple[Storage, Path | None]:
    """The configured store, and a temporary directory to delete at exit (None if not ours)."""
    if config.db_url:
        return PostgresStorage(config.db_url, config.db_table, config.db_pool_size, config.db_timeout_s), None
    if config.sqlite_path:
        return SqliteStorage(config.sqlite_path, config.db_table), None
    temp_dir = Path(tempfile.mkdtemp(prefix="demo_bot-"))
    return SqliteStorage(str(temp_dir / "results.sqlite3"), config.db_table), temp_dir


SPIN_S = 0.002
"""Below this much time left, :func:`wait_until` yields in a loop instead of sleeping: the event
loop's timers round sleeps up to whole milliseconds."""


def wait_until(deadline: float) -> None:
    """Wait, letting other greenlets run, until ``time.perf_counter()`` reaches ``deadline``
    (accurate to a fraction of a millisecond)."""
    while (remaining := deadline - time.perf_counter()) > 0:
        gevent.sleep(remaining - SPIN_S if remaining > SPIN_S else 0)


class BotApp:
    """The bot as a WSGI callable; :meth:`start` / :meth:`stop` run its background work."""

    def __init__(self, config: BotConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        storage, self._temp_dir = open_storage(config)
        self.storage = StorageMonitor(storage)
        self.pipeline: Pipeline = create_pipeline(config, Analyser(config.work), self.storage, self.metrics)
        self.started_at = time.monotonic()

    def start(self) -> None:
        """Start workers (optimized mode)."""
        self.pipeline.start()

    def stop(self, grace_s: float = 2.0) -> None:
        """Stop workers, close Redis and the store, remove our temporary SQLite directory."""
        self.pipeline.stop(grace_s)
        self.storage.storage.close()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            if path == self.config.webhook_path:
                if method != "POST":
                    response = Response(405, b"use POST\n", headers=(("Allow", "POST"),))
                else:
                    response = self.webhook(environ)
            elif path == "/health" and method in ("GET", "HEAD"):
                response = Response(200, json.dumps(self.health()).encode(), "application/json")
            elif path == "/metrics" and method in ("GET", "HEAD"):
                response = Response(
                    200, self.render_metrics().encode(), "text/plain; version=0.0.4; charset=utf-8"
                )
            else:
                response = Response(404, b"not found\n")
        except Exception:
            log.exception("unhandled error on %s %s", method, path)
            self.metrics.failed.inc()
            response = Response(500, b"internal error\n")
        headers = [("Content-Type", response.content_type), ("Content-Length", str(len(response.body)))]
        headers.extend(response.headers)
        start_response(_STATUS_LINES.get(response.status, f"{response.status} Status"), headers)
        return [b"" if method == "HEAD" else response.body]

    def webhook(self, environ: dict[str, Any]) -> Response:
        """Validate, then hand the message to the mode's pipeline; every answer is timed."""
        started = time.perf_counter()
        self.metrics.received.inc()
        response = self._webhook(environ, started)
        if self.config.slowdown != 1.0 or self.config.extra_latency_s:
            elapsed_s = time.perf_counter() - started
            wait_until(started + elapsed_s * self.config.slowdown + self.config.extra_latency_s)
        self.metrics.webhook_latency.observe(time.perf_counter() - started)
        return response

    def _webhook(self, environ: dict[str, Any], started: float) -> Response:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > self.config.max_body_bytes:
            self.metrics.rejected.inc(reason="bad_request")
            return Response(413 if length > 0 else 400, b"body missing or too large\n")
        body = environ["wsgi.input"].read(length) if length else b""
        params = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        parsed = time.perf_counter()

        host = (
            environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
        )
        url = request_url(
            self.config.public_url, host, environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        )
        signature = environ.get("HTTP_X_TWILIO_SIGNATURE")
        valid = is_valid_signature(self.config.auth_token, url, params, signature)
        checked = time.perf_counter()
        timing = [("parse", (parsed - started) * 1000), ("sig", (checked - parsed) * 1000)]
        if not valid:
            self.metrics.rejected.inc(reason="signature_missing" if not signature else "signature_invalid")
            return Response(
                403, b"invalid Twilio signature\n", headers=(("Server-Timing", _server_timing(timing)),)
            )

        fields: dict[str, str] = {}
        for name, value in params:
            fields.setdefault(name, value)
        sid = fields.get("MessageSid") or fields.get("SmsMessageSid") or fields.get("SmsSid") or ""
        if not sid:
            self.metrics.rejected.inc(reason="no_message_sid")
            return Response(400, b"MessageSid missing\n")
        message = InboundMessage(sid, fields.get("From") or "unknown", fields, time.time())
        reply = self.pipeline.handle(message, message.received_at_s)
        self._count(reply)
        timing.extend(reply.phases_ms)
        timing.append(("total", (time.perf_counter() - started) * 1000))
        headers: list[tuple[str, str]] = [
            ("Server-Timing", _server_timing(timing)),
            ("X-Demo-Bot-Backend", reply.backend),
        ]
        if reply.retry_after_s is not None:
            headers.append(("Retry-After", str(reply.retry_after_s)))
        if reply.status == 200:
            return Response(200, TWIML_EMPTY, "text/xml; charset=utf-8", tuple(headers))
        return Response(
            reply.status, (reply.reason.replace("_", " ") + "\n").encode(), headers=tuple(headers)
        )

    def _count(self, reply: Reply) -> None:
        m = self.metrics
        if reply.reason in ("accepted", "processed"):
            m.accepted.inc(backend=reply.backend)
        elif reply.reason == "duplicate":
            m.duplicates.inc()
        elif reply.status == 429:
            m.ratelimited.inc()
        elif reply.status == 503:
            m.backpressure.inc(reason=reply.reason)
        elif reply.status >= 500:
            m.failed.inc()

    def health(self) -> dict[str, Any]:
        """The /health document::

            {"status": "ok"|"degraded", "mode": "optimized"|"legacy",
             "redis": {"ok", "latency_ms", "errors", "last_error"},
             "breaker": {"state": "closed"|"open"|"half-open"|"disabled", "trips", "consecutive_failures"},
             "pool": {"in_use", "idle", "max", "peak_in_use"},
             "queue": {"depth", "max", "backend": "redis"|"memory"|"inline", "redis_depth", "memory_depth"},
             "workers": {"count", "busy"}, "storage": {"ok", "kind": "sqlite"|"postgresql", "failures"},
             "received", "accepted", "processed", "duplicates", "ratelimited", "rejected",
             "backpressure", "failed", "requeued", "uptime_s"}

        ``degraded``: Redis unreachable, breaker not closed, or the store down.
        """
        part = self.pipeline.health()
        degraded = bool(part.pop("degraded")) or not self.storage.ok
        m = self.metrics
        return {
            "status": "degraded" if degraded else "ok",
            "mode": self.pipeline.mode,
            **part,
            "storage": {
                "ok": self.storage.ok,
                "kind": self.storage.storage.kind,
                "failures": self.storage.failures,
            },
            "received": int(m.received.total()),
            "accepted": int(m.accepted.total()),
            "processed": int(m.processed.total()),
            "duplicates": int(m.duplicates.total()),
            "ratelimited": int(m.ratelimited.total()),
            "rejected": int(m.rejected.total()),
            "backpressure": int(m.backpressure.total()),
            "failed": int(m.failed.total()),
            "requeued": int(m.requeued.total()),
            "uptime_s": round(time.monotonic() - self.started_at, 3),
        }

    def render_metrics(self) -> str:
        """The /metrics exposition."""
        gauges = self.pipeline.gauges()
        gauges["demo_bot_storage_up"] = (
            "1 when the last store attempt worked.",
            {(): 1.0 if self.storage.ok else 0.0},
        )
        return self.metrics.render(gauges)


__all__ = ["TWIML_EMPTY", "BotApp", "Response", "open_storage"]
