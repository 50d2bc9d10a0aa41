"""The result of one test job, typed and frozen: what the reports, the JSON file and the exit code show.

A :class:`RunResult` is built once, by the job skeleton (``perfsuite/jobs.py``), and never changed
afterwards (``model_copy`` makes a new one). Plain dicts exist only at the JSON edge:
:meth:`RunResult.to_document` writes schema ``perfsuite.result/2``, :func:`read_document` reads
version 2 and upgrades version 1 files (:func:`upgrade_v1`), so ``perfsuite compare`` still takes
result files written before the change. The JSON Schema is generated from these models
(``perfsuite.registry.json_schema``), with each test type's figures model in it.

Version 2 renamed (see CHANGELOG): ``host`` -> ``target`` (kind, host, path, embedded,
demo_bot_mode as fields), ``interrupted`` -> ``status``, ``runs`` -> ``parts``; test-type sections
(webhook ``timings``, ``latency``, ``arrival``, ``backlog``; Redis ``redis``, ``pool``, ``breaker``,
``connection_health``; ``capacity``) moved under ``figures``; ``summary.count`` dropped (it equals
``summary.requests``); the pre-rendered ``report_sections`` are gone (reports are drawn from the
figures); the Redis benchmark's breaker refusals and injected faults moved from
``summary.backpressure``/``summary.injected`` to ``summary.excluded``.
"""

from __future__ import annotations

import enum
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, computed_field

from perfsuite.collector.batch import ANSWERED_AS_INTENDED, success_rate
from perfsuite.errors import EXIT_INTERRUPTED, EXIT_TEMPFAIL, ConfigError
from perfsuite.grading import Check, Grade, combined
from perfsuite.worker_health import WorkerHealth

SCHEMA: Literal["perfsuite.result/2"] = "perfsuite.result/2"
SCHEMA_V1 = "perfsuite.result/1"


class Model(BaseModel):
    """Frozen, strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class RunStatus(enum.StrEnum):
    """How a run ended (one owner: ``perfsuite.jobs.run_status``)."""

    FINISHED = "finished"
    INTERRUPTED = "interrupted"
    """Ctrl-C or SIGTERM: partial results."""
    TIMED_OUT = "timed_out"
    """Locust did not finish within the job's time bound and was stopped: partial results."""


class Target(Model):
    """What was loaded, as fields (never a string to parse back)."""

    kind: Literal["http", "redis", "none"] = "http"
    host: str = ""
    """Base URL Locust connected to (a Redis URL with its password redacted)."""
    path: str | None = None
    """The webhook path (HTTP targets)."""
    embedded: bool = False
    """True when the suite started the target itself (the demo bot, a private Redis to benchmark)."""
    demo_bot_mode: str | None = None
    """``optimized`` / ``legacy`` for the embedded demo bot, else None."""

    @property
    def label(self) -> str:
        """``http://127.0.0.1:8000/webhook/whatsapp (embedded demo bot, legacy)``."""
        text = self.host + (self.path or "") if self.kind == "http" else self.host
        if self.embedded:
            what = "embedded demo bot" if self.kind == "http" else "embedded private Redis"
            text += f" ({what}" + (f", {self.demo_bot_mode})" if self.demo_bot_mode else ")")
        return text or "-"

    @property
    def identity(self) -> str:
        """What makes two runs runs of the same target: the embedded demo bot (whatever port it got;
        its mode is the build under test, like a before/after of your own bot), or the host and
        path."""
        if self.embedded:
            return "embedded demo bot" if self.kind == "http" else "embedded private Redis"
        return self.host + (self.path or "") if self.kind == "http" else self.host


class _Figures(Model):
    success: int = 0
    rejected: int = 0
    backpressure: int = 0
    failure: int = 0
    avg_ms: float | None = None
    min_ms: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    rps: float | None = None
    """Requests per second over the exact span from the first to the last request."""
    bytes: int = 0


class Summary(_Figures):
    """The run's totals (the requests judged), percentiles over all of them, and throughput."""

    requests: int = 0
    """Requests judged: sent to the target and answered (or not) by it."""
    duration_s: float | None = None
    """Seconds from the first request's start to the last request's end."""
    excluded: dict[str, int] = Field(default_factory=dict)
    """Requests not judged, by why (``injected``: sent into an injected fault on purpose;
    ``refused_by_breaker``: our own client's open breaker refused them unsent)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def success_rate(self) -> float | None:
        """Share answered as intended (see :data:`ANSWERED_AS_INTENDED`); None without requests."""
        return success_rate(self.success, self.rejected, self.requests)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failure_rate(self) -> float | None:
        """Share that failed (errors, wrong answers, no answer)."""
        return self.failure / self.requests if self.requests else None


class Endpoint(_Figures):
    """One (request_type, name) row: the same figures for that endpoint alone."""

    request_type: str
    name: str
    count: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def success_rate(self) -> float | None:
        """Share answered as intended."""
        return success_rate(self.success, self.rejected, self.count)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failure_rate(self) -> float | None:
        """Share that failed."""
        return self.failure / self.count if self.count else None


class CollectorIntegrity(Model):
    """Did the collector get every timing? (The one place this is decided.)"""

    requests: int = 0
    """Requests the collector holds for the run."""
    locust_requests: int | None = None
    """Locust's own count (the run's metadata, written by the collector plugin from Locust's stats)."""
    writers_complete: bool = True
    """Every writer closed and everything it declared was found."""
    clamped: int = 0
    """Latencies outside the histogram range, recorded at the limit."""
    problems: tuple[str, ...] = ()
    redis_lost: bool = False
    """The collector's Redis stopped answering, or came back empty, during the run: its data was
    recovered from the writers' journals and spill files as far as ``lost`` says, and the run exits
    75 whatever its grade (``RunResult.exit_code``)."""
    redis_outages: int = 0
    """Times the writers found the collector's Redis unreachable, or emptied, during the run."""
    rewritten_from_journals: int = 0
    """Entries (batches, writer records, run metadata) the writers wrote again from their journals
    once Redis answered again, in case it had lost them."""
    recovered_from_spill: int = 0
    """Entries (batches, writer records, run metadata) that came from local spill files rather
    than Redis: written back to Redis at the end, or read from the files (``read_from_spill``)."""
    read_from_spill: bool = False
    """Redis still did not answer at the end: the figures were read from the writers' spill files,
    which are written to Redis when it answers again (the next ``perfsuite`` command does it)."""
    lost_workers: int = 0
    """Workers lost mid-run (killed, hung, cut off): their counts are left out of the comparison."""
    lost_workers_requests: int = 0
    """Of ``requests``, what the lost workers had flushed to the collector before they were lost."""
    lost_workers_reported: int = 0
    """Of ``locust_requests``, what Locust's master had received from the lost workers' stats reports
    (it trails what they flushed: the two totals differ by design, so only the survivors compare)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def lost(self) -> int | None:
        """Requests Locust counted that the collector does not hold (0 when nothing was lost; None
        when Locust's count is unknown)."""
        if self.locust_requests is None:
            return None
        return max(0, self.locust_requests - self.requests)

    @property
    def compared_requests(self) -> int:
        """The collector's side of the comparison: every request, less the lost workers'."""
        return self.requests - self.lost_workers_requests

    @property
    def compared_locust_requests(self) -> int | None:
        """Locust's side of the comparison: its count, less what it had from the lost workers."""
        if self.locust_requests is None:
            return None
        return self.locust_requests - self.lost_workers_reported

    @computed_field  # type: ignore[prop-decorator]
    @property
    def exact(self) -> bool:
        """The collector holds exactly what Locust counted, and every writer is complete (with
        workers lost mid-run: over the surviving workers, whose writers all closed)."""
        return self.compared_locust_requests == self.compared_requests and self.writers_complete


class FailureReason(Model):
    """Why requests of one endpoint were not answered as intended, with how many."""

    request_type: str = ""
    name: str = ""
    outcome: str = "failure"
    reason: str = ""
    """The reason, with a short redacted excerpt of the bot's answer where it gave one."""
    count: int = 0


class RawFigures(BaseModel):
    """Figures of a test type this installation does not know (kept as they were read)."""

    model_config = ConfigDict(frozen=True, extra="allow")


class RunResult(Model):
    """Everything one job measured and concluded (schema ``perfsuite.result/2``)."""

    schema_: Literal["perfsuite.result/2"] = Field(SCHEMA, alias="schema")
    test_type: str
    """A registered test type (webhook, redis, capacity...), ``baseline`` or ``all``."""
    run_id: str = ""
    scenario: str = ""
    target: Target = Target(kind="none")
    started_at: str = ""
    stopped_at: str = ""
    status: RunStatus = RunStatus.FINISHED
    summary: Summary = Summary()
    endpoints: tuple[Endpoint, ...] = ()
    checks: tuple[Check, ...] = ()
    collector: CollectorIntegrity | None = None
    workers: tuple[WorkerHealth, ...] = ()
    """Each Locust process that sent load: requests and share, CPU, loop lag, heartbeat gaps, lost
    or not (one for a local run)."""
    failure_reasons: tuple[FailureReason, ...] = ()
    failure_reasons_total: int = 0
    """Distinct failure reasons the run had (``failure_reasons`` holds at most the top ones)."""
    warnings: tuple[str, ...] = ()
    diagnosis: tuple[str, ...] = ()
    """What most likely went wrong, first line first (empty when nothing did)."""
    config: dict[str, Any] = Field(default_factory=dict)
    """The configuration snapshot, secrets redacted (the JSON edge of ``SuiteConfig``)."""
    figures: SerializeAsAny[BaseModel] | None = None
    """The test type's own figures model (see its ``figures_model``)."""
    intervals: dict[str, Any] | None = None
    """The run cut into intervals (schema ``perfsuite.intervals/1``), for noise-aware comparisons."""
    marks: tuple[dict[str, Any], ...] = ()
    """Stage marks, fault windows and alerts, for charts."""
    parts: tuple[RunResult, ...] = ()
    """``all``: the results of the jobs that ran (the grade is the worst of all)."""
    comparison: dict[str, Any] | None = None
    """``baseline`` and ``all``: the comparison document (schema ``perfsuite.comparison/2``, built by
    the comparator; the JSON edge of ``baseline.comparator.Comparison``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @property
    def interrupted(self) -> bool:
        """The user stopped the run (or a part of it): Ctrl-C or SIGTERM."""
        return self.status is RunStatus.INTERRUPTED or any(part.interrupted for part in self.parts)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def grade(self) -> Grade:
        """The grade the checks (and parts) earn (see perfsuite.grading)."""
        return combined(self.checks, [part.grade for part in self.parts])

    @property
    def collector_lost(self) -> bool:
        """The collector's Redis was lost during the run (or a part of it)."""
        lost = self.collector is not None and self.collector.redis_lost
        return lost or any(part.collector_lost for part in self.parts)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def exit_code(self) -> int:
        """130 when interrupted by the user (here or in a part); 75 when the collector's Redis was
        lost during the run (the grade is shown, but is no verdict); else the grade's exit code."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.collector_lost:
            return EXIT_TEMPFAIL
        return self.grade.exit_code

    @property
    def graded(self) -> bool:
        """False for a run recorded outside ``perfsuite run`` (no check was evaluated)."""
        return bool(self.checks or self.parts or self.comparison)

    def to_document(self, with_series: bool = True) -> dict[str, Any]:
        """The JSON document (schema ``perfsuite.result/2``); ``with_series=False`` leaves out the
        bulky ``intervals`` and ``marks`` (what is stored with the run)."""
        exclude = None if with_series else {"intervals", "marks"}
        return self.model_dump(mode="json", by_alias=True, exclude=exclude)


def write_json(document: Mapping[str, Any], path: Path) -> None:
    """Write ``document`` to ``path`` (parents created); an unwritable path is a ConfigError."""
    write_text(json.dumps(document, indent=2, default=str) + "\n", path)


def write_text(text: str, path: Path, flag: str = "--output-file") -> None:
    """Write ``text`` to ``path`` atomically (parents created); an unwritable path is a ConfigError
    naming ``flag``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write: {exc.strerror}") from None


def check_writable(path: Path, flag: str) -> None:
    """Fail before a run (ConfigError naming ``flag``) when ``path`` could not be written after
    it: creates its directory and a scratch file there, and removes the scratch file."""
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a directory; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".check"):
            pass
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write there: {exc.strerror}") from None


def read_json(path: Path, flag: str = "result file") -> dict[str, Any]:
    """A result document (version 2, or version 1 upgraded) from ``path``; ConfigError naming ``flag``
    and the path when it cannot be read or is not a perfsuite result."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{flag} {path}: not JSON ({exc})") from None
    return as_current(document, f"{flag} {path}")


_V1_CORE_KEYS = frozenset(
    {
        "schema",
        "test_type",
        "run_id",
        "scenario",
        "host",
        "started_at",
        "stopped_at",
        "grade",
        "exit_code",
        "interrupted",
        "summary",
        "endpoints",
        "checks",
        "collector",
        "failure_reasons",
        "warnings",
        "config",
        "runs",
        "intervals",
        "marks",
        "comparison",
        "report_sections",
    }
)
"""Keys of a version-1 document that are not a test type's own section."""

_EMBEDDED_SUFFIX_V1 = " (embedded demo bot)"

FIGURE_KEYS_V1: dict[str, tuple[str, ...]] = {
    "webhook": ("timings", "latency", "arrival", "backlog"),
    "redis": ("redis", "pool", "breaker", "connection_health"),
    "capacity": ("capacity",),
}
"""Version 1 kept each test type's sections at the top level; version 2 keeps them in ``figures``."""


def _summary_v1(test_type: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    keep = set(Summary.model_fields) - {"excluded"}
    out = {key: summary[key] for key in keep if summary.get(key) is not None}
    if "requests" not in out and summary.get("count") is not None:
        out["requests"] = summary["count"]
    if test_type == "redis":  # v1 put the breaker's refusals in backpressure (outside requests)
        excluded = {"injected": int(summary.get("injected") or 0)}
        excluded["refused_by_breaker"] = int(summary.get("backpressure") or 0)
        out["backpressure"] = 0
        out["excluded"] = excluded
    return out


def _endpoint_v1(row: Mapping[str, Any]) -> dict[str, Any]:
    keep = set(Endpoint.model_fields)
    return {key: row[key] for key in keep if row.get(key) is not None}


def upgrade_v1(document: Mapping[str, Any]) -> dict[str, Any]:
    """A ``perfsuite.result/1`` document in version 2's shape (see the module docstring)."""
    test_type = str(document.get("test_type", ""))
    host = str(document.get("host") or "")
    embedded = host.endswith(_EMBEDDED_SUFFIX_V1)
    config = document.get("config") if isinstance(document.get("config"), Mapping) else {}
    target_config = (config or {}).get("target") or {}
    kind = "redis" if test_type == "redis" else ("none" if test_type in ("baseline", "all") else "http")
    target = {
        "kind": kind,
        "host": host.removesuffix(_EMBEDDED_SUFFIX_V1),
        "path": target_config.get("webhook_path") if kind == "http" else None,
        "embedded": embedded,
        "demo_bot_mode": target_config.get("demo_bot_mode") if embedded else None,
    }
    collector = document.get("collector") or None
    if collector:
        collector = {
            key: collector[key]
            for key in ("requests", "locust_requests", "writers_complete", "clamped", "problems")
            if collector.get(key) is not None
        }
    figure_keys = FIGURE_KEYS_V1.get(test_type)
    if figure_keys is None:
        figure_keys = tuple(key for key in document if key not in _V1_CORE_KEYS)
    figures = {key: document[key] for key in figure_keys if key in document}
    return {
        "schema": SCHEMA,
        "test_type": test_type,
        "run_id": str(document.get("run_id", "")),
        "scenario": str(document.get("scenario", "")),
        "target": target,
        "started_at": str(document.get("started_at", "")),
        "stopped_at": str(document.get("stopped_at", "")),
        "status": RunStatus.INTERRUPTED if document.get("interrupted") else RunStatus.FINISHED,
        "summary": _summary_v1(test_type, document.get("summary") or {}),
        "endpoints": [_endpoint_v1(row) for row in document.get("endpoints") or []],
        "checks": list(document.get("checks") or []),
        "collector": collector,
        "failure_reasons": [
            {key: row[key] for key in FailureReason.model_fields if key in row}
            for row in document.get("failure_reasons") or []
        ],
        "warnings": list(document.get("warnings") or []),
        "config": dict(config or {}),
        "figures": figures or None,
        "intervals": document.get("intervals"),
        "marks": list(document.get("marks") or []),
        "parts": [upgrade_v1(part) for part in document.get("runs") or []],
        "comparison": document.get("comparison"),
    }


def as_current(document: Any, source: str = "result") -> dict[str, Any]:
    """``document`` as a version-2 document (a version-1 one upgraded); ConfigError naming ``source``
    when it is not a perfsuite result."""
    if not isinstance(document, Mapping) or document.get("schema") not in (SCHEMA, SCHEMA_V1):
        found = document.get("schema") if isinstance(document, Mapping) else type(document).__name__
        raise ConfigError(
            f"{source}: not a perfsuite result (schema {found!r}, expected {SCHEMA!r} or {SCHEMA_V1!r})"
        )
    if document["schema"] == SCHEMA_V1:
        return upgrade_v1(document)
    return dict(document)


__all__ = [
    "ANSWERED_AS_INTENDED",
    "FIGURE_KEYS_V1",
    "SCHEMA",
    "SCHEMA_V1",
    "CollectorIntegrity",
    "Endpoint",
    "FailureReason",
    "RawFigures",
    "RunResult",
    "RunStatus",
    "Summary",
    "Target",
    "as_current",
    "check_writable",
    "read_json",
    "upgrade_v1",
    "write_json",
    "write_text",
]
