"""A finished capacity run's figures, from what the collector holds: the steps between their stage
marks, the outages between their fault marks, the alerts and resource samples the run recorded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from capacity.cells import RunCells
from capacity.faults import Skipped
from capacity.figures import Alert, Capacity, CapacityFigures, Knee, Pool
from capacity.plan import OUTAGES, CapacityPlan
from capacity.recovery import measure_outages
from capacity.samples import RunSamples
from capacity.steps import find_capacity, find_knee, measure_steps
from perfsuite.backlog import Backlog
from perfsuite.collect import records
from perfsuite.collector import RunData
from perfsuite.config import SuiteConfig
from perfsuite.marks import ALERT, STAGE, Stage


def load_start(data: RunData) -> float:
    """Epoch seconds when the load started: the first stage mark (else the first recorded second)."""
    stages = data.marks(STAGE)
    if len(stages):
        return float(stages["at"].min())
    return float(data.first_second or 0)


def stopped_early(data: RunData) -> str | None:
    """The reason the ``done`` stage mark gives for a progression stopped before its last step."""
    stages = data.marks(STAGE)
    if not len(stages):
        return None
    for row in records(stages):
        if row.get("name") == Stage.DONE and row.get("reason"):
            return str(row["reason"])
    return None


def alerts_of(data: RunData, start_s: float) -> tuple[Alert, ...]:
    """Every alert the run recorded: fired, with when it cleared and its worst sampled value."""
    marks = data.marks(ALERT)
    if not len(marks):
        return ()
    alerts: list[Alert] = []
    open_alerts: dict[str, int] = {}
    for row in records(marks):
        key = f"{row.get('alert')}:{row.get('severity')}"
        if row.get("state") == "cleared":
            position = open_alerts.pop(key, None)
            if position is not None:
                alert = alerts[position]
                peak = row.get("peak")
                alerts[position] = alert.model_copy(
                    update={
                        "cleared_at_s": round(float(row["at"]) - start_s),
                        "peak": float(peak) if isinstance(peak, int | float) else alert.peak,
                    }
                )
            continue
        severity = "critical" if row.get("severity") == "critical" else "warning"
        alerts.append(
            Alert(
                alert=str(row.get("alert") or "?"),
                severity=severity,
                what=str(row.get("what") or ""),
                value=float(row.get("value") or 0.0),
                limit=float(row.get("limit") or 0.0),
                unit=str(row.get("unit") or ""),
                at_s=round(float(row["at"]) - start_s),
                peak=float(row.get("value") or 0.0),
                aborted=bool(row.get("aborted")),
            )
        )
        open_alerts[key] = len(alerts) - 1
    return tuple(alerts)


def _outage_load(data: RunData) -> float | None:
    stages = data.marks(STAGE)
    for row in records(stages) if len(stages) else []:
        if row.get("phase") == OUTAGES:
            for key in ("users", "rate_per_s"):
                if isinstance(row.get(key), int | float):
                    return float(row[key])
    return None


def capacity_figures(
    config: SuiteConfig,
    data: RunData,
    plan: CapacityPlan,
    skipped: Sequence[Skipped] = (),
    backlog: Backlog | None = None,
) -> CapacityFigures:
    """The figures of a finished run (see :mod:`capacity.figures`)."""
    settings = config.capacity
    cells = RunCells(data)
    samples = RunSamples(data)
    steps = measure_steps(config, data, cells, samples)
    unit: Any = plan.unit
    if steps:
        found = find_capacity(steps)
        capacity = Capacity(
            unit=unit,
            value=found.value,
            step=steps[found.position].index if found.position is not None else None,
            first_failing_step=steps[found.first_failing].index if found.first_failing is not None else None,
            at_least=found.at_least or (len(steps) < len(plan.steps) and found.first_failing is None),
            limited_by_generator=found.limited_by_generator,
        )
    else:
        capacity = Capacity(unit=unit, measured=False)
    knee_found = find_knee(steps, settings.knee)
    knee = None
    if knee_found is not None:
        step = steps[knee_found.position]
        knee = Knee(
            step=step.index,
            load=step.load,
            load_growth=round(knee_found.load_growth, 4),
            throughput_growth=round(knee_found.throughput_growth, 4),
            p95_before_ms=knee_found.p95_before_ms,
            p95_after_ms=knee_found.p95_after_ms,
            generator_saturated=step.generator_saturated,
        )
    start_s = load_start(data)
    alerts = alerts_of(data, start_s)
    aborting = next((alert for alert in alerts if alert.aborted), None)
    bound, peak = samples.pool_peak()
    held = next((step for step in steps if step.index == capacity.step), None)
    return CapacityFigures(
        model=plan.model,
        unit=unit,
        slo_p95_ms=settings.slo.p95_ms,
        slo_success_rate=settings.slo.success_rate,
        planned_steps=len(plan.steps),
        steps=steps,
        capacity=capacity,
        knee=knee,
        stopped_early=stopped_early(data),
        outage_load=_outage_load(data),
        outages=measure_outages(
            data,
            cells,
            samples,
            settings.recovery,
            test_recovery=settings.test_recovery,
            planned=plan.windows,
            skipped=skipped,
        ),
        alerts=alerts,
        aborted_by=f"{aborting.severity} alert: {aborting.what}" if aborting is not None else None,
        resources=samples.resources(),
        generators=samples.generators(),
        pool=Pool(
            max=bound,
            peak_in_use=peak,
            capacity_step_utilization=held.resources.pool_utilization_max if held is not None else None,
        ),
        backlog=backlog if backlog is not None else Backlog(supported=False),
    )


__all__ = ["alerts_of", "capacity_figures", "load_start", "stopped_early"]
