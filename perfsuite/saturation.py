"""Is the load generator itself the bottleneck? CPU and event-loop lag of a Locust process.

A saturated generator makes latency figures lie: requests start late, responses are read late,
and the delay lands in the measured latency (or, in a closed model, in requests never sent).
:class:`SaturationMonitor` runs one greenlet per load-generating process that

- wakes every ``tick_s`` (default 50 ms) and measures how late it woke (event-loop lag: a greenlet
  that hogs the loop, or a starved CPU, shows up here at once), into an HDR histogram. The tick is
  a sample of the lag an arrival at a random time would meet, so its rate sets the precision of
  the percentiles, not their value; each wake-up costs the process CPU even when idle (about
  0.1-0.3 ms here, see BENCHMARKS.md), so it stays coarse;
- every ``sample_interval_s`` reads the process's CPU share with ``psutil``'s non-blocking
  ``cpu_percent(interval=None)`` (CPU time since the previous read: it never sleeps, unlike
  ``cpu_percent(interval=1)``, which would block the event loop for a second).

:func:`assess` turns what the processes of a run saw into a :class:`Trust` verdict with reasons.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gevent
import psutil

from perfsuite.collector.histogram import LatencyHistogram
from perfsuite.errors import ConfigError
from perfsuite.marks import GENERATOR, GENERATOR_SAMPLE

logger = logging.getLogger(__name__)

GENERATOR_MARK = GENERATOR
GENERATOR_SAMPLE_MARK = GENERATOR_SAMPLE
"""The mark kinds are declared in :mod:`perfsuite.marks`."""


@dataclass(frozen=True, slots=True)
class GeneratorSample:
    """One sample of one generator process."""

    at_s: float
    """Epoch seconds."""
    cpu_percent: float
    """Share of one CPU this process used since the previous sample (100 = one core busy)."""
    loop_lag_max_ms: float
    """Largest event-loop lag seen since the previous sample."""


@dataclass(slots=True)
class GeneratorReport:
    """What one process's monitor saw over a test (the ``generator`` mark's fields)."""

    samples: int = 0
    cpu_max_percent: float = 0.0
    cpu_mean_percent: float = 0.0
    cpu_over_samples: int = 0
    """Samples above the CPU limit the monitor was given."""
    loop_lag: LatencyHistogram = field(default_factory=LatencyHistogram)
    """Event-loop lag (wake-up lateness), microseconds."""

    def to_fields(self) -> dict[str, Any]:
        """JSON-able fields for a collector mark (the histogram in HdrHistogram's V2 encoding)."""
        return {
            "samples": self.samples,
            "cpu_max_percent": round(self.cpu_max_percent, 1),
            "cpu_mean_percent": round(self.cpu_mean_percent, 1),
            "cpu_over_samples": self.cpu_over_samples,
            "loop_lag_hist": self.loop_lag.encode(),
        }


class SaturationMonitor:
    """Samples this process's CPU and event-loop lag from one greenlet; never blocks the loop."""

    def __init__(
        self,
        *,
        max_cpu_percent: float,
        sample_interval_s: float = 1.0,
        tick_s: float = 0.05,
        on_sample: Callable[[GeneratorSample], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """``on_sample`` is called (in the monitor's greenlet) with every CPU sample, e.g. to write a
        mark; ``max_cpu_percent`` is the limit counted in ``cpu_over_samples``."""
        if sample_interval_s <= 0 or tick_s <= 0 or tick_s > sample_interval_s:
            raise ConfigError(
                f"saturation monitor: need 0 < tick_s ({tick_s}) <= sample_interval_s ({sample_interval_s})"
            )
        self.max_cpu_percent = float(max_cpu_percent)
        self.sample_interval_s = float(sample_interval_s)
        self.tick_s = float(tick_s)
        self._on_sample = on_sample
        self._clock = clock
        self._process = psutil.Process()
        self._greenlet: gevent.Greenlet[Any, Any] | None = None
        self._cpu_sum = 0.0
        self.report = GeneratorReport()
        """Figures so far (complete after :meth:`stop`)."""

    def start(self) -> None:
        """Start sampling (once)."""
        if self._greenlet is None:
            self._process.cpu_percent(interval=None)  # first call sets the baseline, returns 0.0
            self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        clock = self._clock
        window_lag_us = 0.0
        next_sample = clock() + self.sample_interval_s
        while True:  # until stop() kills it (only ever in the sleep: the rest never yields)
            before = clock()
            gevent.sleep(self.tick_s)
            lag_us = max(0.0, (clock() - before - self.tick_s) * 1e6)
            self.report.loop_lag.record(lag_us)
            window_lag_us = max(window_lag_us, lag_us)
            if clock() >= next_sample:
                next_sample += self.sample_interval_s
                self._sample(window_lag_us)
                window_lag_us = 0.0

    def _sample(self, window_lag_us: float) -> None:
        cpu = float(self._process.cpu_percent(interval=None))
        report = self.report
        report.samples += 1
        self._cpu_sum += cpu
        report.cpu_mean_percent = self._cpu_sum / report.samples
        report.cpu_max_percent = max(report.cpu_max_percent, cpu)
        if cpu > self.max_cpu_percent:
            report.cpu_over_samples += 1
        if self._on_sample is not None:
            try:
                self._on_sample(GeneratorSample(time.time(), cpu, window_lag_us / 1000))
            except Exception:  # a failing consumer must not stop the sampling
                logger.exception("saturation monitor: sample consumer failed")

    def stop(self) -> GeneratorReport:
        """Stop sampling and return the report (idempotent)."""
        if self._greenlet is not None:
            self._greenlet.kill(block=True, timeout=1.0)
        return self.report


@dataclass(frozen=True, slots=True)
class Trust:
    """Whether a run's latency figures can be trusted, and if not, why."""

    trustworthy: bool
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"trustworthy": self.trustworthy, "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class GeneratorFigures:
    """The generator processes of one run together (see :func:`merge_reports`)."""

    processes: int
    samples: int
    cpu_max_percent: float
    cpu_over_samples: int
    loop_lag_p99_ms: float
    loop_lag_max_ms: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "processes": self.processes,
            "samples": self.samples,
            "cpu_max_percent": self.cpu_max_percent,
            "cpu_over_samples": self.cpu_over_samples,
            "loop_lag_p99_ms": self.loop_lag_p99_ms,
            "loop_lag_max_ms": self.loop_lag_max_ms,
        }


def merge_reports(marks: Iterable[Mapping[str, Any]]) -> GeneratorFigures | None:
    """The processes' ``generator`` mark fields merged; None when there are none."""
    processes = samples = over = 0
    cpu_max = 0.0
    lag = LatencyHistogram()
    for fields in marks:
        processes += 1
        samples += int(fields.get("samples") or 0)
        over += int(fields.get("cpu_over_samples") or 0)
        cpu_max = max(cpu_max, float(fields.get("cpu_max_percent") or 0.0))
        encoded = fields.get("loop_lag_hist")
        if isinstance(encoded, str) and encoded:
            lag.merge(LatencyHistogram.decode(encoded))
    if not processes:
        return None
    return GeneratorFigures(
        processes=processes,
        samples=samples,
        cpu_max_percent=cpu_max,
        cpu_over_samples=over,
        loop_lag_p99_ms=lag.percentile_us(99) / 1000,
        loop_lag_max_ms=lag.max_us / 1000,
    )


def whole_test_reports(
    generator_marks: Iterable[Mapping[str, Any]], health_marks: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """Each load-generating process's whole-test CPU and event-loop lag (the fields
    :func:`merge_reports` takes), from a run's marks: its ``generator`` mark, else (the processes
    that sample their health) its last ``worker_health`` mark, the one with ``final`` set."""
    reports = list(generator_marks)
    if reports:
        return reports
    return [row for row in health_marks if row.get("final") is True and row.get("source") == "worker"]


def assess(
    generator: GeneratorFigures | None,
    *,
    max_cpu_percent: float,
    max_lag_ms: float,
    schedule_lag_p99_ms: float | None = None,
    dropped: int = 0,
    unsent: int = 0,
) -> Trust:
    """The verdict on a run's latency: untrustworthy when a generator process went over
    ``max_cpu_percent`` in any sample, when the P99 of its event-loop lag (or of the arrival
    scheduler's lag, open model) exceeded ``max_lag_ms``, or when arrivals were dropped or never
    sent (the percentiles then leave out the requests that fared worst)."""
    reasons: list[str] = []
    if generator is None:
        reasons.append("no generator samples were recorded: saturation could not be checked")
    else:
        if generator.cpu_over_samples:
            reasons.append(
                f"generator CPU reached {generator.cpu_max_percent:.0f}% (limit {max_cpu_percent:g}%) in "
                f"{generator.cpu_over_samples} of {generator.samples} one-second samples: add workers "
                "(--workers) or lower the load"
            )
        if generator.loop_lag_p99_ms > max_lag_ms:
            reasons.append(
                f"generator event-loop lag P99 {generator.loop_lag_p99_ms:.1f} ms exceeds {max_lag_ms:g} ms "
                f"(max {generator.loop_lag_max_ms:.1f} ms): the generator or this machine is overloaded"
            )
    if schedule_lag_p99_ms is not None and schedule_lag_p99_ms > max_lag_ms:
        reasons.append(
            f"arrivals were scheduled late: P99 scheduling lag {schedule_lag_p99_ms:.1f} ms exceeds "
            f"{max_lag_ms:g} ms"
        )
    if dropped:
        reasons.append(
            f"{dropped:,} arrivals dropped (every slot busy and the waiting queue full): the percentiles "
            "leave them out; raise arrival.max_concurrency / arrival.max_waiting"
        )
    if unsent:
        reasons.append(f"{unsent:,} arrivals were still waiting for a free slot when the load stopped")
    return Trust(trustworthy=not reasons, reasons=tuple(reasons))


__all__ = [
    "GENERATOR_MARK",
    "GENERATOR_SAMPLE_MARK",
    "GeneratorFigures",
    "GeneratorReport",
    "GeneratorSample",
    "SaturationMonitor",
    "Trust",
    "assess",
    "merge_reports",
    "whole_test_reports",
]
