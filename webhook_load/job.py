"""``perfsuite run --test-type webhook``: the seed's webhook load test as a test type.

Closed model (the seed's profile: ramp, each user's quota, burst) or open model (``arrival.rate_per_s``,
``--arrival-rate``), both in ``locustfiles/webhook.py``. Preflight finds the bot (``--host`` or
``target.host``, else starts the embedded demo bot) and probes how it answers valid and bad
signatures (``target.probe``); after the load the bot's backlog is watched; the figures are in
:mod:`webhook_load.figures`, the report blocks in :mod:`webhook_load.report`, what most likely went
wrong in :mod:`webhook_load.diagnosis`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel

from perfsuite.activity import describe_activity
from perfsuite.backlog import UNKNOWN, Backlog, preflight_backlog, watch_backlog
from perfsuite.collect import Collected
from perfsuite.config import SuiteConfig
from perfsuite.correction import Correction
from perfsuite.grading import Check
from perfsuite.jobs import Metric, Prepared, RunOptions, TestType
from perfsuite.launcher import LOCUSTFILES, LocustOutcome
from perfsuite.probe import ProbeTarget, probe_signatures
from perfsuite.result import RunResult, Target
from perfsuite.sections import Section
from perfsuite.services import Target as BotTarget
from perfsuite.services import resolve_target
from perfsuite.twilio.rows import is_bad_signature_row
from webhook_load.diagnosis import diagnose
from webhook_load.figures import (
    ProbeFigures,
    WebhookFigures,
    conformance_of,
    latency_correction,
    latency_figures,
    timings_of,
)
from webhook_load.report import webhook_sections

MISSED_BY_FAR = 0.5
"""A success rate, or a share of bad signatures refused, under this is a miss by far (POOR)."""


@dataclass(frozen=True, slots=True)
class Preflight:
    """What preflight found: the bot, and how it answered the signature probe."""

    bot: BotTarget
    probe: ProbeFigures | None


def figures_of(result: RunResult) -> WebhookFigures:
    """The webhook figures of ``result`` (empty ones when it has none)."""
    return result.figures if isinstance(result.figures, WebhookFigures) else WebhookFigures()


def statuses_text(statuses: tuple[int, ...]) -> str:
    """``401 or 403``."""
    texts = [str(status) for status in statuses]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def probe(config: SuiteConfig, bot: BotTarget) -> ProbeFigures:
    """The signature probe of ``bot`` (five requests, outside the load and its figures)."""
    target = ProbeTarget.from_config(config, bot.host, timeout_s=min(5.0, config.target.request_timeout_s))
    report = probe_signatures(target, bot.auth_token)
    return ProbeFigures.model_validate(report.to_dict())


class WebhookTest(TestType):
    """Twilio WhatsApp webhooks: signed, realistic, answered fast, nothing left queued."""

    name: ClassVar[str] = "webhook"
    title: ClassVar[str] = "webhook load test (signed Twilio WhatsApp messages)"
    order: ClassVar[int] = 10
    locustfile = LOCUSTFILES / "webhook.py"
    figures_model: ClassVar[type[BaseModel]] = WebhookFigures

    def prepare(self, config: SuiteConfig, stack: contextlib.ExitStack, options: RunOptions) -> Prepared:
        preflight_backlog(config.target.backlog)
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
        checked = probe(config, bot) if config.target.probe else None
        warnings = []
        if checked is not None and not checked.all_as_expected:
            warnings.append(f"signature probe: {checked.diagnosis}")
        return Prepared(
            target=target,
            locust_host=bot.host,
            env={"TWILIO_AUTH_TOKEN": bot.auth_token},
            timeout_s=timeout_s,
            context=Preflight(bot, checked),
            warnings=tuple(warnings),
        )

    def observe(
        self, config: SuiteConfig, prepared: Prepared, outcome: LocustOutcome, run_id: str
    ) -> Backlog:
        preflight: Preflight = prepared.context
        timeout_s = 0 if outcome.interrupted else config.webhook.backlog_drain_timeout_s
        bot = preflight.bot
        return watch_backlog(bot.health_url, timeout_s, config.target.backlog, host=bot.host, pid=bot.pid)

    def figures(
        self, config: SuiteConfig, prepared: Prepared, collected: Collected, observed: Any
    ) -> WebhookFigures:
        latency, arrival = latency_figures(config, collected.data, collected.workers)
        backlog = observed if isinstance(observed, Backlog) else Backlog(supported=False)
        preflight = prepared.context if isinstance(prepared.context, Preflight) else None
        return WebhookFigures(
            timings=timings_of(collected.data),
            latency=latency,
            arrival=arrival,
            backlog=backlog,
            conformance=conformance_of(collected.data, collected.summary.success),
            probe=preflight.probe if preflight is not None else None,
        )

    def checks(self, config: SuiteConfig, result: RunResult) -> list[Check]:
        settings = config.webhook
        summary = result.summary
        figures = figures_of(result)
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
                far=MISSED_BY_FAR,
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
                    f"invalid signatures refused ({statuses_text(config.target.rejection_statuses)})",
                    invalid_rejected / invalid_sent,
                    ">=",
                    1.0,
                    "%",
                    "4.3",
                    critical=True,
                    far=MISSED_BY_FAR,
                )
            )
        conformance = figures.conformance
        if conformance.delivered:
            checks.append(
                Check(
                    "answers Twilio parses as TwiML (no error 12300/12100)",
                    1 - conformance.nonconforming / conformance.delivered,
                    ">=",
                    1.0,
                    "%",
                    note="a message answered otherwise still reaches the bot; Twilio logs an error",
                )
            )
        backlog = figures.backlog
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
        conformance = figures.conformance
        if conformance.findings:
            top = conformance.findings[0]
            warnings.append(
                f"{conformance.nonconforming:,} of {conformance.delivered:,} delivered messages got an "
                f"answer Twilio cannot parse ({top.finding}): Twilio still delivers them; answer text/xml "
                "<Response/> to ack without a reply"
            )
        backlog = figures.backlog
        if not backlog.supported:
            warnings.append(backlog.reason or UNKNOWN)
        if backlog.activity is not None and backlog.activity.busy_after_load:
            warnings.append(describe_activity(backlog.activity).text)
        return warnings

    def diagnosis(self, config: SuiteConfig, result: RunResult) -> list[str]:
        return diagnose(config, result, figures_of(result))

    def sections(self, result: RunResult) -> list[Section]:
        return webhook_sections(figures_of(result))

    def latency_correction(self, config: SuiteConfig) -> Correction:
        return latency_correction(config)

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


__all__ = ["MISSED_BY_FAR", "Preflight", "WebhookTest", "figures_of", "probe", "statuses_text"]
