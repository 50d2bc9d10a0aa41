"""A writer's journal: every entry it produced for its run, on local disk until it closes cleanly.

Redis may come back empty (restarted without persistence, flushed, failed over to a replica that
lagged): what it held of the run is gone, though the writer had written it. Entries are idempotent,
so the writer can simply write its whole journal again (``write_to``) once Redis answers.

One file per writer, ``{spill_dir}/{run_id}.{writer_id}.journal``, in the spill-file line format,
appended at every flush (one line per entry: a batch, a writer record, a run metadata field). It is
flushed to the operating system but not fsynced: it guards against losing the collector's Redis, not
this machine, and an fsync per flush would stall every greenlet of the process. (The spill file,
which holds what Redis never got, is fsynced.)

While open, the journal is held with an exclusive ``flock``; the lock goes when the process does,
however it ends, so ``replay_spill`` can tell a crashed writer's journal (written, then deleted) from
a live writer's (left alone).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Sequence
from pathlib import Path

import redis

from perfsuite.collector.spill import Entry, write_spill_file


class Journal:
    """An open journal (see the module docstring). Every method may raise ``OSError``."""

    def __init__(self, path: Path) -> None:
        """Create (or reopen for appending) the journal at ``path`` and lock it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path: Path = path
        """The journal file."""
        self.entries: int = 0
        """Entries appended through this object."""
        self._file = open(path, "ab")  # noqa: SIM115 - held open (and locked) until close
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            self._file.close()
            raise

    def append(self, entries: Sequence[Entry]) -> None:
        """Append ``entries`` (one line each) and hand them to the operating system."""
        if not entries:
            return
        self._file.write("".join(entry.to_line() for entry in entries).encode("ascii"))
        self._file.flush()
        self.entries += len(entries)

    def write_to(self, client: redis.Redis) -> int:
        """Write every entry to Redis, in order, a pipeline chunk at a time; the number written.
        A Redis error propagates (the journal stays as it is)."""
        self._file.flush()
        written, _, _ = write_spill_file(client, self.path, delete=False)
        return written

    def move_to(self, target: Path) -> None:
        """Make the journal the file at ``target`` (fsynced, replacing it) and close it."""
        self._file.flush()
        os.fsync(self._file.fileno())
        os.replace(self.path, target)
        self.path = target
        self.close()

    def remove(self) -> None:
        """Delete the journal and close it."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.close()

    def close(self) -> None:
        """Close the file (releases the lock); the file stays. Idempotent."""
        if not self._file.closed:
            self._file.close()

    @property
    def closed(self) -> bool:
        """True once closed (moved, removed or closed)."""
        return self._file.closed

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, entries={self.entries})"


__all__ = ["Journal"]
