"""``perfsuite run --test-type baseline`` and ``perfsuite compare``: pick the sides, compare, grade.

Sides:

- **current**: the runs named, else the newest stored run of each compared test type;
- **baseline**: ``--baseline-run ID`` (a stored run), ``--baseline-file F`` (a result file), or
  neither: the seed's pre-optimization figures from scenarios.yaml (``baseline.figures``).

Against the seed's figures the scope is the seed's whole mapping (webhook, redis, capacity): a
target whose test type has no stored run is a check not met. Against a run or a file the scope is
that run's test type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baseline.comparator import Comparison, RunSide, compare
from baseline.sides import run_side, sides_from_file
from baseline.targets import TEST_TYPES
from perfsuite.charts import chart_run
from perfsuite.config import BaselineConfig
from perfsuite.errors import ConfigError
from perfsuite.history import RunHistory
from perfsuite.report_html import ChartRun
from perfsuite.result import RunResult


@dataclass(frozen=True, slots=True)
class BaselineRequest:
    """What to compare (from the command line)."""

    current_runs: tuple[str, ...] = ()
    """Run ids of the current side (default: the newest run of each compared test type)."""
    baseline_run: str | None = None
    baseline_file: Path | None = None
    scope: tuple[str, ...] | None = None
    """Test types whose targets count (default: see the module docstring)."""
    fill_from_history: bool = True
    """Take the newest stored run of a test type that has no current run (False for ``all``:
    compare exactly the runs it just made)."""


def resolve_sides(
    history: RunHistory, request: BaselineRequest, extra_current: Sequence[RunSide] = ()
) -> tuple[list[RunSide], list[RunSide], tuple[str, ...], list[str]]:
    """``(current, baseline, scope, notes)`` for ``request``; ConfigError naming what is missing."""
    if request.baseline_run and request.baseline_file:
        raise ConfigError("--baseline-run and --baseline-file: give one of them, not both")
    given: list[RunSide] = []
    if request.baseline_run:
        given.append(run_side(history, request.baseline_run))
    elif request.baseline_file:
        given.extend(sides_from_file(request.baseline_file))
    current = [run_side(history, run_id) for run_id in request.current_runs]
    notes: list[str] = []
    if not given:
        current += list(extra_current)
        scope = request.scope or TEST_TYPES
        have = {side.test_type for side in current}
        for test_type in scope if request.fill_from_history else ():
            run_id = None if test_type in have else history.latest(test_type)
            if run_id is not None:
                current.append(run_side(history, run_id))
        if not current:
            raise ConfigError(
                "no stored webhook, redis or capacity run to compare with the seed's figures: "
                "run `perfsuite run` first (see `perfsuite runs list`)"
            )
        return current, [], tuple(scope), notes
    baseline: list[RunSide] = []
    for base in given:
        mine = [side for side in (*current, *extra_current) if side.test_type == base.test_type]
        if not mine:
            exclude = (base.run_id,) if base.source == "run" else ()
            run_id = (
                history.latest(
                    base.test_type, base.result.target.identity, base.result.scenario, exclude=exclude
                )
                if request.fill_from_history
                else None
            )
            if run_id is None:
                notes.append(f"{base.label}: no other {base.test_type} run to compare it with; left out")
                continue
            mine = [run_side(history, run_id)]
        baseline.append(base)
        current.extend(side for side in mine if side not in current)
    if not baseline:
        raise ConfigError(
            f"nothing to compare with {given[0].label}: run `perfsuite run --test-type {given[0].test_type}` "
            "with the changed build first, or name both runs: `perfsuite compare BASELINE CURRENT`"
        )
    kept = {side.test_type for side in baseline}
    current = [side for side in current if side.test_type in kept]
    return current, baseline, tuple(request.scope or [t for t in TEST_TYPES if t in kept]), notes


def run_baseline(
    history: RunHistory,
    settings: BaselineConfig,
    request: BaselineRequest = BaselineRequest(),
    extra_current: Sequence[RunSide] = (),
) -> Comparison:
    """Compare as ``request`` says (``extra_current``: sides of runs this command just made)."""
    current, baseline, scope, notes = resolve_sides(history, request, extra_current)
    return compare(current, settings, baseline, scope, notes=notes)


def comparison_result(comparison: Comparison, config_snapshot: Mapping[str, Any] | None = None) -> RunResult:
    """The comparison as a ``baseline`` result (its checks graded by the one rule)."""
    current = comparison.current_runs
    return RunResult(
        test_type="baseline",
        run_id=",".join(side.run_id for side in current),
        scenario=",".join(sorted({side.result.scenario for side in current})),
        checks=tuple(comparison.checks),
        config=dict(config_snapshot or {}),
        comparison=comparison.to_dict(),
    )


def comparison_charts(comparison: Comparison) -> list[ChartRun]:
    """Charts of every run in a comparison (baseline first)."""
    charts = []
    for role, sides in (("baseline", comparison.baseline_runs), ("current", comparison.current_runs)):
        for side in sides:
            chart = chart_run(side.samples, side.result.marks, side.label, role, side.test_type)
            if chart is not None:
                charts.append(chart)
    return charts


__all__ = [
    "BaselineRequest",
    "comparison_charts",
    "comparison_result",
    "resolve_sides",
    "run_baseline",
]
