"""Reading a finished run back from the collector: the common figures every test type reports.

:func:`collect` is the one place that turns a run's stored data into its summary, endpoint rows,
failure reasons and collector integrity, and that records how the run ended in its metadata.

The collector's Redis may have been lost during the run: what the writers kept in spill files is
written back before the run is read; when Redis still does not answer, the run is read from those
files instead (they stay for the next ``perfsuite`` command to write back).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from perfsuite.collector import (
    FROM_SPILL,
    CollectorReader,
    RunData,
    load_spilled,
    replay_spill,
    unclosed_writer_problem,
    update_run,
    update_run_or_spill,
)
from perfsuite.collector.client import REDIS_ERRORS, RedisLike
from perfsuite.config import SuiteConfig, redact_url
from perfsuite.errors import CollectorLost, ConfigError, PerfsuiteError
from perfsuite.result import CollectorIntegrity, Endpoint, FailureReason, RunStatus, Summary
from perfsuite.worker_health import WorkerHealth, worker_health_of

logger = logging.getLogger(__name__)

_STATUS_ERRORS: tuple[type[Exception], ...] = (PerfsuiteError, *REDIS_ERRORS)

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
    return Summary(requests=int(total.get("count") or 0), duration_s=data.elapsed_s, **fields)


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


def integrity_of(
    data: RunData, written_back: int = 0, workers: Sequence[WorkerHealth] = ()
) -> CollectorIntegrity:
    """Does the collector hold every timing? Locust's own count comes from the run's metadata, where
    the collector plugin stores it from Locust's statistics (the one source of Locust's total).

    Workers lost mid-run (``workers``) never close their writers, and what Locust's master had from
    them trails what they flushed: both totals are compared without them (the report names them
    with their numbers), and their unclosed writers are not a collector problem.

    Was the collector's Redis lost during the run? Yes when its writers saw it fail or come back
    empty, when ``written_back`` entries had to be written back from spill files, or when the run
    had to be read from them."""
    read_from_spill = data.source == FROM_SPILL
    recovered = data.entries_from_files if read_from_spill else written_back
    problems = tuple(data.problems)
    lost = [worker for worker in workers if worker.lost]
    lost_requests = 0
    if lost:
        # A worker killed before its first health mark cannot be linked to its writer: every writer
        # that is not a surviving worker's is the lost workers'.
        survivors = [worker for worker in workers if not worker.lost]
        surviving_writers = {worker.writer_id for worker in survivors}
        writers = data.writers()
        unclosed: list[str] = (
            [str(w) for w in writers[~writers["closed"].astype(bool)]["writer_id"]] if len(writers) else []
        )
        excused = {unclosed_writer_problem(str(w)) for w in unclosed if w not in surviving_writers}
        problems = tuple(problem for problem in problems if problem not in excused)
        lost_requests = data.requests - sum(worker.requests for worker in survivors)
    return CollectorIntegrity(
        requests=data.requests,
        locust_requests=data.locust_total_requests,
        writers_complete=not problems,
        clamped=data.clamped,
        problems=problems,
        lost_workers=len(lost),
        lost_workers_requests=lost_requests,
        lost_workers_reported=sum(worker.reported_requests or 0 for worker in lost),
        redis_lost=bool(data.redis_outages or recovered or read_from_spill),
        redis_outages=data.redis_outages,
        rewritten_from_journals=data.entries_rewritten,
        recovered_from_spill=recovered,
        read_from_spill=read_from_spill,
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
    def of(
        cls, data: RunData, max_cpu_percent: float = 90.0, max_lag_ms: float = 10.0, *, written_back: int = 0
    ) -> Collected:
        """The common figures of ``data`` (a worker above ``max_cpu_percent`` or whose event-loop lag
        P99 exceeds ``max_lag_ms`` counts as saturated; ``written_back``: entries of the run written
        back to Redis from spill files before it was read)."""
        reasons, total_reasons = failure_reasons_of(data)
        workers = worker_health_of(data, max_cpu_percent=max_cpu_percent, max_lag_ms=max_lag_ms)
        return cls(
            run_id=data.run_id,
            data=data,
            meta=dict(data.meta),
            summary=summary_of(data),
            endpoints=endpoints_of(data),
            failure_reasons=reasons,
            failure_reasons_total=total_reasons,
            integrity=integrity_of(data, written_back, workers),
            workers=workers,
        )


def record_status(
    client_or_url: RedisLike, key_prefix: str, run_id: str, status: RunStatus, spill_dir: Path | None = None
) -> None:
    """Write how the run ended into its metadata (Locust's own shutdown path reports an interrupted
    or timed-out run as finished); with ``spill_dir``, kept there for later when Redis does not
    answer."""
    if status is RunStatus.FINISHED:
        return
    try:
        if spill_dir is None:
            update_run(client_or_url, key_prefix, run_id, status=status.value)
        else:
            update_run_or_spill(client_or_url, key_prefix, run_id, spill_dir, status=status.value)
    except _STATUS_ERRORS as exc:
        logger.warning("could not record run %s as %s: %s", run_id, status.value, exc)


def collect(config: SuiteConfig, collector_url: str, run_id: str, status: RunStatus) -> Collected:
    """Read the run back (what its writers spilled written back and its status recorded first) and
    compute the common figures; when the collector's Redis does not answer, read the run from the
    spill files (see the module docstring). CollectorLost (exit 75) when neither holds it."""
    prefix = config.redis.key_prefix
    spill_dir = config.collector.spill_dir
    limits = config.arrival
    try:
        written_back = replay_spill(collector_url, spill_dir, run_id).spilled_entries
        record_status(collector_url, prefix, run_id, status, spill_dir)
        data = CollectorReader(collector_url, key_prefix=prefix).load(run_id)
        return Collected.of(data, limits.max_cpu_percent, limits.max_lag_ms, written_back=written_back)
    except REDIS_ERRORS as exc:
        logger.warning(
            "the collector's Redis does not answer (%s: %s): reading run %s from %s",
            type(exc).__name__,
            exc,
            run_id,
            spill_dir,
        )
    except ConfigError as exc:  # Redis answers without the run, and no spill file was left
        raise CollectorLost(
            f"{exc}: the collector's Redis at {redact_url(collector_url)} lost run {run_id} after its "
            "writers had finished (restarted without persistence?); rerun"
        ) from None
    record_status(collector_url, prefix, run_id, status, spill_dir)
    try:
        return Collected.of(
            load_spilled(spill_dir, run_id, prefix), limits.max_cpu_percent, limits.max_lag_ms
        )
    except ConfigError:
        raise CollectorLost(
            f"the collector's Redis at {redact_url(collector_url)} does not answer and no spill file "
            f"under {spill_dir} holds run {run_id}; rerun when it answers"
        ) from None


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
