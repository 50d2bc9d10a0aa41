"""The comparison document: what a comparison holds (sides, rows, checks, grade) and its JSON form.

Built by ``baseline/comparator.py``; :meth:`Comparison.to_dict` is the JSON edge (schema
``perfsuite.comparison/2``) that the reports read and the golden tests pin down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from baseline.regression import Difference
from baseline.targets import MetricSpec, values_of
from perfsuite.config import BaselineConfig
from perfsuite.grading import Check, Grade, grade
from perfsuite.intervals import IntervalSamples
from perfsuite.result import RunResult

COMPARISON_SCHEMA = "perfsuite.comparison/2"
"""Version 2 (issue 10): verdicts between runs (``difference.noise``, ``floor``, ``within_low`` /
``within_high``), sides of several runs (``runs[].group``), ``history``; against your own runs the
seed's columns, target checks and requirements are empty. Version 1 documents still render."""


@dataclass(frozen=True, slots=True)
class RunSide:
    """One run (stored or from a result file) on one side of a comparison."""

    test_type: str
    run_id: str
    label: str
    """How people see it: ``run 2026...-a1b2c3 (webhook, scenario default, demo bot legacy)``."""
    source: str
    """``run`` (read from the collector) or ``file``."""
    result: RunResult
    """Its result, stored with the run (or derived from the data) or read from a file."""
    samples: IntervalSamples | None = None
    """Its intervals; None when unknown (a result file without them)."""
    complete: bool = True
    """False when the collector found data missing."""
    group: str | None = None
    """The ``--repeat`` group the run belongs to (None: none)."""

    @property
    def values(self) -> dict[str, float | None]:
        """Every metric of its test type."""
        return values_of(self.result)

    @property
    def checks(self) -> list[Check]:
        """Its own thresholds."""
        return list(self.result.checks)

    def describe(self) -> dict[str, Any]:
        """JSON form for the comparison document."""
        result = self.result
        return {
            "test_type": self.test_type,
            "run_id": self.run_id,
            "label": self.label,
            "source": self.source,
            "group": self.group,
            "scenario": result.scenario,
            "started_at": result.started_at,
            "demo_bot_mode": result.target.demo_bot_mode if result.target.embedded else None,
            "requests": result.summary.requests,
            "intervals": None if self.samples is None else self.samples.n,
            "window_s": None if self.samples is None else self.samples.window_s,
        }


@dataclass(frozen=True, slots=True)
class MetricRow:
    """One metric: baseline, current, improvement; against the seed also its expectation, target
    and whether it is met; against runs the between-run verdict."""

    spec: MetricSpec
    status: str
    """``measured``, ``not measured`` (its test ran, the value is missing) or ``not run``."""
    baseline: float | None
    current: float | None
    improvement: float | None
    """Change in the good direction (fraction, or points for a rate); see ``MetricSpec.improvement``."""
    expected_improvement: float | None = None
    """The seed's (None unless comparing against the seed's figures)."""
    target: float | None = None
    met: bool | None = None
    """Current meets the seed's target (None without a target)."""
    difference: Difference | None = None
    """Between-run verdict (only against runs or result files)."""
    against_seed: bool = True
    """False: a comparison of your own runs (the row names no seed requirement)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        spec = self.spec
        return {
            "key": spec.key,
            "label": spec.label,
            "test_type": spec.test_type,
            "requirement": spec.requirement if self.against_seed else None,
            "unit": spec.unit,
            "lower_is_better": spec.lower_is_better,
            "critical": spec.critical,
            "status": self.status,
            "baseline": self.baseline,
            "current": self.current,
            "improvement": self.improvement,
            "expected_improvement": self.expected_improvement,
            "target": self.target,
            "comparison": spec.comparison if self.target is not None else None,
            "met": self.met,
            "difference": None if self.difference is None else self.difference.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class RequirementStatus:
    """Target achievement of one seed requirement."""

    id: str
    title: str
    component: str
    validation: str
    met: int
    total: int
    unmet: tuple[str, ...]
    """Names of the checks not met."""

    @property
    def status(self) -> str:
        """``met``, ``not met`` or ``not measured``."""
        if self.total == 0:
            return "not measured"
        return "met" if self.met == self.total else "not met"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "id": self.id,
            "title": self.title,
            "component": self.component,
            "validation": self.validation,
            "status": self.status,
            "met": self.met,
            "total": self.total,
            "unmet": list(self.unmet),
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """A whole comparison: rows, requirement achievement (against the seed), checks and grade."""

    baseline_kind: str
    """``seed`` (the seed's figures), ``run`` (earlier runs) or ``file`` (result files)."""
    baseline_label: str
    baseline_runs: tuple[RunSide, ...]
    current_runs: tuple[RunSide, ...]
    scope: tuple[str, ...]
    rows: tuple[MetricRow, ...]
    requirements: tuple[RequirementStatus, ...]
    """Empty unless comparing against the seed's figures."""
    target_checks: tuple[Check, ...]
    regression_checks: tuple[Check, ...]
    settings: BaselineConfig
    warnings: tuple[str, ...] = field(default=())
    history: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Per test type: ids of the earlier runs offered as the baseline's history, oldest first."""
    current_label: str = "no current run"
    """The current run(s) for people."""

    @property
    def against_seed(self) -> bool:
        """Compared with the seed's figures (not with runs of your own)."""
        return self.baseline_kind == "seed"

    @property
    def checks(self) -> list[Check]:
        """Every check the grade counts: targets, then no-regression checks."""
        return [*self.target_checks, *self.regression_checks]

    @property
    def grade(self) -> Grade:
        """The grade by the one rule (perfsuite.grading)."""
        return grade(self.checks)

    @property
    def regressions(self) -> list[MetricRow]:
        """Rows whose verdict is a regression."""
        return [row for row in self.rows if row.difference is not None and row.difference.regression]

    @property
    def noise_unknown(self) -> list[MetricRow]:
        """Rows left inconclusive because nothing estimated the run-to-run variation."""
        return [row for row in self.rows if row.difference is not None and row.difference.noise_unknown]

    def to_dict(self) -> dict[str, Any]:
        """The comparison document (schema ``perfsuite.comparison/2``), floats rounded to 6 places."""
        settings = self.settings
        document = {
            "schema": COMPARISON_SCHEMA,
            "baseline": {
                "kind": self.baseline_kind,
                "label": self.baseline_label,
                "runs": [side.describe() for side in self.baseline_runs],
            },
            "current": {"label": self.current_label, "runs": [side.describe() for side in self.current_runs]},
            "history": {test_type: list(ids) for test_type, ids in self.history.items()},
            "scope": list(self.scope),
            "settings": {
                "min_effect_size": settings.min_effect_size,
                "min_rate_effect": settings.min_rate_effect,
                "min_absolute_ms": settings.min_absolute_ms,
                "confidence": settings.confidence,
                "history_runs": settings.history_runs,
                "replicates": settings.replicates,
                "min_intervals": settings.min_intervals,
            },
            "metrics": [row.to_dict() for row in self.rows],
            "requirements": [requirement.to_dict() for requirement in self.requirements],
            "target_checks": [check.to_dict() for check in self.target_checks],
            "regression_checks": [check.to_dict() for check in self.regression_checks],
            "checks": [check.to_dict() for check in self.checks],
            "targets_met": sum(check.met for check in self.target_checks),
            "targets_total": len(self.target_checks),
            "regressions": [row.spec.key for row in self.regressions],
            "noise_unknown": [row.spec.key for row in self.noise_unknown],
            "grade": self.grade.value,
            "exit_code": self.grade.exit_code,
            "warnings": list(self.warnings),
        }
        rounded: dict[str, Any] = _rounded(document)
        return rounded


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, Mapping):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(item) for item in value]
    return value


__all__ = ["COMPARISON_SCHEMA", "Comparison", "MetricRow", "RequirementStatus", "RunSide"]
