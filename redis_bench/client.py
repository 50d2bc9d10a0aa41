"""The benchmark's Redis client: a bounded, instrumented connection pool and a thin command runner.

The pool (:class:`BoundedPool`) opens ``keep_idle`` connections ahead of the load and keeps them
(the seed's ``pool_size``); under load it grows up to ``max_connections`` and never beyond: a caller
that finds every connection busy waits up to ``wait_timeout_s`` for one, then gets
:class:`PoolTimeoutError`. Connections above ``keep_idle`` are closed once they have sat idle for
``overflow_idle_s`` (a pool that closed them at once would reconnect all the time under load).
Idle connections are reused most-recently-released first, so surplus ones age out. Waiting callers
are served first come, first served: a released connection goes straight to the oldest waiter, so
no caller jumps the queue and the wait figures are those of a fair pool. It
counts exactly what a user needs to judge it: connections in use, idle, open, the peak in use,
how many acquisitions had to wait and for how long, timeouts, connects and reconnects.

Connections are redis-py's own (:class:`redis.connection.Connection`, with the hiredis parser when
installed), built from a ``redis://``, ``rediss://`` or ``unix://`` URL with the configured
connect and socket (command) timeouts and *no* hidden retries: every failure reaches the caller,
which is what a benchmark must count. Results are judged by exceptions, never by reply values
(redis-py turns SET's ``+OK`` into ``True`` only through client-level callbacks; here the raw reply
is returned and a command that did not raise succeeded).

Safe for greenlets and OS threads.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.connection import AbstractConnection
from redis.exceptions import ResponseError
from redis.retry import Retry

from perfsuite.config import RedisBenchConfig, redact_url
from perfsuite.errors import ConfigError

_NO_CLIENT_SETINFO: dict[str, Any] = (
    {"driver_info": None}
    if "driver_info" in inspect.signature(AbstractConnection.__init__).parameters
    else {"lib_name": None, "lib_version": None}  # redis-py before 7
)


def resp_command(*args: bytes | str) -> bytes:
    """``args`` as one RESP array of bulk strings (what redis-py and hiredis send)."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class PoolTimeoutError(redis.exceptions.ConnectionError):
    """No pooled connection became free within the pool's wait timeout."""


def connection_settings(
    url: str, connect_timeout_s: float, socket_timeout_s: float
) -> tuple[type, dict[str, Any]]:
    """The redis-py connection class and keyword arguments for ``url`` with the given timeouts.

    No retries (a failure must surface once, as it happened) and no CLIENT SETINFO handshake.
    A URL that redis-py cannot parse is a :class:`ConfigError` (password redacted).
    """
    try:
        template = redis.ConnectionPool.from_url(
            url,
            socket_connect_timeout=connect_timeout_s,
            socket_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0),
            **_NO_CLIENT_SETINFO,
        )
    except ValueError as exc:
        raise ConfigError(f"redis_bench.url: {redact_url(url)!r} is not a usable Redis URL: {exc}") from None
    return template.connection_class, dict(template.connection_kwargs)


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of the pool's gauges and counters."""

    max_connections: int
    keep_idle: int
    in_use: int
    idle: int
    waiting: int
    """Callers blocked waiting for a connection right now."""
    peak_in_use: int
    """Most connections in use at once since the pool was created."""
    interval_peak_in_use: int
    """Most in use at once since the previous :meth:`BoundedPool.sample` call."""
    acquires: int
    waits: int
    """Acquisitions that found every connection busy and had to wait."""
    wait_total_s: float
    wait_max_s: float
    timeouts: int
    """Acquisitions that gave up after ``wait_timeout_s``."""
    connects: int
    """Successful socket connects (first connects and reconnects)."""
    reconnects: int
    """Connects of a connection that had been dropped after an error."""
    connect_failures: int
    closed: int
    """Connections above ``keep_idle`` closed after ``overflow_idle_s`` idle."""
    broken: int
    """Connections dropped after an I/O error or timeout."""

    @property
    def open(self) -> int:
        """Connections open right now (in use + idle)."""
        return self.in_use + self.idle

    @property
    def utilization(self) -> float:
        """Share of ``max_connections`` in use right now."""
        return self.in_use / self.max_connections

    @property
    def peak_utilization(self) -> float:
        """Share of ``max_connections`` in use at the peak."""
        return self.peak_in_use / self.max_connections

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form with the derived gauges."""
        return {
            **asdict(self),
            "open": self.open,
            "utilization": self.utilization,
            "peak_utilization": self.peak_utilization,
        }


class _Waiter:
    """A caller waiting for a connection; the releaser hands it over directly."""

    __slots__ = ("connection", "ready")

    def __init__(self) -> None:
        self.connection: AbstractConnection | None = None
        self.ready = threading.Event()


class BoundedPool:
    """A blocking pool of at most ``max_connections`` connections (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 50,
        keep_idle: int = 20,
        wait_timeout_s: float = 2.0,
        connect_timeout_s: float = 1.0,
        socket_timeout_s: float = 1.0,
        overflow_idle_s: float = 5.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """``clock`` (monotonic seconds) times waits and idleness; a parameter so tests can drive it."""
        if max_connections < 1:
            raise ConfigError(f"redis_bench.max_connections: must be >= 1, got {max_connections}")
        if not 0 <= keep_idle <= max_connections:
            raise ConfigError(
                f"redis_bench.pool_size: must be between 0 and max_connections ({max_connections}), "
                f"got {keep_idle}"
            )
        self.url = redact_url(url) or ""
        """The server's URL, password redacted."""
        self.max_connections = max_connections
        self.keep_idle = keep_idle
        self.wait_timeout_s = wait_timeout_s
        self.overflow_idle_s = overflow_idle_s
        self.connect_timeout_s = connect_timeout_s
        self.socket_timeout_s = socket_timeout_s
        """Read/write (command) timeout of every pooled connection, seconds."""
        self._connection_class, self._connection_kwargs = connection_settings(
            url, connect_timeout_s, socket_timeout_s
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._waiters: deque[_Waiter] = deque()
        """Callers waiting for a connection, oldest first."""
        self._idle: deque[tuple[AbstractConnection, float]] = deque()
        """(connection, released at) pairs, oldest on the left; taken from the right."""
        self._in_use = 0
        self._ever_connected: set[int] = set()
        self._peak = 0
        self._interval_peak = 0
        self._acquires = 0
        self._waits = 0
        self._wait_total_s = 0.0
        self._wait_max_s = 0.0
        self._timeouts = 0
        self._connects = 0
        self._reconnects = 0
        self._connect_failures = 0
        self._closed = 0
        self._broken = 0

    @classmethod
    def from_config(cls, url: str, settings: RedisBenchConfig) -> BoundedPool:
        """A pool with the sizes and timeouts of ``redis_bench``."""
        return cls(
            url,
            max_connections=settings.max_connections,
            keep_idle=settings.pool_size,
            wait_timeout_s=settings.pool_wait_timeout_s,
            connect_timeout_s=settings.connect_timeout_s,
            socket_timeout_s=settings.socket_timeout_s,
        )

    def new_connection(self, **overrides: Any) -> AbstractConnection:
        """A fresh, unpooled connection to the same server (``overrides`` change its kwargs)."""
        connection: AbstractConnection = self._connection_class(**{**self._connection_kwargs, **overrides})
        return connection

    def prewarm(self, count: int | None = None) -> int:
        """Open ``count`` (default ``keep_idle``) connections now; returns how many are idle."""
        wanted = self.keep_idle if count is None else min(count, self.max_connections)
        taken: list[AbstractConnection] = []
        try:
            while len(taken) < wanted:
                connection, _ = self.acquire()
                taken.append(connection)
        finally:
            for connection in taken:
                self.release(connection)
        return len(self._idle)

    def acquire(self) -> tuple[AbstractConnection, float]:
        """A connected connection and the seconds spent waiting for it (0.0 without a wait).

        Raises :class:`PoolTimeoutError` after ``wait_timeout_s``, or the connect error.
        """
        waiter: _Waiter | None = None
        with self._lock:
            self._acquires += 1
            connection = None if self._waiters else self._take_locked()
            if connection is None:
                waiter = _Waiter()
                self._waiters.append(waiter)
        waited_s = 0.0
        if waiter is not None:
            started = self._clock()
            waiter.ready.wait(self.wait_timeout_s)
            with self._lock:
                connection = waiter.connection
                if connection is None:
                    self._waiters.remove(waiter)
                waited_s = self._clock() - started
                self._waits += 1
                self._wait_total_s += waited_s
                self._wait_max_s = max(self._wait_max_s, waited_s)
                if connection is None:
                    self._timeouts += 1
                    raise PoolTimeoutError(
                        f"no free connection within {self.wait_timeout_s:g} s "
                        f"(all {self.max_connections} in use)"
                    )
        assert connection is not None
        try:
            if getattr(connection, "_sock", None) is None:
                self._connect(connection)
        except BaseException:
            self._give_back(connection)
            raise
        return connection, waited_s

    def _take_locked(self) -> AbstractConnection | None:
        if self._idle:
            connection = self._idle.pop()[0]
        elif self._in_use + len(self._idle) < self.max_connections:
            connection = self.new_connection()
        else:
            return None
        self._in_use += 1
        if self._in_use > self._peak:
            self._peak = self._in_use
        if self._in_use > self._interval_peak:
            self._interval_peak = self._in_use
        return connection

    def _connect(self, connection: AbstractConnection) -> None:
        try:
            connection.connect()
        except BaseException:
            with self._lock:
                self._connect_failures += 1
            raise
        with self._lock:
            self._connects += 1
            if id(connection) in self._ever_connected:
                self._reconnects += 1
            else:
                self._ever_connected.add(id(connection))

    def release(self, connection: AbstractConnection, *, broken: bool = False) -> None:
        """Give ``connection`` back; ``broken`` (after an I/O error or timeout) disconnects it first,
        so that its next user reconnects (counted as a reconnect)."""
        if broken:
            connection.disconnect()
            with self._lock:
                self._broken += 1
        self._give_back(connection)

    def _give_back(self, connection: AbstractConnection) -> None:
        """Hand ``connection`` to the longest-waiting caller, else put it back to idle (and close
        connections above ``keep_idle`` that have idled for ``overflow_idle_s``)."""
        now = self._clock()
        expired: list[AbstractConnection] = []
        with self._lock:
            if self._waiters:  # first come, first served: no caller can jump the queue
                waiter = self._waiters.popleft()
                waiter.connection = connection
                waiter.ready.set()
                return
            self._in_use -= 1
            self._idle.append((connection, now))
            idle = self._idle
            while len(idle) > self.keep_idle and now - idle[0][1] > self.overflow_idle_s:
                stale = idle.popleft()[0]
                self._closed += 1
                self._ever_connected.discard(id(stale))
                expired.append(stale)
        for stale in expired:
            stale.disconnect()

    def stats(self, reset_interval: bool = False) -> PoolStats:
        """The current :class:`PoolStats`; ``reset_interval`` starts a new interval peak."""
        with self._lock:
            stats = PoolStats(
                max_connections=self.max_connections,
                keep_idle=self.keep_idle,
                in_use=self._in_use,
                idle=sum(1 for c, _ in self._idle if getattr(c, "_sock", None) is not None),
                waiting=len(self._waiters),
                peak_in_use=self._peak,
                interval_peak_in_use=self._interval_peak,
                acquires=self._acquires,
                waits=self._waits,
                wait_total_s=self._wait_total_s,
                wait_max_s=self._wait_max_s,
                timeouts=self._timeouts,
                connects=self._connects,
                reconnects=self._reconnects,
                connect_failures=self._connect_failures,
                closed=self._closed,
                broken=self._broken,
            )
            if reset_interval:
                self._interval_peak = self._in_use
        return stats

    def close(self) -> None:
        """Disconnect every idle connection (connections in use are closed when released)."""
        with self._lock:
            idle, self._idle = self._idle, deque()
            self.keep_idle = 0
            self.overflow_idle_s = 0.0
        for connection, _ in idle:
            connection.disconnect()

    def __repr__(self) -> str:
        return (
            f"BoundedPool(url={self.url!r}, max_connections={self.max_connections}, "
            f"keep_idle={self.keep_idle})"
        )


class BenchClient:
    """Runs commands through a :class:`BoundedPool`: one command, or several in one round trip."""

    def __init__(self, pool: BoundedPool) -> None:
        self.pool = pool

    def execute(self, packed: bytes) -> tuple[Any, float]:
        """Send one command (RESP bytes, see :func:`resp_command`); returns (raw reply, seconds
        waited for a connection).

        A reply that is an error raises :class:`redis.exceptions.ResponseError` (the connection
        stays usable); an I/O error or timeout raises and drops the connection.
        """
        connection, waited_s = self.pool.acquire()
        try:
            connection.send_packed_command([packed], check_health=False)
            reply = connection.read_response()
        except ResponseError:
            self.pool.release(connection)
            raise
        except BaseException:
            self.pool.release(connection, broken=True)
            raise
        self.pool.release(connection)
        return reply, waited_s

    def execute_many(self, commands: Sequence[bytes]) -> tuple[list[Any], float]:
        """Send ``commands`` (RESP bytes each) pipelined in one round trip (no MULTI).

        Returns (one entry per command: the raw reply, or the :class:`ResponseError` the server
        answered for that command; seconds waited for a connection). An I/O error or timeout
        raises for the whole batch.
        """
        connection, waited_s = self.pool.acquire()
        replies: list[Any] = []
        try:
            connection.send_packed_command([b"".join(commands)], check_health=False)
            for _ in commands:
                try:
                    replies.append(connection.read_response())
                except ResponseError as error:
                    replies.append(error)
        except BaseException:
            self.pool.release(connection, broken=True)
            raise
        self.pool.release(connection)
        return replies, waited_s

    def close(self) -> None:
        """Close the pool's idle connections."""
        self.pool.close()


def ping_once(connection: AbstractConnection, clock: Callable[[], float] = time.perf_counter) -> float:
    """Round-trip seconds of one PING on ``connection`` (connecting first if needed; raises on error)."""
    if getattr(connection, "_sock", None) is None:
        connection.connect()
    started = clock()
    try:
        connection.send_command("PING", check_health=False)
        connection.read_response()
    except BaseException:
        connection.disconnect()
        raise
    return clock() - started


__all__ = [
    "BenchClient",
    "BoundedPool",
    "PoolStats",
    "PoolTimeoutError",
    "connection_settings",
    "ping_once",
    "resp_command",
]
