"""The metric families of one followed run, as prometheus_client exposes them (names in
:mod:`perfsuite.metrics`).

Latency comes from the merged HDR histograms of every process (microseconds, 3 significant digits):

- the Prometheus histogram's buckets are exact counts from them: bucket ``le`` counts the requests
  whose HDR value (the top of their HDR bucket, the value the report's percentiles read) is at most
  ``le``, so no request is interpolated or guessed; its ``_sum`` uses HDR's bucket middles (its mean);
- the quantile gauges are HdrHistogram's percentiles, the report's own figures (the same rank rule
  and bucket tops: the whole-run values equal the report's at the end).

``histogram_quantile(q, ...)`` on the buckets may lie one bucket above the gauge: Prometheus ranks
``q * N`` (the sample ``ceil(q * N)``), HdrHistogram ``round(q * N)`` (35 requests, P95: the 34th
against the 33rd), then interpolates linearly within the bucket.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from perfsuite.collector.batch import OUTCOMES
from perfsuite.collector.histogram import (
    HIGHEST_EQUIVALENT_US,
    IntArray,
)
from perfsuite.collector.histogram_table import GroupStats
from perfsuite.marks import Stage
from perfsuite.metrics.live import QUANTILES, LiveRun
from perfsuite.redact import Redactor, redact_text

BUCKETS_S: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0,
)  # fmt: skip
"""Upper bounds of the latency histogram's buckets (seconds); 15 s is Twilio's webhook timeout."""

_BOUND_INDEX = np.searchsorted(HIGHEST_EQUIVALENT_US, np.rint(np.asarray(BUCKETS_S) * 1e6), side="right")
"""Per bound: how many HDR buckets lie wholly at or below it (their top <= the bound)."""

RUN_WINDOW = "run"
"""``window`` label of the whole-run figures (the report's)."""

_LABEL_REDACTOR = Redactor()
MAX_LABEL_CHARS = 200


@functools.lru_cache(maxsize=4096)
def label(text: str) -> str:
    """A label value with credentials and secret-shaped strings removed (never a token in metrics)."""
    return _LABEL_REDACTOR(redact_text(text), limit=MAX_LABEL_CHARS)


def _q(percentile: float) -> str:
    return f"{percentile / 100:g}"


def _seconds(value_us: float) -> float:
    return float(value_us) / 1e6


@dataclass(frozen=True, slots=True)
class Extras:
    """What the endpoint knows besides the run's data."""

    collector_up: bool = True
    """The last read of the collector's Redis succeeded."""
    backlog: Mapping[str, int] = field(default_factory=dict)
    """The bot's backlog by source, as last read."""
    backlog_readable: Mapping[str, bool] = field(default_factory=dict)


def bucket_counts(dense: IntArray) -> list[tuple[str, float]]:
    """Cumulative bucket counts of a dense HDR histogram (exact, see the module docstring), +Inf last."""
    cumulative = np.cumsum(dense)
    total = float(cumulative[-1]) if cumulative.size else 0.0
    counts = [float(cumulative[index - 1]) if index > 0 else 0.0 for index in _BOUND_INDEX.tolist()]
    return [*((f"{bound:g}", count) for bound, count in zip(BUCKETS_S, counts, strict=True)), ("+Inf", total)]


def _add_quantiles(family: GaugeMetricFamily, stats: GroupStats, group: int, labels: list[str]) -> None:
    if not stats.count[group]:
        return
    for percentile in QUANTILES:
        value = float(stats.percentiles_us[percentile][group])
        if not math.isnan(value):
            family.add_metric([*labels, _q(percentile)], _seconds(value))


def run_families(run: LiveRun) -> Iterator[Metric]:
    """The run, its requests and latency."""
    meta = run.meta
    info = InfoMetricFamily("perfsuite_run", "The run the endpoint follows (target redacted).")
    info.add_metric(
        [],
        {
            "run_id": label(run.run_id),
            "test_type": label(meta.get("test_type", "")),
            "scenario": label(meta.get("scenario", "")),
            "target": label(meta.get("host", "")),
        },
    )
    yield info
    yield GaugeMetricFamily(
        "perfsuite_run_running", "1 while the run goes, 0 once it ended.", int(run.running)
    )
    started = meta.get("started_at")
    if started:
        try:
            at = datetime.fromisoformat(started).timestamp()
            yield GaugeMetricFamily("perfsuite_run_start_time_seconds", "When the run started (epoch).", at)
        except ValueError:
            pass
    keys, stats = run.run_stats()
    requests = CounterMetricFamily(
        "perfsuite_requests",
        "Requests by outcome (success, rejected: an expected refusal, backpressure, failure).",
        labels=["request_type", "name", "outcome"],
    )
    histogram = HistogramMetricFamily(
        "perfsuite_request_duration_seconds",
        "Latency of every request over the run, exact bucket counts from the merged HDR histograms "
        "(open model: from each request's intended start).",
        labels=["request_type", "name"],
    )
    for key in keys:
        names = [label(key[0]), label(key[1])]
        totals = run.endpoints[key]
        for outcome, count in zip(OUTCOMES, totals.outcomes.tolist(), strict=True):
            requests.add_metric([*names, outcome], count)
        histogram.add_metric(names, bucket_counts(totals.rt), totals.sum_us / 1e6)
    yield requests
    yield histogram
    window = run.window_stats(keys)
    window_label = f"{run.window_s}s"
    rate = GaugeMetricFamily(
        "perfsuite_requests_per_second",
        f"Requests per second over the recent window ({window_label}).",
        labels=["request_type", "name"],
    )
    per_endpoint = GaugeMetricFamily(
        "perfsuite_request_duration_quantile_seconds",
        "Latency percentiles of each request name (HdrHistogram's), over the run or the recent window.",
        labels=["request_type", "name", "window", "quantile"],
    )
    overall = GaugeMetricFamily(
        "perfsuite_latency_seconds",
        "Latency percentiles of every request together (window=run: the report's summary figures).",
        labels=["window", "quantile"],
    )
    for group, key in enumerate(keys):
        names = [label(key[0]), label(key[1])]
        rate.add_metric(names, float(window.count[group]) / run.window_s)
        _add_quantiles(per_endpoint, stats, group, [*names, RUN_WINDOW])
        _add_quantiles(per_endpoint, window, group, [*names, window_label])
    _add_quantiles(overall, stats, len(keys), [RUN_WINDOW])
    _add_quantiles(overall, window, len(keys), [window_label])
    yield rate
    yield per_endpoint
    yield overall
    yield from _corrected(run)


def _corrected(run: LiveRun) -> Iterator[Metric]:
    """Coordinated-omission-corrected latency, as the report computes it (:mod:`perfsuite.correction`)."""
    figures = run.corrected()
    if figures is None:
        return
    family = GaugeMetricFamily(
        "perfsuite_latency_corrected_seconds",
        f"Latency percentiles corrected for coordinated omission ({run.correction.kind}; the report's "
        "'corrected').",
        labels=["quantile"],
    )
    for percentile, value_us in figures.percentiles_us.items():
        # never below the same requests as measured (the report's rule)
        family.add_metric([_q(percentile)], _seconds(max(value_us, figures.measured_us.get(percentile, 0))))
    yield family
    if figures.expected_interval_ms is not None:
        yield GaugeMetricFamily(
            "perfsuite_latency_expected_interval_seconds",
            "Closed model: the expected interval of HDR's correction (mean think time + median latency).",
            figures.expected_interval_ms / 1000,
        )
    if figures.uncorrected_us is not None:
        uncorrected = GaugeMetricFamily(
            "perfsuite_latency_uncorrected_seconds",
            "Open model: latency percentiles from each request's actual send (not corrected).",
            labels=["quantile"],
        )
        for percentile, value_us in figures.uncorrected_us.items():
            uncorrected.add_metric([_q(percentile)], _seconds(value_us))
        yield uncorrected


def progress_families(run: LiveRun) -> Iterator[Metric]:
    """The generator's trust, its processes, the stage and capacity steps, the live alerts."""
    progress = run.progress
    trust = progress.trust()
    if trust is not None:
        yield GaugeMetricFamily(
            "perfsuite_generator_trusted",
            "1 when no load generator is saturated (CPU, event-loop lag, dropped arrivals: the report's "
            "rule), so latency can be trusted; 0 otherwise.",
            int(trust.trustworthy),
        )
    up = GaugeMetricFamily("perfsuite_worker_up", "1 per load generator, 0 once lost.", labels=["worker"])
    cpu = GaugeMetricFamily(
        "perfsuite_worker_cpu_percent", "Its CPU over the last second (100 = one core).", labels=["worker"]
    )
    lag = GaugeMetricFamily(
        "perfsuite_worker_loop_lag_seconds",
        "Its largest event-loop lag in the last second.",
        labels=["worker"],
    )
    saturated = GaugeMetricFamily(
        "perfsuite_worker_saturated", "1 when this generator alone went over the limits.", labels=["worker"]
    )
    sent = CounterMetricFamily(
        "perfsuite_worker_requests", "Requests each generator recorded (the collector's).", labels=["worker"]
    )
    states = {"running": 0, "lost": 0}
    for client_id, worker in sorted(progress.workers.items()):
        name = [label(client_id)]
        states["lost" if worker.lost else "running"] += 1
        up.add_metric(name, 0 if worker.lost else 1)
        if worker.cpu_percent is not None and worker.loop_lag_max_ms is not None:
            cpu.add_metric(name, worker.cpu_percent)
            lag.add_metric(name, worker.loop_lag_max_ms / 1000)
        saturated.add_metric(name, int(progress.saturated(worker)))
    by_worker: dict[str, int] = {}
    for writer_id, state in run.writers.items():
        if state.requests:
            client = progress.writer_worker.get(writer_id, writer_id)
            by_worker[client] = by_worker.get(client, 0) + state.requests
    for client, count in sorted(by_worker.items()):
        sent.add_metric([label(client)], count)
    workers = GaugeMetricFamily("perfsuite_workers", "Load generators by state.", labels=["state"])
    for state_name, count in states.items():
        workers.add_metric([state_name], count)
    yield from (workers, up, cpu, lag, saturated, sent)
    yield from _stage_families(run)


def _stage_families(run: LiveRun) -> Iterator[Metric]:
    progress = run.progress
    if progress.stage is not None:
        stage = GaugeMetricFamily(
            "perfsuite_stage", "1 for the load shape's current stage.", labels=["stage"]
        )
        for name in Stage:
            stage.add_metric([name.value], int(progress.stage == name))
        yield stage
        fields = progress.stage_fields
        if fields.get("users") is not None:
            yield GaugeMetricFamily(
                "perfsuite_load_users", "The stage's planned users.", float(fields["users"])
            )
        if fields.get("rate_per_s") is not None:
            yield GaugeMetricFamily(
                "perfsuite_load_rate_per_second",
                "The stage's planned arrival rate (open model).",
                float(fields["rate_per_s"]),
            )
        if progress.stage == Stage.STEP and fields.get("step") is not None:
            yield GaugeMetricFamily(
                "perfsuite_capacity_step",
                "The capacity step running now (1 = the first).",
                float(fields["step"]),
            )
    if progress.steps:
        held = GaugeMetricFamily(
            "perfsuite_capacity_step_held",
            "1 when the ended step met the SLOs (judged live).",
            labels=["step"],
        )
        p95 = GaugeMetricFamily(
            "perfsuite_capacity_step_p95_seconds", "The ended step's P95 (live, Locust's).", labels=["step"]
        )
        good = GaugeMetricFamily(
            "perfsuite_capacity_step_good_requests_per_second",
            "The ended step's answers as intended per second.",
            labels=["step"],
        )
        for index, verdict in sorted(progress.steps.items()):
            held.add_metric([str(index)], int(verdict.meets_slo))
            good.add_metric([str(index)], verdict.good_rps)
            if verdict.p95_ms is not None:
                p95.add_metric([str(index)], verdict.p95_ms / 1000)
        yield from (held, p95, good)
        if progress.knee_step is not None:
            yield GaugeMetricFamily(
                "perfsuite_capacity_knee_step", "The step where the knee showed.", progress.knee_step
            )
        if progress.capacity_load is not None:
            yield GaugeMetricFamily(
                "perfsuite_capacity_held_load",
                "The highest load held before the first failing step, so far (users or requests/s).",
                progress.capacity_load,
            )
    if progress.alerts:
        firing = GaugeMetricFamily(
            "perfsuite_alert_firing", "1 while a live alert fires.", labels=["alert", "severity"]
        )
        fired = CounterMetricFamily(
            "perfsuite_alerts_fired", "Times a live alert fired.", labels=["alert", "severity"]
        )
        for (alert, severity), state in sorted(progress.alerts.items()):
            firing.add_metric([label(alert), label(severity)], int(state.firing))
            fired.add_metric([label(alert), label(severity)], state.fired)
        yield firing
        yield fired


def data_families(run: LiveRun) -> list[Metric]:
    """The families that change only with the run's data (the endpoint keeps them while nothing new
    arrived: see :func:`data_key`)."""
    families = [*run_families(run), *progress_families(run)]
    writers = GaugeMetricFamily(
        "perfsuite_collector_writers", "Collector writers by state.", labels=["state"]
    )
    closed = sum(1 for state in run.writers.values() if state.closed)
    writers.add_metric(["open"], len(run.writers) - closed)
    writers.add_metric(["closed"], closed)
    families.append(writers)
    return families


def data_key(run: LiveRun) -> tuple[object, ...]:
    """What :func:`data_families` depends on: equal keys, equal families."""
    closed = tuple(sorted((writer_id, state.closed) for writer_id, state in run.writers.items()))
    return (run.run_id, run.version, run.end_second(), tuple(sorted(run.meta.items())), closed)


def endpoint_families(
    run: LiveRun | None, extras: Extras, data: list[Metric] | None = None
) -> Iterator[Metric]:
    """Everything the endpoint serves: the followed run's families (``data``: already computed; none
    before a run), the bot's backlog, the collector's state."""
    yield GaugeMetricFamily(
        "perfsuite_collector_up",
        "1 when the last read of the collector's Redis succeeded.",
        int(extras.collector_up),
    )
    if run is not None:
        yield from data if data is not None else data_families(run)
        end = run.end_second()
        if end is not None and run.running:
            yield GaugeMetricFamily(
                "perfsuite_collector_lag_seconds",
                "How far the newest complete second read lags behind now.",
                max(0.0, time.time() - (end + 1)),
            )
    if extras.backlog or extras.backlog_readable:
        backlog = GaugeMetricFamily(
            "perfsuite_bot_backlog", "The bot's backlog (target.backlog), as last read.", labels=["source"]
        )
        readable = GaugeMetricFamily(
            "perfsuite_bot_backlog_readable",
            "1 when the backlog source answered its last read.",
            labels=["source"],
        )
        for source, depth in sorted(extras.backlog.items()):
            backlog.add_metric([label(source)], depth)
        for source, ok in sorted(extras.backlog_readable.items()):
            readable.add_metric([label(source)], int(ok))
        yield backlog
        yield readable


__all__ = [
    "BUCKETS_S",
    "RUN_WINDOW",
    "Extras",
    "bucket_counts",
    "data_families",
    "data_key",
    "endpoint_families",
    "label",
]
