"""The benchmark's workload: operation mix, key choice, value sizes, and its own key namespace.

Every key the benchmark touches lives under one namespace, ``{redis_bench.key_prefix}{run_id}:``,
so two runs (or a run and the application) never share a key. The namespace is preloaded with
``key_space`` keys before the load starts (:func:`preload`) and removed afterwards
(:func:`cleanup`: SCAN with the namespace as an escaped glob, each key checked again against the
namespace, then UNLINK). Nothing outside the namespace is read, written or deleted.

Key choice is uniform, or Zipf-distributed (``zipf_s``) over a shuffled key order so that the hot
keys are spread over the key space. Values are random bytes with a size drawn uniformly from
``value_size_bytes``.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import redis

from perfsuite.config import RedisBenchConfig
from redis_bench.client import resp_command

PRELOAD_CHUNK = 1000
"""Keys written per pipeline when preloading."""

SCAN_COUNT = 1000
"""COUNT hint of each SCAN step during cleanup."""


class Operation(enum.StrEnum):
    """The operations of the mix; their values are the Redis commands and the request names."""

    GET = "GET"
    SET = "SET"
    DEL = "DEL"


class WorkItem(NamedTuple):
    """One command to send, already in the Redis protocol.

    A named tuple rather than a dataclass: one is built per operation, on the hot path.
    """

    operation: Operation
    key: bytes
    value_size: int
    """Bytes of the value written (0 for GET and DEL)."""
    packed: bytes
    """The command as RESP bytes, ready to send."""


def namespace_for(key_prefix: str, run_id: str) -> str:
    """The run's key namespace: ``{key_prefix}{run_id}:``."""
    return f"{key_prefix}{run_id}:"


def escape_glob(text: str) -> str:
    """``text`` with Redis glob metacharacters (``* ? [ ] \\``) escaped, for SCAN MATCH."""
    out = []
    for char in text:
        if char in "*?[]\\":
            out.append("\\")
        out.append(char)
    return "".join(out)


class Workload:
    """Draws the next command: operation by the mix, key by the distribution, value by size range.

    Commands are packed once per key when the workload is built (and values once per size draw
    table), so drawing one costs a few random numbers and one bytes concatenation for a SET.
    """

    VALUE_VARIANTS = 256
    """Distinct values prepared for writes (their sizes drawn uniformly from value_size_bytes)."""

    def __init__(self, settings: RedisBenchConfig, namespace: str, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.namespace = namespace
        """Every key this workload names starts with this."""
        self._rng = rng or random.Random()
        self._random = self._rng.random
        self.keys: list[bytes] = [self.key_name(index) for index in range(settings.key_space)]
        """The key space, in index order."""
        self.wrongtype_key: bytes = f"{namespace}fault:list".encode()
        """A list key the ``error`` fault GETs (answered WRONGTYPE)."""
        self._key_space = settings.key_space
        self._read_below = settings.read_percentage / 100
        self._write_below = (settings.read_percentage + settings.write_percentage) / 100
        low, high = settings.value_size_bytes
        blob = self._rng.randbytes(high)
        self.values: list[bytes] = []
        """The prepared values writes choose from."""
        for _ in range(self.VALUE_VARIANTS):
            size = self._rng.randint(low, high)
            start = self._rng.randrange(high - size + 1)
            self.values.append(blob[start : start + size])
        self._value_tails = [b"$%d\r\n%s\r\n" % (len(value), value) for value in self.values]
        self._get = [resp_command("GET", key) for key in self.keys]
        self._del = [resp_command("DEL", key) for key in self.keys]
        self._set_heads = [b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n" % (len(key), key) for key in self.keys]
        self._zipf_order: list[int] = []
        self._zipf_cdf: np.ndarray | None = None
        self._zipf_batch: list[int] = []
        self._np_rng = np.random.default_rng(self._rng.getrandbits(64))
        if settings.key_distribution == "zipf":
            ranks = np.arange(1, settings.key_space + 1, dtype=np.float64)
            weights = ranks**-settings.zipf_s
            cdf = np.cumsum(weights)
            self._zipf_cdf = cdf / cdf[-1]
            self._zipf_order = list(range(settings.key_space))
            self._rng.shuffle(self._zipf_order)

    def key_name(self, index: int) -> bytes:
        """Key number ``index`` of the key space."""
        return f"{self.namespace}k:{index}".encode()

    def next_key_index(self) -> int:
        """Index of the next key to touch (uniform, or Zipf by popularity rank)."""
        if self._zipf_cdf is None:
            return int(self._random() * self._key_space)
        if not self._zipf_batch:
            draws = self._np_rng.random(4096)
            ranks = np.searchsorted(self._zipf_cdf, draws, side="right")
            np.minimum(ranks, len(self._zipf_order) - 1, out=ranks)
            self._zipf_batch = [self._zipf_order[rank] for rank in ranks.tolist()]
        return self._zipf_batch.pop()

    def next_value(self) -> bytes:
        """A value of a size drawn uniformly from ``value_size_bytes``."""
        return self.values[int(self._random() * self.VALUE_VARIANTS)]

    def next_item(self) -> WorkItem:
        """The next command of the mix."""
        draw = self._random()
        index = self.next_key_index()
        if draw < self._read_below:
            return WorkItem(Operation.GET, self.keys[index], 0, self._get[index])
        if draw < self._write_below:
            variant = int(self._random() * self.VALUE_VARIANTS)
            packed = self._set_heads[index] + self._value_tails[variant]
            return WorkItem(Operation.SET, self.keys[index], len(self.values[variant]), packed)
        return WorkItem(Operation.DEL, self.keys[index], 0, self._del[index])


def preload(client: redis.Redis, workload: Workload) -> int:
    """Write every key of the key space (and the fault list key); returns the keys written.

    Runs before the load; pipelined in chunks of :data:`PRELOAD_CHUNK`.
    """
    written = 0
    for start in range(0, len(workload.keys), PRELOAD_CHUNK):
        pipe = client.pipeline(transaction=False)
        for key in workload.keys[start : start + PRELOAD_CHUNK]:
            pipe.set(key, workload.next_value())
        pipe.execute()
        written += len(workload.keys[start : start + PRELOAD_CHUNK])
    pipe = client.pipeline(transaction=True)
    pipe.delete(workload.wrongtype_key)
    pipe.rpush(workload.wrongtype_key, b"perfsuite injected WRONGTYPE")
    pipe.execute()
    return written + 1


def namespace_keys(client: redis.Redis, namespace: str) -> Iterator[bytes]:
    """Every key under ``namespace`` (SCAN, escaped pattern, prefix checked again)."""
    prefix = namespace.encode()
    for key in client.scan_iter(match=escape_glob(namespace) + "*", count=SCAN_COUNT):
        raw = key if isinstance(key, bytes) else str(key).encode()
        if raw.startswith(prefix):
            yield raw


def count_keys(client: redis.Redis, namespace: str) -> int:
    """How many keys exist under ``namespace``."""
    return sum(1 for _ in namespace_keys(client, namespace))


def cleanup(client: redis.Redis, namespace: str) -> int:
    """UNLINK every key under ``namespace`` and nothing else; returns how many were removed."""
    if not namespace:
        raise ValueError("refusing to clean up an empty namespace (it would match every key)")
    removed = 0
    batch: list[bytes] = []
    for key in namespace_keys(client, namespace):
        batch.append(key)
        if len(batch) >= SCAN_COUNT:
            removed += int(client.unlink(*batch))
            batch = []
    if batch:
        removed += int(client.unlink(*batch))
    return removed


__all__ = [
    "Operation",
    "WorkItem",
    "Workload",
    "cleanup",
    "count_keys",
    "escape_glob",
    "namespace_for",
    "namespace_keys",
    "preload",
]
