"""What most likely went wrong in a webhook run, said in words a bot's owner can act on.

Read from the result: the failure reasons (with the bot's own words), the outcome counts, the
signature probe run before the load, the backlog and the latency's trust verdict. Most likely
cause first; nothing when nothing went wrong.
"""

from __future__ import annotations

import re
from collections import Counter

from perfsuite.config import SuiteConfig
from perfsuite.probe import Verdict
from perfsuite.result import RunResult
from perfsuite.twilio.rows import is_bad_signature_row
from webhook_load.figures import WebhookFigures

_STATUS = re.compile(r"HTTP (\d{3})")
MOSTLY = 0.5
"""A cause is named when it accounts for at least this share of the requests it concerns."""


def _count(result: RunResult, prefix: str) -> tuple[int, Counter[str]]:
    """Requests whose failure reason starts with ``prefix``, and their HTTP statuses."""
    total, statuses = 0, Counter[str]()
    for reason in result.failure_reasons:
        if reason.reason.startswith(prefix):
            total += reason.count
            match = _STATUS.search(reason.reason)
            if match:
                statuses[match.group(1)] += reason.count
    return total, statuses


def _statuses(statuses: Counter[str]) -> str:
    return ", ".join(f"HTTP {status}" for status, _ in statuses.most_common()) or "no status"


def signature_diagnosis(config: SuiteConfig, result: RunResult, figures: WebhookFigures) -> list[str]:
    """Valid messages refused, bad signatures accepted."""
    lines: list[str] = []
    bad_sent = sum(row.count for row in result.endpoints if is_bad_signature_row(row.name))
    valid_sent = result.summary.requests - bad_sent
    refused, statuses = _count(result, "valid signature refused")
    probe = figures.probe
    if valid_sent and refused >= MOSTLY * valid_sent:
        public_url = config.target.public_url or (result.target.host + (result.target.path or ""))
        line = (
            f"the bot refused {refused:,} of {valid_sent:,} validly signed messages ({_statuses(statuses)}): "
            "most likely TWILIO_AUTH_TOKEN is not the bot's auth token, the bot validates signatures "
            f"for another URL than {public_url} (set target.public_url to the URL the bot sees), or the "
            "bot does not follow Twilio's signature scheme"
        )
        if probe is not None and probe.diagnosis:
            line += f"; the signature probe says: {probe.diagnosis}"
        else:
            line += f"; `perfsuite probe --host {result.target.host}` tells which"
        lines.append(line)
    accepted, _ = _count(result, "accepted an invalid signature")
    if accepted:
        line = (
            f"the bot accepted {accepted:,} of {bad_sent:,} requests with a bad X-Twilio-Signature: it does "
            "not validate signatures (or skips validation for some requests); anyone can post to it"
        )
        if probe is not None and probe.diagnosis and not lines:
            line += f"; the signature probe says: {probe.diagnosis}"
        lines.append(line)
    wrong = {Verdict.ACCEPTS_INVALID.value, Verdict.REJECTS_VALID.value}
    if not lines and probe is not None and any(case.verdict in wrong for case in probe.cases):
        lines.append(f"the signature probe before the load found: {probe.diagnosis}")
    return lines


def availability_diagnosis(result: RunResult, explained: bool = False) -> list[str]:
    """No answers, load shedding, errors with the bot's words (``explained``: the failures already
    have a named cause)."""
    lines: list[str] = []
    summary = result.summary
    total = summary.requests
    if not total:
        return [
            "no request was recorded: the load did not reach the bot (see the warnings and the Locust log)"
        ]
    silent, _ = _count(result, "no response")
    silent += sum(
        reason.count
        for reason in result.failure_reasons
        if "Timeout" in reason.reason or "ConnectionRefused" in reason.reason or "Reset" in reason.reason
    )
    if silent >= MOSTLY * total:
        lines.append(
            f"{silent:,} of {total:,} requests got no answer (connection refused, reset or timed out): the "
            "bot is down, overloaded, or slower than the request timeout"
        )
    if summary.backpressure >= MOSTLY * total:
        lines.append(
            f"the bot shed {summary.backpressure:,} of {total:,} requests with 429/503: it is at its limit "
            "at this load (lower the load, or raise the bot's capacity)"
        )
    failures = [r for r in result.failure_reasons if r.outcome == "failure"]
    if summary.failure >= MOSTLY * total and failures and not lines and not explained:
        top = failures[0]
        lines.append(
            f"most failures are one answer: {top.count:,} x {top.request_type} {top.name}: "
            f"{top.reason}".strip()
        )
    return lines


def backlog_diagnosis(figures: WebhookFigures) -> list[str]:
    """Work the bot queued and had not done when the watch ended."""
    backlog = figures.backlog
    if backlog.supported and backlog.drained is False:
        return [
            f"{backlog.depth_at_end} tasks were still queued {backlog.timeout_s:g} s after the load: the bot "
            "acks faster than it works, so its answers look fine while the work piles up"
        ]
    return []


def diagnose(config: SuiteConfig, result: RunResult, figures: WebhookFigures) -> list[str]:
    """Every diagnosis line of a webhook run, most likely cause first (empty when all went well)."""
    signatures = signature_diagnosis(config, result, figures)
    return [*signatures, *availability_diagnosis(result, bool(signatures)), *backlog_diagnosis(figures)]


__all__ = ["MOSTLY", "availability_diagnosis", "backlog_diagnosis", "diagnose", "signature_diagnosis"]
