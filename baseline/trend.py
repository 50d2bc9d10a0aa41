"""``perfsuite runs trend``: one metric across the stored runs of one target, with its change points.

The series is the runs of one identity (test type, target, scenario; the parts not given are
those of the newest matching run), oldest to newest, each run's value read from the result
``perfsuite run`` stored with it (runs without one, and unfinished runs, are left out). Change
points come from ``baseline/changepoints.py`` (E-divisive means, a pooled t-test, a minimum
change): deterministic, so the same history always shows the same steps.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from baseline.changepoints import (
    MAX_P,
    MIN_CHANGE,
    MIN_SHARE_CHANGE,
    MIN_SIZE,
    PERMUTATIONS,
    ChangePoint,
    change_points,
)
from baseline.targets import TEST_TYPES, MetricSpec, metrics_of
from perfsuite.errors import ConfigError
from perfsuite.history import RunHistory
from perfsuite.report import format_figure
from perfsuite.result import RunStatus
from perfsuite.sections import plain_table, table

TREND_SCHEMA = "perfsuite.trend/1"


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One run's value."""

    run_id: str
    started_at: str
    value: float
    group: str | None = None


@dataclass(frozen=True, slots=True)
class Trend:
    """A metric across the runs of one identity, with its change points."""

    metric: MetricSpec
    target: str
    scenario: str
    points: tuple[TrendPoint, ...]
    change_points: tuple[ChangePoint, ...]
    skipped: int = 0
    """Runs of the identity left out (no stored result, not finished, or no value)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON form (schema ``perfsuite.trend/1``)."""
        return {
            "schema": TREND_SCHEMA,
            "metric": {
                "key": self.metric.key,
                "label": self.metric.label,
                "unit": self.metric.unit,
                "lower_is_better": self.metric.lower_is_better,
            },
            "identity": {
                "test_type": self.metric.test_type,
                "target": self.target,
                "scenario": self.scenario,
            },
            "method": {
                "change_points": "e-divisive means, permutation test, re-checked by a pooled t-test",
                "max_p": MAX_P,
                "min_change": MIN_SHARE_CHANGE if self.metric.is_rate else MIN_CHANGE,
                "min_size": MIN_SIZE,
                "permutations": PERMUTATIONS,
            },
            "runs": [
                {"run_id": p.run_id, "started_at": p.started_at, "group": p.group, "value": p.value}
                for p in self.points
            ],
            "change_points": [
                {**point.to_dict(), "run_id": self.points[point.index].run_id} for point in self.change_points
            ],
            "skipped": self.skipped,
        }


def metric_spec(key: str, test_type: str | None = None) -> MetricSpec:
    """The metric ``key`` (of ``test_type``, or of the one test type that has it); ConfigError
    listing the keys there are."""
    candidates = [test_type] if test_type else list(TEST_TYPES)
    found = [spec for name in candidates for spec in metrics_of(name) if spec.key == key]
    if not found:
        keys = sorted({spec.key for name in candidates for spec in metrics_of(name) if spec.key})
        of = f" of {test_type}" if test_type else ""
        raise ConfigError(f"--metric {key}: no such metric{of} (one of: {', '.join(keys)})")
    return found[0]


def trend(
    history: RunHistory,
    key: str,
    test_type: str | None = None,
    target: str | None = None,
    scenario: str | None = None,
    limit: int = 50,
) -> Trend:
    """The trend of metric ``key`` over the newest ``limit`` runs of one identity (module docstring)."""
    spec = metric_spec(key, test_type)
    newest = next(iter(history.entries(1, spec.test_type, target, scenario)), None)
    if newest is None:
        where = ", ".join(f"{k} {v}" for k, v in (("target", target), ("scenario", scenario)) if v)
        raise ConfigError(
            f"no stored {spec.test_type} run{f' ({where})' if where else ''} to show a trend of "
            "(see `perfsuite runs list`)"
        )
    info = newest[0]
    target, scenario = target or info.target, scenario or info.scenario
    points, skipped = [], 0
    for entry, stored in history.entries(limit, spec.test_type, target, scenario):
        value = None if stored is None or stored.status is not RunStatus.FINISHED else spec.value(stored)
        if value is None or not math.isfinite(value) or (not spec.is_rate and value <= 0):
            skipped += 1
            continue
        group = None if entry.group == "-" else entry.group
        points.append(TrendPoint(entry.run_id, entry.started_at, value, group))
    points.reverse()
    found = change_points([p.value for p in points], log_scale=not spec.is_rate)
    return Trend(spec, target, scenario, tuple(points), tuple(found), skipped)


def render_trend(trend: Trend) -> str:
    """The trend as text: one line per run, oldest first, change points marked."""
    spec = trend.metric
    lines = [
        f"perfsuite trend: {spec.label} ({spec.key})",
        f"target: {trend.target} - test type {spec.test_type} - scenario {trend.scenario} - "
        f"{len(trend.points)} run(s), oldest first"
        + (f" ({trend.skipped} without a stored finished result left out)" if trend.skipped else ""),
        f"change points: E-divisive means, p < {MAX_P:g} ({PERMUTATIONS} shuffles, re-checked by a "
        f"t-test), at least {_min_change(spec.is_rate)} and {MIN_SIZE} runs each side",
        "",
    ]
    at = {point.index: point for point in trend.change_points}
    rows = []
    for i, point in enumerate(trend.points):
        step = at.get(i)
        mark = ""
        if step is not None:
            change = f"{step.change * 100:+.1f} pp" if spec.is_rate else f"{step.change * 100:+.1f}%"
            mark = (
                f"<< change {change} ({format_figure(step.before, spec.unit)} -> "
                f"{format_figure(step.after, spec.unit)}, p {step.p_value:.2g})"
            )
        rows.append(
            [
                str(i + 1),
                point.run_id,
                point.started_at[:19].replace("T", " "),
                point.group or "-",
                format_figure(point.value, spec.unit),
                mark,
            ]
        )
    if rows:
        headers = ["#", "run id", "started (UTC)", "group", spec.label, "change point"]
        lines += plain_table(table(headers, rows, left=(1, 2, 3, 5)))
    found = len(trend.change_points)
    lines += ["", f"{found} change point(s)" if found else "no change point: one level throughout"]
    return "\n".join(lines)


def _min_change(is_rate: bool) -> str:
    return f"{MIN_SHARE_CHANGE * 100:g} pp" if is_rate else f"{MIN_CHANGE * 100:g}%"


def trend_json(trend: Trend) -> str:
    """The trend document, indented."""
    return json.dumps(trend.to_dict(), indent=2)


__all__ = ["TREND_SCHEMA", "Trend", "TrendPoint", "metric_spec", "render_trend", "trend", "trend_json"]
