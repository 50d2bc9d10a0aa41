"""The comparator: current run(s) against the seed's figures, an earlier run, or a result file.

For every metric of the compared test types (``baseline/targets.py``) a :class:`MetricRow` holds the
baseline value, the current value, the improvement, the seed's expected improvement and target and
whether the target is met; when the baseline is a run (or a result file), the noise-aware verdict
of ``baseline/regression.py``. Target achievement is summed up per seed requirement (4.1, 4.2,
4.3, 5.1, 5.2), and the checks are graded by the one rule in ``perfsuite/grading.py``.

Everything here is a pure function of its inputs: the same runs give the same document
(``Comparison.to_dict``, schema ``perfsuite.comparison/1``), which the golden tests pin down.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from baseline.regression import Difference, compare_samples, point_difference
from baseline.targets import REQUIREMENTS, TEST_TYPES, MetricSpec, metrics_of, values_of
from perfsuite.config import BaselineConfig
from perfsuite.errors import ConfigError
from perfsuite.grading import Check, Grade, format_value, grade
from perfsuite.intervals import IntervalSamples
from perfsuite.result import RunResult

COMPARISON_SCHEMA = "perfsuite.comparison/1"

LOAD_SETTINGS: dict[str, tuple[str, ...]] = {
    "webhook": (
        "concurrent_users",
        "requests_per_user",
        "ramp_up_time",
        "enable_burst_testing",
        "burst_intensity",
        "think_time_s",
    ),
    "redis_bench": (
        "concurrent_operations",
        "operations_per_worker",
        "read_percentage",
        "write_percentage",
        "delete_percentage",
        "failure_injection_rate",
        "outages",
        "pipeline_depth",
    ),
    "arrival": ("rate_per_s", "ramp_to_rate_per_s", "duration_s", "distribution"),
}
"""Configuration keys that shape the load: runs that differ in them are warned about."""


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
            "scenario": result.scenario,
            "started_at": result.started_at,
            "demo_bot_mode": result.target.demo_bot_mode if result.target.embedded else None,
            "requests": result.summary.requests,
            "intervals": None if self.samples is None else self.samples.n,
            "window_s": None if self.samples is None else self.samples.window_s,
        }


@dataclass(frozen=True, slots=True)
class MetricRow:
    """One metric: baseline, current, improvement, the seed's expectation, met or not, the verdict."""

    spec: MetricSpec
    status: str
    """``measured``, ``not measured`` (its test ran, the value is missing) or ``not run``."""
    baseline: float | None
    current: float | None
    improvement: float | None
    """Change in the good direction (fraction, or points for a rate); see ``MetricSpec.improvement``."""
    expected_improvement: float | None
    target: float | None
    met: bool | None
    """Current meets the target (None without a target)."""
    difference: Difference | None = None
    """Run-to-run verdict (only against a run or a result file)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        spec = self.spec
        return {
            "key": spec.key,
            "label": spec.label,
            "test_type": spec.test_type,
            "requirement": spec.requirement,
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
    """A whole comparison: rows, requirement achievement, checks and grade."""

    baseline_kind: str
    """``seed`` (the seed's figures), ``run`` (an earlier run) or ``file`` (a result file)."""
    baseline_label: str
    baseline_runs: tuple[RunSide, ...]
    current_runs: tuple[RunSide, ...]
    scope: tuple[str, ...]
    rows: tuple[MetricRow, ...]
    requirements: tuple[RequirementStatus, ...]
    target_checks: tuple[Check, ...]
    regression_checks: tuple[Check, ...]
    settings: BaselineConfig
    warnings: tuple[str, ...] = field(default=())

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
    def current_label(self) -> str:
        """The current run(s) for people."""
        return "; ".join(side.label for side in self.current_runs) or "no current run"

    def to_dict(self) -> dict[str, Any]:
        """The comparison document (schema ``perfsuite.comparison/1``), floats rounded to 6 places."""
        document = {
            "schema": COMPARISON_SCHEMA,
            "baseline": {
                "kind": self.baseline_kind,
                "label": self.baseline_label,
                "runs": [side.describe() for side in self.baseline_runs],
            },
            "current": {"label": self.current_label, "runs": [side.describe() for side in self.current_runs]},
            "scope": list(self.scope),
            "settings": {
                "min_effect_size": self.settings.min_effect_size,
                "min_rate_effect": self.settings.min_rate_effect,
                "confidence": self.settings.confidence,
                "replicates": self.settings.replicates,
                "min_intervals": self.settings.min_intervals,
            },
            "metrics": [row.to_dict() for row in self.rows],
            "requirements": [requirement.to_dict() for requirement in self.requirements],
            "target_checks": [check.to_dict() for check in self.target_checks],
            "regression_checks": [check.to_dict() for check in self.regression_checks],
            "checks": [check.to_dict() for check in self.checks],
            "targets_met": sum(check.met for check in self.target_checks),
            "targets_total": len(self.target_checks),
            "regressions": [row.spec.key for row in self.regressions],
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


# ---------------------------------------------------------------------- building a comparison


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "not measured"
    return format_value(value, "" if unit in ("users", "req/s") else unit) + (
        f" {unit}" if unit in ("users", "req/s") else ""
    )


def _by_type(sides: Sequence[RunSide], which: str) -> dict[str, RunSide]:
    found: dict[str, RunSide] = {}
    for side in sides:
        if side.test_type not in TEST_TYPES:
            raise ConfigError(
                f"{which} {side.label}: test type {side.test_type!r} cannot be compared "
                f"(comparable: {', '.join(TEST_TYPES)})"
            )
        if side.test_type in found:
            raise ConfigError(
                f"{which}: two {side.test_type} runs given ({found[side.test_type].run_id}, {side.run_id})"
            )
        found[side.test_type] = side
    return found


def _load_differences(base: RunResult, current: RunResult) -> list[str]:
    changed = []
    base_config, current_config = base.config, current.config
    for section, keys in LOAD_SETTINGS.items():
        old, new = base_config.get(section) or {}, current_config.get(section) or {}
        for key in keys:
            if key in old and key in new and old[key] != new[key]:
                changed.append(f"{section}.{key} {json.dumps(old[key])} -> {json.dumps(new[key])}")
    if base.scenario != current.scenario:
        changed.insert(0, f"scenario {base.scenario!r} -> {current.scenario!r}")
    return changed


def _differences(
    specs: Sequence[MetricSpec], base: RunSide, current: RunSide, settings: BaselineConfig
) -> dict[str, Difference]:
    """Run-to-run verdicts of every tested metric of one test type."""
    tested = [spec for spec in specs if spec.statistic is not None]
    if not tested:
        return {}
    base_values, current_values = base.values, current.values
    if base.samples is not None and current.samples is not None and base.samples.n and current.samples.n:
        by_statistic = compare_samples(
            base.samples,
            current.samples,
            {str(spec.statistic): spec.lower_is_better for spec in tested},
            settings,
        )
        return {spec.key: by_statistic[str(spec.statistic)] for spec in tested}
    missing = base if base.samples is None or not base.samples.n else current
    why = f"no interval data in {missing.label}"
    return {
        spec.key: point_difference(
            str(spec.statistic),
            base_values.get(spec.key),
            current_values.get(spec.key),
            spec.lower_is_better,
            settings,
            why,
        )
        for spec in tested
    }


def _target_check(row: MetricRow, figures_note: str) -> Check:
    spec = row.spec
    if row.status == "not run":
        note = f"not measured: no {spec.test_type} run in this comparison"
    elif row.status == "not measured":
        note = f"not measured: the {spec.test_type} run has no {spec.label}"
    else:
        note = figures_note
    return Check(
        f"{spec.label}: seed target",
        row.current,
        "<=" if spec.lower_is_better else ">=",
        float(row.target if row.target is not None else 0.0),
        spec.unit,
        spec.requirement,
        critical=spec.critical,
        note=note,
    )


def _regression_check(row: MetricRow) -> Check:
    difference = row.difference
    assert difference is not None
    return Check(
        f"{row.spec.label}: no significant regression",
        difference.regression_size,
        "<=",
        difference.threshold,
        "%",
        row.spec.requirement,
        critical=True,
        note=f"{difference.verdict.value}: {difference.reason}",
    )


def compare(
    current: Sequence[RunSide],
    settings: BaselineConfig,
    baseline: Sequence[RunSide] = (),
    scope: Sequence[str] | None = None,
    baseline_kind: str | None = None,
    notes: Sequence[str] = (),
) -> Comparison:
    """Compare ``current`` run(s) with ``baseline`` run(s), or with the seed's figures when
    ``baseline`` is empty.

    ``scope`` (default: the test types of the given runs) lists the test types whose targets count:
    a target of a test type in scope with no run is a check not met. Against runs, each current run
    needs a baseline run of the same test type (ConfigError otherwise). ``notes`` are added to the
    warnings.
    """
    current_by_type = _by_type(current, "current")
    base_by_type = _by_type(baseline, "baseline")
    kind = baseline_kind or ("seed" if not baseline else baseline[0].source)
    if base_by_type:
        for test_type, run in current_by_type.items():
            if test_type not in base_by_type:
                have = ", ".join(sorted(base_by_type)) or "none"
                raise ConfigError(
                    f"cannot compare {run.label} with the baseline: it has no {test_type} run "
                    f"(it has: {have})"
                )
            if base_by_type[test_type].source == run.source and base_by_type[test_type].run_id == run.run_id:
                raise ConfigError(
                    f"baseline and current are the same run ({run.run_id}): pick an earlier run"
                )
    in_scope = tuple(
        t for t in TEST_TYPES if t in (scope if scope is not None else [*current_by_type, *base_by_type])
    )
    if not in_scope:
        raise ConfigError("nothing to compare: no webhook, redis or capacity run was given")
    figures, targets = settings.figures, settings.targets
    warnings: list[str] = list(notes)
    rows: list[MetricRow] = []
    for test_type in in_scope:
        specs = [spec for spec in metrics_of(test_type) if spec.seed or base_by_type]
        side: RunSide | None = current_by_type.get(test_type)
        base_side: RunSide | None = base_by_type.get(test_type)
        current_values = side.values if side is not None else {}
        base_values = base_side.values if base_side is not None else {}
        differences = _differences(specs, base_side, side, settings) if side and base_side else {}
        if side is not None and base_side is not None:
            changed = _load_differences(base_side.result, side.result)
            if changed:
                warnings.append(
                    f"{test_type}: the runs were made with different load settings ({'; '.join(changed)}): "
                    "a difference may come from the load, not from the system under test"
                )
        for spec in specs:
            value = current_values.get(spec.key)
            status = "not run" if side is None else "measured" if value is not None else "not measured"
            base_value = base_values.get(spec.key) if base_by_type else spec.seed_figure(figures)
            target = spec.seed_target(targets)
            rows.append(
                MetricRow(
                    spec=spec,
                    status=status,
                    baseline=base_value,
                    current=value,
                    improvement=spec.improvement(base_value, value),
                    expected_improvement=spec.expected_improvement(figures, targets),
                    target=target,
                    met=None if target is None else (value is not None and _meets(spec, value, target)),
                    difference=differences.get(spec.key),
                )
            )
    for given in (*current, *baseline):
        if not given.complete:
            warnings.append(f"{given.label}: the collector found data missing; its figures may be incomplete")
        if given.result.interrupted:
            warnings.append(f"{given.label}: the run was interrupted; its figures cover only what ran")
    missing = [t for t in in_scope if t not in current_by_type]
    if missing:
        warnings.append(
            f"no {', '.join(missing)} run in this comparison: "
            f"{sum(1 for row in rows if row.status == 'not run' and row.target is not None)} seed target(s) "
            "count as not met"
        )
    target_rows = [row for row in rows if row.target is not None]
    target_checks = tuple(
        _target_check(
            row,
            f"seed: {_format(row.spec.seed_figure(figures), row.spec.unit)} before, "
            f"{_format(row.target, row.spec.unit)} expected after",
        )
        for row in target_rows
    )
    regression_checks = tuple(_regression_check(row) for row in rows if row.difference is not None)
    own_checks = [check for given in current for check in given.checks]
    requirements = []
    for requirement in REQUIREMENTS.values():
        relevant = [
            check
            for check in (*target_checks, *regression_checks, *own_checks)
            if check.requirement == requirement.id
        ]
        requirements.append(
            RequirementStatus(
                requirement.id,
                requirement.title,
                requirement.component,
                requirement.validation,
                sum(check.met for check in relevant),
                len(relevant),
                tuple(check.name for check in relevant if not check.met),
            )
        )
    return Comparison(
        baseline_kind=kind,
        baseline_label=(
            "; ".join(side.label for side in baseline) if baseline else "the seed's pre-optimization figures"
        ),
        baseline_runs=tuple(baseline),
        current_runs=tuple(current),
        scope=in_scope,
        rows=tuple(rows),
        requirements=tuple(requirements),
        target_checks=target_checks,
        regression_checks=regression_checks,
        settings=settings,
        warnings=tuple(warnings),
    )


def _meets(spec: MetricSpec, value: float, target: float) -> bool:
    return value <= target if spec.lower_is_better else value >= target


__all__ = [
    "COMPARISON_SCHEMA",
    "Comparison",
    "MetricRow",
    "RequirementStatus",
    "RunSide",
    "compare",
]
