"""Runs: time-sortable ids and the run metadata hash (created at start, finished at stop).

Meta fields: run_id, test_type, scenario, host, started_at / stopped_at (ISO-8601 UTC), status
(running | finished | interrupted), config (JSON, redacted by the caller), plus any extra string
fields (workers, locust_version, locust_total_requests...).

Written directly (``create_run``, ``update_run``, ``finish_run``), or as entries (``run_fields``,
``finish_fields`` -> ``meta_entries``) that a writer carries with its batches: so the metadata
survives an outage of the collector's Redis like the data does (the Locust plugin's way), and
``update_run_or_spill`` keeps fields for ``replay_spill`` when Redis does not answer.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from perfsuite.collector.client import REDIS_ERRORS, RedisLike, redis_client
from perfsuite.collector.keys import (
    DEFAULT_RETENTION_S,
    check_prefix,
    check_run_id,
    meta_key,
    run_keys,
    runs_key,
)
from perfsuite.collector.spill import Entry, append_entries, spill_path, write_entries
from perfsuite.errors import ConfigError

logger = logging.getLogger(__name__)

RUN_STATUSES: tuple[str, ...] = ("running", "finished", "interrupted")
"""Values of the meta ``status`` field."""

LATE_WRITER_ID = "perfsuite"
"""Writer-id part of the spill file ``update_run_or_spill`` appends to (no writer uses it)."""


def new_run_id(now: datetime | None = None) -> str:
    """A new run id such as ``20261127T020708Z-3fa2b1``: UTC start second, then 6 random hex digits.

    Ids sort by start time (to the second) as plain strings.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def _field_value(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def run_fields(
    run_id: str,
    test_type: str,
    scenario: str,
    host: str,
    config_json: str,
    started_at: datetime,
    **extra: object,
) -> dict[str, str]:
    """The meta fields of a new run (status ``running``) as stored. ``config_json`` is stored as
    given: the caller redacts secrets first. Extra fields are stored as strings (numbers via
    ``str``, other values as JSON)."""
    return {
        "run_id": check_run_id(run_id),
        "test_type": test_type,
        "scenario": scenario,
        "host": host,
        "started_at": started_at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "status": "running",
        "config": config_json,
        **{name: _field_value(value) for name, value in extra.items()},
    }


def finish_fields(status: str, **extra: object) -> dict[str, str]:
    """The meta fields that end a run: ``status`` (one of RUN_STATUSES), ``stopped_at`` (now) and
    extra fields (stored as by ``run_fields``)."""
    if status not in RUN_STATUSES:
        raise ConfigError(f"run status {status!r} is invalid: use one of {', '.join(RUN_STATUSES)}")
    return {
        "status": status,
        "stopped_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        **{name: _field_value(value) for name, value in extra.items()},
    }


def meta_entries(
    prefix: str,
    run_id: str,
    fields: Mapping[str, object],
    *,
    retention_s: int = 0,
    started_at: datetime | None = None,
) -> list[Entry]:
    """Entries that set meta ``fields`` of the run (values stored as by ``run_fields``) and, with
    ``started_at``, index the run in ``{prefix}:runs``. ``retention_s`` > 0 (re)sets the meta
    hash's expiry; 0 leaves it as it is."""
    key = meta_key(check_prefix(prefix), check_run_id(run_id))
    entries = [
        Entry(key, name, _field_value(value).encode(), retention_s, False) for name, value in fields.items()
    ]
    if started_at is not None:
        score = repr(started_at.astimezone(UTC).timestamp()).encode()
        entries.append(Entry(runs_key(prefix), run_id, score, 0, False, op="zadd"))
    return entries


def run_exists(redis: RedisLike, prefix: str, run_id: str) -> bool:
    """True when the run's meta hash exists."""
    return bool(redis_client(redis).exists(meta_key(check_prefix(prefix), check_run_id(run_id))))


def create_run(
    redis: RedisLike,
    prefix: str,
    run_id: str,
    test_type: str,
    scenario: str,
    host: str,
    config_json: str,
    *,
    retention_s: int = DEFAULT_RETENTION_S,
    started_at: datetime | None = None,
    **extra: object,
) -> None:
    """Create the run's meta hash (``run_fields``) and index it in ``{prefix}:runs``. ConfigError
    if the run id exists."""
    client = redis_client(redis)
    check_prefix(prefix)
    if run_exists(client, prefix, run_id):
        raise ConfigError(f"run id {run_id!r} already exists under prefix {prefix!r}: choose another run id")
    start = started_at or datetime.now(UTC)
    fields = run_fields(run_id, test_type, scenario, host, config_json, start, **extra)
    write_entries(client, meta_entries(prefix, run_id, fields, retention_s=retention_s, started_at=start))


def update_run(redis: RedisLike, prefix: str, run_id: str, **fields: object) -> None:
    """Set extra meta fields of an existing run (e.g. ``locust_total_requests``)."""
    if not fields:
        return
    client = redis_client(redis)
    key = meta_key(check_prefix(prefix), check_run_id(run_id))
    if not client.exists(key):
        raise ConfigError(f"run {run_id!r} not found under prefix {prefix!r}")
    client.hset(key, mapping={name: _field_value(value) for name, value in fields.items()})


def update_run_or_spill(
    redis: RedisLike, prefix: str, run_id: str, spill_dir: Path, **fields: object
) -> bool:
    """``update_run``, or when Redis does not answer, keep the fields in the run's spill file under
    ``spill_dir`` (written after the writers' files by ``replay_spill``: later writes win). True
    when written to Redis. ConfigError when Redis answers but does not know the run."""
    try:
        update_run(redis, prefix, run_id, **fields)
        return True
    except REDIS_ERRORS as exc:
        path = spill_path(spill_dir, run_id, LATE_WRITER_ID)
        logger.warning(
            "collector: Redis did not answer (%s); run %s fields %s kept in %s",
            type(exc).__name__,
            run_id,
            ", ".join(fields),
            path,
        )
    append_entries(path, meta_entries(prefix, run_id, fields))
    return False


def finish_run(
    redis: RedisLike,
    prefix: str,
    run_id: str,
    status: str,
    *,
    retention_s: int = DEFAULT_RETENTION_S,
    **extra: object,
) -> None:
    """Set the final ``status`` and ``stopped_at`` (plus extra fields) and refresh every run key's expiry."""
    fields = finish_fields(status, **extra)
    client = redis_client(redis)
    key = meta_key(check_prefix(prefix), check_run_id(run_id))
    if not client.exists(key):
        raise ConfigError(f"run {run_id!r} not found under prefix {prefix!r}")
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
    for run_key in run_keys(prefix, run_id):
        pipe.expire(run_key, retention_s)
    pipe.execute()


__all__ = [
    "LATE_WRITER_ID",
    "RUN_STATUSES",
    "create_run",
    "finish_fields",
    "finish_run",
    "meta_entries",
    "new_run_id",
    "run_exists",
    "run_fields",
    "update_run",
    "update_run_or_spill",
]
