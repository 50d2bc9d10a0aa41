"""The webhook test's own figures: timing breakdown, corrected latency and its trust verdict, the
open model's arrivals, and the bot's backlog after the load.

``latency``
    ``model`` (``open`` | ``closed``); ``correction``: how ``corrected`` was obtained
    (``intended-start``: each request measured from its intended start; ``hdr-expected-interval``:
    HdrHistogram's expected-interval correction of the closed model's steady stage, with
    ``expected_interval_ms`` = mean think time + median response time; ``none``);
    ``corrected`` and ``uncorrected``: percentiles from HDR histograms at 3 significant digits
    (``uncorrected``: open model, from each request's actual send; closed model, as measured);
    ``corrected_scope``: which requests the correction covers; ``trustworthy`` and
    ``untrustworthy_reasons``; ``generator``: the load generators' CPU and event-loop lag.
``arrival`` (open model; None in the closed model)
    the plan and what the drivers did with it: ``scheduled``, ``sent``, ``late``, ``waited``,
    ``dropped``, ``unsent``, ``abandoned``, ``errors``, peaks, start and scheduling lag.

In the open model the summary, endpoint and threshold figures are the corrected ones (Locust's
response time is counted from the intended start).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from perfsuite.arrival import START_LAG_METRIC, UNCORRECTED_METRIC, ArrivalCounts, ArrivalPlan
from perfsuite.backlog import Backlog
from perfsuite.collect import records
from perfsuite.collector import LatencyHistogram, RunData
from perfsuite.config import SuiteConfig
from perfsuite.correction import Correction
from perfsuite.marks import ARRIVAL, GENERATOR, STAGE, WORKER_HEALTH, Stage
from perfsuite.saturation import assess, merge_reports, whole_test_reports
from perfsuite.worker_health import WorkerHealth, saturated_workers_reasons

LATENCY_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0, 99.9)
LATENCY_METRICS = (UNCORRECTED_METRIC, START_LAG_METRIC)
"""Metrics reported in the latency section rather than in the timing breakdown."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Timing(_Model):
    """One timing metric (``ttfb``, ``server.<phase>``) over the run."""

    count: int
    avg_ms: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None


class Percentiles(_Model):
    """Latency percentiles of one histogram (ms)."""

    count: int
    avg_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    p99_9_ms: float
    max_ms: float

    def at_least(self, other: Percentiles | None) -> Percentiles:
        """These percentiles, each raised to ``other``'s where that is higher (a corrected figure is
        never reported below the measured one of the same requests; HDR's expected-interval
        correction adds synthesized samples that can pull a middle percentile down)."""
        if other is None:
            return self
        keys = ("avg_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms", "max_ms")
        return self.model_copy(update={key: max(getattr(self, key), getattr(other, key)) for key in keys})

    @classmethod
    def of(cls, histogram: LatencyHistogram) -> Percentiles | None:
        """The percentiles of ``histogram`` (None when it is empty)."""
        if not histogram.count:
            return None
        values = histogram.percentiles_us(LATENCY_PERCENTILES)
        return cls(
            count=histogram.count,
            avg_ms=histogram.mean_us / 1000,
            p50_ms=values[50.0] / 1000,
            p90_ms=values[90.0] / 1000,
            p95_ms=values[95.0] / 1000,
            p99_ms=values[99.0] / 1000,
            p99_9_ms=values[99.9] / 1000,
            max_ms=histogram.max_us / 1000,
        )


class Generator(_Model):
    """The load generator processes together, and the limits they were held to."""

    processes: int = 0
    samples: int = 0
    cpu_max_percent: float | None = None
    cpu_over_samples: int = 0
    loop_lag_p99_ms: float | None = None
    loop_lag_max_ms: float | None = None
    max_cpu_percent: float
    max_lag_ms: float
    """The bound on the P99 of the event-loop lag."""


class Latency(_Model):
    """Latency corrected for coordinated omission, as measured, and whether to trust either.

    ``corrected`` and ``uncorrected`` cover the same requests (``corrected_scope``; ``count`` of
    ``uncorrected`` is their number); ``all_requests`` covers every request, as the summary does
    (closed model: the corrected scope leaves out the burst; open model: it is every request)."""

    model: Literal["open", "closed"]
    correction: str
    expected_interval_ms: float | None = None
    corrected_scope: str
    corrected: Percentiles | None = None
    uncorrected: Percentiles | None = None
    all_requests: Percentiles | None = None
    trustworthy: bool
    untrustworthy_reasons: tuple[str, ...] = ()
    generator: Generator


class LagFigures(_Model):
    """P50, P99 and max of a lag (ms)."""

    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, histogram: LatencyHistogram | None) -> LagFigures | None:
        """Figures of ``histogram`` (None when absent or empty)."""
        if histogram is None or not histogram.count:
            return None
        return cls(
            p50=histogram.percentile_us(50) / 1000,
            p99=histogram.percentile_us(99) / 1000,
            max=histogram.max_us / 1000,
        )


class Arrival(_Model):
    """The open model's plan and what the arrival drivers did with it."""

    rate_per_s: float
    ramp_to_rate_per_s: float | None = None
    distribution: str
    duration_s: float
    planned: float
    processes: int
    max_concurrency: int
    max_waiting_allowed: int
    late_after_ms: float
    scheduled: int = 0
    sent: int = 0
    late: int = 0
    waited: int = 0
    dropped: int = 0
    unsent: int = 0
    abandoned: int = 0
    errors: int = 0
    max_in_flight: int = 0
    max_waiting: int = 0
    start_lag_ms: LagFigures | None = None
    schedule_lag_ms: LagFigures | None = None


class Finding(_Model):
    """A Twilio conformance finding on delivered messages of one row."""

    name: str
    """The stats row (``webhook text``...)."""
    finding: str
    """What Twilio would log (error 12300 / 12100) about the bot's answer."""
    count: int


class Conformance(_Model):
    """Whether the bot's answers to delivered messages are TwiML Twilio can parse."""

    delivered: int = 0
    """Validly signed messages answered 2xx."""
    findings: tuple[Finding, ...] = ()

    @property
    def nonconforming(self) -> int:
        """Delivered messages whose answer Twilio cannot parse."""
        return sum(finding.count for finding in self.findings)


class ProbeCaseFigures(_Model):
    """One request of the signature probe and how the bot answered it."""

    name: str
    description: str
    expected: str
    status: int
    answer: str
    verdict: str
    elapsed_ms: float
    body_excerpt: str
    message_sid: str
    error: str | None = None


class ProbeFigures(_Model):
    """The signature probe run before the load (``perfsuite.probe``; not in the load's figures)."""

    webhook_url: str
    public_url: str
    probe_id: str
    all_as_expected: bool
    diagnosis: str | None = None
    findings: tuple[str, ...] = ()
    cases: tuple[ProbeCaseFigures, ...] = ()


class WebhookFigures(_Model):
    """Everything the webhook test measures beyond the common summary."""

    timings: dict[str, Timing] = Field(default_factory=dict)
    """The timing breakdown (4.1): ``ttfb`` and the bot's own ``server.<phase>`` Server-Timing."""
    latency: Latency | None = None
    arrival: Arrival | None = None
    backlog: Backlog = Backlog(supported=False)
    conformance: Conformance = Conformance()
    probe: ProbeFigures | None = None


def conformance_of(data: RunData, delivered: int) -> Conformance:
    """The conformance findings the run recorded (reasons kept on successful requests)."""
    findings = [
        Finding(name=str(row["name"]), finding=str(row["reason"]), count=int(row["count"]))
        for row in records(data.failure_reasons())
        if row.get("outcome") == "success"
    ]
    findings.sort(key=lambda finding: -finding.count)
    return Conformance(delivered=delivered, findings=tuple(findings))


def timings_of(data: RunData) -> dict[str, Timing]:
    """The timing breakdown: every histogram metric but the response time and the latency ones."""
    timings: dict[str, Timing] = {}
    for metric in data.metrics:
        if metric == "rt" or metric in LATENCY_METRICS:
            continue
        merged = data.histogram(metric=metric)
        if merged.count:
            p50, p95, p99 = (merged.percentile_us(p) / 1000 for p in (50, 95, 99))
            timings[metric] = Timing(
                count=merged.count,
                avg_ms=merged.mean_us / 1000,
                p50_ms=p50,
                p95_ms=p95,
                p99_ms=p99,
                max_ms=merged.max_us / 1000,
            )
    return timings


def generator_reports(data: RunData) -> list[dict[str, Any]]:
    """Each load-generating process's whole-test CPU and event-loop lag: its last ``worker_health``
    mark (runs recorded before those existed: its ``generator`` mark)."""
    health = data.marks(WORKER_HEALTH)
    finals = records(health) if len(health) and "final" in health else []
    return [dict(row) for row in whole_test_reports(records(data.marks(GENERATOR)), finals)]


def closed_model_correction(config: SuiteConfig) -> Correction:
    """The closed model's coordinated-omission correction: HDR's expected interval with the users'
    mean think time (``webhook.think_time_s``)."""
    return Correction.closed_model(sum(config.webhook.think_time_s) / 2)


def latency_correction(config: SuiteConfig) -> Correction:
    """How this test's latency is corrected (the report's and the live metrics' ``corrected``)."""
    return (
        Correction.open_model() if config.arrival.rate_per_s is not None else closed_model_correction(config)
    )


def _steady_stage_cells(data: RunData) -> Any:
    """Cells of the closed model's steady stage: the whole seconds before the burst (if any)."""
    seconds = data.cells["second"].to_numpy(np.int64)
    stages = data.marks(STAGE)
    if len(stages) and "name" in stages.columns:
        bursts = stages[stages["name"] == Stage.BURST]
        if len(bursts):
            return np.flatnonzero(seconds < int(bursts["at"].min()))
    return np.arange(len(seconds))


def latency_figures(
    config: SuiteConfig, data: RunData, workers: Sequence[WorkerHealth] = ()
) -> tuple[Latency, Arrival | None]:
    """The ``latency`` and ``arrival`` figures (see the module docstring); with several ``workers``,
    each saturated one is named as a reason not to trust the latency."""
    settings = config.arrival
    generator = merge_reports(generator_reports(data))
    counts: ArrivalCounts | None = None
    arrival: Arrival | None = None
    interval_ms: float | None
    if settings.rate_per_s is not None:
        model: Literal["open", "closed"] = "open"
        correction, interval_ms = "intended-start", None
        corrected = data.histogram(metric="rt")
        uncorrected = (
            data.histogram(metric=UNCORRECTED_METRIC)
            if UNCORRECTED_METRIC in data.metrics
            else LatencyHistogram()
        )
        scope = "every request, from its intended start"
        counts = ArrivalCounts(processes=0)
        for row in records(data.marks(ARRIVAL)):
            counts.merge(ArrivalCounts.from_fields(row))
        plan = ArrivalPlan.from_config(settings)
        start_lag = data.histogram(metric=START_LAG_METRIC) if START_LAG_METRIC in data.metrics else None
        arrival = Arrival(
            rate_per_s=plan.rate_per_s,
            ramp_to_rate_per_s=plan.ramp_to_rate_per_s,
            distribution=plan.distribution,
            duration_s=plan.duration_s,
            planned=round(plan.expected_arrivals, 1),
            processes=counts.processes,
            max_concurrency=settings.max_concurrency,
            max_waiting_allowed=settings.max_waiting,
            late_after_ms=settings.max_lag_ms,
            **{key: value for key, value in counts.to_fields().items() if key != "schedule_lag_hist"},
            start_lag_ms=LagFigures.of(start_lag),
            schedule_lag_ms=LagFigures.of(counts.schedule_lag),
        )
    else:
        model = "closed"
        steady = _steady_stage_cells(data)
        uncorrected = (
            data.histograms["rt"].histogram(steady) if "rt" in data.histograms else LatencyHistogram()
        )
        corrected, interval_ms = closed_model_correction(config).apply(uncorrected)
        if interval_ms is not None:
            correction = "hdr-expected-interval"
            scope = (
                "the profile's steady stage (whole seconds before the burst, whose one-shot users have "
                "no pacing), with HDR's expected-interval correction"
            )
        else:
            correction, scope = "none", "every request, as measured"
    schedule_lag_p99_ms = (
        counts.schedule_lag.percentile_us(99) / 1000 if counts and counts.schedule_lag.count else None
    )
    trust = assess(
        generator,
        max_cpu_percent=settings.max_cpu_percent,
        max_lag_ms=settings.max_lag_ms,
        schedule_lag_p99_ms=schedule_lag_p99_ms,
        dropped=counts.dropped if counts else 0,
        unsent=counts.unsent if counts else 0,
    )
    named = saturated_workers_reasons(workers) if len(workers) > 1 else ()
    measured = Percentiles.of(uncorrected)
    raised = Percentiles.of(corrected)
    latency = Latency(
        model=model,
        correction=correction,
        expected_interval_ms=interval_ms,
        corrected_scope=scope,
        corrected=raised.at_least(measured) if raised is not None else None,
        uncorrected=measured,
        all_requests=Percentiles.of(data.histogram(metric="rt")) if "rt" in data.histograms else None,
        trustworthy=trust.trustworthy and not named,
        untrustworthy_reasons=(*trust.reasons, *named),
        generator=Generator(
            **(generator.to_dict() if generator is not None else {}),
            max_cpu_percent=settings.max_cpu_percent,
            max_lag_ms=settings.max_lag_ms,
        ),
    )
    return latency, arrival


__all__ = [
    "LATENCY_METRICS",
    "LATENCY_PERCENTILES",
    "Arrival",
    "Conformance",
    "Finding",
    "Generator",
    "LagFigures",
    "Latency",
    "Percentiles",
    "ProbeCaseFigures",
    "ProbeFigures",
    "Timing",
    "WebhookFigures",
    "conformance_of",
    "latency_figures",
    "timings_of",
]
