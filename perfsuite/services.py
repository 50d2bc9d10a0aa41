"""Preflight and embedded defaults: find (or start) the collector's Redis and the target bot.

Everything started here is registered on an :class:`contextlib.ExitStack` and stops when the
run ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import redis

from perfsuite.collector import replay_spill
from perfsuite.config import SuiteConfig, redact_url
from perfsuite.embedded import start_demo_bot, start_redis
from perfsuite.errors import ConfigError, ServiceUnavailable

logger = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
STATE_DIR = Path(".perfsuite")
"""Local state: embedded Redis data (run history), logs, spill files."""


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
) -> Target:
    """The bot to load: ``host`` (or ``target.host``), which must answer, else the demo bot.

    A given host needs TWILIO_AUTH_TOKEN (exit 64 without it: unsigned traffic would only test
    the bot's 403 path). The embedded demo bot gets a fresh random token and its own private
    Redis, so its traffic never mixes with the collector's.
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
    bot = start_demo_bot(
        bot_redis.url,
        token,
        mode=config.target.demo_bot_mode,
        log_dir=state_dir / "logs",
        extra_args=("--webhook-path", config.target.webhook_path, *demo_bot_args),
    )
    stack.callback(bot.stop)
    return Target(
        host=bot.url, auth_token=token, embedded=True, health_url=bot.url + "/health", pid=bot.process.pid
    )


__all__ = ["DEFAULT_REDIS_URL", "STATE_DIR", "Target", "collector_redis", "ping_redis", "resolve_target"]
