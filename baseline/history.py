"""Run history: list stored runs, keep each run's graded result with it, read runs back as sides.

``perfsuite run`` stores the result document of every run it grades in the run's metadata (field
``result``, without the bulky intervals), so ``perfsuite report RUN_ID`` and comparisons show
exactly what the run concluded. A run recorded another way (plain ``locust -f`` with the collector
plugin) has no stored result: its figures are derived from the collector's data and the report
says that no thresholds were evaluated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baseline.comparator import RunSide
from baseline.intervals import IntervalSamples, Selection
from perfsuite.collector import CollectorReader, RunData, update_run
from perfsuite.collector.client import RedisLike, redis_client
from perfsuite.config import BaselineConfig
from perfsuite.errors import ConfigError
from perfsuite.result import SCHEMA, JobResult, read_json

RESULT_FIELD = "result"
"""Run metadata field holding the run's result document (JSON)."""

NOT_GRADED = (
    "no graded result is stored with this run (it was recorded outside `perfsuite run`): figures are "
    "derived from the collector's data and no thresholds were evaluated"
)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One line of ``perfsuite runs list``."""

    run_id: str
    test_type: str
    scenario: str
    started_at: str
    status: str
    requests: int
    grade: str
    """The stored result's grade, or ``-`` when none is stored."""
    demo_bot_mode: str
    """``legacy`` / ``optimized`` when the run loaded the embedded demo bot, else ``-``."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "run_id": self.run_id,
            "test_type": self.test_type,
            "scenario": self.scenario,
            "started_at": self.started_at,
            "status": self.status,
            "requests": self.requests,
            "grade": self.grade,
            "demo_bot_mode": self.demo_bot_mode,
        }


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _records(frame: Any) -> list[dict[str, Any]]:
    return [{str(k): _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def selection_for(document: Mapping[str, Any]) -> Selection:
    """Which cells of a run are its test's requests (for the intervals), from its result document."""
    if document.get("test_type") == "redis":
        operations = [
            row.get("operation") for row in (document.get("redis") or {}).get("per_operation") or []
        ]
        names = tuple(str(name) for name in operations if name)
        return Selection(request_type="REDIS", names=names or None, good_outcomes=("success",))
    return Selection(good_outcomes=("success", "rejected"))


def _demo_mode(document: Mapping[str, Any]) -> str:
    if "embedded demo bot" not in str(document.get("host", "")):
        return "-"
    return str(((document.get("config") or {}).get("target") or {}).get("demo_bot_mode") or "-")


def marks_of(data: RunData) -> list[dict[str, Any]]:
    """Stage marks and fault windows of a run as plain rows (at, kind, name/fault)."""
    rows: list[dict[str, Any]] = []
    marks = data.marks()
    if not len(marks):
        return rows
    for row in _records(marks):
        kind = str(row.get("kind"))
        if kind not in ("stage", "fault_start", "fault_end", "fault"):
            continue
        mark: dict[str, Any] = {"at": float(row["at"]), "kind": kind}
        for key in ("name", "fault", "fault_kind", "start_s", "end_s"):
            if row.get(key) is not None:
                mark[key] = row[key]
        rows.append(mark)
    return rows


def derived_document(data: RunData) -> dict[str, Any]:
    """A result document for a run that has none stored: figures from the collector, no checks."""
    meta = data.meta
    total = _records(data.total())[0] if data.requests else {}
    count = int(total.get("count") or 0)
    summary = dict(total)
    summary.pop("request_type", None)
    summary.pop("name", None)
    summary["requests"] = count
    summary["success_rate"] = (
        (int(total.get("success", 0)) + int(total.get("rejected", 0))) / count if count else None
    )
    summary["duration_s"] = data.duration_s
    try:
        config = json.loads(meta.get("config") or "{}")
    except ValueError:
        config = {}
    return {
        "schema": SCHEMA,
        "test_type": meta.get("test_type", "webhook") or "webhook",
        "run_id": data.run_id,
        "scenario": meta.get("scenario", ""),
        "host": meta.get("host", ""),
        "started_at": meta.get("started_at", ""),
        "stopped_at": meta.get("stopped_at", ""),
        "interrupted": meta.get("status") == "interrupted",
        "summary": summary,
        "endpoints": _records(data.summary()),
        "timings": {},
        "checks": [],
        "collector": {
            "requests": data.requests,
            "locust_requests": data.locust_total_requests,
            "exact": bool(data.matches_locust) and data.complete,
            "writers_complete": data.complete,
        },
        "backlog": {},
        "failure_reasons": [r for r in _records(data.failure_reasons()) if r.get("outcome") != "rejected"],
        "warnings": [NOT_GRADED],
        "config": config if isinstance(config, dict) else {},
    }


def side_label(document: Mapping[str, Any], source: str, where: str = "") -> str:
    """``run <id> (webhook, scenario default, demo bot legacy)`` or ``file <path> (...)``."""
    details = [str(document.get("test_type", "?")), f"scenario {document.get('scenario') or '?'}"]
    mode = _demo_mode(document)
    if mode != "-":
        details.append(f"demo bot {mode}")
    name = f"run {document.get('run_id')}" if source == "run" else f"file {where}"
    return f"{name} ({', '.join(details)})"


class RunHistory:
    """The runs stored in the collector's Redis under one key prefix."""

    def __init__(self, redis_client_or_url: RedisLike, key_prefix: str, settings: BaselineConfig) -> None:
        self._client = redis_client(redis_client_or_url, socket_timeout_s=30.0)
        self._prefix = key_prefix
        self.settings: BaselineConfig = settings
        """Comparison settings (interval count, noise model) for the sides it reads."""
        self.reader: CollectorReader = CollectorReader(self._client, key_prefix=key_prefix)
        """The collector reader the history reads through."""

    def list(self, limit: int = 20, test_type: str | None = None) -> list[RunInfo]:
        """The newest runs, newest first (of ``test_type`` when given)."""
        frame = self.reader.list_runs(limit=limit if test_type is None else max(limit * 10, 200))
        runs = []
        for row in _records(frame):
            if test_type is not None and row.get("test_type") != test_type:
                continue
            document = self.stored_document(str(row["run_id"]))
            runs.append(
                RunInfo(
                    run_id=str(row["run_id"]),
                    test_type=str(row.get("test_type") or "-"),
                    scenario=str(row.get("scenario") or "-"),
                    started_at=str(row.get("started_at") or ""),
                    status=str(row.get("status") or "-"),
                    requests=int(row.get("requests") or 0),
                    grade=str(document.get("grade", "-")) if document else "-",
                    demo_bot_mode=_demo_mode(document) if document else "-",
                )
            )
            if len(runs) >= limit:
                break
        return runs

    def latest(self, test_type: str, exclude: tuple[str, ...] = ()) -> str | None:
        """Id of the newest run of ``test_type`` other than those in ``exclude``."""
        for info in self.list(limit=len(exclude) + 1, test_type=test_type):
            if info.run_id not in exclude:
                return info.run_id
        return None

    def store(self, result: JobResult) -> None:
        """Keep ``result``'s document with its run (the run must exist in the collector)."""
        document = result.to_dict()
        document.pop("intervals", None)
        document.pop("marks", None)
        update_run(
            self._client, self._prefix, result.run_id, **{RESULT_FIELD: json.dumps(document, default=str)}
        )

    def stored_document(self, run_id: str) -> dict[str, Any] | None:
        """The result document stored with the run, or None."""
        raw = self.reader.meta(run_id).get(RESULT_FIELD)
        if not raw:
            return None
        try:
            document = json.loads(raw)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    def load(self, run_id: str) -> tuple[dict[str, Any], RunData]:
        """The run's result document (stored, else derived) and its data."""
        document = self.stored_document(run_id)
        data = self.reader.load(run_id)
        return (document if document is not None else derived_document(data)), data

    def result(self, run_id: str) -> tuple[JobResult, RunData]:
        """The run as a result (with its intervals and marks in ``extra``) and its data."""
        document, data = self.load(run_id)
        samples = IntervalSamples.from_run(data, selection_for(document), self.settings.max_intervals)
        document = {**document, "intervals": samples.to_dict(), "marks": marks_of(data)}
        return JobResult.from_dict(document, f"run {run_id}"), data

    def side(self, run_id: str) -> RunSide:
        """The run as one side of a comparison (its marks added to the document)."""
        document, data = self.load(run_id)
        samples = IntervalSamples.from_run(data, selection_for(document), self.settings.max_intervals)
        document = {**document, "marks": marks_of(data)}
        return RunSide(
            test_type=str(document.get("test_type")),
            run_id=run_id,
            label=side_label(document, "run"),
            source="run",
            document=document,
            samples=samples,
            complete=data.complete,
        )


def sides_from_file(path: Path, flag: str = "--baseline-file") -> list[RunSide]:
    """The run(s) of a result file as comparison sides: one for a webhook/redis/capacity result,
    one per job for an ``all`` result; noise-aware when a run holds its ``intervals``."""
    document = read_json(path, flag)
    documents = document.get("runs") if document.get("test_type") == "all" else [document]
    if document.get("test_type") == "baseline" or not documents:
        raise ConfigError(
            f"{flag} {path}: a {document.get('test_type')} result holds no run to compare with; "
            "use the result file of a webhook, redis, capacity or all run"
        )
    sides = []
    for run in documents:
        intervals = run.get("intervals")
        samples = IntervalSamples.from_dict(intervals, f"{flag} {path}") if intervals else None
        sides.append(
            RunSide(
                test_type=str(run.get("test_type")),
                run_id=str(run.get("run_id", "")),
                label=side_label(run, "file", str(path)),
                source="file",
                document=run,
                samples=samples,
                complete=bool((run.get("collector") or {}).get("writers_complete", True)),
            )
        )
    return sides


__all__ = [
    "NOT_GRADED",
    "RESULT_FIELD",
    "RunHistory",
    "RunInfo",
    "derived_document",
    "marks_of",
    "selection_for",
    "side_label",
    "sides_from_file",
]
