"""The capacity test's report blocks (drawn by the terminal and the HTML report alike): the steps with
the capacity and knee lines, resources per step, outages, alerts, the backlog after the load."""

from __future__ import annotations

from capacity.figures import Capacity, CapacityFigures, Knee, Outage, OutageBacklog, Resources, Step
from perfsuite.backlog import describe_backlog
from perfsuite.sections import Line, Section, Tone, lines, ms, table


def _load(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}" if float(value).is_integer() else f"{value:,.1f} {unit}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def capacity_line(capacity: Capacity, figures: CapacityFigures) -> Line:
    """The capacity sentence (see :mod:`capacity.steps` for the rule)."""
    unit = figures.unit
    slos = f"P95 <= {figures.slo_p95_ms:g} ms and success >= {figures.slo_success_rate * 100:g}%"
    if not capacity.measured:
        return Line("capacity: not measured (no step ran)", "bad")
    if capacity.step is None:
        first = figures.steps[0]
        return Line(
            f"capacity: below the first step: step 1 ({_load(first.load, unit)}) already missed {slos}", "bad"
        )
    value = _load(capacity.value, unit)
    if capacity.limited_by_generator:
        return Line(
            f"capacity: at least {value} (limited by the generator: our load generator saturated, "
            "so the bot was not pushed to its limit; add --workers or another machine)",
            "warn",
        )
    if capacity.first_failing_step is None:
        return Line(f"capacity: at least {value}: every step met {slos} (the limit lies beyond them)", "ok")
    return Line(
        f"capacity: {value} (step {capacity.step}, the highest step meeting {slos}; step "
        f"{capacity.first_failing_step} missed them)",
        "ok",
    )


def knee_line(knee: Knee | None, unit: str) -> Line:
    """Where throughput stopped following the load while latency climbed."""
    if knee is None:
        return Line("knee: none (throughput kept following the load, or latency did not climb)")
    mine = " (our generator saturated there: the bend may be ours)" if knee.generator_saturated else ""
    return Line(
        f"knee: step {knee.step} ({_load(knee.load, unit)}): load +{knee.load_growth * 100:.0f}%, "
        f"throughput {knee.throughput_growth * 100:+.0f}%, P95 {knee.p95_before_ms:,.1f} -> "
        f"{knee.p95_after_ms:,.1f} ms{mine}",
        "warn" if knee.generator_saturated else "",
    )


def _verdict(step: Step) -> str:
    verdict = "meets" if step.meets_slo else "misses: " + "; ".join(step.slo_misses)
    return verdict + (" [generator saturated]" if step.generator_saturated else "")


def steps_section(figures: CapacityFigures) -> Section:
    """The per-step table, the capacity and the knee."""
    unit = figures.unit
    rows = [
        [
            str(step.index),
            _load(step.load, "").strip(),
            f"{step.requests:,}",
            f"{step.throughput_rps:,.1f}",
            f"{step.good_rps:,.1f}",
            ms(step.p50_ms),
            ms(step.p95_ms),
            ms(step.p99_ms),
            _share(step.success_rate),
            f"{step.success}/{step.rejected}/{step.backpressure}/{step.failure}",
            "-" if step.queue_growth_per_s is None else f"{step.queue_growth_per_s:+,.0f}",
            _verdict(step),
        ]
        for step in figures.steps
    ]
    after: list[str | Line] = [capacity_line(figures.capacity, figures), knee_line(figures.knee, unit)]
    if figures.stopped_early:
        after.append(Line(f"progression stopped: {figures.stopped_early}", "warn"))
    for step in figures.steps:
        if step.generator_note:
            after.append(Line(f"step {step.index}: {step.generator_note}", "warn"))
    model = (
        "closed model: concurrent users" if figures.model == "closed" else "open model: arrivals per second"
    )
    return Section(
        f"capacity steps ({model}; {len(figures.steps)} of {figures.planned_steps} steps ran; SLOs: "
        f"P95 <= {figures.slo_p95_ms:g} ms, success >= {figures.slo_success_rate * 100:g}%)",
        table=table(
            [
                "step",
                unit,
                "requests",
                "req/s",
                "good/s",
                "P50 ms",
                "P95 ms",
                "P99 ms",
                "success",
                "ok/rej/429-503/fail",
                "queue/s",
                "verdict",
            ],
            rows,
            left=(11,),
        ),
        after=lines(*after),
        key="capacity",
    )


def _resources_row(label: str, usage: Resources) -> list[str]:
    pool = (
        f"{usage.pool_in_use_max}/{usage.pool_max}"
        if usage.pool_in_use_max is not None and usage.pool_max
        else ("-" if usage.pool_in_use_max is None else str(usage.pool_in_use_max))
    )
    return [
        label,
        f"{_percent(usage.bot_cpu_mean_percent)} / {_percent(usage.bot_cpu_max_percent)}",
        "-" if usage.bot_rss_max_mb is None else f"{usage.bot_rss_max_mb:,.0f}",
        _percent(usage.generator_cpu_max_percent),
        "-" if usage.generator_lag_max_ms is None else f"{usage.generator_lag_max_ms:,.0f}",
        f"{_percent(usage.machine_cpu_mean_percent)} / {_percent(usage.machine_cpu_max_percent)}",
        _percent(usage.machine_memory_max_percent),
        pool,
        "-" if usage.queue_depth_max is None else f"{usage.queue_depth_max:,}",
    ]


def resources_section(figures: CapacityFigures) -> Section:
    """CPU, memory, pool and queue per step and over the whole run."""
    rows = [_resources_row(f"step {step.index}", step.resources) for step in figures.steps]
    rows.append(_resources_row("whole run", figures.resources))
    pool = figures.pool
    after: list[str | Line] = []
    if pool.peak_utilization is not None:
        at_capacity = (
            f"; at the capacity step {pool.capacity_step_utilization * 100:.0f}%"
            if pool.capacity_step_utilization is not None
            else ""
        )
        after.append(
            f"bot connection pool (5.2): peak {pool.peak_in_use} of {pool.max} "
            f"({pool.peak_utilization * 100:.0f}%){at_capacity}"
        )
    elif pool.peak_in_use is not None:
        after.append(f"bot connections (5.2): peak {pool.peak_in_use} open at once (no pool bound stated)")
    else:
        after.append("bot connection pool (5.2): not measured (its /health states no pool)")
    for generator in figures.generators:
        after.append(
            f"generator {generator.process}: CPU mean {_percent(generator.cpu_mean_percent)}, max "
            f"{_percent(generator.cpu_max_percent)}, event-loop lag max {generator.lag_max_ms or 0:,.0f} ms, "
            f"{generator.rss_max_mb or 0:,.0f} MB ({generator.samples} samples)"
        )
    usage = figures.resources
    if usage.bot_cpu_max_percent is None:
        after.append(Line("bot process not sampled (it does not run on this machine, or is unknown)", "warn"))
    return Section(
        f"resources per step (CPU: bot and generator 100% = one core, machine 100% = all; "
        f"{usage.generator_processes} generator process(es))",
        table=table(
            [
                "",
                "bot CPU mean/max",
                "bot MB",
                "gen CPU max",
                "gen lag ms",
                "machine CPU mean/max",
                "memory",
                "pool",
                "queue",
            ],
            rows,
        ),
        after=lines(*after),
        key="resources",
    )


def _backlog_text(backlog: OutageBacklog) -> str:
    if backlog.before is None and backlog.peak_during is None and backlog.peak_after is None:
        return "-"
    shown = [
        str(value if value is not None else "-")
        for value in (backlog.before, backlog.peak_during, backlog.at_end)
    ]
    return " -> ".join(shown)


def _recovery_text(outage: Outage) -> str:
    if outage.recovered is None:
        return "not measured"
    if not outage.recovered:
        return f"not within {outage.observed_s or 0:g} s"
    return f"{outage.recovery_s:g} s"


def outages_section(figures: CapacityFigures) -> Section | None:
    """Every fault window: success and P95 during it, recovery, backlog; or why it did not run."""
    if not figures.outages:
        return None
    ran = [outage for outage in figures.outages if outage.status == "run"]
    rows = [
        [
            outage.name,
            f"{outage.driver} -> {outage.target}",
            f"+{outage.at_s:g} s" if outage.at_s is not None else "-",
            f"{outage.duration_s:g} s" if outage.duration_s is not None else "-",
            f"{outage.requests:,}",
            _share(outage.success_rate),
            ms(outage.p95_ms),
            _recovery_text(outage),
            _backlog_text(outage.backlog),
        ]
        for outage in ran
    ]
    after: list[str | Line] = []
    if ran:
        first = ran[0]
        load = f" at {_load(figures.outage_load, figures.unit)}" if figures.outage_load is not None else ""
        after.append(
            f"pre-fault reference{load}: success {_share(first.reference_success_rate)}, P95 "
            f"{ms(first.reference_p95_ms)} ms; backlog = the bot's queue before -> peak during -> at the end "
            "of the recovery watch"
        )
    for outage in ran:
        if outage.bot_said:
            after.append(f"{outage.name}: the bot's /health said {', '.join(outage.bot_said)}")
        if outage.backlog.drained_after_s is not None and (outage.backlog.peak_during or 0) > (
            outage.backlog.before or 0
        ):
            after.append(
                f"{outage.name}: the queue was back to its pre-fault depth "
                f"{outage.backlog.drained_after_s:g} s after the heal"
            )
        if outage.error:
            after.append(Line(f"{outage.name}: healing reported: {outage.error}", "warn"))
    for outage in figures.outages:
        if outage.status == "run":
            continue
        tone: Tone = "bad" if outage.status == "failed" else ("warn" if outage.status == "not run" else "")
        detail = outage.error or outage.reason or ""
        after.append(
            Line(f"{outage.name} ({outage.driver} -> {outage.target}): {outage.status}: {detail}", tone)
        )
    return Section(
        "outages (real faults of the bot's dependencies; success = answered as intended)",
        table=table(
            ["window", "fault", "at", "for", "requests", "success", "P95 ms", "recovery", "backlog"],
            rows,
            left=(0, 1, 7, 8),
        )
        if rows
        else None,
        after=lines(*after),
        key="outages",
    )


def alerts_section(figures: CapacityFigures) -> Section:
    """Every live alert with its times (4.3)."""
    if not figures.alerts:
        return Section("alerts (4.3)", lines=lines(Line("no alert fired", "ok")), key="alerts")

    def value(number: float | None, unit: str) -> str:
        if number is None:
            return "-"
        if unit == "ms":
            return f"{number:,.0f} ms"
        if unit == "share":
            return f"{number * 100:.0f}%"
        return f"{number:.0f}%"

    rows = [
        [
            f"+{alert.at_s:g} s",
            alert.severity,
            alert.what or alert.alert,
            value(alert.value, alert.unit),
            value(alert.peak, alert.unit),
            value(alert.limit, alert.unit),
            "still on at the end" if alert.cleared_at_s is None else f"+{alert.cleared_at_s:g} s",
            "ABORTED THE RUN" if alert.aborted else "",
        ]
        for alert in figures.alerts
    ]
    critical = sum(1 for alert in figures.alerts if alert.severity == "critical")
    head = Line(
        f"{len(figures.alerts)} alert(s) fired, {critical} critical",
        "bad" if critical or figures.aborted_by else "warn",
    )
    return Section(
        "alerts (4.3, live: printed as they fired)",
        lines=(head,),
        table=table(
            ["fired", "severity", "what", "value", "worst", "limit", "cleared", ""], rows, left=(1, 2, 6, 7)
        ),
        key="alerts",
    )


def backlog_section(figures: CapacityFigures) -> Section:
    """The bot's queue after the load."""
    return Section("backlog after the load", lines=tuple(describe_backlog(figures.backlog)), key="backlog")


def capacity_sections(figures: CapacityFigures) -> list[Section]:
    """Every capacity block, in report order."""
    found = [
        steps_section(figures),
        outages_section(figures),
        alerts_section(figures),
        resources_section(figures),
        backlog_section(figures),
    ]
    return [section for section in found if section is not None]


__all__ = [
    "alerts_section",
    "backlog_section",
    "capacity_line",
    "capacity_sections",
    "knee_line",
    "outages_section",
    "resources_section",
    "steps_section",
]
