"""Coordinated omission: how a run's latency is corrected, the one definition the report and the live
metrics share.

A load generator that waits for each answer before it sends the next request (a closed model)
sends fewer requests while the target stalls, so the stall is under-sampled: the requests that
should have gone out meanwhile, and would have waited, are never measured. Two corrections:

- **intended start** (open model): each request is timed from the moment it was meant to start
  (``locustfiles/arrival.py``), so the ``rt`` histogram is already corrected; nothing to do here.
- **HDR expected interval** (closed model): HdrHistogram's ``copyCorrectedForCoordinatedOmission``
  with ``expected interval = mean think time + median response time`` (the time between two
  requests of one user when nothing stalls): every value ``v`` above it also counts ``v - i``,
  ``v - 2i``, ... down to ``i``. The webhook report applies it to the steady stage (the whole
  seconds before the burst, whose one-shot users have no pacing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from perfsuite.collector.histogram import LatencyHistogram

CorrectionKind = Literal["intended-start", "hdr-expected-interval", "none"]


@dataclass(frozen=True, slots=True)
class Correction:
    """How one test's latency is corrected for coordinated omission (see the module docstring)."""

    kind: CorrectionKind
    think_time_s: float = 0.0
    """Closed model: the mean pause between two requests of one user (seconds)."""

    @classmethod
    def open_model(cls) -> Correction:
        """Requests timed from their intended start: the measured histogram is the corrected one."""
        return cls("intended-start")

    @classmethod
    def closed_model(cls, think_time_s: float) -> Correction:
        """HdrHistogram's expected-interval correction for users pausing ``think_time_s`` on average."""
        return cls("hdr-expected-interval", float(think_time_s))

    @classmethod
    def none(cls) -> Correction:
        """No correction (a benchmark whose clients never pause, a test that reports none)."""
        return cls("none")

    def expected_interval_ms(self, measured: LatencyHistogram) -> float | None:
        """The expected interval between two requests of one closed-model user: mean think time plus
        the median of ``measured``; None for other kinds, an empty histogram or a zero interval."""
        if self.kind != "hdr-expected-interval" or not measured.count:
            return None
        interval_ms = self.think_time_s * 1000 + measured.percentile_us(50) / 1000
        return interval_ms if interval_ms > 0 else None

    def apply(self, measured: LatencyHistogram) -> tuple[LatencyHistogram, float | None]:
        """The corrected histogram of ``measured`` and the expected interval used (ms; None when no
        interval correction was applied: then the histogram is ``measured`` itself)."""
        interval_ms = self.expected_interval_ms(measured)
        if interval_ms is None:
            return measured, None
        return measured.corrected_copy(round(interval_ms * 1000)), interval_ms


__all__ = ["Correction", "CorrectionKind"]
