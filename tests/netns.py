"""Separate hosts on one machine: Linux network namespaces joined by veth pairs through a bridge.

A :class:`Network` is a private layer-2 segment: one "switch" namespace holding a bridge, and one
namespace per :class:`Host`, each with its own loopback and one veth (``eth0``, a 10.x address)
whose peer sits on the bridge. Nothing is attached to the machine's own (root) namespace, so the
hosts reach each other only across the veths, and none of them reaches the machine's loopback
services (the shared Redis on 127.0.0.1:6379 is invisible from inside).

Every process started with :meth:`Host.popen` runs in its host's namespace and, with its own UTS
namespace, under its own hostname (so Locust client ids and collector writer records name the host).
Everything is created with names unique to this process (``ps-<pid>-<host>``) and removed on exit,
also when a test fails; processes still running in a namespace at teardown are killed by pid.

Usage::

    with Network(["master", "w1", "target"]) as net:
        server = net["target"].popen(["redis-server", "--bind", net["target"].address])
        ...

When ``ip netns`` is not permitted (no root, no CAP_SYS_ADMIN, a locked-down container), entering a
:class:`Network` calls ``pytest.skip`` with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

IP = "ip"
INTERFACE = "eth0"
"""Name of every host's veth end, inside its namespace."""
BRIDGE = "br0"
"""Name of the bridge inside the switch namespace."""
PREFIX_LENGTH = 24

_CONNECT_PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
except OSError as exc:
    print(type(exc).__name__, exc)
    sys.exit(1)
"""


class NetnsUnavailable(RuntimeError):
    """``ip netns`` cannot be used here (reason in the message)."""


def _ip(*args: str, check: bool = True, timeout_s: float = 10.0) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run([IP, *args], capture_output=True, text=True, timeout=timeout_s)
    except FileNotFoundError as exc:
        raise NetnsUnavailable("the `ip` command (iproute2) is not installed") from exc
    if check and result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, [IP, *args], result.stdout, result.stderr)
    return result


@dataclass(frozen=True, slots=True)
class Counters:
    """Byte and packet counters of one interface (as the kernel counts them)."""

    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int


class Host:
    """One namespace: loopback up and ``eth0`` with :attr:`address` on the network's bridge."""

    def __init__(self, network: Network, name: str, namespace: str, address: str) -> None:
        self.network = network
        self.name = name
        """Logical name (also the hostname its processes see)."""
        self.namespace = namespace
        """The ``ip netns`` name (unique to this test process)."""
        self.address = address
        """IPv4 address of ``eth0``, reachable from the other hosts only."""
        self.processes: list[subprocess.Popen[Any]] = []
        """Processes started with :meth:`popen` (killed at teardown if still running)."""

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run in this namespace, under this host's hostname."""
        return [
            IP, "netns", "exec", self.namespace,
            "unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', self.name, *argv,
        ]  # fmt: skip

    def popen(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> subprocess.Popen[Any]:
        """Start ``argv`` in this host (``ip netns exec``; every step execs, so the Popen's pid is the
        program's own and signals reach it). ``env`` replaces the environment when given."""
        process: subprocess.Popen[Any] = subprocess.Popen(
            self.command(argv), env=dict(env) if env is not None else None, **kwargs
        )
        self.processes.append(process)
        return process

    def run(
        self, argv: Sequence[str], timeout_s: float = 30.0, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in this host to its end; output captured as text."""
        return subprocess.run(self.command(argv), capture_output=True, text=True, timeout=timeout_s, **kwargs)

    def counters(self) -> Counters:
        """The kernel's counters of this host's ``eth0``."""
        result = _ip("-n", self.namespace, "-s", "-j", "link", "show", "dev", INTERFACE)
        stats = json.loads(result.stdout)[0]["stats64"]
        return Counters(
            rx_bytes=int(stats["rx"]["bytes"]),
            tx_bytes=int(stats["tx"]["bytes"]),
            rx_packets=int(stats["rx"]["packets"]),
            tx_packets=int(stats["tx"]["packets"]),
        )

    def can_connect(self, host: str, port: int, timeout_s: float = 2.0) -> bool:
        """True when a TCP connect from this host to ``host:port`` succeeds within ``timeout_s``."""
        result = self.run(
            [sys.executable, "-c", _CONNECT_PROBE, host, str(port), str(timeout_s)], timeout_s + 10
        )
        return result.returncode == 0

    def wait_for_port(self, host: str, port: int, timeout_s: float) -> bool:
        """True once a TCP connect from this host to ``host:port`` succeeds within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.can_connect(host, port, timeout_s=0.5):
                return True
            time.sleep(0.1)
        return False

    def __repr__(self) -> str:
        return f"Host({self.name!r}, namespace={self.namespace!r}, address={self.address!r})"


class Network:
    """A bridge namespace ("switch") and one namespace per host; a context manager.

    ``subnet`` is the first three octets of a private /24 (default ``10.<200 + pid % 50>.<pid % 250>``:
    the network is isolated from the machine's own, so any private range works; this one only keeps
    concurrent sessions' addresses apart in logs). Hosts get .1, .2, ... in the order given.
    """

    def __init__(self, host_names: Iterable[str], subnet: str | None = None, tag: str | None = None) -> None:
        pid = os.getpid()
        self.tag = tag or f"ps-{pid}"
        """Prefix of every namespace name."""
        self.subnet = subnet or f"10.{200 + pid % 50}.{pid % 250}"
        self.host_names = tuple(host_names)
        if len(set(self.host_names)) != len(self.host_names) or not self.host_names:
            raise ValueError(f"host names must be unique and non-empty: {self.host_names!r}")
        if len(self.host_names) > 250:
            raise ValueError("at most 250 hosts in one /24")
        self.switch = f"{self.tag}-switch"
        """Namespace of the bridge."""
        self.hosts: dict[str, Host] = {}
        self._created: list[str] = []

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> Network:
        try:
            self._add_namespace(self.switch)
        except NetnsUnavailable as exc:
            pytest.skip(f"network namespaces unavailable: {exc}")
        except subprocess.CalledProcessError as exc:
            self.close()
            pytest.skip(f"`ip netns` is not permitted here: {exc.stderr.strip() or exc}")
        try:
            _ip("-n", self.switch, "link", "add", BRIDGE, "type", "bridge")
            _ip("-n", self.switch, "link", "set", BRIDGE, "up")
            for index, name in enumerate(self.host_names, start=1):
                self._add_host(index, name)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _add_namespace(self, namespace: str) -> None:
        _ip("netns", "add", namespace)
        self._created.append(namespace)
        _ip("-n", namespace, "link", "set", "lo", "up")

    def _add_host(self, index: int, name: str) -> None:
        namespace = f"{self.tag}-{name}"
        self._add_namespace(namespace)
        peer = f"v{index}-{name}"[:15]  # the bridge port, inside the switch namespace
        # Both ends are created directly inside their namespaces: nothing ever appears in the
        # machine's own namespace, so no name there can clash and no interface there is touched.
        veth = ("type", "veth", "peer", "name", peer, "netns", self.switch)
        _ip("link", "add", INTERFACE, "netns", namespace, *veth)
        _ip("-n", self.switch, "link", "set", peer, "master", BRIDGE)
        _ip("-n", self.switch, "link", "set", peer, "up")
        address = f"{self.subnet}.{index}"
        _ip("-n", namespace, "addr", "add", f"{address}/{PREFIX_LENGTH}", "dev", INTERFACE)
        _ip("-n", namespace, "link", "set", INTERFACE, "up")
        self.hosts[name] = Host(self, name, namespace, address)

    def close(self) -> None:
        """Kill what still runs in the hosts, then delete every namespace (veths go with them)."""
        for host in self.hosts.values():
            for process in host.processes:
                if process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            for process in host.processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
        for namespace in reversed(self._created):
            self._kill_remaining(namespace)
            result = _ip("netns", "del", namespace, check=False)
            if result.returncode != 0:
                print(f"netns: could not delete {namespace}: {result.stderr.strip()}", file=sys.stderr)
        self._created.clear()

    @staticmethod
    def _kill_remaining(namespace: str) -> None:
        """Processes left in one of our namespaces (children of ours): killed by pid."""
        result = _ip("netns", "pids", namespace, check=False)
        for pid in (int(word) for word in result.stdout.split() if word.isdigit()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def namespaces(self) -> list[str]:
        """Namespaces this network created and has not deleted yet."""
        return list(self._created)


def existing_namespaces() -> set[str]:
    """Names ``ip netns list`` shows (every user's)."""
    result = _ip("netns", "list", check=False)
    return {line.split()[0] for line in result.stdout.splitlines() if line.strip()}


def repo_root() -> Path:
    """The checkout these tests belong to."""
    return Path(__file__).resolve().parent.parent


__all__ = [
    "BRIDGE",
    "INTERFACE",
    "Counters",
    "Host",
    "NetnsUnavailable",
    "Network",
    "existing_namespaces",
    "repo_root",
]
