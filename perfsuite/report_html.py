"""The HTML report: one self-contained file with charts, for people to see a run at a glance.

No network: styles, charts (inline SVG drawn here) and the little script (legend toggles, hover
read-outs, a self-check) are all inside the file; it opens from disk, from a CI artifact store or
an e-mail attachment alike. Charts:

- latency percentiles (P50/P95/P99) over time, per run (a baseline run dashed);
- throughput (requests/s) over time;
- errors (failures and backpressure per second) over time;
- on each time chart, stage marks as labelled vertical lines and fault windows shaded;
- for a comparison, before/after bars per metric with the seed target marked.

Every text that comes from data is escaped. The script only reads what the page holds.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perfsuite.grading import Check, format_value
from perfsuite.registry import sections_of
from perfsuite.report import (
    core_sections,
    format_figure,
    format_improvement,
    grade_detail,
    grade_label,
    noise_line,
    verdict_text,
)
from perfsuite.result import SCHEMA, RunResult
from perfsuite.sections import Line, Section


@dataclass(frozen=True, slots=True)
class ChartRun:
    """One run's time series as the charts draw it (intervals of ``window_s`` seconds)."""

    label: str
    role: str
    """``baseline`` (drawn dashed), ``current`` or ``run``."""
    window_s: int
    elapsed_s: list[float]
    """Start of each interval, seconds from the run's first interval."""
    p50_ms: list[float | None]
    p95_ms: list[float | None]
    p99_ms: list[float | None]
    rps: list[float]
    errors_per_s: list[float]
    """Requests not answered as expected (failures, backpressure) per second."""
    stages: list[tuple[float, str]]
    """(seconds from start, stage name)."""
    faults: list[tuple[float, float, str]]
    """(start, end, label) in seconds from start."""
    group: str = ""
    """Runs of one group (test type) share charts; several groups get a set of charts each."""
    unjudged_errors_per_s: list[float] | None = None
    """Failures of requests not judged (injected faults, our breaker's refusals) per second."""


WIDTH, HEIGHT = 920, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 28, 42
PERCENTILE_COLOURS = {"P50": "#2b8a3e", "P95": "#e67700", "P99": "#c92a2a"}
RUN_COLOURS = ["#1971c2", "#9c36b5", "#0c8599", "#5c940d", "#d9480f"]
BASELINE_COLOUR = "#868e96"
GRADE_COLOURS = {"EXCELLENT": "#2b8a3e", "GOOD": "#0c8599", "FAIR": "#e67700", "POOR": "#c92a2a"}

_E = html.escape


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``high``."""
    if not high or high <= 0 or not math.isfinite(high):
        return [0.0, 1.0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < high - 1e-12:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks per decade covering ``low`` .. ``high`` (both > 0)."""
    start = math.floor(math.log10(low))
    ticks: list[float] = []
    for decade in range(start, math.ceil(math.log10(high)) + 1):
        for mantissa in (1, 2, 5):
            value = float(mantissa * 10.0**decade)
            if value >= 10.0**start and (not ticks or ticks[-1] < high):
                ticks.append(round(value, 12))
    return ticks


def _tick_label(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


@dataclass(frozen=True, slots=True)
class _Series:
    key: str
    name: str
    colour: str
    dashed: bool
    xs: Sequence[float]
    ys: Sequence[float | None]


def _path(xs: Sequence[float], ys: Sequence[float | None], sx: Any, sy: Any) -> str:
    parts: list[str] = []
    pen_down = False
    for x, y in zip(xs, ys, strict=True):
        if y is None or not math.isfinite(y):
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{sx(x):.1f},{sy(y):.1f}")
        pen_down = True
    if len(parts) == 1:  # a single point: draw a tiny horizontal tick so it shows
        x_text, y_text = parts[0][1:].split(",")
        parts.append(f"L{float(x_text) + 2:.1f},{y_text}")
    return " ".join(parts)


def _line_chart(
    chart_id: str,
    title: str,
    y_label: str,
    series: Sequence[_Series],
    runs: Sequence[ChartRun],
    colours: Sequence[str],
    caption: str = "",
    log_scale: bool = False,
) -> tuple[str, dict[str, Any]]:
    """An SVG line chart with stage marks and fault windows; returns (html, data for the script).

    ``log_scale``: a logarithmic y axis (for latencies that span decades, e.g. legacy vs optimized).
    """
    x_max = max((max(s.xs, default=0.0) for s in series), default=0.0)
    x_max = max(x_max, max((run.elapsed_s[-1] + run.window_s for run in runs if run.elapsed_s), default=1.0))
    finite = [y for s in series for y in s.ys if y is not None and math.isfinite(y)]
    y_high = max(finite, default=0.0)
    positive = [y for y in finite if y > 0]
    if log_scale and positive:
        y_ticks = log_ticks(min(positive), y_high)
        low_log, high_log = math.log10(y_ticks[0]), math.log10(y_ticks[-1])
    else:
        log_scale = False
        y_ticks = nice_ticks(y_high * 1.05 if y_high else 1.0)
    x_ticks = nice_ticks(x_max, 8)
    y_top, x_top = y_ticks[-1], x_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + x / x_top * plot_w

    def sy(y: float) -> float:
        if log_scale:
            share = (math.log10(max(y, y_ticks[0])) - low_log) / ((high_log - low_log) or 1.0)
            return TOP + plot_h - share * plot_h
        return TOP + plot_h - y / y_top * plot_h

    out = [
        f'<svg class="chart" id="{chart_id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{_E(title)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{_E(title)}</title>",
    ]
    for run_index, run in enumerate(runs):
        for start, end, label in run.faults:
            x0, x1 = sx(max(start, 0.0)), sx(min(max(end, start), x_top))
            out.append(
                f'<rect class="fault" x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 1.0):.1f}" '
                f'height="{plot_h}">'
                f"<title>fault window: {_E(label)} ({start:g}-{end:g} s, {_E(run.label)})</title></rect>"
            )
            out.append(
                f'<text class="fault-label" x="{x0 + 3:.1f}" y="{TOP + 12 + 12 * run_index}">'
                f"{_E(label)}</text>"
            )
    for tick in y_ticks:
        y = sy(tick)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_tick_label(tick)}</text>'
        )
    for tick in x_ticks:
        x = sx(tick)
        out.append(
            f'<line class="tick-mark" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 4}"/>'
        )
        out.append(
            f'<text class="tick" x="{x:.1f}" y="{TOP + plot_h + 17}" text-anchor="middle">'
            f"{_tick_label(tick)}</text>"
        )
    out.append(
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}"/>'
        f'<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + plot_h}"/>'
        f'<text class="axis-label" x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle">'
        "seconds since the run's first request</text>"
        f'<text class="axis-label" transform="translate(14 {TOP + plot_h / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{_E(y_label)}{" (log scale)" if log_scale else ""}</text>'
    )
    for run_index, run in enumerate(runs):
        colour = colours[run_index]
        for at, name in run.stages:
            if at < 0 or at > x_top:
                continue
            x = sx(at)
            out.append(
                f'<line class="stage" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
                f'stroke="{colour}">'
                f"<title>stage {_E(name)} at {at:g} s ({_E(run.label)})</title></line>"
                f'<text class="stage-label" x="{x + 3:.1f}" y="{TOP + plot_h - 6 - 12 * run_index}" '
                f'fill="{colour}">{_E(name)}</text>'
            )
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        out.append(
            f'<path class="series" data-series="{_E(s.key)}" d="{_path(s.xs, s.ys, sx, sy)}" '
            f'stroke="{s.colour}"{dash}><title>{_E(s.name)}</title></path>'
        )
    out.append(
        f'<line class="cursor" x1="0" x2="0" y1="{TOP}" y2="{TOP + plot_h}" visibility="hidden"/>'
        f'<rect class="hover" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>'
        "</svg>"
    )
    legend = "".join(
        f'<button type="button" class="legend-item" data-chart="{chart_id}" data-series="{_E(s.key)}">'
        f'<span class="swatch{" dashed" if s.dashed else ""}" style="border-color:{s.colour}"></span>'
        f"{_E(s.name)}</button>"
        for s in series
    )
    data = {
        "log": log_scale,
        "xTop": x_top,
        "yTop": y_top,
        "plot": {"left": LEFT, "top": TOP, "width": plot_w, "height": plot_h},
        "unit": y_label,
        "series": [
            {"key": s.key, "name": s.name, "colour": s.colour, "xs": s.xs, "ys": s.ys} for s in series
        ],
    }
    block = (
        f'<figure class="chart-box"><figcaption>{_E(title)}</figcaption>'
        + (f'<p class="meta small">{caption}</p>' if caption else "")
        + f'<div class="legend">{legend}</div><div class="chart-wrap">{"".join(out)}'
        '<div class="tooltip" hidden></div></div></figure>'
    )
    return block, data


def _middles(run: ChartRun) -> list[float]:
    return [round(x + run.window_s / 2.0, 3) for x in run.elapsed_s]


def _run_colours(runs: Sequence[ChartRun]) -> list[str]:
    colours, next_colour = [], 0
    for run in runs:
        if run.role == "baseline":
            colours.append(BASELINE_COLOUR)
        else:
            colours.append(RUN_COLOURS[next_colour % len(RUN_COLOURS)])
            next_colour += 1
    return colours


def time_charts(runs: Sequence[ChartRun]) -> tuple[list[str], dict[str, Any]]:
    """The three time charts (latency percentiles, throughput, errors) and the script's data; one set
    per group of runs (test type) when there are several."""
    groups = list(dict.fromkeys(run.group for run in runs))
    if len(groups) <= 1:
        return _group_charts(runs, "", "")
    blocks: list[str] = []
    data: dict[str, Any] = {}
    for group in groups:
        more_blocks, more_data = _group_charts(
            [r for r in runs if r.group == group], f"-{group}", f" ({group})"
        )
        blocks += more_blocks
        data.update(more_data)
    return blocks, data


def _group_charts(
    runs: Sequence[ChartRun], id_suffix: str, title_suffix: str
) -> tuple[list[str], dict[str, Any]]:
    if not runs:
        return [], {}
    colours = _run_colours(runs)
    many = len(runs) > 1
    roles = [run.role for run in runs]
    names = [
        (role if roles.count(role) == 1 else f"{role} {roles[: i + 1].count(role)}") if many else ""
        for i, role in enumerate(roles)
    ]
    caption = (
        "<br>".join(
            f'<span class="swatch{" dashed" if run.role == "baseline" else ""}" '
            f'style="border-color:{colours[i]}"></span><b>{_E(names[i])}</b>: {_E(run.label)}'
            for i, run in enumerate(runs)
        )
        if many
        else _E(runs[0].label)
    )
    latency: list[_Series] = []
    throughput: list[_Series] = []
    errors: list[_Series] = []
    for index, run in enumerate(runs):
        prefix = f"{names[index]} " if many else ""
        dashed = run.role == "baseline"
        xs = _middles(run)
        for name, values in (("P50", run.p50_ms), ("P95", run.p95_ms), ("P99", run.p99_ms)):
            colour = PERCENTILE_COLOURS[name]
            latency.append(_Series(f"r{index}-{name}", f"{prefix}{name}", colour, dashed, xs, values))
        rps = run.rps
        throughput.append(_Series(f"r{index}-rps", f"{prefix}requests/s", colours[index], dashed, xs, rps))
        error_colour = BASELINE_COLOUR if dashed else "#c92a2a"
        error_values = run.errors_per_s
        errors.append(_Series(f"r{index}-err", f"{prefix}errors/s", error_colour, dashed, xs, error_values))
        if run.unjudged_errors_per_s is not None:
            unjudged_colour = BASELINE_COLOUR if dashed else "#e67700"
            label = f"{prefix}not judged (injected faults, refusals)/s"
            errors.append(
                _Series(f"r{index}-unjudged", label, unjudged_colour, dashed, xs, run.unjudged_errors_per_s)
            )
    positive = [y for s in latency for y in s.ys if y is not None and y > 0]
    spread = max(positive) / min(positive) if positive else 1.0
    blocks, data = [], {}
    for chart_id, title, unit, series, log_scale in (
        ("chart-latency", "Latency percentiles over time", "ms", latency, spread > 30),
        ("chart-throughput", "Throughput over time", "requests/s", throughput, False),
        ("chart-errors", "Errors over time (failures and backpressure)", "errors/s", errors, False),
    ):
        chart_id += id_suffix
        title += title_suffix
        block, chart_data = _line_chart(chart_id, title, unit, series, runs, colours, caption, log_scale)
        blocks.append(block)
        data[chart_id] = chart_data
    return blocks, data


def before_after_chart(metrics: Sequence[Mapping[str, Any]]) -> str:
    """Horizontal before/after bars per metric (each metric on its own scale), target marked."""
    rows = [m for m in metrics if m.get("baseline") is not None and m.get("current") is not None]
    if not rows:
        return ""
    row_h, label_w, value_w = 46, 250, 130
    height = TOP + row_h * len(rows) + 8
    bar_w = WIDTH - LEFT - label_w - value_w
    out = [
        f'<svg class="chart bars" id="chart-before-after" viewBox="0 0 {WIDTH} {height}" role="img" '
        'aria-label="Before and after per metric">',
        "<title>Before and after per metric</title>",
    ]
    x0 = LEFT + label_w - 40
    for i, metric in enumerate(rows):
        unit = str(metric["unit"])
        values = [float(metric["baseline"]), float(metric["current"])]
        target = metric.get("target")
        scale_top = max([*values, float(target) if target is not None else 0.0]) * 1.1 or 1.0
        y = TOP + i * row_h
        out.append(
            f'<text class="bar-label" x="{x0 - 10}" y="{y + 20}" text-anchor="end">'
            f"{_E(str(metric['label']))}</text>"
        )
        improvement = metric.get("improvement")
        better = improvement is not None and improvement > 0
        current_colour = (
            "#2b8a3e" if better else "#c92a2a" if improvement is not None and improvement < 0 else "#1971c2"
        )
        for j, (value, colour, name) in enumerate(
            ((values[0], BASELINE_COLOUR, "baseline"), (values[1], current_colour, "current"))
        ):
            width = max(value / scale_top * bar_w, 1.0)
            by = y + 4 + j * 17
            out.append(
                f'<rect class="bar" data-series="{name}" x="{x0}" y="{by}" width="{width:.1f}" height="14" '
                f'fill="{colour}"><title>{_E(name)}: {_E(format_figure(value, unit))}</title></rect>'
                f'<text class="bar-value" x="{x0 + width + 6:.1f}" y="{by + 11}">{_E(name)} '
                f"{_E(format_figure(value, unit))}</text>"
            )
        if target is not None:
            tx = x0 + float(target) / scale_top * bar_w
            out.append(
                f'<line class="target" x1="{tx:.1f}" x2="{tx:.1f}" y1="{y + 1}" y2="{y + 40}">'
                f"<title>seed target {_E(str(metric.get('comparison') or ''))} "
                f"{_E(format_figure(target, unit))}</title></line>"
            )
        if improvement is not None:
            out.append(
                f'<text class="bar-improvement" x="{x0 - 10}" y="{y + 36}" text-anchor="end">'
                f"{_E(format_improvement(improvement, unit))}</text>"
            )
    out.append("</svg>")
    with_targets = any(metric.get("target") is not None for metric in rows)
    legend = (
        '<div class="legend static"><span class="swatch solid" style="border-color:#868e96"></span>baseline '
        '<span class="swatch solid" style="border-color:#2b8a3e"></span>current, better '
        '<span class="swatch solid" style="border-color:#c92a2a"></span>current, worse'
        + (' <span class="swatch target"></span>seed target' if with_targets else "")
        + "</div>"
    )
    return (
        '<figure class="chart-box">'
        "<figcaption>Before / after per metric (each row on its own scale)</figcaption>"
        f'{legend}<div class="chart-wrap">{"".join(out)}</div></figure>'
    )


# ---------------------------------------------------------------------- tables


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{_E(h)}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{classes[index]}"' if index < len(classes) and classes[index] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _checks_table(checks: Sequence[Check]) -> str:
    rows, classes = [], []
    for check in checks:
        actual = "not measured" if check.actual is None else format_value(check.actual, check.unit)
        rows.append(
            [
                '<span class="met">met</span>' if check.met else '<span class="miss">MISS</span>',
                _E(check.name) + (' <span class="critical">critical</span>' if check.critical else ""),
                _E(check.requirement or "-"),
                _E(actual),
                _E(f"{check.comparison} {format_value(check.target, check.unit)}"),
                _E(check.note),
            ]
        )
        classes.append("" if check.met else "row-miss")
    return _table(["", "check", "req", "actual", "target", "detail"], rows, classes)


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.1f}"


def _line_html(line: Line) -> str:
    css = {"ok": "met", "warn": "warning", "bad": "miss"}.get(line.tone, "")
    return f'<p class="line {css}">{_E(line.text)}</p>'


def section_html(section: Section) -> str:
    """One report section (the same the terminal report prints) as HTML."""
    parts = [f'<h3 id="section-{_E(section.key)}">{_E(section.title)}</h3>']
    parts += [_line_html(line) for line in section.lines]
    if section.table is not None:
        rows = [[_E(cell) for cell in row] for row in section.table.rows]
        parts.append(_table(section.table.headers, rows))
    parts += [_line_html(line) for line in section.after]
    return f'<div class="section" data-key="{_E(section.key)}">' + "".join(parts) + "</div>"


def _job_section(result: RunResult) -> str:
    summary = result.summary
    cards = [
        ("requests", f"{summary.requests:,}"),
        ("throughput", f"{summary.rps or 0:,.1f} req/s"),
        ("P50", f"{_ms(summary.p50_ms)} ms"),
        ("P95", f"{_ms(summary.p95_ms)} ms"),
        ("P99", f"{_ms(summary.p99_ms)} ms"),
        ("success rate", "-" if summary.success_rate is None else f"{summary.success_rate * 100:.2f}%"),
    ]
    cards += [(name, f"{getattr(summary, name):,}") for name in ("rejected", "backpressure", "failure")]
    cards += [(why.replace("_", " "), f"{count:,}") for why, count in summary.excluded.items() if count]
    parts = [
        f'<section class="job"><h2>{_E(result.test_type)} run {_E(result.run_id)} '
        f'<span class="grade small" style="background:{_grade_colour(result)}">'
        f"{grade_label(result)}</span></h2>",
        f'<p class="meta">scenario {_E(result.scenario)} · target {_E(result.target.label)} · '
        f"{_E(result.started_at)} → {_E(result.stopped_at)}</p>",
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="k">{_E(k)}</div><div class="v">{_E(v)}</div></div>'
            for k, v in cards
        )
        + "</div>",
    ]
    if result.endpoints:
        rows = [
            [
                _E(f"{row.request_type} {row.name}"),
                f"{row.count:,}",
                f"{row.rejected:,}",
                f"{row.backpressure:,}",
                f"{row.failure:,}",
                _ms(row.p50_ms),
                _ms(row.p95_ms),
                _ms(row.p99_ms),
                _ms(row.max_ms),
            ]
            for row in result.endpoints
        ]
        headers = [
            "endpoint",
            "requests",
            "rejected",
            "backpressure",
            "failure",
            "P50 ms",
            "P95 ms",
            "P99 ms",
        ]
        parts.append("<h3>Endpoints</h3>" + _table([*headers, "max ms"], rows))
    for section in [*sections_of(result), *core_sections(result)]:
        parts.append(section_html(section))
    if result.checks:
        met = sum(check.met for check in result.checks)
        parts.append(f"<h3>Thresholds ({met}/{len(result.checks)} met)</h3>" + _checks_table(result.checks))
    for warning in result.warnings:
        parts.append(f'<p class="warning">warning: {_E(warning)}</p>')
    parts.append("</section>")
    return "".join(parts)


def _comparison_section(document: Mapping[str, Any]) -> str:
    """The comparison block: against the seed, its columns and the requirement table; against
    your own runs, your figures and the between-run verdicts only (as the terminal shows)."""
    baseline, current = document["baseline"], document["current"]
    seed = baseline.get("kind") == "seed"
    if seed:
        headers = ["metric", "req", "seed before", "current", "improvement", "expected", "seed target", "met"]
    else:
        headers = ["metric", "baseline", "current", "improvement", "run-to-run verdict"]
    rows, classes = [], []
    for metric in document["metrics"]:
        unit = metric["unit"]
        current_text = (
            metric["status"] if metric["status"] != "measured" else format_figure(metric["current"], unit)
        )
        difference = metric.get("difference")
        if seed:
            target = (
                "-"
                if metric["target"] is None
                else f"{metric['comparison']} {format_figure(metric['target'], unit)}"
            )
            met = (
                "-"
                if metric["met"] is None
                else ('<span class="met">yes</span>' if metric["met"] else '<span class="miss">NO</span>')
            )
            cells = [
                _E(metric["label"]),
                _E(metric["requirement"]),
                _E(format_figure(metric["baseline"], unit)),
                _E(current_text),
                _E(format_improvement(metric["improvement"], unit)),
                _E(format_improvement(metric["expected_improvement"], unit)),
                _E(target),
                met,
            ]
        else:
            cells = [
                _E(metric["label"]),
                _E(format_figure(metric["baseline"], unit)),
                _E(current_text),
                _E(format_improvement(metric["improvement"], unit)),
            ]
            if difference:
                css = {"regression": "miss", "improvement": "met"}.get(difference["verdict"], "neutral")
                cells.append(
                    f'<span class="{css}">{_E(verdict_text(metric))}</span>'
                    f"<br><small>{_E(difference['reason'])}</small>"
                )
            else:
                cells.append("-")
        rows.append(cells)
        regression = bool(difference and difference["verdict"] == "regression")
        classes.append("row-miss" if metric["met"] is False or regression else "")
    checks = [Check.from_dict(check) for check in document["checks"]]
    grade = document["grade"]
    parts = [
        '<section class="comparison"><h2>Comparison '
        f'<span class="grade small" style="background:{GRADE_COLOURS[grade]}">{grade}</span></h2>',
        f'<p class="meta"><b>baseline</b>: {_E(baseline["label"])}<br>'
        f"<b>current</b>: {_E(current['label'])}</p>",
    ]
    if not seed:
        parts.append(f'<p class="meta"><b>noise</b>: {_E(noise_line(document))}</p>')
    parts += [
        f'<p class="meta">{_E(grade_detail(document).replace("; ", " · "))}</p>',
        before_after_chart(document["metrics"]),
        "<h3>Metrics</h3>" + _table(headers, rows, classes),
    ]
    if seed:
        requirement_rows = [
            [
                _E(r["id"]),
                {"met": '<span class="met">met</span>', "not met": '<span class="miss">not met</span>'}.get(
                    r["status"], '<span class="neutral">not measured</span>'
                ),
                f"{r['met']}/{r['total']}" if r["total"] else "-",
                _E(r["title"]),
                _E(f"{r['component']}: {r['validation']}"),
                _E("; ".join(r.get("unmet", []))),
            ]
            for r in document["requirements"]
        ]
        parts.append(
            "<h3>Target achievement per requirement (the seed's mapping)</h3>"
            + _table(["req", "status", "met", "requirement", "validated by", "not met"], requirement_rows)
        )
    parts.append("<h3>Comparison checks</h3>" + _checks_table(checks))
    for warning in document.get("warnings", []):
        parts.append(f'<p class="warning">warning: {_E(warning)}</p>')
    parts.append("</section>")
    return "".join(parts)


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#212529;
  background:#f8f9fa}
main{max-width:1000px;margin:0 auto;padding:20px}
header{display:flex;align-items:center;gap:16px;flex-wrap:wrap}
h1{font-size:22px;margin:8px 0}
h2{font-size:18px;margin:24px 0 6px}
h3{font-size:15px;margin:18px 0 6px}
.grade{color:#fff;font-weight:700;padding:6px 14px;border-radius:6px;font-size:18px}
.grade.small{font-size:12px;padding:2px 8px;vertical-align:middle}
.meta{color:#495057;margin:4px 0}.meta.small{font-size:12px}
.cards{display:flex;gap:10px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #dee2e6;border-radius:6px;padding:8px 12px;min-width:110px}
.card .k{color:#868e96;font-size:12px}
.card .v{font-size:17px;font-weight:600}
section{background:#fff;border:1px solid #dee2e6;border-radius:8px;padding:4px 16px 14px;margin:16px 0}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e9ecef;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f1f3f5}
tr.row-miss td{background:#fff5f5}
.met{color:#2b8a3e;font-weight:600}
.miss{color:#c92a2a;font-weight:700}
.neutral{color:#868e96}
.critical{font-size:11px;color:#c92a2a;border:1px solid #ffc9c9;border-radius:3px;padding:0 3px}
.warning{color:#e67700}
.line{margin:2px 0;font-family:ui-monospace,monospace;font-size:12.5px;white-space:pre-wrap}
figure.chart-box{margin:12px 0}
figcaption{font-weight:600;margin-bottom:4px}
.chart-wrap{position:relative}
svg.chart{width:100%;height:auto;background:#fff;display:block}
svg .series{fill:none;stroke-width:1.8}
svg .grid{stroke:#f1f3f5}
svg .axis{stroke:#adb5bd}
svg .tick-mark{stroke:#adb5bd}
svg text{font-size:11px;fill:#495057}
svg .axis-label{font-size:12px;fill:#868e96}
svg .stage{stroke-dasharray:3 3;stroke-width:1}
svg .stage-label{font-size:10px}
svg .fault{fill:#fa5252;fill-opacity:.13}
svg .fault-label{font-size:10px;fill:#c92a2a}
svg .hover{fill:transparent}
svg .cursor{stroke:#495057;stroke-width:1}
svg .target{stroke:#212529;stroke-width:2;stroke-dasharray:4 2}
svg .bar-label{font-size:12px;fill:#212529}
svg .bar-improvement{font-size:11px;fill:#495057}
.legend{display:flex;flex-wrap:wrap;gap:4px 10px;margin:2px 0 4px}
.legend.static{font-size:12px;gap:4px;align-items:center}
.legend-item{background:none;border:1px solid transparent;border-radius:4px;cursor:pointer;font:inherit;
  font-size:12px;padding:1px 4px}
.legend-item.off{opacity:.35;text-decoration:line-through}
.swatch{display:inline-block;width:18px;height:0;border-top:3px solid;margin-right:5px;
  vertical-align:middle}
.swatch.dashed{border-top-style:dashed}
.swatch.target{border-top:2px dashed #212529}
.tooltip{position:absolute;pointer-events:none;background:rgba(33,37,41,.92);color:#fff;font-size:12px;
  padding:6px 8px;border-radius:4px;white-space:nowrap}
footer{color:#868e96;font-size:12px;margin:20px 0}
"""

SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chart-data").textContent || "{}");
  document.querySelectorAll(".legend-item").forEach(function (button) {
    button.addEventListener("click", function () {
      var svg = document.getElementById(button.dataset.chart);
      var off = button.classList.toggle("off");
      svg.querySelectorAll('[data-series="' + button.dataset.series + '"]').forEach(function (el) {
        el.style.display = off ? "none" : "";
      });
    });
  });
  function fmt(v) {
    return v === null || v === undefined ? "-" : (Math.round(v * 100) / 100).toLocaleString();
  }
  Object.keys(data).forEach(function (id) {
    var svg = document.getElementById(id), chart = data[id];
    if (!svg) { return; }
    var tip = svg.parentNode.querySelector(".tooltip"), cursor = svg.querySelector(".cursor");
    var hover = svg.querySelector(".hover");
    hover.addEventListener("mousemove", function (event) {
      var point = svg.createSVGPoint();
      point.x = event.clientX; point.y = event.clientY;
      var local = point.matrixTransform(svg.getScreenCTM().inverse());
      var x = (local.x - chart.plot.left) / chart.plot.width * chart.xTop;
      var lines = [];
      chart.series.forEach(function (s) {
        var best = -1, gap = Infinity;
        s.xs.forEach(function (sx, i) {
          var d = Math.abs(sx - x);
          if (d < gap) { gap = d; best = i; }
        });
        if (best >= 0) { lines.push(s.name + ": " + fmt(s.ys[best]) + " " + chart.unit); }
      });
      cursor.setAttribute("x1", local.x); cursor.setAttribute("x2", local.x);
      cursor.setAttribute("visibility", "visible");
      tip.textContent = "t = " + fmt(x) + " s\\n" + lines.join("\\n");
      tip.style.whiteSpace = "pre";
      tip.hidden = false;
      var box = svg.getBoundingClientRect();
      tip.style.left = Math.min(event.clientX - box.left + 12, box.width - 220) + "px";
      tip.style.top = (event.clientY - box.top + 12) + "px";
    });
    hover.addEventListener("mouseleave", function () {
      tip.hidden = true;
      cursor.setAttribute("visibility", "hidden");
    });
  });
  var charts = document.querySelectorAll("svg.chart"), drawn = 0;
  charts.forEach(function (svg) {
    var marks = svg.querySelectorAll("path.series, rect.bar"), visible = 0;
    marks.forEach(function (el) {
      var b = el.getBBox();
      if (b.width > 0 || b.height > 0) { visible += 1; }
    });
    svg.dataset.drawn = String(visible);
    if (visible > 0) { drawn += 1; }
  });
  document.body.dataset.charts = String(charts.length);
  document.body.dataset.chartsDrawn = String(drawn);
})();
"""


def _grade_colour(result: RunResult) -> str:
    return GRADE_COLOURS.get(grade_label(result), "#868e96")


def render_html(result: RunResult, charts: Sequence[ChartRun] = ()) -> str:
    """The report of ``result`` as one self-contained HTML page (``charts``: time series to draw)."""
    comparison = result.comparison
    if result.test_type == "baseline" and comparison:
        title = "perfsuite comparison"
        subtitle = f"{comparison['baseline']['label']} → {comparison['current']['label']}"
    else:
        title = f"perfsuite {result.test_type} report"
        subtitle = f"run {result.run_id} · scenario {result.scenario}"
    blocks, data = time_charts(charts)
    body = [
        f"<header><h1>{_E(title)}</h1>"
        f'<span class="grade" style="background:{_grade_colour(result)}">'
        f'{grade_label(result)}</span><span class="meta">exit code {result.exit_code}</span></header>',
        f'<p class="meta">{_E(subtitle)}</p>',
    ]
    if blocks:
        body.append('<section class="charts"><h2>Over time</h2>' + "".join(blocks) + "</section>")
    if comparison:
        body.append(_comparison_section(comparison))
    for part in result.parts:
        body.append(_job_section(part))
    if result.test_type != "baseline" and not result.parts:
        body.append(_job_section(result))
    elif result.test_type != "baseline":
        for warning in result.warnings:
            body.append(f'<p class="warning">warning: {_E(warning)}</p>')
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_E(title)} - {_E(grade_label(result))}</title><style>{STYLE}</style></head>"
        f"<body><main>{''.join(body)}"
        f"<footer>perfsuite · schema {SCHEMA} · self-contained: no external resources</footer></main>"
        f'<script type="application/json" id="chart-data">{payload}</script>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


__all__ = ["ChartRun", "before_after_chart", "nice_ticks", "render_html", "time_charts"]
