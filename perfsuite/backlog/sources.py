"""Readers of the bot's backlog: its Redis keys, a Prometheus metric, its JSON health.

Each reader has one part per depth it reports (a Redis key each, one metric, one health field) and
reads them all at once: :meth:`Reader.read` returns a depth or a :class:`ReadError` per part, and
never raises for a source that cannot be read. Messages hold no secret: the bot's Redis URL is only
ever named by its environment variable, and URL passwords are replaced by ``***``.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import redis

from perfsuite.backlog.config import (
    REDIS_SCHEMES,
    BacklogConfig,
    HealthSource,
    PrometheusSource,
    RedisKey,
    RedisSource,
)
from perfsuite.backlog.prometheus import parse_exposition, parse_selector
from perfsuite.redact import redact_text

SourceKind = Literal["redis", "prometheus", "health"]
DEFAULT_HEALTH_PATHS: tuple[str, ...] = ("queue.depth", "queue_depth", "backlog")
"""Where a health document's queue depth is looked for when no ``path`` is configured."""
MAX_ANSWER_BYTES = 8 << 20
"""A health or metrics answer larger than this is refused (a read stays bounded)."""
MAX_SCAN_CALLS = 10_000
"""SCAN calls at most per glob pattern and read (each looks at about 1,000 keys)."""


class ReadError(Exception):
    """A source could not be read; the message is for people and holds no secret."""


class Reader(Protocol):
    """Reads one source's parts."""

    @property
    def kind(self) -> SourceKind: ...

    @property
    def labels(self) -> tuple[str, ...]:
        """One label per part: ``redis list zoo:queue``, ``prometheus q{queue="a"}``, ``health URL``."""
        ...

    def read(self) -> list[int | ReadError]:
        """A depth or the reason it could not be read, per part."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Unreadable:
    """A source that cannot be read at all (not set up): every read returns ``reason``."""

    kind: SourceKind
    label: str
    reason: str

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.label,)

    def read(self) -> list[int | ReadError]:
        return [ReadError(self.reason)]

    def close(self) -> None:
        return None


def _get(url: str, timeout_s: float) -> bytes:
    shown = redact_text(url)
    secrets = [url, urlsplit(url).password or ""]
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body: bytes = response.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise ReadError(f"HTTP {exc.code} from {shown}") from None
    except urllib.error.URLError as exc:
        raise ReadError(f"no answer from {shown}: {redact_text(str(exc.reason), secrets)}") from None
    except (OSError, ValueError) as exc:
        raise ReadError(f"no answer from {shown}: {redact_text(str(exc), secrets)}") from None
    if len(body) > MAX_ANSWER_BYTES:
        raise ReadError(f"the answer of {shown} is larger than {MAX_ANSWER_BYTES >> 20} MiB")
    return body


def json_path_value(document: Any, path: str) -> float:
    """The number at dotted ``path`` in ``document`` (a number indexes a list; ``*`` sums over a
    list's or an object's items). KeyError when the path is absent, ValueError when it does not
    lead to numbers."""
    nodes = [document]
    for part in path.split("."):
        found: list[Any] = []
        for node in nodes:
            if part == "*" and isinstance(node, dict | list):
                found += node.values() if isinstance(node, dict) else node
            elif isinstance(node, dict) and part in node:
                found.append(node[part])
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                found.append(node[int(part)])
            else:
                raise KeyError(path)
        nodes = found
    if not all(isinstance(node, int | float) and not isinstance(node, bool) for node in nodes):
        raise ValueError(f"{path} is not a number")
    return float(sum(nodes))


def queue_depth(health: Any, path: str | None = None) -> int | None:
    """The queue depth in a health document (at ``path``, else ``queue.depth``, ``queue_depth`` or
    ``backlog``), or None when it has none."""
    for candidate in (path,) if path else DEFAULT_HEALTH_PATHS:
        try:
            value = json_path_value(health, candidate)
        except (KeyError, ValueError):
            continue
        if math.isfinite(value) and value >= 0:
            return round(value)
    return None


@dataclass(frozen=True)
class HealthReader:
    """The depth in the bot's JSON health document."""

    url: str
    source: HealthSource
    kind: SourceKind = "health"

    @property
    def labels(self) -> tuple[str, ...]:
        path = f" {self.source.path}" if self.source.path else ""
        return (f"health {redact_text(self.url)}{path}",)

    def read(self) -> list[int | ReadError]:
        shown = redact_text(self.url)
        try:
            body = _get(self.url, self.source.timeout_s)
            try:
                document = json.loads(body)
            except ValueError:
                raise ReadError(f"{shown} did not answer JSON") from None
            depth = queue_depth(document, self.source.path)
            if depth is None:
                looked = self.source.path or ", ".join(DEFAULT_HEALTH_PATHS)
                raise ReadError(f"{shown} has no queue depth (no {looked})")
            return [depth]
        except ReadError as exc:
            return [exc]

    def close(self) -> None:
        return None


@dataclass(frozen=True)
class PrometheusReader:
    """The sum of the samples a selector matches in a Prometheus text exposition."""

    url: str
    source: PrometheusSource
    kind: SourceKind = "prometheus"

    @property
    def labels(self) -> tuple[str, ...]:
        return (f"prometheus {self.source.metric}",)

    def read(self) -> list[int | ReadError]:
        selector = parse_selector(self.source.metric)
        shown = redact_text(self.url)
        try:
            text = _get(self.url, self.source.timeout_s).decode("utf-8", "replace")
            try:
                samples = parse_exposition(text)
            except ValueError as exc:
                raise ReadError(f"{shown} is not a Prometheus text exposition: {exc}") from None
            values = [value for name, labels, value in samples if selector.matches(name, labels)]
            if not values:
                same_name = sum(name == selector.name for name, _, _ in samples)
                others = f" ({same_name} sample(s) of {selector.name} with other labels)" if same_name else ""
                raise ReadError(f"no sample of {self.source.metric} at {shown}{others}")
            total = sum(values)
            if not math.isfinite(total) or total < 0:
                raise ReadError(f"{self.source.metric} is {total:g} at {shown}, not a queue depth")
            return [round(total)]
        except ReadError as exc:
            return [exc]

    def close(self) -> None:
        return None


class RedisReader:
    """Lengths of keys in the bot's Redis, one part per configured key (a pattern's keys summed)."""

    kind: SourceKind = "redis"

    def __init__(self, source: RedisSource, environ: Mapping[str, str]) -> None:
        """Connect lazily to the URL in ``environ[source.url_env]`` (a problem is kept, not raised)."""
        self.source = source
        self.labels = tuple(key.label for key in source.keys)
        self._client: redis.Redis | None = None
        self._secrets: list[str] = []
        self._problem: str | None = None
        url = environ.get(source.url_env, "")
        password = urlsplit(url).password if url else None
        self._secrets = [secret for secret in (url, password) if secret]
        if not url:
            self._problem = f"{source.url_env} is not set (it must hold the bot's Redis URL)"
        elif urlsplit(url).scheme not in REDIS_SCHEMES:
            self._problem = f"{source.url_env} must hold a redis://, rediss:// or unix:// URL"
        else:
            try:
                self._client = redis.Redis.from_url(
                    url,
                    socket_timeout=source.timeout_s,
                    socket_connect_timeout=source.timeout_s,
                    decode_responses=True,
                )
            except ValueError as exc:
                self._problem = f"{source.url_env}: {self._redact(str(exc))}"

    def _redact(self, text: str) -> str:
        return redact_text(text, self._secrets)

    def read(self) -> list[int | ReadError]:
        if self._client is None:
            return [ReadError(self._problem or "not connected") for _ in self.labels]
        depths: list[int | ReadError] = []
        for key in self.source.keys:
            try:
                depths.append(self._read_key(self._client, key))
            except ReadError as exc:
                depths.append(exc)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                refused = isinstance(exc, redis.AuthenticationError)
                what = "refused the credentials" if refused else "does not answer"
                failure = ReadError(
                    f"the bot's Redis ({self.source.url_env}) {what}: {self._redact(str(exc))}"
                )
                depths += [failure] * (len(self.source.keys) - len(depths))  # the same for every key left
                break
            except redis.RedisError as exc:
                depths.append(ReadError(self._explain(self._client, key, exc)))
        return depths

    def _read_key(self, client: redis.Redis, key: RedisKey) -> int:
        if key.is_pattern:
            names = sorted(self._expand(client, key))
            with client.pipeline(transaction=False) as pipe:  # one round trip for all the keys
                for name in names:
                    self._length(pipe, name, key.type)
                return sum(int(length) for length in pipe.execute())
        if key.type == "pending":
            return int(client.xpending(key.key, key.group or "")["pending"])
        if key.type == "lag":
            for group in client.xinfo_groups(key.key):
                if group.get("name") == key.group:
                    if group.get("lag") is None:
                        raise ReadError(
                            f"Redis cannot tell group {key.group}'s lag on {key.key} (entries were deleted "
                            "or trimmed); read it as type stream or pending instead"
                        )
                    return int(group["lag"])
            raise ReadError(f"stream {key.key} has no consumer group {key.group}")
        return int(self._length(client, key.key, key.type))

    @staticmethod
    def _length(client: redis.Redis, name: str, key_type: str) -> Any:
        """LLEN, XLEN, ZCARD or SCARD of ``name`` (on a pipeline: queued, the pipeline returned)."""
        read = {"list": client.llen, "stream": client.xlen, "zset": client.zcard, "set": client.scard}
        return read[key_type](name)

    def _expand(self, client: redis.Redis, key: RedisKey) -> set[str]:
        """The keys of ``key.type`` matching the pattern (bounded: at most ``max_pattern_keys``)."""
        found: set[str] = set()
        cursor = 0
        for _ in range(MAX_SCAN_CALLS):
            cursor, names = client.scan(cursor, match=key.key, count=1000, _type=key.type)
            found.update(str(name) for name in names)
            if len(found) > self.source.max_pattern_keys:
                raise ReadError(
                    f"pattern {key.key} matches more than {self.source.max_pattern_keys} keys; narrow it "
                    "or raise target.backlog.redis.max_pattern_keys"
                )
            if cursor == 0:
                return found
        raise ReadError(f"pattern {key.key}: SCAN did not finish after {MAX_SCAN_CALLS} calls")

    def _explain(self, client: redis.Redis, key: RedisKey, exc: redis.RedisError) -> str:
        message = self._redact(str(exc))
        if message.startswith("WRONGTYPE"):
            try:
                held = str(client.type(key.key))
            except redis.RedisError:
                held = "value of another type"
            wanted = "stream" if key.type in ("pending", "lag") else key.type
            return f"key {key.key} holds a {held}, not a {wanted}"
        if message.startswith("NOGROUP"):
            return f"stream {key.key} has no consumer group {key.group} (or the key does not exist)"
        if "no such key" in message.lower():
            return f"no stream {key.key}"
        return f"{key.key}: {message}"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _resolve(url: str, host: str | None) -> str:
    if not url.startswith("/"):
        return url
    if not host:
        raise ReadError(f"{url} is a path, but the target's host is not known; give a full URL")
    return host.rstrip("/") + url


def open_readers(
    config: BacklogConfig, health_url: str | None, host: str | None, environ: Mapping[str, str]
) -> list[Reader]:
    """A reader per configured source; with none configured, the target's ``health_url`` (as before).
    A source that cannot be set up becomes an :class:`Unreadable` saying why."""
    readers: list[Reader] = []
    if config.redis is not None:
        readers.append(RedisReader(config.redis, environ))
    if config.prometheus is not None:
        try:
            readers.append(PrometheusReader(_resolve(config.prometheus.url, host), config.prometheus))
        except ReadError as exc:
            readers.append(Unreadable("prometheus", f"prometheus {config.prometheus.metric}", str(exc)))
    health = config.health
    if health is None and not config.has_sources:
        health = HealthSource()  # no source named: the target's health URL, as before
    if health is not None:
        url = health.url or health_url
        try:
            if url is None:
                raise ReadError("the target has no health URL (target.health_path is null)")
            readers.append(HealthReader(_resolve(url, host), health))
        except ReadError as exc:
            readers.append(Unreadable("health", f"health {redact_text(url or '')}".rstrip(), str(exc)))
    return readers


__all__ = [
    "DEFAULT_HEALTH_PATHS",
    "MAX_ANSWER_BYTES",
    "HealthReader",
    "PrometheusReader",
    "ReadError",
    "Reader",
    "RedisReader",
    "SourceKind",
    "Unreadable",
    "json_path_value",
    "open_readers",
    "queue_depth",
]
