"""The outbox: gets one writer's entries into Redis, in order, whatever Redis does meanwhile.

``put`` queues entries in memory and appends them to the writer's journal; ``drain`` writes what is
queued, in pipelines. Nothing is dropped:

- Redis does not answer: entries stay queued; past ``max_pending`` the oldest go to the append-only,
  fsynced spill file. The next drain that gets through writes the spill file first, then the queue.
- Redis may have lost what it held: after any failed write, and whenever Redis answers but no
  longer holds this writer's first entry (it restarted empty between two drains, or was flushed),
  the next drain that gets through writes the whole journal instead (idempotent, in order; it holds
  the spill file's and the queue's entries too). So a Redis that comes back empty gets the run again.
- ``finish`` (once, after the writer's last drain): the journal is deleted when everything is in
  Redis; otherwise everything still unsent is left in the spill file for ``replay_spill``, the whole
  journal when Redis may have lost data.
- after ``finish``, ``put`` writes at once, or appends to the spill file when Redis does not answer.

Not thread-safe: the writer serialises calls under its lock.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Sequence
from itertools import islice
from pathlib import Path

import redis

from perfsuite.collector.client import REDIS_ERRORS
from perfsuite.collector.journal import Journal
from perfsuite.collector.spill import PIPELINE_CHUNK, Entry, append_entries, write_entries, write_spill_file

logger = logging.getLogger(__name__)


class Outbox:
    """One writer's entries on their way to Redis (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        spill_path: Path,
        journal_path: Path,
        max_pending: int,
        probe: tuple[str, str],
        name: str,
    ) -> None:
        """``probe`` is the (hash key, field) of the writer's first entry (its writer record): when
        Redis answers without it, Redis lost what it held. ``name`` names the writer in logs."""
        self._client = client
        self.spill_path: Path = spill_path
        """Where entries go past ``max_pending`` (exists only while it holds unsent entries)."""
        self._max_pending = max_pending
        self._probe = probe
        self._name = name
        self._pending: deque[Entry] = deque()
        self._spill_unsent_entries = 0
        self._journal: Journal | None = self._open_journal(journal_path)
        self._rewrite_due = False
        self._probe_put = False
        self._probe_written = False
        self._batches_put = 0
        self._down_since: float | None = None
        self._finished = False

        self.batches_written: int = 0
        """Batches confirmed written to Redis."""
        self.batches_spilled: int = 0
        """Batches that went through the spill file (written later or still there)."""
        self.outages: int = 0
        """Times Redis stopped answering, or answered having lost this writer's entries."""
        self.entries_rewritten: int = 0
        """Entries written again from the journal after an outage."""

    def _open_journal(self, path: Path) -> Journal | None:
        try:
            return Journal(path)
        except OSError as exc:
            logger.error(
                "collector writer %s: cannot keep a journal at %s (%s): if the collector's Redis loses "
                "its data during the run, what it held of this writer is lost",
                self._name,
                path,
                exc,
            )
            return None

    def _drop_journal(self, exc: OSError) -> None:
        logger.error(
            "collector writer %s: journal %s failed (%s); continuing without it",
            self._name,
            self._journal.path if self._journal is not None else "-",
            exc,
        )
        if self._journal is not None:
            try:
                self._journal.remove()
            except OSError:
                self._journal.close()
            self._journal = None

    @property
    def pending(self) -> int:
        """Entries not yet in Redis: in memory plus in the spill file."""
        return len(self._pending) + self._spill_unsent_entries

    @property
    def journal_path(self) -> Path | None:
        """The open journal's file (None without one, or once finished)."""
        return self._journal.path if self._journal is not None else None

    def put(self, entries: Sequence[Entry]) -> None:
        """Queue ``entries`` and journal them; once finished, write them now (or spill them)."""
        if self._finished:
            self._write_or_spill(entries)
            return
        self._pending.extend(entries)
        self._batches_put += sum(entry.is_batch for entry in entries)
        if not self._probe_put:
            self._probe_put = any((entry.key, entry.field) == self._probe for entry in entries)
        if self._journal is not None:
            try:
                self._journal.append(entries)
            except OSError as exc:
                self._drop_journal(exc)

    def drain(self) -> bool:
        """Write what is unsent (see the module docstring); False when Redis failed."""
        if self._finished:
            return not self.pending
        try:
            if self.pending or self._rewrite_due:
                if self._probe_written and not self._client.hexists(*self._probe):
                    self._note_loss()
                if self._rewrite_due and self._journal is not None:
                    self._rewrite(self._journal)
                else:
                    self._write_spill_then_queue()
                self._rewrite_due = False
                self._probe_written = self._probe_put
                self.batches_written = self._batches_put
        except REDIS_ERRORS as exc:
            if self._down_since is None:
                self._down_since = time.monotonic()
                self.outages += 1
                logger.warning(
                    "collector writer %s: Redis write failed (%s: %s); keeping data, retrying every flush",
                    self._name,
                    type(exc).__name__,
                    exc,
                )
            self._rewrite_due = True  # Redis may come back without what it held
            self._spill_excess(self._max_pending)
            return False
        if self._down_since is not None:
            logger.warning(
                "collector writer %s: Redis writes resumed after %.1f s, everything written again",
                self._name,
                time.monotonic() - self._down_since,
            )
            self._down_since = None
        return True

    def _note_loss(self) -> None:
        if self._down_since is None:
            self.outages += 1
        self._rewrite_due = True
        logger.warning(
            "collector writer %s: Redis answers but lost this writer's earlier entries (restarted "
            "empty or flushed); writing them again from the journal",
            self._name,
        )

    def _write_spill_then_queue(self) -> None:
        if self._spill_unsent_entries:
            self._client.ping()  # cheap probe before streaming a possibly large file
            try:
                write_spill_file(self._client, self.spill_path)
            except FileNotFoundError:
                logger.warning("collector writer %s: spill file %s vanished", self._name, self.spill_path)
            self._spill_unsent_entries = 0
        while self._pending:
            chunk = list(islice(self._pending, PIPELINE_CHUNK))
            write_entries(self._client, chunk)
            for _ in chunk:
                self._pending.popleft()

    def _rewrite(self, journal: Journal) -> None:
        """Everything the writer produced, again: the journal holds the spill file and the queue."""
        self.entries_rewritten += journal.write_to(self._client)
        self._pending.clear()
        self.spill_path.unlink(missing_ok=True)
        self._spill_unsent_entries = 0

    def _spill_excess(self, keep: int) -> None:
        """Move the oldest queued entries beyond ``keep`` to the spill file."""
        excess = len(self._pending) - keep
        if excess <= 0:
            return
        entries = [self._pending.popleft() for _ in range(excess)]
        try:
            append_entries(self.spill_path, entries)
        except OSError as exc:  # keep them in memory rather than lose them
            self._pending.extendleft(reversed(entries))
            logger.error("collector writer %s: cannot spill to %s: %s", self._name, self.spill_path, exc)
            return
        self._spill_unsent_entries += len(entries)
        self.batches_spilled += sum(entry.is_batch for entry in entries)

    def finish(self) -> bool:
        """End of the writer (after its last drain): True when everything is in Redis (the journal
        is deleted); else everything unsent is left in the spill file for ``replay_spill``: the
        whole journal when a rewrite is due (Redis may have lost what it held), else the queue."""
        if self._finished:
            return not self.pending
        self._finished = True
        journal, self._journal = self._journal, None
        if not self.pending and not self._rewrite_due:
            if journal is not None:
                try:
                    journal.remove()
                except OSError as exc:
                    logger.warning(
                        "collector writer %s: cannot delete journal %s: %s", self._name, journal.path, exc
                    )
            return True
        if journal is not None and self._rewrite_due:
            try:
                journal.move_to(self.spill_path)  # a superset of the spill file and the queue, in order
            except OSError as exc:
                logger.error("collector writer %s: cannot keep journal %s: %s", self._name, journal.path, exc)
                journal.close()
            else:
                self.batches_spilled += sum(entry.is_batch for entry in self._pending)
                self._pending.clear()
                self._spill_unsent_entries = journal.entries
                return False
        elif journal is not None:
            journal.remove()
        self._spill_excess(0)
        return False

    def _write_or_spill(self, entries: Sequence[Entry]) -> None:
        try:
            write_entries(self._client, entries)
            return
        except REDIS_ERRORS as exc:
            logger.warning(
                "collector writer %s: Redis did not take %d late entries (%s); keeping them in %s",
                self._name,
                len(entries),
                type(exc).__name__,
                self.spill_path,
            )
        try:
            append_entries(self.spill_path, entries)
        except OSError as exc:
            logger.error("collector writer %s: cannot spill to %s: %s", self._name, self.spill_path, exc)
            return
        self._spill_unsent_entries += len(entries)


__all__ = ["Outbox"]
