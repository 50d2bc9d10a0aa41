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
from baseline.history import RunHistory, sides_from_file
from baseline.intervals import IntervalSamples
from baseline.targets import TEST_TYPES
from perfsuite.config import BaselineConfig
from perfsuite.errors import ConfigError
from perfsuite.report_html import ChartRun
from perfsuite.result import JobResult


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
        given.append(history.side(request.baseline_run))
    elif request.baseline_file:
        given.extend(sides_from_file(request.baseline_file))
    current = [history.side(run_id) for run_id in request.current_runs]
    notes: list[str] = []
    if not given:
        current += list(extra_current)
        scope = request.scope or TEST_TYPES
        have = {side.test_type for side in current}
        for test_type in scope if request.fill_from_history else ():
            run_id = None if test_type in have else history.latest(test_type)
            if run_id is not None:
                current.append(history.side(run_id))
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
            run_id = history.latest(base.test_type, exclude=exclude) if request.fill_from_history else None
            if run_id is None:
                notes.append(f"{base.label}: no other {base.test_type} run to compare it with; left out")
                continue
            mine = [history.side(run_id)]
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


def comparison_result(comparison: Comparison, config_snapshot: Mapping[str, Any] | None = None) -> JobResult:
    """The comparison as a ``baseline`` result (its checks graded by the one rule)."""
    document = comparison.to_dict()
    current = comparison.current_runs
    return JobResult(
        test_type="baseline",
        run_id=",".join(side.run_id for side in current),
        scenario=",".join(sorted({str(side.document.get("scenario", "")) for side in current})),
        host="",
        checks=comparison.checks,
        warnings=[],
        config=dict(config_snapshot or {}),
        extra={"comparison": document},
    )


def chart_run(
    samples: IntervalSamples | None,
    marks: Sequence[Mapping[str, Any]],
    label: str,
    role: str,
    group: str = "",
) -> ChartRun | None:
    """Time series of one run for the HTML report (None without interval data)."""
    if samples is None or samples.n == 0:
        return None
    start = int(samples.starts_s[0])
    stats = samples.table.stats((50.0, 95.0, 99.0))
    window = float(samples.window_s)

    def ms(values: Any) -> list[float | None]:
        return [None if v != v else round(float(v) / 1000.0, 3) for v in values]

    stages = [
        (round(float(mark["at"]) - start, 3), str(mark.get("name") or "stage"))
        for mark in marks
        if mark.get("kind") == "stage"
    ]
    faults: list[tuple[float, float, str]] = []
    open_faults: dict[str, float] = {}
    for mark in sorted(marks, key=lambda m: float(m["at"])):
        name = str(mark.get("fault") or mark.get("name") or "fault")
        if mark.get("kind") == "fault_start":
            open_faults[name] = float(mark["at"]) - start
        elif mark.get("kind") == "fault_end" and name in open_faults:
            faults.append((round(open_faults.pop(name), 3), round(float(mark["at"]) - start, 3), name))
        elif (
            mark.get("kind") == "fault" and mark.get("start_s") is not None and mark.get("end_s") is not None
        ):
            label_ = str(mark.get("fault_kind") or name)
            faults.append(
                (round(float(mark["start_s"]) - start, 3), round(float(mark["end_s"]) - start, 3), label_)
            )
    last = float(samples.starts_s[-1] - start) + window
    faults += [(round(begin, 3), round(last, 3), name + " (open)") for name, begin in open_faults.items()]
    return ChartRun(
        label=label,
        role=role,
        window_s=samples.window_s,
        elapsed_s=[float(s - start) for s in samples.starts_s],
        p50_ms=ms(stats.percentiles_us[50.0]),
        p95_ms=ms(stats.percentiles_us[95.0]),
        p99_ms=ms(stats.percentiles_us[99.0]),
        rps=[round(float(c) / window, 3) for c in samples.count],
        errors_per_s=[
            round(float(c - g) / window, 3) for c, g in zip(samples.count, samples.good, strict=True)
        ],
        stages=stages,
        faults=faults,
        group=group,
    )


def comparison_charts(comparison: Comparison) -> list[ChartRun]:
    """Charts of every run in a comparison (baseline first)."""
    charts = []
    for role, sides in (("baseline", comparison.baseline_runs), ("current", comparison.current_runs)):
        for side in sides:
            chart = chart_run(
                side.samples, side.document.get("marks") or [], side.label, role, side.test_type
            )
            if chart is not None:
                charts.append(chart)
    return charts


def result_charts(result: JobResult) -> list[ChartRun]:
    """Charts of a job result that carries its intervals (and of each part of a combined result)."""
    charts = []
    for part in [result, *result.parts]:
        intervals = part.extra.get("intervals")
        if not intervals:
            continue
        samples = IntervalSamples.from_dict(intervals, f"run {part.run_id}")
        label = f"run {part.run_id} ({part.test_type})"
        chart = chart_run(samples, part.extra.get("marks") or [], label, "run", part.test_type)
        if chart is not None:
            charts.append(chart)
    return charts


__all__ = [
    "BaselineRequest",
    "chart_run",
    "comparison_charts",
    "comparison_result",
    "resolve_sides",
    "result_charts",
    "run_baseline",
]
