"""The terminal report: the figures a person reads first, every threshold, the grade.

``render(result)`` prints a job's report; a comparison (``--test-type baseline``, ``perfsuite
compare``) prints its table with ``render_comparison(document)``, which reads only the comparison
document (schema ``perfsuite.comparison/2``; version 1 documents still render), so a stored JSON
file renders the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perfsuite.collector.batch import OUTCOMES
from perfsuite.grading import format_value
from perfsuite.registry import sections_of
from perfsuite.result import RunResult, RunStatus, Summary
from perfsuite.sections import Line, Section, Tone, lines, plain_table, table
from perfsuite.worker_health import workers_section


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.1f}"


NOT_GRADED = "NOT GRADED"


def grade_label(result: RunResult) -> str:
    """The grade to show: ``NOT GRADED`` for a run with no check at all (recorded outside
    ``perfsuite run``), whose rule grade (POOR) would say something nobody measured."""
    return result.grade.value if result.graded else NOT_GRADED


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


def verdict_text(row: Mapping[str, Any]) -> str:
    """``regression +31.2% [+18.0, +45.9]``; ``inconclusive (run-to-run noise unknown) +4.1%
    [within run -3.0, +11.2]`` when nothing estimated the variation between runs."""
    difference = row.get("difference")
    if not difference:
        return "-"
    verdict = str(difference["verdict"])
    is_rate = bool(difference.get("is_rate"))
    effect = difference.get("effect")
    noise = difference.get("noise")
    unknown = verdict == "inconclusive" and noise is not None and not noise.get("df")
    if unknown:
        verdict = "inconclusive (run-to-run noise unknown)"
    if effect is None:
        return verdict
    unit = " pp" if is_rate else "%"
    text = f"{effect * 100:+.1f}{unit}"
    short = {"no significant change": "no change"}.get(verdict, verdict)
    if unknown:
        low, high = difference.get("within_low"), difference.get("within_high")
        within = "" if low is None or high is None else f" [within run {low * 100:+.1f}, {high * 100:+.1f}]"
        return f"{short} {text}{within}"
    if difference.get("ci_low") is None:
        return f"{short} {text} (noise unknown)"
    low, high = difference["ci_low"] * 100, difference["ci_high"] * 100
    runs = ""
    if noise is not None:
        runs = f" ({noise['baseline_runs'] + noise['history_runs']} vs {noise['current_runs']} runs)"
    return f"{short} {text} [{low:+.1f}, {high:+.1f}]{runs}"


def noise_line(document: Mapping[str, Any]) -> str:
    """How the comparison tells a change from run-to-run noise, in one sentence."""
    settings = document.get("settings") or {}
    confidence = settings.get("confidence", 0.95) * 100
    effect, rate = settings.get("min_effect_size", 0) * 100, settings.get("min_rate_effect", 0) * 100
    if "min_absolute_ms" not in settings:  # perfsuite.comparison/1: the within-run bootstrap decided
        return (
            f"{confidence:g}% bootstrap interval over each run's intervals; a regression must leave it "
            f"and exceed {effect:g}% ({rate:g} pp for a success rate)"
        )
    return (
        f"{confidence:g}% interval of the change between runs (repeated runs, earlier runs of the "
        f"baseline's target and scenario); a regression leaves it and exceeds {effect:g}% and "
        f"{settings['min_absolute_ms']:g} ms ({rate:g} pp for a success rate); one run each side and "
        "no earlier run: inconclusive"
    )


def _history_line(document: Mapping[str, Any]) -> str | None:
    history = document.get("history") or {}
    used = sum(len(ids) for ids in history.values())
    if not used:
        return None
    return (
        f"history:  {used} earlier run(s) of the baseline's target and scenario (those since a "
        "metric's newest change point join the baseline)"
    )


def render_comparison(document: Mapping[str, Any]) -> str:
    """The comparison as text. Against the seed's figures: the metric table with the seed's
    expectations and targets, requirement achievement, checks, grade. Against your own runs:
    your figures and the between-run verdicts only (no seed columns, no requirement table)."""
    baseline, current = document["baseline"], document["current"]
    seed = baseline.get("kind") == "seed"
    lines = [
        "perfsuite comparison",
        f"baseline: {baseline['label']}",
        f"current:  {current['label']}",
    ]
    if not seed:
        lines.append(f"noise:    {noise_line(document)}")
        history = _history_line(document)
        if history:
            lines.append(history)
    lines.append("")
    rows = []
    for row in document["metrics"]:
        unit = row["unit"]
        if row["status"] == "not run":
            current_text = "not run"
        elif row["status"] == "not measured":
            current_text = "not measured"
        else:
            current_text = format_figure(row["current"], unit)
        cells = [row["label"]]
        if seed:
            target = (
                "-" if row["target"] is None else f"{row['comparison']} {format_figure(row['target'], unit)}"
            )
            met = "-" if row["met"] is None else ("yes" if row["met"] else "NO")
            cells += [
                row["requirement"],
                format_figure(row["baseline"], unit),
                current_text,
                format_improvement(row["improvement"], unit),
                format_improvement(row["expected_improvement"], unit),
                target,
                met,
            ]
        else:
            cells += [
                format_figure(row["baseline"], unit),
                current_text,
                format_improvement(row["improvement"], unit),
                verdict_text(row),
            ]
        rows.append(cells)
    if seed:
        headers = ["metric", "req", "seed before", "current", "improvement", "expected", "seed target", "met"]
        lines += [*plain_table(table(headers, rows, left=(0, 1))), ""]
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
    else:
        headers = ["metric", "baseline", "current", "improvement", "run-to-run change [interval]"]
        lines += plain_table(table(headers, rows, left=(0, 4)))
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
    lines += ["", f"COMPARISON GRADE: {document['grade']}  ({grade_detail(document)})"]
    return "\n".join(lines)


def grade_detail(document: Mapping[str, Any]) -> str:
    """What the comparison grade counted: seed targets (against the seed), regressions, verdicts
    left inconclusive for unknown noise, checks met."""
    checks = document["checks"]
    met = sum(check["met"] for check in checks)
    parts = []
    if document["baseline"].get("kind") == "seed":
        parts.append(f"seed targets met {document.get('targets_met', 0)}/{document.get('targets_total', 0)}")
    parts.append(f"regressions {len(document.get('regressions', []))}")
    unknown = document.get("noise_unknown") or []
    if unknown:
        parts.append(f"inconclusive {len(unknown)}: run-to-run noise unknown")
    parts.append(f"{met}/{len(checks)} checks met")
    return "; ".join(parts)


def render_section(section: Section) -> list[str]:
    """One report section as text lines (problems marked with ``!``)."""
    out = [section.title]
    out += [f"  {'! ' if line.tone == 'bad' else ''}{line.text}" for line in section.lines]
    if section.table is not None:
        out += [f"  {row}" for row in plain_table(section.table)]
    out += [f"  {'! ' if line.tone == 'bad' else ''}{line.text}" for line in section.after]
    return out


def core_sections(result: RunResult) -> list[Section]:
    """The blocks every job's report has besides its test type's: collector agreement, failure
    reasons, diagnosis (the HTML report draws the same)."""
    sections: list[Section] = []
    workers = result.workers
    if len(workers) > 1 or any(worker.lost or worker.saturated for worker in workers):
        started = min((w.joined_at_s for w in workers if w.joined_at_s is not None), default=None)
        sections.append(workers_section(workers, started))
    collector = result.collector
    if collector is not None:
        if collector.exact:
            tone: Tone = "ok"
            verdict = "agree"
        else:
            tone, verdict = "bad", "DISAGREE"
        counted = "unknown" if collector.locust_requests is None else f"{collector.locust_requests:,}"
        text = f"{collector.requests:,} requests recorded, Locust counted {counted}"
        if collector.lost_workers:
            survivors = collector.compared_locust_requests
            text += (
                f"; without the {collector.lost_workers} lost worker(s) ({collector.lost_workers_requests:,} "
                f"flushed, {collector.lost_workers_reported:,} reported to Locust): "
                f"{collector.compared_requests:,} recorded, "
                f"{'unknown' if survivors is None else f'{survivors:,}'} counted"
            )
        text += f" ({verdict})"
        notes = [Line(text, tone)]
        if collector.redis_lost:
            source = "read from" if collector.read_from_spill else "written back from"
            lost = "unknown" if collector.lost is None else f"{collector.lost:,}"
            notes.append(
                Line(
                    f"the collector's Redis was lost during the run ({collector.redis_outages:,} outage(s) "
                    f"seen by the writers): {collector.rewritten_from_journals:,} entries written again from "
                    f"the writers' journals, {collector.recovered_from_spill:,} {source} their spill files; "
                    f"{lost} requests lost",
                    "warn" if collector.lost == 0 else "bad",
                )
            )
        notes += [Line(problem, "bad") for problem in collector.problems[:5]]
        sections.append(Section("collector", lines=tuple(notes), key="collector"))
    if result.failure_reasons:
        rows = [
            [
                f"{reason.count:,}",
                f"{reason.request_type} {reason.name}".strip(),
                reason.outcome,
                reason.reason,
            ]
            for reason in result.failure_reasons[:10]
        ]
        cut = result.failure_reasons_total - min(10, len(result.failure_reasons))
        after = lines(f"... and {cut:,} more reason(s) (see the JSON result)" if cut > 0 else None)
        sections.append(
            Section(
                "failures (the bot's own words, redacted and cut)",
                table=table(["count", "endpoint", "outcome", "reason"], rows, left=(1, 2, 3)),
                after=after,
                key="failures",
            )
        )
    if result.diagnosis:
        sections.append(
            Section(
                "diagnosis (what most likely went wrong)",
                lines=tuple(Line(text, "bad") for text in result.diagnosis),
                key="diagnosis",
            )
        )
    return sections


def render(result: RunResult) -> str:
    """The report as text (no colours; it goes to logs and CI output too)."""
    if result.parts or result.comparison is not None:
        return _render_combined(result)
    return _render_job(result)


def _render_combined(result: RunResult) -> str:
    blocks = [_render_job(part) for part in result.parts]
    comparison = result.comparison
    if comparison:
        blocks.append(render_comparison(comparison))
    for warning in result.warnings:
        blocks.append(f"warning: {warning}")
    if result.parts:
        grades = ", ".join(f"{part.test_type} {part.grade.value}" for part in result.parts)
        if comparison:
            grades += f", comparison {comparison['grade']}"
        status = " (interrupted: partial results)" if result.interrupted else ""
        blocks.append(f"OVERALL GRADE: {result.grade.value}  (worst of: {grades}){status}")
    return "\n\n".join(blocks)


def _headline(summary: Summary) -> list[str]:
    rate = "-" if summary.success_rate is None else f"{summary.success_rate * 100:.2f}%"
    excluded = ", ".join(
        f"{why.replace('_', ' ')} {count:,}" for why, count in summary.excluded.items() if count
    )
    return [
        f"requests        {summary.requests:,}   throughput {summary.rps or 0:,.1f} req/s"
        + (f"   (not judged: {excluded})" if excluded else ""),
        f"response time   P50 {_ms(summary.p50_ms)} ms   P95 {_ms(summary.p95_ms)} ms   "
        f"P99 {_ms(summary.p99_ms)} ms   avg {_ms(summary.avg_ms)} ms   max {_ms(summary.max_ms)} ms",
        f"success rate    {rate}   " + "   ".join(f"{name} {getattr(summary, name):,}" for name in OUTCOMES),
    ]


def _render_job(result: RunResult) -> str:
    summary = result.summary
    lines_ = [
        f"perfsuite {result.test_type} test - run {result.run_id} (scenario {result.scenario})",
        f"target: {result.target.label}",
        f"{result.started_at} -> {result.stopped_at}"
        + (f"  ({summary.duration_s:.1f} s)" if summary.duration_s else ""),
        "",
    ]
    if summary.requests or result.endpoints:
        lines_ += [*_headline(summary), ""]
    if result.endpoints:
        headers = ["endpoint", "requests", *OUTCOMES[1:], "P50 ms", "P95 ms", "P99 ms", "max ms"]
        rows = [
            [
                f"{row.request_type} {row.name}",
                f"{row.count:,}",
                *(f"{getattr(row, name):,}" for name in OUTCOMES[1:]),
                _ms(row.p50_ms),
                _ms(row.p95_ms),
                _ms(row.p99_ms),
                _ms(row.max_ms),
            ]
            for row in result.endpoints
        ]
        lines_ += [*plain_table(table(headers, rows)), ""]
    for section in [*sections_of(result), *core_sections(result)]:
        lines_ += [*render_section(section), ""]
    lines_.append("thresholds")
    for check in result.checks:
        mark = "met " if check.met else "MISS"
        actual = "not measured" if check.actual is None else format_value(check.actual, check.unit)
        requirement = f" [{check.requirement}]" if check.requirement else ""
        far = " - missed by far" if check.missed_by_far else ""
        note = f" - {check.note}" if check.note else ""
        lines_.append(
            f"  [{mark}] {check.name}{requirement}: {actual} (target {check.comparison} "
            f"{format_value(check.target, check.unit)}){far}{note}"
        )
    for warning in result.warnings:
        lines_.append(f"warning: {warning}")
    met = sum(check.met for check in result.checks)
    status = {
        RunStatus.INTERRUPTED: " (interrupted: partial results)",
        RunStatus.TIMED_OUT: " (stopped at its time bound: partial results)",
    }.get(result.status, "")
    lines_ += ["", f"GRADE: {grade_label(result)}  ({met}/{len(result.checks)} thresholds met){status}"]
    return "\n".join(lines_)


__all__ = [
    "NOT_GRADED",
    "core_sections",
    "format_figure",
    "format_improvement",
    "grade_detail",
    "grade_label",
    "noise_line",
    "render",
    "render_comparison",
    "render_section",
    "verdict_text",
]
