"""The capacity test's live side in its Locust processes: the state of one test (on Locust's
Environment), the marks it records, and what the master (or local) process watches while the load
runs: the fault scheduler, the resource sampler (the bot's process, its /health, the machine) and the
live alerts (printed, recorded, ``--abort-on``). Used by ``locustfiles/system_capacity.py``."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil
from locust.env import Environment
from locust.runners import WorkerRunner

from capacity.alerts import AlertEvaluator, AlertEvent, AlertSample, SlidingPercentile, aborts
from capacity.faults import REDIS_URL_ENV
from capacity.plan import Step
from capacity.resources import BOT_PID_ENV, ResourceSample, ResourceSampler
from capacity.samples import BOT_HEALTH
from capacity.steps import LiveStep, StatsSnapshot
from perfsuite.collector import locust_plugin
from perfsuite.config import CapacityConfig, SuiteConfig
from perfsuite.errors import ConfigError
from perfsuite.faults.schedule import FaultScheduler, FaultWindow, driver_for
from perfsuite.launcher import say
from perfsuite.marks import ALERT, FAULT_START, RESOURCES, SAMPLE
from perfsuite.saturation import GeneratorSample, SaturationMonitor
from perfsuite.twilio import TrafficGenerator


class MarkSink:
    """Marks of this process: written to the collector's writer, or kept until it has one (the shape's
    first tick comes before Locust's test_start opens the run)."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.pending: list[tuple[str, float, dict[str, Any]]] = []

    def mark(self, kind: str, at_s: float | None = None, **fields: Any) -> None:
        """Record a mark (now when ``at_s`` is None)."""
        self.pending.append((kind, time.time() if at_s is None else at_s, fields))
        self.flush()

    def flush(self) -> None:
        """Write what is pending, if the writer is open."""
        writer = locust_plugin.current_writer(self.environment)
        if writer is None:
            return
        pending, self.pending = self.pending, []
        for kind, at_s, fields in pending:
            writer.mark(kind, at_s=at_s, **fields)


@dataclass(slots=True)
class CapacityState:
    """This process's capacity-test state for one test, kept on Locust's Environment."""

    sink: MarkSink
    generator: TrafficGenerator | None = None
    t0: float | None = None
    """Epoch seconds when the load started (the shape's first tick)."""
    stage: str = ""
    step: Step | None = None
    before: StatsSnapshot | None = None
    """Locust's statistics once the current step settled (``capacity.settle_s`` after its start)."""
    settled_at: float = 0.0
    live_steps: list[LiveStep] = field(default_factory=list)
    stop_reason: str | None = None
    """Set to end the progression at the next tick (early stop, an aborting alert)."""
    scheduler: FaultScheduler | None = None
    sampler: ResourceSampler | None = None
    monitor: SaturationMonitor | None = None
    alerts: AlertEvaluator | None = None
    p95: SlidingPercentile | None = None
    peaks: dict[str, float] = field(default_factory=dict)
    """Worst value of each firing alert so far."""
    queue: list[tuple[float, int]] = field(default_factory=list)
    """The bot's queue depth as its /health said, ``(epoch s, depth)``, for the live step verdicts."""
    driving: bool = False
    """Open model: this process's arrival driver runs."""

    def stop_background(self) -> None:
        """Heal every fault, stop sampling (idempotent)."""
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        if self.sampler is not None:
            self.sampler.stop()
            self.sampler = None


def state_of(environment: Environment) -> CapacityState:
    """The capacity state on ``environment`` (created on first use)."""
    state = getattr(environment, "perfsuite_capacity", None)
    if not isinstance(state, CapacityState):
        state = new_state(environment)
    return state


def new_state(environment: Environment) -> CapacityState:
    """A fresh state for a new test (the previous one's faults healed, its sampling stopped)."""
    previous = getattr(environment, "perfsuite_capacity", None)
    if isinstance(previous, CapacityState):
        previous.stop_background()
    state = CapacityState(sink=MarkSink(environment))
    environment.perfsuite_capacity = state  # type: ignore[attr-defined]
    return state


def stats_snapshot(environment: Environment) -> StatsSnapshot:
    """Locust's total statistics now."""
    total = environment.stats.total
    return StatsSnapshot(time.time(), total.num_requests, total.num_failures, dict(total.response_times))


def elapsed(state: CapacityState, at_s: float | None = None) -> float:
    """Seconds since the load started."""
    return (time.time() if at_s is None else at_s) - (state.t0 or time.time())


def _generator_label(environment: Environment) -> str:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return f"worker {runner.worker_index} pid {os.getpid()}"
    return f"local pid {os.getpid()}"


def generator_sampler(environment: Environment) -> Callable[[GeneratorSample], None]:
    """What a load generator's saturation monitor does with each sample: a ``resources`` mark (role
    ``generator``: CPU, event-loop lag, memory)."""
    label = _generator_label(environment)
    process = psutil.Process()

    def on_sample(sample: GeneratorSample) -> None:
        state_of(environment).sink.mark(
            RESOURCES,
            at_s=sample.at_s,
            role="generator",
            process=label,
            cpu_percent=round(sample.cpu_percent, 1),
            loop_lag_max_ms=round(sample.loop_lag_max_ms, 2),
            rss_mb=round(process.memory_info().rss / 2**20, 1),
        )

    return on_sample


def start_faults(state: CapacityState, windows: Sequence[FaultWindow]) -> None:
    """Run ``windows`` from the load's start (``state.t0``): ``fault_start``/``fault_end`` marks, printed."""
    if not windows:
        return
    drivers = {}
    for window in windows:
        try:
            drivers[window.name] = driver_for(window, redis_url=os.environ.get(REDIS_URL_ENV))
        except ConfigError as exc:
            say(f"fault window {window.name} cannot run: {exc}")
    runnable = [window for window in windows if window.name in drivers]
    t0 = state.t0 or time.time()

    def on_mark(kind: str, at_s: float, **fields: Any) -> None:
        state.sink.mark(kind, at_s=t0 + at_s, **fields)
        error = f" FAILED: {fields['error']}" if fields.get("error") else ""
        if kind == FAULT_START:
            say(f"fault {fields.get('fault')} injected (+{at_s:.0f} s): {fields.get('description')}{error}")
        else:
            say(f"fault {fields.get('fault')} healed (+{at_s:.0f} s){error}")

    state.scheduler = FaultScheduler(runnable, drivers, on_mark, clock=time.time)
    state.scheduler.start(t0=t0)


def start_watch(environment: Environment, state: CapacityState, config: SuiteConfig) -> None:
    """Sample the bot (its process when :data:`BOT_PID_ENV` names it, its /health) and the machine
    every ``capacity.alerts.interval_s``, and evaluate the alerts on each sample (once per test)."""
    if state.sampler is not None:
        return
    host = (environment.host or config.target.host or "").rstrip("/")
    health_path = config.target.health_path
    pid = os.environ.get(BOT_PID_ENV)
    alerts = config.capacity.alerts
    state.alerts = AlertEvaluator(alerts)
    state.p95 = SlidingPercentile(alerts.window_s)
    state.sampler = ResourceSampler(
        alerts.interval_s,
        lambda sample: _on_resources(environment, state, sample, config.capacity),
        bot_pid=int(pid) if pid and pid.isdigit() else None,
        health_url=host + health_path if host and health_path else None,
    )
    state.sampler.start()


def _on_resources(
    environment: Environment, state: CapacityState, sample: ResourceSample, settings: CapacityConfig
) -> None:
    at = sample.at_s
    sink = state.sink
    machine = sample.machine
    sink.mark(
        RESOURCES,
        at_s=at,
        role="machine",
        process="machine",
        cpu_percent=round(machine.cpu_percent, 1),
        memory_percent=round(machine.memory_percent, 1),
    )
    if sample.bot is not None:
        sink.mark(
            RESOURCES,
            at_s=at,
            role="bot",
            process=f"bot pid {os.environ.get(BOT_PID_ENV)}",
            cpu_percent=round(sample.bot.cpu_percent, 1),
            rss_mb=round(sample.bot.rss_mb, 1),
        )
    health = sample.health
    if health is not None and health.queue_depth is not None:
        state.queue.append((at, health.queue_depth))
        del state.queue[:-3600]  # an hour of samples is all a step can use
    if health is not None:
        sink.mark(
            SAMPLE,
            at_s=at,
            source=BOT_HEALTH,
            pool_in_use=health.pool_in_use,
            pool_max=health.pool_max,
            pool_peak_in_use=health.pool_peak_in_use,
            queue_depth=health.queue_depth,
            breaker_state=health.breaker_state,
            status=health.status,
        )
    if state.alerts is None or state.p95 is None or state.t0 is None:
        return
    p95 = state.p95.add(stats_snapshot(environment))
    events_ = state.alerts.observe(
        AlertSample(
            at_s=at,
            p95_ms=p95,
            bot_cpu_percent=sample.bot.cpu_percent if sample.bot is not None else None,
            machine_cpu_percent=machine.cpu_percent,
            machine_memory_percent=machine.memory_percent,
            pool_utilization=health.pool_utilization if health is not None else None,
        )
    )
    for key, event in state.alerts.active.items():
        state.peaks[key] = max(state.peaks.get(key, event.value), _current(event, sample, p95))
    for event in events_:
        _alert(state, event, settings)


def _current(event: AlertEvent, sample: ResourceSample, p95: float | None) -> float:
    """The firing rule's value in this sample (its fired value when this sample does not say)."""
    values = {
        "p95": p95,
        "bot_cpu": sample.bot.cpu_percent if sample.bot is not None else None,
        "machine_cpu": sample.machine.cpu_percent,
        "machine_memory": sample.machine.memory_percent,
        "pool": sample.health.pool_utilization if sample.health is not None else None,
    }
    value = values.get(event.rule.alert)
    return event.value if value is None else value


def _alert(state: CapacityState, event: AlertEvent, settings: CapacityConfig) -> None:
    rule = event.rule
    stops = event.fired and aborts(rule.severity, settings.abort_on) and state.stop_reason is None
    peak = state.peaks.pop(rule.key, event.value) if not event.fired else None
    state.sink.mark(
        ALERT,
        at_s=event.at_s,
        alert=rule.alert,
        severity=rule.severity,
        state="fired" if event.fired else "cleared",
        value=round(event.value, 4),
        limit=rule.limit,
        unit=rule.unit,
        what=rule.what,
        window_s=settings.alerts.window_s,
        peak=None if peak is None else round(peak, 4),
        aborted=stops,
    )
    say(event.message(elapsed(state, event.at_s)))
    if stops:
        state.stop_reason = (
            f"aborted by a {rule.severity} alert (--abort-on {settings.abort_on}): {rule.what}"
        )
        say(f"ABORT: {state.stop_reason}")


__all__ = [
    "CapacityState",
    "MarkSink",
    "elapsed",
    "generator_sampler",
    "new_state",
    "start_faults",
    "start_watch",
    "state_of",
    "stats_snapshot",
]
