"""The capacity test (the seed's ``system_capacity_test``), as Locust users, a shape and the live
machinery of the master (or local) process.

The load (:mod:`capacity.plan`): an outage phase at a steady load while the fault windows break
and heal the bot's dependencies for real, then the step progression. Closed model
(:class:`CapacityUser`): ``load_ramp_steps`` concurrent users, each sending a signed message
(:func:`locustfiles.sending.send_message`), waiting ``capacity.think_time_s``, and so on. Open model
(``capacity.rate_steps_per_s``, :class:`CapacityArrivalUser`): arrivals at each step's rate from the
arrival driver (``locustfiles/arrival.py``), so a slow bot cannot slow the load down. Every user
takes several senders in turn (each writes about once every ``SENDER_GAP_S`` seconds: a per-sender
rate limit is not what is being measured).

The shape (:class:`CapacityShape`, master/local) records a ``stage`` mark per phase and step, judges
each finished step live from Locust's statistics, prints it, and stops early once
``capacity.stop_after_failed_steps`` steps failed the SLOs past the knee (:mod:`capacity.steps`).
The master/local process also runs the fault scheduler (``fault_start``/``fault_end`` marks), the
resource sampler (bot process, machine, the bot's /health) and the live alerts (``alert`` marks,
printed; ``capacity.abort_on`` stops the run); every load generator samples its own CPU, memory and
event-loop lag. Lines printed with :func:`perfsuite.launcher.say` show live in ``perfsuite run``.

(Named after the seed's ``system_capacity_test.py``: Locust registers a locustfile as a module named
after its file, so ``locustfiles/capacity.py`` would hide the ``capacity`` package from itself.)

Plain Locust works too: ``TWILIO_AUTH_TOKEN=... locust -f locustfiles/system_capacity.py --host URL``
(fault windows then act where scenarios.yaml says; see :mod:`capacity.faults` for the environment).
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil
from locust import FastHttpUser, LoadTestShape, User, between, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from capacity.alerts import AlertEvaluator, AlertEvent, AlertSample, SlidingPercentile, aborts
from capacity.faults import REDIS_URL_ENV, windows_to_run
from capacity.plan import OUTAGES, CapacityPlan, Step
from capacity.resources import BOT_PID_ENV, ResourceSample, ResourceSampler
from capacity.samples import BOT_HEALTH
from capacity.steps import LiveStep, StatsSnapshot, early_stop, live_step
from locustfiles import arrival
from locustfiles.arrival import ArrivalDriver, ArrivalSettings
from locustfiles.common import config_from_environment, install_collector
from locustfiles.sending import SendSettings, send_message
from perfsuite.arrival import ArrivalPlan
from perfsuite.collector import locust_plugin
from perfsuite.errors import EXIT_USAGE, ConfigError
from perfsuite.faults.schedule import FaultScheduler, driver_for
from perfsuite.launcher import say
from perfsuite.marks import ALERT, ARRIVAL, FAULT_START, GENERATOR, RESOURCES, SAMPLE, STAGE, Stage
from perfsuite.saturation import GeneratorSample, SaturationMonitor
from perfsuite.twilio import Sender, TrafficGenerator

CONFIG = config_from_environment()
"""The validated suite configuration every process of this test shares."""

SETTINGS = CONFIG.capacity
SEND = SendSettings.from_config(CONFIG)
WINDOWS = windows_to_run(CONFIG)
"""The fault windows this run breaks things with (preflight's choice, see :mod:`capacity.faults`)."""
PLAN = CapacityPlan.from_config(CONFIG, WINDOWS)
OPEN_MODEL = PLAN.model == "open"

SENDER_GAP_S = 10.0
"""Each simulated sender writes about once every this many seconds."""


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


arrival.register(events)  # at import time: the master numbers its workers (open model)


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
    install_collector(environment, CONFIG, test_type="capacity")


# ---------------------------------------------------------------- every process: traffic, own usage


def _generator_label(environment: Environment) -> str:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return f"worker {runner.worker_index} pid {os.getpid()}"
    return f"local pid {os.getpid()}"


def _generator_sample(environment: Environment) -> Any:
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


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    state = state_of(environment)
    host = environment.host or CONFIG.target.host or ""
    state.generator = TrafficGenerator(
        account_sid=CONFIG.target.account_sid,
        bot_number=CONFIG.target.bot_number,
        public_url=CONFIG.public_url(host),
        auth_token=CONFIG.auth_token or "",
        mix=CONFIG.traffic.message_mix,
        invalid_signature_rate=CONFIG.traffic.invalid_signature_rate,
        duplicate_rate=CONFIG.traffic.duplicate_rate,
        rng=random.Random(),
    )
    if not isinstance(environment.runner, MasterRunner):
        state.monitor = SaturationMonitor(
            max_cpu_percent=CONFIG.arrival.max_cpu_percent, on_sample=_generator_sample(environment)
        )
        state.monitor.start()
    if not isinstance(environment.runner, WorkerRunner):
        _start_watch(environment, state)
    state.sink.flush()


@events.test_stop.add_listener  # registered at import: runs before the collector closes its writer
def _on_test_stop(environment: Environment, **_: Any) -> None:
    state = state_of(environment)
    state.stop_background()  # heals every fault still on
    if state.monitor is not None:
        report = state.monitor.stop()
        state.monitor = None
        state.sink.mark(GENERATOR, max_cpu_percent=CONFIG.arrival.max_cpu_percent, **report.to_fields())
    if not isinstance(environment.runner, WorkerRunner) and state.stage and state.stage != Stage.DONE:
        _enter(state, Stage.DONE, reason=state.stop_reason or "stopped before the plan's end")
    state.sink.flush()


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    state_of(environment).stop_background()  # never leave a dependency broken


def _senders_for(rate_per_s: float) -> int:
    return min(100_000, max(1, math.ceil(rate_per_s * SENDER_GAP_S)))


class _Senders:
    """Senders taken in turn, made as first needed (making thousands at once would stall the loop)."""

    def __init__(self, generator: TrafficGenerator, count: int) -> None:
        self.generator = generator
        self.count = count
        self.made: list[Sender] = []
        self.next = random.randrange(count)

    def take(self) -> Sender:
        if len(self.made) < self.count:
            self.made.append(self.generator.new_sender())
            return self.made[-1]
        self.next = (self.next + 1) % self.count
        return self.made[self.next]


def _generator(environment: Environment) -> TrafficGenerator:
    generator = state_of(environment).generator
    assert generator is not None, "the traffic generator is built at test start"
    return generator


class CapacityUser(FastHttpUser):
    """Closed model: one concurrent user sending signed messages, ``think_time_s`` apart."""

    abstract = OPEN_MODEL
    host = CONFIG.target.host
    wait_time = between(*SETTINGS.think_time_s)
    network_timeout = CONFIG.target.request_timeout_s
    connection_timeout = min(5.0, CONFIG.target.request_timeout_s)

    def on_start(self) -> None:
        think_s = max(sum(SETTINGS.think_time_s) / 2, 0.05)
        self.senders = _Senders(_generator(self.environment), _senders_for(1 / think_s))

    @task
    def send(self) -> None:
        send_message(self, self.senders.generator.next_message(self.senders.take()), SEND)


def _segments() -> list[tuple[float, float, float]]:
    """``(start_s, duration_s, rate_per_s)`` of the open model's plan."""
    segments = [(0.0, PLAN.outage_s, PLAN.outage_load)] if PLAN.outage_s else []
    return segments + [(step.start_s, step.duration_s, step.load) for step in PLAN.steps]


def _offsets(slot: int, slots: int) -> Iterator[float]:
    for start_s, duration_s, rate in _segments():
        plan = ArrivalPlan(rate_per_s=rate, duration_s=duration_s, distribution=CONFIG.arrival.distribution)
        for offset in plan.offsets(slot, slots):
            yield start_s + offset


class CapacityArrivalUser(FastHttpUser):
    """Open model: runs this process's arrival driver over the whole plan (one per process)."""

    abstract = not OPEN_MODEL
    host = CONFIG.target.host
    wait_time = constant(1)
    network_timeout = CONFIG.target.request_timeout_s
    connection_timeout = min(5.0, CONFIG.target.request_timeout_s)
    concurrency = min(SETTINGS.max_concurrent_requests, CONFIG.arrival.max_concurrency)

    @task
    def drive(self) -> None:
        state = state_of(self.environment)
        if state.driving:
            return  # one driver per process: this user idles
        state.driving = True
        slot, slots = arrival.slot_of(self.environment)
        self.senders = _Senders(_generator(self.environment), _senders_for(PLAN.peak_load / slots))
        settings = ArrivalSettings(
            plan=ArrivalPlan(rate_per_s=PLAN.peak_load, duration_s=max(PLAN.total_s, 1.0)),
            max_concurrency=max(1, math.ceil(self.concurrency / slots)),
            max_waiting=CONFIG.arrival.max_waiting,
            max_lag_s=CONFIG.arrival.max_lag_ms / 1000,
            drain_timeout_s=min(CONFIG.target.request_timeout_s + 5, 10.0),
        )
        driver = ArrivalDriver(_offsets(slot, slots), self.send_arrival, settings, mark=state.sink.mark)
        try:
            driver.run()
        finally:
            state.sink.mark(ARRIVAL, slot=slot, slots=slots, **driver.counts.to_fields())

    def send_arrival(self, intended_at: float) -> None:
        message = self.senders.generator.next_message(self.senders.take())
        send_message(self, message, SEND, intended_at=intended_at)


# ---------------------------------------------------------------- master/local: faults, samples, alerts


def _start_faults(environment: Environment, state: CapacityState) -> None:
    if not WINDOWS:
        return
    drivers = {}
    for window in WINDOWS:
        try:
            drivers[window.name] = driver_for(window, redis_url=os.environ.get(REDIS_URL_ENV))
        except ConfigError as exc:
            say(f"fault window {window.name} cannot run: {exc}")
    runnable = [window for window in WINDOWS if window.name in drivers]
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


def _start_watch(environment: Environment, state: CapacityState) -> None:
    if state.sampler is not None:
        return
    host = (environment.host or CONFIG.target.host or "").rstrip("/")
    health_path = CONFIG.target.health_path
    pid = os.environ.get(BOT_PID_ENV)
    alerts = SETTINGS.alerts
    state.alerts = AlertEvaluator(alerts)
    state.p95 = SlidingPercentile(alerts.window_s)
    state.sampler = ResourceSampler(
        alerts.interval_s,
        lambda sample: _on_resources(environment, state, sample),
        bot_pid=int(pid) if pid and pid.isdigit() else None,
        health_url=host + health_path if host and health_path else None,
    )
    state.sampler.start()


def _on_resources(environment: Environment, state: CapacityState, sample: ResourceSample) -> None:
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
        _alert(state, event)


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


def _alert(state: CapacityState, event: AlertEvent) -> None:
    rule = event.rule
    stops = event.fired and aborts(rule.severity, SETTINGS.abort_on) and state.stop_reason is None
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
        window_s=SETTINGS.alerts.window_s,
        peak=None if peak is None else round(peak, 4),
        aborted=stops,
    )
    say(event.message(elapsed(state, event.at_s)))
    if stops:
        state.stop_reason = (
            f"aborted by a {rule.severity} alert (--abort-on {SETTINGS.abort_on}): {rule.what}"
        )
        say(f"ABORT: {state.stop_reason}")


# ---------------------------------------------------------------- the shape


def _enter(state: CapacityState, name: str, **fields: Any) -> None:
    state.stage = name
    load_key = "rate_per_s" if OPEN_MODEL else "users"
    if "load" in fields:
        load = fields.pop("load")
        fields[load_key] = load if OPEN_MODEL else int(load)
    state.sink.mark(STAGE, name=name, **fields)


def _finish_step(environment: Environment, state: CapacityState) -> None:
    step, before = state.step, state.before
    state.step = state.before = None
    if step is None or before is None:
        return
    judged = live_step(step.index, step.load, before, stats_snapshot(environment), SETTINGS.slo)
    state.live_steps.append(judged)
    verdict = "meets the SLOs" if judged.meets_slo else "MISSES the SLOs: " + "; ".join(judged.misses)
    p95 = "-" if judged.p95_ms is None else f"{judged.p95_ms:,.0f} ms"
    success = "-" if judged.success_rate is None else f"{judged.success_rate * 100:.1f}%"
    say(
        f"step {step.index}/{len(PLAN.steps)} ({step.load:g} {PLAN.unit}): {judged.requests:,} requests, "
        f"{judged.good_rps:,.1f}/s answered as intended, P95 {p95}, success {success}: {verdict}"
    )
    reason = early_stop(state.live_steps, SETTINGS.knee, SETTINGS.stop_after_failed_steps)
    if reason is not None and state.stop_reason is None and step.index < len(PLAN.steps):
        state.stop_reason = f"stopped early after step {step.index}: {reason}"
        say(state.stop_reason)


class CapacityShape(LoadTestShape):
    """The outage phase, then the steps (see the module docstring)."""

    def reset_time(self) -> None:
        super().reset_time()
        # A new test (a web UI can start several): fresh state. A master calls this once more right
        # after its first spawn of the same test, which keeps its state (load start, faults, sampling).
        if self.runner is not None:
            previous = getattr(self.runner.environment, "perfsuite_capacity", None)
            if not isinstance(previous, CapacityState) or previous.stage in ("", Stage.DONE):
                new_state(self.runner.environment)

    def _users(self, load: float) -> tuple[int, float, list[type[User]]]:
        if OPEN_MODEL:
            processes = arrival.expected_processes(self.runner)
            return processes, float(max(processes, 10)), [CapacityArrivalUser]
        users = int(load)
        return users, float(max(users, 1)), [CapacityUser]

    def tick(self) -> tuple[int, float, list[type[User]] | None] | None:
        if self.runner is None:
            return None
        environment = self.runner.environment
        state = state_of(environment)
        state.sink.flush()
        if state.t0 is None:
            state.t0 = time.time()
            say(f"capacity plan: {PLAN.describe()}")
            _start_faults(environment, state)
        offset = elapsed(state)
        if state.stop_reason is None and offset < PLAN.outage_s:
            if state.stage != Stage.STEADY:
                _enter(state, Stage.STEADY, phase=OUTAGES, load=PLAN.outage_load)
            return self._users(PLAN.outage_load)
        step = PLAN.step_at(offset) if state.stop_reason is None else None
        if state.step is not None and (step is None or step.index != state.step.index):
            _finish_step(environment, state)
        if state.stop_reason is not None or step is None:
            if OPEN_MODEL and state.stop_reason is None and offset < PLAN.total_s + 2:
                return self._users(PLAN.steps[-1].load)  # let the last arrivals go out
            if state.stage != Stage.DONE:
                _enter(state, Stage.DONE, reason=state.stop_reason)
            return None
        if state.step is None:
            state.step = step
            state.before = None
            state.settled_at = time.time() + min(SETTINGS.settle_s, step.duration_s / 3)
            _enter(state, Stage.STEP, step=step.index, load=step.load)
        if state.before is None and time.time() >= state.settled_at:
            state.before = stats_snapshot(
                environment
            )  # the step's figures leave its start out, as after the run
        return self._users(step.load)


__all__ = ["CapacityArrivalUser", "CapacityShape", "CapacityUser", "MarkSink"]
