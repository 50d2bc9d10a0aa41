"""Is the bot still working after the load? Its CPU, sampled while the backlog is watched.

A bot that acks in milliseconds and keeps its work in a queue the suite cannot see still has to do
that work: a bot process busy long after the run has hidden work. When the bot runs on this machine
(``target.backlog.process``: a PID, or a name / command-line substring), :class:`ProcessWatch`
follows that process and its children:

- :meth:`ProcessWatch.sample` is called at every poll of the backlog watch and reads the CPU time the
  processes used since the previous call (``psutil``'s ``cpu_times``: it never sleeps, unlike
  ``cpu_percent(interval=1)``, which would block for a second);
- the process counts as idle once its CPU stayed under ``idle_cpu_percent`` for ``idle_for_s``;
- :meth:`ProcessWatch.result` is the :class:`Activity`: CPU when the load stopped, at its peak, at
  the end, when it went idle or that it was "still busy after N s".
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable

import psutil
from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from perfsuite.errors import ConfigError, ServiceUnavailable
from perfsuite.redact import redact_text
from perfsuite.sections import Line


class ProcessConfig(BaseModel):
    """``target.backlog.process``: the bot's process on this machine, and when it counts as idle."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pid: int | None = Field(None, ge=1)
    """The bot's process id."""
    name: str | None = Field(None, min_length=1)
    """Matched against each process's name (exactly) and command line (as a substring); it must
    single out one process (or one process tree: the root is taken)."""
    idle_cpu_percent: float = Field(5.0, gt=0, le=10_000)
    """CPU share (100 = one core busy; the process and its children together) under which it is idle."""
    idle_for_s: float = Field(2.0, gt=0, le=3600)
    """Seconds the CPU must stay under ``idle_cpu_percent`` before the bot counts as idle."""
    children: bool = True
    """Count the CPU of the process's children (workers) too."""

    @model_validator(mode="after")
    def _one_selector(self) -> ProcessConfig:
        if (self.pid is None) == (self.name is None):
            raise ValueError(
                "give exactly one of pid (the bot's process id) or name (a process name or a part of "
                "its command line)"
            )
        return self


class Activity(BaseModel):
    """The bot process's CPU after the load (all shares: 100 = one core busy)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    supported: bool = False
    """False when no process was watched (see ``reason``)."""
    reason: str | None = None
    """Why the process could not be watched (none matched, several did, access denied)."""
    process: str | None = None
    """Which process: ``pid 1234 (python -m mybot ...)``, secrets in its command line redacted."""
    processes: int = 0
    """Most processes watched at once (the process and its children)."""
    samples: int = 0
    idle_cpu_percent: float = 5.0
    idle_for_s: float = 2.0
    cpu_at_stop_percent: float | None = None
    """CPU over the first poll interval after the load stopped."""
    cpu_max_percent: float | None = None
    cpu_mean_percent: float | None = None
    cpu_at_end_percent: float | None = None
    idle_after_s: float | None = None
    """Seconds after the load until the CPU went (and stayed) under the idle threshold; None: never."""
    exited_after_s: float | None = None
    """Seconds after the load until the process exited; None when it kept running."""
    watched_s: float = 0.0
    """Seconds the process was watched."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def busy_after_load(self) -> bool | None:
        """True when the process was still busy when the watch ended (None when not watched, or not
        sampled at all: an interrupted run is not watched)."""
        if not self.supported or (not self.samples and self.exited_after_s is None):
            return None
        return self.idle_after_s is None and self.exited_after_s is None


_SECRET_FLAG = re.compile(r"(?i)^-{1,2}(?:a|pass|password|requirepass|token|auth|secret|api-key)$")
_SECRET_ASSIGNMENT = re.compile(r"(?i)^(?P<key>[^=\s]*(?:pass|token|secret|key)[^=\s]*)=.*$")


def _command_line(args: list[str], arg_limit: int = 40, limit: int = 200) -> str:
    """A command line for people: URL passwords, ``--password X`` and ``TOKEN=X`` values hidden, each
    argument cut at ``arg_limit`` characters (a long ``-c`` script must not hide the rest), the whole
    at ``limit``."""
    shown: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            shown.append("***")
            hide_next = False
            continue
        if _SECRET_FLAG.match(arg):
            hide_next = True
        elif assignment := _SECRET_ASSIGNMENT.match(arg):
            arg = f"{assignment['key']}=***"
        arg = redact_text(arg)
        shown.append(arg if len(arg) <= arg_limit else arg[: arg_limit - 3] + "...")
    text = " ".join(shown)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_process(process: psutil.Process) -> str:
    """``pid 1234 (python -m mybot --port 8000)``, secrets in the command line redacted."""
    try:
        args = process.cmdline() or [process.name()]
    except psutil.Error:
        args = ["?"]
    return f"pid {process.pid} ({_command_line(args)})"


def _own_lineage() -> set[int]:
    """This process and its ancestors (their command lines may mention the bot; they are not it)."""
    own = {os.getpid()}
    with contextlib.suppress(psutil.Error):
        own.update(parent.pid for parent in psutil.Process().parents())
    return own


def find_process(config: ProcessConfig) -> psutil.Process:
    """The process ``config`` designates.

    Raises :class:`~perfsuite.errors.ServiceUnavailable` when none matches and
    :class:`~perfsuite.errors.ConfigError` when a name matches several processes that are not one
    tree (a tree, e.g. a server and its workers, resolves to its root).
    """
    if config.pid is not None:
        try:
            process = psutil.Process(config.pid)
            process.cpu_times()
        except psutil.NoSuchProcess:
            raise ServiceUnavailable(
                f"target.backlog.process.pid: no process with pid {config.pid}"
            ) from None
        except psutil.AccessDenied:
            raise ConfigError(
                f"target.backlog.process.pid: pid {config.pid} belongs to another user; "
                "its CPU cannot be read"
            ) from None
        return process
    needle = config.name or ""
    own = _own_lineage()
    matches: list[psutil.Process] = []
    for process in psutil.process_iter(["name", "cmdline"]):
        if process.pid in own:
            continue
        name = process.info.get("name") or ""
        cmdline = " ".join(process.info.get("cmdline") or ())
        if name == needle or (cmdline and needle in cmdline):
            matches.append(process)
    if not matches:
        raise ServiceUnavailable(
            f"target.backlog.process.name: no process matches {needle!r} (by name or command line); "
            "is the bot running on this machine?"
        )
    pids = {process.pid for process in matches}
    roots = [process for process in matches if not _has_ancestor_in(process, pids)]
    if len(roots) > 1:
        shown = "; ".join(describe_process(process) for process in roots[:5])
        more = f" and {len(roots) - 5} more" if len(roots) > 5 else ""
        raise ConfigError(
            f"target.backlog.process.name: {len(roots)} separate processes match {needle!r}: {shown}{more}; "
            "give target.backlog.process.pid or a longer part of the command line"
        )
    return roots[0]


def _has_ancestor_in(process: psutil.Process, pids: set[int]) -> bool:
    try:
        return any(parent.pid in pids for parent in process.parents())
    except psutil.Error:
        return False


def _born_after(process: psutil.Process, epoch_s: float) -> bool:
    try:
        return process.create_time() >= epoch_s - 0.05  # creation times are rounded to clock ticks
    except psutil.Error:
        return False


class ProcessWatch:
    """Samples one process's (and its children's) CPU at each :meth:`sample` call; never sleeps."""

    def __init__(self, config: ProcessConfig, clock: Callable[[], float] = time.monotonic) -> None:
        """Find the process (a failure is kept as the result's ``reason``, never raised)."""
        self.config = config
        self._clock = clock
        self._started = clock()
        self._reason: str | None = None
        self._root: psutil.Process | None = None
        self._described: str | None = None
        self._cpu_s: dict[int, tuple[psutil.Process, float]] = {}
        self._read_at: float | None = None
        """Epoch seconds of the previous CPU read (process creation times are epoch seconds)."""
        self._last_at = self._started
        self._cpu: list[float] = []
        self._processes = 0
        self._idle_since: float | None = None
        self._idle_after_s: float | None = None
        self._exited_after_s: float | None = None
        try:
            self._root = find_process(config)
            self._described = describe_process(self._root)
            self._read_cpu()  # the baseline: CPU seconds so far
        except (ConfigError, ServiceUnavailable) as exc:
            self._reason = str(exc)
            self._root = None
        except psutil.Error as exc:
            self._reason = f"target.backlog.process: cannot read the process: {exc}"
            self._root = None

    @property
    def done(self) -> bool:
        """True once the process is idle, has exited, or cannot be watched."""
        return self._root is None or self._idle_after_s is not None or self._exited_after_s is not None

    def _read_cpu(self) -> float:
        """CPU seconds the watched processes used since the previous read (new children: since birth)."""
        assert self._root is not None
        members = [self._root]
        if self.config.children:
            try:
                members += self._root.children(recursive=True)
            except psutil.NoSuchProcess:
                raise  # the bot itself is gone (sample() reports it as exited)
            except psutil.Error:
                pass
        used = 0.0
        now_epoch = time.time()
        seen: dict[int, tuple[psutil.Process, float]] = {}
        for member in members:
            try:
                with member.oneshot():
                    times = member.cpu_times()
                    total = times.user + times.system
            except psutil.NoSuchProcess:
                if member is self._root:
                    raise
                continue
            except psutil.Error:
                continue
            known = self._cpu_s.get(member.pid)
            if known is not None and known[0] == member:  # same pid, same process (create time)
                used += max(0.0, total - known[1])
            elif self._read_at is not None and _born_after(member, self._read_at):
                used += total  # a child born since the previous read: all its CPU time is in this interval
            seen[member.pid] = (member, total)
        self._cpu_s = seen
        self._read_at = now_epoch
        self._processes = max(self._processes, len(seen))
        return used

    def sample(self) -> None:
        """Read the CPU used since the previous call (call it at every poll)."""
        if self.done or self._root is None:
            return
        now = self._clock()
        try:
            if self._root.status() == psutil.STATUS_ZOMBIE:  # exited, not yet reaped by its parent
                raise psutil.NoSuchProcess(self._root.pid)
            used_s = self._read_cpu()
        except psutil.NoSuchProcess:
            self._exited_after_s = round(now - self._started, 3)
            return
        interval_s = now - self._last_at
        if interval_s <= 0:
            return
        percent = 100.0 * used_s / interval_s
        self._cpu.append(percent)
        if percent < self.config.idle_cpu_percent:
            if self._idle_since is None:
                self._idle_since = self._last_at  # idle over the whole interval just measured
            if now - self._idle_since >= self.config.idle_for_s:
                self._idle_after_s = round(self._idle_since - self._started, 3)
        else:
            self._idle_since = None
        self._last_at = now

    def result(self) -> Activity:
        """What was seen so far."""
        config = self.config
        cpu = self._cpu
        return Activity(
            supported=self._reason is None,
            reason=self._reason,
            process=self._described,
            processes=self._processes,
            samples=len(cpu),
            idle_cpu_percent=config.idle_cpu_percent,
            idle_for_s=config.idle_for_s,
            cpu_at_stop_percent=round(cpu[0], 1) if cpu else None,
            cpu_max_percent=round(max(cpu), 1) if cpu else None,
            cpu_mean_percent=round(sum(cpu) / len(cpu), 1) if cpu else None,
            cpu_at_end_percent=round(cpu[-1], 1) if cpu else None,
            idle_after_s=self._idle_after_s,
            exited_after_s=self._exited_after_s,
            watched_s=round(self._clock() - self._started, 3) if self._reason is None else 0.0,
        )


def describe_activity(activity: Activity) -> Line:
    """The report line for ``activity``."""
    if not activity.supported:
        return Line(f"bot process not watched: {activity.reason}", "warn")
    who = f"bot process {activity.process}"
    peak = f"CPU at stop {activity.cpu_at_stop_percent or 0:.0f}%, max {activity.cpu_max_percent or 0:.0f}%"
    if activity.exited_after_s is not None:
        return Line(f"{who}: exited {activity.exited_after_s:g} s after the load ({peak})", "warn")
    if not activity.samples:
        return Line(f"{who}: not sampled (the drain was not watched)", "")
    if activity.idle_after_s is not None:
        return Line(
            f"{who}: idle (< {activity.idle_cpu_percent:g}% CPU for {activity.idle_for_s:g} s) "
            f"{activity.idle_after_s:g} s after the load ({peak})",
            "ok",
        )
    return Line(
        f"{who}: still busy {activity.watched_s:.0f} s after the load ({peak}, "
        f"{activity.cpu_at_end_percent or 0:.0f}% at the end): a bot busy long after the run has hidden work",
        "bad",
    )


__all__ = [
    "Activity",
    "ProcessConfig",
    "ProcessWatch",
    "describe_activity",
    "describe_process",
    "find_process",
]
