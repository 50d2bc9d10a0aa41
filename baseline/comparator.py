"""The comparator: current run(s) against the seed's figures, or against earlier runs of your own.

A side is one run or several (a ``--repeat`` group, run ids listed together, result files); per
compared test type a :class:`MetricRow` holds the baseline value, the current value (the centre
of each side's runs: geometric mean for times, mean otherwise) and the improvement.

- **Against the seed's figures** (baseline kind ``seed``): each row also holds the seed's
  expected improvement and target and whether the target is met; target achievement is summed
  up per seed requirement (4.1, 4.2, 4.3, 5.1, 5.2).
- **Against your own runs** (kind ``run`` or ``file``): your own figures only, no seed columns,
  no requirement table; each tested metric gets the between-run verdict of ``baseline/gate.py``,
  with the earlier runs of the baseline's target and scenario (``history``) joining the baseline
  when given.

The checks are graded by the one rule in ``perfsuite/grading.py``. Everything here is a pure
function of its inputs: the same runs give the same document (``Comparison.to_dict``, schema
``perfsuite.comparison/2``), which the golden tests pin down.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

from baseline.comparison import COMPARISON_SCHEMA, Comparison, MetricRow, RequirementStatus, RunSide
from baseline.gate import between_runs
from baseline.regression import Difference, within_run_intervals
from baseline.targets import REQUIREMENTS, TEST_TYPES, MetricSpec, metrics_of
from perfsuite.config import BaselineConfig
from perfsuite.errors import ConfigError
from perfsuite.grading import Check, format_value
from perfsuite.result import RunResult

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


# ---------------------------------------------------------------------- building a comparison


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "not measured"
    return format_value(value, "" if unit in ("users", "req/s") else unit) + (
        f" {unit}" if unit in ("users", "req/s") else ""
    )


def _by_type(sides: Sequence[RunSide], which: str) -> dict[str, list[RunSide]]:
    found: dict[str, list[RunSide]] = {}
    for side in sides:
        if side.test_type not in TEST_TYPES:
            raise ConfigError(
                f"{which} {side.label}: test type {side.test_type!r} cannot be compared "
                f"(comparable: {', '.join(TEST_TYPES)})"
            )
        same = found.setdefault(side.test_type, [])
        if any(other.source == side.source and other.run_id == side.run_id for other in same):
            raise ConfigError(f"{which}: run {side.run_id} given twice")
        same.append(side)
    return found


def sides_label(sides: Sequence[RunSide]) -> str:
    """One side for people: a run's own label, ``group G: 3 runs (a, b, c)`` or ``3 runs (...)``."""
    if len(sides) == 1:
        return sides[0].label
    groups = {side.group for side in sides}
    ids = ", ".join(side.run_id for side in sides)
    group = next(iter(groups)) if len(groups) == 1 else None
    details = sides[0].label.partition(" (")[2].rstrip(")")
    what = f"group {group}: " if group else ""
    return f"{what}{len(sides)} {sides[0].test_type} runs ({ids}; {details})"


def centre(values: Sequence[float | None], unit: str) -> float | None:
    """The value of a side: its run's, or for several runs their geometric mean (times) or mean
    (anything else); None when no run measured it."""
    measured = [float(value) for value in values if value is not None]
    if not measured:
        return None
    if len(measured) == 1:
        return measured[0]
    if unit in ("ms", "s") and all(value > 0 for value in measured):
        return float(math.exp(sum(math.log(value) for value in measured) / len(measured)))
    return sum(measured) / len(measured)


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


def _mixed(sides: Sequence[RunSide], which: str) -> str | None:
    """A warning when the runs of one side are not runs of one target and scenario."""
    identities = {(side.result.target.identity, side.result.scenario) for side in sides}
    if len(identities) < 2:
        return None
    listed = "; ".join(f"{target}, scenario {scenario}" for target, scenario in sorted(identities))
    return f"{which}: its runs are of different targets or scenarios ({listed}): their spread is not noise"


def _differences(
    specs: Sequence[MetricSpec],
    base: Sequence[RunSide],
    current: Sequence[RunSide],
    history: Sequence[RunResult],
    settings: BaselineConfig,
) -> dict[str, Difference]:
    """Between-run verdicts of every tested metric of one test type."""
    tested = [spec for spec in specs if spec.statistic is not None]
    if not tested:
        return {}
    within: dict[str, tuple[float, float] | None] = {}
    only_base, only_current = base[0].samples, current[0].samples
    single = len(base) == 1 and len(current) == 1
    if single and only_base is not None and only_current is not None and only_base.n and only_current.n:
        within = within_run_intervals(
            only_base, only_current, [str(spec.statistic) for spec in tested], settings
        )
    out = {}
    for spec in tested:
        statistic = str(spec.statistic)
        base_values = [value for side in base if (value := side.values.get(spec.key)) is not None]
        current_values = [value for side in current if (value := side.values.get(spec.key)) is not None]
        earlier = [value for result in history if (value := spec.value(result)) is not None]
        out[spec.key] = between_runs(
            statistic,
            base_values,
            current_values,
            spec.lower_is_better,
            settings,
            history=earlier,
            within=within.get(statistic),
        )
    return out


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
        row.spec.requirement if row.against_seed else "",
        critical=True,
        note=f"{difference.verdict.value}: {difference.reason}",
    )


def _requirements(checks: Sequence[Check]) -> tuple[RequirementStatus, ...]:
    out = []
    for requirement in REQUIREMENTS.values():
        relevant = [check for check in checks if check.requirement == requirement.id]
        out.append(
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
    return tuple(out)


def compare(
    current: Sequence[RunSide],
    settings: BaselineConfig,
    baseline: Sequence[RunSide] = (),
    scope: Sequence[str] | None = None,
    baseline_kind: str | None = None,
    notes: Sequence[str] = (),
    history: Mapping[str, Sequence[RunResult]] | None = None,
) -> Comparison:
    """Compare ``current`` run(s) with ``baseline`` run(s), or with the seed's figures when
    ``baseline`` is empty.

    Each side may hold several runs of a test type (a group). ``history`` maps a test type to the
    earlier runs (oldest first) of the baseline's target and scenario, which join the baseline
    when the gate estimates run-to-run variation. ``scope`` (default: the test types of the given
    runs) lists the test types whose targets count against the seed: a target of a test type in
    scope with no run is a check not met. Against runs, each current test type needs baseline
    runs of the same test type (ConfigError otherwise). ``notes`` are added to the warnings.
    """
    current_by_type = _by_type(current, "current")
    base_by_type = _by_type(baseline, "baseline")
    history = history or {}
    kind = baseline_kind or ("seed" if not baseline else baseline[0].source)
    against_seed = kind == "seed"
    if base_by_type:
        for test_type, runs in current_by_type.items():
            if test_type not in base_by_type:
                have = ", ".join(sorted(base_by_type)) or "none"
                raise ConfigError(
                    f"cannot compare {sides_label(runs)} with the baseline: it has no {test_type} run "
                    f"(it has: {have})"
                )
            both = {(s.source, s.run_id) for s in runs} & {
                (s.source, s.run_id) for s in base_by_type[test_type]
            }
            if both:
                raise ConfigError(
                    f"baseline and current share run {sorted(both)[0][1]}: pick earlier runs as the baseline"
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
        specs = [spec for spec in metrics_of(test_type) if spec.seed or not against_seed]
        sides = current_by_type.get(test_type, [])
        base_sides = base_by_type.get(test_type, [])
        earlier = [
            r for r in history.get(test_type, ()) if r.run_id not in {s.run_id for s in (*sides, *base_sides)}
        ]
        differences = (
            _differences(specs, base_sides, sides, earlier, settings) if sides and base_sides else {}
        )
        if sides and base_sides:
            changed = _load_differences(base_sides[0].result, sides[0].result)
            if changed:
                warnings.append(
                    f"{test_type}: the runs were made with different load settings ({'; '.join(changed)}): "
                    "a difference may come from the load, not from the system under test"
                )
        warnings += [w for w in (_mixed(base_sides, "baseline"), _mixed(sides, "current")) if w]
        for spec in specs:
            value = centre([side.values.get(spec.key) for side in sides], spec.unit)
            status = "not run" if not sides else "measured" if value is not None else "not measured"
            if against_seed:
                base_value = spec.seed_figure(figures)
                target = spec.seed_target(targets)
                expected = spec.expected_improvement(figures, targets)
            else:
                base_value = centre([side.values.get(spec.key) for side in base_sides], spec.unit)
                target = expected = None
            rows.append(
                MetricRow(
                    spec=spec,
                    status=status,
                    baseline=base_value,
                    current=value,
                    improvement=spec.improvement(base_value, value),
                    expected_improvement=expected,
                    target=target,
                    met=None if target is None else (value is not None and _meets(spec, value, target)),
                    difference=differences.get(spec.key),
                    against_seed=against_seed,
                )
            )
    for given in (*current, *baseline):
        if not given.complete:
            warnings.append(f"{given.label}: the collector found data missing; its figures may be incomplete")
        if given.result.interrupted:
            warnings.append(f"{given.label}: the run was interrupted; its figures cover only what ran")
    missing = [t for t in in_scope if t not in current_by_type]
    if missing and against_seed:
        warnings.append(
            f"no {', '.join(missing)} run in this comparison: "
            f"{sum(1 for row in rows if row.status == 'not run' and row.target is not None)} seed target(s) "
            "count as not met"
        )
    unknown = [row.spec.label for row in rows if row.difference is not None and row.difference.noise_unknown]
    if unknown:
        warnings.append(
            f"run-to-run noise unknown for {len(unknown)} metric(s): one run on each side and no earlier "
            "run of this target and scenario, so no verdict is given (never a regression); repeat the "
            "runs (`perfsuite run --repeat N`) and compare the groups"
        )
    target_checks = tuple(
        _target_check(
            row,
            f"seed: {_format(row.spec.seed_figure(figures), row.spec.unit)} before, "
            f"{_format(row.target, row.spec.unit)} expected after",
        )
        for row in rows
        if row.target is not None
    )
    regression_checks = tuple(_regression_check(row) for row in rows if row.difference is not None)
    own_checks = [check for given in current for check in given.checks]
    requirements = _requirements([*target_checks, *regression_checks, *own_checks]) if against_seed else ()
    return Comparison(
        baseline_kind=kind,
        baseline_label=(
            "; ".join(sides_label(runs) for runs in base_by_type.values())
            if baseline
            else "the seed's pre-optimization figures"
        ),
        baseline_runs=tuple(baseline),
        current_runs=tuple(current),
        scope=in_scope,
        rows=tuple(rows),
        requirements=requirements,
        target_checks=target_checks,
        regression_checks=regression_checks,
        settings=settings,
        warnings=tuple(warnings),
        history={t: tuple(r.run_id for r in runs) for t, runs in history.items() if runs},
        current_label="; ".join(sides_label(runs) for runs in current_by_type.values()) or "no current run",
    )


def _meets(spec: MetricSpec, value: float, target: float) -> bool:
    return value <= target if spec.lower_is_better else value >= target


__all__ = [
    "COMPARISON_SCHEMA",
    "Comparison",
    "MetricRow",
    "RequirementStatus",
    "RunSide",
    "centre",
    "compare",
    "sides_label",
]
