"""Outages: what a fault window did to the bot's answers, and how long it took to recover.

Windows come from the run's ``fault_start`` / ``fault_end`` marks (when the fault was really
injected and healed). For each one:

- **success during**: the share of the requests recorded while the fault was on that were
  answered as intended (the seed's target: over 90%, with graceful degradation);
- **pre-fault reference**: success rate and P95 of the outage phase before its first fault (from
  ``capacity.recovery.warmup_s`` on), at the same load as every window;
- **recovery time** (rule, ``capacity.recovery``): the first moment after the heal from which every
  rolling window of ``window_s`` seconds, until the watch ends (the next fault, or the end of the
  outage phase), holds the reference: success rate at least the reference minus ``success_margin``
  and P95 at most ``max(reference × (1 + p95_margin), reference + p95_floor_ms)``. 0 when the bot
  never left those levels; "not recovered" when the last window of the watch still misses them;
- **backlog**: the bot's queue depth (its /health) before, during, at the heal and after.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from capacity.cells import RunCells, Stretch
from capacity.faults import Skipped
from capacity.figures import Outage, OutageBacklog
from capacity.plan import OUTAGES
from capacity.samples import RunSamples
from perfsuite.collect import records
from perfsuite.collector import RunData
from perfsuite.config import RecoveryConfig
from perfsuite.faults.schedule import FaultWindow
from perfsuite.marks import FAULT_END, FAULT_START, STAGE, Stage


@dataclass(frozen=True, slots=True)
class FaultRun:
    """One window as the run recorded it (epoch seconds)."""

    name: str
    driver: str
    target: str
    start_s: float
    end_s: float | None
    """None: never healed in the record (the run was cut short)."""
    description: str | None = None
    error: str | None = None
    """The injection's error (then nothing was broken)."""
    heal_error: str | None = None


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def fault_runs(data: RunData) -> list[FaultRun]:
    """The windows of the run, in the order they opened."""
    opened: dict[str, dict[str, Any]] = {}
    runs: list[FaultRun] = []
    marks = data.marks()
    if not len(marks):
        return runs
    for row in records(marks):
        kind = row.get("kind")
        if kind not in (FAULT_START, FAULT_END):
            continue
        name = str(row.get("fault") or "fault")
        if kind == FAULT_START:
            opened[name] = row
            continue
        start = opened.pop(name, None)
        if start is None:
            continue
        runs.append(_run(start, row))
    runs += [_run(start, None) for start in opened.values()]
    return sorted(runs, key=lambda run: run.start_s)


def _run(start: dict[str, Any], end: dict[str, Any] | None) -> FaultRun:
    return FaultRun(
        name=str(start.get("fault") or "fault"),
        driver=str(start.get("driver") or ""),
        target=str(start.get("target") or ""),
        start_s=float(start["at"]),
        end_s=float(end["at"]) if end is not None else None,
        description=_text(start.get("description")),
        error=_text(start.get("error")),
        heal_error=_text(end.get("error")) if end is not None else None,
    )


def outage_phase(data: RunData) -> tuple[float, float] | None:
    """``(start, end)`` epoch seconds of the outage phase (None when the run had none)."""
    marks = data.marks(STAGE)
    stages = records(marks) if len(marks) else []
    start = next((float(r["at"]) for r in stages if r.get("phase") == OUTAGES), None)
    if start is None:
        return None
    later = [float(r["at"]) for r in stages if float(r["at"]) > start and r.get("name") != Stage.STEADY]
    end = min(later) if later else (data.last_second + 1 if data.last_second is not None else start)
    return start, end


@dataclass(frozen=True, slots=True)
class Recovery:
    """The recovery rule's answer for one window."""

    recovered: bool | None
    """None: not measurable (no reference, or a watch shorter than one window)."""
    recovery_s: float | None
    observed_s: float


def holds(window: Stretch, reference: Stretch, rule: RecoveryConfig) -> bool:
    """A rolling window holds the pre-fault levels (see the module docstring)."""
    if not window.requests or window.success_rate is None or reference.success_rate is None:
        return False
    if window.success_rate < reference.success_rate - rule.success_margin:
        return False
    if reference.p95_ms is None or window.p95_ms is None:
        return False
    limit = max(reference.p95_ms * (1 + rule.p95_margin), reference.p95_ms + rule.p95_floor_ms)
    return window.p95_ms <= limit


def recovery_after(
    cells: RunCells, heal_s: float, until_s: float, reference: Stretch, rule: RecoveryConfig
) -> Recovery:
    """The recovery time after a heal at ``heal_s``, watched until ``until_s`` (epoch seconds)."""
    width = max(1, round(rule.window_s))
    observed_s = max(0.0, until_s - heal_s)
    first, last = math.ceil(heal_s), math.floor(until_s) - width
    if not reference.requests or last < first:
        return Recovery(None, None, observed_s)
    starts = range(first, last + 1)
    held = [holds(cells.stretch(t, t + width), reference, rule) for t in starts]
    if not held[-1]:
        return Recovery(False, None, observed_s)
    missed = [t for t, ok in zip(starts, held, strict=True) if not ok]
    recovered_at = missed[-1] + 1 if missed else first
    return Recovery(True, round(max(0.0, recovered_at - heal_s), 1), observed_s)


def backlog_around(samples: RunSamples, start_s: float, heal_s: float, until_s: float) -> OutageBacklog:
    """The bot's queue depth around one window (from its health samples)."""
    before = [depth for at, depth in samples.queue_depths(end_s=start_s)]
    during = [depth for at, depth in samples.queue_depths(start_s, heal_s)]
    after = samples.queue_depths(heal_s, until_s)
    if not (before or during or after):
        return OutageBacklog()
    base = before[-1] if before else None
    drained = next((at - heal_s for at, depth in after if depth <= (base or 0)), None)
    return OutageBacklog(
        before=base,
        peak_during=max(during) if during else None,
        at_heal=after[0][1] if after else (during[-1] if during else None),
        peak_after=max(depth for _, depth in after) if after else None,
        at_end=after[-1][1] if after else None,
        drained_after_s=None if drained is None else round(drained, 1),
    )


def bot_said(samples: RunSamples, start_s: float, heal_s: float) -> tuple[str, ...]:
    """What the bot's health reported during a window, each state once in order of first sight:
    ``status degraded``, ``breaker open``..."""
    said: list[str] = []
    for row in samples.health(start_s, heal_s):
        for key, label in (("status", "status"), ("breaker_state", "breaker")):
            value = _text(row.get(key))
            if value and f"{label} {value}" not in said:
                said.append(f"{label} {value}")
    return tuple(said)


def measure_outages(
    data: RunData,
    cells: RunCells,
    samples: RunSamples,
    rule: RecoveryConfig,
    *,
    test_recovery: bool,
    planned: Sequence[FaultWindow] = (),
    skipped: Sequence[Skipped] = (),
) -> tuple[Outage, ...]:
    """Every window that ran (from the marks), every ``planned`` one the run ended before, and every
    one preflight ``skipped``."""
    phase = outage_phase(data)
    runs = fault_runs(data)
    outages: list[Outage] = []
    load_start = phase[0] if phase is not None else (runs[0].start_s if runs else 0.0)
    phase_end = phase[1] if phase is not None else (data.last_second or 0) + 1
    reference = cells.stretch(load_start + rule.warmup_s, runs[0].start_s) if runs else Stretch(0.0, 0.0, 0)
    for position, run in enumerate(runs):
        common: dict[str, Any] = {
            "name": run.name,
            "driver": run.driver,
            "target": run.target,
            "description": run.description,
            "at_s": round(run.start_s - load_start, 1),
        }
        if run.error is not None:
            outages.append(Outage(**common, status="failed", error=run.error, reason="the injection failed"))
            continue
        heal_s = run.end_s if run.end_s is not None else phase_end
        until_s = runs[position + 1].start_s if position + 1 < len(runs) else phase_end
        during = cells.stretch(run.start_s, heal_s)
        recovery = (
            recovery_after(cells, heal_s, until_s, reference, rule)
            if test_recovery and run.end_s is not None
            else Recovery(None, None, max(0.0, until_s - heal_s))
        )
        outages.append(
            Outage(
                **common,
                status="run",
                error=run.heal_error,
                duration_s=round(heal_s - run.start_s, 1),
                requests=during.requests,
                success=during.success,
                rejected=during.rejected,
                backpressure=during.backpressure,
                failure=during.failure,
                success_rate=during.success_rate,
                p95_ms=during.p95_ms,
                reference_success_rate=reference.success_rate,
                reference_p95_ms=reference.p95_ms,
                bot_said=bot_said(samples, run.start_s, heal_s),
                recovered=recovery.recovered,
                recovery_s=recovery.recovery_s,
                observed_s=round(recovery.observed_s, 1),
                backlog=backlog_around(samples, run.start_s, heal_s, until_s),
            )
        )
    ran = {run.name for run in runs}
    cut = [Skipped(w, "not run", "the run ended before its time") for w in planned if w.name not in ran]
    for skip in (*cut, *skipped):
        window = skip.window
        status = skip.status if skip.status in ("disabled", "not applicable", "not run") else "not run"
        outages.append(
            Outage(
                name=window.name,
                driver=window.driver,
                target=window.target,
                status=status,
                reason=skip.reason,
                at_s=window.at_s,
                duration_s=window.duration_s,
            )
        )
    return tuple(outages)


__all__ = [
    "FaultRun",
    "Recovery",
    "backlog_around",
    "bot_said",
    "fault_runs",
    "holds",
    "measure_outages",
    "outage_phase",
    "recovery_after",
]
