"""The watch after the load: read the backlog when the load stopped, then poll until it is empty
(and the bot process idle) or the drain timeout passes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from perfsuite.activity import ProcessConfig, ProcessWatch, find_process
from perfsuite.backlog.config import REDIS_SCHEMES, BacklogConfig
from perfsuite.backlog.result import UNKNOWN, Backlog, SourceDepth
from perfsuite.backlog.sources import Reader, ReadError, open_readers
from perfsuite.errors import ConfigError


@dataclass
class _Part:
    """One part of one source (a Redis key, a metric, a health field) over the watch."""

    label: str
    reader: Reader
    first: int | None = None
    last: int | None = None
    error: str | None = None
    failed_reads: int = 0

    def value(self) -> SourceDepth:
        return SourceDepth(
            source=self.label,
            kind=self.reader.kind,
            depth_at_stop=self.first,
            depth_at_end=self.last,
            error=self.error,
            failed_reads=self.failed_reads,
        )


def _read_all(parts: Sequence[_Part], first: bool) -> None:
    """Read each source once and update its parts. The first read (when the load stopped) decides
    which parts count; later reads skip sources without one and never revive a part."""
    by_reader: dict[int, list[_Part]] = {}
    for part in parts:
        by_reader.setdefault(id(part.reader), []).append(part)
    for own in by_reader.values():
        if not first and all(part.first is None for part in own):
            continue
        for part, depth in zip(own, own[0].reader.read(), strict=True):
            if not first and part.first is None:
                continue
            if isinstance(depth, ReadError):
                part.error = str(depth)
                part.failed_reads += 0 if first else 1
                continue
            if first:
                part.first = depth
            part.last = depth


def drain_rate(points: Sequence[tuple[float, int]]) -> float | None:
    """Tasks per second leaving the backlog: minus the slope of the least-squares line through the
    (seconds, depth) ``points``; None with fewer than two distinct times."""
    if len(points) < 2:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_d = sum(d for _, d in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread <= 0:
        return None
    slope = sum((t - mean_t) * (d - mean_d) for t, d in points) / spread
    return round(-slope, 3)


def watch_backlog(
    health_url: str | None,
    timeout_s: float,
    config: BacklogConfig | None = None,
    *,
    host: str | None = None,
    pid: int | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Backlog:
    """Read the backlog now (the load just stopped), then every ``config.poll_s`` seconds until it is
    empty and the bot process idle, or ``timeout_s`` seconds passed.

    ``health_url`` is the target's health endpoint (read when ``config`` names no source), ``host``
    its base URL (for sources given as a path such as ``/metrics``), ``pid`` a bot process the suite
    started itself (watched when ``config.process`` is not set), ``environ`` (default ``os.environ``)
    holds the bot's Redis URL. Never raises for a source that cannot be read: the result says why.
    """
    config = config or BacklogConfig()
    environment = os.environ if environ is None else environ
    process_config = config.process or (ProcessConfig(pid=pid) if pid is not None else None)
    readers = open_readers(config, health_url, host, environment)
    try:
        process = ProcessWatch(process_config, clock) if process_config is not None else None
        started = clock()
        parts = [_Part(label, reader) for reader in readers for label in reader.labels]
        _read_all(parts, first=True)
        counted = [part for part in parts if part.first is not None]
        points: list[tuple[float, int]] = []
        drain_s: float | None = None
        if counted:
            points.append((clock() - started, sum(part.last or 0 for part in counted)))
            drain_s = 0.0 if points[-1][1] == 0 else None
        deadline = started + timeout_s
        while (counted and drain_s is None) or (process is not None and not process.done):
            left_s = deadline - clock()
            if left_s <= 0:
                break
            sleep(min(config.poll_s, left_s))
            if process is not None:
                process.sample()
            if counted and drain_s is None:
                _read_all(parts, first=False)
                points.append((clock() - started, sum(part.last or 0 for part in counted)))
                if points[-1][1] == 0:
                    drain_s = round(points[-1][0], 3)
        sources = tuple(part.value() for part in parts)
        activity = process.result() if process is not None else None
    finally:
        for reader in readers:
            reader.close()
    if not counted:
        return Backlog(
            supported=False,
            timeout_s=timeout_s,
            reason=_unknown_reason(config, sources),
            sources=sources,
            activity=activity,
        )
    return Backlog(
        supported=True,
        depth_at_stop=points[0][1],
        depth_at_end=points[-1][1],
        drain_s=drain_s,
        timeout_s=timeout_s,
        sources=sources,
        drain_rate_per_s=drain_rate(points),
        watched_s=round(points[-1][0], 3),
        reads=len(points),
        activity=activity,
    )


def _unknown_reason(config: BacklogConfig, sources: Sequence[SourceDepth]) -> str:
    failures = "; ".join(f"{source.source}: {source.error}" for source in sources if source.error)
    if not config.has_sources:
        return f"{UNKNOWN} ({failures})" if failures else UNKNOWN
    return f"backlog unknown: no backlog source could be read ({failures}); fix target.backlog"


def preflight_backlog(config: BacklogConfig, environ: Mapping[str, str] | None = None) -> None:
    """Before the load, fail on what would surely leave the watch blind: the bot's Redis URL variable
    unset or not a Redis URL (ConfigError, exit 64), the bot process absent (ServiceUnavailable,
    exit 69) or not singled out by its name (ConfigError)."""
    environment = os.environ if environ is None else environ
    if config.redis is not None:
        name = config.redis.url_env
        url = environment.get(name, "")
        if not url:
            raise ConfigError(
                f"target.backlog.redis.url_env: {name} is not set; set it to the bot's Redis URL"
            )
        if urlsplit(url).scheme not in REDIS_SCHEMES:
            raise ConfigError(f"{name}: must be a redis://, rediss:// or unix:// URL")
    if config.process is not None:
        find_process(config.process)


__all__ = ["drain_rate", "preflight_backlog", "watch_backlog"]
