"""The zoo's HTTP plumbing: a threaded stdlib server that hands each request to one :class:`Bot`.

Every response goes out in ONE write on a socket with TCP_NODELAY, with a Content-Length (none on
204, as RFC 9110 requires), so HTTP/1.1 keep-alive clients never meet the ~40 ms delayed-ACK stall
of a two-send response (DESIGN "Known trap"). The request body is always read in full, so the
connection stays usable after any answer, refusals included.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar, NoReturn
from urllib.parse import parse_qsl, urlsplit

from perfsuite.twilio import SIGNATURE_HEADER

DEFAULT_PATH = "/webhook/whatsapp"
HEALTH_PATH = "/health"
MAX_BODY_BYTES = 1 << 20
"""Larger request bodies are refused with 413 (the zoo's bots only ever see webhook forms)."""


@dataclass(frozen=True, slots=True)
class BotSettings:
    """What a bot is started with (from the command line and TWILIO_AUTH_TOKEN)."""

    auth_token: str = field(repr=False)
    """The Twilio auth token the bot validates with (never shown in a repr)."""
    public_url: str
    """The URL the bot believes Twilio called: what it validates signatures against."""
    path: str = DEFAULT_PATH
    """The webhook path the bot answers POSTs on."""
    redis_url: str | None = None
    """Redis for the bots that keep state there (``slow_queue``)."""
    drain_per_s: float = 20.0
    """How many queued messages per second ``slow_queue``'s worker takes off its list."""
    stall_s: float = 20.0
    """How long ``stalls`` waits before answering, seconds (more than Twilio's 15 s)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One webhook POST as the bot received it."""

    path: str
    """The request path, without the query string."""
    headers: Message
    body: bytes
    """The raw request body."""

    @property
    def params(self) -> tuple[tuple[str, str], ...]:
        """The form fields, blank values kept (Twilio signs empty fields such as a location's Body)."""
        return tuple(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    @property
    def signature(self) -> str | None:
        """The X-Twilio-Signature header, None when absent."""
        return self.headers.get(SIGNATURE_HEADER)


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP response; :meth:`encode` renders it as the bytes of a single write."""

    status: int
    body: bytes = b""
    content_type: str | None = "text/plain; charset=utf-8"
    """None sends no Content-Type (as for 204)."""
    headers: tuple[tuple[str, str], ...] = ()
    """More headers (e.g. Retry-After)."""

    def encode(self, keep_alive: bool) -> bytes:
        """Status line, headers and body in one buffer."""
        phrase = HTTPStatus(self.status).phrase if self.status in HTTPStatus._value2member_map_ else ""
        lines = [f"HTTP/1.1 {self.status} {phrase}", "Server: perfsuite-zoo"]
        if self.content_type is not None:
            lines.append(f"Content-Type: {self.content_type}")
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.status != 204:
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


class Bot:
    """A zoo bot: one behaviour, answering the webhook path and (unless ``has_health`` is off) /health.

    Subclasses set ``name`` and ``behaviour`` and are registered with :func:`tests.zoo.bots.register`.
    Handlers run on the server's threads: state a bot keeps must be thread-safe.
    """

    name: ClassVar[str]
    behaviour: ClassVar[str]
    """One line: what the bot does with valid and invalid requests."""
    needs_redis: ClassVar[bool] = False
    has_health: ClassVar[bool] = True

    def __init__(self, settings: BotSettings) -> None:
        self.settings = settings

    def start(self) -> None:
        """Start background work (called once, before the server accepts connections)."""

    def stop(self) -> None:
        """Stop background work (called once at shutdown)."""

    def webhook(self, request: Request) -> Reply:
        """The answer to a POST on the webhook path."""
        raise NotImplementedError

    def health(self) -> Reply:
        """The answer to GET /health."""
        return json_reply(200, {"status": "ok", "bot": self.name})


def json_reply(status: int, document: object) -> Reply:
    """A JSON response."""
    return Reply(status, json.dumps(document).encode("utf-8"), "application/json")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # TCP_NODELAY on every accepted connection (StreamRequestHandler)
    server: _ZooServer

    def do_GET(self) -> None:
        if self._drain_body() is None:
            return
        path = urlsplit(self.path).path
        if path == HEALTH_PATH and self.server.bot.has_health:
            self._send(self.server.bot.health())
        else:
            self._send(Reply(404, b"Not Found"))

    def do_POST(self) -> None:
        body = self._drain_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        bot = self.server.bot
        if path != bot.settings.path:
            self._send(Reply(404, b"Not Found"))
            return
        self._send(bot.webhook(Request(path=path, headers=self.headers, body=body)))

    def _drain_body(self) -> bytes | None:
        """Read the whole request body (so keep-alive stays in step); None after refusing it."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send(Reply(411, b"Length Required"))
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._send(Reply(413 if length > 0 else 400, b"Bad Content-Length"))
            return None
        return self.rfile.read(length) if length else b""

    def _send(self, reply: Reply) -> None:
        try:
            self.wfile.write(reply.encode(keep_alive=not self.close_connection))
        except OSError:  # the client gave up (e.g. timed out on a stalling bot)
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The base class writes headers and body in two sends; errors go out in one write, then close.
        self.close_connection = True
        self._send(Reply(code, (message or HTTPStatus(code).phrase).encode("utf-8", "replace")))

    def log_message(self, format: str, *args: object) -> None:
        return


class _ZooServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], bot: Bot) -> None:
        self.bot = bot
        super().__init__(address, _Handler)


def _terminate(_signum: int, _frame: object) -> NoReturn:
    raise SystemExit(0)


def serve(bot: Bot, host: str, port: int) -> int:
    """Serve ``bot`` until SIGTERM or SIGINT; returns the exit status."""
    server = _ZooServer((host, port), bot)
    signal.signal(signal.SIGTERM, _terminate)
    bot.start()
    print(
        f"zoo bot {bot.name} listening on http://{host}:{server.server_port}{bot.settings.path}",
        file=sys.stderr,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        server.server_close()
        bot.stop()
    return 0


def main(bots: dict[str, type[Bot]], argv: list[str] | None = None) -> int:
    """``python -m tests.zoo <bot> --port N``: run one bot of ``bots`` in this process."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.zoo",
        description="Run one zoo bot. The auth token comes from TWILIO_AUTH_TOKEN.",
        epilog="bots:\n" + "\n".join(f"  {name}: {cls.behaviour}" for name, cls in bots.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bot", choices=sorted(bots), help="which bot to run")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--path", default=DEFAULT_PATH, help=f"webhook path (default: {DEFAULT_PATH})")
    parser.add_argument(
        "--public-url", default=None, help="URL the bot validates against (default: http://HOST:PORT/PATH)"
    )
    parser.add_argument("--redis-url", default=None, help="Redis URL (slow_queue)")
    parser.add_argument(
        "--drain-per-s", type=float, default=20.0, help="slow_queue: messages drained per second"
    )
    parser.add_argument(
        "--stall-s", type=float, default=20.0, help="stalls: seconds before answering (default: 20)"
    )
    args = parser.parse_args(argv)
    token = os.environ.get("TWILIO_AUTH_TOKEN", "")
    if not token:
        parser.exit(64, "python -m tests.zoo: error: set TWILIO_AUTH_TOKEN\n")
    bot_class = bots[args.bot]
    if bot_class.needs_redis and not args.redis_url:
        parser.exit(64, f"python -m tests.zoo: error: {args.bot} needs --redis-url\n")
    if not args.path.startswith("/") or not 0 < args.drain_per_s <= 10_000:
        parser.exit(
            64, "python -m tests.zoo: error: --path must start with '/', --drain-per-s be in (0, 10000]\n"
        )
    settings = BotSettings(
        auth_token=token,
        public_url=args.public_url or f"http://{args.host}:{args.port}{args.path}",
        path=args.path,
        redis_url=args.redis_url,
        drain_per_s=args.drain_per_s,
        stall_s=args.stall_s,
    )
    return serve(bot_class(settings), args.host, args.port)


__all__ = [
    "DEFAULT_PATH",
    "HEALTH_PATH",
    "Bot",
    "BotSettings",
    "Reply",
    "Request",
    "json_reply",
    "main",
    "serve",
]
