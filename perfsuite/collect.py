"""Reading a finished run back from the collector: the common figures every test type reports.

:func:`collect` is the one place that turns a run's stored data into its summary, endpoint rows,
failure reasons and collector integrity, and that records how the run ended in its metadata.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import redis

from perfsuite.collector import CollectorReader, RunData, update_run
from perfsuite.config import SuiteConfig
from perfsuite.errors import PerfsuiteError
from perfsuite.result import CollectorIntegrity, Endpoint, FailureReason, RunStatus, Summary
from perfsuite.worker_health import WorkerHealth, worker_health_of

logger = logging.getLogger(__name__)

MAX_FAILURE_REASONS = 20
"""Failure reasons kept in a result (the most frequent); the report says how many more there were."""


def plain(value: Any) -> Any:
    """A numpy/pandas scalar as a plain Python value (NaN as None)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of one of the reader's frames as plain dicts (NaN as None)."""
    return [{str(k): plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _figures(row: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    return {key: row[key] for key in fields if row.get(key) is not None}


def summary_of(data: RunData) -> Summary:
    """Every request the run holds, as one :class:`Summary`."""
    total = records(data.total())[0]
    fields = _figures(total, [name for name in Summary.model_fields if name not in ("requests", "excluded")])
    return Summary(requests=int(total.get("count") or 0), duration_s=float(data.duration_s), **fields)


def endpoints_of(data: RunData) -> tuple[Endpoint, ...]:
    """One :class:`Endpoint` per (request_type, name)."""
    return tuple(Endpoint(**_figures(row, list(Endpoint.model_fields))) for row in records(data.summary()))


NOT_FAILURES = ("success", "rejected")
"""Outcomes whose recorded reasons are not failures: a note on a success (a conformance finding),
the expected refusal of a bad request."""


def failure_reasons_of(data: RunData) -> tuple[tuple[FailureReason, ...], int]:
    """The most frequent failure reasons (notes on successes and expected rejections left out) and
    how many there were."""
    rows = [row for row in records(data.failure_reasons()) if row.get("outcome") not in NOT_FAILURES]
    rows.sort(key=lambda row: -int(row.get("count") or 0))
    kept = tuple(FailureReason(**_figures(row, list(FailureReason.model_fields))) for row in rows)
    return kept[:MAX_FAILURE_REASONS], len(rows)


def integrity_of(data: RunData) -> CollectorIntegrity:
    """Does the collector hold every timing? Locust's own count comes from the run's metadata, where
    the collector plugin stores it from Locust's statistics (the one source of Locust's total)."""
    return CollectorIntegrity(
        requests=data.requests,
        locust_requests=data.locust_total_requests,
        writers_complete=data.complete,
        clamped=data.clamped,
        problems=tuple(data.problems),
    )


@dataclass(frozen=True, slots=True)
class Collected:
    """A run as the collector holds it, with the figures every test type shares."""

    run_id: str
    data: RunData
    meta: Mapping[str, str]
    summary: Summary
    endpoints: tuple[Endpoint, ...]
    failure_reasons: tuple[FailureReason, ...]
    failure_reasons_total: int
    integrity: CollectorIntegrity
    workers: tuple[WorkerHealth, ...] = ()
    """The Locust processes that sent the load (one for a local run), as their marks tell."""

    @property
    def started_at(self) -> str:
        """ISO-8601 start, from the run's metadata (empty when unknown)."""
        return str(self.meta.get("started_at", ""))

    @property
    def stopped_at(self) -> str:
        """ISO-8601 stop, from the run's metadata (empty when unknown)."""
        return str(self.meta.get("stopped_at", ""))

    @classmethod
    def of(cls, data: RunData, max_cpu_percent: float = 90.0, max_lag_ms: float = 10.0) -> Collected:
        """The common figures of ``data`` (a worker above ``max_cpu_percent`` or whose event-loop lag
        P99 exceeds ``max_lag_ms`` counts as saturated)."""
        reasons, total_reasons = failure_reasons_of(data)
        return cls(
            run_id=data.run_id,
            data=data,
            meta=dict(data.meta),
            summary=summary_of(data),
            endpoints=endpoints_of(data),
            failure_reasons=reasons,
            failure_reasons_total=total_reasons,
            integrity=integrity_of(data),
            workers=worker_health_of(data, max_cpu_percent=max_cpu_percent, max_lag_ms=max_lag_ms),
        )


def record_status(client_or_url: Any, key_prefix: str, run_id: str, status: RunStatus) -> None:
    """Write how the run ended into its metadata (Locust's own shutdown path reports an interrupted
    or timed-out run as finished)."""
    if status is RunStatus.FINISHED:
        return
    client = redis.Redis.from_url(client_or_url) if isinstance(client_or_url, str) else client_or_url
    try:
        update_run(client, key_prefix, run_id, status=status.value)
    except (redis.RedisError, PerfsuiteError) as exc:
        logger.warning("could not record run %s as %s: %s", run_id, status.value, exc)


def collect(config: SuiteConfig, collector_url: str, run_id: str, status: RunStatus) -> Collected:
    """Read the run back (its status recorded first) and compute the common figures."""
    record_status(collector_url, config.redis.key_prefix, run_id, status)
    reader = CollectorReader(collector_url, key_prefix=config.redis.key_prefix)
    limits = config.arrival
    return Collected.of(reader.load(run_id), limits.max_cpu_percent, limits.max_lag_ms)


__all__ = [
    "MAX_FAILURE_REASONS",
    "Collected",
    "collect",
    "endpoints_of",
    "failure_reasons_of",
    "integrity_of",
    "plain",
    "record_status",
    "records",
    "summary_of",
]
