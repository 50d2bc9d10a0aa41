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
from typing import Any
from urllib.parse import urlsplit

from geventhttpclient import HTTPClient
from locust import User

from perfsuite.arrival import START_LAG_METRIC, UNCORRECTED_METRIC
from perfsuite.config import SuiteConfig
from perfsuite.redact import Redactor
from perfsuite.twilio import Judgement, Outcome, WebhookMessage, classify, parse_server_timing
from perfsuite.twilio.rows import request_name


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


class _NotAnswered(Exception):
    """A request not answered as intended: Locust's statistics count it as a failure, by its reason."""


def http_client(user: User, host: str | None = None) -> HTTPClient:
    """The user's own HTTP client to the target (or to ``host``: the A/B comparison's users have
    one per target), kept on the user: a keep-alive connection pool as large as the user sends at
    once (one for a WhatsApp user, ``concurrency`` for the open model's sender pool); TLS
    certificates are not verified, as Locust's FastHttpUser does."""
    clients: dict[str | None, HTTPClient] = user.__dict__.setdefault("_perfsuite_http", {})
    client = clients.get(host)
    if client is None:
        url = host or user.host or user.environment.host or ""
        client = HTTPClient.from_url(
            url,
            concurrency=max(1, int(getattr(user, "concurrency", 1))),
            connection_timeout=float(getattr(user, "connection_timeout", 5.0)),
            network_timeout=float(getattr(user, "network_timeout", 15.0)),
            insecure=True,
        )
        clients[host] = client
        user.__dict__.setdefault("_perfsuite_base_path", {})[host] = urlsplit(url).path.rstrip("/")
    return client


def close_http(user: User) -> None:
    """Close the user's connections (call from ``on_stop``: a stopped user keeps no socket open)."""
    for client in user.__dict__.pop("_perfsuite_http", {}).values():
        client.close()


def send_message(
    user: User,
    message: WebhookMessage,
    settings: SendSettings,
    intended_at: float | None = None,
    *,
    host: str | None = None,
    name_prefix: str = "",
) -> Outcome:
    """POST one signed message, judge the answer, and fire one Locust ``request`` event with the
    outcome and the timing breakdown (the lean path: the form encoded once, no response wrapper).

    The response time runs to the end of the body. ``intended_at`` (``time.perf_counter``; open
    model): it is counted from this intended start (corrected; from the actual send if that came
    first), the time from the actual send goes to ``rt_uncorrected`` and the delay of the send to
    ``start_lag`` (both in ``context["timings_us"]``). ``host``: send there instead of the user's
    target; ``name_prefix`` goes before the statistics row's name (the A/B comparison's ``A ``/``B ``).
    """
    client = http_client(user, host)
    path = user.__dict__["_perfsuite_base_path"][host] + settings.webhook_path
    start_time = time.time()
    started = time.perf_counter()
    status = 0
    raw = b""
    content_type = server_timing = None
    first_byte_s = 0.0
    error: BaseException | None = None
    try:
        response = client.request("POST", path, body=message.body(), headers=message.headers())
        first_byte_s = time.perf_counter() - started
        try:
            status = response.status_code
            content_type = response.get("content-type")
            server_timing = response.get("server-timing")
            raw = response.read()  # a reset while reading the body is a failed request
        finally:
            response.release()
    except Exception as exc:  # connection refused or reset, timeout: no answer
        error = exc
    finished = time.perf_counter()
    # From the intended start, or the actual send when the scheduler woke a little early.
    measured_from = started if intended_at is None else min(started, intended_at)
    timings_us = {"ttfb": int(first_byte_s * 1e6)}
    if intended_at is not None:
        timings_us[UNCORRECTED_METRIC] = int((finished - started) * 1e6)
        timings_us[START_LAG_METRIC] = int(max(0.0, started - intended_at) * 1e6)
    if error is not None or not status:
        judgement = Judgement(Outcome.FAILURE, f"{type(error).__name__}: {error}" if error else "no response")
    else:
        body = raw.decode("utf-8", "replace")
        judgement = classify(
            status,
            message.signature_valid,
            body,
            content_type=str(content_type) if content_type is not None else None,
            rejection_statuses=settings.rejection_statuses,
            excerpt=settings.redact(body) if body and not 200 <= status < 300 else "",
        )
        if server_timing:
            for phase, duration_ms in parse_server_timing(str(server_timing)).items():
                timings_us[f"server.{phase}"] = int(duration_ms * 1000)
    outcome, reason = judgement.outcome, judgement.reason
    context: dict[str, Any] = {"outcome": outcome.value, "timings_us": timings_us}
    if reason:
        context["failure_reason"] = reason
    elif judgement.conformance:
        context["conformance"] = judgement.conformance
    answered = outcome in (Outcome.SUCCESS, Outcome.REJECTED)
    user.environment.events.request.fire(
        request_type="POST",
        name=name_prefix + request_name(message),
        response_time=(finished - measured_from) * 1000,
        response_length=len(raw),
        exception=None if answered else _NotAnswered(reason or outcome.value),
        context=context,
        start_time=start_time,
        url=path,
        response=None,
    )
    return outcome


__all__ = ["SendSettings", "close_http", "http_client", "send_message"]
