"""What a run's marks say while it goes: the stage and load, the capacity steps judged live, the live
alerts, each load generator's health and whether the generator can be trusted.

:class:`RunProgress` takes the marks as the collector's batches carry them (``{"at", "kind",
"fields"}``, :mod:`perfsuite.marks`), in any order across writers, and keeps the state the endpoint
exposes. The trust verdict is :func:`perfsuite.saturation.assess`, the report's own rule: from each
process's whole-test figures once they all arrived (its last ``worker_health`` or ``generator``
mark), before that from the per-second samples so far (the P99 of each second's largest loop lag:
an upper bound of the report's P99 of every tick).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from perfsuite.arrival import ArrivalCounts
from perfsuite.collector.histogram import LatencyHistogram
from perfsuite.marks import (
    ALERT,
    ARRIVAL,
    ARRIVAL_DROPS,
    GENERATOR,
    STAGE,
    STEP_VERDICT,
    WORKER_HEALTH,
    WORKER_JOINED,
    WORKER_LOST,
    Stage,
)
from perfsuite.saturation import GeneratorFigures, Trust, assess, merge_reports, whole_test_reports


@dataclass(slots=True)
class Samples:
    """One generator's (or all generators') per-second health samples so far."""

    samples: int = 0
    cpu_max_percent: float = 0.0
    cpu_over_samples: int = 0
    loop_lag: LatencyHistogram = field(default_factory=LatencyHistogram)
    """Each second's largest event-loop lag (microseconds)."""

    def add(self, cpu_percent: float, loop_lag_max_ms: float, max_cpu_percent: float) -> None:
        self.samples += 1
        self.cpu_max_percent = max(self.cpu_max_percent, cpu_percent)
        self.cpu_over_samples += cpu_percent > max_cpu_percent  # SaturationMonitor's count
        self.loop_lag.record(loop_lag_max_ms * 1000)

    def figures(self, processes: int) -> GeneratorFigures | None:
        """These samples as the figures :func:`assess` judges (None without a sample)."""
        if not self.samples:
            return None
        return GeneratorFigures(
            processes=processes,
            samples=self.samples,
            cpu_max_percent=self.cpu_max_percent,
            cpu_over_samples=self.cpu_over_samples,
            loop_lag_p99_ms=self.loop_lag.percentile_us(99) / 1000,
            loop_lag_max_ms=self.loop_lag.max_us / 1000,
        )


@dataclass(slots=True)
class Worker:
    """One load-generating process (a worker, or the local process) as its marks tell."""

    client_id: str
    lost: bool = False
    cpu_percent: float | None = None
    """Its last sample's CPU (100 = one core)."""
    loop_lag_max_ms: float | None = None
    """Its last sample's largest event-loop lag."""
    samples: Samples = field(default_factory=Samples)
    final: Mapping[str, Any] | None = None
    """Its whole-test figures (its last ``worker_health`` mark), once it stopped."""


@dataclass(frozen=True, slots=True)
class StepVerdict:
    """A capacity step as the shape judged it when it ended (a ``step_verdict`` mark)."""

    step: int
    load: float
    good_rps: float
    p95_ms: float | None
    meets_slo: bool


@dataclass(frozen=True, slots=True)
class AlertState:
    """One live alert rule: firing now or not, its last value, how often it fired."""

    firing: bool
    value: float
    limit: float
    fired: int


class RunProgress:
    """The marks of one run so far (see the module docstring)."""

    def __init__(self, *, max_cpu_percent: float, max_lag_ms: float) -> None:
        self.max_cpu_percent = float(max_cpu_percent)
        self.max_lag_ms = float(max_lag_ms)
        self.stage: str | None = None
        """The stage the load shape entered last (:class:`perfsuite.marks.Stage`)."""
        self.stage_fields: dict[str, Any] = {}
        self._stage_at = float("-inf")
        self.burst_second: int | None = None
        """Epoch second the first burst started (the closed model's steady stage ends there)."""
        self.steps: dict[int, StepVerdict] = {}
        self.knee_step: int | None = None
        self.capacity_load: float | None = None
        self._last_verdict = -1
        self.alerts: dict[tuple[str, str], AlertState] = {}
        """By (alert, severity)."""
        self.workers: dict[str, Worker] = {}
        """By Locust client id."""
        self.writer_worker: dict[str, str] = {}
        """Collector writer id -> the client id of the process that writes with it."""
        self._all_samples = Samples()
        self._generator_marks: list[Mapping[str, Any]] = []
        self._arrival = ArrivalCounts(processes=0)
        self._arrival_marks = 0
        self._dropped_live = 0

    def add(self, writer_id: str, mark: Mapping[str, Any]) -> None:
        """Take one mark of writer ``writer_id``."""
        kind, at = str(mark.get("kind", "")), float(mark.get("at") or 0.0)
        fields: Mapping[str, Any] = mark.get("fields") or {}
        if kind == STAGE:
            self._stage(at, fields)
        elif kind == STEP_VERDICT:
            self._verdict(fields)
        elif kind == ALERT:
            self._alert(fields)
        elif kind == WORKER_HEALTH and fields.get("source") == "worker" and fields.get("client_id"):
            self._health(writer_id, fields)
        elif kind in (WORKER_JOINED, WORKER_LOST) and fields.get("client_id"):
            worker = self._worker(str(fields["client_id"]))
            worker.lost = kind == WORKER_LOST
        elif kind == GENERATOR:
            self._generator_marks.append(fields)
        elif kind == ARRIVAL:
            self._arrival.merge(ArrivalCounts.from_fields(fields))
            self._arrival_marks += 1
        elif kind == ARRIVAL_DROPS:
            self._dropped_live += int(fields.get("dropped") or 0)

    def _worker(self, client_id: str) -> Worker:
        worker = self.workers.get(client_id)
        if worker is None:
            worker = self.workers[client_id] = Worker(client_id)
        return worker

    def _stage(self, at: float, fields: Mapping[str, Any]) -> None:
        name = str(fields.get("name", ""))
        if name == Stage.BURST and (self.burst_second is None or int(at) < self.burst_second):
            self.burst_second = int(at)
        if at >= self._stage_at:
            self._stage_at = at
            self.stage = name
            self.stage_fields = dict(fields)

    def _verdict(self, fields: Mapping[str, Any]) -> None:
        step = int(fields.get("step") or 0)
        p95 = fields.get("p95_ms")
        self.steps[step] = StepVerdict(
            step=step,
            load=float(fields.get("load") or 0.0),
            good_rps=float(fields.get("good_rps") or 0.0),
            p95_ms=None if p95 is None else float(p95),
            meets_slo=bool(fields.get("meets_slo")),
        )
        if step >= self._last_verdict:  # the knee and capacity found after the latest step
            self._last_verdict = step
            knee = fields.get("knee_step")
            self.knee_step = None if knee is None else int(knee)
            capacity = fields.get("capacity")
            self.capacity_load = None if capacity is None else float(capacity)

    def _alert(self, fields: Mapping[str, Any]) -> None:
        key = (str(fields.get("alert", "")), str(fields.get("severity", "")))
        fired = fields.get("state", "fired") == "fired"
        before = self.alerts.get(key)
        self.alerts[key] = AlertState(
            firing=fired,
            value=float(fields.get("value") or 0.0),
            limit=float(fields.get("limit") or 0.0),
            fired=(before.fired if before else 0) + fired,
        )

    def _health(self, writer_id: str, fields: Mapping[str, Any]) -> None:
        worker = self._worker(str(fields["client_id"]))
        self.writer_worker[writer_id] = worker.client_id
        if fields.get("final") is True:
            worker.final = dict(fields)
            return
        cpu, lag = fields.get("cpu_percent"), fields.get("loop_lag_max_ms")
        if cpu is None or lag is None:  # the first mark of a test only links the worker to its writer
            return
        worker.cpu_percent, worker.loop_lag_max_ms = float(cpu), float(lag)
        worker.samples.add(float(cpu), float(lag), self.max_cpu_percent)
        self._all_samples.add(float(cpu), float(lag), self.max_cpu_percent)

    def _assess(self, figures: GeneratorFigures | None, with_arrivals: bool) -> Trust:
        arrival = self._arrival
        lag = arrival.schedule_lag
        return assess(
            figures,
            max_cpu_percent=self.max_cpu_percent,
            max_lag_ms=self.max_lag_ms,
            schedule_lag_p99_ms=lag.percentile_us(99) / 1000 if with_arrivals and lag.count else None,
            dropped=(max(arrival.dropped, self._dropped_live) if with_arrivals else 0),
            unsent=arrival.unsent if with_arrivals else 0,
        )

    def trust(self) -> Trust | None:
        """The generator trust verdict so far (the report's rule); None before any sample."""
        processes = len(self.workers) or len(self._generator_marks)
        finals = whole_test_reports(
            self._generator_marks, [worker.final for worker in self.workers.values() if worker.final]
        )
        figures = (
            merge_reports(finals)
            if finals and len(finals) >= processes
            else self._all_samples.figures(processes)
        )
        if figures is None:
            return None
        verdict = self._assess(figures, with_arrivals=True)
        saturated = [worker for worker in self.workers.values() if self.saturated(worker)]
        if saturated and verdict.trustworthy:  # a saturated worker hidden in the merged figures
            names = ", ".join(worker.client_id for worker in saturated)
            return Trust(False, (f"saturated generator process(es): {names}",))
        return verdict

    def saturated(self, worker: Worker) -> bool:
        """Whether this process alone went over the limits (its whole-test figures once it stopped)."""
        figures = merge_reports([worker.final]) if worker.final else worker.samples.figures(1)
        return figures is not None and not self._assess(figures, with_arrivals=False).trustworthy


__all__ = ["AlertState", "RunProgress", "Samples", "StepVerdict", "Worker"]
