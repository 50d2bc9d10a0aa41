"""The webhook test's report blocks (drawn by the terminal and the HTML report alike)."""

from __future__ import annotations

from perfsuite.backlog import describe_backlog
from perfsuite.sections import Line, Section, lines, ms, table
from webhook_load.figures import Arrival, Latency, Percentiles, WebhookFigures

PERCENTILE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("P50", "p50_ms"),
    ("P90", "p90_ms"),
    ("P95", "p95_ms"),
    ("P99", "p99_ms"),
    ("P99.9", "p99_9_ms"),
    ("max", "max_ms"),
)


def timings_section(figures: WebhookFigures) -> Section | None:
    """The timing breakdown (4.1): time to first byte and the bot's Server-Timing phases."""
    if not figures.timings:
        return None
    rows = [
        [metric, f"{t.count:,}", ms(t.avg_ms), ms(t.p50_ms), ms(t.p95_ms), ms(t.p99_ms)]
        for metric, t in figures.timings.items()
    ]
    return Section(
        "timing breakdown (4.1)",
        table=table(["phase", "samples", "avg ms", "P50", "P95", "P99"], rows),
        key="timings",
    )


def _percentile_row(label: str, count: int | None, figures: Percentiles | None) -> list[str]:
    values = [None if figures is None else getattr(figures, key) for _, key in PERCENTILE_COLUMNS]
    return [label, "-" if count is None else f"{count:,}", *(ms(value) for value in values)]


def _arrival_lines(arrival: Arrival) -> list[str]:
    ramp = f" -> {arrival.ramp_to_rate_per_s:g}/s" if arrival.ramp_to_rate_per_s else ""
    lag = arrival.start_lag_ms
    p50, p99, worst = (None, None, None) if lag is None else (lag.p50, lag.p99, lag.max)
    return [
        f"arrivals: {arrival.planned:,.0f} planned at {arrival.rate_per_s:g}/s{ramp} "
        f"({arrival.distribution}, "
        f"{arrival.duration_s:g} s, {arrival.processes} process(es)): {arrival.scheduled:,} scheduled, "
        f"{arrival.sent:,} sent, {arrival.late:,} late (> {arrival.late_after_ms:g} ms), "
        f"{arrival.waited:,} waited for a slot, {arrival.dropped:,} dropped, {arrival.unsent:,} unsent",
        f"start lag ms: P50 {ms(p50)}  P99 {ms(p99)}  max {ms(worst)}   "
        f"(in flight at most {arrival.max_in_flight:,} of "
        f"{arrival.max_concurrency:,} per process; waiting at most {arrival.max_waiting:,})",
    ]


def latency_section(latency: Latency, arrival: Arrival | None) -> Section:
    """Latency of every request as the summary shows it, the corrected figures and the measured ones
    of the same requests (each row names its requests and their number), the generator's health
    and the trust verdict."""
    measured = latency.uncorrected
    count = measured.count if measured is not None else None
    everything = latency.all_requests
    total = everything.count if everything is not None else None
    if latency.model == "open":
        title = "latency (open model: no coordinated omission, every request timed from its intended start)"
        rows = [
            _percentile_row("corrected: from the intended start", count, latency.corrected),
            _percentile_row("uncorrected: from the actual send", count, measured),
        ]
    elif latency.correction == "hdr-expected-interval":
        title = (
            f"latency (closed model; steady stage corrected with HDR's expected interval "
            f"{latency.expected_interval_ms or 0:.1f} ms = mean think time + median response time)"
        )
        rows = [
            _percentile_row("all requests, as measured (the summary)", total, everything),
            _percentile_row("steady stage, as measured", count, measured),
            _percentile_row("steady stage, corrected", count, latency.corrected),
        ]
    else:
        title = "latency (closed model, no pacing interval: not corrected)"
        rows = [_percentile_row("all requests, as measured", count, measured)]
    after: list[str | Line] = [*_arrival_lines(arrival)] if arrival is not None else []
    generator = latency.generator
    if generator.samples:
        after.append(
            f"generator: CPU max {generator.cpu_max_percent or 0:.0f}% "
            f"(limit on every sample {generator.max_cpu_percent:g}%), event-loop lag P99 "
            f"{generator.loop_lag_p99_ms or 0:.1f} ms (limit on the P99 {generator.max_lag_ms:g} ms; "
            f"max {generator.loop_lag_max_ms or 0:.1f} ms, not limited), {generator.processes} process(es)"
        )
    if latency.trustworthy:
        after.append(Line("latency figures: trustworthy (the generator kept up)", "ok"))
    else:
        after.append(Line("latency figures: UNTRUSTWORTHY", "bad"))
        after += [Line(f"  - {reason}", "bad") for reason in latency.untrustworthy_reasons]
    return Section(
        title,
        table=table(["requests (ms)", "count", *(name for name, _ in PERCENTILE_COLUMNS)], rows),
        after=lines(*after),
        key="latency",
    )


def backlog_section(figures: WebhookFigures) -> Section:
    """The bot's queue after the load (and its process's CPU, when watched)."""
    return Section("backlog", lines=tuple(describe_backlog(figures.backlog)), key="backlog")


def conformance_section(figures: WebhookFigures) -> Section | None:
    """Whether the bot's answers to delivered messages are TwiML Twilio can parse."""
    conformance = figures.conformance
    if not conformance.delivered:
        return None
    good = conformance.delivered - conformance.nonconforming
    head = Line(
        f"{good:,} of {conformance.delivered:,} delivered messages answered with TwiML Twilio can parse",
        "ok" if not conformance.findings else "warn",
    )
    if not conformance.findings:
        return Section("Twilio conformance", lines=(head,), key="conformance")
    rows = [[f"{finding.count:,}", finding.name, finding.finding] for finding in conformance.findings[:10]]
    return Section(
        "Twilio conformance (delivered all the same; Twilio's debugger logs these)",
        lines=(head,),
        table=table(["count", "endpoint", "what Twilio logs"], rows, left=(1, 2)),
        key="conformance",
    )


def probe_section(figures: WebhookFigures) -> Section | None:
    """The signature probe run before the load: each case, its answer and verdict."""
    probe = figures.probe
    if probe is None:
        return None
    rows = [
        [
            case.name,
            f"expects {case.expected}",
            f"HTTP {case.status}" if case.status else "no answer",
            ms(case.elapsed_ms),
            case.verdict,
            case.error or case.body_excerpt,
        ]
        for case in probe.cases
    ]
    verdict = (
        Line(f"all {len(probe.cases)} cases as Twilio's signature scheme expects", "ok")
        if probe.all_as_expected
        else Line(f"diagnosis: {probe.diagnosis}", "bad")
    )
    return Section(
        f"signature probe before the load (signed for {probe.public_url}; not counted in the figures)",
        table=table(
            ["case", "expected", "answer", "ms", "verdict", "the bot's words"], rows, left=(0, 1, 2, 4, 5)
        ),
        after=(verdict,),
        key="probe",
    )


def webhook_sections(figures: WebhookFigures) -> list[Section]:
    """Every webhook block, in report order."""
    sections = [
        probe_section(figures),
        timings_section(figures),
        latency_section(figures.latency, figures.arrival) if figures.latency is not None else None,
        conformance_section(figures),
        backlog_section(figures),
    ]
    return [section for section in sections if section is not None]


__all__ = [
    "backlog_section",
    "conformance_section",
    "latency_section",
    "probe_section",
    "timings_section",
    "webhook_sections",
]
