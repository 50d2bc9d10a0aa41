"""``perfsuite run --test-type baseline`` and ``perfsuite compare``: pick the sides, compare, grade.

Sides:

- **current**: the runs named, else the newest stored run of each compared test type;
- **baseline**: ``--baseline-run ID`` (stored runs or groups, see ``baseline/sides.py``),
  ``--baseline-file F`` (a result file), or neither: the seed's pre-optimization figures from
  scenarios.yaml (``baseline.figures``).

Against the seed's figures the scope is the seed's whole mapping (webhook, redis, capacity): a
target whose test type has no stored run is a check not met. Against runs or a file the scope is
their test types, and the earlier runs of the baseline's target and scenario in the history
(``baseline.history_runs``) join the baseline to estimate run-to-run variation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baseline.comparator import Comparison, RunSide, compare
from baseline.sides import earlier_results, latest_side, resolve_side, run_side, sides_from_file
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
    """Stored run ids or group ids, comma-separated."""
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
        given += resolve_side(history, request.baseline_run, "--baseline-run")
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
    for test_type in dict.fromkeys(side.test_type for side in given):
        bases = [side for side in given if side.test_type == test_type]
        mine = [side for side in (*current, *extra_current) if side.test_type == test_type]
        if not mine and request.fill_from_history:
            try:
                mine = latest_side(history, bases, "--baseline-run")
            except ConfigError:
                mine = []
        if not mine:
            notes.append(f"{bases[0].label}: no other {test_type} run to compare it with; left out")
            continue
        baseline += bases
        current.extend(side for side in mine if side not in current)
    if not baseline:
        raise ConfigError(
            f"nothing to compare with {given[0].label}: run `perfsuite run --test-type {given[0].test_type}` "
            "with the changed build first, or name both runs: `perfsuite compare BASELINE CURRENT`"
        )
    kept = {side.test_type for side in baseline}
    current = [side for side in current if side.test_type in kept]
    return current, baseline, tuple(request.scope or [t for t in TEST_TYPES if t in kept]), notes


def history_of(
    history: RunHistory, baseline: Sequence[RunSide], current: Sequence[RunSide], settings: BaselineConfig
) -> dict[str, list[RunResult]]:
    """Per test type, the earlier runs that join the baseline (see ``sides.earlier_results``)."""
    exclude = [side.run_id for side in current]
    out = {}
    for test_type in dict.fromkeys(side.test_type for side in baseline):
        mine = [side for side in baseline if side.test_type == test_type]
        out[test_type] = earlier_results(history, mine, exclude, settings.history_runs)
    return out


def run_baseline(
    history: RunHistory,
    settings: BaselineConfig,
    request: BaselineRequest = BaselineRequest(),
    extra_current: Sequence[RunSide] = (),
) -> Comparison:
    """Compare as ``request`` says (``extra_current``: sides of runs this command just made)."""
    current, baseline, scope, notes = resolve_sides(history, request, extra_current)
    earlier = history_of(history, baseline, current, settings)
    return compare(current, settings, baseline, scope, notes=notes, history=earlier)


def compare_named(
    history: RunHistory,
    settings: BaselineConfig,
    baseline_text: str,
    current_text: str,
    use_history: bool = True,
) -> Comparison:
    """``perfsuite compare BASELINE CURRENT``: each side as ``baseline/sides.py`` reads it (CURRENT
    may be ``latest``); the baseline's history joins it unless ``use_history`` is False."""
    baseline = resolve_side(history, baseline_text, "BASELINE")
    if current_text == "latest":
        current = latest_side(history, baseline)
    else:
        current = resolve_side(history, current_text, "CURRENT")
    base_types, current_types = {s.test_type for s in baseline}, {s.test_type for s in current}
    if not base_types & current_types:
        held = f"{', '.join(sorted(base_types))} runs and CURRENT {', '.join(sorted(current_types))} runs"
        raise ConfigError(f"BASELINE holds {held}: compare runs of the same test type")
    earlier = history_of(history, baseline, current, settings) if use_history else {}
    return compare(current, settings, [s for s in baseline if s.test_type in current_types], history=earlier)


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
    "compare_named",
    "comparison_charts",
    "comparison_result",
    "history_of",
    "resolve_sides",
    "run_baseline",
]
