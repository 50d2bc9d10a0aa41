"""Redis key layout of the collector: every key lives under one configurable prefix.

```
{prefix}:runs                ZSET  member run_id, score = start (epoch seconds)
{prefix}:run:{id}:meta       HASH  run metadata (see perfsuite.collector.runs)
{prefix}:run:{id}:batches    HASH  field "{writer_id}:{seq}" -> one zlib'd JSON batch per flush
{prefix}:run:{id}:writers    HASH  writer_id -> JSON record {closed, requests, batches, spilled, ...}
```

Every run key expires after the retention period; the ``runs`` index does not expire, readers skip
(and prune) members whose metadata has expired.
"""

from __future__ import annotations

import re

from perfsuite.errors import ConfigError

DEFAULT_PREFIX = "perfsuite"
"""Key prefix used when the caller gives none."""

DEFAULT_RETENTION_S = 30 * 24 * 3600
"""Run keys expire this many seconds after their last write (30 days)."""

_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PREFIX_RE = re.compile(r"^[^\s]{1,200}$")
_WRITER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def check_prefix(prefix: str) -> str:
    """``prefix`` unchanged when valid (1-200 characters, no whitespace), else ConfigError."""
    if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
        raise ConfigError(f"collector key prefix {prefix!r} is invalid: use 1-200 characters without spaces")
    return prefix


def check_run_id(run_id: str) -> str:
    """``run_id`` unchanged when valid, else ConfigError naming it and what is allowed."""
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise ConfigError(
            f"run id {run_id!r} is invalid: use 1-128 characters among letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return run_id


def check_writer_id(writer_id: str) -> str:
    """``writer_id`` unchanged when valid (like a run id, no ':'), else ConfigError."""
    if not isinstance(writer_id, str) or not _WRITER_ID_RE.match(writer_id):
        raise ConfigError(
            f"writer id {writer_id!r} is invalid: use letters, digits, '.', '_' and '-' (at most 200)"
        )
    return writer_id


def runs_key(prefix: str) -> str:
    """ZSET of every run id, scored by its start time in epoch seconds."""
    return f"{prefix}:runs"


def meta_key(prefix: str, run_id: str) -> str:
    """HASH of one run's metadata."""
    return f"{prefix}:run:{run_id}:meta"


def batches_key(prefix: str, run_id: str) -> str:
    """HASH of one run's data batches, field ``{writer_id}:{seq}``."""
    return f"{prefix}:run:{run_id}:batches"


def writers_key(prefix: str, run_id: str) -> str:
    """HASH of one run's writer records, field ``writer_id``."""
    return f"{prefix}:run:{run_id}:writers"


def stop_key(prefix: str, run_id: str) -> str:
    """A request to end the run's load early (set by a watcher that has its answer, e.g. the A/B
    comparison's sequential test; the arrival drivers read it). Expires with the run's retention."""
    return f"{prefix}:run:{run_id}:stop"


def run_keys(prefix: str, run_id: str) -> tuple[str, str, str]:
    """Every key that belongs to one run (meta, batches, writers)."""
    return meta_key(prefix, run_id), batches_key(prefix, run_id), writers_key(prefix, run_id)


def batch_field(writer_id: str, seq: int) -> str:
    """Field name of batch number ``seq`` of ``writer_id``; zero-padded so fields sort by seq."""
    return f"{writer_id}:{seq:09d}"


def parse_batch_field(field: str) -> tuple[str, int]:
    """``(writer_id, seq)`` from a batch field name."""
    writer_id, _, seq = field.rpartition(":")
    return writer_id, int(seq)


__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_RETENTION_S",
    "batch_field",
    "batches_key",
    "check_prefix",
    "check_run_id",
    "check_writer_id",
    "meta_key",
    "parse_batch_field",
    "run_keys",
    "runs_key",
    "writers_key",
]
