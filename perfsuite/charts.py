"""A run's time series as the HTML report's charts draw them (from its intervals and marks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from perfsuite.intervals import IntervalSamples
from perfsuite.marks import FAULT, FAULT_END, FAULT_START, STAGE
from perfsuite.report_html import ChartRun
from perfsuite.result import RunResult


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
        if mark.get("kind") == STAGE
    ]
    faults: list[tuple[float, float, str]] = []
    open_faults: dict[str, float] = {}
    for mark in sorted(marks, key=lambda m: float(m["at"])):
        name = str(mark.get("fault") or mark.get("name") or "fault")
        if mark.get("kind") == FAULT_START:
            open_faults[name] = float(mark["at"]) - start
        elif mark.get("kind") == FAULT_END and name in open_faults:
            faults.append((round(open_faults.pop(name), 3), round(float(mark["at"]) - start, 3), name))
        elif mark.get("kind") == FAULT and mark.get("start_s") is not None and mark.get("end_s") is not None:
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
        unjudged_errors_per_s=(
            None
            if samples.unjudged_bad is None
            else [round(float(b) / window, 3) for b in samples.unjudged_bad]
        ),
        stages=stages,
        faults=faults,
        group=group,
    )


def result_charts(result: RunResult) -> list[ChartRun]:
    """Charts of a result that carries its intervals (and of each part of a combined result)."""
    charts = []
    for part in [result, *result.parts]:
        if not part.intervals:
            continue
        samples = IntervalSamples.from_dict(part.intervals, f"run {part.run_id}")
        label = f"run {part.run_id} ({part.test_type})"
        chart = chart_run(samples, part.marks, label, "run", part.test_type)
        if chart is not None:
            charts.append(chart)
    return charts


__all__ = ["chart_run", "result_charts"]
