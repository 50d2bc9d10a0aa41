"""Runs: time-sortable ids and the run metadata hash (created at start, finished at stop).

Meta fields: run_id, test_type, scenario, host, started_at / stopped_at (ISO-8601 UTC), status
(running | finished | interrupted), config (JSON, redacted by the caller), plus any extra string
fields (workers, locust_version, locust_total_requests...).
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime

from perfsuite.collector.client import RedisLike, redis_client
from perfsuite.collector.keys import (
    DEFAULT_RETENTION_S,
    check_prefix,
    check_run_id,
    meta_key,
    run_keys,
    runs_key,
)
from perfsuite.errors import ConfigError

RUN_STATUSES: tuple[str, ...] = ("running", "finished", "interrupted")
"""Values of the meta ``status`` field."""


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
    """Create the run's meta hash (status ``running``) and index it in ``{prefix}:runs``.

    ``config_json`` is stored as given: the caller redacts secrets first. Extra fields are stored
    as strings (numbers via ``str``, other values as JSON). ConfigError if the run id exists.
    """
    client = redis_client(redis)
    check_prefix(prefix)
    check_run_id(run_id)
    key = meta_key(prefix, run_id)
    if client.exists(key):
        raise ConfigError(f"run id {run_id!r} already exists under prefix {prefix!r}: choose another run id")
    start = (started_at or datetime.now(UTC)).astimezone(UTC)
    fields = {
        "run_id": run_id,
        "test_type": test_type,
        "scenario": scenario,
        "host": host,
        "started_at": start.isoformat(timespec="milliseconds"),
        "status": "running",
        "config": config_json,
        **{name: _field_value(value) for name, value in extra.items()},
    }
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
    pipe.expire(key, retention_s)
    pipe.zadd(runs_key(prefix), {run_id: start.timestamp()})
    pipe.execute()


def update_run(redis: RedisLike, prefix: str, run_id: str, **fields: object) -> None:
    """Set extra meta fields of an existing run (e.g. ``locust_total_requests``)."""
    if not fields:
        return
    client = redis_client(redis)
    key = meta_key(check_prefix(prefix), check_run_id(run_id))
    if not client.exists(key):
        raise ConfigError(f"run {run_id!r} not found under prefix {prefix!r}")
    client.hset(key, mapping={name: _field_value(value) for name, value in fields.items()})


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
    if status not in RUN_STATUSES:
        raise ConfigError(f"run status {status!r} is invalid: use one of {', '.join(RUN_STATUSES)}")
    client = redis_client(redis)
    key = meta_key(check_prefix(prefix), check_run_id(run_id))
    if not client.exists(key):
        raise ConfigError(f"run {run_id!r} not found under prefix {prefix!r}")
    fields = {
        "status": status,
        "stopped_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        **{name: _field_value(value) for name, value in extra.items()},
    }
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
    for run_key in run_keys(prefix, run_id):
        pipe.expire(run_key, retention_s)
    pipe.execute()


__all__ = ["RUN_STATUSES", "create_run", "finish_run", "new_run_id", "update_run"]
