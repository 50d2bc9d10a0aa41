"""Twilio WhatsApp webhook load test (the seed's ``webhook_load_test``), as Locust users + a shape.

Profile (:class:`SeedWebhookProfile`): ramp to ``webhook.concurrent_users`` over
``webhook.ramp_up_time`` seconds; each user sends ``webhook.requests_per_user`` signed messages
(stable sender, the configured message mix, a share of bad signatures and of Twilio-style
retries); then, with ``enable_burst_testing``, ``burst_intensity`` users fire one message each at
the same moment; then the test stops. Every request goes to the Redis collector with its outcome
(success, expected rejection, backpressure, failure) and timing breakdown (time to first byte,
the bot's Server-Timing phases).

Runs plainly too: ``TWILIO_AUTH_TOKEN=... locust -f locustfiles/webhook.py --host http://127.0.0.1:8000``.
"""

from __future__ import annotations

import random
import sys
import time
from typing import Any

import gevent
from locust import FastHttpUser, LoadTestShape, User, between, constant, events, task
from locust.env import Environment
from locust.runners import STATE_INIT

from locustfiles.common import config_from_environment, install_collector
from perfsuite.collector import locust_plugin
from perfsuite.errors import EXIT_USAGE
from perfsuite.twilio import Outcome, TrafficGenerator, WebhookMessage, classify, parse_server_timing

CONFIG = config_from_environment()
"""The validated suite configuration every process of this test shares."""

_generator: TrafficGenerator | None = None


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    locust_plugin.add_arguments(parser)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    if not CONFIG.auth_token:
        print(
            "perfsuite: TWILIO_AUTH_TOKEN is not set; it is needed to sign webhook requests "
            "(use the bot's auth token, or let `perfsuite run` start the demo bot)",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USAGE)
    install_collector(environment, CONFIG, test_type="webhook")


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    # Built per test: the web UI may change the host between tests, and the signature covers it.
    global _generator
    host = environment.host or CONFIG.target.host or ""
    _generator = TrafficGenerator(
        account_sid=CONFIG.target.account_sid,
        bot_number=CONFIG.target.bot_number,
        public_url=CONFIG.public_url(host),
        auth_token=CONFIG.auth_token or "",
        mix=CONFIG.traffic.message_mix,
        invalid_signature_rate=CONFIG.traffic.invalid_signature_rate,
        duplicate_rate=CONFIG.traffic.duplicate_rate,
        rng=random.Random(),
    )


def request_name(message: WebhookMessage) -> str:
    """Stats row of a message: its kind, with bad signatures and retries kept apart."""
    if not message.signature_valid:
        return "webhook invalid-signature"
    if message.duplicate:
        return "webhook duplicate"
    return f"webhook {message.kind}"


def send_message(user: FastHttpUser, message: WebhookMessage) -> Outcome:
    """POST one signed message; classify the answer and record its timing breakdown."""
    started = time.perf_counter()
    with user.client.post(
        CONFIG.target.webhook_path,
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
        response.request_meta["response_time"] = (time.perf_counter() - started) * 1000
        timings_us = {"ttfb": int(first_byte_s * 1e6)}
        reason: str | None
        if error is not None:
            outcome, reason = Outcome.FAILURE, error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        else:
            outcome, reason = classify(response.status_code, message.signature_valid, body)
            server_timing = response.headers.get("Server-Timing") if response.headers else None
            for phase, duration_ms in parse_server_timing(server_timing).items():
                timings_us[f"server.{phase}"] = int(duration_ms * 1000)
        context["outcome"] = outcome.value
        context["timings_us"] = timings_us
        if reason:
            context["failure_reason"] = reason
        if outcome in (Outcome.SUCCESS, Outcome.REJECTED):
            response.success()
        else:
            response.failure(reason or outcome.value)
    return outcome


class WhatsAppUser(FastHttpUser):
    """One WhatsApp user: a stable sender sending ``requests_per_user`` messages, then idle."""

    host = CONFIG.target.host
    wait_time = between(*CONFIG.webhook.think_time_s)
    network_timeout = CONFIG.target.request_timeout_s
    connection_timeout = min(5.0, CONFIG.target.request_timeout_s)

    def on_start(self) -> None:
        assert _generator is not None
        self.sender = _generator.new_sender()
        self.sent = 0
        """Messages this user has sent (it stops at ``webhook.requests_per_user``)."""

    @task
    def send(self) -> None:
        if self.sent >= CONFIG.webhook.requests_per_user:
            gevent.sleep(0.5)  # quota done: wait for the shape to move on
            return
        self.sent += 1
        assert _generator is not None
        send_message(self, _generator.next_message(self.sender))


class BurstUser(FastHttpUser):
    """Burst phase: each of ``burst_intensity`` users fires one message the moment it starts."""

    host = CONFIG.target.host
    wait_time = constant(0)
    network_timeout = CONFIG.target.request_timeout_s
    connection_timeout = min(5.0, CONFIG.target.request_timeout_s)
    fixed_count = 0  # only the shape spawns these

    def on_start(self) -> None:
        assert _generator is not None
        self.sender = _generator.new_sender()
        self.fired = False

    @task
    def fire(self) -> None:
        if self.fired:
            gevent.sleep(0.5)
            return
        self.fired = True
        assert _generator is not None
        send_message(self, _generator.next_message(self.sender))


class SeedWebhookProfile(LoadTestShape):
    """ramp -> every user sends its quota -> burst -> stop; stage marks go to the collector.

    Progress is read from Locust's request count (on a master it trails the workers by one stats
    report), bounded by ``webhook.max_duration_s``.
    """

    def reset_time(self) -> None:
        super().reset_time()
        self.stage = ""
        self.burst_started_s = 0.0

    def _enter(self, stage: str) -> None:
        self.stage = stage
        writer = locust_plugin.current_writer(self.runner.environment) if self.runner else None
        if writer is not None:
            writer.mark("stage", name=stage)

    def tick(self) -> tuple[int, float, list[type[User]] | None] | None:
        settings = CONFIG.webhook
        run_time_s = self.get_run_time()
        if run_time_s > settings.max_duration_s or self.runner is None:
            return None
        # Before the first start() of a test, Locust still holds the previous test's stats.
        sent = 0 if self.runner.state == STATE_INIT else self.runner.stats.total.num_requests
        quota = settings.concurrent_users * settings.requests_per_user
        if not getattr(self, "stage", ""):
            self.burst_started_s = 0.0
            self._enter("ramp")
        if self.stage == "ramp":
            if sent < quota:
                spawn_rate = settings.concurrent_users / max(settings.ramp_up_time, 0.001)
                return settings.concurrent_users, spawn_rate, [WhatsAppUser]
            if not settings.enable_burst_testing:
                self._enter("done")
                return None
            self.burst_started_s = run_time_s
            self._enter("burst")
        if self.stage == "burst":
            burst_timeout_s = CONFIG.target.request_timeout_s + 10
            if sent < quota + settings.burst_intensity and run_time_s - self.burst_started_s < burst_timeout_s:
                # The idle WhatsAppUsers still count towards Locust's total: add the burst on top.
                total_users = settings.concurrent_users + settings.burst_intensity
                return total_users, float(settings.burst_intensity), [BurstUser]
            self._enter("done")
        return None
