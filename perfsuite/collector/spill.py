"""Entries bound for Redis, the files that keep them on local disk, and their replay.

An entry is one ``HSET key field value`` (a batch, a writer record, a run metadata field) or one
``ZADD key score member`` (the run index) plus the key's retention. Writing an entry twice stores the
same value in the same place, so every write here is idempotent: a retried pipeline, a rewritten
journal or a replayed spill file never double counts.

Files in a spill directory, one JSON line per entry, in the order the writer produced them:

- ``{run_id}.{writer_id}.spill``: entries Redis has not got yet (append-only, fsynced);
- ``{run_id}.{writer_id}.journal``: every entry the writer produced for the run (see
  ``perfsuite.collector.journal``), removed when the writer closes cleanly. A live writer holds an
  exclusive ``flock`` on its journal: a journal nobody holds belongs to a writer that is gone.

``replay_spill`` writes every such file of writers that are gone (oldest first, so later writes win)
and deletes each one once all its entries are in Redis; ``run_files`` lists a run's files in that
same order for reading a run without Redis.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

from perfsuite.collector.client import RedisLike, redis_client

logger = logging.getLogger(__name__)

SPILL_SUFFIX = ".spill"
"""File name suffix of spill files."""

JOURNAL_SUFFIX = ".journal"
"""File name suffix of writer journals."""

OPS: tuple[str, ...] = ("hset", "zadd")
"""What an entry does: ``HSET key field value``, or ``ZADD key value member`` (``value``: the score
as ASCII digits, ``field``: the member)."""

PIPELINE_CHUNK = 200
"""Entries per pipeline when writing many (keeps each round trip bounded)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One idempotent write: ``HSET key field value`` (or ``ZADD``, see ``OPS``), then
    ``EXPIRE key expire_s`` unless ``expire_s`` is 0 (the key's expiry is left as it is)."""

    key: str
    field: str
    value: bytes
    expire_s: int
    is_batch: bool
    """True for a data batch, False otherwise (counters count batches only)."""
    op: str = "hset"
    """One of ``OPS``."""

    def to_line(self) -> str:
        """The entry as one spill-file line (JSON, value base64)."""
        record: dict[str, object] = {
            "k": self.key,
            "f": self.field,
            "v": base64.b64encode(self.value).decode("ascii"),
            "e": self.expire_s,
            "b": self.is_batch,
        }
        if self.op != "hset":
            record["o"] = self.op
        return json.dumps(record, separators=(",", ":")) + "\n"

    @classmethod
    def from_line(cls, line: str) -> Entry:
        """The entry of one spill-file line; ValueError when the line is damaged."""
        try:
            record = json.loads(line)
            op = str(record.get("o", "hset"))
            if op not in OPS:
                raise ValueError(f"unknown op {op!r}")
            return cls(
                str(record["k"]),
                str(record["f"]),
                base64.b64decode(record["v"], validate=True),
                int(record["e"]),
                bool(record["b"]),
                op,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"damaged spill line: {exc}") from exc


def write_entries(client: redis.Redis, entries: Sequence[Entry]) -> None:
    """Write ``entries`` in pipelines of ``PIPELINE_CHUNK``; raises the Redis error on failure."""
    for start in range(0, len(entries), PIPELINE_CHUNK):
        chunk = entries[start : start + PIPELINE_CHUNK]
        pipe = client.pipeline(transaction=False)
        expiries: dict[str, int] = {}
        for entry in chunk:
            if entry.op == "zadd":
                pipe.zadd(entry.key, {entry.field: float(entry.value)})
            else:
                pipe.hset(entry.key, entry.field, entry.value)
            if entry.expire_s > 0:
                expiries[entry.key] = max(expiries.get(entry.key, 0), entry.expire_s)
        for key, expire_s in expiries.items():
            pipe.expire(key, expire_s)
        pipe.execute()


def spill_path(spill_dir: Path, run_id: str, writer_id: str) -> Path:
    """Where one writer of one run spills."""
    return Path(spill_dir) / f"{run_id}.{writer_id}{SPILL_SUFFIX}"


def journal_path(spill_dir: Path, run_id: str, writer_id: str) -> Path:
    """Where one writer of one run keeps its journal."""
    return Path(spill_dir) / f"{run_id}.{writer_id}{JOURNAL_SUFFIX}"


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


def _lines(path: Path) -> Iterator[Entry | None]:
    """The entries of a spill file or journal in order, None for each damaged line (normally the
    last one, cut short by a crash while it was being written)."""
    with open(path, encoding="ascii", errors="replace") as spill:
        for line in spill:
            if not line.strip():
                continue
            try:
                yield Entry.from_line(line)
            except ValueError:
                yield None


def read_entries(path: Path) -> tuple[list[Entry], int]:
    """The entries of a spill file (or journal) in order, and how many damaged lines were skipped."""
    entries: list[Entry] = []
    damaged = 0
    for entry in _lines(path):
        if entry is None:
            damaged += 1
        else:
            entries.append(entry)
    return entries, damaged


def write_spill_file(client: redis.Redis, path: Path, delete: bool = True) -> tuple[int, int, int]:
    """Write a spill file's (or journal's) entries to Redis in order, ``PIPELINE_CHUNK`` at a time
    (memory stays bounded whatever the file's size), then delete it unless ``delete`` is False.

    Returns (entries, batches, damaged lines). A Redis error propagates and keeps the file.
    """
    entries = batches = damaged = 0
    chunk: list[Entry] = []
    for entry in _lines(path):
        if entry is None:
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
    if delete:
        path.unlink()
    if damaged:
        logger.warning("collector spill file %s had %d damaged line(s), skipped", path, damaged)
    return entries, batches, damaged


def writer_alive(journal: Path) -> bool:
    """True while a live writer holds the journal ``journal`` (its exclusive ``flock``); False when
    the file is missing or nobody holds it (its writer closed or is gone, crashed or killed)."""
    try:
        fd = os.open(journal, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the probe's lock, if it got it
    return False


def _stem(path: Path) -> str:
    """``{run_id}.{writer_id}`` of a spill file or journal."""
    return path.name.removesuffix(SPILL_SUFFIX).removesuffix(JOURNAL_SUFFIX)


def run_files(spill_dir: Path, run_id: str | None = None, *, live: bool = True) -> list[Path]:
    """Spill files and journals under ``spill_dir`` (of ``run_id`` only when given), oldest first
    (last modified; later writes must win). ``live=False`` leaves out the files of writers still
    running (their journal is held)."""
    directory = Path(spill_dir)
    if not directory.is_dir():
        return []
    pattern = f"{run_id}.*" if run_id is not None else "*"
    found = [
        path
        for path in directory.glob(pattern)
        if path.name.endswith((SPILL_SUFFIX, JOURNAL_SUFFIX)) and path.is_file()
    ]
    if not live:
        alive = {_stem(path) for path in found if path.name.endswith(JOURNAL_SUFFIX) and writer_alive(path)}
        found = [path for path in found if _stem(path) not in alive]
    stamped = []
    for path in found:
        with contextlib.suppress(FileNotFoundError):  # replayed by someone else meanwhile
            stamped.append((path.stat().st_mtime_ns, path.name, path))
    return [path for _, _, path in sorted(stamped)]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What ``replay_spill`` did."""

    files: int
    """Spill files written to Redis and deleted."""
    entries: int
    """Entries written (batches and writer records), from spill files and journals."""
    damaged_lines: int
    """Lines that could not be read (skipped)."""
    journal_entries: int = 0
    """Of ``entries``, those from left-over journals: a copy of what a writer that never closed (a
    killed worker) had already written, written again. Unlike a spill file's, they say nothing about
    the collector's Redis having been away."""

    @property
    def spilled_entries(self) -> int:
        """Entries that had waited in spill files because Redis did not take them."""
        return self.entries - self.journal_entries


def replay_spill(redis_client_or_url: RedisLike, spill_dir: Path, run_id: str | None = None) -> ReplayResult:
    """Write every spill file and left-over journal under ``spill_dir`` (of ``run_id`` only, when
    given) to Redis, oldest first, deleting each once written. Files of writers still running are
    left alone (see ``writer_alive``).

    Safe to run twice or after a partial replay (writes are idempotent). A Redis error propagates
    and leaves the remaining files in place.
    """
    client = redis_client(redis_client_or_url)
    files = entries_written = damaged_total = from_journals = 0
    for path in run_files(spill_dir, run_id, live=False):
        try:
            entries, _, damaged = write_spill_file(client, path)
        except FileNotFoundError:  # replayed by someone else meanwhile
            continue
        files += 1
        entries_written += entries
        damaged_total += damaged
        if path.name.endswith(JOURNAL_SUFFIX):
            from_journals += entries
    return ReplayResult(files, entries_written, damaged_total, from_journals)


__all__ = [
    "JOURNAL_SUFFIX",
    "OPS",
    "PIPELINE_CHUNK",
    "SPILL_SUFFIX",
    "Entry",
    "ReplayResult",
    "append_entries",
    "journal_path",
    "read_entries",
    "replay_spill",
    "run_files",
    "spill_path",
    "write_entries",
    "write_spill_file",
    "writer_alive",
]
