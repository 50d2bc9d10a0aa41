"""``perfsuite run --test-type webhook``: services, Locust, read-back, thresholds, grade.

Two load models: the seed's closed-model profile (``arrival.rate_per_s`` null) or arrival-rate load
(open model, ``--arrival-rate R --run-time S``), see ``locustfiles/webhook.py``. Both report
corrected and uncorrected latency and whether the figures can be trusted, in the terminal report
(``extra["report_sections"]``) and in the JSON result under these keys:

``latency``
    ``model`` (``open`` | ``closed``); ``correction``: how ``corrected`` was obtained
    (``intended-start``: each request measured from its intended start; ``hdr-expected-interval``:
    HdrHistogram's expected-interval correction of the closed model's steady stage, with
    ``expected_interval_ms`` = mean think time + median response time; ``none``);
    ``corrected`` and ``uncorrected``: ``{count, avg_ms, p50_ms, p90_ms, p95_ms, p99_ms, p99_9_ms,
    max_ms}`` from HDR histograms at 3 significant digits (``uncorrected``: open model, from each
    request's actual send; closed model, as measured); ``corrected_scope``: which requests the
    correction covers; ``trustworthy`` (bool) and ``untrustworthy_reasons`` (list of str);
    ``generator``: the load generators' ``processes``, ``samples``, ``cpu_max_percent``,
    ``cpu_over_samples``, ``loop_lag_p99_ms``, ``loop_lag_max_ms`` and the limits
    ``max_cpu_percent``, ``max_lag_ms``.
``arrival`` (open model; null in the closed model)
    the plan (``rate_per_s``, ``ramp_to_rate_per_s``, ``distribution``, ``duration_s``,
    ``planned``: arrivals the plan holds), ``processes``, the counts ``scheduled``, ``sent``,
    ``late`` (sent more than ``late_after_ms`` = ``arrival.max_lag_ms`` after the intended start),
    ``waited`` (found every one of the process's ``max_concurrency`` slots busy and waited for one),
    ``dropped`` (found the waiting queue, ``max_waiting_allowed``, full), ``unsent`` (still waiting
    at the end), ``abandoned`` (in flight at the end), ``errors``, ``max_in_flight``,
    ``max_waiting``; ``start_lag_ms`` (intended start to actual send) and ``schedule_lag_ms`` (the
    scheduler's own wake-up delay): ``{p50, p99, max}``.

In the open model the summary, endpoint and threshold figures are the corrected ones (Locust's
response time is counted from the intended start).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import redis

from perfsuite.arrival import ARRIVAL_MARK, START_LAG_METRIC, UNCORRECTED_METRIC, ArrivalCounts, ArrivalPlan
from perfsuite.backlog import watch_backlog
from perfsuite.collector import CollectorReader, LatencyHistogram, RunData, new_run_id, update_run
from perfsuite.config import SuiteConfig
from perfsuite.grading import Check
from perfsuite.launcher import LOCUSTFILES, LocustJob, LocustOutcome, run_locust
from perfsuite.result import JobResult
from perfsuite.saturation import GENERATOR_MARK, assess, merge_reports
from perfsuite.services import STATE_DIR, collector_redis, resolve_target

logger = logging.getLogger(__name__)

LATENCY_PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0, 99.9)
LATENCY_METRICS = (UNCORRECTED_METRIC, START_LAG_METRIC)
"""Metrics reported in the latency section rather than in the timing breakdown."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Command-line choices that are not part of the configuration file."""

    host: str | None = None
    workers: int = 0
    verbose: bool = False
    run_id: str | None = None
    state_dir: Path = STATE_DIR


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of one of the reader's frames as plain dicts."""
    return [{str(key): value for key, value in row.items()} for row in frame.to_dict(orient="records")]


def collector_figures(reader: CollectorReader, run_id: str, locust: LocustOutcome) -> dict[str, Any]:
    """Summary, endpoints, timing breakdown and integrity of a stored run."""
    data = reader.load(run_id)
    summary = _answered_as_expected(_clean(_records(data.total())[0]))  # total() has one row
    endpoints = [_answered_as_expected(_clean(row)) for row in _records(data.summary())]
    timings = {}
    for metric in data.metrics:
        if metric == "rt" or metric in LATENCY_METRICS:
            continue
        merged = data.histogram(metric=metric)
        if merged.count:
            p50, p95, p99 = (merged.percentile_us(p) / 1000 for p in (50, 95, 99))
            timings[metric] = {
                "count": merged.count,
                "avg_ms": merged.mean_us / 1000,
                "p50_ms": p50,
                "p95_ms": p95,
                "p99_ms": p99,
                "max_ms": merged.max_us / 1000,
            }
    recorded = int(summary.get("requests", summary.get("count", 0)) or 0)
    summary["requests"] = recorded
    collector = {
        "requests": recorded,
        "locust_requests": locust.total_requests,
        "exact": recorded == locust.total_requests and data.complete,
        "writers_complete": data.complete,
        "clamped": data.clamped,
    }
    reasons = [_clean(row) for row in _records(data.failure_reasons()) if row["outcome"] != "rejected"]
    return {
        "summary": summary,
        "endpoints": endpoints,
        "timings": timings,
        "collector": collector,
        "failure_reasons": reasons,
        "data": data,
    }


def _answered_as_expected(row: dict[str, Any]) -> dict[str, Any]:
    """Webhook success rate: the share answered as Twilio expects, i.e. 2xx TwiML for a valid
    message and 403 for a bad signature (an expected rejection is correct behaviour)."""
    count = int(row.get("count") or 0)
    answered = int(row.get("success") or 0) + int(row.get("rejected") or 0)
    row["success_rate"] = answered / count if count else None
    return row


def _clean(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if hasattr(value, "item"):
            value = value.item()
        if isinstance(value, float) and value != value:  # NaN -> None for JSON
            value = None
        out[str(key)] = value
    return out


def webhook_checks(
    config: SuiteConfig, figures: Mapping[str, Any], backlog: Mapping[str, Any]
) -> list[Check]:
    """The seed's webhook thresholds plus the integrity checks a user relies on."""
    settings = config.webhook
    summary = figures["summary"]
    endpoints = figures["endpoints"]
    # Rows "webhook bad-signature:<case>" (see locustfiles/webhook.py), one per way of being bad.
    invalid = [row for row in endpoints if str(row["name"]).startswith("webhook bad-signature")]
    invalid_sent = sum(int(row["count"]) for row in invalid)
    invalid_rejected = sum(int(row.get("rejected", 0)) for row in invalid)
    checks = [
        Check(
            "webhook average response time",
            summary.get("avg_ms"),
            "<=",
            settings.target_response_time_ms,
            "ms",
            "4.1",
        ),
        Check(
            "webhook P95 response time",
            summary.get("p95_ms"),
            "<=",
            settings.target_response_time_ms,
            "ms",
            "4.1",
        ),
        Check(
            "webhook P99 response time",
            summary.get("p99_ms"),
            "<=",
            settings.max_response_time_ms,
            "ms",
            "4.1",
            critical=True,
        ),
        Check(
            "webhook success rate",
            summary.get("success_rate"),
            ">=",
            settings.success_threshold,
            "%",
            "4.3",
            critical=True,
        ),
        Check(
            "Twilio 15 s timeout never reached (max response time)",
            summary.get("max_ms"),
            "<=",
            config.target.request_timeout_s * 1000,
            "ms",
            "4.3",
        ),
        Check(
            "collector counted exactly what Locust sent",
            figures["collector"]["requests"],
            "==",
            figures["collector"]["locust_requests"],
            "req",
            critical=True,
        ),
    ]
    if invalid_sent:
        checks.append(
            Check(
                "invalid signatures answered 403",
                invalid_rejected / invalid_sent,
                ">=",
                1.0,
                "%",
                "4.3",
                critical=True,
            )
        )
    if backlog.get("supported"):
        drain = backlog.get("drain_s")
        checks.append(
            Check(
                "queue backlog drained after the load",
                drain,
                "<=",
                settings.backlog_drain_timeout_s,
                "s",
                "4.3",
            )
        )
    return checks


def latency_percentiles(histogram: LatencyHistogram) -> dict[str, Any] | None:
    """``{count, avg_ms, p50_ms, p90_ms, p95_ms, p99_ms, p99_9_ms, max_ms}`` or None when empty."""
    if not histogram.count:
        return None
    values = histogram.percentiles_us(LATENCY_PERCENTILES)
    figures: dict[str, Any] = {"count": histogram.count, "avg_ms": histogram.mean_us / 1000}
    for percentile in LATENCY_PERCENTILES:
        figures[f"p{percentile:g}_ms".replace(".", "_")] = values[percentile] / 1000
    figures["max_ms"] = histogram.max_us / 1000
    return figures


def _lag_ms(histogram: LatencyHistogram) -> dict[str, float] | None:
    if not histogram.count:
        return None
    return {
        "p50": histogram.percentile_us(50) / 1000,
        "p99": histogram.percentile_us(99) / 1000,
        "max": histogram.max_us / 1000,
    }


def _steady_stage_cells(data: RunData) -> Any:
    """Cells of the closed model's steady stage: the whole seconds before the burst (if any)."""
    seconds = data.cells["second"].to_numpy(np.int64)
    stages = data.marks("stage")
    if len(stages) and "name" in stages.columns:
        bursts = stages[stages["name"] == "burst"]
        if len(bursts):
            return np.flatnonzero(seconds < int(bursts["at"].min()))
    return np.arange(len(seconds))


def latency_section(config: SuiteConfig, data: RunData) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The ``latency`` and ``arrival`` sections of the result (see the module docstring)."""
    arrival = config.arrival
    generator = merge_reports(_records(data.marks(GENERATOR_MARK)))
    counts: ArrivalCounts | None = None
    arrival_figures: dict[str, Any] | None = None
    if arrival.rate_per_s is not None:
        model, correction, interval_ms = "open", "intended-start", None
        corrected = data.histogram(metric="rt")
        uncorrected = (
            data.histogram(metric=UNCORRECTED_METRIC)
            if UNCORRECTED_METRIC in data.metrics
            else LatencyHistogram()
        )
        scope = "every request, from its intended start"
        counts = ArrivalCounts(processes=0)
        for row in _records(data.marks(ARRIVAL_MARK)):
            counts.merge(ArrivalCounts.from_fields(row))
        plan = ArrivalPlan.from_config(arrival)
        start_lag = data.histogram(metric=START_LAG_METRIC) if START_LAG_METRIC in data.metrics else None
        arrival_figures = {
            "rate_per_s": plan.rate_per_s,
            "ramp_to_rate_per_s": plan.ramp_to_rate_per_s,
            "distribution": plan.distribution,
            "duration_s": plan.duration_s,
            "planned": round(plan.expected_arrivals, 1),
            "processes": counts.processes,
            "max_concurrency": arrival.max_concurrency,
            "max_waiting_allowed": arrival.max_waiting,
            "late_after_ms": arrival.max_lag_ms,
            **{key: value for key, value in counts.to_fields().items() if key != "schedule_lag_hist"},
            "start_lag_ms": _lag_ms(start_lag) if start_lag is not None else None,
            "schedule_lag_ms": _lag_ms(counts.schedule_lag),
        }
    else:
        model = "closed"
        steady = _steady_stage_cells(data)
        uncorrected = (
            data.histograms["rt"].histogram(steady) if "rt" in data.histograms else LatencyHistogram()
        )
        think_s = sum(config.webhook.think_time_s) / 2
        interval_ms = think_s * 1000 + uncorrected.percentile_us(50) / 1000
        if uncorrected.count and interval_ms > 0:
            correction = "hdr-expected-interval"
            corrected = uncorrected.corrected_copy(round(interval_ms * 1000))
            scope = (
                "the profile's steady stage (whole seconds before the burst, whose one-shot users have "
                "no pacing), with HDR's expected-interval correction"
            )
        else:
            correction, corrected, interval_ms, scope = "none", uncorrected, None, "none"
    schedule_lag_p99_ms = (
        counts.schedule_lag.percentile_us(99) / 1000 if counts and counts.schedule_lag.count else None
    )
    trust = assess(
        generator,
        max_cpu_percent=arrival.max_cpu_percent,
        max_lag_ms=arrival.max_lag_ms,
        schedule_lag_p99_ms=schedule_lag_p99_ms,
        dropped=counts.dropped if counts else 0,
        unsent=counts.unsent if counts else 0,
    )
    latency = {
        "model": model,
        "correction": correction,
        "expected_interval_ms": interval_ms,
        "corrected_scope": scope,
        "corrected": latency_percentiles(corrected),
        "uncorrected": latency_percentiles(uncorrected),
        "trustworthy": trust.trustworthy,
        "untrustworthy_reasons": list(trust.reasons),
        "generator": {
            **(generator.to_dict() if generator is not None else {}),
            "max_cpu_percent": arrival.max_cpu_percent,
            "max_lag_ms": arrival.max_lag_ms,
        },
    }
    return latency, arrival_figures


def _fmt_ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.1f}"


def latency_report(latency: dict[str, Any], arrival: dict[str, Any] | None) -> list[str]:
    """The terminal report's latency section (one of ``extra["report_sections"]``)."""
    if latency["model"] == "open":
        title = (
            "latency (open model: corrected = from each request's intended start, no coordinated omission)"
        )
        second = "uncorrected (from the actual send)"
    elif latency["correction"] == "hdr-expected-interval":
        title = (
            f"latency (closed model: corrected with HDR's expected interval "
            f"{latency['expected_interval_ms']:.1f} ms = mean think time + median response time)"
        )
        second = "uncorrected (as measured)"
    else:
        title, second = "latency (closed model, no pacing interval: not corrected)", "as measured"
    keys = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms", "max_ms")
    lines = [
        title,
        f"  {'':<36}" + "".join(f"{name:>10}" for name in ("P50", "P90", "P95", "P99", "P99.9", "max")),
    ]
    for label, figures in (("corrected", latency["corrected"]), (second, latency["uncorrected"])):
        values = [(figures or {}).get(key) for key in keys]
        lines.append(f"  {label + ' ms':<36}" + "".join(f"{_fmt_ms(value):>10}" for value in values))
    if arrival is not None:
        lines.append(
            f"  arrivals: {arrival['planned']:,.0f} planned at {arrival['rate_per_s']:g}/s"
            + (f" -> {arrival['ramp_to_rate_per_s']:g}/s" if arrival["ramp_to_rate_per_s"] else "")
            + f" ({arrival['distribution']}, {arrival['duration_s']:g} s, "
            f"{arrival['processes']} process(es)): "
            f"{arrival['scheduled']:,} scheduled, {arrival['sent']:,} sent, "
            f"{arrival['late']:,} late (> {arrival['late_after_ms']:g} ms), "
            f"{arrival['waited']:,} waited for a slot, {arrival['dropped']:,} dropped, "
            f"{arrival['unsent']:,} unsent"
        )
        start_lag = arrival.get("start_lag_ms") or {}
        lines.append(
            f"  start lag ms: P50 {_fmt_ms(start_lag.get('p50'))}  P99 {_fmt_ms(start_lag.get('p99'))}  "
            f"max {_fmt_ms(start_lag.get('max'))}   (in flight at most {arrival['max_in_flight']:,} of "
            f"{arrival['max_concurrency']:,} per process; waiting at most {arrival['max_waiting']:,})"
        )
    generator = latency["generator"]
    if "samples" in generator:
        lines.append(
            f"  generator: CPU max {generator['cpu_max_percent']:.0f}% "
            f"(limit {generator['max_cpu_percent']:g}%), event-loop lag P99 "
            f"{generator['loop_lag_p99_ms']:.1f} ms, max {generator['loop_lag_max_ms']:.1f} ms "
            f"(limit {generator['max_lag_ms']:g} ms), {generator['processes']} process(es)"
        )
    if latency["trustworthy"]:
        lines.append("  latency figures: trustworthy (the generator kept up)")
    else:
        lines.append("  latency figures: UNTRUSTWORTHY")
        lines += [f"    - {reason}" for reason in latency["untrustworthy_reasons"]]
    return lines


def mark_run_status(redis_url: str, key_prefix: str, run_id: str, outcome: LocustOutcome) -> None:
    """Record in the run's metadata that it was interrupted or stopped at its time limit (Locust's
    own shutdown path reports such a run as finished)."""
    client = redis.Redis.from_url(redis_url)
    try:
        update_run(client, key_prefix, run_id, status="interrupted", timed_out=str(outcome.timed_out))
    except redis.RedisError as exc:
        logger.warning("could not mark run %s as interrupted: %s", run_id, exc)
    finally:
        client.close()


def run_webhook(config: SuiteConfig, options: RunOptions) -> JobResult:
    """Run the webhook load test end to end and return its graded result."""
    with contextlib.ExitStack() as stack:
        redis_url = collector_redis(config, stack, options.state_dir)
        target = resolve_target(config, stack, options.host, options.state_dir)
        run_id = options.run_id or new_run_id()
        env = {**config.process_env(), "REDIS_URL": redis_url, "TWILIO_AUTH_TOKEN": target.auth_token}
        settings = config.webhook
        expected_s = settings.ramp_up_time + settings.requests_per_user * sum(settings.think_time_s) / 2 + 30
        if config.arrival.rate_per_s is not None:
            expected_s = config.arrival.duration_s + config.target.request_timeout_s + 30
        job = LocustJob(
            locustfile=LOCUSTFILES / "webhook.py",
            host=target.host,
            run_id=run_id,
            env=env,
            workers=options.workers,
            log_dir=options.state_dir / "logs",
        )
        timeout_s = min(settings.max_duration_s, expected_s * 10) + 60
        if config.arrival.rate_per_s is not None:
            timeout_s = expected_s + 60
        outcome = run_locust(job, timeout_s=timeout_s, verbose=options.verbose)
        if outcome.interrupted or outcome.timed_out:
            mark_run_status(redis_url, config.redis.key_prefix, run_id, outcome)
        backlog = watch_backlog(
            target.health_url, 0 if outcome.interrupted else settings.backlog_drain_timeout_s
        )
        reader = CollectorReader(redis_url, key_prefix=config.redis.key_prefix)
        figures = collector_figures(reader, run_id, outcome)
        latency, arrival = latency_section(config, figures["data"])
        meta = reader.meta(run_id)
    result = JobResult(
        test_type="webhook",
        run_id=run_id,
        scenario=config.scenario,
        host=target.host + (" (embedded demo bot)" if target.embedded else ""),
        started_at=str(meta.get("started_at", "")),
        stopped_at=str(meta.get("stopped_at", "")),
        summary=figures["summary"],
        endpoints=figures["endpoints"],
        timings=figures["timings"],
        collector=figures["collector"],
        backlog=backlog.to_dict(),
        failure_reasons=figures["failure_reasons"],
        interrupted=outcome.interrupted,
        config=config.snapshot(),
        extra={"latency": latency, "arrival": arrival, "report_sections": [latency_report(latency, arrival)]},
    )
    result.checks = webhook_checks(config, figures, result.backlog)
    if not latency["trustworthy"]:
        result.warnings.append(
            "latency figures untrustworthy: " + "; ".join(latency["untrustworthy_reasons"])
        )
    if arrival is not None and arrival["waited"]:
        result.warnings.append(
            f"{arrival['waited']:,} arrivals found all {arrival['max_concurrency']:,} slots of a process "
            "busy and waited (the target saw fewer concurrent requests than the plan intended; their "
            "latency still counts from the intended start): raise arrival.max_concurrency for a true "
            "open model"
        )
    if outcome.timed_out:
        result.warnings.append("Locust did not finish in time and was stopped; figures cover what ran")
    if outcome.returncode not in (0, None) and not outcome.interrupted:
        where = f" (log: {outcome.log_path})" if outcome.log_path else ""
        result.warnings.append(f"Locust exited with code {outcome.returncode}{where}")
    if not figures["collector"]["exact"]:
        result.warnings.append(
            "the collector's totals differ from Locust's: latency figures may be incomplete"
        )
    return result


__all__ = [
    "LATENCY_PERCENTILES",
    "RunOptions",
    "collector_figures",
    "latency_percentiles",
    "latency_report",
    "latency_section",
    "run_webhook",
    "webhook_checks",
]
