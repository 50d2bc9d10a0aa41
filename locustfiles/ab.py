"""The interleaved A/B comparison's load (``perfsuite ab``): one open-model message stream, split
between two targets arrival by arrival.

Each load-generating process runs one :class:`AbArrivalUser` (the open model's driver, see
``locustfiles/arrival.py``) at ``ab.rate_per_s`` for at most ``ab.max_run_time_s``. Arrivals come in
pairs: the pair's two messages are the same message (kind, sender, body: two traffic generators
seeded alike, one signed for A's URL with A's token, one for B's with B's), and a coin decides which
target gets the first arrival of the pair and which the second. So both targets get the same stream
at the same moments, and which arrivals of any second went to A and which to B is random: what the
machine does to both in that second is common to both, and an A/A comparison is exactly symmetric
(what the sequential test in ``perfsuite/stats.py`` relies on). Rows are named ``A webhook text``,
``B webhook text``... (the collector keeps each side's histograms apart).

The comparison watcher (``abtest/watch.py``) may end the arrivals early through the run's stop key
once the answer is clear; the requests in flight then finish and are counted as usual.

Runs plainly too: ``TWILIO_AUTH_TOKEN=... PERFSUITE_OVERRIDES='{"ab.host_b": "http://127.0.0.1:8001"}'
locust -f locustfiles/ab.py --host http://127.0.0.1:8000``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Any

from locust import events
from locust.env import Environment

from locustfiles import arrival
from locustfiles.arrival import ArrivalSettings, ArrivalShape, ArrivalUser
from locustfiles.common import (
    DEFAULT_COLLECTOR_URL,
    add_arguments,
    config_from_environment,
    install_collector,
    require_auth_token,
)
from locustfiles.sending import SendSettings, close_http, send_message
from perfsuite.arrival import ArrivalPlan
from perfsuite.config import SuiteConfig
from perfsuite.twilio import Sender, TrafficGenerator, WebhookMessage
from perfsuite.twilio.messages import MAX_SENDERS

CONFIG = config_from_environment()
SEND = SendSettings.from_config(CONFIG)
SIDES = ("A", "B")
"""Row prefixes of the two targets (``A webhook text``)."""
SENDER_GAP_S = 10.0
"""Each simulated sender writes about once every this many seconds (to each target)."""


def ab_settings(config: SuiteConfig) -> ArrivalSettings:
    """The open-model settings of the comparison: ``ab.rate_per_s`` for ``ab.max_run_time_s``, with the
    ``arrival:`` section's spacing and pool bounds."""
    plan = ArrivalPlan(
        rate_per_s=config.ab.rate_per_s,
        duration_s=config.ab.max_run_time_s,
        distribution=config.arrival.distribution,
    )
    limits = config.arrival
    return ArrivalSettings(
        plan=plan,
        max_concurrency=limits.max_concurrency,
        max_waiting=limits.max_waiting,
        max_lag_s=limits.max_lag_ms / 1000,
        drain_timeout_s=config.target.request_timeout_s + 5,
    )


def side_generators(
    config: SuiteConfig, host_a: str, host_b: str, seed: int
) -> tuple[TrafficGenerator, TrafficGenerator]:
    """Two traffic generators that make the same messages (``seed``), one signed for each target."""
    first_sender = seed % (MAX_SENDERS // 2)
    generators = []
    for public_url, token in (
        (config.public_url(host_a), config.auth_token),
        (config.public_url_b(host_b), config.auth_token_b),
    ):
        generators.append(
            TrafficGenerator(
                account_sid=config.target.account_sid,
                bot_number=config.target.bot_number,
                public_url=public_url,
                auth_token=token or "",
                mix=config.traffic.message_mix,
                invalid_signature_rate=config.traffic.invalid_signature_rate,
                duplicate_rate=config.traffic.duplicate_rate,
                rng=random.Random(seed),
                first_sender_index=first_sender,
            )
        )
    return generators[0], generators[1]


@dataclass(slots=True)
class _Pairs:
    """One process's pair stream: the generators, their senders (in step) and the pending second half."""

    host_b: str
    generators: tuple[TrafficGenerator, TrafficGenerator]
    sender_count: int
    senders: list[tuple[Sender, Sender]]
    next_sender: int = 0
    pending: tuple[int, WebhookMessage] | None = None
    coin: random.Random = field(default_factory=random.Random)

    def next_arrival(self) -> tuple[int, WebhookMessage]:
        """(side index, message) of the next arrival."""
        if self.pending is not None:
            side, message = self.pending
            self.pending = None
            return side, message
        if len(self.senders) < self.sender_count:
            self.senders.append((self.generators[0].new_sender(), self.generators[1].new_sender()))
            pair = self.senders[-1]
        else:
            pair = self.senders[self.next_sender]
            self.next_sender = (self.next_sender + 1) % self.sender_count
        messages = (self.generators[0].next_message(pair[0]), self.generators[1].next_message(pair[1]))
        first = self.coin.randrange(2)
        self.pending = (1 - first, messages[1 - first])
        return first, messages[first]


arrival.register(events)


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    add_arguments(parser)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    require_auth_token(CONFIG)
    install_collector(environment, CONFIG, test_type="ab")


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    host_a = environment.host or CONFIG.target.host or ""
    host_b = CONFIG.ab.host_b or ""
    if not host_b:
        raise SystemExit(
            "perfsuite: ab.host_b is not set: the A/B comparison needs target B's URL (--host-b)"
        )
    seed = int.from_bytes(os.urandom(8), "big")
    peak = CONFIG.ab.rate_per_s / 2
    environment.perfsuite_ab = _Pairs(  # type: ignore[attr-defined]
        host_b=host_b.rstrip("/"),
        generators=side_generators(CONFIG, host_a, host_b, seed),
        sender_count=min(100_000, max(10, int(peak * SENDER_GAP_S))),
        senders=[],
        coin=random.Random(seed ^ 0x5A5A),
    )


class AbArrivalUser(ArrivalUser):
    """Sends this process's share of the arrivals, each pair's halves to A and B in random order."""

    abstract = False
    host = CONFIG.target.host
    network_timeout = CONFIG.target.request_timeout_s
    connection_timeout = min(5.0, CONFIG.target.request_timeout_s)
    concurrency = CONFIG.arrival.max_concurrency
    settings = ab_settings(CONFIG)
    stop_redis = (CONFIG.collector_redis_url or DEFAULT_COLLECTOR_URL, CONFIG.redis.key_prefix)

    def on_stop(self) -> None:
        close_http(self)

    def send_arrival(self, intended_at: float) -> None:
        pairs: _Pairs = self.environment.perfsuite_ab
        side, message = pairs.next_arrival()
        send_message(
            self,
            message,
            SEND,
            intended_at=intended_at,
            host=None if side == 0 else pairs.host_b,
            name_prefix=f"{SIDES[side]} ",
        )


class AbArrivalShape(ArrivalShape):
    """One :class:`AbArrivalUser` per process until every driver is done."""

    abstract = False
    user_class = AbArrivalUser
    settings = AbArrivalUser.settings
