"""The step progression's rules: does a step meet the SLOs, where is the knee, what is the capacity,
when to stop early. Pure functions of a few figures per step, so the live shape (from Locust's
statistics) and the figures after the run (from the collector) decide alike.

**SLOs** (``capacity.slo``): a step meets them when its P95 is at most ``p95_ms``, its success rate
(answered as intended) at least ``success_rate`` and, with ``max_backlog_growth`` set, the bot's queue
(its /health, when it states one) grows by at most that share of the step's answers per second (a bot
that acks faster than it works does not hold the load); a step without a single answer fails them.

**Knee** (``capacity.knee``): the first step whose good throughput (answers as intended per second)
grew by less than ``min_efficiency`` of the load's relative growth over the step before it, while
its P95 rose above ``1 + latency_growth`` times the previous P95 (``latency_floor_ms`` at least):
throughput stops following the load while latency climbs.

**Capacity**: the highest step meeting the SLOs below the first step that fails them (0 when the first
step fails). It is "at least" that much when every step held (the limit lies beyond the progression)
or when the first failing step saturated our own load generator: then the failure may be ours, and
the capacity is reported as limited by the generator, never blamed on the bot.

**Early stop** (``capacity.stop_after_failed_steps``): the progression stops once that many
consecutive steps failed the SLOs past the knee (past the capacity when no knee shows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from capacity.cells import RunCells
from capacity.figures import Step
from capacity.samples import RunSamples
from perfsuite.backlog import drain_rate
from perfsuite.collect import records
from perfsuite.collector import RunData
from perfsuite.config import CapacitySlo, KneeConfig, SuiteConfig
from perfsuite.marks import STAGE, Stage


class StepLike(Protocol):
    """What the rules read of a step."""

    @property
    def load(self) -> float: ...
    @property
    def good_rps(self) -> float: ...
    @property
    def p95_ms(self) -> float | None: ...
    @property
    def meets_slo(self) -> bool: ...
    @property
    def generator_saturated(self) -> bool: ...


def slo_misses(
    requests: int,
    p95_ms: float | None,
    success_rate: float | None,
    slo: CapacitySlo,
    *,
    good_rps: float = 0.0,
    queue_growth_per_s: float | None = None,
) -> tuple[str, ...]:
    """Why a step misses the SLOs (empty when it meets them); ``queue_growth_per_s`` is how fast the
    bot's queue grew over the step (None: unknown, not judged)."""
    if not requests or success_rate is None:
        return ("no request answered",)
    misses = []
    if p95_ms is None or p95_ms > slo.p95_ms:
        shown = "-" if p95_ms is None else f"{p95_ms:,.0f}"
        misses.append(f"P95 {shown} ms > {slo.p95_ms:g} ms")
    if success_rate < slo.success_rate:
        misses.append(f"success {success_rate * 100:.1f}% < {slo.success_rate * 100:g}%")
    limit = slo.max_backlog_growth
    if (
        limit is not None
        and queue_growth_per_s is not None
        and queue_growth_per_s > limit * max(good_rps, 1.0)
    ):
        misses.append(
            f"queue grows {queue_growth_per_s:,.0f}/s > {limit * 100:g}% of {good_rps:,.0f} answered/s "
            "(the bot acks faster than it works)"
        )
    return tuple(misses)


def queue_growth(points: Sequence[tuple[float, int]]) -> float | None:
    """How fast the bot's queue grew (per second; negative: it drained) from ``(seconds, depth)``
    samples: the least-squares slope; None with fewer than two samples."""
    rate = drain_rate(points)
    return None if rate is None else -rate


@dataclass(frozen=True, slots=True)
class KneeFinding:
    """Where throughput stopped following the load while latency climbed."""

    position: int
    """Index of the knee step in the sequence given."""
    load_growth: float
    """Relative growth of the load from the step before (1.0 = doubled)."""
    throughput_growth: float
    """Relative growth of the good throughput over the same steps."""
    p95_before_ms: float
    p95_after_ms: float


def find_knee(steps: Sequence[StepLike], rule: KneeConfig) -> KneeFinding | None:
    """The knee of ``steps`` (see the module docstring); None when none shows."""
    for position in range(1, len(steps)):
        before, after = steps[position - 1], steps[position]
        if before.load <= 0 or after.load <= before.load or before.good_rps <= 0:
            continue
        if before.p95_ms is None or after.p95_ms is None:
            continue
        load_growth = after.load / before.load - 1
        throughput_growth = after.good_rps / before.good_rps - 1
        stalls = throughput_growth < rule.min_efficiency * load_growth
        climbs = after.p95_ms > (1 + rule.latency_growth) * max(before.p95_ms, rule.latency_floor_ms)
        if stalls and climbs:
            return KneeFinding(position, load_growth, throughput_growth, before.p95_ms, after.p95_ms)
    return None


@dataclass(frozen=True, slots=True)
class CapacityFinding:
    """The capacity rule's answer."""

    value: float
    """Load of the highest step held (0: the first step failed)."""
    position: int | None
    """Index of that step (None when the first step failed)."""
    first_failing: int | None
    """Index of the first step failing the SLOs (None: every step held)."""
    at_least: bool
    """The true limit may lie higher: every step held, or the generator limited the run."""
    limited_by_generator: bool


def find_capacity(steps: Sequence[StepLike]) -> CapacityFinding:
    """The capacity of ``steps`` (see the module docstring)."""
    held: int | None = None
    first_failing: int | None = None
    for position, step in enumerate(steps):
        if not step.meets_slo:
            first_failing = position
            break
        held = position
    if first_failing is None:
        limited = any(step.generator_saturated for step in steps)
        at_least = True
    else:
        limited = steps[first_failing].generator_saturated
        at_least = limited
    value = steps[held].load if held is not None else 0.0
    return CapacityFinding(value, held, first_failing, at_least, limited)


def early_stop(steps: Sequence[StepLike], rule: KneeConfig, failed_steps: int) -> str | None:
    """Why the progression should stop after the steps so far (None: go on)."""
    if len(steps) < failed_steps:
        return None
    last = range(len(steps) - failed_steps, len(steps))
    if any(steps[position].meets_slo for position in last):
        return None
    knee = find_knee(steps, rule)
    if knee is not None and last.start <= knee.position:
        return None
    where = f"the knee (step {knee.position + 1})" if knee is not None else "the capacity"
    numbers = ", ".join(str(position + 1) for position in last)
    return f"steps {numbers} failed the SLOs past {where}"


# ---------------------------------------------------------------- after the run: from the collector


@dataclass(frozen=True, slots=True)
class StepStage:
    """A step as its stage marks place it (epoch seconds)."""

    index: int
    load: float
    start_s: float
    end_s: float


def _load_of(row: Mapping[str, Any]) -> float:
    for key in ("users", "rate_per_s"):
        value = row.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
            return float(value)
    return 0.0


def step_stages(data: RunData) -> list[StepStage]:
    """The steps that ran: each from its ``stage`` mark (name ``step``) to the next stage mark (the
    last one to the end of the data)."""
    stages = (
        sorted(records(data.marks(STAGE)), key=lambda row: float(row["at"])) if len(data.marks(STAGE)) else []
    )
    end_of_data = float(data.last_second + 1) if data.last_second is not None else 0.0
    found: list[StepStage] = []
    for position, row in enumerate(stages):
        if row.get("name") != Stage.STEP:
            continue
        start = float(row["at"])
        later = [float(other["at"]) for other in stages[position + 1 :] if float(other["at"]) > start]
        end = later[0] if later else max(end_of_data, start)
        index = row.get("step")
        found.append(
            StepStage(int(index) if index is not None else len(found) + 1, _load_of(row), start, end)
        )
    return found


def measure_steps(
    config: SuiteConfig, data: RunData, cells: RunCells, samples: RunSamples
) -> tuple[Step, ...]:
    """Every step that ran, measured from the run's cells and samples (see :mod:`capacity.figures`)."""
    settings = config.capacity
    steps = []
    for stage in step_stages(data):
        duration = stage.end_s - stage.start_s
        settle = min(settings.settle_s, duration / 3)
        begin = stage.start_s + settle
        stretch = cells.stretch(begin, stage.end_s)
        growth = queue_growth(samples.queue_depths(begin, stage.end_s))
        note = samples.generator_saturation(
            begin, stage.end_s, config.arrival.max_cpu_percent, settings.generator_max_lag_ms
        )
        steps.append(
            Step(
                index=stage.index,
                load=stage.load,
                started_at_s=stage.start_s,
                duration_s=round(duration, 2),
                measured_s=stretch.seconds,
                requests=stretch.requests,
                success=stretch.success,
                rejected=stretch.rejected,
                backpressure=stretch.backpressure,
                failure=stretch.failure,
                throughput_rps=round(stretch.throughput_rps, 2),
                good_rps=round(stretch.good_rps, 2),
                p50_ms=stretch.p50_ms,
                p95_ms=stretch.p95_ms,
                p99_ms=stretch.p99_ms,
                success_rate=stretch.success_rate,
                queue_growth_per_s=None if growth is None else round(growth, 2),
                slo_misses=slo_misses(
                    stretch.requests,
                    stretch.p95_ms,
                    stretch.success_rate,
                    settings.slo,
                    good_rps=stretch.good_rps,
                    queue_growth_per_s=growth,
                ),
                generator_saturated=note is not None,
                generator_note=note,
                resources=samples.resources(begin, stage.end_s),
            )
        )
    return tuple(steps)


# ---------------------------------------------------------------- live: from Locust's statistics


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """Locust's total statistics at one moment (its response times: rounded ms -> count)."""

    at_s: float
    requests: int
    failures: int
    response_times: Mapping[int, int]


def percentile_of_counts(counts: Mapping[int, int], percent: float) -> float | None:
    """The ``percent`` (0-100) percentile of a ``{value: count}`` histogram (None when empty)."""
    total = sum(count for count in counts.values() if count > 0)
    if not total:
        return None
    rank = max(1, round(percent / 100 * total))
    seen = 0
    for value in sorted(counts):
        seen += max(0, counts[value])
        if seen >= rank:
            return float(value)
    return float(max(counts))


def counts_between(before: Mapping[int, int], after: Mapping[int, int]) -> dict[int, int]:
    """The histogram of what happened between two cumulative ``{value: count}`` histograms."""
    return {
        value: count - before.get(value, 0) for value, count in after.items() if count > before.get(value, 0)
    }


@dataclass(frozen=True, slots=True)
class LiveStep:
    """One finished step as Locust's statistics saw it (on a master, up to one worker report late)."""

    index: int
    load: float
    requests: int
    good_rps: float
    p95_ms: float | None
    success_rate: float | None
    misses: tuple[str, ...]
    generator_saturated: bool = False

    @property
    def meets_slo(self) -> bool:
        """No SLO missed."""
        return not self.misses


def live_step(
    index: int,
    load: float,
    before: StatsSnapshot,
    after: StatsSnapshot,
    slo: CapacitySlo,
    queue: Sequence[tuple[float, int]] = (),
) -> LiveStep:
    """The step between two snapshots (Locust counts refusals and failures as its failures, answers as
    intended as its successes: the same success rate as the collector's); ``queue``: the bot's queue
    depth sampled meanwhile."""
    requests = max(0, after.requests - before.requests)
    failures = max(0, after.failures - before.failures)
    seconds = max(after.at_s - before.at_s, 1e-9)
    success_rate = (requests - failures) / requests if requests else None
    p95 = percentile_of_counts(counts_between(before.response_times, after.response_times), 95)
    good_rps = (requests - failures) / seconds
    growth = queue_growth(queue)
    return LiveStep(
        index=index,
        load=load,
        requests=requests,
        good_rps=good_rps,
        p95_ms=p95,
        success_rate=success_rate,
        misses=slo_misses(requests, p95, success_rate, slo, good_rps=good_rps, queue_growth_per_s=growth),
    )


__all__ = [
    "CapacityFinding",
    "KneeFinding",
    "LiveStep",
    "StatsSnapshot",
    "StepLike",
    "StepStage",
    "counts_between",
    "early_stop",
    "find_capacity",
    "find_knee",
    "live_step",
    "measure_steps",
    "percentile_of_counts",
    "queue_growth",
    "slo_misses",
    "step_stages",
]
