"""``target.backlog``: where the bot keeps its backlog (its Redis keys, a Prometheus metric, its JSON
health) and its process on this machine. Frozen models, unknown keys refused, each bad value named
with its reason when scenarios.yaml is loaded."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

from perfsuite.activity import ProcessConfig
from perfsuite.backlog.prometheus import parse_selector
from perfsuite.redact import redact_text

KeyType = Literal["list", "stream", "zset", "set", "pending", "lag"]
"""How a key's depth is read: LLEN, XLEN, ZCARD, SCARD, XPENDING's count for a consumer group, or
the group's lag (entries not yet delivered to it, XINFO GROUPS, Redis 7)."""
REDIS_SCHEMES = ("redis", "rediss", "unix")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _http_url_or_path(value: str | None) -> str | None:
    """An http(s) URL, or a path (``/metrics``) on the target's host."""
    if value is None or value.startswith("/"):
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "must be an http(s) URL (http://127.0.0.1:8000/metrics) or a path on the target host "
            f"(/metrics), got {redact_text(value)!r}"
        )
    return value


class RedisKey(_Section):
    """One key (or glob pattern) in the bot's Redis and what kind of queue it is."""

    key: str = Field(min_length=1)
    """The key; with ``*``, ``?`` or ``[`` a glob pattern (list, stream, zset and set only; SCAN)."""
    type: KeyType = "list"
    group: str | None = Field(None, min_length=1)
    """The stream's consumer group (``pending`` and ``lag`` only)."""

    @property
    def is_pattern(self) -> bool:
        """True when ``key`` is a glob pattern."""
        return re.search(r"[*?\[]", self.key) is not None

    @property
    def label(self) -> str:
        """``redis list zoo:queue``, ``redis pending jobs (group workers)``."""
        group = f" (group {self.group})" if self.group else ""
        return f"redis {self.type} {self.key}{group}"

    @model_validator(mode="after")
    def _group_fits_type(self) -> RedisKey:
        grouped = self.type in ("pending", "lag")
        if grouped and self.group is None:
            raise ValueError(f"type {self.type} needs group: the name of the stream's consumer group")
        if not grouped and self.group is not None:
            raise ValueError(f"group is only for type pending or lag, not {self.type}")
        if grouped and self.is_pattern:
            raise ValueError("glob patterns (*, ?, [) are for list, stream, zset and set keys only")
        return self


class RedisSource(_Section):
    """``target.backlog.redis``: queues kept in the bot's own Redis."""

    url_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Name of the environment variable holding the bot's Redis URL (a secret: never in the file)."""
    keys: tuple[RedisKey, ...] = Field(min_length=1)
    max_pattern_keys: int = Field(1000, ge=1, le=100_000)
    """A glob pattern matching more keys than this is an error (narrow the pattern)."""
    timeout_s: float = Field(2.0, gt=0, le=60)
    """Connect and read timeout, seconds."""


class PrometheusSource(_Section):
    """``target.backlog.prometheus``: a queue-length metric the bot (or its exporter) exposes."""

    url: str
    """The metrics URL (http(s)), or a path on the target host such as ``/metrics``."""
    metric: str
    """Metric name with optional label matchers: ``celery_queue_length{queue="default"}``; the values
    of all matching samples are summed."""
    timeout_s: float = Field(2.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url_or_path(value) or value

    @field_validator("metric")
    @classmethod
    def _selector(cls, value: str) -> str:
        parse_selector(value)
        return value

    @field_serializer("url", when_used="json")
    def _redacted(self, value: str) -> str:
        return redact_text(value)  # the config snapshot stored with each run holds no password


class HealthSource(_Section):
    """``target.backlog.health``: the bot's JSON health endpoint."""

    url: str | None = None
    """The health URL (http(s)) or a path on the target host; None: the target's (``target.health_path``)."""
    path: str | None = Field(None, pattern=r"^[^.\s]+(\.[^.\s]+)*$")
    """Dotted path to the depth (``stats.queue.size``; a number indexes a list, ``*`` sums over all
    items); None tries ``queue.depth``, ``queue_depth`` and ``backlog``."""
    timeout_s: float = Field(2.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _http_url_or_path(value)

    @field_serializer("url", when_used="json")
    def _redacted(self, value: str | None) -> str | None:
        return None if value is None else redact_text(value)


class BacklogConfig(_Section):
    """``target.backlog``: where the bot keeps its backlog, and its process on this machine."""

    redis: RedisSource | None = None
    prometheus: PrometheusSource | None = None
    health: HealthSource | None = None
    """With no source at all, the target's health URL is read as ``health: {}`` would."""
    process: ProcessConfig | None = None
    """The bot's process on this machine: its CPU is sampled over the watch."""
    poll_s: float = Field(0.5, gt=0, le=60)
    """Seconds between two reads of the backlog (and CPU samples)."""

    @property
    def has_sources(self) -> bool:
        """True when at least one backlog source is configured."""
        return any(source is not None for source in (self.redis, self.prometheus, self.health))


__all__ = [
    "REDIS_SCHEMES",
    "BacklogConfig",
    "HealthSource",
    "KeyType",
    "PrometheusSource",
    "RedisKey",
    "RedisSource",
]
