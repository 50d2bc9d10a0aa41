"""Real failure injection: a share of operations go through real faults, not raised exceptions.

Fault kinds (every one produces the error a real client meets, through real sockets):

- ``reset``: the command goes to a loopback TCP server that accepts and resets the connection
  (``SO_LINGER 0``), so the client reads ``Connection reset by peer``.
- ``error``: the benchmark server itself answers with an error: a GET on a list key under the
  run's namespace, answered ``WRONGTYPE`` (through the pool, like any command).
- ``refused``: the server is down: the command goes to a loopback port that refuses
  connections (``ECONNREFUSED``).
- ``timeout``: the server hangs: the command goes to a loopback server that accepts and never
  answers; the client's read times out after the pool's own ``socket_timeout_s``.

Two schedules (see :class:`FaultPlan`):

- *scattered* faults: each operation outside an outage independently goes through ``error``
  with probability ``failure_injection_rate``: the server answers, with an error reply.
- *outages*: ``outages`` windows of ``outage_duration_s``, spread evenly over the process's
  operations, during which every operation fails: ``refused`` (Redis down), ``timeout`` (Redis
  hung) and ``reset`` (connections reset) in turn. They must trip the breaker, and the breaker
  must close again once the window is over.

Why the connection faults come in windows rather than scattered: a scattered fault that fails
slower than a normal command (a hung read, or a reset served by a loopback server that shares the
process's event loop) piles its callers up, and their failures then arrive in bursts; a
consecutive-failure breaker trips on the bursts, which says more about the injector than about the
system. An error reply arrives in line with the other replies of the same server.
"""

from __future__ import annotations

import contextlib
import enum
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from redis.connection import AbstractConnection

from perfsuite.config import RedisBenchConfig
from redis_bench.client import BenchClient, BoundedPool, resp_command

LOOPBACK = "127.0.0.1"


class FaultKind(enum.StrEnum):
    """How an injected operation fails."""

    RESET = "reset"
    ERROR = "error"
    REFUSED = "refused"
    TIMEOUT = "timeout"


SCATTERED_KINDS = (FaultKind.ERROR,)
"""The kinds scattered faults take, in turn."""
OUTAGE_KINDS = (FaultKind.REFUSED, FaultKind.TIMEOUT, FaultKind.RESET)
"""The kinds outage windows take, in turn."""


class InjectionDidNotFail(RuntimeError):
    """An injected fault unexpectedly succeeded (a bug in the fault endpoints, never expected)."""


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What to inject and when."""

    rate: float = 0.1
    """Probability that an operation outside an outage goes through a scattered fault."""
    outages: int = 2
    """Outage windows per process, spread evenly over its planned operations."""
    outage_duration_s: float = 1.5
    scattered_kinds: tuple[FaultKind, ...] = SCATTERED_KINDS
    outage_kinds: tuple[FaultKind, ...] = OUTAGE_KINDS

    @classmethod
    def from_config(cls, settings: RedisBenchConfig) -> FaultPlan:
        """The plan of ``redis_bench`` (nothing at all when ``test_circuit_breaker`` is off)."""
        if not settings.test_circuit_breaker:
            return cls(rate=0.0, outages=0)
        return cls(
            rate=settings.failure_injection_rate,
            outages=settings.outages,
            outage_duration_s=settings.outage_duration_s,
        )

    @property
    def active(self) -> bool:
        """True when anything is injected at all."""
        return self.rate > 0 or self.outages > 0


@dataclass(frozen=True, slots=True)
class OutageWindow:
    """One outage: its number (0-based), fault kind, and when it started and ends (epoch seconds)."""

    index: int
    kind: FaultKind
    start_s: float
    end_s: float


class FaultServers:
    """Misbehaving loopback TCP endpoints: one that resets, one that never answers, one that refuses.

    Served by daemon threads (greenlets when gevent has patched the process). ``close()`` stops them.
    """

    def __init__(self, accept_poll_s: float = 0.1, hold_s: float = 10.0) -> None:
        """``hold_s``: how long the silent server keeps an accepted connection before closing it."""
        self._accept_poll_s = accept_poll_s
        self._hold_s = hold_s
        self._stop = threading.Event()
        self._reset = self._listener()
        self._silent = self._listener()
        # Bound but never listening: connects are refused, and no one else can take the port.
        self._refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._refusing.bind((LOOPBACK, 0))
        self.accepted: dict[FaultKind, int] = {FaultKind.RESET: 0, FaultKind.TIMEOUT: 0}
        """Connections each server accepted."""
        self._threads = [
            threading.Thread(target=self._serve_reset, name="fault-reset", daemon=True),
            threading.Thread(target=self._serve_silent, name="fault-silent", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _listener(self) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, 0))
        listener.listen(1024)
        listener.settimeout(self._accept_poll_s)
        return listener

    @property
    def reset_port(self) -> int:
        """Port of the server that resets every connection."""
        return int(self._reset.getsockname()[1])

    @property
    def silent_port(self) -> int:
        """Port of the server that accepts and never answers."""
        return int(self._silent.getsockname()[1])

    @property
    def refusing_port(self) -> int:
        """Port that refuses connections."""
        return int(self._refusing.getsockname()[1])

    def port(self, kind: FaultKind) -> int:
        """The port a ``kind`` fault connects to (``error`` has none: it uses the real server)."""
        ports = {
            FaultKind.RESET: self.reset_port,
            FaultKind.TIMEOUT: self.silent_port,
            FaultKind.REFUSED: self.refusing_port,
        }
        if kind not in ports:
            raise ValueError(f"fault {kind.value!r} uses the benchmark server, not a fault port")
        return ports[kind]

    def _serve_reset(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._reset.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted[FaultKind.RESET] += 1
            with contextlib.suppress(OSError):
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()  # linger 0: the peer gets RST, not FIN
            # Yield after each reset: accepting a backlog in one go would hand its callers their
            # failures all at once, a burst of consecutive failures that no real network makes.
            time.sleep(0)

    def _serve_silent(self) -> None:
        held: list[tuple[float, socket.socket]] = []
        try:
            while not self._stop.is_set():
                try:
                    connection, _ = self._silent.accept()
                    self.accepted[FaultKind.TIMEOUT] += 1
                    held.append((time.monotonic(), connection))
                except (TimeoutError, OSError):
                    pass
                cutoff = time.monotonic() - self._hold_s
                while held and held[0][0] < cutoff:
                    held.pop(0)[1].close()
        finally:
            for _, connection in held:
                connection.close()

    def close(self) -> None:
        """Stop serving and close every socket."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        for sock in (self._reset, self._silent, self._refusing):
            sock.close()

    def __enter__(self) -> FaultServers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class FaultInjector:
    """Decides which operations go through a fault, and sends them there.

    ``choose`` is called once per operation (or pipeline) with the process's progress; ``inject``
    sends the commands through the chosen fault and raises the error it produced. ``injected``
    counts every fault this injector applied, per kind, independently of any report.
    """

    def __init__(
        self,
        plan: FaultPlan,
        servers: FaultServers | None,
        client: BenchClient,
        wrongtype_key: bytes | str,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        on_outage: Callable[[OutageWindow], None] | None = None,
    ) -> None:
        if plan.active and servers is None:
            raise ValueError("fault servers are needed to inject faults")
        self.plan = plan
        self.servers = servers
        self.client = client
        self.wrongtype_key = wrongtype_key
        self._wrongtype_get = resp_command("GET", wrongtype_key)
        self._rng = rng or random.Random()
        self._clock = clock
        self._on_outage = on_outage
        self._turn = 0
        self._outage: OutageWindow | None = None
        self.outages: list[OutageWindow] = []
        """Outage windows started so far."""
        self.injected: dict[FaultKind, int] = {kind: 0 for kind in FaultKind}
        """Operations sent through each fault (a pipeline counts once per command)."""

    @property
    def pool(self) -> BoundedPool:
        """The benchmark's pool (the ``error`` fault goes through it)."""
        return self.client.pool

    def in_outage(self) -> bool:
        """True while an outage window is open."""
        return self._outage is not None and self._clock() < self._outage.end_s

    def choose(self, done_ops: int, planned_ops: int) -> FaultKind | None:
        """The fault for the next operation, or None to send it to the server.

        ``done_ops`` / ``planned_ops`` is this process's progress; outage ``k`` (0-based) of ``n``
        starts when it reaches ``(k + 1) / (n + 1)``.
        """
        plan = self.plan
        now = self._clock()
        if self._outage is not None and now < self._outage.end_s:
            return self._outage.kind
        started = len(self.outages)
        due = planned_ops * (started + 1)
        if started < plan.outages and planned_ops > 0 and done_ops * (plan.outages + 1) >= due:
            kind = plan.outage_kinds[started % len(plan.outage_kinds)]
            window = OutageWindow(started, kind, now, now + plan.outage_duration_s)
            self._outage = window
            self.outages.append(window)
            if self._on_outage is not None:
                self._on_outage(window)
            return kind
        if plan.rate > 0 and self._rng.random() < plan.rate:
            kind = plan.scattered_kinds[self._turn % len(plan.scattered_kinds)]
            self._turn += 1
            return kind
        return None

    def inject(self, kind: FaultKind, commands: Sequence[bytes]) -> NoReturn:
        """Send ``commands`` (RESP bytes) through fault ``kind``; raises the error it produces."""
        self.injected[kind] += len(commands)
        if kind is FaultKind.ERROR:
            replies, _ = self.client.execute_many([self._wrongtype_get])
            if isinstance(replies[0], Exception):
                raise replies[0]
            raise InjectionDidNotFail(f"GET on the list key answered {replies[0]!r}")
        assert self.servers is not None
        connection = self.pool.new_connection(host=LOOPBACK, port=self.servers.port(kind))
        try:
            _send_and_read(connection, commands)
        finally:
            connection.disconnect()
        raise InjectionDidNotFail(f"fault {kind.value!r} answered")


def _send_and_read(connection: AbstractConnection, commands: Sequence[bytes]) -> Any:
    connection.connect()
    connection.send_packed_command([b"".join(commands)], check_health=False)
    return connection.read_response()


__all__ = [
    "OUTAGE_KINDS",
    "SCATTERED_KINDS",
    "FaultInjector",
    "FaultKind",
    "FaultPlan",
    "FaultServers",
    "InjectionDidNotFail",
    "OutageWindow",
]
