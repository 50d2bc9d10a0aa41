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
printed; ``capacity.abort_on`` stops the run): :mod:`locustfiles.capacity_watch`. Every load
generator samples its own CPU, memory and event-loop lag. Lines printed with
:func:`perfsuite.launcher.say` show live in ``perfsuite run``.

(Named after the seed's ``system_capacity_test.py``: Locust registers a locustfile as a module named
after its file, so ``locustfiles/capacity.py`` would hide the ``capacity`` package from itself.)

Plain Locust works too: ``TWILIO_AUTH_TOKEN=... locust -f locustfiles/system_capacity.py --host URL``
(fault windows then act where scenarios.yaml says; see :mod:`capacity.faults` for the environment).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from typing import Any

from locust import FastHttpUser, LoadTestShape, User, between, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from capacity.faults import windows_to_run
from capacity.plan import OUTAGES, CapacityPlan
from capacity.steps import early_stop, find_capacity, find_knee, live_step
from locustfiles import arrival
from locustfiles.arrival import ArrivalDriver, ArrivalSettings
from locustfiles.capacity_watch import (
    CapacityState,
    elapsed,
    generator_sampler,
    new_state,
    start_faults,
    start_watch,
    state_of,
    stats_snapshot,
)
from locustfiles.common import (
    add_arguments,
    config_from_environment,
    install_collector,
    require_auth_token,
    traffic_generator,
)
from locustfiles.sending import SendSettings, close_http, send_message
from perfsuite.arrival import ArrivalPlan
from perfsuite.launcher import say
from perfsuite.marks import ARRIVAL, GENERATOR, STAGE, STEP_VERDICT, Stage
from perfsuite.saturation import SaturationMonitor
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


arrival.register(events)  # at import time: the master numbers its workers (open model)


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    add_arguments(parser)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    require_auth_token(CONFIG)
    install_collector(environment, CONFIG, test_type="capacity")


# ---------------------------------------------------------------- every process: traffic, own usage


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    state = state_of(environment)
    state.generator = traffic_generator(CONFIG, environment.host or CONFIG.target.host or "")
    if not isinstance(environment.runner, MasterRunner):
        state.monitor = SaturationMonitor(
            max_cpu_percent=CONFIG.arrival.max_cpu_percent, on_sample=generator_sampler(environment)
        )
        state.monitor.start()
    if not isinstance(environment.runner, WorkerRunner):
        start_watch(environment, state, CONFIG)
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

    def on_stop(self) -> None:
        close_http(self)

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

    def on_stop(self) -> None:
        close_http(self)

    def send_arrival(self, intended_at: float) -> None:
        message = self.senders.generator.next_message(self.senders.take())
        send_message(self, message, SEND, intended_at=intended_at)


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
    queue = [(at, depth) for at, depth in state.queue if at >= before.at_s]
    judged = live_step(step.index, step.load, before, stats_snapshot(environment), SETTINGS.slo, queue)
    state.live_steps.append(judged)
    verdict = "meets the SLOs" if judged.meets_slo else "MISSES the SLOs: " + "; ".join(judged.misses)
    p95 = "-" if judged.p95_ms is None else f"{judged.p95_ms:,.0f} ms"
    success = "-" if judged.success_rate is None else f"{judged.success_rate * 100:.1f}%"
    say(
        f"step {step.index}/{len(PLAN.steps)} ({step.load:g} {PLAN.unit}): {judged.requests:,} requests, "
        f"{judged.good_rps:,.1f}/s answered as intended, P95 {p95}, success {success}: {verdict}"
    )
    knee = find_knee(state.live_steps, SETTINGS.knee)
    capacity = find_capacity(state.live_steps)
    state.sink.mark(
        STEP_VERDICT,
        step=step.index,
        load=step.load,
        requests=judged.requests,
        good_rps=round(judged.good_rps, 3),
        p95_ms=judged.p95_ms,
        success_rate=judged.success_rate,
        meets_slo=judged.meets_slo,
        knee_step=None if knee is None else state.live_steps[knee.position].index,
        capacity=capacity.value,
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
            start_faults(state, WINDOWS)
        offset = elapsed(state)
        if state.stop_reason is None and offset < PLAN.outage_s:
            if state.stage != Stage.STEADY:
                _enter(state, Stage.STEADY, phase=OUTAGES, load=PLAN.outage_load)
            return self._users(PLAN.outage_load)
        step = PLAN.step_at(offset) if state.stop_reason is None else None
        if state.step is not None and (step is None or step.index != state.step.index):
            _finish_step(environment, state)
        if state.stop_reason is not None or step is None:
            # The plan's end closes the last step (its figures must not be diluted by the grace
            # below, in which the last arrivals of a late-started worker go out and nothing new is
            # due).
            if state.stage != Stage.DONE:
                _enter(state, Stage.DONE, reason=state.stop_reason)
            if OPEN_MODEL and state.stop_reason is None and offset < PLAN.total_s + 2:
                return self._users(PLAN.steps[-1].load)  # let the last arrivals go out
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


__all__ = ["CapacityArrivalUser", "CapacityShape", "CapacityUser"]
