"""Twilio WhatsApp webhook load test (the seed's ``webhook_load_test``), as Locust users + a shape.

Profile (:class:`SeedWebhookProfile`): ramp to ``webhook.concurrent_users`` over
``webhook.ramp_up_time`` seconds; each user sends ``webhook.requests_per_user`` signed messages
(stable sender, the configured message mix, a share of bad signatures and of Twilio-style
retries); then, with ``enable_burst_testing``, ``burst_intensity`` users fire one message each at
the same moment; then the test stops. Every request goes to the Redis collector with its outcome
(success, expected rejection, backpressure, failure) and timing breakdown (time to first byte,
the bot's Server-Timing phases).

Arrival-rate mode (``arrival.rate_per_s`` set, e.g. ``perfsuite run --arrival-rate 200 --run-time 20``):
an open model instead of the profile. :class:`WebhookArrivalShape` runs one
:class:`WebhookArrivalUser` per load-generating process, whose driver (``locustfiles/arrival.py``)
sends each message at its intended time; Locust's response time is then counted from that intended
start (no coordinated omission), the time from the actual send goes to the ``rt_uncorrected``
metric and the start delay to ``start_lag``. Each arrival comes from a pool of senders sized so that
one sender writes about once every ``SENDER_GAP_S`` seconds (a per-user rate limit is not what is
being measured).

Every process that sends load samples its own CPU and event-loop lag (``perfsuite.workers``,
installed with the collector): ``worker_health`` marks each second and with its totals at test stop,
which decide whether the run's latency can be trusted.

Runs plainly too: ``TWILIO_AUTH_TOKEN=... locust -f locustfiles/webhook.py --host http://127.0.0.1:8000``
(arrival-rate mode: add ``PERFSUITE_OVERRIDES='{"arrival.rate_per_s": 200, "arrival.duration_s": 20}'``).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any

import gevent
from locust import FastHttpUser, LoadTestShape, User, constant, events, task
from locust.env import Environment
from locust.runners import STATE_INIT

from locustfiles import arrival
from locustfiles.arrival import ArrivalSettings, ArrivalShape, ArrivalUser
from locustfiles.common import (
    add_arguments,
    add_web_ui_arguments,
    config_from_environment,
    install_collector,
    per_test_config,
    require_auth_token,
    traffic_generator,
)
from locustfiles.sending import SendSettings, close_http, send_message
from perfsuite.collector import locust_plugin
from perfsuite.config import SuiteConfig
from perfsuite.marks import STAGE, Stage
from perfsuite.twilio import Sender, TrafficGenerator
from perfsuite.workers import worker_watch_of

CONFIG = config_from_environment()
"""The validated suite configuration every process of this test shares."""

SEND = SendSettings.from_config(CONFIG)
"""How messages are sent and their answers judged (the webhook path, the rejection statuses)."""

ARRIVAL_MODE = CONFIG.arrival.rate_per_s is not None
"""True: open model at ``arrival.rate_per_s``; False: the seed's closed-model profile."""

SENDER_GAP_S = 10.0
"""Arrival-rate mode: each simulated sender writes about once every this many seconds."""


@dataclass(slots=True)
class WebhookState:
    """This process's webhook test state, kept on Locust's Environment (one per test run)."""

    generator: TrafficGenerator | None = None
    """Signed messages for the current test (rebuilt per test: the web UI may change the host)."""
    send: SendSettings = SEND
    """How the current test's messages are sent and judged."""


def state_of(environment: Environment) -> WebhookState:
    """The webhook state kept on ``environment`` (created on first use)."""
    state = getattr(environment, "perfsuite_webhook", None)
    if not isinstance(state, WebhookState):
        state = WebhookState()
        environment.perfsuite_webhook = state  # type: ignore[attr-defined]
    return state


def config_of(environment: Environment) -> SuiteConfig:
    """The configuration of the test now running (the web UI may choose another scenario and
    settings for each test)."""
    return per_test_config(environment, CONFIG)


def send_settings_of(environment: Environment) -> SendSettings:
    """How this test's messages are sent and judged."""
    config = config_of(environment)
    return SEND if config is CONFIG else SendSettings.from_config(config)


def generator_of(environment: Environment) -> TrafficGenerator:
    """The current test's traffic generator (built at test start)."""
    generator = state_of(environment).generator
    assert generator is not None, "the traffic generator is built at test start"
    return generator


arrival.register(events)  # at import time: before the collector's listeners (installed at init)


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    add_arguments(parser)
    add_web_ui_arguments(parser, CONFIG)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    require_auth_token(CONFIG)
    install_collector(environment, CONFIG, test_type="webhook", per_test=config_of)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    # Built per test: the web UI may change the host between tests, and the signature covers it.
    config = config_of(environment)
    state = state_of(environment)
    state.send = send_settings_of(environment)
    state.generator = traffic_generator(config, environment.host or config.target.host or "")


class WhatsAppUser(FastHttpUser):
    """One WhatsApp user: a stable sender sending ``requests_per_user`` messages, then idle."""

    host = CONFIG.target.host
    network_timeout = CONFIG.target.request_timeout_s
    connection_timeout = min(5.0, CONFIG.target.request_timeout_s)

    def wait_time(self) -> float:
        """A pause between one user's messages (``webhook.think_time_s`` of this test)."""
        low, high = self.settings.think_time_s
        return random.uniform(low, high)

    def on_start(self) -> None:
        self.settings = config_of(self.environment).webhook
        self.generator = generator_of(self.environment)
        self.send_settings = state_of(self.environment).send
        self.sender = self.generator.new_sender()
        self.sent = 0

    def on_stop(self) -> None:
        close_http(self)
        """Messages this user has sent (it stops at ``webhook.requests_per_user``)."""

    @task
    def send(self) -> None:
        if self.settings.run_time_s is None and self.sent >= self.settings.requests_per_user:
            gevent.sleep(0.5)  # quota done: wait for the shape to move on
            return
        self.sent += 1
        send_message(self, self.generator.next_message(self.sender), self.send_settings)


class BurstUser(FastHttpUser):
    """Burst phase: each of ``burst_intensity`` users fires one message the moment it starts."""

    host = CONFIG.target.host
    wait_time = constant(0)
    network_timeout = CONFIG.target.request_timeout_s
    connection_timeout = min(5.0, CONFIG.target.request_timeout_s)
    fixed_count = 0  # only the shape spawns these

    def on_start(self) -> None:
        self.generator = generator_of(self.environment)
        self.send_settings = state_of(self.environment).send
        self.sender = self.generator.new_sender()
        self.fired = False

    def on_stop(self) -> None:
        close_http(self)

    @task
    def fire(self) -> None:
        if self.fired:
            gevent.sleep(0.5)
            return
        self.fired = True
        send_message(self, self.generator.next_message(self.sender), self.send_settings)


class SeedWebhookProfile(LoadTestShape):
    """ramp -> every user sends its quota (or, with ``webhook.run_time_s``, sends until that time
    passed, as Locust's ``--run-time``) -> burst -> stop; stage marks go to the collector.

    Progress is read from Locust's request count (on a master it trails the workers by one stats
    report), bounded by ``webhook.max_duration_s``. Not used in arrival-rate mode.
    """

    abstract = ARRIVAL_MODE

    def reset_time(self) -> None:
        super().reset_time()
        self.stage = ""
        self.burst_started_s = 0.0
        self.burst_from = 0
        self.unmarked: list[tuple[str, float]] = []

    def _enter(self, stage: str) -> None:
        self.stage = stage
        if not hasattr(self, "unmarked"):
            self.unmarked = []
        self.unmarked.append((stage, time.time()))
        self._write_marks()

    def _write_marks(self) -> None:
        # The first stage begins before Locust's test_start opens the run: keep its mark (with
        # its own time) until the collector has a writer for this test.
        writer = locust_plugin.current_writer(self.runner.environment) if self.runner else None
        if writer is None:
            return
        for stage, at_s in self.unmarked:
            writer.mark(STAGE, at_s=at_s, name=stage)
        self.unmarked.clear()

    @property
    def _config(self) -> SuiteConfig:
        return config_of(self.runner.environment) if self.runner is not None else CONFIG

    @property
    def _quota(self) -> int:
        """Messages of the steady stage in the seed's profile (0 when it is bounded by time)."""
        settings = self._config.webhook
        return (
            0 if settings.run_time_s is not None else settings.concurrent_users * settings.requests_per_user
        )

    def _load_done(self, sent: int, run_time_s: float) -> bool:
        """The steady stage is over: every user sent its quota, or ``webhook.run_time_s`` passed.

        The users of a worker lost mid-run never send the rest of their quota: what they still owed
        comes off it (what the master had received from them stays in ``sent``), so the run ends when
        the surviving users are done instead of waiting for ``webhook.max_duration_s``."""
        settings = self._config.webhook
        if settings.run_time_s is not None:
            return run_time_s >= settings.run_time_s
        quota = self._quota
        watch = worker_watch_of(self.runner.environment) if self.runner is not None else None
        if watch is not None:
            lost_users, lost_reported = watch.lost_load()
            quota -= max(0, lost_users * settings.requests_per_user - lost_reported)
        return sent >= quota

    def tick(self) -> tuple[int, float, list[type[User]] | None] | None:
        settings = self._config.webhook
        run_time_s = self.get_run_time()
        if getattr(self, "unmarked", None):
            self._write_marks()
        if run_time_s > settings.max_duration_s or self.runner is None:
            return None
        # Before the first start() of a test, Locust still holds the previous test's stats.
        sent = 0 if self.runner.state == STATE_INIT else self.runner.stats.total.num_requests
        if not getattr(self, "stage", ""):
            self.burst_started_s = 0.0
            self._enter(Stage.RAMP)
        if self.stage == Stage.RAMP:
            if not self._load_done(sent, run_time_s):
                spawn_rate = settings.concurrent_users / max(settings.ramp_up_time, 0.001)
                return settings.concurrent_users, spawn_rate, [WhatsAppUser]
            if not settings.enable_burst_testing:
                self._enter(Stage.DONE)
                return None
            self.burst_started_s = run_time_s
            self.burst_from = max(sent, self._quota)
            self._enter(Stage.BURST)
        if self.stage == Stage.BURST:
            burst_timeout_s = self._config.target.request_timeout_s + 10
            if (
                sent < self.burst_from + settings.burst_intensity
                and run_time_s - self.burst_started_s < burst_timeout_s
            ):
                # The idle WhatsAppUsers still count towards Locust's total: add the burst on top.
                total_users = settings.concurrent_users + settings.burst_intensity
                return total_users, float(settings.burst_intensity), [BurstUser]
            self._enter(Stage.DONE)
        return None


class WebhookArrivalUser(ArrivalUser):
    """Arrival-rate mode: sends this process's share of the arrivals, each from the next sender."""

    abstract = not ARRIVAL_MODE
    host = CONFIG.target.host
    network_timeout = CONFIG.target.request_timeout_s
    connection_timeout = min(5.0, CONFIG.target.request_timeout_s)
    concurrency = CONFIG.arrival.max_concurrency
    settings = ArrivalSettings.from_config(CONFIG) if ARRIVAL_MODE else None

    def on_start(self) -> None:
        peak = self.settings.plan.peak_rate_per_s if self.settings is not None else 1.0
        self.sender_count = min(100_000, max(CONFIG.webhook.concurrent_users, math.ceil(peak * SENDER_GAP_S)))
        """Senders taken in turn (a process's senders are its own: each starts at a random index)."""
        self.senders: list[Sender] = []
        """Made as first needed (making thousands at once would stall the event loop)."""
        self.next_sender = 0

    def on_stop(self) -> None:
        close_http(self)

    def send_arrival(self, intended_at: float) -> None:
        generator = generator_of(self.environment)
        if len(self.senders) < self.sender_count:
            self.senders.append(generator.new_sender())
            sender = self.senders[-1]
        else:
            sender = self.senders[self.next_sender]
            self.next_sender = (self.next_sender + 1) % self.sender_count
        send_message(
            self, generator.next_message(sender), state_of(self.environment).send, intended_at=intended_at
        )


class WebhookArrivalShape(ArrivalShape):
    """Arrival-rate mode: one :class:`WebhookArrivalUser` per process until every driver is done."""

    abstract = not ARRIVAL_MODE
    user_class = WebhookArrivalUser
    settings = WebhookArrivalUser.settings
