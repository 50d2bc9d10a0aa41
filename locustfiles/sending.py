"""Sending one signed webhook from a Locust user and judging the answer (every webhook-sending
locustfile uses this: the webhook test, the capacity test).

The answer is judged by :func:`perfsuite.twilio.classify` (delivered, conformance, refused,
backpressure, failure); the outcome, the reason (with a short redacted excerpt of the bot's words),
a Twilio conformance finding and the timing breakdown travel to the collector in the request's
``context``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from locust import FastHttpUser

from perfsuite.arrival import START_LAG_METRIC, UNCORRECTED_METRIC
from perfsuite.config import SuiteConfig
from perfsuite.redact import Redactor
from perfsuite.twilio import Judgement, Outcome, WebhookMessage, classify, parse_server_timing
from webhook_load.rows import request_name


@dataclass(frozen=True, slots=True)
class SendSettings:
    """What sending needs from the configuration, read once."""

    webhook_path: str
    rejection_statuses: tuple[int, ...]
    redact: Redactor
    """Takes the auth token (and signatures) out of the bot's words before they are kept."""

    @classmethod
    def from_config(cls, config: SuiteConfig) -> SendSettings:
        """The settings of ``config``."""
        return cls(
            webhook_path=config.target.webhook_path,
            rejection_statuses=config.target.rejection_statuses,
            redact=Redactor(config.auth_token or ""),
        )


def send_message(
    user: FastHttpUser, message: WebhookMessage, settings: SendSettings, intended_at: float | None = None
) -> Outcome:
    """POST one signed message; classify the answer and record its timing breakdown.

    ``intended_at`` (``time.perf_counter``; arrival-rate mode): Locust's response time is counted
    from this intended start (corrected; from the actual send if that came first), the time from
    the actual send goes to ``rt_uncorrected`` and the delay of the send to ``start_lag`` (both in
    ``context["timings_us"]``).
    """
    started = time.perf_counter()
    with user.client.post(
        settings.webhook_path,
        data=message.form(),
        headers=message.headers(),
        name=request_name(message),
        stream=True,
        catch_response=True,
    ) as response:
        context = response.request_meta["context"]  # Locust builds its own dict from ours
        first_byte_s = time.perf_counter() - started
        # A status code means the bot answered (4xx/5xx included); none means the connection failed.
        error = None if response.status_code else getattr(response, "error", None) or "no response"
        body = ""
        if error is None:
            try:
                body = (response.content or b"").decode("utf-8", "replace")
            except Exception as exc:  # a reset while reading the body is a failed request
                error = exc
        # stream=True stopped Locust's clock at the headers; count the body too.
        finished = time.perf_counter()
        # From the intended start, or the actual send when the scheduler woke a little early.
        measured_from = started if intended_at is None else min(started, intended_at)
        response.request_meta["response_time"] = (finished - measured_from) * 1000
        timings_us = {"ttfb": int(first_byte_s * 1e6)}
        if intended_at is not None:
            timings_us[UNCORRECTED_METRIC] = int((finished - started) * 1e6)
            timings_us[START_LAG_METRIC] = int(max(0.0, started - intended_at) * 1e6)
        if error is not None:
            judgement = Judgement(
                Outcome.FAILURE, error if isinstance(error, str) else f"{type(error).__name__}: {error}"
            )
        else:
            status = response.status_code
            headers = response.headers
            judgement = classify(
                status,
                message.signature_valid,
                body,
                content_type=headers.get("Content-Type") if headers else None,
                rejection_statuses=settings.rejection_statuses,
                excerpt=settings.redact(body) if body and not 200 <= status < 300 else "",
            )
            server_timing = headers.get("Server-Timing") if headers else None
            for phase, duration_ms in parse_server_timing(server_timing).items():
                timings_us[f"server.{phase}"] = int(duration_ms * 1000)
        outcome = judgement.outcome
        reason = judgement.reason
        context["outcome"] = outcome.value
        context["timings_us"] = timings_us
        if reason:
            context["failure_reason"] = reason
        elif judgement.conformance:
            context["conformance"] = judgement.conformance
        if outcome in (Outcome.SUCCESS, Outcome.REJECTED):
            response.success()
        else:
            response.failure(reason or outcome.value)
    return outcome


__all__ = ["SendSettings", "send_message"]
