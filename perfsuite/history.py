"""Run history: every run in the collector's Redis, each with the graded result ``perfsuite run``
stored beside it, listed and found by target identity.

``perfsuite run`` stores the result of every run it grades in the run's metadata (field
``result``, without the bulky intervals), so ``perfsuite report RUN_ID`` and comparisons show
exactly what the run concluded. A run recorded another way (plain ``locust -f`` with the collector
plugin, the web UI) has no stored result: its figures are derived from the collector's data and the
report says that no thresholds were evaluated.

A run's **target identity** is its test type, its target (host and path, or "embedded demo bot"
in its mode) and its scenario: ``latest`` means the newest run of the same identity unless told
otherwise, so someone else's run on the same Redis is never taken for yours.

**Groups**: the runs of one ``perfsuite run --repeat N`` share a group id (metadata field
``group``, ids like ``g20261127T020708Z-3fa2b1``), so a comparison can take them as one side.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perfsuite.collect import Collected, records
from perfsuite.collector import CollectorReader, RunData, new_run_id, update_run, update_run_or_spill
from perfsuite.collector.client import RedisLike, redis_client
from perfsuite.errors import ConfigError
from perfsuite.intervals import IntervalSamples, Selection
from perfsuite.marks import CHART_KINDS
from perfsuite.registry import find, load_result
from perfsuite.result import RunResult, RunStatus, Target

RESULT_FIELD = "result"
"""Run metadata field holding the run's result document (JSON)."""

GROUP_FIELD = "group"
"""Run metadata field holding the id of the ``--repeat`` group the run belongs to."""

GROUP_SCAN = 1000
"""A group's runs are looked for among this many newest runs."""

NOT_GRADED = (
    "no graded result is stored with this run (it was recorded outside `perfsuite run`): figures are "
    "derived from the collector's data and no thresholds were evaluated"
)

MARK_FIELDS = ("name", "step", "fault", "fault_kind", "start_s", "end_s", "alert", "severity", "reason")
"""Fields a run's chart marks keep."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One line of ``perfsuite runs list``."""

    run_id: str
    test_type: str
    scenario: str
    target: str
    """The target's identity (``embedded demo bot (legacy)``, ``http://bot:8000/webhook``)."""
    started_at: str
    status: str
    requests: int
    grade: str
    """The stored result's grade, or ``-`` when none is stored."""
    demo_bot_mode: str = "-"
    """``legacy`` / ``optimized`` when the run loaded the embedded demo bot, else ``-``."""
    group: str = "-"
    """The ``--repeat`` group the run belongs to, else ``-``."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


def marks_of(data: RunData) -> list[dict[str, Any]]:
    """Stage marks, fault windows and alerts of a run as plain rows (at, kind, and their fields)."""
    rows: list[dict[str, Any]] = []
    marks = data.marks()
    if not len(marks):
        return rows
    for row in records(marks):
        kind = str(row.get("kind"))
        if kind not in CHART_KINDS:
            continue
        mark: dict[str, Any] = {"at": float(row["at"]), "kind": kind}
        for key in MARK_FIELDS:
            if row.get(key) is not None:
                mark[key] = row[key]
        rows.append(mark)
    return rows


def derived_result(data: RunData) -> RunResult:
    """A result for a run that has none stored: the collector's figures, no checks."""
    meta = data.meta
    collected = Collected.of(data)
    try:
        config = json.loads(meta.get("config") or "{}")
    except ValueError:
        config = {}
    status = meta.get("status", "")
    return RunResult(
        test_type=meta.get("test_type", "webhook") or "webhook",
        run_id=data.run_id,
        scenario=meta.get("scenario", ""),
        target=Target(host=meta.get("host", "")),
        started_at=meta.get("started_at", ""),
        stopped_at=meta.get("stopped_at", ""),
        status=RunStatus(status) if status in RunStatus.__members__.values() else RunStatus.FINISHED,
        summary=collected.summary,
        endpoints=collected.endpoints,
        collector=collected.integrity,
        workers=collected.workers,
        failure_reasons=collected.failure_reasons,
        failure_reasons_total=collected.failure_reasons_total,
        warnings=(NOT_GRADED,),
        config=config if isinstance(config, dict) else {},
    )


def selection_for(result: RunResult) -> Selection:
    """Which cells of a run are its test's requests (its test type decides; all cells otherwise)."""
    test_type = find(result.test_type)
    return test_type.selection(result) if test_type is not None else Selection()


def with_series(result: RunResult, data: RunData, max_intervals: int) -> RunResult:
    """``result`` with the run's intervals and chart marks (for result files and charts)."""
    samples = IntervalSamples.from_run(data, selection_for(result), max_intervals)
    return result.model_copy(update={"intervals": samples.to_dict(), "marks": tuple(marks_of(data))})


def _stored_in(meta: dict[str, str], run_id: str) -> RunResult | None:
    """The result stored in a run's metadata, or None (none stored, or unreadable)."""
    raw = meta.get(RESULT_FIELD)
    if not raw:
        return None
    try:
        return load_result(json.loads(raw), f"run {run_id}")
    except (ValueError, ConfigError):
        return None


def new_group_id(now: datetime | None = None) -> str:
    """A new group id such as ``g20261127T020708Z-3fa2b1`` (never taken for a run id)."""
    return "g" + new_run_id(now or datetime.now(UTC))


def _group_created(group: str) -> datetime | None:
    try:
        return datetime.strptime(group[1:17], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _parsed(timestamp: str) -> datetime:
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class RunHistory:
    """The runs stored in the collector's Redis under one key prefix."""

    def __init__(self, redis_client_or_url: RedisLike, key_prefix: str, max_intervals: int = 100) -> None:
        self._client = redis_client(redis_client_or_url, socket_timeout_s=30.0)
        self._prefix = key_prefix
        self.max_intervals = max_intervals
        """A run is cut into at most this many intervals (``baseline.max_intervals``)."""
        self.reader: CollectorReader = CollectorReader(self._client, key_prefix=key_prefix)
        """The collector reader the history reads through."""

    def entries(
        self,
        limit: int = 20,
        test_type: str | None = None,
        target: str | None = None,
        scenario: str | None = None,
    ) -> Iterator[tuple[RunInfo, RunResult | None]]:
        """The newest runs with their stored results (None when none is stored), newest first (of
        ``test_type``, ``target`` identity, ``scenario`` when given; at most ``limit``)."""
        filtered = test_type is not None or target is not None or scenario is not None
        frame = self.reader.list_runs(limit=max(limit * 10, 200) if filtered else limit)
        found = 0
        for row in records(frame):
            if test_type is not None and row.get("test_type") != test_type:
                continue
            if scenario is not None and str(row.get("scenario") or "") != scenario:
                continue
            run_id = str(row["run_id"])
            try:
                meta = self.reader.meta(run_id)
            except ConfigError:  # expired since the listing
                continue
            stored = _stored_in(meta, run_id)
            identity = stored.target.identity if stored is not None else str(row.get("host") or "-")
            if target is not None and identity != target:
                continue
            info = RunInfo(
                run_id=run_id,
                test_type=str(row.get("test_type") or "-"),
                scenario=str(row.get("scenario") or "-"),
                target=identity,
                started_at=str(row.get("started_at") or ""),
                status=str(row.get("status") or "-"),
                requests=int(row.get("requests") or 0),
                grade=stored.grade.value if stored is not None and stored.graded else "-",
                demo_bot_mode=(stored.target.demo_bot_mode if stored is not None else None) or "-",
                group=meta.get(GROUP_FIELD) or "-",
            )
            yield info, stored
            found += 1
            if found >= limit:
                return

    def list(
        self,
        limit: int = 20,
        test_type: str | None = None,
        target: str | None = None,
        scenario: str | None = None,
    ) -> list[RunInfo]:
        """The newest runs, newest first (of ``test_type``, ``target`` identity, ``scenario`` when given)."""
        return [info for info, _ in self.entries(limit, test_type, target, scenario)]

    def latest(
        self,
        test_type: str | None = None,
        target: str | None = None,
        scenario: str | None = None,
        exclude: Sequence[str] = (),
    ) -> str | None:
        """Id of the newest run of that identity (any part None: any), other than ``exclude``."""
        for info in self.list(limit=len(exclude) + 1, test_type=test_type, target=target, scenario=scenario):
            if info.run_id not in exclude:
                return info.run_id
        return None

    def store(self, result: RunResult, spill_dir: Path | None = None, group: str | None = None) -> bool:
        """Keep ``result`` with its run (the run must exist in the collector), in ``group`` when
        given. With ``spill_dir``, a Redis that does not answer gets it later
        (``update_run_or_spill``): False then."""
        fields = {RESULT_FIELD: json.dumps(result.to_document(with_series=False), default=str)}
        if group is not None:
            fields[GROUP_FIELD] = group
        if spill_dir is not None:
            return update_run_or_spill(self._client, self._prefix, result.run_id, spill_dir, **fields)
        update_run(self._client, self._prefix, result.run_id, **fields)
        return True

    def stored(self, run_id: str) -> RunResult | None:
        """The result stored with the run, or None (none stored, or unreadable)."""
        return _stored_in(self.reader.meta(run_id), run_id)

    def exists(self, run_id: str) -> bool:
        """True when a run with this id is stored (False for anything that is not a run id)."""
        try:
            self.reader.meta(run_id)
        except ConfigError:
            return False
        return True

    def group_of(self, run_id: str) -> str | None:
        """The group the run belongs to, or None."""
        return self.reader.meta(run_id).get(GROUP_FIELD) or None

    def group_runs(self, group: str) -> tuple[str, ...]:
        """Ids of the runs of ``group``, oldest first (empty when there is no such group). Runs are
        looked for among the :data:`GROUP_SCAN` newest, back to the group's creation second."""
        created = _group_created(group)
        members = []
        for info, _ in self.entries(limit=GROUP_SCAN):
            if info.group == group:
                members.append(info.run_id)
            elif created is not None and info.started_at and _parsed(info.started_at) < created:
                break
        return tuple(reversed(members))

    def load(self, run_id: str) -> tuple[RunResult, RunData]:
        """The run's result (stored, else derived) and its data."""
        stored = self.stored(run_id)
        data = self.reader.load(run_id)
        return (stored if stored is not None else derived_result(data)), data

    def result(self, run_id: str) -> RunResult:
        """The run's result with its intervals and marks."""
        result, data = self.load(run_id)
        return with_series(result, data, self.max_intervals)

    def resolve(self, text: str, flag: str, like: RunResult | None = None) -> str:
        """A run id from ``text``: an id, or ``latest`` (of ``like``'s identity when given, else of
        any run); ConfigError naming ``flag`` when there is none."""
        if text != "latest":
            return text
        if like is None:
            run_id = self.latest()
        else:
            run_id = self.latest(like.test_type, like.target.identity, like.scenario, exclude=(like.run_id,))
        if run_id is None:
            what = "run" if like is None else f"other {like.test_type} run of {like.target.identity}"
            raise ConfigError(f"{flag} latest: no {what} is stored (see `perfsuite runs list`)")
        return run_id


__all__ = [
    "GROUP_FIELD",
    "NOT_GRADED",
    "RESULT_FIELD",
    "RunHistory",
    "RunInfo",
    "derived_result",
    "marks_of",
    "new_group_id",
    "selection_for",
    "with_series",
]
