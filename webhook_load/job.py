"""``perfsuite run --test-type webhook``: the seed's webhook load test as a test type.

Closed model (the seed's profile: ramp, each user's quota, burst) or open model (``arrival.rate_per_s``,
``--arrival-rate``), both in ``locustfiles/webhook.py``. Preflight finds the bot (``--host`` or
``target.host``, else starts the embedded demo bot); after the load the bot's backlog is watched;
the figures are in :mod:`webhook.figures`, the report blocks in :mod:`webhook.report`.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from pydantic import BaseModel

from perfsuite.backlog import Backlog, watch_backlog
from perfsuite.collect import Collected
from perfsuite.config import SuiteConfig
from perfsuite.grading import Check
from perfsuite.jobs import Metric, Prepared, RunOptions, TestType
from perfsuite.launcher import LOCUSTFILES, LocustOutcome
from perfsuite.result import RunResult, Target
from perfsuite.sections import Section
from perfsuite.services import Target as BotTarget
from perfsuite.services import resolve_target
from webhook_load.figures import WebhookFigures, latency_figures, timings_of
from webhook_load.report import webhook_sections
from webhook_load.rows import is_bad_signature_row


def figures_of(result: RunResult) -> WebhookFigures:
    """The webhook figures of ``result`` (empty ones when it has none)."""
    return result.figures if isinstance(result.figures, WebhookFigures) else WebhookFigures()


class WebhookTest(TestType):
    """Twilio WhatsApp webhooks: signed, realistic, answered fast, nothing left queued."""

    name: ClassVar[str] = "webhook"
    title: ClassVar[str] = "webhook load test (signed Twilio WhatsApp messages)"
    order: ClassVar[int] = 10
    locustfile = LOCUSTFILES / "webhook.py"
    figures_model: ClassVar[type[BaseModel]] = WebhookFigures

    def prepare(self, config: SuiteConfig, stack: contextlib.ExitStack, options: RunOptions) -> Prepared:
        bot = resolve_target(config, stack, options.host, options.state_dir)
        settings = config.webhook
        if config.arrival.rate_per_s is not None:
            expected_s = config.arrival.duration_s + config.target.request_timeout_s + 30
            timeout_s = expected_s + 60
        else:
            expected_s = (
                settings.ramp_up_time + settings.requests_per_user * sum(settings.think_time_s) / 2 + 30
            )
            timeout_s = min(settings.max_duration_s, expected_s * 10) + 60
        target = Target(
            kind="http",
            host=bot.host,
            path=config.target.webhook_path,
            embedded=bot.embedded,
            demo_bot_mode=config.target.demo_bot_mode if bot.embedded else None,
        )
        return Prepared(
            target=target,
            locust_host=bot.host,
            env={"TWILIO_AUTH_TOKEN": bot.auth_token},
            timeout_s=timeout_s,
            context=bot,
        )

    def observe(
        self, config: SuiteConfig, prepared: Prepared, outcome: LocustOutcome, run_id: str
    ) -> Backlog:
        bot: BotTarget = prepared.context
        return watch_backlog(
            bot.health_url, 0 if outcome.interrupted else config.webhook.backlog_drain_timeout_s
        )

    def figures(
        self, config: SuiteConfig, prepared: Prepared, collected: Collected, observed: Any
    ) -> WebhookFigures:
        latency, arrival = latency_figures(config, collected.data)
        backlog = observed if isinstance(observed, Backlog) else Backlog(supported=False)
        return WebhookFigures(
            timings=timings_of(collected.data), latency=latency, arrival=arrival, backlog=backlog
        )

    def checks(self, config: SuiteConfig, result: RunResult) -> list[Check]:
        settings = config.webhook
        summary = result.summary
        invalid = [row for row in result.endpoints if is_bad_signature_row(row.name)]
        invalid_sent = sum(row.count for row in invalid)
        invalid_rejected = sum(row.rejected for row in invalid)
        checks = [
            Check(
                "webhook average response time",
                summary.avg_ms,
                "<=",
                settings.target_response_time_ms,
                "ms",
                "4.1",
            ),
            Check(
                "webhook P95 response time",
                summary.p95_ms,
                "<=",
                settings.target_response_time_ms,
                "ms",
                "4.1",
            ),
            Check(
                "webhook P99 response time",
                summary.p99_ms,
                "<=",
                settings.max_response_time_ms,
                "ms",
                "4.1",
                critical=True,
            ),
            Check(
                "webhook success rate",
                summary.success_rate,
                ">=",
                settings.success_threshold,
                "%",
                "4.3",
                critical=True,
            ),
            Check(
                "Twilio 15 s timeout never reached (max response time)",
                summary.max_ms,
                "<=",
                config.target.request_timeout_s * 1000,
                "ms",
                "4.3",
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
        backlog = figures_of(result).backlog
        if backlog.supported:
            checks.append(
                Check(
                    "queue backlog drained after the load",
                    backlog.drain_s,
                    "<=",
                    settings.backlog_drain_timeout_s,
                    "s",
                    "4.3",
                )
            )
        return checks

    def warnings(self, config: SuiteConfig, result: RunResult) -> list[str]:
        figures = figures_of(result)
        warnings: list[str] = []
        latency, arrival = figures.latency, figures.arrival
        if latency is not None and not latency.trustworthy:
            warnings.append("latency figures untrustworthy: " + "; ".join(latency.untrustworthy_reasons))
        if arrival is not None and arrival.waited:
            warnings.append(
                f"{arrival.waited:,} arrivals found all {arrival.max_concurrency:,} slots of a process "
                "busy and waited (the target saw fewer concurrent requests than the plan intended; their "
                "latency still counts from the intended start): raise arrival.max_concurrency for a true "
                "open model"
            )
        return warnings

    def sections(self, result: RunResult) -> list[Section]:
        return webhook_sections(figures_of(result))

    def metrics(self) -> tuple[Metric, ...]:
        return (
            Metric(
                "webhook_avg_ms",
                "webhook average response time",
                "ms",
                True,
                "4.1",
                lambda r: r.summary.avg_ms,
                "avg",
            ),
            Metric(
                "webhook_p50_ms",
                "webhook P50 response time",
                "ms",
                True,
                "4.1",
                lambda r: r.summary.p50_ms,
                "p50",
            ),
            Metric(
                "webhook_p95_ms",
                "webhook P95 response time",
                "ms",
                True,
                "4.1",
                lambda r: r.summary.p95_ms,
                "p95",
            ),
            Metric(
                "webhook_p99_ms",
                "webhook P99 response time",
                "ms",
                True,
                "4.1",
                lambda r: r.summary.p99_ms,
                "p99",
                critical=True,
            ),
            Metric(
                "webhook_success_rate",
                "webhook success rate",
                "%",
                False,
                "4.3",
                lambda r: r.summary.success_rate,
                "success_rate",
                critical=True,
            ),
            Metric("webhook_rps", "webhook throughput", "req/s", False, "4.1", lambda r: r.summary.rps),
        )


__all__ = ["WebhookTest", "figures_of"]
