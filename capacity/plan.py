"""The capacity test's load over time: an outage phase at a steady load, then the step progression.

Phase 1, **outages** (only when a fault window runs): ``capacity.outage_users`` users (open model:
``outage_rate_per_s`` arrivals per second; default: the first step's load) from the start of the
load, while the fault windows open and close at their ``at_s`` (seconds from the start of the load);
it lasts until the last window healed plus ``capacity.recovery.observe_s`` (the recovery watch), so
every window is measured against the same load and a fresh bot, and a bot flattened by the last
steps cannot spoil the outage figures.

Phase 2, **steps**: ``load_ramp_steps`` users (open model: ``rate_steps_per_s``), each for
``step_duration`` seconds, until the last step or an early stop (see :mod:`capacity.steps`).

Pure: no clock, no I/O; the shape (``locustfiles/system_capacity.py``), the job (its time bound) and the
figures read the same plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from perfsuite.config import SuiteConfig
from perfsuite.faults.schedule import FaultWindow

OUTAGES = "outages"
"""The ``phase`` field of the steady-stage mark that opens the outage phase."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the progression."""

    index: int
    """1 for the first step."""
    load: float
    """Users (closed model) or arrivals per second (open model)."""
    start_s: float
    """Seconds from the start of the load."""
    duration_s: float

    @property
    def end_s(self) -> float:
        """Seconds from the start of the load when the step ends."""
        return self.start_s + self.duration_s


@dataclass(frozen=True, slots=True)
class CapacityPlan:
    """The outage phase and the steps, in seconds from the start of the load."""

    model: Literal["closed", "open"]
    steps: tuple[Step, ...]
    outage_load: float
    """Users or arrivals per second during the outage phase."""
    outage_s: float
    """Length of the outage phase (0: no window runs, the steps start at once)."""
    windows: tuple[FaultWindow, ...] = ()
    """The windows the outage phase runs."""

    @classmethod
    def from_config(cls, config: SuiteConfig, windows: Sequence[FaultWindow]) -> CapacityPlan:
        """The plan of ``config`` with ``windows`` (those that run: see :mod:`capacity.faults`)."""
        settings = config.capacity
        loads: tuple[float, ...]
        if settings.rate_steps_per_s is not None:
            model: Literal["closed", "open"] = "open"
            loads = tuple(float(rate) for rate in settings.rate_steps_per_s)
            outage_load = float(settings.outage_rate_per_s or loads[0])
        else:
            model = "closed"
            loads = tuple(float(users) for users in settings.load_ramp_steps)
            outage_load = float(settings.outage_users or loads[0])
        windows = tuple(sorted(windows, key=lambda window: window.at_s))
        outage_s = 0.0
        if windows:
            tail_s = settings.recovery.observe_s if settings.test_recovery else settings.recovery.window_s
            outage_s = max(window.end_s for window in windows) + tail_s
        steps = tuple(
            Step(
                index=i + 1,
                load=load,
                start_s=outage_s + i * settings.step_duration,
                duration_s=settings.step_duration,
            )
            for i, load in enumerate(loads)
        )
        return cls(model=model, steps=steps, outage_load=outage_load, outage_s=outage_s, windows=windows)

    @property
    def unit(self) -> str:
        """``users`` or ``req/s``."""
        return "users" if self.model == "closed" else "req/s"

    @property
    def total_s(self) -> float:
        """Seconds from the start of the load to the end of the last step."""
        return self.steps[-1].end_s if self.steps else self.outage_s

    @property
    def peak_load(self) -> float:
        """The highest load of the plan."""
        return max([self.outage_load if self.outage_s else 0.0, *(step.load for step in self.steps)])

    def step_at(self, offset_s: float) -> Step | None:
        """The step running ``offset_s`` seconds into the load (None in the outage phase or after)."""
        for step in self.steps:
            if step.start_s <= offset_s < step.end_s:
                return step
        return None

    def load_at(self, offset_s: float) -> float | None:
        """Users or arrivals per second planned ``offset_s`` seconds into the load; None after the end."""
        if offset_s < self.outage_s:
            return self.outage_load
        step = self.step_at(offset_s)
        return step.load if step is not None else None

    def describe(self) -> str:
        """``outage phase 95 s at 10 users, then 6 steps of 30 s: 10, 25, 50, 100, 200, 500 users``."""
        loads = ", ".join(f"{step.load:g}" for step in self.steps)
        steps = f"{len(self.steps)} steps of {self.steps[0].duration_s:g} s: {loads} {self.unit}"
        if not self.outage_s:
            return steps
        return f"outage phase {self.outage_s:g} s at {self.outage_load:g} {self.unit}, then {steps}"


__all__ = ["OUTAGES", "CapacityPlan", "Step"]
