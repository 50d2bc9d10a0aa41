"""``perfsuite run --test-type capacity``: the seed's capacity test as a test type.

Preflight finds the bot (``--host`` or ``target.host``, else the embedded demo bot behind an
embedded fault proxy: :func:`perfsuite.services.resolve_target` with ``faults_proxy``), decides which
fault windows run where (:mod:`capacity.faults`) and plans the load (:mod:`capacity.plan`); Locust
runs ``locustfiles/system_capacity.py``; after the load the bot's backlog is watched. The figures are in
:mod:`capacity.figures` (computed by :mod:`capacity.measure`), the report blocks in
:mod:`capacity.report`.

Checks: the capacity reaches ``capacity.min_capacity`` (default: the first step), critical; for each
outage that ran, success during it at least ``recovery.min_success_during`` (critical) and recovery
within ``recovery.max_recovery_s``; every window injected; the bot's pool at the capacity step within
``alerts.pool_utilization`` (5.2, when the bot states its pool); with ``--abort-on``, no aborting
alert. The comparison reads ``capacity_users`` and ``recovery_time_s`` (:meth:`CapacityTest.metrics`).
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel

from capacity.faults import API_URL_ENV, PROXY_DRIVERS, REDIS_URL_ENV, Resolution, resolve
from capacity.figures import CapacityFigures
from capacity.measure import capacity_figures
from capacity.plan import CapacityPlan
from capacity.report import capacity_sections
from capacity.resources import BOT_PID_ENV
from perfsuite.activity import find_process
from perfsuite.backlog import Backlog, watch_backlog
from perfsuite.collect import Collected
from perfsuite.config import SuiteConfig
from perfsuite.correction import Correction
from perfsuite.errors import PerfsuiteError
from perfsuite.faults.schedule import driver_for
from perfsuite.grading import Check
from perfsuite.jobs import Metric, Prepared, RunOptions, TestType
from perfsuite.launcher import LOCUSTFILES, LocustOutcome
from perfsuite.result import RunResult, Target
from perfsuite.sections import Section
from perfsuite.services import Target as BotTarget
from perfsuite.services import resolve_target

logger = logging.getLogger(__name__)

BACKLOG_GROWTH_WARNING = 0.05
"""Queue growth (a share of the answers per second) at the capacity step worth a warning when the
SLOs do not judge it."""

MISSED_BY_FAR = 0.5
"""Success during an outage under this is a miss by far (POOR): the bot did not degrade, it failed."""


@dataclass(frozen=True, slots=True)
class Preflight:
    """What preflight found: the bot, the plan, which windows run."""

    bot: BotTarget
    plan: CapacityPlan
    faults: Resolution


def figures_of(result: RunResult) -> CapacityFigures:
    """The capacity figures of ``result`` (empty ones when it has none)."""
    return result.figures if isinstance(result.figures, CapacityFigures) else CapacityFigures()


def _bot_pid(config: SuiteConfig, bot: BotTarget) -> int | None:
    if bot.pid is not None:
        return bot.pid
    if config.target.backlog.process is None:
        return None
    try:
        return int(find_process(config.target.backlog.process).pid)
    except PerfsuiteError:
        return None  # the backlog watch reports why


def recovery_time(figures: CapacityFigures) -> float | None:
    """The slowest recovery of the outages that ran (None: none was measured, or one never recovered)."""
    measured = [
        outage for outage in figures.outages if outage.status == "run" and outage.recovered is not None
    ]
    if not measured or any(not outage.recovered for outage in measured):
        return None
    return max(float(outage.recovery_s or 0.0) for outage in measured)


def outage_success(figures: CapacityFigures) -> float | None:
    """The lowest success rate during an outage that ran."""
    rates = [o.success_rate for o in figures.outages if o.status == "run" and o.success_rate is not None]
    return min(rates) if rates else None


def heal_after_a_broken_run(faults: Resolution) -> None:
    """Heal every proxy window again from this process: Locust heals them when its test stops, but a
    Locust stopped hard (a timeout, a crash) cannot, and a user's own Toxiproxy would stay broken.
    (Healing what is healthy succeeds; shell windows are left to their own heal command.)"""
    for window in faults.run:
        if window.driver not in PROXY_DRIVERS:
            continue
        try:
            driver_for(window).heal()
        except PerfsuiteError as exc:
            logger.warning("capacity: could not heal fault window %s after the run: %s", window.name, exc)


class CapacityTest(TestType):
    """How much load the bot holds within its SLOs, where it bends, and how it survives outages."""

    name: ClassVar[str] = "capacity"
    title: ClassVar[str] = "capacity test (load steps, knee, real outages, recovery, alerts)"
    order: ClassVar[int] = 30
    locustfile = LOCUSTFILES / "system_capacity.py"
    figures_model: ClassVar[type[BaseModel]] = CapacityFigures

    def prepare(self, config: SuiteConfig, stack: contextlib.ExitStack, options: RunOptions) -> Prepared:
        bot = resolve_target(config, stack, options.host, options.state_dir, faults_proxy=True)
        topology = bot.faults
        redis_url = topology.redis_url if topology is not None else os.environ.get(REDIS_URL_ENV)
        faults = resolve(
            config,
            embedded_api_url=topology.api_url if topology is not None else None,
            embedded_proxies=topology.proxies if topology is not None else (),
            database=topology.database if topology is not None else None,
            redis_url=redis_url,
            default_api_url=os.environ.get(API_URL_ENV),
        )
        plan = CapacityPlan.from_config(config, faults.run)
        env = {
            "TWILIO_AUTH_TOKEN": bot.auth_token,
            **faults.env(topology.api_url if topology is not None else None, redis_url),
        }
        pid = _bot_pid(config, bot)
        if pid is not None:
            env[BOT_PID_ENV] = str(pid)
        warnings = [
            f"fault window {skip.window.name}: {skip.status}: {skip.reason}"
            for skip in faults.skipped
            if skip.status != "disabled"
        ]
        target = Target(
            kind="http",
            host=bot.host,
            path=config.target.webhook_path,
            embedded=bot.embedded,
            demo_bot_mode=config.target.demo_bot_mode if bot.embedded else None,
        )
        return Prepared(
            target=target,
            locust_host=bot.host,
            env=env,
            timeout_s=plan.total_s + config.target.request_timeout_s + 90,
            context=Preflight(bot, plan, faults),
            warnings=tuple(warnings),
        )

    def observe(
        self, config: SuiteConfig, prepared: Prepared, outcome: LocustOutcome, run_id: str
    ) -> Backlog:
        preflight: Preflight = prepared.context
        if outcome.interrupted or outcome.timed_out or outcome.returncode not in (0, None):
            heal_after_a_broken_run(preflight.faults)
        timeout_s = 0 if outcome.interrupted else config.capacity.backlog_drain_timeout_s
        bot = preflight.bot
        return watch_backlog(bot.health_url, timeout_s, config.target.backlog, host=bot.host, pid=bot.pid)

    def figures(
        self, config: SuiteConfig, prepared: Prepared, collected: Collected, observed: Any
    ) -> CapacityFigures:
        preflight = prepared.context if isinstance(prepared.context, Preflight) else None
        plan = preflight.plan if preflight is not None else CapacityPlan.from_config(config, ())
        skipped = preflight.faults.skipped if preflight is not None else ()
        backlog = observed if isinstance(observed, Backlog) else None
        return capacity_figures(config, collected.data, plan, skipped, backlog)

    def checks(self, config: SuiteConfig, result: RunResult) -> list[Check]:
        settings = config.capacity
        figures = figures_of(result)
        unit = figures.unit
        first = figures.steps[0].load if figures.steps else None
        minimum = settings.min_capacity if settings.min_capacity is not None else first
        capacity = figures.capacity
        checks: list[Check] = []
        if minimum is not None:
            checks.append(
                Check(
                    f"capacity within the SLOs (P95 <= {settings.slo.p95_ms:g} ms, success >= "
                    f"{settings.slo.success_rate * 100:g}%)",
                    capacity.value if capacity.measured else None,
                    ">=",
                    float(minimum),
                    unit,
                    "4.3",
                    critical=True,
                    note="at least: limited by the generator" if capacity.limited_by_generator else "",
                )
            )
        else:
            checks.append(Check("capacity steps ran", None, ">=", 1.0, "steps", "4.3", critical=True))
        if figures.steps and figures.steps[0].success_rate is not None:
            # Fast answers are not capacity: a bot refusing (or shedding) most messages even at the
            # lowest load has failed outright, not missed one SLO (POOR, as in the webhook test).
            checks.append(
                Check(
                    f"success rate at the first step ({figures.steps[0].load:g} {unit})",
                    figures.steps[0].success_rate,
                    ">=",
                    settings.slo.success_rate,
                    "%",
                    "4.3",
                    critical=True,
                    far=MISSED_BY_FAR,
                )
            )
        recovery = settings.recovery
        for outage in figures.outages:
            if outage.status == "failed":
                checks.append(
                    Check(
                        f"fault window {outage.name} injected",
                        0.0,
                        "==",
                        1.0,
                        "",
                        "4.3",
                        note=outage.error or "",
                    )
                )
            if outage.status != "run":
                continue
            checks.append(
                Check(
                    f"success rate during {outage.name} ({outage.driver} -> {outage.target})",
                    outage.success_rate,
                    ">=",
                    recovery.min_success_during,
                    "%",
                    "4.3",
                    critical=True,
                    far=MISSED_BY_FAR,
                )
            )
            if settings.test_recovery:
                checks.append(
                    Check(
                        f"recovery after {outage.name}",
                        outage.recovery_s if outage.recovered else None,
                        "<=",
                        recovery.max_recovery_s,
                        "s",
                        "4.3",
                        note=(
                            f"not recovered within the {outage.observed_s or 0:g} s watched"
                            if outage.recovered is False
                            else ""
                        ),
                    )
                )
        if figures.pool.capacity_step_utilization is not None:
            checks.append(
                Check(
                    "bot connection pool in use at the capacity step",
                    figures.pool.capacity_step_utilization,
                    "<=",
                    settings.alerts.pool_utilization,
                    "%",
                    "5.2",
                )
            )
        if settings.abort_on is not None:
            aborting = sum(1 for alert in figures.alerts if alert.aborted)
            checks.append(
                Check(
                    f"no {settings.abort_on} alert stopped the run (--abort-on {settings.abort_on})",
                    float(aborting),
                    "==",
                    0.0,
                    "alerts",
                    "4.3",
                    critical=True,
                )
            )
        return checks

    def warnings(self, config: SuiteConfig, result: RunResult) -> list[str]:
        figures = figures_of(result)
        warnings: list[str] = []
        if figures.capacity.limited_by_generator:
            warnings.append(
                "our load generator saturated (CPU or event-loop lag): the capacity is a lower bound; "
                "run with --workers N or from more machines"
            )
        if figures.knee is not None and figures.knee.generator_saturated:
            warnings.append(f"the knee (step {figures.knee.step}) coincides with a saturated generator")
        if figures.stopped_early:
            warnings.append(f"the progression stopped before its last step: {figures.stopped_early}")
        criticals = [alert for alert in figures.alerts if alert.severity == "critical"]
        if criticals:
            warnings.append(
                f"{len(criticals)} critical alert(s) fired (first at +{criticals[0].at_s:g} s: "
                f"{criticals[0].what})"
            )
        for outage in figures.outages:
            if outage.status == "run" and outage.recovered is None and config.capacity.test_recovery:
                warnings.append(
                    f"recovery after {outage.name} could not be measured (no pre-fault reference, or a watch "
                    "shorter than one rolling window)"
                )
        held = next((step for step in figures.steps if step.index == figures.capacity.step), None)
        growth = held.queue_growth_per_s if held is not None else None
        if (
            config.capacity.slo.max_backlog_growth is None
            and held is not None
            and growth is not None
            and growth > BACKLOG_GROWTH_WARNING * max(held.good_rps, 1.0)
        ):
            warnings.append(
                f"at the capacity step ({held.load:g} {figures.unit}) the bot's queue grew {growth:,.0f}/s "
                f"while it answered {held.good_rps:,.0f}/s: it acks faster than it works, so that load is "
                "not sustainable for long (set capacity.slo.max_backlog_growth to count it in the capacity)"
            )
        backlog = figures.backlog
        if not backlog.supported and backlog.reason:
            warnings.append(backlog.reason)
        return warnings

    def diagnosis(self, config: SuiteConfig, result: RunResult) -> list[str]:
        figures = figures_of(result)
        found: list[str] = []
        if figures.capacity.measured and figures.capacity.step is None and figures.steps:
            first = figures.steps[0]
            found.append(
                f"the bot missed the SLOs at the first step ({first.load:g} {figures.unit}: "
                f"{'; '.join(first.slo_misses)}): it cannot hold even that load"
            )
        for outage in figures.outages:
            if outage.status != "run" or outage.success_rate is None:
                continue
            if outage.success_rate < config.capacity.recovery.min_success_during:
                reason = next(
                    (
                        r.reason
                        for r in result.failure_reasons
                        if r.outcome in ("failure", "backpressure") and r.reason
                    ),
                    "",
                )
                found.append(
                    f"during {outage.name} the bot answered {outage.success_rate * 100:.1f}% as intended "
                    f"({outage.failure:,} failures, {outage.backpressure:,} refusals)"
                    + (f", most often: {reason}" if reason else "")
                    + f": it does not degrade gracefully when its {outage.target} is away"
                )
        return found

    def sections(self, result: RunResult) -> list[Section]:
        return capacity_sections(figures_of(result))

    def latency_correction(self, config: SuiteConfig) -> Correction:
        # the open model's arrivals are timed from their intended start; its report corrects nothing else
        return Correction.open_model() if config.capacity.rate_steps_per_s else Correction.none()

    def metrics(self) -> tuple[Metric, ...]:
        def users(result: RunResult) -> float | None:
            capacity = figures_of(result).capacity
            return capacity.value if capacity.measured and capacity.unit == "users" else None

        def rate(result: RunResult) -> float | None:
            capacity = figures_of(result).capacity
            return capacity.value if capacity.measured and capacity.unit == "req/s" else None

        return (
            Metric("capacity_users", "capacity (concurrent users held)", "users", False, "4.3", users),
            Metric(
                "recovery_time_s",
                "recovery time after an outage",
                "s",
                True,
                "4.3",
                lambda r: recovery_time(figures_of(r)),
            ),
            Metric("capacity_rate_per_s", "capacity (arrivals per second held)", "req/s", False, "4.3", rate),
            Metric(
                "outage_success_rate",
                "success rate during an outage",
                "%",
                False,
                "4.3",
                lambda r: outage_success(figures_of(r)),
            ),
            Metric(
                "capacity_pool_peak_utilization",
                "bot pool peak utilization",
                "%",
                True,
                "5.2",
                lambda r: figures_of(r).pool.peak_utilization,
            ),
        )


__all__ = ["MISSED_BY_FAR", "CapacityTest", "Preflight", "figures_of", "outage_success", "recovery_time"]
