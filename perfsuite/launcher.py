"""Start Locust the way docker-compose does: one local process, or a master and N workers.

The command lines built here are the same ones docker-compose.yml runs, so what passes locally
passes distributed. The configuration travels in PERFSUITE_* environment variables (see
``locustfiles/common.py``); secrets travel in TWILIO_AUTH_TOKEN and REDIS_URL, never in argv.

Locust's output goes to a log file (unless ``--verbose``); lines a locustfile prints with
:func:`say` (prefix :data:`LIVE_PREFIX`: live alerts, step results, faults) are echoed to the
terminal while the run goes (:class:`LogEcho`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from perfsuite.embedded import free_port, interrupt_deferred

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILES = REPO_ROOT / "locustfiles"

LIVE_PREFIX = "[perfsuite] "
"""Lines of a Locust process's output starting with this are shown live in the terminal."""


def say(text: str) -> None:
    """Print ``text`` from a Locust process so that ``perfsuite run`` shows it live (one line each)."""
    for line in text.splitlines() or [""]:
        print(LIVE_PREFIX + line, flush=True)


class LogEcho:
    """Follows a growing log file and writes its :data:`LIVE_PREFIX` lines to ``out`` as they come."""

    def __init__(self, path: Path, out: IO[str] | None = None, prefix: str = LIVE_PREFIX) -> None:
        self.path = path
        self.prefix = prefix.encode()
        self._out = out
        self._offset = 0
        self._partial = b""

    def poll(self) -> int:
        """Echo the complete new lines that carry the prefix; returns how many were echoed."""
        try:
            with open(self.path, "rb") as log:
                log.seek(self._offset)
                chunk = log.read(1 << 20)
        except OSError:
            return 0
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        shown = [
            line.decode("utf-8", "replace").rstrip("\r") for line in lines if line.startswith(self.prefix)
        ]
        out = self._out or sys.stdout
        for line in shown:
            out.write(line + "\n")
        if shown:
            out.flush()
        return len(shown)


@dataclass(frozen=True, slots=True)
class LocustJob:
    """What to run: a locustfile, its host and run id, and how many worker processes."""

    locustfile: Path
    host: str
    run_id: str
    env: Mapping[str, str]
    """Extra environment for every Locust process (PERFSUITE_*, secrets)."""
    workers: int = 0
    """0 runs one local process; N > 0 runs a master plus N workers on this machine."""
    remote_workers: int = 0
    """Workers the master also waits for that join from other hosts (``perfsuite worker --master``);
    with any, the master binds ``master_bind_host`` so they can reach it."""
    master_bind_host: str = "127.0.0.1"
    master_port: int | None = None
    """The master's port (default: a free one; with remote workers say which: Locust's is 5557)."""
    run_time_s: float | None = None
    """Locust's --run-time; None leaves stopping to the locustfile's shape."""
    users: int | None = None
    spawn_rate: float | None = None
    extra_args: Sequence[str] = ()
    log_dir: Path = Path(".perfsuite/logs")
    stop_timeout_s: float = 5.0


@dataclass(frozen=True, slots=True)
class LocustOutcome:
    """How the Locust processes ended. (What Locust counted is in the run's metadata, where the
    collector plugin stores it: the one source of Locust's totals. Locust's own stats file is kept
    beside the log, ``<run id>-locust.json``, for people.)"""

    returncode: int
    interrupted: bool
    timed_out: bool
    log_path: Path | None = None
    workers_exited: tuple[str, ...] = ()
    """Local workers that ended while their master still ran (``worker 2 of 2 (pid 4711): exit
    code -9``): killed or crashed, mid-run or before they joined."""


MASTER_HEARTBEAT_TIMEOUT_S = 10
"""A worker quits after this many seconds without its master's heartbeat (Locust's default: 60 s,
during which an orphaned worker keeps loading the target)."""


EXPECT_WORKERS_MAX_WAIT_S = 30
"""Seconds a master waits for its local workers to join before Locust gives up (exit code 1)."""
EXPECT_REMOTE_WORKERS_MAX_WAIT_S = 120
"""The same with workers joining from other hosts (started by hand)."""


def worker_command(locustfile: Path, master_host: str, master_port: int = 5557) -> list[str]:
    """Argv of a Locust worker joining the master at ``master_host``:``master_port`` (what
    ``perfsuite worker`` and docker-compose's workers run)."""
    return [
        *(sys.executable, "-m", "locust", "-f", str(locustfile)),
        *("--worker", "--master-host", master_host, "--master-port", str(master_port)),
    ]


def locust_command(job: LocustJob, role: str, json_file: Path | None, master_port: int = 5557) -> list[str]:
    """Argv of one Locust process; ``role`` is ``local``, ``master`` or ``worker``."""
    args = [sys.executable, "-m", "locust", "-f", str(job.locustfile)]
    if role == "worker":
        return worker_command(job.locustfile, "127.0.0.1", master_port)
    args += ["--headless", "--host", job.host, "--run-id", job.run_id, "--only-summary"]
    args += ["--stop-timeout", f"{max(1, round(job.stop_timeout_s))}s", "--exit-code-on-error", "0"]
    if job.users is not None:
        args += ["--users", str(job.users)]
    if job.spawn_rate is not None:
        args += ["--spawn-rate", str(job.spawn_rate)]
    if job.run_time_s is not None:
        args += ["--run-time", f"{max(1, round(job.run_time_s))}s"]
    if json_file is not None:
        args += ["--json-file", str(json_file.with_suffix(""))]
    if role == "master":
        args += [
            "--master",
            "--master-bind-host",
            job.master_bind_host,
            "--master-bind-port",
            str(master_port),
        ]
        expected = job.workers + job.remote_workers
        wait_s = EXPECT_WORKERS_MAX_WAIT_S if not job.remote_workers else EXPECT_REMOTE_WORKERS_MAX_WAIT_S
        args += ["--expect-workers", str(expected), "--expect-workers-max-wait", str(wait_s)]
    return [*args, *job.extra_args]


def run_locust(job: LocustJob, timeout_s: float, verbose: bool = False) -> LocustOutcome:
    """Run the job to its end (or ``timeout_s``); Ctrl-C stops Locust cleanly and is reported.

    Locust also writes its final stats to ``<log_dir>/<run id>-locust.json`` (for people; the
    figures read Locust's totals from the run's metadata).
    """
    job.log_dir.mkdir(parents=True, exist_ok=True)
    json_file = job.log_dir / f"{job.run_id}-locust.json"
    log_path = job.log_dir / f"{job.run_id}-locust.log"
    env = {
        "PERFSUITE_MASTER_TIMEOUT_S": str(MASTER_HEARTBEAT_TIMEOUT_S),
        **os.environ,
        **job.env,
        "PYTHONUNBUFFERED": "1",
    }
    log: IO[bytes] | None = None if verbose else open(log_path, "wb")  # noqa: SIM115
    output: Any = log if log is not None else None
    processes: list[subprocess.Popen[bytes]] = []
    echo = LogEcho(log_path) if log is not None else None
    interrupted = timed_out = False
    workers_exited: list[str] = []
    try:
        # A Ctrl-C while a process starts waits until it is in ``processes`` (stopped below), so a
        # Ctrl-C at any moment never leaves a Locust process running on its own.
        if job.workers > 0 or job.remote_workers > 0:
            port = job.master_port or free_port()
            with interrupt_deferred():
                main = subprocess.Popen(
                    locust_command(job, "master", json_file, port),
                    env=env,
                    stdout=output,
                    stderr=subprocess.STDOUT if log else None,
                    start_new_session=True,
                )
                processes.append(main)
            for _ in range(job.workers):
                with interrupt_deferred():
                    processes.append(
                        subprocess.Popen(
                            locust_command(job, "worker", None, port),
                            env=env,
                            stdout=output,
                            stderr=subprocess.STDOUT if log else None,
                            start_new_session=True,
                        )
                    )
        else:
            with interrupt_deferred():
                main = subprocess.Popen(
                    locust_command(job, "local", json_file),
                    env=env,
                    stdout=output,
                    stderr=subprocess.STDOUT if log else None,
                    start_new_session=True,  # Ctrl-C reaches perfsuite only; it stops Locust with SIGTERM
                )
                processes.append(main)
        deadline = time.monotonic() + timeout_s
        while main.poll() is None:
            if echo is not None:
                echo.poll()
            for index, worker in enumerate(processes[1:], 1):
                if worker.returncode is None and worker.poll() is not None:
                    workers_exited.append(
                        f"worker {index} of {job.workers} (pid {worker.pid}): exit code {worker.returncode}"
                    )
            try:
                main.wait(timeout=max(0.1, min(1.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    timed_out = True
                    _stop(main, signal.SIGTERM, job.stop_timeout_s + 30)
            except KeyboardInterrupt:
                # SIGTERM goes through gevent's handler, so every request Locust counted also
                # reaches the collector (a SIGINT could land between two request listeners).
                interrupted = True
                _stop(main, signal.SIGTERM, job.stop_timeout_s + 30)
        # The master has ended: its workers were told to quit. One that is still there (hung,
        # stopped, cut off) gets SIGTERM, then SIGKILL once WORKER_EXIT_GRACE_S are over, all at once.
        _stop_all(processes[1:], WORKER_EXIT_GRACE_S)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if processes and processes[0].poll() is None:  # stopped at start-up: Locust flushes its last stats
            _stop(processes[0], signal.SIGTERM, job.stop_timeout_s + 5)
        _stop_all(processes[1:], WORKER_EXIT_GRACE_S)
        if log is not None:
            log.close()
        if echo is not None:
            echo.poll()
    return LocustOutcome(
        returncode=processes[0].returncode if processes else 1,
        interrupted=interrupted,
        timed_out=timed_out,
        log_path=None if verbose else log_path,
        workers_exited=tuple(workers_exited),
    )


WORKER_EXIT_GRACE_S = 2.0
"""How long processes still running after the master ended get to finish (a worker's last flush
takes well under a second) before they are killed."""


def _stop_all(processes: Sequence[subprocess.Popen[bytes]], grace_s: float) -> None:
    """SIGTERM every process still running, then SIGKILL those still there after ``grace_s``
    (seconds, for all of them together); returns when all have exited."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in running:
        while True:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
                break
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                break
            except KeyboardInterrupt:
                continue  # a second Ctrl-C while they stop: keep going, the bound still holds


def _stop(process: subprocess.Popen[bytes], sig: int, timeout_s: float) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    while True:
        try:
            process.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            process.kill()
            timeout_s = 5
        except KeyboardInterrupt:
            continue  # a second Ctrl-C while Locust stops: keep waiting for its results


def run_foreground(
    argv: Sequence[str],
    env: Mapping[str, str],
    on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> int:
    """Run one Locust process in the foreground (``perfsuite worker``, ``perfsuite web``) until it
    ends; Ctrl-C or SIGTERM stop it cleanly. Its exit code. ``on_start`` is told the process once
    it runs (the live metrics endpoint follows the runs it starts)."""
    process = subprocess.Popen(list(argv), env={**os.environ, **env, "PYTHONUNBUFFERED": "1"})
    try:
        if on_start is not None:
            on_start(process)
        return process.wait()
    except KeyboardInterrupt:
        _stop(process, signal.SIGTERM, 30)
        return process.returncode if process.returncode is not None else 130


__all__ = [
    "EXPECT_REMOTE_WORKERS_MAX_WAIT_S",
    "EXPECT_WORKERS_MAX_WAIT_S",
    "LIVE_PREFIX",
    "LOCUSTFILES",
    "MASTER_HEARTBEAT_TIMEOUT_S",
    "REPO_ROOT",
    "LocustJob",
    "LocustOutcome",
    "LogEcho",
    "locust_command",
    "run_foreground",
    "run_locust",
    "say",
    "worker_command",
]
