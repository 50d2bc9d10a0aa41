"""The job skeleton: every test type runs through the same steps, written once.

A test type (webhook, redis, capacity, a third party's) is a small :class:`TestType` object that
names its locustfile and supplies what is its own: its preflight and target (``prepare``), what it
observes after the load (``observe``: a queue draining, keys left behind), its figures, checks,
warnings, diagnosis, report sections and comparable metrics. :func:`run_job` does the rest, the
same way for every type:

1. preflight: the type's ``prepare`` (target, environment for the Locust processes, time bound);
2. Locust: one local process, or a master and N workers (``perfsuite/launcher.py``);
3. the type's ``observe`` after the load;
4. collector read-back (``perfsuite/collect.py``: what the writers spilled written back first, then
   Redis; the spill files themselves when Redis does not answer);
5. figures, the common summary, endpoints, failure reasons, collector integrity, run status;
6. grading: the type's checks plus the collector's own, graded by ``perfsuite/grading.py``;
7. storing with the run (``perfsuite/history.py``), intervals and marks attached for charts.

Test types are found by ``perfsuite/registry.py`` (Python entry points, group
``perfsuite.test_types``): the core never imports one by name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from perfsuite.collect import Collected, collect
from perfsuite.collector import RunData, new_run_id
from perfsuite.config import SuiteConfig
from perfsuite.correction import Correction
from perfsuite.errors import CollectorLost, NothingMeasured, ServiceUnavailable
from perfsuite.grading import Check
from perfsuite.intervals import Selection
from perfsuite.launcher import (
    EXPECT_REMOTE_WORKERS_MAX_WAIT_S,
    EXPECT_WORKERS_MAX_WAIT_S,
    LocustJob,
    LocustOutcome,
    run_locust,
)
from perfsuite.result import RunResult, RunStatus, Summary, Target
from perfsuite.sections import Section
from perfsuite.services import STATE_DIR

logger = logging.getLogger(__name__)


class LiveMetrics(Protocol):
    """What the skeleton tells a live metrics endpoint (``perfsuite.metrics.endpoint``)."""

    def follow(self, run_id: str, correction: Correction, host: str | None = None) -> None:
        """Run ``run_id`` starts (``host``: the bot's base URL, for its backlog)."""

    def finished(self, run_id: str) -> None:
        """Run ``run_id``'s data is final (read back for its report)."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Command-line choices that are not part of the configuration file."""

    host: str | None = None
    """The target given with ``--host`` (its meaning is the test type's: a bot URL, a Redis URL)."""
    workers: int = 0
    """0: one local Locust process; N: a master plus N workers."""
    remote_workers: int = 0
    """Workers the master waits for from other hosts (``perfsuite worker --master HOST``)."""
    master_bind_host: str = "127.0.0.1"
    """Where the master listens for workers (``*`` or an address other hosts reach, with remote ones)."""
    master_port: int | None = None
    verbose: bool = False
    run_id: str | None = None
    state_dir: Path = STATE_DIR
    metrics: LiveMetrics | None = None
    """The live metrics endpoint (``--metrics-port``) that serves each run while it goes."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a test type's preflight hands the skeleton."""

    target: Target
    locust_host: str
    """What Locust gets as ``--host``."""
    env: Mapping[str, str]
    """Extra environment of every Locust process (may hold secrets: never printed)."""
    timeout_s: float
    """Hard bound on the Locust run (it is stopped after it)."""
    context: Any = None
    """The type's own preflight results (a health URL, the benchmarked Redis...)."""
    warnings: tuple[str, ...] = ()
    """What preflight found worth saying (e.g. the signature probe's findings)."""


@dataclass(frozen=True, slots=True)
class Metric:
    """A figure a comparison looks at: how to read it from a result, which way is better."""

    key: str
    """Stable id (``webhook_p99_ms``); the seed's figures and targets use the same keys."""
    label: str
    unit: str
    """``ms``, ``s``, ``%`` (a share 0-1), ``users``, ``req/s``."""
    lower_is_better: bool
    requirement: str
    value: Callable[[RunResult], float | None]
    statistic: str | None = None
    """Interval statistic that tests it between two runs (``avg``, ``p50``, ``p95``, ``p99``,
    ``success_rate``); None: shown, not tested for regressions."""
    critical: bool = False


class TestType(ABC):
    """One kind of test, plugged into the skeleton (see the module docstring)."""

    __test__ = False  # not a pytest test class

    name: ClassVar[str]
    """The ``--test-type`` value."""
    title: ClassVar[str]
    order: ClassVar[int] = 100
    """Where it runs in ``--test-type all`` and where it shows in reports (lower first)."""
    in_all: ClassVar[bool] = True
    """False: not run by ``--test-type all`` (a test that needs more than one target)."""
    locustfile: ClassVar[Path]
    figures_model: ClassVar[type[BaseModel]]
    good_outcomes: ClassVar[tuple[str, ...]] = ("success", "rejected")

    @abstractmethod
    def prepare(self, config: SuiteConfig, stack: contextlib.ExitStack, options: RunOptions) -> Prepared:
        """Preflight: find or start the target (its services stop with ``stack``); raise
        ServiceUnavailable (exit 69) or ConfigError (exit 64) with a clear message."""

    def during(
        self, config: SuiteConfig, prepared: Prepared, run_id: str, collector_url: str
    ) -> contextlib.AbstractContextManager[Any]:
        """What runs beside the load of run ``run_id`` (a context entered before Locust starts and left
        when it has ended; default: nothing). The A/B comparison watches its verdict here."""
        return contextlib.nullcontext()

    def observe(self, config: SuiteConfig, prepared: Prepared, outcome: LocustOutcome, run_id: str) -> Any:
        """What to watch after the load of run ``run_id``, before the services stop (default:
        nothing)."""
        return None

    @abstractmethod
    def figures(
        self, config: SuiteConfig, prepared: Prepared, collected: Collected, observed: Any
    ) -> BaseModel:
        """The type's own figures from the run's data and what ``observe`` saw."""

    def summary(self, default: Summary, figures: BaseModel) -> Summary:
        """The run's summary (default: every request the collector holds)."""
        return default

    @abstractmethod
    def checks(self, config: SuiteConfig, result: RunResult) -> list[Check]:
        """The type's thresholds (the skeleton adds the collector's own integrity check)."""

    def warnings(self, config: SuiteConfig, result: RunResult) -> list[str]:
        """What the report should point out besides the checks."""
        return []

    def diagnosis(self, config: SuiteConfig, result: RunResult) -> list[str]:
        """What most likely went wrong, most likely first (empty when nothing did)."""
        return []

    def sections(self, result: RunResult) -> list[Section]:
        """The type's report blocks (drawn by every renderer)."""
        return []

    def metrics(self) -> tuple[Metric, ...]:
        """Figures a comparison of two runs of this type looks at."""
        return ()

    def selection(self, result: RunResult) -> Selection:
        """Which of the run's cells are the test's requests (for intervals and charts)."""
        return Selection(good_outcomes=self.good_outcomes)

    def latency_correction(self, config: SuiteConfig) -> Correction:
        """How this test corrects its latency for coordinated omission (the report's and the live
        metrics' ``corrected``; default: it does not)."""
        return Correction.none()

    def describe(self) -> str:
        """One line for ``--help`` and error messages."""
        return f"{self.name}: {self.title}"

    def recorded(self, config: SuiteConfig, host: str) -> Prepared:
        """What a run recorded outside ``perfsuite run`` (the web UI) is graded with: its target as
        the recording saw it, no preflight (no signature probe, nothing started)."""
        kind = "redis" if host.startswith(("redis://", "rediss://", "unix://")) else "http"
        target = Target(kind=kind, host=host, path=config.target.webhook_path if kind == "http" else None)
        return Prepared(target=target, locust_host=host, env={}, timeout_s=0.0)


def run_status(outcome: LocustOutcome) -> RunStatus:
    """How the run ended: the one place this is decided."""
    if outcome.interrupted:
        return RunStatus.INTERRUPTED
    if outcome.timed_out:
        return RunStatus.TIMED_OUT
    return RunStatus.FINISHED


def collector_check(result: RunResult) -> Check:
    """The integrity check every run gets: the collector holds exactly what Locust sent (with workers
    lost mid-run, what the surviving workers sent: see ``CollectorIntegrity.exact``)."""
    integrity = result.collector
    if integrity is None:
        return Check("collector counted exactly what Locust sent", None, "==", 0.0, "req", critical=True)
    survivors = " (surviving workers)" if integrity.lost_workers else ""
    return Check(
        f"collector counted exactly what Locust sent{survivors}",
        float(integrity.compared_requests),
        "==",
        float(integrity.compared_locust_requests or 0),
        "req",
        critical=True,
    )


def workers_check(result: RunResult) -> Check | None:
    """A distributed run's check that every worker ran to the end: a lost worker's users were not
    replaced, so the run did not produce the load it planned (None for a one-process run)."""
    workers = result.workers
    if len(workers) < 2 and not any(worker.lost for worker in workers):
        return None
    lost = [worker for worker in workers if worker.lost]
    note = ""
    if lost:
        note = "lost: " + ", ".join(
            f"{worker.host} (pid {worker.pid or '?'}, {worker.requests:,} requests flushed)"
            for worker in lost
        )
    return Check(
        "every worker ran to the end (none lost mid-run)",
        float(len(lost)),
        "<=",
        0.0,
        "lost",
        critical=True,
        note=note,
    )


def never_started(job: LocustJob, outcome: LocustOutcome) -> str:
    """Why a run that Locust ended before its first test (exit code non-zero, nothing recorded)
    never started, in words: most often workers that never joined their master."""
    text = f"run {job.run_id} never started: Locust exited with code {outcome.returncode}"
    expected = job.workers + job.remote_workers
    if expected:
        text += (
            f" (a master gives up when its {expected} worker(s) have not all joined within "
            f"{EXPECT_WORKERS_MAX_WAIT_S if not job.remote_workers else EXPECT_REMOTE_WORKERS_MAX_WAIT_S} s)"
        )
    if outcome.workers_exited:
        text += "; ended before it: " + ", ".join(outcome.workers_exited)
    if outcome.log_path is not None:
        text += f"; Locust's log: {outcome.log_path}"
    return text


def common_warnings(result: RunResult, outcome: LocustOutcome) -> list[str]:
    """Warnings about the run itself, the same for every test type."""
    warnings: list[str] = []
    if result.status is RunStatus.TIMED_OUT:
        warnings.append("Locust did not finish in time and was stopped; figures cover what ran")
    if outcome.returncode not in (0, None) and not outcome.interrupted:
        where = f" (log: {outcome.log_path})" if outcome.log_path else ""
        warnings.append(f"Locust exited with code {outcome.returncode}{where}")
    lost = [worker for worker in result.workers if worker.lost]
    if lost:
        names = ", ".join(f"{worker.host} (pid {worker.pid or '?'})" for worker in lost)
        warnings.append(
            f"{len(lost)} of {len(result.workers)} workers lost mid-run: {names}; the totals hold what they "
            "flushed before (see the workers block)"
        )
    integrity = result.collector
    if integrity is not None and integrity.redis_lost:
        warnings.append(
            "the collector's Redis was lost during the run: exit code 75 whatever the grade; rerun for a "
            "graded verdict"
        )
    if integrity is not None and integrity.read_from_spill:
        warnings.append(
            "the collector's Redis did not answer at the end: figures read from the writers' spill files "
            "(collector.spill_dir), written to Redis by the next perfsuite command"
        )
    if integrity is not None and not integrity.exact:
        if integrity.locust_requests is None:
            warnings.append(
                "Locust's own request count was not recorded: the collector's total is unverified"
            )
        else:
            warnings.append("the collector's totals differ from Locust's: latency figures may be incomplete")
    return warnings


def build_result(
    test_type: TestType,
    config: SuiteConfig,
    prepared: Prepared,
    collected: Collected,
    observed: Any,
    outcome: LocustOutcome,
) -> RunResult:
    """The graded result of one finished Locust run (everything after the load, except storing)."""
    figures = test_type.figures(config, prepared, collected, observed)
    draft = RunResult(
        test_type=test_type.name,
        run_id=collected.run_id,
        scenario=config.scenario,
        target=prepared.target,
        started_at=collected.started_at,
        stopped_at=collected.stopped_at,
        status=run_status(outcome),
        summary=test_type.summary(collected.summary, figures),
        endpoints=collected.endpoints,
        collector=collected.integrity,
        workers=collected.workers,
        failure_reasons=collected.failure_reasons,
        failure_reasons_total=collected.failure_reasons_total,
        config=config.snapshot(),
        figures=figures,
    )
    lost_check = workers_check(draft)
    checks = [*test_type.checks(config, draft), collector_check(draft), *([lost_check] if lost_check else [])]
    graded = draft.model_copy(update={"checks": tuple(checks)})
    warnings = [*prepared.warnings, *common_warnings(graded, outcome), *test_type.warnings(config, graded)]
    diagnosis = test_type.diagnosis(config, graded)
    return graded.model_copy(update={"warnings": tuple(warnings), "diagnosis": tuple(diagnosis)})


def grade_recorded(test_type: TestType, config: SuiteConfig, collected: Collected) -> RunResult:
    """A run recorded outside ``perfsuite run`` (a web UI test, a plain ``locust -f`` run), graded
    like a headless one from what the collector holds (without what only a launched run observes:
    the signature probe before the load, the backlog watch after it)."""
    status = collected.meta.get("status", "")
    outcome = LocustOutcome(returncode=0, interrupted=status == RunStatus.INTERRUPTED.value, timed_out=False)
    prepared = test_type.recorded(config, str(collected.meta.get("host", "")))
    return build_result(test_type, config, prepared, collected, None, outcome)


def run_job(
    test_type: TestType,
    config: SuiteConfig,
    options: RunOptions,
    collector_url: str,
    *,
    store: Callable[[RunResult, RunData | None], RunResult] | None = None,
) -> RunResult:
    """Run one test of ``test_type`` end to end and return its graded result (stored when ``store``
    is given: it returns the stored result with its intervals and marks)."""
    with contextlib.ExitStack() as stack:
        prepared = test_type.prepare(config, stack, options)
        run_id = options.run_id or new_run_id()
        job = LocustJob(
            locustfile=test_type.locustfile,
            host=prepared.locust_host,
            run_id=run_id,
            env={**config.process_env(), "REDIS_URL": collector_url, **prepared.env},
            workers=options.workers,
            remote_workers=options.remote_workers,
            master_bind_host=options.master_bind_host,
            master_port=options.master_port,
            log_dir=options.state_dir / "logs",
        )
        if options.metrics is not None:
            host = prepared.locust_host if prepared.target.kind == "http" else None
            options.metrics.follow(run_id, test_type.latency_correction(config), host)
        with test_type.during(config, prepared, run_id, collector_url):
            outcome = run_locust(job, timeout_s=prepared.timeout_s, verbose=options.verbose)
        try:
            observed = test_type.observe(config, prepared, outcome, run_id)
        except KeyboardInterrupt:
            # Ctrl-C while watching the target after the load (its backlog draining): stop waiting,
            # look once more without waiting (as for any interrupted run) and report what ran.
            outcome = dataclasses.replace(outcome, interrupted=True)
            observed = test_type.observe(config, prepared, outcome, run_id)
        try:
            collected = collect(config, collector_url, run_id, run_status(outcome))
        except CollectorLost:
            if outcome.interrupted:  # stopped before Locust registered the run: nothing was lost
                raise NothingMeasured(f"run {run_id} was stopped before it had results") from None
            if outcome.returncode not in (0, None):  # Locust ended before the run began
                raise ServiceUnavailable(never_started(job, outcome)) from None
            raise
        if options.metrics is not None:
            options.metrics.finished(run_id)
    result = build_result(test_type, config, prepared, collected, observed, outcome)
    return store(result, collected.data) if store is not None else result


__all__ = [
    "LiveMetrics",
    "Metric",
    "Prepared",
    "RunOptions",
    "TestType",
    "build_result",
    "collector_check",
    "common_warnings",
    "grade_recorded",
    "never_started",
    "run_job",
    "run_status",
    "workers_check",
]
