"""Every kind of mark a run records, declared once (as Locust declares its events in event.py).

A mark is a timestamped record that is not a request: a load shape entering a stage, a fault
window opening, a resource sample, a breaker changing state. Writers record them with
``CollectorWriter.mark(KIND, at_s=..., **fields)``; readers select them with ``RunData.marks(KIND)``.
A :class:`MarkKind` is a ``str`` (its name is what the collector stores), so both accept it where
they accept a string, and a stored run written before a kind was declared here reads the same.
"""

from __future__ import annotations

from enum import StrEnum


class MarkKind(str):
    """The name of one kind of mark plus the fields its marks carry (for readers and docs)."""

    fields: tuple[str, ...]

    def __new__(cls, name: str, fields: tuple[str, ...] = ()) -> MarkKind:
        kind = super().__new__(cls, name)
        kind.fields = fields
        return kind


class Stage(StrEnum):
    """Names of the stages a load shape marks with :data:`STAGE`."""

    RAMP = "ramp"
    """Users are being started (the seed profile's ramp-up)."""
    STEADY = "steady"
    """Load at its planned level (arrival rate, synthetic runs)."""
    BURST = "burst"
    """The seed profile's burst: ``burst_intensity`` users fire at once."""
    STEP = "step"
    """One step of the capacity progression (the mark's ``step`` field holds its index)."""
    DONE = "done"
    """The shape finished; the test stops."""


STAGE = MarkKind("stage", ("name", "step", "users", "rate_per_s"))
"""A load shape entered a stage (``name``: a :class:`Stage`)."""

FAULT_START = MarkKind("fault_start", ("fault", "driver", "target"))
"""A scheduled fault window opened: the fault was injected (``fault`` names the window)."""

FAULT_END = MarkKind("fault_end", ("fault", "driver", "target"))
"""A scheduled fault window closed: the fault was healed."""

FAULT = MarkKind("fault", ("fault", "fault_kind", "process", "start_s", "duration_s", "end_s"))
"""A whole fault window recorded at once, after it ended (the Redis benchmark's injected outages)."""

SAMPLE = MarkKind("sample", ("source", "process", "pool", "ping_ms", "breaker_state"))
"""A periodic resource sample (the Redis benchmark's pool gauges, PING latency, breaker state)."""

BREAKER = MarkKind("breaker", ("process", "from_state", "to_state", "reason"))
"""A circuit breaker changed state."""

GENERATOR = MarkKind("generator", ("process", "samples", "cpu_max_percent", "loop_lag_max_ms"))
"""A load generator's totals at test stop (CPU, event-loop lag): whether it kept up."""

GENERATOR_SAMPLE = MarkKind("generator_sample", ("cpu_percent", "loop_lag_max_ms", "in_flight", "waiting"))
"""A load generator's CPU and event-loop lag over the last second."""

ARRIVAL_START = MarkKind("arrival_start", ("slot", "slots", "rate_per_s"))
"""Open model: a process's arrival driver started its share of the plan."""

ARRIVAL = MarkKind("arrival", ("slot", "slots", "scheduled", "sent", "late", "waited", "dropped"))
"""Open model: a process's arrival counts at the end of its plan."""

ARRIVAL_DROPS = MarkKind("arrival_drops", ("dropped",))
"""Open model: arrivals dropped since the last such mark (the waiting queue was full)."""

ALERT = MarkKind("alert", ("alert", "severity", "value", "limit", "window_s"))
"""A live threshold alert fired (or cleared) while the run went on (requirement 4.3)."""

STEP_VERDICT = MarkKind(
    "step_verdict",
    ("step", "load", "requests", "good_rps", "p95_ms", "success_rate", "meets_slo", "knee_step", "capacity"),
)
"""A step of a progression judged live when it ended (the capacity test's shape): its figures from
Locust's statistics, whether it met the SLOs, and the knee and capacity found so far (step index and
load; None when none yet). The report judges the steps again from the collector after the run."""

RESOURCES = MarkKind("resources", ("process", "role", "cpu_percent", "rss_mb"))
"""A sample of a process's or the machine's CPU and memory (bot, generator, machine)."""

WORKER_JOINED = MarkKind("worker_joined", ("worker",))
"""A Locust worker joined the master."""

WORKER_LOST = MarkKind("worker_lost", ("worker", "requests"))
"""A Locust worker stopped answering heartbeats (killed, crashed, its host gone)."""

WORKER_HEALTH = MarkKind("worker_health", ("worker", "requests", "cpu_percent", "loop_lag_max_ms"))
"""A Locust worker's health sample: requests sent so far, CPU, event-loop lag."""

WINDOW_KINDS: tuple[MarkKind, ...] = (FAULT_START, FAULT_END, FAULT)
"""Kinds that describe fault windows (drawn as bands on every chart)."""

CHART_KINDS: tuple[MarkKind, ...] = (STAGE, *WINDOW_KINDS, ALERT)
"""Kinds a run keeps with its result for charts and reports."""

__all__ = [
    "ALERT",
    "ARRIVAL",
    "ARRIVAL_DROPS",
    "ARRIVAL_START",
    "BREAKER",
    "CHART_KINDS",
    "FAULT",
    "FAULT_END",
    "FAULT_START",
    "GENERATOR",
    "GENERATOR_SAMPLE",
    "RESOURCES",
    "SAMPLE",
    "STAGE",
    "STEP_VERDICT",
    "WINDOW_KINDS",
    "WORKER_HEALTH",
    "WORKER_JOINED",
    "WORKER_LOST",
    "MarkKind",
    "Stage",
]
