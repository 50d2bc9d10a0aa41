"""Fault schedules: the windows scenarios.yaml holds, their drivers, and the scheduler that runs them.

A window, as it would appear under ``faults:`` in scenarios.yaml::

    - name: redis-down             # optional; default "<driver>:<target>@<at_s>s"
      at_s: 30                     # seconds after the load started
      duration_s: 10
      driver: proxy                # proxy | toxic | redis_pause | shell
      target: redis                # the proxy's name (proxy, toxic); a label otherwise
      api_url: http://127.0.0.1:8474
    - {at_s: 60, duration_s: 15, driver: toxic, target: redis,
       toxic: {type: latency, attributes: {latency: 200, jitter: 50}}}
    - {at_s: 90, duration_s: 5, driver: redis_pause, target: redis}
    - {at_s: 120, duration_s: 20, driver: shell, target: database,
       inject: "docker compose stop postgres", heal: "docker compose start postgres"}

:class:`FaultScheduler` injects each window at ``at_s`` and heals it at ``at_s + duration_s``,
reporting both through ``on_mark("fault_start" | "fault_end", at_s, fault=<name>, ...)``; it
heals every active fault when stopped or when anything goes wrong.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from perfsuite.errors import ConfigError
from perfsuite.faults.client import DEFAULT_API_URL, ToxiproxyClient
from perfsuite.faults.drivers import FaultDriver, ProxyOutage, ProxyToxic, RedisPause, ShellCommand
from perfsuite.faults.errors import FaultError
from perfsuite.faults.toxics import validate_attributes

logger = logging.getLogger("perfsuite.faults")

FAULT_START = "fault_start"
"""Mark kind recorded when a window's fault was injected (or its injection was attempted)."""
FAULT_END = "fault_end"
"""Mark kind recorded when a window's fault was healed."""

DRIVERS = ("proxy", "toxic", "redis_pause", "shell")

_DRIVER_OPTIONS: Mapping[str, frozenset[str]] = {
    "proxy": frozenset({"api_url"}),
    "toxic": frozenset({"api_url", "toxic"}),
    "redis_pause": frozenset({"pause_mode"}),
    "shell": frozenset({"inject", "heal", "command_timeout_s"}),
}
"""Driver -> the options that belong to it (any other driver refuses them)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToxicSpec(_Frozen):
    """The toxic a ``toxic`` window adds (Toxiproxy's fields)."""

    type: Literal["latency", "timeout", "reset_peer", "bandwidth"]
    attributes: dict[str, int] = Field(default_factory=dict, validate_default=True)
    """latency: ``latency``, ``jitter`` (ms); timeout and reset_peer: ``timeout`` (ms); bandwidth:
    ``rate`` (KB/s). Missing attributes are 0."""
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0, le=1)
    name: str | None = Field(None, min_length=1)

    @field_validator("attributes", mode="after")
    @classmethod
    def _known_attributes(cls, value: dict[str, int], info: Any) -> dict[str, int]:
        kind = info.data.get("type")
        if kind is None:
            return value  # the type itself is wrong; that error is reported
        return validate_attributes(kind, value)


class FaultWindow(_Frozen):
    """One scheduled fault: what breaks, when (relative to the start of the load) and for how long."""

    name: str = Field("", max_length=200)
    """Names the window in marks and reports; default ``<driver>:<target>@<at_s>s``."""
    at_s: float = Field(ge=0, le=7 * 86_400)
    """Seconds after the start of the load when the fault is injected."""
    duration_s: float = Field(gt=0, le=86_400)
    """Seconds the fault lasts; it is healed at ``at_s + duration_s``."""
    driver: Literal["proxy", "toxic", "redis_pause", "shell"]
    """``proxy``: take a fault-proxy proxy down; ``toxic``: add a toxic to one; ``redis_pause``:
    ``CLIENT PAUSE`` the Redis; ``shell``: run the ``inject`` and ``heal`` command lines."""
    target: str = Field(min_length=1, max_length=200)
    """What the fault hits: the proxy's name (proxy, toxic); ``redis``, ``database``, ... otherwise."""
    api_url: str = DEFAULT_API_URL
    """proxy, toxic: the fault proxy's (or a Toxiproxy's) API."""
    toxic: ToxicSpec | None = None
    """toxic: the toxic to add."""
    pause_mode: Literal["all", "write"] = "all"
    """redis_pause: pause every command (``all``) or only writes (``write``)."""
    inject: str | None = Field(None, min_length=1)
    """shell: command line that injects the fault (run with ``/bin/sh -c``)."""
    heal: str | None = Field(None, min_length=1)
    """shell: command line that heals it."""
    command_timeout_s: float = Field(60.0, gt=0, le=3600)
    """shell: seconds each command may run."""

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not data.get("name"):
            at_s = data.get("at_s")
            at = f"{at_s:g}" if isinstance(at_s, int | float) and not isinstance(at_s, bool) else str(at_s)
            return {**data, "name": f"{data.get('driver')}:{data.get('target')}@{at}s"}
        return data

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be the fault proxy's http URL such as {DEFAULT_API_URL}, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _options_fit_driver(self) -> FaultWindow:
        own = _DRIVER_OPTIONS[self.driver]
        foreign = sorted(
            key
            for key in self.model_fields_set
            if key not in own and any(key in o for o in _DRIVER_OPTIONS.values())
        )
        if foreign:
            owners = {key: [d for d, o in _DRIVER_OPTIONS.items() if key in o] for key in foreign}
            detail = "; ".join(f"{key} is for driver {' / '.join(owners[key])}" for key in foreign)
            raise ValueError(f"driver {self.driver} does not take {', '.join(foreign)} ({detail})")
        if self.driver == "toxic" and self.toxic is None:
            raise ValueError(
                "driver toxic needs toxic: {type: latency|timeout|reset_peer|bandwidth, attributes: {...}}"
            )
        if self.driver == "shell" and (self.inject is None or self.heal is None):
            raise ValueError("driver shell needs both inject and heal command lines")
        return self

    @property
    def end_s(self) -> float:
        """Seconds after the start of the load when the fault is healed."""
        return self.at_s + self.duration_s


class FaultSchedule(_Frozen):
    """Every fault window of a run; names are unique and windows on one target never overlap."""

    windows: tuple[FaultWindow, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> FaultSchedule:
        names = [window.name for window in self.windows]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"fault window names must be unique; repeated: {', '.join(repeated)}")
        ordered = sorted(self.windows, key=lambda window: (window.target, window.at_s))
        for first, second in itertools.pairwise(ordered):
            if first.target == second.target and second.at_s < first.end_s:
                raise ValueError(
                    f"fault windows {first.name!r} ({first.at_s:g}-{first.end_s:g}s) and {second.name!r} "
                    f"({second.at_s:g}-{second.end_s:g}s) overlap on target {first.target}; "
                    "healing one would end the other"
                )
        return self


def driver_for(
    window: FaultWindow, *, redis_url: str | None = None, api_timeout_s: float = 5.0
) -> FaultDriver:
    """The driver that carries out ``window``.

    ``redis_url`` is the Redis a ``redis_pause`` window pauses (it comes from the environment,
    never from scenarios.yaml); ``api_timeout_s`` bounds each request to the fault proxy's API.
    """
    if window.driver == "proxy":
        return ProxyOutage(ToxiproxyClient(window.api_url, api_timeout_s), window.target)
    if window.driver == "toxic":
        assert window.toxic is not None  # checked by the model
        spec = window.toxic
        return ProxyToxic(
            ToxiproxyClient(window.api_url, api_timeout_s),
            window.target,
            spec.type,
            dict(spec.attributes),
            spec.stream,
            spec.toxicity,
            spec.name,
        )
    if window.driver == "redis_pause":
        if not redis_url:
            raise ConfigError(
                f"fault window {window.name!r}: redis_pause needs the URL of the Redis to pause"
            )
        return RedisPause(redis_url, window.duration_s, window.pause_mode, timeout_s=api_timeout_s)
    assert window.inject is not None and window.heal is not None  # checked by the model
    return ShellCommand(window.inject, window.heal, window.command_timeout_s)


class MarkCallback(Protocol):
    """Records a mark: ``kind`` (``fault_start``/``fault_end``) at ``at_s`` seconds into the load."""

    def __call__(self, kind: str, at_s: float, **fields: Any) -> None: ...


class FaultScheduler:
    """Injects and heals fault windows at their times, in a thread (a greenlet under gevent).

    ``drivers`` maps each window's name to its driver. ``clock`` gives monotonic seconds; the load
    starts at ``start()`` (or at the ``t0`` given to it). Marks go to ``on_mark``; a driver or
    callback error is logged and kept in :attr:`errors` and never stops the schedule. Every fault
    still active is healed when the schedule is stopped, when it ends and when anything fails.
    Use it as a context manager (``with FaultScheduler(...) as scheduler:``) to be sure of that.
    """

    def __init__(
        self,
        windows: Sequence[FaultWindow],
        drivers: Mapping[str, FaultDriver],
        on_mark: MarkCallback,
        clock: Callable[[], float] = time.monotonic,
        max_wait_s: float = 1.0,
    ) -> None:
        FaultSchedule(windows=tuple(windows))  # unique names, no overlap on a target (ValueError)
        missing = [window.name for window in windows if window.name not in drivers]
        if missing:
            raise ValueError(f"no driver for fault window(s) {', '.join(missing)}")
        self.windows = tuple(sorted(windows, key=lambda window: window.at_s))
        self._drivers = dict(drivers)
        self._on_mark = on_mark
        self._clock = clock
        self._max_wait_s = max_wait_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._active: dict[str, FaultWindow] = {}
        self._errors: list[BaseException] = []

    @property
    def errors(self) -> tuple[BaseException, ...]:
        """Errors from drivers and from ``on_mark`` so far (the schedule went on)."""
        return tuple(self._errors)

    @property
    def active(self) -> tuple[str, ...]:
        """Names of the windows injected and not yet healed."""
        return tuple(self._active)

    def start(self, t0: float | None = None) -> None:
        """Start the schedule; ``t0`` (a ``clock()`` reading) is when the load started (default now)."""
        if self._thread is not None:
            raise RuntimeError("FaultScheduler.start() called twice")
        self._t0 = self._clock() if t0 is None else t0
        self._thread = threading.Thread(target=self._run, name="perfsuite-faults", daemon=True)
        self._thread.start()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait until every window ran (or the schedule was stopped); True if it finished."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def stop(self, timeout_s: float | None = 120.0) -> None:
        """End the schedule now: heal every active fault, skip windows not started; waits for it."""
        self._stop.set()
        if self._thread is not None and not self.join(timeout_s):
            logger.error("fault scheduler: still healing after %ss: %s", timeout_s, ", ".join(self.active))

    def __enter__(self) -> FaultScheduler:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _elapsed(self) -> float:
        return self._clock() - self._t0

    def _run(self) -> None:
        steps = [(w.at_s, 1, w) for w in self.windows] + [(w.end_s, 0, w) for w in self.windows]
        steps.sort(key=lambda step: (step[0], step[1]))  # a heal before an inject due at the same time
        try:
            for at_s, is_inject, window in steps:
                if not is_inject and window.name not in self._active:
                    continue
                if self._wait_until(at_s):
                    return
                if is_inject:
                    self._inject(window)
                else:
                    self._heal(window, stopped_early=False)
        finally:
            for name in reversed(list(self._active)):
                self._heal(self._active[name], stopped_early=True)

    def _wait_until(self, at_s: float) -> bool:
        """Wait until ``at_s`` into the load; True if the schedule was stopped meanwhile."""
        while True:
            remaining = at_s - self._elapsed()
            if remaining <= 0:
                return self._stop.is_set()
            if self._stop.wait(min(remaining, self._max_wait_s)):
                return True

    def _inject(self, window: FaultWindow) -> None:
        driver = self._drivers[window.name]
        at_s = self._elapsed()
        self._active[window.name] = window  # before inject: a half-done injection is healed too
        error = self._call(driver.inject, f"inject {window.name}")
        self._mark(FAULT_START, at_s, window, driver, error, {})

    def _heal(self, window: FaultWindow, stopped_early: bool) -> None:
        driver = self._drivers[window.name]
        at_s = self._elapsed()
        error = self._call(driver.heal, f"heal {window.name}")
        self._active.pop(window.name, None)
        self._mark(FAULT_END, at_s, window, driver, error, {"stopped_early": stopped_early})

    def _call(self, action: Callable[[], None], what: str) -> str | None:
        try:
            action()
        except Exception as exc:
            logger.error("fault scheduler: %s failed: %s", what, exc)
            self._errors.append(exc if isinstance(exc, FaultError) else FaultError(f"{what}: {exc}"))
            return str(exc)
        return None

    def _mark(
        self,
        kind: str,
        at_s: float,
        window: FaultWindow,
        driver: FaultDriver,
        error: str | None,
        extra: dict[str, Any],
    ) -> None:
        fields: dict[str, Any] = {
            "fault": window.name,
            "driver": window.driver,
            "target": window.target,
            "description": driver.describe(),
            **extra,
        }
        if error is not None:
            fields["error"] = error
        try:
            self._on_mark(kind, at_s, **fields)
        except Exception as exc:
            logger.error("fault scheduler: recording %s of %s failed: %s", kind, window.name, exc)
            self._errors.append(exc)


__all__ = [
    "DRIVERS",
    "FAULT_END",
    "FAULT_START",
    "FaultSchedule",
    "FaultScheduler",
    "FaultWindow",
    "MarkCallback",
    "ToxicSpec",
    "driver_for",
]
