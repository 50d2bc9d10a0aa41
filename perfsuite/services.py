"""Preflight and embedded defaults: find (or start) the collector's Redis and the target bot.

Everything started here is registered on an :class:`contextlib.ExitStack` and stops when the
run ends, whatever happened.

With ``faults_proxy`` (the capacity test), the embedded demo bot reaches its dependencies through
an embedded fault proxy (``perfsuite chaos-proxy``, :class:`FaultTopology`): its private Redis as
proxy ``redis``, and, when ``DEMO_BOT_DB_URL`` names a PostgreSQL server, that database as proxy
``database``. Disabling a proxy then really cuts the bot off its dependency.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

from perfsuite.collector import replay_spill
from perfsuite.config import SuiteConfig, redact_url
from perfsuite.embedded import start_demo_bot, start_redis
from perfsuite.errors import ConfigError, ServiceUnavailable

logger = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
STATE_DIR = Path(".perfsuite")
"""Local state: embedded Redis data (run history), logs, spill files."""
DB_URL_ENV = "DEMO_BOT_DB_URL"
"""The embedded demo bot's PostgreSQL (``postgresql://...``); unset: it stores in SQLite."""


@dataclass(frozen=True, slots=True)
class FaultTopology:
    """The embedded demo bot's dependencies behind the embedded fault proxy."""

    api_url: str
    """The fault proxy's Toxiproxy-compatible API."""
    proxies: tuple[str, ...]
    """Its proxies: ``redis``, and ``database`` when the bot stores in PostgreSQL."""
    database: str
    """The bot's store: ``sqlite`` or ``postgresql``."""
    redis_url: str = field(repr=False)
    """The bot's Redis itself, not through the proxy (``redis_pause`` windows pause it)."""


@dataclass(frozen=True, slots=True)
class Target:
    """The bot under test as the run sees it."""

    host: str
    """Base URL Locust connects to."""
    auth_token: str
    embedded: bool
    """True when the suite started the demo bot itself."""
    health_url: str | None
    pid: int | None = None
    """The bot's process id when the suite started it (its CPU is watched after the load)."""
    faults: FaultTopology | None = None
    """The embedded bot's dependencies behind the embedded fault proxy (``faults_proxy``)."""

    def __repr__(self) -> str:  # the token stays out of logs
        return f"Target(host={self.host!r}, embedded={self.embedded})"


def ping_redis(url: str, timeout_s: float = 2.0) -> bool:
    """True when the Redis at ``url`` answers PING within ``timeout_s`` seconds."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def collector_redis(
    config: SuiteConfig,
    stack: contextlib.ExitStack,
    state_dir: Path = STATE_DIR,
    default_url: str = DEFAULT_REDIS_URL,
) -> str:
    """URL of the collector's Redis: the configured one (it must answer, else exit 69), the
    default address if a Redis answers there, else a private embedded one keeping its data in
    ``state_dir/redis`` so run history persists. Intervals an earlier run had to spill to disk
    (Redis was away at its end) are written now."""
    url = _collector_redis_url(config, stack, state_dir, default_url)
    spill_dir = config.collector.spill_dir
    if spill_dir.is_dir() and any(spill_dir.iterdir()):
        client = redis.Redis.from_url(url)
        try:
            replayed = replay_spill(client, spill_dir)
        finally:
            client.close()
        if replayed.entries:
            logger.warning("collector: wrote %d spilled entries from %s", replayed.entries, spill_dir)
    return url


def _collector_redis_url(
    config: SuiteConfig, stack: contextlib.ExitStack, state_dir: Path, default_url: str
) -> str:
    configured = config.collector_redis_url
    if configured:
        if not ping_redis(configured):
            source = "REDIS_URL" if config.secrets.redis_url else f"{config.source}: redis.url"
            raise ServiceUnavailable(
                f"{source}: Redis at {redact_url(configured)} does not answer; start it or fix the URL"
            )
        return configured
    if ping_redis(default_url, timeout_s=0.5):
        return default_url
    server = start_redis(data_dir=state_dir / "redis")
    stack.callback(server.stop)
    return server.url


def _http_answers(url: str, timeout_s: float) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP status means a server is there
    except (OSError, ValueError):
        return False


def _tcp_answers(url: str, timeout_s: float) -> bool:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def resolve_target(
    config: SuiteConfig,
    stack: contextlib.ExitStack,
    host: str | None = None,
    state_dir: Path = STATE_DIR,
    demo_bot_args: tuple[str, ...] = (),
    *,
    faults_proxy: bool = False,
    environ: dict[str, str] | None = None,
) -> Target:
    """The bot to load: ``host`` (or ``target.host``), which must answer, else the demo bot.

    A given host needs TWILIO_AUTH_TOKEN (exit 64 without it: unsigned traffic would only test
    the bot's 403 path). The embedded demo bot gets a fresh random token and its own private
    Redis, so its traffic never mixes with the collector's; with ``faults_proxy`` it reaches that
    Redis (and its PostgreSQL, see :data:`DB_URL_ENV` in ``environ``, default ``os.environ``)
    through an embedded fault proxy (:class:`FaultTopology`).
    """
    host = host or config.target.host
    if host:
        if not _tcp_answers(host, timeout_s=3.0):
            raise ServiceUnavailable(f"target host {host} does not answer (connection refused or timed out)")
        if not config.auth_token:
            raise ConfigError(
                "TWILIO_AUTH_TOKEN: not set; it is needed to sign requests for the target host "
                f"{host} (use the bot's Twilio auth token)"
            )
        health = host.rstrip("/") + config.target.health_path if config.target.health_path else None
        return Target(host=host.rstrip("/"), auth_token=config.auth_token, embedded=False, health_url=health)
    bot_redis = start_redis()
    stack.callback(bot_redis.stop)
    token = secrets.token_hex(16)
    redis_url, topology = bot_redis.url, None
    bot_env: dict[str, str] = {}
    if faults_proxy:
        redis_url, bot_env, topology = _behind_fault_proxy(bot_redis.url, stack, state_dir, environ)
    bot = start_demo_bot(
        redis_url,
        token,
        mode=config.target.demo_bot_mode,
        log_dir=state_dir / "logs",
        extra_args=("--webhook-path", config.target.webhook_path, *demo_bot_args),
        env=bot_env,
    )
    stack.callback(bot.stop)
    return Target(
        host=bot.url,
        auth_token=token,
        embedded=True,
        health_url=bot.url + "/health",
        pid=bot.process.pid,
        faults=topology,
    )


def _tcp_address(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _with_address(url: str, host: str, port: int) -> str:
    """``url`` pointed at ``host:port`` (its user and password kept)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _behind_fault_proxy(
    redis_url: str, stack: contextlib.ExitStack, state_dir: Path, environ: dict[str, str] | None
) -> tuple[str, dict[str, str], FaultTopology]:
    """Start the embedded fault proxy with a ``redis`` proxy (and a ``database`` one for a PostgreSQL
    :data:`DB_URL_ENV`); the bot's Redis URL and environment through it, and the topology."""
    from perfsuite.faults.api import start_chaos_proxy  # gevent's server only where it is needed
    from perfsuite.faults.client import ToxiproxyClient

    env = os.environ if environ is None else environ
    db_url = env.get(DB_URL_ENV) or None
    if db_url is not None:
        scheme = urlsplit(db_url).scheme
        if scheme not in ("postgresql", "postgres"):
            raise ConfigError(
                f"{DB_URL_ENV}: must be a postgresql:// URL, got a {scheme or 'schemeless'} one"
            )
        db_host, db_port = _tcp_address(db_url, 5432)
        if not _tcp_answers(f"tcp://{db_host}:{db_port}", timeout_s=3.0):
            raise ServiceUnavailable(
                f"{DB_URL_ENV}: PostgreSQL at {db_host}:{db_port} does not answer; start it or unset "
                f"{DB_URL_ENV} (the demo bot then stores in SQLite)"
            )
    log_dir = state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    proxy = start_chaos_proxy(log_path=log_dir / f"chaos-proxy-{secrets.token_hex(3)}.log")
    stack.callback(proxy.stop)
    client = ToxiproxyClient(proxy.url)
    redis_host, redis_port = _tcp_address(redis_url, 6379)
    listen = client.create_proxy("redis", "127.0.0.1:0", f"{redis_host}:{redis_port}").listen_port
    bot_env: dict[str, str] = {}
    names = ["redis"]
    if db_url is not None:
        db_listen = client.create_proxy("database", "127.0.0.1:0", f"{db_host}:{db_port}").listen_port
        bot_env[DB_URL_ENV] = _with_address(db_url, "127.0.0.1", db_listen)
        names.append("database")
    topology = FaultTopology(
        api_url=proxy.url,
        proxies=tuple(names),
        database="postgresql" if db_url is not None else "sqlite",
        redis_url=redis_url,
    )
    return _with_address(redis_url, "127.0.0.1", listen), bot_env, topology


__all__ = [
    "DB_URL_ENV",
    "DEFAULT_REDIS_URL",
    "STATE_DIR",
    "FaultTopology",
    "Target",
    "collector_redis",
    "ping_redis",
    "resolve_target",
]
