"""Wires the collector into Locust: one run per test, one writer per process, every request recorded.

Use from a locustfile::

    from locust import events
    from perfsuite.collector import locust_plugin

    @events.init_command_line_parser.add_listener
    def _(parser):
        locust_plugin.add_arguments(parser)  # optional: --run-id, --collector-redis-url, --collector-prefix

    @events.init.add_listener
    def _(environment, **_kwargs):
        locust_plugin.install(environment, test_type="webhook", scenario="default", config_json="{}")

Lifecycle (verified against locust/runners.py):

- master or local runner, ``test_start``: a new run id (``--run-id`` / ``run_id=`` for the first test
  of the process only: the web UI can start several tests), the run's meta hash, and the id stored
  in ``environment.parsed_options.perfsuite_run_id``. A master sends its parsed options to workers in
  every spawn message and a worker applies them before it fires its own ``test_start``. The metadata
  travels as entries through this process's writer (``CollectorWriter.put``): journaled with its
  batches, it is written again when the collector's Redis comes back empty, and spilled with them
  when Redis is away at the end.
- every process, ``test_start``: a ``CollectorWriter`` for that run. Local runners and workers record
  every ``request`` event into it; on a master it only carries marks (``current_writer``).
- ``test_stop``: master/local: the run's end (``finish_fields``) with Locust's own total
  (``locust_total_requests``) and status ``finished`` (``interrupted`` when ``quitting`` came first,
  i.e. Ctrl-C or SIGTERM); then the writer's final flush. On a master, workers' last stats reports
  arrive after ``test_stop`` (a worker flushes its stats only after it stopped, and a headless master
  fires ``test_stop`` before it even tells workers to quit), so every ``worker_report`` received after
  ``test_stop`` rewrites ``locust_total_requests`` until the next test starts (through the closed
  writer: written at once, or spilled): the stored figure is the total Locust itself prints and saves
  at exit.
- ``quit`` (just before the process exits): safety net that closes a writer still open.

Request events map to collector records: response_time (ms) -> latency (us); outcome
``context["outcome"]`` (success | rejected | backpressure | failure) else failure when an exception
came with the event; reason ``context["failure_reason"]`` else ``context["conformance"]`` (a finding
about a successful request, e.g. a Twilio conformance error: kept as a reason of the *success*
outcome, which readers treat as a note, never a failure) else ``str(exception)``; extra timings from
``context["timings_us"]`` (a mapping metric -> microseconds).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gevent
import locust
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from perfsuite.collector.batch import OUTCOME_INDEX
from perfsuite.collector.client import REDIS_ERRORS, redis_client
from perfsuite.collector.keys import DEFAULT_PREFIX, DEFAULT_RETENTION_S, check_prefix, check_run_id
from perfsuite.collector.runs import finish_fields, meta_entries, new_run_id, run_exists, run_fields
from perfsuite.collector.writer import DEFAULT_SPILL_DIR, CollectorWriter
from perfsuite.errors import ConfigError

logger = logging.getLogger(__name__)

RUN_ID_OPTION = "perfsuite_run_id"
"""``environment.parsed_options`` attribute carrying the current run id (master -> workers)."""

_PLUGIN_ATTR = "_perfsuite_collector_plugin"


def add_arguments(parser: Any) -> None:
    """Add ``--run-id``, ``--collector-redis-url`` and ``--collector-prefix`` to Locust's parser.

    Call it from the locustfile's own ``init_command_line_parser`` listener. None of them shows in
    the web UI (the URL may hold a password).
    """
    parser.add_argument(
        "--run-id",
        dest="perfsuite_requested_run_id",
        env_var="PERFSUITE_RUN_ID",
        default=None,
        include_in_web_ui=False,
        help="perfsuite collector: run id of the first test started by this process (default: new id)",
    )
    parser.add_argument(
        "--collector-redis-url",
        dest="collector_redis_url",
        env_var="PERFSUITE_COLLECTOR_REDIS_URL",
        default=None,
        include_in_web_ui=False,
        help="perfsuite collector: Redis URL the results are written to",
    )
    parser.add_argument(
        "--collector-prefix",
        dest="collector_key_prefix",
        env_var="PERFSUITE_COLLECTOR_PREFIX",
        default=None,
        include_in_web_ui=False,
        help=f"perfsuite collector: key prefix (default {DEFAULT_PREFIX})",
    )


@dataclass(frozen=True, slots=True)
class PluginSettings:
    """What ``install`` was given; None values fall back to the parsed command line at test start."""

    redis_url: str | None
    key_prefix: str | None
    flush_interval_s: float
    spill_dir: Path
    retention_s: int
    test_type: str
    scenario: str
    config_json: str
    run_id: str | None
    max_pending_batches: int
    close_timeout_s: float
    raw_sample_rate: float
    raw_rows_cap: int
    describe_test: Callable[[Environment], tuple[str, str]] | None = None
    """Called at each test's start: its (scenario, redacted config JSON) when they can change
    between tests (a web UI that picks the scenario); None uses ``scenario``/``config_json``."""


class CollectorPlugin:
    """The collector's listeners on one Locust environment (see the module docstring)."""

    def __init__(self, environment: Environment, settings: PluginSettings) -> None:
        self.environment = environment
        self.settings = settings
        self.run_id: str | None = None
        """Id of the current (or last) run."""
        self.writer: CollectorWriter | None = None
        """This process's writer while a test runs, else None."""
        self._meta_writer: CollectorWriter | None = None
        """Master/local: the writer of the current or last run (closed after its test), which
        carries the run's metadata."""
        self.unrecorded_requests: int = 0
        """Request events seen while no writer was open (should stay 0)."""
        self._first_test = True
        self._run_active = False
        self._interrupted = False
        self._finishing_run_id: str | None = None
        self._client: Any = None
        self._prefix = DEFAULT_PREFIX
        self._workers = 0
        events = environment.events
        events.test_start.add_listener(self.on_test_start)
        events.test_stop.add_listener(self.on_test_stop)
        events.quitting.add_listener(self.on_quitting)
        events.quit.add_listener(self.on_quit)
        events.request.add_listener(self.on_request)
        events.worker_report.add_listener(self.on_worker_report)
        events.reset_stats.add_listener(self.on_reset_stats)

    # ---------------------------------------------------------------- roles and settings

    @property
    def role(self) -> str:
        """``master``, ``worker`` or ``local``."""
        runner = self.environment.runner
        if isinstance(runner, MasterRunner):
            return "master"
        if isinstance(runner, WorkerRunner):
            return "worker"
        return "local"

    def _option(self, name: str) -> Any:
        return getattr(self.environment.parsed_options, name, None)

    def _connect(self) -> None:
        url = self.settings.redis_url or self._option("collector_redis_url")
        if not url:
            raise ConfigError(
                "collector Redis URL missing: pass locust_plugin.install(redis_url=...) "
                "or --collector-redis-url"
            )
        self._prefix = check_prefix(
            self.settings.key_prefix or self._option("collector_key_prefix") or DEFAULT_PREFIX
        )
        if self._client is None:
            self._client = redis_client(url)

    def _open_writer(self, run_id: str) -> CollectorWriter:
        settings = self.settings
        self.writer = CollectorWriter(
            self._client,
            run_id,
            key_prefix=self._prefix,
            flush_interval_s=settings.flush_interval_s,
            max_pending_batches=settings.max_pending_batches,
            spill_dir=settings.spill_dir,
            retention_s=settings.retention_s,
            close_timeout_s=settings.close_timeout_s,
            raw_sample_rate=settings.raw_sample_rate,
            raw_rows_cap=settings.raw_rows_cap,
        )
        return self.writer

    # ---------------------------------------------------------------- listeners

    def on_test_start(self, environment: Environment, **_kwargs: Any) -> None:
        """Create the run (master/local) and open this process's writer."""
        if self.writer is not None:  # a previous test never stopped cleanly
            self.writer.close()
            self.writer = None
        self._finishing_run_id = None
        self._connect()
        role = self.role
        if role == "worker":
            run_id = self._option(RUN_ID_OPTION)
            if not run_id:
                raise ConfigError(
                    "collector: the master sent no perfsuite run id; install the collector plugin "
                    "in the master's locustfile too"
                )
            self.run_id = check_run_id(str(run_id))
            self._open_writer(self.run_id)
            return
        requested = self.settings.run_id or self._option("perfsuite_requested_run_id")
        run_id = check_run_id(requested) if requested and self._first_test else new_run_id()
        self._first_test = False
        runner = environment.runner
        self._workers = runner.worker_count if isinstance(runner, MasterRunner) else 1
        self._check_new(run_id)
        self.run_id = run_id
        self._run_active = True
        self._interrupted = False
        if environment.parsed_options is not None:
            setattr(environment.parsed_options, RUN_ID_OPTION, run_id)
        elif role == "master":
            logger.error("collector: environment.parsed_options is None, workers cannot learn the run id")
        writer = self._meta_writer = self._open_writer(run_id)
        started_at = datetime.now(UTC)
        scenario, config_json = self.settings.scenario, self.settings.config_json
        if self.settings.describe_test is not None:
            scenario, config_json = self.settings.describe_test(environment)
        fields = run_fields(
            run_id,
            self.settings.test_type,
            scenario,
            environment.host or "",
            config_json,
            started_at,
            workers=self._workers,
            locust_version=locust.__version__,
            role=role,
        )
        retention_s = self.settings.retention_s
        writer.put(meta_entries(self._prefix, run_id, fields, retention_s=retention_s, started_at=started_at))
        writer.flush()  # the run is listed at once (Redis away: written when it answers)
        logger.info("collector: run %s started (%s, %d worker(s))", run_id, role, self._workers)

    def _check_new(self, run_id: str) -> None:
        """ConfigError when the run id is taken; a Redis that does not answer cannot tell (its
        writer keeps everything until it does)."""
        try:
            taken = run_exists(self._client, self._prefix, run_id)
        except REDIS_ERRORS as exc:
            logger.error(
                "collector: Redis does not answer at the start of run %s (%s); its data and metadata are "
                "kept and written when it answers",
                run_id,
                type(exc).__name__,
            )
            return
        if taken:
            raise ConfigError(
                f"run id {run_id!r} already exists under prefix {self._prefix!r}: choose another run id"
            )

    def _put_meta(self, **fields: object) -> None:
        """Set meta fields of the current (or last) run through its writer (open: with its batches;
        closed: at once, or spilled)."""
        writer = self._meta_writer
        if writer is None or self.run_id is None:
            return
        writer.put(meta_entries(self._prefix, self.run_id, fields, retention_s=self.settings.retention_s))

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int | None,
        exception: BaseException | None = None,
        context: Mapping[str, Any] | None = None,
        **_kwargs: Any,
    ) -> None:
        """Record one request event (hot path)."""
        writer = self.writer
        if writer is None:
            self.unrecorded_requests += 1
            return
        outcome = "success" if exception is None else "failure"
        reason: str | None = None
        timings = None
        if context and isinstance(context, dict):
            wanted = context.get("outcome")
            if wanted is not None:
                if wanted in OUTCOME_INDEX:
                    outcome = wanted
                else:
                    outcome, reason = "failure", f"invalid context outcome {wanted!r}"
            timings = context.get("timings_us")
            reason = context.get("failure_reason") or context.get("conformance") or reason
        if reason is None and exception is not None:
            reason = str(exception) or type(exception).__name__
        writer.record(
            request_type,
            name,
            (response_time or 0.0) * 1000.0,
            outcome=outcome,
            response_length=response_length or 0,
            error=reason,
            timings_us=timings,
        )

    def on_test_stop(self, environment: Environment, **_kwargs: Any) -> None:
        """Master/local: finish the run with Locust's own total; then the writer's final flush."""
        if self.role != "worker" and self._run_active:
            self._finish(environment)
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _finish(self, environment: Environment) -> None:
        run_id = self.run_id
        if run_id is None:
            return
        self._run_active = False
        status = "interrupted" if self._interrupted else "finished"
        total = environment.stats.total
        self._put_meta(
            **finish_fields(
                status, locust_total_requests=total.num_requests, locust_total_failures=total.num_failures
            )
        )
        if self.role == "master":
            self._finishing_run_id = run_id
        logger.info("collector: run %s %s", run_id, status)

    def on_worker_report(self, client_id: str, data: Mapping[str, Any], **_kwargs: Any) -> None:
        """After test_stop on a master: keep Locust's total in the meta up to date (late reports)."""
        if self._finishing_run_id is not None:
            self._store_locust_total()

    def _store_locust_total(self) -> None:
        total = self.environment.stats.total
        self._put_meta(locust_total_requests=total.num_requests, locust_total_failures=total.num_failures)

    def on_reset_stats(self, **_kwargs: Any) -> None:
        """Locust's statistics were reset (web UI): its totals no longer cover the whole run."""
        if self.run_id is not None and self.role != "worker" and self._run_active:
            self._put_meta(locust_stats_reset=1)

    def on_quitting(self, environment: Environment, **_kwargs: Any) -> None:
        """Quitting while a test runs means it was interrupted (Ctrl-C, SIGTERM)."""
        if self._run_active:
            self._interrupted = True

    def on_quit(self, **_kwargs: Any) -> None:
        """Safety net just before exit: finish an open run, close a writer that is still open."""
        if self.role != "worker" and self._run_active:
            self._interrupted = True
            self._finish(self.environment)
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self._finishing_run_id is not None:
            self._store_locust_total()
        if self.unrecorded_requests:
            logger.warning(
                "collector: %d request event(s) arrived while no test was running and were not recorded",
                self.unrecorded_requests,
            )


def install(
    environment: Environment,
    *,
    redis_url: str | None = None,
    key_prefix: str | None = None,
    flush_interval_s: float = 1.0,
    spill_dir: Path = DEFAULT_SPILL_DIR,
    retention_s: int = DEFAULT_RETENTION_S,
    test_type: str = "",
    scenario: str = "",
    config_json: str = "{}",
    run_id: str | None = None,
    max_pending_batches: int = 600,
    close_timeout_s: float = 10.0,
    raw_sample_rate: float = 0.0,
    raw_rows_cap: int = 100_000,
    describe_test: Callable[[Environment], tuple[str, str]] | None = None,
) -> CollectorPlugin:
    """Install the collector on ``environment`` (call from an ``events.init`` listener); idempotent.

    ``redis_url`` / ``key_prefix`` default to ``--collector-redis-url`` / ``--collector-prefix``
    (see ``add_arguments``) read at test start; ``run_id`` (else ``--run-id``) names the first run.
    ``config_json`` must already be redacted. The rest is passed to each ``CollectorWriter``.
    """
    existing = getattr(environment, _PLUGIN_ATTR, None)
    if isinstance(existing, CollectorPlugin):
        logger.warning("collector: already installed on this environment; keeping the first installation")
        return existing
    if run_id is not None:
        check_run_id(run_id)
    if key_prefix is not None:
        check_prefix(key_prefix)
    settings = PluginSettings(
        redis_url=redis_url,
        key_prefix=key_prefix,
        flush_interval_s=flush_interval_s,
        spill_dir=Path(spill_dir),
        retention_s=retention_s,
        test_type=test_type,
        scenario=scenario,
        config_json=config_json,
        run_id=run_id,
        max_pending_batches=max_pending_batches,
        close_timeout_s=close_timeout_s,
        raw_sample_rate=raw_sample_rate,
        raw_rows_cap=raw_rows_cap,
        describe_test=describe_test,
    )
    plugin = CollectorPlugin(environment, settings)
    setattr(environment, _PLUGIN_ATTR, plugin)
    refresh_loop_clock()
    return plugin


def refresh_loop_clock() -> None:
    """Bring gevent's cached loop time up to now (call from an ``events.init`` listener).

    gevent arms a timer on the time its loop last looked at the clock. A Locust process imports
    for seconds (its locustfile, pandas...) before its loop first runs, so Locust's ``--run-time``
    timer, armed right after ``init``, fires that many seconds early: on a loaded machine a
    ``-t 3s`` run ended 28 ms after it began, with nothing sent.
    """
    gevent.get_hub().loop.update_now()


def plugin_of(environment: Environment) -> CollectorPlugin | None:
    """The plugin installed on ``environment``, if any."""
    plugin = getattr(environment, _PLUGIN_ATTR, None)
    return plugin if isinstance(plugin, CollectorPlugin) else None


def current_writer(environment: Environment) -> CollectorWriter | None:
    """This process's open writer (for ``.mark(...)`` from shapes and fault schedulers); on a master
    it carries marks only. None when no test runs or the collector is not installed."""
    plugin = plugin_of(environment)
    return plugin.writer if plugin is not None else None


def current_run_id(environment: Environment) -> str | None:
    """Id of the current (or last) run in this process, if any."""
    plugin = plugin_of(environment)
    return plugin.run_id if plugin is not None else None


__all__ = [
    "RUN_ID_OPTION",
    "CollectorPlugin",
    "PluginSettings",
    "add_arguments",
    "current_run_id",
    "current_writer",
    "install",
    "plugin_of",
    "refresh_loop_clock",
]
