"""The fault proxy's TCP side: one listen address forwarded to one upstream, through toxics.

Every accepted connection gets its own upstream connection and two one-way links (``upstream``:
client -> server, ``downstream``: server -> client). A link has a reader greenlet that reads chunks
into a bounded buffer and a writer greenlet that passes them on through the toxics active on its
stream *at that moment*, so adding, changing or removing a toxic affects live connections at
once. Disabling a proxy stops listening (new connects are refused) and closes every connection:
the outage is real, no byte reaches the dependency.

Everything here runs in gevent greenlets; it needs no monkey-patching (it uses gevent's sockets).
"""

from __future__ import annotations

import collections
import itertools
import logging
import random
import socket as _stdlib_socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.event
from gevent import socket

from perfsuite.faults.errors import ApiError, FaultError
from perfsuite.faults.toxics import (
    STREAMS,
    BandwidthToxic,
    LatencyToxic,
    ResetPeerToxic,
    TimeoutToxic,
    Toxic,
)

logger = logging.getLogger("perfsuite.faults")

CHUNK_BYTES = 32 * 1024
"""Largest read from a socket."""
BUFFER_BYTES = 256 * 1024
"""Bytes one direction of a connection holds at most; beyond it the reader stops reading (TCP
back-pressure reaches the sender), so a slow toxic never makes the proxy grow."""
BANDWIDTH_SLICE_S = 0.1
"""A bandwidth-limited stream sends at most this many seconds' worth of bytes at once."""
CLOSE_TIMEOUT_S = 2.0
"""Longest wait for a connection's or a listener's greenlets to end when closing them."""


def parse_address(text: str, what: str = "address", allow_port_zero: bool = False) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) -> ``(host, port)``; raises ValueError naming ``what``."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"{what} must be HOST:PORT such as 127.0.0.1:6379, got {text!r}")
    port = int(port_text)
    if not (0 if allow_port_zero else 1) <= port <= 65535:
        raise ValueError(f"{what} port must be 1..65535, got {port}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


def format_address(host: str, port: int) -> str:
    """``(host, port)`` -> ``host:port``, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class _Installed:
    """A toxic as installed on a proxy; ``seq`` tells a re-added toxic from the one it replaced."""

    seq: int
    toxic: Toxic


@dataclass(slots=True)
class _Hold:
    """How one installed toxic affects one link (drawn and timed when the link first meets it)."""

    seq: int
    toxic: Toxic
    applies: bool
    since: float
    trigger_at: float | None = None


@dataclass(slots=True)
class _Chunk:
    data: memoryview
    read_at: float
    size: int
    delays: dict[int, float] = field(default_factory=dict)


def _earliest(current: float | None, candidate: float) -> float:
    return candidate if current is None else min(current, candidate)


class _Link:
    """One direction of one connection: a reader, a bounded buffer and a writer applying toxics."""

    def __init__(self, conn: _Connection, stream: str, source: Any, dest: Any) -> None:
        self.conn = conn
        self.stream = stream
        self.source = source
        self.dest = dest
        self.pending: collections.deque[_Chunk] = collections.deque()
        self.pending_bytes = 0
        self.eof = False
        self.finished = False
        self.wake = gevent.event.Event()
        """Set when data or EOF arrives or the proxy's toxics change."""
        self.room = gevent.event.Event()
        """Set when the writer frees buffer space."""
        self.holds: dict[int, _Hold] = {}
        self.next_send_at = 0.0

    def read(self) -> None:
        """Reader greenlet: source -> buffer, waiting while the buffer is full.

        With no toxic on the stream and nothing queued, the reader sends the data on itself (the
        common case, and the one the proxy's own overhead matters in); otherwise the writer does.
        """
        proxy = self.conn.proxy
        try:
            while True:
                while self.pending_bytes >= BUFFER_BYTES:
                    self.room.clear()
                    self.room.wait()
                data = self.source.recv(CHUNK_BYTES)
                if not data:
                    break
                if not self.pending and not self.holds and not proxy.has_toxics(self.stream):
                    self.dest.sendall(data)
                    continue
                self.pending.append(_Chunk(memoryview(data), proxy.clock(), len(data)))
                self.pending_bytes += len(data)
                self.wake.set()
        except OSError:
            self.conn.close()
            return
        self.eof = True
        self.wake.set()

    def write(self) -> None:
        """Writer greenlet: buffer -> destination through the toxics; never spins (waits on events)."""
        proxy = self.conn.proxy
        while not self.conn.closed:
            self.wake.clear()
            now = proxy.clock()
            holds = self._current_holds(now)
            if holds is None:
                return
            wait_until: float | None = None
            blocked = False
            for hold in holds:
                toxic = hold.toxic
                if isinstance(toxic, ResetPeerToxic):
                    if hold.trigger_at is None and self.pending:
                        hold.trigger_at = now + toxic.timeout_ms / 1000.0
                    if hold.trigger_at is not None:
                        if now >= hold.trigger_at:
                            self.conn.close(reset=True)
                            return
                        wait_until = _earliest(wait_until, hold.trigger_at)
                        blocked = True
                elif isinstance(toxic, TimeoutToxic):
                    blocked = True
                    if toxic.timeout_ms:
                        deadline = hold.since + toxic.timeout_ms / 1000.0
                        if now >= deadline:
                            self.conn.close()
                            return
                        wait_until = _earliest(wait_until, deadline)
            if blocked:
                self._drop_pending()
                if self.eof and wait_until is None:
                    self.conn.close()
                    return
            elif self.pending:
                due = self._send_due(self.pending[0], holds, now)
                if due is None:
                    continue
                wait_until = due
            elif self.eof:
                self._finish()
                return
            self.wake.wait(None if wait_until is None else max(0.0, wait_until - proxy.clock()))

    def _current_holds(self, now: float) -> list[_Hold] | None:
        """The holds of the toxics now on this stream that apply here; None if the link closed."""
        proxy = self.conn.proxy
        installed = proxy.installed(self.stream)
        current = {item.seq for item in installed}
        for seq in [seq for seq in self.holds if seq not in current]:
            gone = self.holds.pop(seq)
            if gone.applies and isinstance(gone.toxic, TimeoutToxic):
                # As in Toxiproxy: removing a timeout toxic closes what it held (its data is lost).
                self.conn.close()
                return None
        holds = []
        for item in installed:
            hold = self.holds.get(item.seq)
            if hold is None:
                applies = item.toxic.toxicity >= 1 or proxy.rng.random() < item.toxic.toxicity
                hold = self.holds[item.seq] = _Hold(item.seq, item.toxic, applies, now)
            if hold.applies:
                holds.append(hold)
        return holds

    def _send_due(self, chunk: _Chunk, holds: list[_Hold], now: float) -> float | None:
        """Send (part of) ``chunk`` if its time has come; else the time to wait until."""
        due = chunk.read_at
        rate = 0
        for hold in holds:
            toxic = hold.toxic
            if isinstance(toxic, LatencyToxic):
                if hold.seq not in chunk.delays:
                    chunk.delays[hold.seq] = toxic.delay_s(self.conn.proxy.rng)
                due += chunk.delays[hold.seq]
            elif isinstance(toxic, BandwidthToxic) and toxic.bytes_per_s:
                rate = toxic.bytes_per_s if not rate else min(rate, toxic.bytes_per_s)
        if now < due:
            return due
        if rate:
            if now < self.next_send_at:
                return self.next_send_at
            piece = chunk.data[: max(1, int(rate * BANDWIDTH_SLICE_S))]
            self.next_send_at = max(self.next_send_at, now) + len(piece) / rate
        else:
            piece = chunk.data
        try:
            self.dest.sendall(piece)
        except OSError:
            self.conn.close()
            return None
        chunk.data = chunk.data[len(piece) :]
        if not chunk.data:
            self.pending.popleft()
            self.pending_bytes -= chunk.size
            self.room.set()
        return None

    def _drop_pending(self) -> None:
        if self.pending:
            self.pending.clear()
            self.pending_bytes = 0
            self.room.set()

    def _finish(self) -> None:
        """The source ended and everything was sent: half-close the destination."""
        try:
            self.dest.shutdown(_stdlib_socket.SHUT_WR)
        except OSError:
            self.conn.close()
            return
        self.finished = True
        self.conn.link_finished()


class _Connection:
    """One client connection and its upstream connection; ``close`` ends both, once."""

    def __init__(self, proxy: Proxy, client: Any, upstream: Any) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.closed = False
        self.links = (
            _Link(self, "upstream", client, upstream),
            _Link(self, "downstream", upstream, client),
        )
        self.greenlets: list[gevent.Greenlet] = []
        self.done = gevent.event.Event()
        """Set once both sockets are closed."""

    def start(self) -> None:
        for link in self.links:
            self.greenlets.append(gevent.spawn(link.read))
            self.greenlets.append(gevent.spawn(link.write))

    def notify(self) -> None:
        """Wake both writers so that they look at the proxy's toxics again."""
        for link in self.links:
            link.wake.set()

    def link_finished(self) -> None:
        if all(link.finished for link in self.links):
            self.close()

    def close(self, reset: bool = False) -> None:
        """Close both sockets (with ``reset``: abortively, so both peers get a TCP RST).

        The connection's other greenlets are ended first: gevent defers closing a socket that a
        greenlet waits on, and when ``close`` returns the sockets must really be closed.
        """
        if self.closed:
            if gevent.getcurrent() not in self.greenlets:
                self.done.wait(CLOSE_TIMEOUT_S)  # closing under way elsewhere: finish together
            return
        self.closed = True
        current = gevent.getcurrent()
        gevent.killall([g for g in self.greenlets if g is not current], block=True, timeout=CLOSE_TIMEOUT_S)
        for sock in (self.client, self.upstream):
            try:
                if reset:
                    sock.setsockopt(
                        _stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                sock.close()
            except OSError:
                pass
        self.proxy.forget(self)
        self.done.set()


class Proxy:
    """A TCP proxy from ``listen`` to ``upstream`` whose connections pass through toxics.

    Not thread-safe: use it from greenlets of one gevent hub (the API server does).
    """

    def __init__(
        self,
        name: str,
        listen: str,
        upstream: str,
        *,
        connect_timeout_s: float = 5.0,
        max_connections: int = 1000,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not name:
            raise ValueError("a proxy needs a name")
        parse_address(listen, "listen", allow_port_zero=True)
        parse_address(upstream, "upstream")
        self.name = name
        """Unique name (``redis``)."""
        self.listen = listen
        """Listen address; after the first start the address actually bound (port 0 resolved)."""
        self.upstream = upstream
        """Address every connection is forwarded to, resolved at each connect (DNS names work)."""
        self.connect_timeout_s = connect_timeout_s
        """Seconds to wait for the upstream connect; a client whose upstream fails is closed."""
        self.max_connections = max_connections
        """Connections beyond this many are closed at once."""
        self.rng = rng or random.Random()
        """Draws toxicity and jitter."""
        self.clock = clock
        """Monotonic seconds."""
        self._enabled = False
        self._listener: Any = None
        self._acceptor: gevent.Greenlet | None = None
        self._opening: set[gevent.Greenlet] = set()
        self._connections: set[_Connection] = set()
        self._toxics: list[_Installed] = []
        self._seq = itertools.count(1)

    # -- state ---------------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """True while the proxy listens and forwards."""
        return self._enabled

    @property
    def connection_count(self) -> int:
        """Connections open through the proxy right now."""
        return len(self._connections)

    def to_json(self) -> dict[str, Any]:
        """The proxy object of Toxiproxy's API: name, listen, upstream, enabled, toxics."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self._enabled,
            "toxics": [toxic.to_json() for toxic in self.toxics],
        }

    def enable(self) -> None:
        """Listen and forward (no-op when enabled); raises FaultError if the address is taken."""
        if self._enabled:
            return
        host, port = parse_address(self.listen, "listen", allow_port_zero=True)
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host or None, port, 0, _stdlib_socket.SOCK_STREAM, 0, _stdlib_socket.AI_PASSIVE
            )[0]
            listener = socket.socket(family, kind, proto)
        except OSError as exc:
            raise FaultError(f"proxy {self.name}: cannot listen on {self.listen}: {exc}") from None
        try:
            listener.setsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_REUSEADDR, 1)
            listener.bind(address)
            listener.listen(128)
        except OSError as exc:
            listener.close()
            raise FaultError(f"proxy {self.name}: cannot listen on {self.listen}: {exc.strerror}") from None
        bound_host, bound_port = listener.getsockname()[:2]
        self.listen = format_address(bound_host, bound_port)
        self._listener = listener
        self._enabled = True
        self._acceptor = gevent.spawn(self._accept_loop, listener)
        logger.info("proxy %s: listening on %s -> %s", self.name, self.listen, self.upstream)

    def disable(self) -> None:
        """Stop listening (connects are refused) and close every connection (no-op when disabled)."""
        if not self._enabled:
            return
        self._enabled = False
        # End the greenlets waiting on the listener first, so that it closes now (not deferred).
        if self._acceptor is not None:
            self._acceptor.kill(block=True, timeout=CLOSE_TIMEOUT_S)
            self._acceptor = None
        gevent.killall(list(self._opening), block=True, timeout=CLOSE_TIMEOUT_S)
        self._opening.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for conn in list(self._connections):
            conn.close()
        logger.info("proxy %s: disabled", self.name)

    def update(
        self, *, listen: str | None = None, upstream: str | None = None, enabled: bool | None = None
    ) -> None:
        """Toxiproxy's proxy update: a new listen or upstream restarts the proxy (closing its
        connections); ``enabled`` then starts or stops it."""
        new_listen = self.listen if listen is None else listen
        new_upstream = self.upstream if upstream is None else upstream
        parse_address(new_listen, "listen", allow_port_zero=True)
        parse_address(new_upstream, "upstream")
        want_enabled = self._enabled if enabled is None else enabled
        if new_listen != self.listen or new_upstream != self.upstream:
            self.disable()
            self.listen, self.upstream = new_listen, new_upstream
        if want_enabled:
            self.enable()
        else:
            self.disable()

    def close(self) -> None:
        """Disable the proxy for good (server shutdown)."""
        self.disable()

    # -- toxics --------------------------------------------------------------------------------

    @property
    def toxics(self) -> tuple[Toxic, ...]:
        """Active toxics, in the order they were added."""
        return tuple(item.toxic for item in self._toxics)

    def has_toxics(self, stream: str) -> bool:
        """True if any toxic is on ``stream``."""
        return any(item.toxic.stream == stream for item in self._toxics)

    def installed(self, stream: str) -> list[_Installed]:
        """The toxics on ``stream`` (``upstream`` or ``downstream``) with their install numbers."""
        return [item for item in self._toxics if item.toxic.stream == stream]

    def toxic(self, name: str) -> Toxic:
        """The active toxic called ``name``; ApiError 404 if there is none."""
        return self._find(name).toxic

    def add_toxic(self, toxic: Toxic) -> Toxic:
        """Add ``toxic``; it takes hold of live connections at once. ApiError 409 if the name is taken."""
        if toxic.stream not in STREAMS:
            raise ApiError("stream was invalid, can be either upstream or downstream", 400)
        if any(item.toxic.name == toxic.name for item in self._toxics):
            raise ApiError("toxic already exists", 409)
        self._toxics.append(_Installed(next(self._seq), toxic))
        self._notify()
        logger.info("proxy %s: toxic %s added: %s", self.name, toxic.name, toxic.to_json())
        return toxic

    def replace_toxic(self, toxic: Toxic) -> Toxic:
        """Put ``toxic`` in place of the toxic with its name (a new draw of toxicity per connection)."""
        old = self._find(toxic.name)
        self._toxics[self._toxics.index(old)] = _Installed(old.seq, toxic)
        for conn in self._connections:
            for link in conn.links:
                hold = link.holds.get(old.seq)
                if hold is not None:
                    hold.toxic = toxic
                    hold.applies = toxic.toxicity >= 1 or self.rng.random() < toxic.toxicity
        self._notify()
        logger.info("proxy %s: toxic %s updated: %s", self.name, toxic.name, toxic.to_json())
        return toxic

    def remove_toxic(self, name: str) -> None:
        """Remove the toxic called ``name`` (ApiError 404 if there is none)."""
        self._toxics.remove(self._find(name))
        self._notify()
        logger.info("proxy %s: toxic %s removed", self.name, name)

    def reset_toxics(self) -> None:
        """Remove every toxic."""
        if self._toxics:
            self._toxics.clear()
            self._notify()
            logger.info("proxy %s: toxics removed", self.name)

    # -- internals -----------------------------------------------------------------------------

    def forget(self, conn: _Connection) -> None:
        """Called by a connection when it closed."""
        self._connections.discard(conn)

    def _find(self, name: str) -> _Installed:
        for item in self._toxics:
            if item.toxic.name == name:
                return item
        raise ApiError("toxic not found", 404)

    def _notify(self) -> None:
        for conn in list(self._connections):
            conn.notify()

    def _accept_loop(self, listener: Any) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                if not self._enabled:
                    return
                gevent.sleep(0.05)  # e.g. EMFILE: do not spin while descriptors are short
                continue
            if len(self._connections) + len(self._opening) >= self.max_connections:
                logger.warning("proxy %s: %d connections, refusing one more", self.name, self.max_connections)
                client.close()
                continue
            opener = gevent.spawn(self._open, client)
            self._opening.add(opener)
            opener.link(self._opening.discard)

    def _open(self, client: Any) -> None:
        host, port = parse_address(self.upstream, "upstream")
        try:
            upstream = socket.create_connection((host, port), timeout=self.connect_timeout_s)
        except OSError as exc:
            logger.warning("proxy %s: cannot connect to upstream %s: %s", self.name, self.upstream, exc)
            client.close()
            return
        except BaseException:
            client.close()
            raise
        if not self._enabled:
            client.close()
            upstream.close()
            return
        for sock in (client, upstream):
            sock.settimeout(None)
            sock.setsockopt(_stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NODELAY, 1)
        conn = _Connection(self, client, upstream)
        self._connections.add(conn)
        conn.start()


__all__ = ["BANDWIDTH_SLICE_S", "BUFFER_BYTES", "CHUNK_BYTES", "Proxy", "format_address", "parse_address"]
