"""Arrival schedules for open-model load: when each request is meant to start.

An open model sends requests at a rate whatever the target does, as Twilio does: a slow bot does
not slow the arrivals down. :class:`ArrivalPlan` describes that rate over time (constant, or a
linear ramp from ``rate_per_s`` to ``ramp_to_rate_per_s``) and the spacing of the arrivals
(``uniform``: evenly spaced; ``poisson``: independent arrivals, exponential gaps).

:meth:`ArrivalPlan.offsets` yields the intended start times (seconds from the start of the load)
of one load-generating process's share: with ``slots`` processes, process ``slot`` takes every
``slots``-th arrival of the uniform schedule (so the processes together send exactly the planned
schedule), or an independent Poisson stream of ``1/slots`` of the rate (the superposition of
independent Poisson streams is the planned Poisson stream).

:class:`ArrivalCounts` is what a process's driver did with its arrivals; it travels to the job as
the fields of an ``arrival`` collector mark (:meth:`~ArrivalCounts.to_fields`,
:meth:`~ArrivalCounts.from_fields`) and the processes' counts add up with :meth:`~ArrivalCounts.merge`.

Pure: no clock, no I/O, no gevent. The Locust side (``locustfiles/arrival.py``) turns offsets into
requests and measures each one from its intended start.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from perfsuite.collector.histogram import LatencyHistogram
from perfsuite.errors import ConfigError
from perfsuite.marks import ARRIVAL, ARRIVAL_DROPS, ARRIVAL_START

if TYPE_CHECKING:
    from perfsuite.config import ArrivalConfig

Distribution = Literal["uniform", "poisson"]
DISTRIBUTIONS: tuple[Distribution, ...] = ("uniform", "poisson")

UNCORRECTED_METRIC = "rt_uncorrected"
"""Collector metric: latency from the actual send (the ``rt`` metric is from the intended start)."""
START_LAG_METRIC = "start_lag"
"""Collector metric: how long after its intended start each request was sent."""
ARRIVAL_MARK = ARRIVAL
ARRIVAL_START_MARK = ARRIVAL_START
DROPS_MARK = ARRIVAL_DROPS
"""The mark kinds are declared in :mod:`perfsuite.marks`; these names stay for the drivers."""


@dataclass(frozen=True, slots=True)
class ArrivalPlan:
    """How many requests arrive when: a constant or linearly ramping rate over ``duration_s``."""

    rate_per_s: float
    """Arrivals per second at the start (all processes together)."""
    duration_s: float
    """Seconds of arrivals; no arrival is intended at or after this offset."""
    ramp_to_rate_per_s: float | None = None
    """Rate reached at ``duration_s`` (linear ramp); None keeps ``rate_per_s`` constant."""
    distribution: Distribution = "poisson"
    """``uniform`` (evenly spaced) or ``poisson`` (exponential gaps)."""

    def __post_init__(self) -> None:
        for name in ("rate_per_s", "duration_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"arrival.{name}: must be a finite number > 0, got {value!r}")
        end = self.ramp_to_rate_per_s
        if end is not None and (not isinstance(end, int | float) or not math.isfinite(end) or end <= 0):
            raise ConfigError(f"arrival.ramp_to_rate_per_s: must be a finite number > 0 or null, got {end!r}")
        if self.distribution not in DISTRIBUTIONS:
            raise ConfigError(
                f"arrival.distribution: must be one of {', '.join(DISTRIBUTIONS)}, got {self.distribution!r}"
            )

    @classmethod
    def from_config(cls, config: ArrivalConfig) -> ArrivalPlan:
        """The plan of the ``arrival:`` section; ConfigError when ``rate_per_s`` is unset."""
        if config.rate_per_s is None:
            raise ConfigError("arrival.rate_per_s: not set (null selects the closed-model profile)")
        return cls(
            rate_per_s=config.rate_per_s,
            duration_s=config.duration_s,
            ramp_to_rate_per_s=config.ramp_to_rate_per_s,
            distribution=config.distribution,
        )

    @property
    def end_rate_per_s(self) -> float:
        """The rate at ``duration_s``."""
        return self.rate_per_s if self.ramp_to_rate_per_s is None else self.ramp_to_rate_per_s

    @property
    def peak_rate_per_s(self) -> float:
        """The highest rate of the plan."""
        return max(self.rate_per_s, self.end_rate_per_s)

    @property
    def _slope(self) -> float:
        """Rate change per second (arrivals/s²)."""
        return (self.end_rate_per_s - self.rate_per_s) / self.duration_s

    def rate_at(self, offset_s: float) -> float:
        """The intended rate (arrivals/s) at ``offset_s``; 0 outside ``[0, duration_s)``."""
        if offset_s < 0 or offset_s >= self.duration_s:
            return 0.0
        return self.rate_per_s + self._slope * offset_s

    def arrivals_until(self, offset_s: float) -> float:
        """Expected arrivals in ``[0, offset_s)`` (the integral of the rate)."""
        t = min(max(offset_s, 0.0), self.duration_s)
        return self.rate_per_s * t + self._slope * t * t / 2

    @property
    def expected_arrivals(self) -> float:
        """Expected arrivals over the whole plan (exact for ``uniform``: ``ceil`` of it)."""
        return self.arrivals_until(self.duration_s)

    def offset_of(self, arrivals: float) -> float:
        """The offset at which ``arrivals`` arrivals are expected (inverse of :meth:`arrivals_until`)."""
        slope = self._slope
        if arrivals <= 0:
            return 0.0
        if slope == 0:
            return arrivals / self.rate_per_s
        # Root of slope/2·t² + r0·t - x = 0, in the form that stays exact when slope -> 0.
        discriminant = self.rate_per_s * self.rate_per_s + 2 * slope * arrivals
        return 2 * arrivals / (self.rate_per_s + math.sqrt(max(discriminant, 0.0)))

    def offsets(self, slot: int = 0, slots: int = 1, rng: random.Random | None = None) -> Iterator[float]:
        """Intended start offsets (seconds, ascending, in ``[0, duration_s)``) of process ``slot`` of
        ``slots``. ``rng`` drives Poisson gaps (default: a fresh, randomly seeded one)."""
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise ConfigError(f"arrival slots: must be a whole number >= 1, got {slots!r}")
        if isinstance(slot, bool) or not isinstance(slot, int) or not 0 <= slot < slots:
            raise ConfigError(f"arrival slot: must be a whole number in [0, {slots}), got {slot!r}")
        if self.distribution == "uniform":
            return self._uniform(slot, slots)
        return self._poisson(slots, rng if rng is not None else random.Random())

    def _uniform(self, slot: int, slots: int) -> Iterator[float]:
        # Arrival k of the whole schedule is intended when k arrivals are expected: 0, 1/r, 2/r, ...
        k = slot
        while True:
            offset = self.offset_of(float(k))
            if offset >= self.duration_s or self.arrivals_until(self.duration_s) <= k:
                return
            yield offset
            k += slots

    def _poisson(self, slots: int, rng: random.Random) -> Iterator[float]:
        # A Poisson process of intensity rate(t)/slots is a unit-rate one in the time change
        # x = arrivals_until(t)/slots: unit exponential gaps in x, mapped back through offset_of.
        total = self.expected_arrivals
        position = 0.0
        while True:
            position += rng.expovariate(1.0) * slots
            if position >= total:
                return
            offset = self.offset_of(position)
            if offset >= self.duration_s:
                return
            yield offset


@dataclass(slots=True)
class ArrivalCounts:
    """What one process's driver did with its arrivals (or, merged, all processes')."""

    scheduled: int = 0
    """Arrivals whose intended time came."""
    sent: int = 0
    """Requests started."""
    late: int = 0
    """Requests started more than the lag bound after their intended time (any cause)."""
    waited: int = 0
    """Arrivals that found every slot busy and waited for one (they start late)."""
    dropped: int = 0
    """Arrivals that found every slot busy and the waiting queue full: never sent."""
    unsent: int = 0
    """Arrivals still waiting for a slot when the load stopped: never sent."""
    abandoned: int = 0
    """Requests still in flight when the drain time ran out (stopped without an answer)."""
    errors: int = 0
    """Sends that raised (a bug in the sender: its request event may be missing)."""
    max_in_flight: int = 0
    max_waiting: int = 0
    processes: int = 1
    schedule_lag: LatencyHistogram = field(default_factory=LatencyHistogram)
    """How late the scheduler woke for each arrival (us): the generator's own timekeeping."""

    _COUNTERS = ("scheduled", "sent", "late", "waited", "dropped", "unsent", "abandoned", "errors")
    _PEAKS = ("max_in_flight", "max_waiting")

    def to_fields(self) -> dict[str, Any]:
        """JSON-able fields for the ``arrival`` mark (the lag histogram in HdrHistogram's V2 encoding)."""
        values: dict[str, Any] = {name: getattr(self, name) for name in (*self._COUNTERS, *self._PEAKS)}
        values["schedule_lag_hist"] = self.schedule_lag.encode()
        return values

    @classmethod
    def from_fields(cls, values: Mapping[str, Any]) -> ArrivalCounts:
        """Counts from an ``arrival`` mark's fields (missing or NaN fields count 0)."""
        counts = cls()
        for name in (*cls._COUNTERS, *cls._PEAKS):
            value = values.get(name)
            if isinstance(value, int | float) and value == value:
                setattr(counts, name, int(value))
        encoded = values.get("schedule_lag_hist")
        if isinstance(encoded, str) and encoded:
            counts.schedule_lag = LatencyHistogram.decode(encoded)
        return counts

    def merge(self, other: ArrivalCounts) -> None:
        """Add ``other``'s counts (peaks add up too: processes run side by side)."""
        for name in (*self._COUNTERS, *self._PEAKS, "processes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.schedule_lag.merge(other.schedule_lag)


__all__ = [
    "ARRIVAL_MARK",
    "ARRIVAL_START_MARK",
    "DISTRIBUTIONS",
    "DROPS_MARK",
    "START_LAG_METRIC",
    "UNCORRECTED_METRIC",
    "ArrivalCounts",
    "ArrivalPlan",
    "Distribution",
]
