"""scenarios.yaml + command line -> one typed, validated, frozen configuration.

Every value is checked once, here, when the file is loaded: a bad value raises
:class:`~perfsuite.errors.ConfigError` naming its key path (``webhook.concurrent_users``), the
value and what is allowed. Secrets never come from the file: ``TWILIO_AUTH_TOKEN`` and
``REDIS_URL`` are read from the environment and kept in :class:`pydantic.SecretStr` so that they
stay out of ``repr``, logs and the config snapshot stored with each run.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from perfsuite.backlog import BacklogConfig
from perfsuite.errors import ConfigError
from perfsuite.faults.schedule import FaultSchedule, FaultWindow
from perfsuite.redact import redact_text, redact_url
from perfsuite.twilio import MESSAGE_KINDS

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "scenarios.yaml"
"""The repository's scenarios.yaml (used when neither ``--config`` nor PERFSUITE_CONFIG names one)."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TargetConfig(_Section):
    """The bot under test and how Twilio would reach it."""

    host: str | None = None
    """Base URL Locust connects to (``http://127.0.0.1:8000``); None starts the embedded demo bot."""
    webhook_path: str = "/webhook/whatsapp"
    public_url: str | None = None
    """URL the bot sees and Twilio signs; None means ``host + webhook_path``."""
    health_path: str | None = "/health"
    account_sid: str = "AC" + "0" * 32
    bot_number: str = "+14155238886"
    request_timeout_s: float = Field(15.0, gt=0, le=600)
    demo_bot_mode: Literal["optimized", "legacy"] = "optimized"
    rejection_statuses: tuple[int, ...] = (401, 403)
    """Statuses that count as the bot refusing a message (the expected answer to a bad signature)."""
    probe: bool = True
    """Probe how the bot answers valid, wrong, missing, misdirected and replayed signatures before
    the load (five requests, not counted in the load's figures)."""
    backlog: BacklogConfig = BacklogConfig()
    """Where the bot keeps its backlog (its Redis keys, a Prometheus metric, /health) and its process
    on this machine; with nothing given, the health endpoint's queue depth."""

    @field_validator("rejection_statuses")
    @classmethod
    def _rejection_statuses(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        bad = [status for status in value if not 400 <= status <= 499 or status == 429]
        if not value or bad:
            raise ValueError(
                f"must be one or more 4xx statuses other than 429 (backpressure), got {list(value)}"
            )
        return tuple(sorted(set(value)))

    @field_validator("host", "public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL such as http://127.0.0.1:8000, got {value!r}")
        return value.rstrip("/") if parts.path in ("", "/") else value

    @field_validator("webhook_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"must start with '/', got {value!r}")
        return value

    @field_validator("account_sid")
    @classmethod
    def _account_sid(cls, value: str) -> str:
        if len(value) != 34 or not value.startswith("AC"):
            raise ValueError("must be 'AC' followed by 32 hex digits")
        int(value[2:], 16)
        return value

    @field_validator("bot_number")
    @classmethod
    def _e164(cls, value: str) -> str:
        if not (value.startswith("+") and value[1:].isdigit() and 8 <= len(value) <= 16):
            raise ValueError(f"must be an E.164 number such as +14155238886, got {value!r}")
        return value


class RedisConfig(_Section):
    """Where the collector keeps every run."""

    url: str | None = None
    """Collector Redis; ``REDIS_URL`` overrides it; None tries 127.0.0.1:6379 then embeds one."""
    key_prefix: str = Field("perfsuite", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    retention_days: float = Field(30, gt=0)

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value


class CollectorConfig(_Section):
    """How each Locust process writes its intervals."""

    flush_interval_s: float = Field(1.0, gt=0, le=60)
    max_pending_batches: int = Field(600, ge=1)
    spill_dir: Path = Path(".perfsuite/spill")


class MetricsConfig(_Section):
    """The live OpenMetrics/Prometheus endpoint of ``perfsuite run`` and ``perfsuite web``
    (``perfsuite/metrics``): off unless a port is given (``--metrics-port``)."""

    port: int | None = Field(None, ge=0, le=65535)
    """TCP port to serve ``/metrics`` on; None: no endpoint; 0: any free port (printed)."""
    host: str = Field("127.0.0.1", min_length=1)
    """Address to listen on (``0.0.0.0`` in a container, for a Prometheus outside it)."""
    linger_s: float = Field(5.0, ge=0, le=300)
    """How long the final figures stay up after the run's data is final, for the last scrape
    (seconds; it overlaps with the report's writing; then the port is released)."""
    window_s: int = Field(10, ge=1, le=3600)
    """The recent window of the rate and windowed percentiles (whole seconds)."""
    backlog_interval_s: float = Field(2.0, ge=0.2, le=600)
    """How often the bot's backlog sources (``target.backlog``) are read while the endpoint serves."""


def _think_time_range(value: tuple[float, float]) -> tuple[float, float]:
    low, high = value
    if low < 0 or high < low:
        raise ValueError(f"must be [min, max] with 0 <= min <= max, got {list(value)}")
    return value


ThinkTime = Annotated[tuple[float, float], AfterValidator(_think_time_range)]
"""A user's pause between two messages: [min, max] seconds, 0 <= min <= max."""


class WebhookConfig(_Section):
    """The seed's LoadTestConfig, with the same names and defaults."""

    concurrent_users: int = Field(50, ge=1, le=100_000)
    requests_per_user: int = Field(20, ge=1, le=1_000_000)
    ramp_up_time: float = Field(10, ge=0, le=3600)
    enable_burst_testing: bool = True
    burst_intensity: int = Field(100, ge=1, le=100_000)
    target_response_time_ms: float = Field(500.0, gt=0)
    max_response_time_ms: float = Field(2000.0, gt=0)
    success_threshold: float = Field(0.99, ge=0, le=1)
    think_time_s: ThinkTime = (0.05, 0.2)
    max_duration_s: float = Field(300, gt=0, le=86_400)
    backlog_drain_timeout_s: float = Field(30, ge=0, le=3600)
    run_time_s: float | None = Field(None, gt=0, le=86_400)
    """Bound the steady stage by time instead of each user's quota (``--run-time``, as Locust's):
    users send until it passed, then the burst."""

    @model_validator(mode="after")
    def _target_below_max(self) -> WebhookConfig:
        if self.target_response_time_ms > self.max_response_time_ms:
            raise ValueError(
                f"target_response_time_ms ({self.target_response_time_ms}) must not exceed "
                f"max_response_time_ms ({self.max_response_time_ms})"
            )
        return self


class TrafficConfig(_Section):
    """What the simulated WhatsApp users send."""

    message_mix: dict[str, float] = Field(
        default_factory=lambda: {
            "text": 50.0,
            "document": 15.0,
            "image": 10.0,
            "location": 5.0,
            "button": 10.0,
            "command": 10.0,
        }
    )
    invalid_signature_rate: float = Field(0.02, ge=0, le=1)
    duplicate_rate: float = Field(0.02, ge=0, le=1)

    @field_validator("message_mix")
    @classmethod
    def _mix(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(MESSAGE_KINDS))
        if unknown:
            raise ValueError(f"unknown message kind(s) {unknown}; allowed: {', '.join(MESSAGE_KINDS)}")
        if any(weight < 0 for weight in value.values()) or sum(value.values()) <= 0:
            raise ValueError("weights must be >= 0 with a positive sum")
        return value

    @model_validator(mode="after")
    def _rates_fit(self) -> TrafficConfig:
        if self.invalid_signature_rate + self.duplicate_rate > 1:
            raise ValueError(
                f"invalid_signature_rate ({self.invalid_signature_rate}) + duplicate_rate "
                f"({self.duplicate_rate}) must not exceed 1"
            )
        return self


class ArrivalConfig(_Section):
    """Open-model load: requests arrive at a rate whatever the bot does (no coordinated omission).

    With ``rate_per_s`` unset the webhook test runs the seed's closed-model profile instead.
    """

    rate_per_s: float | None = Field(None, gt=0, le=100_000)
    """Arrivals per second (all workers together); None keeps the closed-model profile."""
    ramp_to_rate_per_s: float | None = Field(None, gt=0, le=100_000)
    """When set, the rate ramps linearly from ``rate_per_s`` to this over ``duration_s``."""
    duration_s: float = Field(60, gt=0, le=86_400)
    distribution: Literal["uniform", "poisson"] = "poisson"
    max_concurrency: int = Field(1000, ge=1, le=100_000)
    """Requests in flight at most per process. An arrival that finds every slot busy waits for one
    (it starts late and is counted; its latency still runs from its intended start)."""
    max_waiting: int = Field(10_000, ge=0, le=1_000_000)
    """Arrivals waiting for a free slot at most per process; an arrival beyond it is dropped (counted)."""
    max_lag_ms: float = Field(10.0, gt=0)
    """Scheduling lag beyond this marks the run's latency as untrustworthy."""
    max_cpu_percent: float = Field(90.0, gt=0, le=100)
    """Generator CPU above this marks the run's latency as untrustworthy."""


AB_METRICS = ("p50", "p95", "p99", "avg")
"""Statistics the A/B comparison compares slice by slice (``ab.metric`` picks the one it decides on)."""


class AbConfig(_Section):
    """The interleaved A/B comparison (``perfsuite ab``): one open-model message stream split between
    two targets arrival by arrival, compared slice by slice with an always-valid sequential test."""

    host_b: str | None = None
    """Target B's base URL (A is ``target.host`` / ``--host-a``); the token: TWILIO_AUTH_TOKEN_B,
    else TWILIO_AUTH_TOKEN."""
    public_url_b: str | None = None
    """The URL B's signatures cover when not what Locust connects to (as ``target.public_url``)."""
    rate_per_s: float = Field(200, gt=0, le=100_000)
    """Arrivals per second, both targets together (half each)."""
    max_run_time_s: float = Field(120, gt=0, le=86_400)
    """The comparison stops here when the answer is still not clear."""
    metric: Literal["p50", "p95", "p99", "avg"] = "p95"
    """The statistic the verdict and the early stop are decided on (the others are shown)."""
    confidence: float = Field(0.95, gt=0.5, lt=1)
    """Confidence of the always-valid interval: a false "slower" (or "faster") comes at most
    (1 - confidence) / 2 of the time, however early the comparison stops."""
    min_effect: float = Field(0.05, ge=0, le=10)
    """The sensitivity: a difference under this share (0.05 = 5%) is no difference: a verdict "slower"
    needs the estimate beyond it, and the comparison stops as "no difference" once the interval
    lies within plus or minus it."""
    slice_s: int | None = Field(None, ge=1, le=600)
    """Seconds per paired slice; None: as few as give each side ``min_slice_requests`` requests."""
    min_slice_requests: int = Field(50, ge=5, le=1_000_000)
    """A slice where either side has fewer answered requests is left out of the pairing."""
    min_slices: int = Field(10, ge=2, le=100_000)
    """No early stop before this many paired slices."""
    warmup_s: float = Field(2.0, ge=0, le=600)
    """The first seconds (connections opening, caches warming) are not compared."""


class BreakerConfig(_Section):
    """Circuit breaker around the benchmark's Redis client."""

    failure_threshold: int = Field(5, ge=1)
    """Consecutive failures that open the breaker."""
    reset_timeout_s: float = Field(1.0, gt=0)
    """Seconds the breaker stays open before it lets one trial call through (half-open)."""
    half_open_successes: int = Field(1, ge=1)
    """Successful trial calls that close it again."""


class RedisBenchConfig(_Section):
    """The seed's RedisBenchmarkConfig plus the pool, key space and thresholds."""

    url: str | None = None
    """Redis to benchmark (or ``--host redis://...``); None starts a private redis-server for it."""
    concurrent_operations: int = Field(100, ge=1, le=10_000)
    operations_per_worker: int = Field(1000, ge=1, le=10_000_000)
    read_percentage: float = Field(70, ge=0, le=100)
    write_percentage: float = Field(25, ge=0, le=100)
    delete_percentage: float = Field(5, ge=0, le=100)
    test_circuit_breaker: bool = True
    failure_injection_rate: float = Field(0.1, ge=0, le=1)
    pool_size: int = Field(20, ge=1)
    max_connections: int = Field(100, ge=1)
    """Hard cap of the bounded pool per process; at least concurrent_operations (per process), no
    client waits for the benchmark's own pool and the latency is Redis's."""
    connect_timeout_s: float = Field(1.0, gt=0)
    socket_timeout_s: float = Field(1.0, gt=0)
    pool_wait_timeout_s: float = Field(2.0, gt=0)
    key_prefix: str = Field("perfsuite:bench:", min_length=1)
    key_space: int = Field(10_000, ge=1)
    value_size_bytes: tuple[int, int] = (64, 1024)
    key_distribution: Literal["uniform", "zipf"] = "uniform"
    zipf_s: float = Field(1.1, gt=1)
    pipeline_depth: int = Field(1, ge=1, le=1000)
    pool_warn_utilization: float = Field(0.8, gt=0, le=1)
    target_avg_latency_ms: float = Field(5.0, gt=0)
    max_p99_latency_ms: float = Field(50.0, gt=0)
    min_ops_per_s: float = Field(1000.0, ge=0)
    max_duration_s: float = Field(120, gt=0, le=86_400)
    outages: int = Field(3, ge=0, le=100)
    """Injected outage windows per Locust process (with test_circuit_breaker), spread evenly over
    its operations; every operation in a window fails (connection refused, server hung until
    socket_timeout_s, connection reset, in turn), so the breaker trips and must close again."""
    outage_duration_s: float = Field(1.5, gt=0, le=600)
    sample_interval_s: float = Field(1.0, gt=0, le=60)
    """How often each process records pool gauges, PING latency and breaker state."""
    min_success_rate: float = Field(0.99, ge=0, le=1)
    """Share of operations sent to the server (not injected, not refused by the breaker) that succeed."""
    breaker: BreakerConfig = BreakerConfig()

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_serializer("url", when_used="json")
    def _redacted_url(self, value: str | None) -> str | None:
        return redact_url(value)  # the config snapshot stored with each run never holds a password

    @model_validator(mode="after")
    def _consistent(self) -> RedisBenchConfig:
        total = self.read_percentage + self.write_percentage + self.delete_percentage
        if abs(total - 100) > 1e-9:
            raise ValueError(
                f"read_percentage + write_percentage + delete_percentage must be 100, got {total:g}"
            )
        if self.pool_size > self.max_connections:
            raise ValueError(
                f"pool_size ({self.pool_size}) must not exceed max_connections ({self.max_connections})"
            )
        low, high = self.value_size_bytes
        if low < 1 or high < low:
            raise ValueError(f"value_size_bytes must be [min, max] with 1 <= min <= max, got {[low, high]}")
        return self


# ---------------------------------------------------------------- capacity (the seed's CapacityTestConfig)


class CapacitySlo(_Section):
    """What a step must meet to count as held: the capacity is the highest step meeting both."""

    p95_ms: float = Field(500.0, gt=0)
    """P95 response time of the step's requests at most this (ms; the seed's target response time)."""
    success_rate: float = Field(0.99, ge=0, le=1)
    """Share answered as intended (success + expected rejections) at least this."""
    max_backlog_growth: float | None = Field(None, ge=0, le=10)
    """With a value, the bot's queue (its /health) may grow at most by this share of the step's answers
    per second (0.05: 5 queued per 100 answered): a bot that acks faster than it works does not hold
    the load. Null (the seed's SLOs: latency and success only): not judged, a warning says when the
    queue grew that fast at the capacity step. A bot stating no queue depth is never held to it."""


class KneeConfig(_Section):
    """The knee rule: the first step whose throughput stops growing with the load while latency climbs."""

    min_efficiency: float = Field(0.5, ge=0, le=1)
    """Throughput stops growing when it grew by less than this share of the load's growth (relative:
    the load doubles, throughput rose less than 50%)."""
    latency_growth: float = Field(0.5, gt=0)
    """Latency climbs when the step's P95 exceeds the previous step's by this share ..."""
    latency_floor_ms: float = Field(10.0, ge=0)
    """... where a previous P95 under this counts as this (a 2 -> 4 ms jump is not a climb)."""


class RecoveryConfig(_Section):
    """How recovery after a fault window is measured (rule in the README)."""

    window_s: float = Field(5.0, gt=0, le=600)
    """Rolling window: recovered from the first moment after which every window of this length holds
    the pre-fault levels until the observation ends."""
    success_margin: float = Field(0.02, ge=0, le=1)
    """A window holds when its success rate is at least the pre-fault one minus this (points) ..."""
    p95_margin: float = Field(0.5, ge=0)
    """... and its P95 at most the pre-fault P95 times (1 + this) ..."""
    p95_floor_ms: float = Field(20.0, ge=0)
    """... or the pre-fault P95 plus this, whichever is larger (a 3 ms reference is noisy)."""
    warmup_s: float = Field(3.0, ge=0, le=600)
    """Seconds at the start of the outage phase left out of the pre-fault reference."""
    observe_s: float = Field(65.0, gt=0, le=3600)
    """Seconds observed after the last window healed (the seed's target is recovery under 60 s)."""
    max_recovery_s: float = Field(60.0, gt=0)
    """The check: recovery within this (seed: under 60 s)."""
    min_success_during: float = Field(0.90, ge=0, le=1)
    """The check: success rate during an outage at least this (seed: > 90% with graceful degradation)."""


class AlertsConfig(_Section):
    """Live threshold alerts while the run goes (requirement 4.3)."""

    window_s: float = Field(10.0, gt=0, le=600)
    """Sliding window of the P95 and of the CPU means."""
    interval_s: float = Field(1.0, gt=0, le=60)
    """How often resources are sampled and alerts evaluated."""
    p95_warning_ms: float = Field(1000.0, gt=0)
    p95_critical_ms: float = Field(3000.0, gt=0)
    cpu_percent: float = Field(80.0, gt=0, le=10_000)
    """The bot's process (100 = one core) or the machine (100 = every core) past this: warning."""
    memory_percent: float = Field(80.0, gt=0, le=100)
    """The machine's memory in use past this share: warning."""
    pool_utilization: float = Field(0.8, gt=0, le=1)
    """The bot's connection pool (its /health ``pool``: in_use / max) past this share: warning (5.2)."""

    @model_validator(mode="after")
    def _ordered(self) -> AlertsConfig:
        if self.p95_critical_ms < self.p95_warning_ms:
            raise ValueError(
                f"p95_critical_ms ({self.p95_critical_ms:g}) must not be under p95_warning_ms "
                f"({self.p95_warning_ms:g})"
            )
        return self


class CapacityConfig(_Section):
    """The seed's CapacityTestConfig (same names and defaults), its SLOs, the open-model steps, the
    outage phase, recovery and alerts."""

    max_concurrent_requests: int = Field(500, ge=1, le=100_000)
    """Closed model: no step may run more users; open model: requests in flight at most."""
    load_ramp_steps: tuple[int, ...] = (10, 25, 50, 100, 200, 500)
    """Closed model: concurrent users of each step, increasing."""
    step_duration: float = Field(30.0, gt=0, le=3600)
    """Seconds per step."""
    enable_redis_failure: bool = True
    """Run the fault windows whose target is ``redis``."""
    enable_database_failure: bool = True
    """Run the fault windows whose target is ``database`` (not applicable with a SQLite demo bot)."""
    test_recovery: bool = True
    """Measure recovery after each window (else only success during it)."""
    rate_steps_per_s: tuple[float, ...] | None = None
    """Open model: arrivals per second of each step (all workers together), increasing; null keeps the
    closed model (``load_ramp_steps`` users)."""
    think_time_s: ThinkTime = (0.5, 1.5)
    """Closed model: pause of each user between its messages (min, max)."""
    outage_users: int | None = Field(None, ge=1)
    """Closed model: users during the outage phase; null: the first step's."""
    outage_rate_per_s: float | None = Field(None, gt=0)
    """Open model: arrivals per second during the outage phase; null: the first step's."""
    settle_s: float = Field(1.0, ge=0, le=600)
    """Seconds at the start of each step left out of its figures (users starting, the previous step's
    requests finishing); at most a third of the step."""
    slo: CapacitySlo = CapacitySlo()
    knee: KneeConfig = KneeConfig()
    stop_after_failed_steps: int = Field(2, ge=1, le=100)
    """Stop early once this many consecutive steps past the knee failed the SLOs."""
    min_capacity: float | None = Field(None, ge=0)
    """The capacity check: at least this many users (req/s in the open model); null: the first step."""
    generator_max_lag_ms: float = Field(250.0, gt=0)
    """A generator whose event loop lagged more than this in a sample (or whose CPU passed
    ``arrival.max_cpu_percent``) was saturated in it; a step with such samples in half of its
    seconds is marked."""
    recovery: RecoveryConfig = RecoveryConfig()
    alerts: AlertsConfig = AlertsConfig()
    abort_on: Literal["warning", "critical"] | None = None
    """Stop the run at the first alert of this severity or worse (``--abort-on``); null: never."""
    backlog_drain_timeout_s: float = Field(15.0, ge=0, le=3600)
    """After the load, wait this long for the bot's queue to drain."""

    @field_validator("load_ramp_steps")
    @classmethod
    def _users_steps(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(users < 1 for users in value):
            raise ValueError(f"must be one or more user counts >= 1, got {list(value)}")
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError(f"must increase from step to step, got {list(value)}")
        return value

    @field_validator("rate_steps_per_s")
    @classmethod
    def _rate_steps(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is None:
            return None
        if not value or any(not 0 < rate <= 100_000 for rate in value):
            raise ValueError(f"must be one or more rates in (0, 100000] per second, got {list(value)}")
        if any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError(f"must increase from step to step, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _within_bounds(self) -> CapacityConfig:
        if self.rate_steps_per_s is None and max(self.load_ramp_steps) > self.max_concurrent_requests:
            raise ValueError(
                f"load_ramp_steps reach {max(self.load_ramp_steps)} users, more than "
                f"max_concurrent_requests ({self.max_concurrent_requests})"
            )
        if self.outage_users is not None and self.outage_users > self.max_concurrent_requests:
            raise ValueError(
                f"outage_users ({self.outage_users}) exceeds max_concurrent_requests "
                f"({self.max_concurrent_requests})"
            )
        return self

    @property
    def open_model(self) -> bool:
        """True: arrival-rate steps (``rate_steps_per_s``); False: users (``load_ramp_steps``)."""
        return self.rate_steps_per_s is not None


def _fault_json(window: FaultWindow) -> dict[str, Any]:
    data = window.model_dump(mode="json", exclude_unset=False)
    for key in ("inject", "heal", "api_url"):
        if isinstance(data.get(key), str):
            data[key] = redact_text(data[key])  # the snapshot stored with each run holds no secret
    return data


class BaselineFigures(_Section):
    """The seed's pre-optimization figures (what "before" looked like)."""

    webhook_p99_ms: float = 14_000
    webhook_avg_ms: float = 2_000
    webhook_success_rate: float = Field(0.85, ge=0, le=1)
    redis_avg_ms: float = 50
    redis_p95_ms: float = 200
    redis_success_rate: float = Field(0.70, ge=0, le=1)
    redis_connection_failure_rate: float = Field(0.30, ge=0, le=1)
    capacity_users: float = 20
    recovery_time_s: float = 120


class BaselineTargets(_Section):
    """The seed's expected figures after the optimization (what "after" must reach)."""

    webhook_p99_ms: float = 2_000
    webhook_avg_ms: float = 500
    webhook_success_rate: float = Field(0.99, ge=0, le=1)
    redis_avg_ms: float = 5
    redis_p95_ms: float = 50
    redis_success_rate: float = Field(0.99, ge=0, le=1)
    capacity_users: float = 500
    recovery_time_s: float = 60
    redis_connection_failure_rate: float = Field(0.01, ge=0, le=1)
    """The seed states no target: the complement of the Redis success target (99%)."""


class BaselineConfig(_Section):
    """Before/after comparison: the seed's figures and how regressions are told from noise."""

    figures: BaselineFigures = BaselineFigures()
    targets: BaselineTargets = BaselineTargets()
    min_effect_size: float = Field(0.10, ge=0, le=10)
    """A difference smaller than this share of the baseline (0.10 = 10%) is never a regression."""
    confidence: float = Field(0.98, gt=0.5, lt=1)
    """Confidence level of the two-sided between-run interval a difference must leave
    (baseline/gate.py): 0.98 puts a regression beyond a one-sided 99% boundary. Tuned on this
    machine's A/A study (BENCHMARKS.md): at 0.95, heavy-tailed run-to-run noise made 8% of
    same-build pairs a P95 regression."""
    min_rate_effect: float = Field(0.01, ge=0, le=1)
    """A success-rate change smaller than this many points (0.01 = 1 point) is never a regression."""
    min_absolute_ms: float = Field(0.5, ge=0, le=60_000)
    """A latency change smaller than this many milliseconds is never a regression (the absolute
    floor: timer and histogram resolution)."""
    history_runs: int = Field(10, ge=0, le=100)
    """Earlier runs of the baseline's test type, target and scenario that join the baseline to
    estimate run-to-run variation (0: never use the history)."""
    replicates: int = Field(1000, ge=100, le=100_000)
    """Bootstrap resamples of a run's intervals for the within-run interval (information only)."""
    min_intervals: int = Field(5, ge=2, le=10_000)
    """Runs with fewer non-empty intervals get no within-run interval."""
    max_intervals: int = Field(100, ge=5, le=10_000)
    """A run is cut into at most this many equal intervals (1 s each for runs up to this length)."""


class ScenarioInfo(_Section):
    """A named overlay: its description and the raw settings it merges onto the defaults."""

    description: str = ""
    overlay: dict[str, Any] = Field(default_factory=dict)


class Secrets(_Section):
    """Values read from the environment only; never printed."""

    twilio_auth_token: SecretStr | None = None
    twilio_auth_token_b: SecretStr | None = None
    """Target B's token in an A/B comparison (TWILIO_AUTH_TOKEN_B; default: TWILIO_AUTH_TOKEN)."""
    redis_url: SecretStr | None = None


class SuiteConfig(_Section):
    """The whole validated configuration of one run (frozen)."""

    version: Literal[1] = 1
    scenario: str = "default"
    target: TargetConfig = TargetConfig()
    redis: RedisConfig = RedisConfig()
    collector: CollectorConfig = CollectorConfig()
    webhook: WebhookConfig = WebhookConfig()
    traffic: TrafficConfig = TrafficConfig()
    redis_bench: RedisBenchConfig = RedisBenchConfig()
    arrival: ArrivalConfig = ArrivalConfig()
    capacity: CapacityConfig = CapacityConfig()
    metrics: MetricsConfig = MetricsConfig()
    ab: AbConfig = AbConfig()
    faults: tuple[FaultWindow, ...] = ()
    """Fault windows (``perfsuite.faults.schedule.FaultWindow``): ``at_s`` counts from the start of the
    load. The capacity test runs them in its outage phase (the load's first phase); the seed's
    ``capacity.enable_*_failure`` flags select them by target."""
    baseline: BaselineConfig = BaselineConfig()
    scenarios: dict[str, ScenarioInfo] = Field(default_factory=dict)
    secrets: Secrets = Secrets()
    source: str = "<defaults>"
    """Path of the file this came from, for messages."""
    overrides: dict[str, Any] = Field(default_factory=dict)
    """The command line's dotted key path -> value overrides, as given (to hand on to workers)."""

    @field_validator("faults")
    @classmethod
    def _schedule(cls, value: tuple[FaultWindow, ...], info: ValidationInfo) -> tuple[FaultWindow, ...]:
        FaultSchedule(windows=value)  # unique names, no two windows overlapping on one target
        capacity = info.data.get("capacity")
        warmup_s = capacity.recovery.warmup_s if isinstance(capacity, CapacityConfig) else 0.0
        for index, window in enumerate(value):
            if window.at_s < warmup_s + 1:
                raise ValueError(
                    f"window {index} ({window.name}) starts at {window.at_s:g} s, leaving no pre-fault "
                    f"reference: it must start at least capacity.recovery.warmup_s + 1 = {warmup_s + 1:g} s "
                    "into the load"
                )
        return value

    @field_serializer("faults", when_used="json")
    def _redacted_faults(self, value: tuple[FaultWindow, ...]) -> list[dict[str, Any]]:
        return [_fault_json(window) for window in value]

    @property
    def collector_redis_url(self) -> str | None:
        """REDIS_URL from the environment, else ``redis.url`` from the file, else None."""
        if self.secrets.redis_url is not None:
            return self.secrets.redis_url.get_secret_value()
        return self.redis.url

    @property
    def auth_token(self) -> str | None:
        """The Twilio auth token (TWILIO_AUTH_TOKEN) or None."""
        token = self.secrets.twilio_auth_token
        return token.get_secret_value() if token is not None else None

    @property
    def auth_token_b(self) -> str | None:
        """Target B's Twilio auth token (TWILIO_AUTH_TOKEN_B, else TWILIO_AUTH_TOKEN) or None."""
        token = self.secrets.twilio_auth_token_b
        return token.get_secret_value() if token is not None else self.auth_token

    def public_url_b(self, host: str) -> str:
        """The URL Twilio signs for target B's webhook when Locust connects to ``host``."""
        if self.ab.public_url_b:
            return self.ab.public_url_b
        return host.rstrip("/") + self.target.webhook_path

    def public_url(self, host: str) -> str:
        """The URL Twilio signs for the webhook when Locust connects to ``host``."""
        if self.target.public_url:
            return self.target.public_url
        return host.rstrip("/") + self.target.webhook_path

    def snapshot(self) -> dict[str, Any]:
        """The configuration as plain JSON-able data, secrets and URL passwords removed."""
        data = self.model_dump(mode="json", exclude={"secrets", "scenarios", "overrides"})
        data["redis"]["url"] = redact_url(self.collector_redis_url)
        data["secrets"] = {
            "twilio_auth_token": "set" if self.secrets.twilio_auth_token else "unset",
            "twilio_auth_token_b": "set" if self.secrets.twilio_auth_token_b else "unset",
            "redis_url": "set" if self.secrets.redis_url else "unset",
        }
        return data

    def process_env(self) -> dict[str, str]:
        """PERFSUITE_* variables that rebuild this same configuration in a Locust process."""
        return {
            "PERFSUITE_CONFIG": str(Path(self.source).resolve()) if self.source != "<defaults>" else "",
            "PERFSUITE_SCENARIO": self.scenario,
            "PERFSUITE_OVERRIDES": json.dumps(self.overrides, sort_keys=True),
        }

    def snapshot_json(self) -> str:
        """:meth:`snapshot` as a JSON string (what the collector stores with the run)."""
        return json.dumps(self.snapshot(), sort_keys=True)


_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str, flag: str = "--run-time") -> float:
    """Seconds from ``text`` as Locust users type it (``90``, ``30s``, ``5m``, ``1h30m``, ``2.5s``);
    ConfigError naming ``flag`` otherwise."""
    cleaned = text.strip().lower()
    try:
        seconds = float(cleaned)
    except ValueError:
        match = _DURATION.match(cleaned) if cleaned else None
        if match is None or not any(match.groupdict().values()):
            raise ConfigError(
                f"{flag}: {text!r} is not a duration; use seconds (90) or Locust's form (30s, 5m, 1h30m)"
            ) from None
        seconds = int(match["h"] or 0) * 3600 + int(match["m"] or 0) * 60 + float(match["s"] or 0)
    if not seconds > 0:
        raise ConfigError(f"{flag}: must be more than 0 seconds, got {text!r}")
    return seconds


def _deep_merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict) and key != "message_mix":
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    *parents, leaf = dotted.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: {part} is not a section")
        node = child
    node[leaf] = value


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"]) or "<top>"
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see scenarios.yaml for the allowed keys)"
        got = error.get("input")
        shown = (
            ""
            if error["type"] in ("extra_forbidden", "missing") or isinstance(got, dict)
            else f" (got {got!r})"
        )
        lines.append(f"{source}: {path}: {message}{shown}")
    return "\n".join(lines)


def read_yaml(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; a missing, unreadable or malformed file is a ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{where}: not valid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def load_config(
    path: Path | str | None = None,
    scenario: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> SuiteConfig:
    """Build the frozen :class:`SuiteConfig`.

    ``path`` is a scenarios.yaml (default: the file PERFSUITE_CONFIG names, as in the docker image, else
    the repository's); ``scenario`` names an overlay under
    ``scenarios:`` merged onto the defaults; ``overrides`` maps dotted key paths
    (``webhook.concurrent_users``) to values from the command line and wins over both.
    ``environ`` (default ``os.environ``) supplies TWILIO_AUTH_TOKEN and REDIS_URL.
    """
    env = os.environ if environ is None else environ
    source_path = Path(path or env.get("PERFSUITE_CONFIG") or DEFAULT_CONFIG_PATH)
    source = str(source_path)
    raw = read_yaml(source_path)
    if "secrets" in raw:
        raise ConfigError(
            f"{source}: secrets: secrets are never read from the file; "
            "set TWILIO_AUTH_TOKEN and REDIS_URL in the environment"
        )
    raw_scenarios = raw.pop("scenarios", None) or {}
    if not isinstance(raw_scenarios, dict):
        raise ConfigError(f"{source}: scenarios: must be a mapping of name -> overlay")
    scenarios: dict[str, ScenarioInfo] = {}
    for name, body in raw_scenarios.items():
        body = dict(body or {})
        if not isinstance(body, dict):
            raise ConfigError(f"{source}: scenarios.{name}: must be a mapping")
        description = str(body.pop("description", ""))
        scenarios[str(name)] = ScenarioInfo(description=description, overlay=body)

    chosen = scenario or "default"
    merged = raw
    if chosen in scenarios:
        merged = _deep_merge(raw, scenarios[chosen].overlay)
    elif scenario is not None and scenario != "default":  # "default" needs no overlay
        allowed = ", ".join(sorted(scenarios)) or "none defined"
        raise ConfigError(
            f"{source}: scenario {scenario!r} is not defined under scenarios (defined: {allowed})"
        )
    for dotted, value in (overrides or {}).items():
        _set_path(merged, dotted, value)

    secrets = Secrets(
        twilio_auth_token=SecretStr(env["TWILIO_AUTH_TOKEN"]) if env.get("TWILIO_AUTH_TOKEN") else None,
        twilio_auth_token_b=SecretStr(env["TWILIO_AUTH_TOKEN_B"]) if env.get("TWILIO_AUTH_TOKEN_B") else None,
        redis_url=SecretStr(env["REDIS_URL"]) if env.get("REDIS_URL") else None,
    )
    redis_env = env.get("REDIS_URL")
    if redis_env and urlsplit(redis_env).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"REDIS_URL: must be a redis://, rediss:// or unix:// URL (got {redact_url(redis_env)!r})"
        )
    try:
        config = SuiteConfig.model_validate(
            {
                **merged,
                "scenario": chosen,
                "scenarios": scenarios,
                "secrets": secrets,
                "source": source,
                "overrides": dict(overrides or {}),
            }
        )
    except ValidationError as exc:
        where = source if scenario is None else f"{source} (scenario {chosen})"
        raise ConfigError(_format_errors(exc, where)) from None
    return config


__all__ = [
    "AB_METRICS",
    "DEFAULT_CONFIG_PATH",
    "MESSAGE_KINDS",
    "AbConfig",
    "AlertsConfig",
    "ArrivalConfig",
    "BaselineConfig",
    "BaselineFigures",
    "BaselineTargets",
    "BreakerConfig",
    "CapacityConfig",
    "CapacitySlo",
    "CollectorConfig",
    "KneeConfig",
    "MetricsConfig",
    "RecoveryConfig",
    "RedisBenchConfig",
    "RedisConfig",
    "ScenarioInfo",
    "Secrets",
    "SuiteConfig",
    "TargetConfig",
    "TrafficConfig",
    "WebhookConfig",
    "load_config",
    "parse_duration",
    "read_yaml",
    "redact_url",
]
