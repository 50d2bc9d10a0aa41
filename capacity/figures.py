"""The capacity test's own figures (``figures`` of its result), typed and frozen.

``steps``
    one row per step that ran: its load (users, or arrivals per second in the open model), the
    seconds measured (the step minus ``capacity.settle_s``), requests and response classes
    (success, expected rejection, backpressure, failure), throughput and good throughput (answers
    as intended per second), P50/P95/P99, success rate, the SLO verdict, whether our own generator
    saturated, and the resources over the step (:class:`Resources`).
``capacity``, ``knee``
    the rules' answers (:mod:`capacity.steps`).
``outages``
    every configured fault window: run (success and P95 during, recovery, backlog) or why not.
``alerts``
    every live alert (4.3) with its times; ``aborted_by`` the one that stopped the run.
``resources``, ``pool``, ``backlog``
    the whole run's resources, the bot's connection pool (5.2) and its queue after the load.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field, model_validator

from perfsuite.backlog import Backlog


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _computed_are_not_inputs(cls, data: Any) -> Any:
        # A result document holds the computed fields too (meets_slo...): they are derived, not read.
        if isinstance(data, dict) and cls.model_computed_fields:
            return {key: value for key, value in data.items() if key not in cls.model_computed_fields}
        return data


class Resources(_Model):
    """CPU (100 = one core; the machine: 100 = every core) and memory over a stretch of the run."""

    bot_cpu_mean_percent: float | None = None
    bot_cpu_max_percent: float | None = None
    bot_rss_max_mb: float | None = None
    generator_processes: int = 0
    generator_cpu_max_percent: float | None = None
    """The busiest generator process's highest sample."""
    generator_lag_max_ms: float | None = None
    generator_rss_max_mb: float | None = None
    machine_cpu_mean_percent: float | None = None
    machine_cpu_max_percent: float | None = None
    machine_memory_max_percent: float | None = None
    pool_in_use_max: int | None = None
    pool_max: int | None = None
    queue_depth_max: int | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def pool_utilization_max(self) -> float | None:
        """Most of the bot's pool in use at once (sampled), as a share of its bound."""
        if self.pool_in_use_max is None or not self.pool_max:
            return None
        return self.pool_in_use_max / self.pool_max


class GeneratorUsage(_Model):
    """One load-generating process over the whole run."""

    process: str
    """``local pid 123`` or ``worker 0 pid 456``."""
    samples: int = 0
    cpu_mean_percent: float | None = None
    cpu_max_percent: float | None = None
    lag_max_ms: float | None = None
    rss_max_mb: float | None = None


class Step(_Model):
    """One step of the progression, as measured."""

    index: int
    """1 for the first step."""
    load: float
    """Users (closed model) or arrivals per second (open model)."""
    started_at_s: float
    """Epoch seconds of the step's start (its stage mark)."""
    duration_s: float
    """Seconds the step ran."""
    measured_s: int
    """Whole seconds its figures cover (the start's settling time left out)."""
    requests: int = 0
    success: int = 0
    rejected: int = 0
    backpressure: int = 0
    failure: int = 0
    throughput_rps: float = 0.0
    good_rps: float = 0.0
    """Answers as intended per second (the knee's throughput)."""
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    success_rate: float | None = None
    queue_growth_per_s: float | None = None
    """How fast the bot's queue (its /health) grew over the step (negative: it drained; None: unknown)."""
    slo_misses: tuple[str, ...] = ()
    generator_saturated: bool = False
    generator_note: str | None = None
    """What saturated (CPU, event-loop lag), when it did."""
    resources: Resources = Resources()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def meets_slo(self) -> bool:
        """The step met every SLO."""
        return not self.slo_misses


class Knee(_Model):
    """The knee (:func:`capacity.steps.find_knee`)."""

    step: int
    load: float
    load_growth: float
    throughput_growth: float
    p95_before_ms: float
    p95_after_ms: float
    generator_saturated: bool = False
    """Our generator saturated in the knee step: the bend may be ours."""


class Capacity(_Model):
    """The capacity rule's answer (:func:`capacity.steps.find_capacity`)."""

    unit: Literal["users", "req/s"] = "users"
    value: float = 0.0
    """The load of the highest step held (0: the first step failed the SLOs)."""
    step: int | None = None
    first_failing_step: int | None = None
    at_least: bool = False
    """The limit may lie higher (every step held, or the generator limited the run)."""
    limited_by_generator: bool = False
    measured: bool = True
    """False when no step ran at all."""


class OutageBacklog(_Model):
    """The bot's queue (its /health) around one fault window."""

    before: int | None = None
    """Depth at the last sample before the fault."""
    peak_during: int | None = None
    at_heal: int | None = None
    peak_after: int | None = None
    at_end: int | None = None
    """Depth at the end of the recovery watch."""
    drained_after_s: float | None = None
    """Seconds after the heal until the depth was back to ``before`` (None: not within the watch)."""


class Outage(_Model):
    """One configured fault window: what happened, or why it did not run."""

    name: str
    driver: str
    target: str
    status: Literal["run", "disabled", "not applicable", "not run", "failed"]
    """``failed``: the injection itself failed (see ``error``)."""
    reason: str | None = None
    description: str | None = None
    error: str | None = None
    at_s: float | None = None
    """Seconds from the start of the load to the injection (as it happened)."""
    duration_s: float | None = None
    requests: int = 0
    success: int = 0
    rejected: int = 0
    backpressure: int = 0
    failure: int = 0
    success_rate: float | None = None
    """During the fault."""
    p95_ms: float | None = None
    reference_success_rate: float | None = None
    """Before the first fault, at the same load."""
    reference_p95_ms: float | None = None
    bot_said: tuple[str, ...] = ()
    """What the bot's /health said while the fault was on (``degraded``, ``breaker open``...): the
    evidence that the dependency was really gone."""
    recovered: bool | None = None
    """None: recovery not measured (``capacity.test_recovery`` false, or too short a watch)."""
    recovery_s: float | None = None
    """Seconds from the heal until the rolling window held the pre-fault levels for good."""
    observed_s: float | None = None
    """Seconds watched after the heal."""
    backlog: OutageBacklog = OutageBacklog()


class Alert(_Model):
    """One live alert (4.3)."""

    alert: str
    severity: Literal["warning", "critical"]
    what: str = ""
    value: float
    limit: float
    unit: str = ""
    at_s: float
    """Seconds from the start of the load when it fired."""
    cleared_at_s: float | None = None
    peak: float | None = None
    """The worst value seen while it was firing (the sampled ones)."""
    aborted: bool = False
    """It stopped the run (``--abort-on``)."""


class Pool(_Model):
    """The bot's connection pool (5.2), from its /health."""

    max: int | None = None
    peak_in_use: int | None = None
    """The bot's own peak (since it started), else the sampled one."""
    capacity_step_utilization: float | None = None
    """Most of the pool in use during the capacity step."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def peak_utilization(self) -> float | None:
        """``peak_in_use / max``."""
        if self.peak_in_use is None or not self.max:
            return None
        return self.peak_in_use / self.max


class CapacityFigures(_Model):
    """Everything the capacity test measures beyond the common summary."""

    model: Literal["closed", "open"] = "closed"
    unit: Literal["users", "req/s"] = "users"
    slo_p95_ms: float = 500.0
    slo_success_rate: float = 0.99
    planned_steps: int = 0
    steps: tuple[Step, ...] = ()
    capacity: Capacity = Capacity(measured=False)
    knee: Knee | None = None
    stopped_early: str | None = None
    """Why the progression stopped before its last step (early stop, an aborting alert)."""
    outage_load: float | None = None
    """Users or arrivals per second of the outage phase (None: no window ran)."""
    outages: tuple[Outage, ...] = ()
    alerts: tuple[Alert, ...] = ()
    aborted_by: str | None = None
    resources: Resources = Resources()
    generators: tuple[GeneratorUsage, ...] = ()
    """Each load-generating process over the run."""
    pool: Pool = Pool()
    backlog: Backlog = Backlog(supported=False)


__all__ = [
    "Alert",
    "Capacity",
    "CapacityFigures",
    "GeneratorUsage",
    "Knee",
    "Outage",
    "OutageBacklog",
    "Pool",
    "Resources",
    "Step",
]
