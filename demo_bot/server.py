"""The HTTP server: gevent's pywsgi with TCP_NODELAY on every accepted connection, and clean stop.

pywsgi writes the status line and headers in one ``send`` and the body in another. With Nagle's
algorithm on, the second small segment waits for the client's ACK of the first, and a keep-alive
client delays that ACK by up to ~40 ms: every response would take 40 ms. TCP_NODELAY removes the
stall (``tests/test_demo_bot.py`` keeps a low-latency test that proves it).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
from typing import Any

import gevent
import gevent.event
from gevent.pywsgi import WSGIServer

from demo_bot.app import BotApp
from demo_bot.config import BotConfig, redacted_url

log = logging.getLogger("demo_bot")

STOP_TIMEOUT_S = 1.0
"""How long in-flight requests (and idle keep-alive connections) get at shutdown."""
WORKER_GRACE_S = 1.5
"""How long workers get to finish their message at shutdown before it goes back to the queue."""


class NoDelayWSGIServer(WSGIServer):
    """``WSGIServer`` that sets TCP_NODELAY on each accepted socket before handling it."""

    def handle(self, sock: socket.socket, address: Any) -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)


def serve(config: BotConfig) -> int:
    """Run the bot until SIGTERM or SIGINT; returns the exit status (0 on a clean stop)."""
    app = BotApp(config)
    server = NoDelayWSGIServer(
        (config.host, config.port),
        app,
        backlog=config.backlog,
        log=sys.stderr if config.access_log else None,
        error_log=sys.stderr,
    )
    stop_requested = gevent.event.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop_requested.set)
    server.start()
    app.start()
    storage = app.storage.storage.kind
    log.info(
        "demo_bot listening on http://%s:%d%s mode=%s redis=%s storage=%s workers=%d public_url=%s",
        config.host,
        server.server_port,
        config.webhook_path,
        config.mode,
        redacted_url(config.redis_url),
        storage,
        config.workers if config.mode == "optimized" else 0,
        config.public_url or "(from Host header)",
    )
    stop_requested.wait()
    log.info("demo_bot stopping")
    server.stop(timeout=STOP_TIMEOUT_S)
    app.stop(grace_s=WORKER_GRACE_S)
    left = app.health()["queue"]["memory_depth"]
    if left:
        log.warning("%d messages in the in-memory queue were not processed (Redis was down)", left)
    log.info("demo_bot stopped")
    return 0


__all__ = ["NoDelayWSGIServer", "serve"]
