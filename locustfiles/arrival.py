"""Open-model load in Locust: each request starts at its intended time, measured from that time.

Locust's users are a closed model: a user waits for its response before the next request, so when
the target stalls the requests that should have been sent meanwhile are never sent, and the stall
all but vanishes from the statistics (coordinated omission). Here one driver per load-generating
process (:class:`~locustfiles.arrival_driver.ArrivalDriver`, re-exported here) issues the arrivals
of an :class:`~perfsuite.arrival.ArrivalPlan` at their intended times: one scheduler greenlet
sleeps until the next intended time and hands the arrivals then due to a bounded pool of sender
greenlets, made as needed and kept for the whole run (no greenlet per arrival, no periodic
wake-up: between two arrivals only the requests themselves wake the process):

- an arrival that finds a free slot (of ``max_concurrency``) starts at once; one that finds every
  slot busy waits in a FIFO queue of at most ``max_waiting`` and starts when a slot frees (late);
  beyond that it is dropped. Late (started more than ``max_lag_s`` after its intended time),
  waited, dropped and still-waiting-at-stop arrivals are counted;
- the sender (:meth:`ArrivalUser.send_arrival`) reports each request's latency from its intended
  start as Locust's ``response_time`` (what Locust and the collector show: corrected) and the
  latency from the actual send in ``context["timings_us"]["rt_uncorrected"]``.

Distribution: the master numbers its workers at test start (``parsed_options.perfsuite_arrival_slots``,
sent to each worker with its spawn message) and :class:`ArrivalShape` runs one
:class:`ArrivalUser` per worker; worker ``slot`` of ``slots`` sends its share of the plan (see
``ArrivalPlan.offsets``). Each process writes an ``arrival`` mark with its counters to the collector
when its driver ends and tells the shape it is done (custom message ``perfsuite_arrival_done``), so
the test stops as soon as every process has drained.

A locustfile using this calls :func:`register` at import time, subclasses :class:`ArrivalUser`
(implementing ``send_arrival``) and :class:`ArrivalShape`, and sets ``abstract = False`` on both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import gevent
import redis
from locust import FastHttpUser, LoadTestShape, User, constant, task
from locust.env import Environment
from locust.event import Events
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from locustfiles.arrival_driver import ArrivalDriver, ArrivalSettings
from perfsuite.arrival import ARRIVAL_MARK, ARRIVAL_START_MARK
from perfsuite.collector import locust_plugin
from perfsuite.collector.keys import stop_key
from perfsuite.marks import STAGE

logger = logging.getLogger(__name__)

SLOTS_OPTION = "perfsuite_arrival_slots"
"""``parsed_options`` attribute: worker client id -> slot, set by the master at test start."""
DONE_MESSAGE = "perfsuite_arrival_done"
"""Custom message a process sends (to itself when local) when its driver has ended."""
STOP_POLL_S = 0.5
"""How often a driver that may stop early (``ArrivalUser.stop_redis``) looks for the run's stop key."""


class EarlyStop:
    """Ends a process's arrivals once the run's stop key (``perfsuite.collector.keys.stop_key``) is
    set: a greenlet polls it every ``STOP_POLL_S``; the offsets it wraps end at the next arrival, and
    the driver drains what is in flight as at the plan's end (the counts stay exact)."""

    def __init__(self, redis_url: str, key: str) -> None:
        self._client = redis.Redis.from_url(redis_url, socket_connect_timeout=2.0, socket_timeout=2.0)
        self._key = key
        self.stopped = False
        self._poller = gevent.spawn(self._poll)

    def _poll(self) -> None:
        while not self.stopped:
            try:
                if self._client.exists(self._key):
                    self.stopped = True
                    logger.info("arrival: stop requested (%s); draining", self._key)
                    return
            except redis.RedisError:  # the collector's Redis away: keep to the plan
                logger.debug("arrival: stop key not readable", exc_info=True)
            gevent.sleep(STOP_POLL_S)

    def wrap(self, offsets: Iterable[float]) -> Iterator[float]:
        """``offsets`` until the stop key is seen."""
        for offset in offsets:
            if self.stopped:
                return
            yield offset

    def close(self) -> None:
        """Stop polling."""
        self._poller.kill(block=False)
        self._client.close()


@dataclass(slots=True)
class _ProcessState:
    """This process's arrival state for the current test."""

    slots: dict[str, int] = field(default_factory=dict)
    """Master: worker client id -> slot."""
    driver: ArrivalDriver | None = None
    finished: bool = False
    done: set[str] = field(default_factory=set)
    """Master/local: processes whose driver ended."""


def state_of(environment: Environment) -> _ProcessState:
    """This process's arrival state for the current test, kept on Locust's Environment."""
    state = getattr(environment, "perfsuite_arrival", None)
    if not isinstance(state, _ProcessState):
        state = _ProcessState()
        environment.perfsuite_arrival = state  # type: ignore[attr-defined]
    return state


def current_driver(environment: Environment) -> ArrivalDriver | None:
    """This process's driver while one runs (for gauges: in flight, waiting)."""
    return state_of(environment).driver


def register(events: Events) -> None:
    """Register the slot assignment and the done message; call at import time of the locustfile."""
    events.init.add_listener(_on_init)
    events.test_start.add_listener(_on_test_start)


def _on_init(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if runner is not None and not isinstance(runner, WorkerRunner):
        runner.register_message(DONE_MESSAGE, _on_done)


def _on_done(environment: Environment, msg: Any, **_: Any) -> None:
    state_of(environment).done.add(str(getattr(msg, "node_id", None) or "local"))


def _on_test_start(environment: Environment, **_: Any) -> None:
    state = environment.perfsuite_arrival = _ProcessState()  # type: ignore[attr-defined]
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        workers = runner.clients.ready + runner.clients.running + runner.clients.spawning
        ids = sorted((node.id for node in workers), key=runner.get_worker_index)
        state.slots = {client_id: slot for slot, client_id in enumerate(ids)}
        if environment.parsed_options is not None:  # sent to every worker with its spawn message
            setattr(environment.parsed_options, SLOTS_OPTION, dict(state.slots))


def slot_of(environment: Environment) -> tuple[int, int]:
    """``(slot, slots)`` of this process: ``(0, 1)`` when local; a worker's from the master's map."""
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        return 0, 1
    slots = getattr(environment.parsed_options, SLOTS_OPTION, None) or {}
    if runner.client_id in slots:
        return int(slots[runner.client_id]), len(slots)
    count = max(len(slots), 1)
    logger.warning("arrival: worker %s not in the master's slot map; using its index", runner.client_id)
    return max(runner.worker_index, 0) % count, count


def expected_processes(runner: Any) -> int:
    """Load-generating processes of the current test: the master's workers, else 1."""
    if isinstance(runner, MasterRunner):
        return len(state_of(runner.environment).slots) or max(runner.worker_count, 1)
    return 1


def lost_processes(runner: Any) -> set[str]:
    """Workers of the current test that will never report done: Locust holds them as ``missing``
    (no heartbeat for its liveness limit) or has dropped them. Empty when local."""
    if not isinstance(runner, MasterRunner):
        return set()
    clients = runner.clients
    return {
        client_id
        for client_id in state_of(runner.environment).slots
        if client_id not in clients or clients[client_id].state == STATE_MISSING
    }


class ArrivalUser(FastHttpUser):
    """Runs this process's :class:`ArrivalDriver` (one per process; extra users idle).

    Subclasses set ``settings`` and implement :meth:`send_arrival`; ``concurrency`` (the HTTP
    connection pool) should equal ``settings.max_concurrency`` so that no request waits for a
    connection unseen.
    """

    abstract = True
    wait_time = constant(1)
    settings: ArrivalSettings | None = None
    stop_redis: tuple[str, str] | None = None
    """(Redis URL, key prefix) of the collector when the run may be ended early by its stop key
    (None: the arrivals follow the plan to its end)."""

    def send_arrival(self, intended_at: float) -> None:
        """Send one request whose intended start was ``intended_at`` (``time.perf_counter``)."""
        raise NotImplementedError

    @task
    def drive(self) -> None:
        state = state_of(self.environment)
        if state.driver is not None or state.finished or self.settings is None:
            return  # one driver per process: this user just idles
        slot, slots = slot_of(self.environment)
        settings = self.settings
        writer = locust_plugin.current_writer(self.environment)
        offsets: Iterable[float] = settings.plan.offsets(slot, slots)
        run_id = locust_plugin.current_run_id(self.environment)
        early = (
            EarlyStop(self.stop_redis[0], stop_key(self.stop_redis[1], run_id))
            if self.stop_redis and run_id
            else None
        )
        if early is not None:
            offsets = early.wrap(offsets)
        driver = ArrivalDriver(
            offsets,
            self.send_arrival,
            settings,
            mark=writer.mark if writer is not None else None,
        )
        state.driver = driver
        if writer is not None:
            writer.mark(
                ARRIVAL_START_MARK, slot=slot, slots=slots, rate_per_s=settings.plan.rate_per_s / slots
            )
        try:
            driver.run()
        finally:
            if early is not None:
                early.close()
            state.finished = True
            writer = locust_plugin.current_writer(self.environment)
            if writer is not None:
                writer.mark(ARRIVAL_MARK, slot=slot, slots=slots, **driver.counts.to_fields())
            try:
                self.environment.runner.send_message(DONE_MESSAGE, {"slot": slot})
            except Exception:  # the master may be gone already (interrupted run)
                logger.debug("arrival: could not report done", exc_info=True)


class ArrivalShape(LoadTestShape):
    """One :class:`ArrivalUser` per load-generating process until every driver is done (or the plan
    plus its drain time is over). Subclasses set ``user_class`` and ``settings``."""

    abstract = True
    user_class: type[User] = ArrivalUser
    settings: ArrivalSettings | None = None

    def reset_time(self) -> None:
        super().reset_time()
        self.stage = ""
        if self.runner is not None:  # a new test (web UI): the first tick comes before test_start
            state_of(self.runner.environment).done.clear()

    def _enter(self, stage: str) -> None:
        self.stage = stage
        writer = locust_plugin.current_writer(self.runner.environment) if self.runner else None
        if writer is not None:
            writer.mark(STAGE, name=stage)

    def tick(self) -> tuple[int, float, list[type[User]] | None] | None:
        settings = self.settings
        if self.runner is None or settings is None:
            return None
        if not getattr(self, "stage", ""):
            self._enter("arrival")
        processes = expected_processes(self.runner)
        over_s = self.get_run_time() - (settings.plan.duration_s + settings.drain_timeout_s + 5)
        # A lost worker never reports done: without it counted, the test would wait out the whole
        # drain bound after its plan (its share of the arrivals is not sent: the report says so).
        ended = state_of(self.runner.environment).done | lost_processes(self.runner)
        if len(ended) >= processes or over_s > 0:
            if self.stage != "done":
                self._enter("done")
            return None
        return processes, float(max(processes, 10)), [self.user_class]


__all__ = [
    "DONE_MESSAGE",
    "SLOTS_OPTION",
    "ArrivalDriver",
    "ArrivalSettings",
    "ArrivalShape",
    "ArrivalUser",
    "EarlyStop",
    "current_driver",
    "expected_processes",
    "lost_processes",
    "register",
    "slot_of",
]
