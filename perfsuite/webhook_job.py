"""``perfsuite run --test-type webhook``: services, Locust, read-back, thresholds, grade."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perfsuite.backlog import watch_backlog
from perfsuite.collector import CollectorReader, new_run_id
from perfsuite.config import SuiteConfig
from perfsuite.grading import Check
from perfsuite.launcher import LOCUSTFILES, LocustJob, LocustOutcome, run_locust
from perfsuite.result import JobResult
from perfsuite.services import STATE_DIR, collector_redis, resolve_target


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Command-line choices that are not part of the configuration file."""

    host: str | None = None
    workers: int = 0
    verbose: bool = False
    run_id: str | None = None
    state_dir: Path = STATE_DIR


def _records(frame: Any) -> list[dict[str, Any]]:
    return [dict(row) for row in frame.to_dict(orient="records")] if frame is not None else []


def _row(frame_or_row: Any) -> dict[str, Any]:
    if hasattr(frame_or_row, "to_dict") and hasattr(frame_or_row, "columns"):
        rows = _records(frame_or_row)
        return rows[0] if rows else {}
    if hasattr(frame_or_row, "to_dict"):
        return dict(frame_or_row.to_dict())
    return dict(frame_or_row or {})


def collector_figures(reader: CollectorReader, run_id: str, locust: LocustOutcome) -> dict[str, Any]:
    """Summary, endpoints, timing breakdown and integrity of a stored run."""
    data = reader.load(run_id)
    summary = _answered_as_expected(_clean(_row(data.total())))
    endpoints = [_answered_as_expected(_clean(row)) for row in _records(data.summary())]
    timings = {}
    for metric in data.metrics:
        if metric == "rt":
            continue
        merged = data.histogram(metric=metric)
        if merged.count:
            p50, p95, p99 = (merged.percentile_us(p) / 1000 for p in (50, 95, 99))
            timings[metric] = {"count": merged.count, "avg_ms": merged.mean_us / 1000, "p50_ms": p50,
                               "p95_ms": p95, "p99_ms": p99, "max_ms": merged.max_us / 1000}
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
    return {"summary": summary, "endpoints": endpoints, "timings": timings, "collector": collector,
            "failure_reasons": reasons, "data": data}


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


def webhook_checks(config: SuiteConfig, figures: Mapping[str, Any], backlog: Mapping[str, Any]) -> list[Check]:
    """The seed's webhook thresholds plus the integrity checks a user relies on."""
    settings = config.webhook
    summary = figures["summary"]
    endpoints = figures["endpoints"]
    invalid = [row for row in endpoints if row["name"] == "webhook invalid-signature"]
    invalid_sent = sum(int(row["count"]) for row in invalid)
    invalid_rejected = sum(int(row.get("rejected", 0)) for row in invalid)
    checks = [
        Check("webhook average response time", summary.get("avg_ms"), "<=", settings.target_response_time_ms,
              "ms", "4.1"),
        Check("webhook P95 response time", summary.get("p95_ms"), "<=", settings.target_response_time_ms,
              "ms", "4.1"),
        Check("webhook P99 response time", summary.get("p99_ms"), "<=", settings.max_response_time_ms,
              "ms", "4.1", critical=True),
        Check("webhook success rate", summary.get("success_rate"), ">=", settings.success_threshold, "%",
              "4.3", critical=True),
        Check("Twilio 15 s timeout never reached (max response time)", summary.get("max_ms"), "<=",
              config.target.request_timeout_s * 1000, "ms", "4.3"),
        Check("collector counted exactly what Locust sent", figures["collector"]["requests"], "==",
              figures["collector"]["locust_requests"], "req", critical=True),
    ]
    if invalid_sent:
        checks.append(Check("invalid signatures answered 403", invalid_rejected / invalid_sent, ">=", 1.0, "%",
                            "4.3", critical=True))
    if backlog.get("supported"):
        drain = backlog.get("drain_s")
        checks.append(Check("queue backlog drained after the load", drain, "<=",
                            settings.backlog_drain_timeout_s, "s", "4.3"))
    return checks


def run_webhook(config: SuiteConfig, options: RunOptions) -> JobResult:
    """Run the webhook load test end to end and return its graded result."""
    with contextlib.ExitStack() as stack:
        redis_url = collector_redis(config, stack, options.state_dir)
        target = resolve_target(config, stack, options.host, options.state_dir)
        run_id = options.run_id or new_run_id()
        env = {**config.process_env(), "REDIS_URL": redis_url, "TWILIO_AUTH_TOKEN": target.auth_token}
        settings = config.webhook
        expected_s = settings.ramp_up_time + settings.requests_per_user * sum(settings.think_time_s) / 2 + 30
        job = LocustJob(
            locustfile=LOCUSTFILES / "webhook.py",
            host=target.host,
            run_id=run_id,
            env=env,
            workers=options.workers,
            log_dir=options.state_dir / "logs",
        )
        outcome = run_locust(job, timeout_s=min(settings.max_duration_s, expected_s * 10) + 60,
                             verbose=options.verbose)
        backlog = watch_backlog(target.health_url, 0 if outcome.interrupted else settings.backlog_drain_timeout_s)
        reader = CollectorReader(redis_url, key_prefix=config.redis.key_prefix)
        figures = collector_figures(reader, run_id, outcome)
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
    )
    result.checks = webhook_checks(config, figures, result.backlog)
    if outcome.timed_out:
        result.warnings.append("Locust did not finish in time and was stopped; figures cover what ran")
    if outcome.returncode not in (0, None) and not outcome.interrupted:
        where = f" (log: {outcome.log_path})" if outcome.log_path else ""
        result.warnings.append(f"Locust exited with code {outcome.returncode}{where}")
    if not figures["collector"]["exact"]:
        result.warnings.append("the collector's totals differ from Locust's: latency figures may be incomplete")
    return result


__all__ = ["RunOptions", "collector_figures", "run_webhook", "webhook_checks"]
