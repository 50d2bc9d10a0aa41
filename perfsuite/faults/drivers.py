"""Fault drivers: one protocol (``inject``, ``heal``, ``describe``), one class per way to break things.

* :class:`ProxyOutage` takes a proxy down through the fault proxy's API (connects refused,
  connections closed) and brings it back.
* :class:`ProxyToxic` adds a toxic (latency, timeout, reset_peer, bandwidth) and removes it.
* :class:`RedisPause` pauses a Redis server's clients (``CLIENT PAUSE``), bounded in time.
* :class:`ShellCommand` runs the user's own inject / heal command lines
  (``docker compose stop redis`` / ``docker compose start redis``).

``heal`` is idempotent: healing what is healthy (or was never injected) succeeds. ``describe``
never shows a password, token or URL credentials. Failures raise
:class:`~perfsuite.faults.errors.FaultError` saying what failed and why.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal, Protocol, runtime_checkable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from perfsuite.faults.client import ToxiproxyClient
from perfsuite.faults.errors import ApiError, FaultError
from perfsuite.redact import redact_text as redact

logger = logging.getLogger("perfsuite.faults")

OUTPUT_TAIL_CHARS = 2000
"""How much of a failing command's output its FaultError quotes (the end of it)."""


@runtime_checkable
class FaultDriver(Protocol):
    """Something that can break a dependency and repair it."""

    def inject(self) -> None:
        """Start the fault; raises FaultError if it could not."""

    def heal(self) -> None:
        """End the fault; safe to call when it is not active; raises FaultError if it could not."""

    def describe(self) -> str:
        """One line for logs and reports, with no secret in it."""


@dataclass(frozen=True, slots=True)
class ProxyOutage:
    """Disable a fault-proxy proxy (its dependency is unreachable) and enable it again."""

    client: ToxiproxyClient
    proxy: str
    """Name of the proxy in front of the dependency."""

    def inject(self) -> None:
        self.client.set_enabled(self.proxy, False)

    def heal(self) -> None:
        self.client.set_enabled(self.proxy, True)

    def describe(self) -> str:
        return f"proxy outage: {self.proxy} disabled at {redact(self.client.url)}"


@dataclass(frozen=True, slots=True)
class ProxyToxic:
    """Add a toxic to a fault-proxy proxy and remove it."""

    client: ToxiproxyClient
    proxy: str
    toxic_type: str
    """``latency``, ``timeout``, ``reset_peer`` or ``bandwidth``."""
    attributes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Toxiproxy attributes (``{"latency": 200, "jitter": 50}``; milliseconds, rate in KB/s)."""
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = 1.0
    name: str | None = None
    """Toxic name; default Toxiproxy's ``<type>_<stream>``."""

    @property
    def toxic_name(self) -> str:
        """The name the toxic gets on the proxy."""
        return self.name or f"{self.toxic_type}_{self.stream}"

    def inject(self) -> None:
        try:
            self.client.add_toxic(
                self.proxy,
                self.toxic_type,
                self.attributes,
                name=self.toxic_name,
                stream=self.stream,
                toxicity=self.toxicity,
            )
        except ApiError as exc:
            if exc.status != 409:
                raise
            # Left over from an interrupted run: make it ours rather than fail.
            self.client.update_toxic(
                self.proxy, self.toxic_name, attributes=self.attributes, toxicity=self.toxicity
            )

    def heal(self) -> None:
        try:
            self.client.remove_toxic(self.proxy, self.toxic_name)
        except ApiError as exc:
            if exc.status != 404:
                raise

    def describe(self) -> str:
        attributes = ", ".join(f"{key}={value}" for key, value in self.attributes.items())
        return (
            f"toxic {self.toxic_type} ({attributes or 'defaults'}) on {self.stream} of proxy {self.proxy}"
            f"{'' if self.toxicity >= 1 else f', toxicity {self.toxicity:g}'} at {redact(self.client.url)}"
        )


class RedisPause:
    """``CLIENT PAUSE`` a Redis server for at most ``pause_s`` seconds; heal with ``CLIENT UNPAUSE``.

    The pause is given to Redis with its length, so Redis ends it by itself even if the process
    that injected it dies: nothing can leave Redis paused for longer than the window.

    ``mode="all"`` (the default) holds every command of every client. Redis then holds
    ``CLIENT UNPAUSE`` too, so ``heal`` returns when the pause has run out (at most ``pause_s``
    after inject). ``mode="write"`` holds only commands that write; ``heal`` ends it at once.
    """

    def __init__(
        self,
        url: str,
        pause_s: float,
        mode: Literal["all", "write"] = "all",
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if pause_s <= 0:
            raise ValueError(f"pause_s must be > 0, got {pause_s}")
        if mode not in ("all", "write"):
            raise ValueError(f"mode must be 'all' or 'write', got {mode!r}")
        self._url = url
        self.pause_s = pause_s
        """Longest the pause can last, in seconds (the fault window's duration)."""
        self.mode = mode
        self.timeout_s = timeout_s
        """Seconds a command to Redis may take (beyond the pause itself)."""
        self._clock = clock
        self._paused_until: float | None = None

    def __repr__(self) -> str:
        return f"RedisPause({redact(self._url)!r}, pause_s={self.pause_s}, mode={self.mode!r})"

    def inject(self) -> None:
        pause_ms = max(1, math.ceil(self.pause_s * 1000))
        self._command(self.timeout_s, "CLIENT", "PAUSE", pause_ms, self.mode.upper())
        self._paused_until = self._clock() + self.pause_s

    def heal(self) -> None:
        remaining = 0.0 if self._paused_until is None else max(0.0, self._paused_until - self._clock())
        self._command(remaining + self.timeout_s, "CLIENT", "UNPAUSE")
        self._paused_until = None

    def describe(self) -> str:
        return f"redis pause ({self.mode}) for up to {self.pause_s:g}s at {redact(self._url)}"

    def _command(self, timeout_s: float, *args: object) -> None:
        client = redis.Redis.from_url(
            self._url,
            socket_timeout=timeout_s,
            socket_connect_timeout=self.timeout_s,
            retry=Retry(NoBackoff(), 0),  # a retried PAUSE or UNPAUSE would act twice or wait twice
        )
        try:
            client.execute_command(*args)
        except redis.RedisError as exc:
            command = " ".join(str(arg) for arg in args[:2])
            raise FaultError(f"{command} on {redact(self._url)} failed: {exc}") from None
        finally:
            client.close()


@dataclass(frozen=True, slots=True)
class ShellCommand:
    """Run the user's command lines (through ``/bin/sh -c``) to inject and to heal a fault.

    Output (stdout and stderr together) is captured and logged; a command that exits non-zero or
    runs longer than ``timeout_s`` (then its whole process group is killed) raises FaultError
    quoting the end of its output.
    """

    inject_command: str
    heal_command: str
    timeout_s: float = 60.0
    """Seconds each command may run."""
    cwd: Path | None = None
    """Working directory (default: the current one)."""

    def __repr__(self) -> str:
        commands = f"{redact(self.inject_command)!r}, {redact(self.heal_command)!r}"
        return f"ShellCommand({commands}, timeout_s={self.timeout_s})"

    def inject(self) -> None:
        self._run("inject", self.inject_command)

    def heal(self) -> None:
        self._run("heal", self.heal_command)

    def describe(self) -> str:
        return f"shell: inject {redact(self.inject_command)!r}, heal {redact(self.heal_command)!r}"

    def _run(self, what: str, command: str) -> str:
        shown = redact(command)
        try:
            process = subprocess.Popen(
                ["/bin/sh", "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                start_new_session=True,  # its own process group, so a timeout kills its children too
            )
        except OSError as exc:
            raise FaultError(f"shell {what} command {shown!r} could not start: {exc}") from None
        try:
            output, _ = process.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise FaultError(
                f"shell {what} command {shown!r} did not finish within {self.timeout_s:g}s (killed)"
            ) from None
        except BaseException:
            _kill_group(process)
            raise
        text = output.decode("utf-8", errors="replace")
        logger.info("shell %s command %r exited %d", what, shown, process.returncode)
        if process.returncode != 0:
            tail = text.strip()[-OUTPUT_TAIL_CHARS:]
            raise FaultError(
                f"shell {what} command {shown!r} exited with status {process.returncode}"
                + (f"; output:\n{tail}" if tail else " and printed nothing")
            )
        return text


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        process.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a grandchild left the group and holds the pipe
        if process.stdout is not None:
            process.stdout.close()
        process.wait(timeout=5)


__all__ = [
    "FaultDriver",
    "FaultError",
    "ProxyOutage",
    "ProxyToxic",
    "RedisPause",
    "ShellCommand",
]
