"""Worker health in distributed runs: who joined, who was lost and when, heartbeats, load per worker.

Locust (2.4x) has no event for a worker that goes missing, so the master's side polls its runner:

- ``worker_connect(client_id)`` fires on the master for every ``client_ready`` message: at first
  connection, and again each time a worker is ready after a test stopped (web UI mode). It is
  a join only for a worker not already known (or known as lost).
- ``heartbeat_sent(client_id, timestamp)`` fires on the master when a worker's heartbeat arrived
  (every ``HEARTBEAT_INTERVAL`` = 1 s) and the master answers it: the gaps between two of them
  are the heartbeat gaps the master saw.
- ``MasterRunner.heartbeat_worker`` decrements each worker's liveness once a second; below 0
  (``HEARTBEAT_LIVENESS`` = 3 missed beats, so about 4 s) the worker's state becomes
  ``missing``, its users are dropped from the dispatcher and, only with ``--enable-rebalancing``,
  given to the others. At ``HEARTBEAT_DEAD_INTERNAL`` (-60) it is removed. :class:`WorkerWatch`
  polls ``runner.clients`` and records the first time each worker is seen ``missing``.
- ``worker_report(client_id, data)``: a worker's stats report (every 3 s and at quit);
  ``data["stats_total"]`` holds the requests since its previous report. Summed per worker, this
  is what the master had received from a worker when it was lost.
- ``heartbeat_received(client_id, timestamp)`` fires on a worker for every answer of the master.
  ``WorkerRunner.heartbeat_timeout_checker`` quits the worker (stopping its users, so its
  collector writer closes normally) once no answer came for ``MASTER_HEARTBEAT_TIMEOUT`` (60 s).

Both limits are module constants of ``locust.runners``; the maintainers' way to change them is to
assign them (locustio/locust#1897, #1988), which :func:`set_heartbeat_limits` does, from the
command-line options that :func:`add_arguments` adds.

Marks (written through the collector writer of each process; kinds below):

- master: ``worker_joined`` (client_id, worker_index, rejoined), ``worker_lost`` (client_id,
  last_heartbeat_at, heartbeat_gap_s, reported_requests/failures, users), and at test stop one
  ``worker_health`` per worker with ``source="master"`` (heartbeat_gap_max_s, reported_requests).
- each worker (and a local process): ``worker_health`` once per sample (``source="worker"``:
  requests recorded so far, users, CPU, loop lag, age of the master's last heartbeat) and a last
  one with ``final=True`` (CPU and loop-lag figures of the whole test, lag histogram).

:mod:`perfsuite.worker_health` reads them back, one :class:`~perfsuite.worker_health.WorkerHealth`
per worker, and says in words what a run's totals mean when a worker was lost.
This module imports Locust only inside :func:`install_worker_health` and
:func:`set_heartbeat_limits` (importing Locust monkey-patches the process).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import gevent

from perfsuite.errors import ConfigError
from perfsuite.marks import WORKER_HEALTH, WORKER_JOINED, WORKER_LOST
from perfsuite.saturation import GeneratorSample, SaturationMonitor

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

WORKER_JOINED_MARK = WORKER_JOINED
WORKER_LOST_MARK = WORKER_LOST
WORKER_HEALTH_MARK = WORKER_HEALTH


class MarkWriter(Protocol):
    """What the listeners need of a collector writer (``perfsuite.collector.CollectorWriter``)."""

    requests_recorded: int
    writer_id: str

    def mark(self, kind: str, at_s: float | None = None, **fields: Any) -> None: ...


REPORT_WRITER_KEY = "perfsuite_writer_id"
"""Key of a worker's stats report (``report_to_master``) that carries its collector writer id."""

WriterGetter = Callable[[], MarkWriter | None]
"""Returns the process's open writer, or None between tests (e.g. ``locust_plugin.current_writer``)."""


# -------------------------------------------------------------------- command line and limits


def add_arguments(parser: Any) -> None:
    """Add ``--master-heartbeat-timeout`` and ``--worker-heartbeat-liveness`` to Locust's parser.

    Call it from the locustfile's ``init_command_line_parser`` listener; :func:`install_worker_health`
    applies them. A master passes its values on to its workers with each test it starts.
    """
    parser.add_argument(
        "--master-heartbeat-timeout",
        dest="perfsuite_master_timeout_s",
        env_var="PERFSUITE_MASTER_TIMEOUT_S",
        type=float,
        default=None,
        include_in_web_ui=False,
        help="perfsuite: a worker quits after this many seconds without a heartbeat from its master "
        "(Locust's default: 60)",
    )
    parser.add_argument(
        "--worker-heartbeat-liveness",
        dest="perfsuite_heartbeat_liveness",
        env_var="PERFSUITE_HEARTBEAT_LIVENESS",
        type=int,
        default=None,
        include_in_web_ui=False,
        help="perfsuite: heartbeats (1 s apart) a worker may miss before its master marks it missing "
        "(Locust's default: 3)",
    )


def set_heartbeat_limits(master_timeout_s: float | None = None, worker_liveness: int | None = None) -> None:
    """Set Locust's heartbeat limits for this process (None leaves one as it is).

    ``master_timeout_s`` (seconds, worker side): quit when the master has not answered a heartbeat
    for that long; the master answers every second, so a few seconds is safe on a healthy network.
    ``worker_liveness`` (master side): missed one-second heartbeats before a worker is ``missing``.
    """
    import locust.runners

    if master_timeout_s is not None:
        if not master_timeout_s >= 2:
            raise ConfigError(f"master heartbeat timeout {master_timeout_s!r} s must be >= 2 seconds")
        locust.runners.MASTER_HEARTBEAT_TIMEOUT = master_timeout_s  # type: ignore[assignment]
    if worker_liveness is not None:
        if worker_liveness < 1:
            raise ConfigError(f"worker heartbeat liveness {worker_liveness!r} must be >= 1 heartbeat")
        locust.runners.HEARTBEAT_LIVENESS = worker_liveness


def _apply_limits(environment: Any) -> None:
    options = environment.parsed_options
    set_heartbeat_limits(
        getattr(options, "perfsuite_master_timeout_s", None),
        getattr(options, "perfsuite_heartbeat_liveness", None),
    )


# -------------------------------------------------------------------- master side

MAX_PENDING_MARKS = 1000
"""Marks a master keeps while no test (so no writer) is open; the oldest go first."""


@dataclass(slots=True)
class _Tracked:
    client_id: str
    joined_at_s: float
    last_heartbeat_s: float
    heartbeat_gap_max_s: float = 0.0
    reported_requests: int = 0
    reported_failures: int = 0
    users: int = 0
    writer_id: str | None = None
    lost_at_s: float | None = None


class WorkerWatch:
    """The master's listeners: joins, losses and heartbeat gaps of its workers, as marks."""

    def __init__(self, environment: Any, writer_getter: WriterGetter, poll_interval_s: float = 0.5) -> None:
        from locust.runners import STATE_MISSING

        if poll_interval_s <= 0:
            raise ConfigError(f"worker watch poll_interval_s={poll_interval_s!r} must be > 0 seconds")
        self.environment = environment
        self._writer_getter = writer_getter
        self._missing_state = STATE_MISSING
        self.poll_interval_s = float(poll_interval_s)
        self.workers: dict[str, _Tracked] = {}
        """Workers known to this master, by Locust client id (lost ones kept until they return)."""
        self._pending: list[tuple[str, float, dict[str, Any]]] = []
        self._announce = False
        events = environment.events
        events.worker_connect.add_listener(self.on_worker_connect)
        events.heartbeat_sent.add_listener(self.on_heartbeat)
        events.worker_report.add_listener(self.on_worker_report)
        events.test_start.add_listener(self.on_test_start)
        events.test_stopping.add_listener(self.on_test_stopping)
        self._greenlet = gevent.spawn(self._poll)

    def _mark(self, kind: str, at_s: float, **fields: Any) -> None:
        if len(self._pending) >= MAX_PENDING_MARKS:  # no test for a long while (web UI mode)
            del self._pending[0]
        self._pending.append((kind, at_s, fields))
        self._flush()

    def _flush(self) -> None:
        writer = self._writer_getter()
        if writer is None:
            return
        if self._announce:  # a new test: every worker present at its start joined it
            self._announce = False
            for tracked in self.workers.values():
                if tracked.lost_at_s is None:
                    self._pending.insert(0, (WORKER_JOINED_MARK, tracked.joined_at_s, self._joined(tracked)))
        pending, self._pending = self._pending, []
        for kind, at_s, fields in pending:
            writer.mark(kind, at_s=at_s, **fields)

    def _joined(self, tracked: _Tracked, rejoined: bool = False) -> dict[str, Any]:
        index = getattr(self.environment.runner, "worker_indexes", {}).get(tracked.client_id)
        return {"client_id": tracked.client_id, "worker_index": index, "rejoined": rejoined}

    def on_worker_connect(self, client_id: str, **_kwargs: Any) -> None:
        """A ``client_ready``: a join unless the worker is already known and alive."""
        now = time.time()
        tracked = self.workers.get(client_id)
        if tracked is not None and tracked.lost_at_s is None:
            return  # ready again after a test stopped
        rejoined = tracked is not None
        tracked = self.workers[client_id] = _Tracked(client_id, joined_at_s=now, last_heartbeat_s=now)
        self._mark(WORKER_JOINED_MARK, now, **self._joined(tracked, rejoined))

    def on_heartbeat(self, client_id: str, timestamp: float, **_kwargs: Any) -> None:
        """A worker's heartbeat arrived (the master answers it): track the gap since the previous."""
        tracked = self.workers.get(client_id)
        if tracked is None:
            return
        tracked.heartbeat_gap_max_s = max(tracked.heartbeat_gap_max_s, timestamp - tracked.last_heartbeat_s)
        tracked.last_heartbeat_s = timestamp
        if tracked.lost_at_s is not None:  # Locust calls this "self-healed"
            tracked.lost_at_s = None
            self._mark(WORKER_JOINED_MARK, timestamp, **self._joined(tracked, rejoined=True))

    def on_worker_report(self, client_id: str, data: Mapping[str, Any], **_kwargs: Any) -> None:
        """Add up what each worker reported (each report holds the requests since its previous one)."""
        tracked = self.workers.get(client_id)
        if tracked is None:
            return
        total = data.get("stats_total") or {}
        tracked.reported_requests += int(total.get("num_requests", 0))
        tracked.reported_failures += int(total.get("num_failures", 0))
        tracked.users = int(data.get("user_count", tracked.users) or 0)
        tracked.writer_id = data.get(REPORT_WRITER_KEY) or tracked.writer_id

    def on_test_start(self, **_kwargs: Any) -> None:
        """A new test (run): per-run figures start again; present workers are announced to its writer."""
        for client_id, tracked in list(self.workers.items()):
            if tracked.lost_at_s is not None:
                del self.workers[client_id]  # lost in an earlier test
                continue
            tracked.reported_requests = tracked.reported_failures = 0
            tracked.heartbeat_gap_max_s = 0.0
        self._pending.clear()
        self._announce = True
        self._flush()

    def on_test_stopping(self, **_kwargs: Any) -> None:
        """Before the master's writer closes: a worker silent for longer than Locust's own limit is
        recorded as lost now, then each worker's heartbeat and report figures."""
        import locust.runners

        self.check()
        now = time.time()
        silent_limit_s = (locust.runners.HEARTBEAT_LIVENESS + 1) * locust.runners.HEARTBEAT_INTERVAL
        for tracked in self.workers.values():
            if tracked.lost_at_s is None and now - tracked.last_heartbeat_s > silent_limit_s:
                self._lose(tracked, now, detected_by="test_stop")
        for tracked in self.workers.values():
            gap = max(tracked.heartbeat_gap_max_s, now - tracked.last_heartbeat_s)
            self._mark(
                WORKER_HEALTH_MARK,
                now,
                source="master",
                client_id=tracked.client_id,
                writer_id=tracked.writer_id,
                heartbeat_gap_max_s=round(gap, 3),
                reported_requests=tracked.reported_requests,
                reported_failures=tracked.reported_failures,
                lost=tracked.lost_at_s is not None,
            )

    def wait_for_quit(self, timeout_s: float) -> bool:
        """Wait (cooperatively) until every worker told to quit has done so (its "quit" message, which
        it sends after its final stats report, took it off the master's list), at most ``timeout_s``
        seconds; lost (missing) workers are not waited for. Whether all did."""
        from locust.runners import STATE_MISSING

        deadline = time.monotonic() + timeout_s
        while True:
            waiting = [c.id for c in self.environment.runner.clients.values() if c.state != STATE_MISSING]
            if not waiting:
                return True
            if time.monotonic() >= deadline:
                logger.warning(
                    "workers %s did not quit in %.0f s: Locust's own total may lack their last requests",
                    ", ".join(waiting),
                    timeout_s,
                )
                return False
            gevent.sleep(0.05)

    def lost_load(self) -> tuple[int, int]:
        """``(users, reported requests)`` of the workers lost in the current test: the users that will
        not send again (Locust does not give them to others, unless rebalancing) and what the master
        had received from them (part of its request count)."""
        self.check()
        lost = [tracked for tracked in self.workers.values() if tracked.lost_at_s is not None]
        return sum(t.users for t in lost), sum(t.reported_requests for t in lost)

    def check(self) -> None:
        """Record every worker Locust now holds as ``missing`` (once per loss)."""
        now = time.time()
        for client in list(self.environment.runner.clients.values()):
            tracked = self.workers.get(client.id)
            if tracked is None:
                continue
            if client.state == self._missing_state and tracked.lost_at_s is None:
                self._lose(tracked, now, detected_by="heartbeat")

    def _lose(self, tracked: _Tracked, now: float, detected_by: str) -> None:
        tracked.lost_at_s = now
        logger.warning(
            "worker %s lost: no heartbeat for %.1f s (it had reported %d requests)",
            tracked.client_id,
            now - tracked.last_heartbeat_s,
            tracked.reported_requests,
        )
        self._mark(
            WORKER_LOST_MARK,
            now,
            client_id=tracked.client_id,
            writer_id=tracked.writer_id,
            last_heartbeat_at=tracked.last_heartbeat_s,
            heartbeat_gap_s=round(now - tracked.last_heartbeat_s, 3),
            reported_requests=tracked.reported_requests,
            reported_failures=tracked.reported_failures,
            users=tracked.users,
            detected_by=detected_by,
        )

    def _poll(self) -> None:
        while True:
            gevent.sleep(self.poll_interval_s)
            try:
                self.check()
                self._flush()
            except Exception:  # the watch must never take the master down
                logger.exception("worker watch: poll failed")

    def stop(self) -> None:
        """Stop polling."""
        self._greenlet.kill(block=False)


LAST_QUIT_WAIT_S = 3.0
"""How long, past its users' stop timeout, a quitting master waits for its workers to quit."""


def _quit_after_the_last_reports(runner: Any, watch: WorkerWatch) -> None:
    """Make the master's quit wait for every worker's final stats report, not 0.5 s.

    A headless test ends with ``MasterRunner.quit``: it tells the workers to quit and waits 0.5 s
    for their final reports, which a worker sends once its users have stopped, so as long as their
    requests take. With a slow target the master was gone by then: Locust's total lacked the
    requests in flight at the end (110 of 140 with a 900 ms bot) and the collector check said
    DISAGREE. (Stopping first does not help: Locust discards the reports of a worker that said it
    stopped.) This is Locust's quit waiting instead until every worker told to quit has quit (a
    worker's "quit" message follows its final report), at most the users' stop timeout plus
    :data:`LAST_QUIT_WAIT_S`; lost workers are not waited for. Called from the master's message
    listener itself (its last worker quit), it does not wait: nothing would be received meanwhile.
    """
    from locust.rpc import Message

    listeners = [g for g in runner.greenlet if getattr(g, "_run", None) == runner.client_listener]
    listener = listeners[0] if listeners else None

    def quit() -> None:
        runner.stop(send_stop_to_client=False)
        for client in runner.clients.all:
            runner.server.send_to_client(Message("quit", None, client.id))
        if gevent.getcurrent() is not listener:  # the listener must go on receiving what we wait for
            watch.wait_for_quit((runner.environment.stop_timeout or 0) + LAST_QUIT_WAIT_S)
        runner.greenlet.kill(block=True)

    runner.quit = quit


def worker_watch_of(environment: Any) -> WorkerWatch | None:
    """The master's :class:`WorkerWatch` (None on a worker or a local process)."""
    watch = getattr(environment, "perfsuite_worker_watch", None)
    return watch if isinstance(watch, WorkerWatch) else None


# -------------------------------------------------------------------- worker side


class WorkerHealthSampler:
    """A worker's (or local process's) own health, one ``worker_health`` mark per sample.

    Composes a :class:`~perfsuite.saturation.SaturationMonitor` per test (CPU without blocking,
    event-loop lag from a ticking greenlet).
    """

    def __init__(
        self,
        environment: Any,
        writer_getter: WriterGetter,
        *,
        max_cpu_percent: float = 90.0,
        sample_interval_s: float = 1.0,
        tick_s: float = 0.05,
    ) -> None:
        self.environment = environment
        self._writer_getter = writer_getter
        self.max_cpu_percent = float(max_cpu_percent)
        self.sample_interval_s = float(sample_interval_s)
        self.tick_s = float(tick_s)
        self.client_id: str = str(getattr(environment.runner, "client_id", "local"))
        """Locust's id of this process (``<hostname>_<hex>``), the key that links its marks."""
        self._monitor: SaturationMonitor | None = None
        self._last_master_heartbeat_s: float | None = None
        self._master_gap_max_s = 0.0
        events = environment.events
        events.test_start.add_listener(self.on_test_start)
        events.test_stopping.add_listener(self.on_test_stopping)
        events.heartbeat_received.add_listener(self.on_heartbeat)
        events.report_to_master.add_listener(self.on_report_to_master)

    def on_test_start(self, **_kwargs: Any) -> None:
        """Start sampling (a new monitor per test)."""
        _apply_limits(self.environment)  # a master passes its limits on in every spawn message
        if self._monitor is not None:
            self._monitor.stop()
        self._master_gap_max_s = 0.0
        self._monitor = SaturationMonitor(
            max_cpu_percent=self.max_cpu_percent,
            sample_interval_s=self.sample_interval_s,
            tick_s=self.tick_s,
            on_sample=self._on_sample,
        )
        self._monitor.start()
        writer = self._writer_getter()
        if writer is not None:  # at once: links this worker to its writer even if it dies in a second
            writer.mark(WORKER_HEALTH_MARK, source="worker", client_id=self.client_id, requests=0)

    def on_report_to_master(self, data: dict[str, Any], **_kwargs: Any) -> None:
        """Every stats report tells the master which collector writer this worker writes with."""
        writer = self._writer_getter()
        if writer is not None:
            data[REPORT_WRITER_KEY] = writer.writer_id

    def on_heartbeat(self, timestamp: float, **_kwargs: Any) -> None:
        """The master answered a heartbeat: track the gap since its previous answer."""
        if self._last_master_heartbeat_s is not None:
            self._master_gap_max_s = max(self._master_gap_max_s, timestamp - self._last_master_heartbeat_s)
        self._last_master_heartbeat_s = timestamp

    def _master_age_s(self) -> float | None:
        if self._last_master_heartbeat_s is None:
            return None
        return round(time.time() - self._last_master_heartbeat_s, 3)

    def _on_sample(self, sample: GeneratorSample) -> None:
        writer = self._writer_getter()
        if writer is None:
            return
        writer.mark(
            WORKER_HEALTH_MARK,
            at_s=sample.at_s,
            source="worker",
            client_id=self.client_id,
            requests=writer.requests_recorded,
            users=getattr(self.environment.runner, "user_count", None),
            cpu_percent=round(sample.cpu_percent, 1),
            loop_lag_max_ms=round(sample.loop_lag_max_ms, 2),
            master_heartbeat_age_s=self._master_age_s(),
        )

    def on_test_stopping(self, **_kwargs: Any) -> None:
        """Stop sampling; the whole test's figures go in a last mark (before the writer closes)."""
        if self._monitor is None:
            return
        report = self._monitor.stop()
        self._monitor = None
        writer = self._writer_getter()
        if writer is None:
            return
        age = self._master_age_s()
        writer.mark(
            WORKER_HEALTH_MARK,
            source="worker",
            final=True,
            client_id=self.client_id,
            requests=writer.requests_recorded,
            master_heartbeat_gap_max_s=round(max(self._master_gap_max_s, age or 0.0), 3),
            **report.to_fields(),
        )


def install_worker_health(
    environment: Any,
    writer_getter: WriterGetter,
    *,
    max_cpu_percent: float = 90.0,
    sample_interval_s: float = 1.0,
    poll_interval_s: float = 0.5,
) -> WorkerWatch | WorkerHealthSampler:
    """Install the listeners that fit this process's role (call from an ``events.init`` listener).

    Master: a :class:`WorkerWatch`. Worker or local process: a :class:`WorkerHealthSampler`
    (``max_cpu_percent``, ``sample_interval_s``). Heartbeat limits given with :func:`add_arguments`'s
    options are applied here.
    """
    from locust.runners import MasterRunner

    _apply_limits(environment)
    if isinstance(environment.runner, MasterRunner):
        watch = WorkerWatch(environment, writer_getter, poll_interval_s=poll_interval_s)
        environment.perfsuite_worker_watch = watch
        _quit_after_the_last_reports(environment.runner, watch)
        return watch
    return WorkerHealthSampler(
        environment, writer_getter, max_cpu_percent=max_cpu_percent, sample_interval_s=sample_interval_s
    )


__all__ = [
    "REPORT_WRITER_KEY",
    "WORKER_HEALTH_MARK",
    "WORKER_JOINED_MARK",
    "WORKER_LOST_MARK",
    "MarkWriter",
    "WorkerHealthSampler",
    "WorkerWatch",
    "WriterGetter",
    "add_arguments",
    "install_worker_health",
    "set_heartbeat_limits",
    "worker_watch_of",
]
