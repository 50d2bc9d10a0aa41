"""A ``perfsuite run --repeat N`` group: its runs side by side, and how much they vary between runs.

The spread shown is what the regression gate (``baseline/gate.py``) uses when the group is one
side of a comparison: the standard deviation of the runs' values (of the log value for a time,
shown as a relative spread; points for a share).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from baseline.comparator import centre
from baseline.targets import metrics_of
from perfsuite.report import format_figure
from perfsuite.result import RunResult
from perfsuite.sections import plain_table, table


def spread_of(values: Sequence[float], is_rate: bool) -> float | None:
    """Between-run spread of ``values``: relative (a time) or points (a share); None for fewer
    than two runs."""
    if len(values) < 2:
        return None
    if is_rate:
        return float(np.std(values, ddof=1))
    if any(value <= 0 for value in values):
        return None
    return math.expm1(float(np.std(np.log(values), ddof=1)))


def render_group(group: str, results: Sequence[RunResult]) -> str:
    """The group's table: each metric of its test type, each run's value, the centre, the spread."""
    if not results:
        return f"group {group}: no run finished"
    test_type = results[0].test_type
    lines = [
        f"perfsuite group {group}: {len(results)} {test_type} run(s) "
        f"({results[0].target.label}, scenario {results[0].scenario})",
        "compare it as one side: perfsuite compare <earlier group or runs> " + group,
        "",
    ]
    rows = []
    for spec in metrics_of(test_type):
        values = [spec.value(result) for result in results]
        measured = [value for value in values if value is not None]
        spread = spread_of(measured, spec.is_rate)
        spread_text = (
            "-" if spread is None else (f"{spread * 100:.1f} pp" if spec.is_rate else f"{spread * 100:.1f}%")
        )
        rows.append(
            [
                spec.label,
                *(format_figure(value, spec.unit) for value in values),
                format_figure(centre(values, spec.unit), spec.unit),
                spread_text,
            ]
        )
    headers = ["metric", *(f"run {i + 1}" for i in range(len(results))), "centre", "spread between runs"]
    lines += plain_table(table(headers, rows, left=(0,)))
    lines.append("")
    lines += [f"  run {i + 1}: {result.run_id}  {result.grade.value}" for i, result in enumerate(results)]
    return "\n".join(lines)


__all__ = ["render_group", "spread_of"]
