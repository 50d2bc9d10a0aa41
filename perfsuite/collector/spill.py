"""Entries bound for Redis, the spill file that keeps them when Redis is away, and its replay.

An entry is one ``HSET key field value`` (a batch or a writer record) plus the key's retention.
Writing an entry twice stores the same value in the same field, so every write here is idempotent:
a retried pipeline or a replayed spill file never double counts.

The spill file (``{spill_dir}/{run_id}.{writer_id}.spill``) is append-only, one JSON line per entry,
in the order the writer produced them. ``replay_spill`` writes every spill file found in a directory
and deletes each one once all its entries are in Redis.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

from perfsuite.collector.client import RedisLike, redis_client

logger = logging.getLogger(__name__)

SPILL_SUFFIX = ".spill"
"""File name suffix of spill files."""

PIPELINE_CHUNK = 200
"""Entries per pipeline when writing many (keeps each round trip bounded)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One idempotent hash write: ``HSET key field value`` then ``EXPIRE key expire_s``."""

    key: str
    field: str
    value: bytes
    expire_s: int
    is_batch: bool
    """True for a data batch, False for a writer record (counters count batches only)."""

    def to_line(self) -> str:
        """The entry as one spill-file line (JSON, value base64)."""
        record = {
            "k": self.key,
            "f": self.field,
            "v": base64.b64encode(self.value).decode("ascii"),
            "e": self.expire_s,
            "b": self.is_batch,
        }
        return json.dumps(record, separators=(",", ":")) + "\n"

    @classmethod
    def from_line(cls, line: str) -> Entry:
        """The entry of one spill-file line; ValueError when the line is damaged."""
        try:
            record = json.loads(line)
            return cls(
                str(record["k"]),
                str(record["f"]),
                base64.b64decode(record["v"], validate=True),
                int(record["e"]),
                bool(record["b"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"damaged spill line: {exc}") from exc


def write_entries(client: redis.Redis, entries: Sequence[Entry]) -> None:
    """Write ``entries`` in pipelines of ``PIPELINE_CHUNK``; raises the Redis error on failure."""
    for start in range(0, len(entries), PIPELINE_CHUNK):
        chunk = entries[start : start + PIPELINE_CHUNK]
        pipe = client.pipeline(transaction=False)
        expiries: dict[str, int] = {}
        for entry in chunk:
            pipe.hset(entry.key, entry.field, entry.value)
            expiries[entry.key] = max(expiries.get(entry.key, 0), entry.expire_s)
        for key, expire_s in expiries.items():
            pipe.expire(key, expire_s)
        pipe.execute()


def spill_path(spill_dir: Path, run_id: str, writer_id: str) -> Path:
    """Where one writer of one run spills."""
    return Path(spill_dir) / f"{run_id}.{writer_id}{SPILL_SUFFIX}"


def append_entries(path: Path, entries: Iterable[Entry]) -> int:
    """Append ``entries`` to the spill file at ``path`` (created with its directory) and fsync it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(path, "a", encoding="ascii") as spill:
        for entry in entries:
            spill.write(entry.to_line())
            written += 1
        spill.flush()
        os.fsync(spill.fileno())
    return written


def read_entries(path: Path) -> tuple[list[Entry], int]:
    """The entries of a spill file in order, and how many damaged lines were skipped.

    A damaged line is normally the last one, cut short by a crash while it was being written.
    """
    entries: list[Entry] = []
    damaged = 0
    with open(path, encoding="ascii", errors="replace") as spill:
        for line in spill:
            if not line.strip():
                continue
            try:
                entries.append(Entry.from_line(line))
            except ValueError:
                damaged += 1
    return entries, damaged


def write_spill_file(client: redis.Redis, path: Path) -> tuple[int, int, int]:
    """Write a spill file's entries to Redis in order, ``PIPELINE_CHUNK`` at a time (memory stays
    bounded whatever the file's size), then delete it.

    Returns (entries, batches, damaged lines). A Redis error propagates and keeps the file.
    """
    entries = batches = damaged = 0
    chunk: list[Entry] = []
    with open(path, encoding="ascii", errors="replace") as spill:
        for line in spill:
            if not line.strip():
                continue
            try:
                entry = Entry.from_line(line)
            except ValueError:
                damaged += 1
                continue
            chunk.append(entry)
            if len(chunk) >= PIPELINE_CHUNK:
                write_entries(client, chunk)
                entries += len(chunk)
                batches += sum(e.is_batch for e in chunk)
                chunk = []
    write_entries(client, chunk)
    entries += len(chunk)
    batches += sum(e.is_batch for e in chunk)
    path.unlink()
    if damaged:
        logger.warning("collector spill file %s had %d damaged line(s), skipped", path, damaged)
    return entries, batches, damaged


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What ``replay_spill`` did."""

    files: int
    """Spill files written to Redis and deleted."""
    entries: int
    """Entries written (batches and writer records)."""
    damaged_lines: int
    """Lines that could not be read (skipped)."""


def replay_spill(redis_client_or_url: RedisLike, spill_dir: Path) -> ReplayResult:
    """Write every spill file under ``spill_dir`` to Redis, then delete it.

    Safe to run twice or after a partial replay (writes are idempotent). Run it when no writer of
    those runs is still active. A Redis error propagates and leaves the remaining files in place.
    """
    client = redis_client(redis_client_or_url)
    files = entries_written = damaged_total = 0
    directory = Path(spill_dir)
    if not directory.is_dir():
        return ReplayResult(0, 0, 0)
    for path in sorted(directory.glob(f"*{SPILL_SUFFIX}")):
        entries, _, damaged = write_spill_file(client, path)
        files += 1
        entries_written += entries
        damaged_total += damaged
    return ReplayResult(files, entries_written, damaged_total)


__all__ = [
    "PIPELINE_CHUNK",
    "SPILL_SUFFIX",
    "Entry",
    "ReplayResult",
    "append_entries",
    "read_entries",
    "replay_spill",
    "spill_path",
    "write_entries",
    "write_spill_file",
]
