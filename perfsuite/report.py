"""The terminal report: the figures a person reads first, every threshold, the grade.

``render(result)`` prints a job's report; a comparison (``--test-type baseline``, ``perfsuite
compare``) prints its table with ``render_comparison(document)``, which reads only the comparison
document (schema ``perfsuite.comparison/1``), so a stored JSON file renders the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from perfsuite.grading import format_value
from perfsuite.result import JobResult

OUTCOMES = ("success", "rejected", "backpressure", "failure")


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.1f}"


def table(headers: list[str], rows: Iterable[list[str]], left: Iterable[int] = (0,)) -> list[str]:
    """A plain-text table: columns in ``left`` aligned left, the others right; trailing blanks cut."""
    rows = list(rows)
    left_columns = set(left)
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    line = "  ".join(f"{{:<{w}}}" if i in left_columns else f"{{:>{w}}}" for i, w in enumerate(widths))
    out = [line.format(*headers), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in rows]
    return [text.rstrip() for text in out]


NOT_GRADED = "NOT GRADED"


def grade_label(result: JobResult) -> str:
    """The grade to show: ``NOT GRADED`` for a run with no check at all (recorded outside
    ``perfsuite run``), whose rule grade (POOR) would say something nobody measured."""
    if not result.checks and not result.parts and "comparison" not in result.extra:
        return NOT_GRADED
    return result.grade.value


def format_figure(value: Any, unit: str) -> str:
    """A metric value with its unit for people (``-`` when missing)."""
    if value is None:
        return "-"
    if unit in ("users", "req/s"):
        return f"{format_value(float(value), '')} {unit}"
    return format_value(float(value), unit)


def format_improvement(value: Any, unit: str) -> str:
    """An improvement: ``+85.7%`` of the baseline, or ``+14.0 pp`` for a rate."""
    if value is None:
        return "-"
    return f"{float(value) * 100:+.1f} pp" if unit == "%" else f"{float(value) * 100:+,.1f}%"


def _verdict(row: Mapping[str, Any]) -> str:
    difference = row.get("difference")
    if not difference:
        return "-"
    verdict = str(difference["verdict"])
    is_rate = bool(difference.get("is_rate"))
    effect = difference.get("effect")
    if effect is None:
        return verdict
    text = f"{effect * 100:+.1f}{' pp' if is_rate else '%'}"
    short = {"no significant change": "no change"}.get(verdict, verdict)
    if difference.get("ci_low") is None:
        return f"{short} {text} (noise unknown)"
    low, high = difference["ci_low"] * 100, difference["ci_high"] * 100
    return f"{short} {text} [{low:+.1f}, {high:+.1f}]"


def render_comparison(document: Mapping[str, Any]) -> str:
    """The comparison as text: runs, the metric table, requirement achievement, checks, grade."""
    baseline, current = document["baseline"], document["current"]
    settings = document.get("settings") or {}
    lines = [
        "perfsuite comparison",
        f"baseline: {baseline['label']}",
        f"current:  {current['label']}",
    ]
    runs = [*baseline.get("runs", []), *current.get("runs", [])]
    intervals = [f"{r['intervals']} x {r['window_s']} s" for r in runs if r.get("intervals")]
    if baseline.get("kind") != "seed":
        lines.append(
            f"noise:    {settings.get('confidence', 0.95) * 100:g}% bootstrap interval over each run's "
            "intervals "
            f"({', '.join(intervals) or 'none'}); a regression must leave it and exceed "
            f"{settings.get('min_effect_size', 0) * 100:g}% ({settings.get('min_rate_effect', 0) * 100:g} pp "
            "for a success rate)"
        )
    lines.append("")
    against = "baseline" if baseline.get("kind") != "seed" else "seed before"
    headers = ["metric", "req", against, "current", "improvement", "expected", "seed target", "met"]
    with_verdicts = baseline.get("kind") != "seed"
    if with_verdicts:
        headers.append("run-to-run change [interval]")
    rows = []
    for row in document["metrics"]:
        unit = row["unit"]
        if row["status"] == "not run":
            current_text = "not run"
        elif row["status"] == "not measured":
            current_text = "not measured"
        else:
            current_text = format_figure(row["current"], unit)
        target = "-" if row["target"] is None else f"{row['comparison']} {format_figure(row['target'], unit)}"
        met = "-" if row["met"] is None else ("yes" if row["met"] else "NO")
        cells = [
            row["label"],
            row["requirement"],
            format_figure(row["baseline"], unit),
            current_text,
            format_improvement(row["improvement"], unit),
            format_improvement(row["expected_improvement"], unit),
            target,
            met,
        ]
        if with_verdicts:
            cells.append(_verdict(row))
        rows.append(cells)
    lines += [*table(headers, rows, left=(0, 1, 8)), ""]
    lines.append("target achievement per requirement (seed mapping)")
    for requirement in document["requirements"]:
        status = requirement["status"]
        count = f"{requirement['met']}/{requirement['total']}" if requirement["total"] else "-"
        lines.append(
            f"  {requirement['id']}  {status:<12} {count:>5}  {requirement['title']} "
            f"({requirement['component']})"
        )
        for name in requirement.get("unmet", [])[:6]:
            lines.append(f"        not met: {name}")
    checks = document["checks"]
    failed = [check for check in checks if not check["met"]]
    if failed:
        lines += ["", "checks not met"]
        for check in failed:
            actual = (
                "not measured" if check["actual"] is None else format_value(check["actual"], check["unit"])
            )
            note = f" - {check['note']}" if check.get("note") else ""
            critical = " (critical)" if check.get("critical") else ""
            lines.append(
                f"  [MISS] {check['name']}{critical}: {actual} (target {check['comparison']} "
                f"{format_value(check['target'], check['unit'])}){note}"
            )
    for warning in document.get("warnings", []):
        lines.append(f"warning: {warning}")
    met = sum(check["met"] for check in checks)
    regressions = document.get("regressions", [])
    lines += [
        "",
        f"COMPARISON GRADE: {document['grade']}  (seed targets met {document.get('targets_met', 0)}/"
        f"{document.get('targets_total', 0)}; regressions {len(regressions)}; "
        f"{met}/{len(checks)} checks met)",
    ]
    return "\n".join(lines)


def render(result: JobResult) -> str:
    """The report as text (no colours; it goes to logs and CI output too)."""
    if result.parts or "comparison" in result.extra:
        return _render_combined(result)
    return _render_job(result)


def _render_combined(result: JobResult) -> str:
    blocks = [_render_job(part) for part in result.parts]
    comparison = result.extra.get("comparison")
    if comparison:
        blocks.append(render_comparison(comparison))
    for warning in result.warnings:
        blocks.append(f"warning: {warning}")
    if result.parts:
        grades = ", ".join(f"{part.test_type} {part.grade.value}" for part in result.parts)
        if comparison:
            grades += f", comparison {comparison['grade']}"
        status = " (interrupted: partial results)" if result.exit_code == 130 else ""
        blocks.append(f"OVERALL GRADE: {result.grade.value}  (worst of: {grades}){status}")
    return "\n\n".join(blocks)


def _render_job(result: JobResult) -> str:
    summary = result.summary
    lines = [
        f"perfsuite {result.test_type} test - run {result.run_id} (scenario {result.scenario})",
        f"target: {result.host}",
        f"{result.started_at} -> {result.stopped_at}"
        + (f"  ({summary.get('duration_s', 0):.1f} s)" if summary.get("duration_s") else ""),
        "",
    ]
    if summary:
        lines += [
            f"requests        {summary.get('requests', 0):,}   throughput {summary.get('rps', 0):,.1f} req/s",
            f"response time   P50 {_ms(summary.get('p50_ms'))} ms   P95 {_ms(summary.get('p95_ms'))} ms   "
            f"P99 {_ms(summary.get('p99_ms'))} ms   avg {_ms(summary.get('avg_ms'))} ms   "
            f"max {_ms(summary.get('max_ms'))} ms",
            f"success rate    {summary.get('success_rate', 0) * 100:.2f}%   "
            + "   ".join(f"{name} {summary.get(name, 0):,}" for name in OUTCOMES),
            "",
        ]
    if result.endpoints:
        headers = ["endpoint", "requests", *OUTCOMES[1:], "P50 ms", "P95 ms", "P99 ms", "max ms"]
        rows = [
            [
                f"{row['request_type']} {row['name']}",
                f"{row['count']:,}",
                *(f"{row.get(name, 0):,}" for name in OUTCOMES[1:]),
                _ms(row.get("p50_ms")),
                _ms(row.get("p95_ms")),
                _ms(row.get("p99_ms")),
                _ms(row.get("max_ms")),
            ]
            for row in result.endpoints
        ]
        lines += [*table(headers, rows), ""]
    if result.timings:
        rows = [
            [
                metric,
                f"{t['count']:,}",
                _ms(t.get("avg_ms")),
                _ms(t.get("p50_ms")),
                _ms(t.get("p95_ms")),
                _ms(t.get("p99_ms")),
            ]
            for metric, t in result.timings.items()
        ]
        lines += [
            "timing breakdown (4.1)",
            *table(["phase", "samples", "avg ms", "P50", "P95", "P99"], rows),
            "",
        ]
    for section in result.extra.get("report_sections", []):
        lines += [*section, ""]
    if result.backlog:
        backlog = result.backlog
        if not backlog.get("supported"):
            lines.append("backlog         target exposes no queue depth")
        elif backlog.get("drained"):
            lines.append(
                f"backlog         {backlog.get('depth_at_stop')} queued at stop, drained in "
                f"{backlog.get('drain_s')} s"
            )
        else:
            lines.append(
                f"backlog         {backlog.get('depth_at_end')} still queued "
                f"{backlog.get('timeout_s')} s after the load"
            )
    collector = result.collector
    if collector:
        agree = "agree" if collector.get("exact") else "DISAGREE"
        lines.append(
            f"collector       {collector.get('requests', 0):,} requests recorded, Locust counted "
            f"{collector.get('locust_requests', 0):,} ({agree})"
        )
    if result.failure_reasons:
        lines += ["", "failures"]
        lines += [f"  {r['count']:>7,}  {r['name']}: {r['reason']}" for r in result.failure_reasons[:10]]
    lines += ["", "thresholds"]
    for check in result.checks:
        mark = "met " if check.met else "MISS"
        actual = "not measured" if check.actual is None else format_value(check.actual, check.unit)
        requirement = f" [{check.requirement}]" if check.requirement else ""
        lines.append(
            f"  [{mark}] {check.name}{requirement}: {actual} (target {check.comparison} "
            f"{format_value(check.target, check.unit)})"
        )
    for warning in result.warnings:
        lines.append(f"warning: {warning}")
    met = sum(check.met for check in result.checks)
    status = " (interrupted: partial results)" if result.interrupted else ""
    lines += ["", f"GRADE: {grade_label(result)}  ({met}/{len(result.checks)} thresholds met){status}"]
    return "\n".join(lines)


__all__ = [
    "NOT_GRADED",
    "format_figure",
    "format_improvement",
    "grade_label",
    "render",
    "render_comparison",
    "table",
]
