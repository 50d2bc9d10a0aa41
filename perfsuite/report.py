"""The terminal report: the figures a person reads first, every threshold, the grade."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from perfsuite.grading import format_value
from perfsuite.result import JobResult

OUTCOMES = ("success", "rejected", "backpressure", "failure")


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.1f}"


def _table(headers: list[str], rows: Iterable[list[str]]) -> list[str]:
    rows = list(rows)
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    line = "  ".join(f"{{:<{widths[0]}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    line = line.replace(f"{{:<{widths[0]}}}", f"{{:<{widths[0]}}}", 1)
    out = [line.format(*headers), line.format(*("-" * w for w in widths))]
    out += [line.format(*row) for row in rows]
    return out


def render(result: JobResult) -> str:
    """The report as text (no colours; it goes to logs and CI output too)."""
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
        lines += [*_table(headers, rows), ""]
    if result.timings:
        rows = [
            [metric, f"{t['count']:,}", _ms(t.get("avg_ms")), _ms(t.get("p50_ms")), _ms(t.get("p95_ms")),
             _ms(t.get("p99_ms"))]
            for metric, t in result.timings.items()
        ]
        lines += ["timing breakdown (4.1)", *_table(["phase", "samples", "avg ms", "P50", "P95", "P99"], rows), ""]
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
                f"backlog         {backlog.get('depth_at_end')} still queued {backlog.get('timeout_s')} s after the load"
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
    lines += ["", f"GRADE: {result.grade.value}  ({met}/{len(result.checks)} thresholds met){status}"]
    return "\n".join(lines)


__all__ = ["render"]
