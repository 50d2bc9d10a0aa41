"""The result of one test job: what the terminal report, the JSON file and the exit code show.

JSON schema ``perfsuite.result/1`` (documented in README.md; machine-readable in ``JSON_SCHEMA``,
draft 2020-12). Version 1 grows only by adding optional keys: a reader of version 1 ignores keys
it does not know, and a change that removes or retypes a key bumps the number.

Always present:

- ``schema`` (``perfsuite.result/1``), ``test_type`` (webhook | redis | capacity | baseline | all),
  ``run_id``, ``scenario``, ``host``, ``started_at``, ``stopped_at`` (ISO-8601 UTC or empty)
- ``grade`` (EXCELLENT|GOOD|FAIR|POOR), ``exit_code`` (0, 1, 2 or 130), ``interrupted``
- ``summary``: totals (requests, success, rejected, backpressure, failure, success_rate,
  avg_ms, p50_ms, p95_ms, p99_ms, max_ms, rps, duration_s)
- ``endpoints``: the same per (request_type, name)
- ``timings``: per timing metric (``ttfb``, ``server.<phase>``): count, avg_ms, p50/p95/p99_ms
- ``checks``: every threshold: name, actual, comparison, target, unit, requirement, critical,
  met, and ``note`` when there is more to say
- ``collector``: requests counted by the collector and by Locust, and whether they agree
- ``backlog``, ``failure_reasons``, ``warnings``, ``config`` (secrets redacted)

Optional (added in 1.1, still ``perfsuite.result/1``):

- ``intervals`` (schema ``perfsuite.intervals/1``): the run cut into equal intervals with counts
  and HDR latency histograms, so a later comparison with this file knows the run-to-run noise
  (``baseline/intervals.py``); ``marks``: stage marks and fault windows of the run
- ``comparison`` (schema ``perfsuite.comparison/1``): for ``baseline`` and ``all`` results, every
  compared metric (baseline, current, improvement, expected improvement, target, met, the
  regression verdict with its interval), target achievement per requirement, the checks and grade
  (``baseline/comparator.py``)
- ``runs``: for ``all``, the result documents of the jobs that ran (each ``perfsuite.result/1``);
  the top-level grade is then the worst of theirs and the comparison's
- test-type sections: ``redis``, ``pool``, ``breaker``, ``connection_health`` (Redis benchmark),
  ``capacity`` (capacity test), ``report_sections`` (extra lines of the terminal report)
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfsuite.errors import EXIT_INTERRUPTED, ConfigError
from perfsuite.grading import Check, Grade, combined

SCHEMA = "perfsuite.result/1"

_CORE_KEYS = (
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
    "timings",
    "checks",
    "collector",
    "backlog",
    "failure_reasons",
    "warnings",
    "config",
    "runs",
)

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_CHECK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "actual", "comparison", "target", "unit", "requirement", "critical", "met"],
    "properties": {
        "name": {"type": "string"},
        "actual": _NUMBER_OR_NULL,
        "comparison": {"enum": ["<=", ">=", "=="]},
        "target": {"type": "number"},
        "unit": {"type": "string"},
        "requirement": {"type": "string"},
        "critical": {"type": "boolean"},
        "met": {"type": "boolean"},
        "note": {"type": "string"},
    },
}
_GRADES = [grade.value for grade in Grade]

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://perfsuite.invalid/schema/perfsuite.result-1.json",
    "title": "perfsuite.result/1",
    "type": "object",
    "required": [key for key in _CORE_KEYS if key != "runs"],
    "properties": {
        "schema": {"const": SCHEMA},
        "test_type": {"enum": ["webhook", "redis", "capacity", "baseline", "all"]},
        "run_id": {"type": "string"},
        "scenario": {"type": "string"},
        "host": {"type": "string"},
        "started_at": {"type": "string"},
        "stopped_at": {"type": "string"},
        "grade": {"enum": _GRADES},
        "exit_code": {"enum": [0, 1, 2, 130]},
        "interrupted": {"type": "boolean"},
        "summary": {"type": "object"},
        "endpoints": {"type": "array", "items": {"type": "object"}},
        "timings": {"type": "object"},
        "checks": {"type": "array", "items": _CHECK_SCHEMA},
        "collector": {"type": "object"},
        "backlog": {"type": "object"},
        "failure_reasons": {"type": "array"},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "config": {"type": "object"},
        "runs": {"type": "array", "items": {"$ref": "#"}},
        "intervals": {
            "type": "object",
            "required": ["schema", "window_s", "windows"],
            "properties": {
                "schema": {"const": "perfsuite.intervals/1"},
                "window_s": {"type": "integer", "minimum": 1},
                "windows": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["start_s", "count", "good", "rt"],
                        "properties": {
                            "start_s": {"type": "integer"},
                            "count": {"type": "integer", "minimum": 0},
                            "good": {"type": "integer", "minimum": 0},
                            "stage": {"type": "integer", "minimum": 0},
                            "rt": {"type": "string", "description": "HdrHistogram V2 compressed, base64"},
                        },
                    },
                },
            },
        },
        "marks": {"type": "array", "items": {"type": "object", "required": ["at", "kind"]}},
        "comparison": {
            "type": "object",
            "required": [
                "schema",
                "baseline",
                "current",
                "scope",
                "metrics",
                "requirements",
                "checks",
                "grade",
            ],
            "properties": {
                "schema": {"const": "perfsuite.comparison/1"},
                "baseline": {"type": "object", "required": ["kind", "label", "runs"]},
                "current": {"type": "object", "required": ["label", "runs"]},
                "scope": {"type": "array", "items": {"enum": ["webhook", "redis", "capacity"]}},
                "settings": {"type": "object"},
                "metrics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": [
                            "key",
                            "label",
                            "test_type",
                            "requirement",
                            "unit",
                            "lower_is_better",
                            "status",
                            "baseline",
                            "current",
                            "improvement",
                            "expected_improvement",
                            "target",
                            "met",
                        ],
                        "properties": {
                            "status": {"enum": ["measured", "not measured", "not run"]},
                            "baseline": _NUMBER_OR_NULL,
                            "current": _NUMBER_OR_NULL,
                            "improvement": _NUMBER_OR_NULL,
                            "expected_improvement": _NUMBER_OR_NULL,
                            "target": _NUMBER_OR_NULL,
                            "met": {"type": ["boolean", "null"]},
                            "difference": {"type": ["object", "null"]},
                        },
                    },
                },
                "requirements": {"type": "array", "items": {"type": "object", "required": ["id", "status"]}},
                "checks": {"type": "array", "items": _CHECK_SCHEMA},
                "target_checks": {"type": "array", "items": _CHECK_SCHEMA},
                "regression_checks": {"type": "array", "items": _CHECK_SCHEMA},
                "grade": {"enum": _GRADES},
                "exit_code": {"enum": [0, 1, 2]},
                "warnings": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}
"""JSON Schema (draft 2020-12) of ``perfsuite.result/1`` documents."""


@dataclass(slots=True)
class JobResult:
    """Everything one job measured and concluded."""

    test_type: str
    run_id: str
    scenario: str
    host: str
    started_at: str = ""
    stopped_at: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    collector: dict[str, Any] = field(default_factory=dict)
    backlog: dict[str, Any] = field(default_factory=dict)
    failure_reasons: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    interrupted: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """Test-type specific sections (redis pool, breaker, capacity, comparison...)."""
    parts: list[JobResult] = field(default_factory=list)
    """For ``--test-type all``: the results of the jobs that ran (the grade is the worst of all)."""

    @property
    def grade(self) -> Grade:
        """The grade the checks (and parts) earn (see perfsuite.grading)."""
        return combined(self.checks, [part.grade for part in self.parts])

    @property
    def exit_code(self) -> int:
        """130 when interrupted (here or in a part), else the grade's exit code."""
        if self.interrupted or any(part.interrupted for part in self.parts):
            return EXIT_INTERRUPTED
        return self.grade.exit_code

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (schema ``perfsuite.result/1``)."""
        document = {
            "schema": SCHEMA,
            "test_type": self.test_type,
            "run_id": self.run_id,
            "scenario": self.scenario,
            "host": self.host,
            "started_at": self.started_at,
            "stopped_at": self.stopped_at,
            "grade": self.grade.value,
            "exit_code": self.exit_code,
            "interrupted": self.interrupted,
            "summary": self.summary,
            "endpoints": self.endpoints,
            "timings": self.timings,
            "checks": [check.to_dict() for check in self.checks],
            "collector": self.collector,
            "backlog": self.backlog,
            "failure_reasons": self.failure_reasons,
            "warnings": self.warnings,
            "config": self.config,
            **self.extra,
        }
        if self.parts:
            document["runs"] = [part.to_dict() for part in self.parts]
        return document

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], source: str = "result") -> JobResult:
        """A result from its JSON document; ConfigError naming ``source`` when it is not one."""
        if not isinstance(document, Mapping) or document.get("schema") != SCHEMA:
            found = document.get("schema") if isinstance(document, Mapping) else type(document).__name__
            raise ConfigError(f"{source}: not a perfsuite result (schema {found!r}, expected {SCHEMA!r})")
        try:
            return cls(
                test_type=str(document["test_type"]),
                run_id=str(document.get("run_id", "")),
                scenario=str(document.get("scenario", "")),
                host=str(document.get("host", "")),
                started_at=str(document.get("started_at", "")),
                stopped_at=str(document.get("stopped_at", "")),
                summary=dict(document.get("summary") or {}),
                endpoints=list(document.get("endpoints") or []),
                timings=dict(document.get("timings") or {}),
                checks=[Check.from_dict(check) for check in document.get("checks") or []],
                collector=dict(document.get("collector") or {}),
                backlog=dict(document.get("backlog") or {}),
                failure_reasons=list(document.get("failure_reasons") or []),
                warnings=[str(w) for w in document.get("warnings") or []],
                interrupted=bool(document.get("interrupted", False)),
                config=dict(document.get("config") or {}),
                extra={key: value for key, value in document.items() if key not in _CORE_KEYS},
                parts=[
                    cls.from_dict(part, f"{source}: runs[{i}]")
                    for i, part in enumerate(document.get("runs") or [])
                ],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: malformed perfsuite result ({type(exc).__name__}: {exc})") from None


def write_json(document: dict[str, Any], path: Path) -> None:
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
    """A result document from ``path``; ConfigError naming ``flag`` and the path when it cannot be
    read or is not a ``perfsuite.result/1`` document."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{flag} {path}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        found = document.get("schema") if isinstance(document, dict) else type(document).__name__
        raise ConfigError(f"{flag} {path}: not a perfsuite result (schema {found!r}, expected {SCHEMA!r})")
    return document


__all__ = ["JSON_SCHEMA", "SCHEMA", "JobResult", "check_writable", "read_json", "write_json", "write_text"]
