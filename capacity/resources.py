"""Resource sampling while the load runs: the bot's process (when it runs here), the machine, the
bot's /health (connection pool, queue, breaker), in one greenlet of the Locust master (or local)
process; each load generator samples itself (``locustfiles/system_capacity.py``, with
:class:`~perfsuite.saturation.SaturationMonitor`).

Nothing here blocks the event loop: CPU is read as CPU time since the previous read
(``psutil``'s ``cpu_times``, ``cpu_percent(interval=None)``), never with ``cpu_percent(interval=1)``
(which sleeps a second: the seed's suite froze its own load generator once a second that way), and
the health request runs on gevent's cooperative sockets with a timeout.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gevent
import gevent.event
import psutil

from perfsuite.backlog import queue_depth

logger = logging.getLogger(__name__)

MB = 1024 * 1024
BOT_PID_ENV = "PERFSUITE_BOT_PID"
"""The bot's process id when it runs on this machine (the Locust master samples its CPU and memory)."""


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """CPU since the previous sample (100 = one core busy) and resident memory of a process tree."""

    cpu_percent: float
    rss_mb: float


class ProcessUsage:
    """CPU and memory of one process (and its children), read without sleeping."""

    def __init__(self, pid: int, children: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.pid = pid
        self.children = children
        self._clock = clock
        self._root = psutil.Process(pid)
        self._cpu_s: dict[int, tuple[psutil.Process, float]] = {}
        self._at: float | None = None
        self.sample()  # the baseline

    def _members(self) -> list[psutil.Process]:
        members = [self._root]
        if self.children:
            with contextlib.suppress(psutil.Error):
                members += self._root.children(recursive=True)
        return members

    def sample(self) -> ProcessSample | None:
        """Usage since the previous call (None: the process is gone or this is the baseline)."""
        now = self._clock()
        used = rss = 0.0
        seen: dict[int, tuple[psutil.Process, float]] = {}
        try:
            for member in self._members():
                try:
                    with member.oneshot():
                        times = member.cpu_times()
                        memory = member.memory_info().rss
                except psutil.NoSuchProcess:
                    if member is self._root:
                        raise
                    continue
                total = times.user + times.system
                known = self._cpu_s.get(member.pid)
                used += max(0.0, total - known[1]) if known is not None and known[0] == member else 0.0
                rss += memory
                seen[member.pid] = (member, total)
        except psutil.Error:
            return None
        self._cpu_s = seen
        previous, self._at = self._at, now
        if previous is None or now <= previous:
            return None
        return ProcessSample(cpu_percent=100.0 * used / (now - previous), rss_mb=rss / MB)


@dataclass(frozen=True, slots=True)
class MachineSample:
    """The whole machine: CPU over every core since the previous sample, memory in use."""

    cpu_percent: float
    memory_percent: float


class MachineUsage:
    """CPU and memory of this machine (``psutil.cpu_percent(interval=None)``: no sleep)."""

    def __init__(self) -> None:
        psutil.cpu_percent(interval=None)  # the baseline

    def sample(self) -> MachineSample:
        """Usage since the previous call."""
        return MachineSample(psutil.cpu_percent(interval=None), psutil.virtual_memory().percent)


@dataclass(frozen=True, slots=True)
class BotHealth:
    """What the bot's /health says about its connection pool, queue and breaker (None: not said)."""

    pool_in_use: int | None = None
    pool_max: int | None = None
    pool_peak_in_use: int | None = None
    queue_depth: int | None = None
    breaker_state: str | None = None
    status: str | None = None

    @property
    def pool_utilization(self) -> float | None:
        """``in_use / max`` when the bot states both (a pool without a bound has none)."""
        if self.pool_in_use is None or not self.pool_max:
            return None
        return self.pool_in_use / self.pool_max


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_health(document: Any) -> BotHealth:
    """The figures of a health document (the demo bot's shape: ``pool.in_use``, ``pool.max``,
    ``pool.peak_in_use``, ``queue.depth``, ``breaker.state``, ``status``; absent ones are None)."""
    if not isinstance(document, dict):
        return BotHealth()
    pool: dict[str, Any] = document["pool"] if isinstance(document.get("pool"), dict) else {}
    breaker: dict[str, Any] = document["breaker"] if isinstance(document.get("breaker"), dict) else {}
    state = breaker.get("state")
    status = document.get("status")
    return BotHealth(
        pool_in_use=_int(pool.get("in_use")),
        pool_max=_int(pool.get("max")),
        pool_peak_in_use=_int(pool.get("peak_in_use")),
        queue_depth=queue_depth(document),
        breaker_state=state if isinstance(state, str) else None,
        status=status if isinstance(status, str) else None,
    )


def read_health(url: str, timeout_s: float = 2.0) -> BotHealth | None:
    """GET the bot's health document; None when it does not answer JSON (never raises)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            return parse_health(json.loads(response.read(1 << 20)))
    except urllib.error.HTTPError as exc:
        try:
            return parse_health(json.loads(exc.read(1 << 20)))
        except (OSError, ValueError):
            return None
    except (OSError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class ResourceSample:
    """One sample of everything watched from the master (or local) process."""

    at_s: float
    """Epoch seconds."""
    machine: MachineSample
    bot: ProcessSample | None = None
    health: BotHealth | None = None


class ResourceSampler:
    """Samples the machine, the bot's process (``bot_pid``) and its health (``health_url``) every
    ``interval_s`` in a greenlet, handing each :class:`ResourceSample` to ``on_sample``."""

    def __init__(
        self,
        interval_s: float,
        on_sample: Callable[[ResourceSample], None],
        *,
        bot_pid: int | None = None,
        health_url: str | None = None,
        health_timeout_s: float = 2.0,
    ) -> None:
        self.interval_s = interval_s
        self._on_sample = on_sample
        self._machine = MachineUsage()
        self._bot: ProcessUsage | None = None
        if bot_pid is not None:
            try:
                self._bot = ProcessUsage(bot_pid)
            except psutil.Error as exc:
                logger.warning("capacity: the bot's process %s cannot be watched: %s", bot_pid, exc)
        self._health_url = health_url
        self._health_timeout_s = health_timeout_s
        self._stop = gevent.event.Event()
        self._greenlet: gevent.Greenlet[Any, Any] | None = None

    def start(self) -> None:
        """Start sampling (once)."""
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        next_at = time.monotonic() + self.interval_s
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            next_at += self.interval_s
            try:
                self._on_sample(self.sample())
            except Exception:  # a failing sample or consumer must not end the sampling
                logger.exception("capacity: resource sample failed")

    def sample(self) -> ResourceSample:
        """One sample now."""
        health = read_health(self._health_url, self._health_timeout_s) if self._health_url else None
        return ResourceSample(
            at_s=time.time(),
            machine=self._machine.sample(),
            bot=self._bot.sample() if self._bot is not None else None,
            health=health,
        )

    def stop(self) -> None:
        """Stop sampling (idempotent)."""
        self._stop.set()
        if self._greenlet is not None:
            self._greenlet.join(timeout=self._health_timeout_s + 1)
            self._greenlet.kill(block=False)


__all__ = [
    "BOT_PID_ENV",
    "BotHealth",
    "MachineSample",
    "MachineUsage",
    "ProcessSample",
    "ProcessUsage",
    "ResourceSample",
    "ResourceSampler",
    "parse_health",
    "read_health",
]
