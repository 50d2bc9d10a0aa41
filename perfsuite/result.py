"""The result of one test job: what the terminal report, the JSON file and the exit code show.

JSON schema ``perfsuite.result/1`` (documented in README.md):

- ``schema``, ``test_type``, ``run_id``, ``scenario``, ``host``, ``started_at``, ``stopped_at``
- ``grade`` (EXCELLENT|GOOD|FAIR|POOR), ``exit_code``, ``interrupted``
- ``summary``: totals (requests, success, rejected, backpressure, failure, success_rate,
  avg_ms, p50_ms, p95_ms, p99_ms, max_ms, rps, duration_s)
- ``endpoints``: the same per (request_type, name)
- ``timings``: per timing metric (``ttfb``, ``server.<phase>``): count, avg_ms, p50/p95/p99_ms
- ``checks``: every threshold: name, actual, comparison, target, unit, requirement, critical, met
- ``collector``: requests counted by the collector and by Locust, and whether they agree
- ``backlog``, ``failure_reasons``, ``warnings``, ``config`` (secrets redacted)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perfsuite.errors import EXIT_INTERRUPTED, ConfigError
from perfsuite.grading import Check, Grade, grade

SCHEMA = "perfsuite.result/1"


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

    @property
    def grade(self) -> Grade:
        """The grade the checks earn (see perfsuite.grading)."""
        return grade(self.checks)

    @property
    def exit_code(self) -> int:
        """130 when interrupted, else the grade's exit code."""
        return EXIT_INTERRUPTED if self.interrupted else self.grade.exit_code

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (schema ``perfsuite.result/1``)."""
        return {
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


def write_json(document: dict[str, Any], path: Path) -> None:
    """Write ``document`` to ``path`` (parents created); an unwritable path is a ConfigError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise ConfigError(f"--output-file {path}: cannot write: {exc.strerror}") from None


__all__ = ["SCHEMA", "JobResult", "write_json"]
