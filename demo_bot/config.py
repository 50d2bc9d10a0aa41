"""The bot's one configuration object, built once from the command line and the environment.

Secrets come from the environment only (``TWILIO_AUTH_TOKEN``; ``DEMO_BOT_REDIS_URL`` may hold a
password), so they never show in ``ps``; they are kept out of ``repr`` and out of the logs.
A bad value exits with status 64 and a message naming the flag and what is allowed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NoReturn
from urllib.parse import urlsplit

EXIT_USAGE = 64
"""Exit status for a bad command line or environment (sysexits EX_USAGE)."""

Mode = Literal["optimized", "legacy"]

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True, slots=True)
class WorkProfile:
    """Simulated analysis time per message kind, in milliseconds (time spent waiting on an API)."""

    text_ms: float = 20.0
    document_ms: float = 200.0
    image_ms: float = 100.0
    other_ms: float = 20.0

    def for_kind(self, kind: str) -> float:
        """Milliseconds of work for a message of ``kind`` (text, document, image, or anything else)."""
        if kind == "text":
            return self.text_ms
        if kind == "document":
            return self.document_ms
        if kind == "image":
            return self.image_ms
        return self.other_ms


@dataclass(frozen=True, slots=True)
class BotConfig:
    """Everything the bot needs to run; built by :func:`parse_config`."""

    auth_token: str = field(repr=False)
    """Twilio auth token: the HMAC key of ``X-Twilio-Signature``. Never logged."""
    redis_url: str = field(repr=False)
    """Redis URL (may carry a password). Never logged; see :func:`redacted_url`."""
    host: str = "127.0.0.1"
    port: int = 8000
    mode: Mode = "optimized"
    """``optimized`` (queue + workers, pool, breaker, degradation) or ``legacy`` (the "before")."""
    webhook_path: str = "/webhook/whatsapp"
    public_url: str | None = None
    """Full public URL of the webhook as Twilio signs it; None: ``http://{Host}{path}{?query}``."""
    key_prefix: str = "demo_bot:"
    """Every Redis key the bot touches starts with this."""
    redis_max_connections: int = 20
    redis_pool_timeout_s: float = 1.0
    """How long a request waits for a free pooled connection before answering 503."""
    redis_connect_timeout_s: float = 0.25
    redis_socket_timeout_s: float = 0.25
    redis_retries: int = 1
    redis_backoff_base_s: float = 0.01
    redis_backoff_cap_s: float = 0.1
    breaker_failure_threshold: int = 5
    """Consecutive Redis failures that open the circuit breaker."""
    breaker_reset_s: float = 5.0
    """Seconds the breaker stays open before one trial call (half-open)."""
    rate_limit_per_min: int = 120
    """Messages per sender per fixed 60 s window; 0 turns the limit off."""
    dedupe_ttl_s: int = 86_400
    queue_max: int = 10_000
    """Queue depth at which new messages are refused with 503 (Redis and memory queue alike)."""
    retry_after_s: int = 1
    """Retry-After (seconds) sent with 503 answers."""
    workers: int = 8
    """Worker greenlets analysing queued messages; 0 only accepts (the queue fills)."""
    work: WorkProfile = field(default_factory=WorkProfile)
    poll_interval_s: float = 0.1
    """How often an idle worker looks at the Redis queue when nothing woke it."""
    sqlite_path: str | None = None
    """SQLite file; None: a file in a fresh temporary directory removed at exit."""
    db_url: str | None = field(default=None, repr=False)
    """``postgresql://...``: store results in PostgreSQL instead of SQLite. Never logged."""
    db_table: str = "demo_bot_results"
    db_pool_size: int = 4
    db_timeout_s: float = 2.0
    storage_retries: int = 3
    """Store attempts per message before it goes back to the queue."""
    storage_backoff_base_s: float = 0.05
    storage_backoff_cap_s: float = 2.0
    storage_probe_interval_s: float = 5.0
    max_body_bytes: int = 65_536
    backlog: int = 1024
    access_log: bool = False
    slowdown: float = 1.0
    """Multiplies each webhook answer's in-request time (1.3 = 30% slower), by waiting
    ``(slowdown - 1) x`` the time the request took before answering: a known slowdown for
    regression-gate studies. 1.0: none."""
    extra_latency_s: float = 0.0
    """A fixed wait added to every webhook answer (seconds); 0: none."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser that exits 64 (EX_USAGE) on a bad command line instead of 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m demo_bot`` command line."""
    defaults = BotConfig(auth_token="", redis_url="")
    work = WorkProfile()
    p = _Parser(
        prog="python -m demo_bot",
        description=(
            "Reference WhatsApp webhook bot (job-offer reality checker) for perfsuite. "
            "Secrets come from the environment: TWILIO_AUTH_TOKEN (required), "
            "DEMO_BOT_REDIS_URL (or --redis-url), DEMO_BOT_PUBLIC_URL, DEMO_BOT_DB_URL."
        ),
    )
    add = p.add_argument
    add("--host", default=defaults.host)
    add("--port", type=int, default=defaults.port)
    add("--mode", choices=["optimized", "legacy"], default=defaults.mode)
    add("--webhook-path", default=defaults.webhook_path)
    add("--public-url", default=None, help="full public webhook URL Twilio signs (env DEMO_BOT_PUBLIC_URL)")
    add("--redis-url", default=None, help="env DEMO_BOT_REDIS_URL is preferred (a password would show in ps)")
    add("--key-prefix", default=defaults.key_prefix)
    add("--redis-max-connections", type=int, default=defaults.redis_max_connections)
    add("--redis-pool-timeout-ms", type=float, default=defaults.redis_pool_timeout_s * 1000)
    add("--redis-connect-timeout-ms", type=float, default=defaults.redis_connect_timeout_s * 1000)
    add("--redis-socket-timeout-ms", type=float, default=defaults.redis_socket_timeout_s * 1000)
    add("--redis-retries", type=int, default=defaults.redis_retries)
    add("--breaker-failures", type=int, default=defaults.breaker_failure_threshold)
    add("--breaker-reset-s", type=float, default=defaults.breaker_reset_s)
    add("--rate-limit-per-min", type=int, default=defaults.rate_limit_per_min, help="0 disables")
    add("--dedupe-ttl-s", type=int, default=defaults.dedupe_ttl_s)
    add("--queue-max", type=int, default=defaults.queue_max)
    add("--retry-after-s", type=int, default=defaults.retry_after_s)
    add("--workers", type=int, default=defaults.workers)
    add("--work-ms-text", type=float, default=work.text_ms)
    add("--work-ms-document", type=float, default=work.document_ms)
    add("--work-ms-image", type=float, default=work.image_ms)
    add("--work-ms-other", type=float, default=work.other_ms)
    add("--poll-interval-ms", type=float, default=defaults.poll_interval_s * 1000)
    add("--sqlite-path", default=None)
    add("--db-url", default=None, help="postgresql://... (env DEMO_BOT_DB_URL is preferred)")
    add("--db-table", default=defaults.db_table)
    add("--db-pool-size", type=int, default=defaults.db_pool_size)
    add("--db-timeout-ms", type=float, default=defaults.db_timeout_s * 1000)
    add("--storage-retries", type=int, default=defaults.storage_retries)
    add("--storage-probe-interval-s", type=float, default=defaults.storage_probe_interval_s)
    add("--backlog", type=int, default=defaults.backlog)
    add("--access-log", action="store_true", help="log every request (off: it costs latency)")
    add(
        "--slowdown",
        type=float,
        default=defaults.slowdown,
        help="multiply each webhook answer's in-request time by this (>= 1; 1.3 = 30%% slower)",
    )
    add(
        "--extra-latency-ms",
        type=float,
        default=defaults.extra_latency_s * 1000,
        help="wait this many milliseconds more before each webhook answer",
    )
    return p


def parse_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> BotConfig:
    """Parse ``argv`` and ``environ`` into a validated :class:`BotConfig`; exit 64 on a bad value."""
    env = os.environ if environ is None else environ
    parser = build_parser()
    ns = parser.parse_args(argv)

    def fail(message: str) -> NoReturn:
        parser.error(message)

    token = env.get("TWILIO_AUTH_TOKEN", "")
    if not token:
        fail("TWILIO_AUTH_TOKEN is not set: the bot cannot validate X-Twilio-Signature without it")
    redis_url = ns.redis_url or env.get("DEMO_BOT_REDIS_URL", "")
    if not redis_url:
        fail("no Redis: set DEMO_BOT_REDIS_URL or --redis-url (redis://host:port/db)")
    if urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        fail("--redis-url / DEMO_BOT_REDIS_URL must start with redis://, rediss:// or unix://")
    db_url = ns.db_url or env.get("DEMO_BOT_DB_URL") or None
    if db_url is not None and urlsplit(db_url).scheme not in ("postgresql", "postgres"):
        fail("--db-url must be a postgresql:// URL (leave it out for SQLite)")
    public_url = ns.public_url or env.get("DEMO_BOT_PUBLIC_URL") or None
    if public_url is not None and urlsplit(public_url).scheme not in ("http", "https"):
        fail(f"--public-url must be an http:// or https:// URL, got {public_url!r}")
    if not ns.webhook_path.startswith("/"):
        fail(f"--webhook-path must start with '/', got {ns.webhook_path!r}")
    if not _TABLE_NAME.match(ns.db_table):
        fail(f"--db-table must be a plain SQL identifier (letters, digits, _), got {ns.db_table!r}")
    if not ns.key_prefix:
        fail("--key-prefix must not be empty (the bot writes only under its prefix)")
    for flag, value, low in [
        ("--port", ns.port, 0),
        ("--redis-max-connections", ns.redis_max_connections, 1),
        ("--redis-retries", ns.redis_retries, 0),
        ("--breaker-failures", ns.breaker_failures, 1),
        ("--rate-limit-per-min", ns.rate_limit_per_min, 0),
        ("--dedupe-ttl-s", ns.dedupe_ttl_s, 1),
        ("--queue-max", ns.queue_max, 1),
        ("--retry-after-s", ns.retry_after_s, 1),
        ("--workers", ns.workers, 0),
        ("--db-pool-size", ns.db_pool_size, 1),
        ("--storage-retries", ns.storage_retries, 1),
        ("--backlog", ns.backlog, 1),
    ]:
        if value < low:
            fail(f"{flag} must be >= {low}, got {value}")
    for flag, fvalue in [
        ("--redis-pool-timeout-ms", ns.redis_pool_timeout_ms),
        ("--redis-connect-timeout-ms", ns.redis_connect_timeout_ms),
        ("--redis-socket-timeout-ms", ns.redis_socket_timeout_ms),
        ("--breaker-reset-s", ns.breaker_reset_s),
        ("--work-ms-text", ns.work_ms_text),
        ("--work-ms-document", ns.work_ms_document),
        ("--work-ms-image", ns.work_ms_image),
        ("--work-ms-other", ns.work_ms_other),
        ("--poll-interval-ms", ns.poll_interval_ms),
        ("--db-timeout-ms", ns.db_timeout_ms),
        ("--storage-probe-interval-s", ns.storage_probe_interval_s),
        ("--extra-latency-ms", ns.extra_latency_ms),
    ]:
        if fvalue < 0:
            fail(f"{flag} must be >= 0, got {fvalue}")
    if not 1.0 <= ns.slowdown <= 100.0:
        fail(f"--slowdown must be between 1 and 100, got {ns.slowdown}")

    return BotConfig(
        auth_token=token,
        redis_url=redis_url,
        host=ns.host,
        port=ns.port,
        mode=ns.mode,
        webhook_path=ns.webhook_path,
        public_url=public_url,
        key_prefix=ns.key_prefix,
        redis_max_connections=ns.redis_max_connections,
        redis_pool_timeout_s=ns.redis_pool_timeout_ms / 1000,
        redis_connect_timeout_s=ns.redis_connect_timeout_ms / 1000,
        redis_socket_timeout_s=ns.redis_socket_timeout_ms / 1000,
        redis_retries=ns.redis_retries,
        breaker_failure_threshold=ns.breaker_failures,
        breaker_reset_s=ns.breaker_reset_s,
        rate_limit_per_min=ns.rate_limit_per_min,
        dedupe_ttl_s=ns.dedupe_ttl_s,
        queue_max=ns.queue_max,
        retry_after_s=ns.retry_after_s,
        workers=ns.workers,
        work=WorkProfile(ns.work_ms_text, ns.work_ms_document, ns.work_ms_image, ns.work_ms_other),
        poll_interval_s=ns.poll_interval_ms / 1000,
        sqlite_path=ns.sqlite_path,
        db_url=db_url,
        db_table=ns.db_table,
        db_pool_size=ns.db_pool_size,
        db_timeout_s=ns.db_timeout_ms / 1000,
        storage_retries=ns.storage_retries,
        storage_probe_interval_s=ns.storage_probe_interval_s,
        backlog=ns.backlog,
        access_log=ns.access_log,
        slowdown=ns.slowdown,
        extra_latency_s=ns.extra_latency_ms / 1000,
    )


def redacted_url(url: str) -> str:
    """``scheme://host:port/path`` of ``url`` without user, password or query (safe to log)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


__all__ = ["EXIT_USAGE", "BotConfig", "Mode", "WorkProfile", "build_parser", "parse_config", "redacted_url"]
