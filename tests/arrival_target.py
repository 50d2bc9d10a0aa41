"""A tiny HTTP target with a known service time, and a staller that freezes it with SIGSTOP: what the
arrival-rate fidelity and stall tests and ``bench/bench_stall.py`` measure against.

Server (a separate process, so that it can be frozen): ``python tests/arrival_target.py PORT
SERVICE_MS [--tail-every N --tail-ms MS] [--times-file F]``. Every POST waits ``SERVICE_MS`` (every
``N``-th one ``MS`` instead), then answers 200 with an empty TwiML document (headers and body in one
send, TCP_NODELAY) and ``Server-Timing: app;dur=<ms>``; GET answers ``{"status": "ok"}`` (no queue
depth). With ``--times-file``, the service times it really spent (microseconds, one per line) are
written there at SIGTERM: the truth the fidelity test compares against.

From Python: :class:`TargetProcess` starts and stops one; :class:`Staller` stops it for ``stall_s``
every ``period_s`` (absolute schedule, no drift) from a thread.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import gevent
from gevent.server import StreamServer

from perfsuite.embedded import free_port, wait_for_port

TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
HEALTH = b'{"status": "ok"}'


class Target:
    """The request handler (gevent sockets throughout, so no monkey patching) and its service times."""

    def __init__(self, service_s: float, tail_every: int, tail_s: float) -> None:
        self.service_s = service_s
        self.tail_every = tail_every
        self.tail_s = tail_s
        self.requests = 0
        self.times_us: list[int] = []

    def handle(self, sock: socket.socket, _address: Any) -> None:
        """Serve one keep-alive connection."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        try:
            while True:
                request_line = reader.readline(65536)
                if not request_line:
                    return
                length = 0
                while True:
                    line = reader.readline(65536)
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                if length:
                    reader.read(length)
                sock.sendall(self.respond(request_line))
        except OSError:
            return
        finally:
            reader.close()
            sock.close()

    def respond(self, request_line: bytes) -> bytes:
        """The whole response to one request (after its service time)."""
        if request_line.startswith(b"GET"):
            return self.response(HEALTH, "application/json", None)
        started = time.perf_counter()
        self.requests += 1
        tail = self.tail_every and self.requests % self.tail_every == 0
        gevent.sleep(self.tail_s if tail else self.service_s)
        spent_s = time.perf_counter() - started
        self.times_us.append(round(spent_s * 1e6))
        return self.response(TWIML, "text/xml", spent_s)

    @staticmethod
    def response(body: bytes, content_type: str, spent_s: float | None) -> bytes:
        """Status line, headers and body as one buffer."""
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        if spent_s is not None:
            head += f"Server-Timing: app;dur={spent_s * 1000:.3f}\r\n"
        return (head + "\r\n").encode() + body


class TargetProcess:
    """One target server process on a free loopback port."""

    def __init__(
        self, service_ms: float, *, tail_every: int = 0, tail_ms: float = 0.0, times_file: Path | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        """Base URL to load."""
        self.times_file = times_file
        command = [sys.executable, __file__, str(self.port), str(service_ms)]
        command += ["--tail-every", str(tail_every), "--tail-ms", str(tail_ms)]
        if times_file is not None:
            command += ["--times-file", str(times_file)]
        self.process = subprocess.Popen(command)
        if not wait_for_port("127.0.0.1", self.port, 10.0):
            self.stop()
            raise RuntimeError("arrival target did not start")

    @property
    def pid(self) -> int:
        """Process id (what the staller signals)."""
        return self.process.pid

    def stop(self) -> list[int]:
        """Stop the server; the service times it spent (us) when it was given a times file."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.times_file is None or not self.times_file.exists():
            return []
        return [int(line) for line in self.times_file.read_text().split()]


class Staller:
    """Freezes a process with SIGSTOP for ``stall_s`` every ``period_s`` until stopped; the stalls sit
    at ``period_s - stall_s`` ... ``period_s`` of each cycle, counted from :meth:`start`."""

    def __init__(self, pid: int, stall_s: float, period_s: float) -> None:
        if not 0 < stall_s <= period_s:
            raise ValueError(f"need 0 < stall_s ({stall_s}) <= period_s ({period_s})")
        self.pid, self.stall_s, self.period_s = pid, stall_s, period_s
        self.stalls = 0
        """Stalls completed."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="staller", daemon=True)

    def start(self) -> Staller:
        """Start the cycles (returns self)."""
        self._thread.start()
        return self

    def _run(self) -> None:
        cycle_start = time.monotonic()
        while True:
            freeze_at = cycle_start + self.period_s - self.stall_s
            if self._stop.wait(max(0.0, freeze_at - time.monotonic())):
                return
            os.kill(self.pid, signal.SIGSTOP)
            try:
                self._stop.wait(max(0.0, cycle_start + self.period_s - time.monotonic()))
            finally:
                os.kill(self.pid, signal.SIGCONT)
            self.stalls += 1
            cycle_start += self.period_s

    def stop(self) -> None:
        """End the cycles (the process is left running)."""
        self._stop.set()
        self._thread.join(timeout=self.period_s + 1)
        os.kill(self.pid, signal.SIGCONT)


def analytic_stall_p99_s(stall_s: float, period_s: float) -> float:
    """P99 of the latency of requests arriving at a constant rate at a target that stops for
    ``stall_s`` every ``period_s`` (service time ~0): an arrival ``u`` seconds into a stall waits
    ``stall_s - u``, so the share waiting more than ``x`` is ``(stall_s - x) / period_s``; 1% gives
    ``stall_s - 0.01·period_s``."""
    return stall_s - 0.01 * period_s


def main() -> None:
    """Run the server until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("service_ms", type=float)
    parser.add_argument("--tail-every", type=int, default=0)
    parser.add_argument("--tail-ms", type=float, default=0.0)
    parser.add_argument("--times-file", type=Path, default=None)
    args = parser.parse_args()
    target = Target(args.service_ms / 1000, args.tail_every, args.tail_ms / 1000)
    server = StreamServer(("127.0.0.1", args.port), target.handle, backlog=1024)

    def stop(*_: Any) -> None:
        if args.times_file is not None:
            args.times_file.write_text("".join(f"{value}\n" for value in target.times_us))
        server.close()
        sys.exit(0)

    gevent.signal_handler(signal.SIGTERM, stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
