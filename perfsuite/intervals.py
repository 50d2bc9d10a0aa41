"""A run cut into equal time intervals: the samples that tell a real change from run-to-run noise.

Each interval keeps its request count, how many were answered as expected, and its full latency
histogram (HDR buckets), so any statistic of any resample of intervals (a percentile of the merged
histograms, a mean, a success share) is exact, not an average of per-interval figures.

A run of up to ``max_intervals`` seconds keeps one interval per second (the collector's
resolution); longer runs use ``ceil(span / max_intervals)`` seconds per interval. Empty intervals
are left out. The same samples travel in result files (``intervals``, schema
``perfsuite.intervals/1``, histograms in HdrHistogram's standard compressed V2 encoding), so a
comparison with a result file is as noise-aware as one with a stored run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from perfsuite.collector import OUTCOMES, HistogramTable, LatencyHistogram, RunData
from perfsuite.collector.histogram import IntArray, decode_many
from perfsuite.errors import ConfigError
from perfsuite.marks import STAGE

INTERVALS_SCHEMA = "perfsuite.intervals/1"


@dataclass(frozen=True, slots=True)
class Selection:
    """Which of a run's cells are the test's requests, and which outcomes count as good."""

    request_type: str | None = None
    """Only cells of this request type (None: all)."""
    names: tuple[str, ...] | None = None
    """Only cells with one of these names (None: all)."""
    good_outcomes: tuple[str, ...] = ("success", "rejected")
    """Outcomes answered as expected (a webhook's 403 to a bad signature is a correct answer)."""


@dataclass(frozen=True, slots=True)
class IntervalSamples:
    """Per-interval counts and latency histograms of one run (non-empty intervals only)."""

    window_s: int
    """Seconds per interval."""
    starts_s: IntArray
    """Epoch second at which each interval starts."""
    count: IntArray
    """Requests per interval."""
    good: IntArray
    """Requests answered as expected per interval."""
    table: HistogramTable
    """Latency (us) histograms; group i is interval i."""
    stage: IntArray
    """Per interval: how many stage marks precede its middle (0 before the first mark). Intervals of
    one stage share the load shape (ramp, steady, burst...), so resamples keep each stage's share."""
    unjudged_bad: IntArray | None = None
    """Per interval: failed or shed requests of the run's cells outside the selection (a Redis
    benchmark's injected faults and breaker refusals): not judged, but shown on the errors chart."""

    @property
    def n(self) -> int:
        """Number of (non-empty) intervals."""
        return len(self.count)

    @property
    def requests(self) -> int:
        """Requests over all intervals."""
        return int(self.count.sum())

    @classmethod
    def empty(cls, window_s: int = 1) -> IntervalSamples:
        """No intervals."""
        none = np.empty(0, np.int64)
        return cls(window_s, none, none, none.copy(), HistogramTable.empty(0), none.copy())

    @classmethod
    def from_run(
        cls, data: RunData, selection: Selection = Selection(), max_intervals: int = 100
    ) -> IntervalSamples:
        """The selected cells of ``data`` cut into at most ``max_intervals`` equal intervals."""
        cells = data.cells
        if not len(cells) or "rt" not in data.histograms:
            return cls.empty(data.resolution_s)
        mask = np.ones(len(cells), bool)
        if selection.request_type is not None:
            mask &= (cells["request_type"] == selection.request_type).to_numpy()
        if selection.names is not None:
            mask &= cells["name"].isin(selection.names).to_numpy()
        if not mask.any():
            return cls.empty(data.resolution_s)
        seconds = cells["second"].to_numpy(np.int64)
        first, last = int(seconds[mask].min()), int(seconds[mask].max())
        resolution = data.resolution_s
        span_s = last - first + resolution
        window_s = max(resolution, math.ceil(span_s / max(max_intervals, 1) / resolution) * resolution)
        n_windows = (last - first) // window_s + 1
        window_of_cell = np.where(mask, (seconds - first) // window_s, -1).astype(np.int64)
        selected = window_of_cell >= 0
        count = np.bincount(
            window_of_cell[selected], weights=cells["count"].to_numpy()[selected], minlength=n_windows
        ).astype(np.int64)
        good_cells = np.zeros(len(cells), np.int64)
        for outcome in selection.good_outcomes:
            if outcome not in OUTCOMES:
                raise ConfigError(f"interval selection outcome {outcome!r} is invalid: use one of {OUTCOMES}")
            good_cells += cells[outcome].to_numpy(np.int64)
        good = np.bincount(window_of_cell[selected], weights=good_cells[selected], minlength=n_windows)
        others = (seconds - first) // window_s
        outside = ~mask & (others >= 0) & (others < n_windows)
        bad_cells = (cells["failure"] + cells["backpressure"]).to_numpy(np.int64)
        unjudged = np.bincount(others[outside], weights=bad_cells[outside], minlength=n_windows)
        table = data.histograms["rt"].regroup(window_of_cell, n_windows)
        keep = np.flatnonzero(count > 0)
        renumber = np.full(n_windows, -1, np.int64)
        renumber[keep] = np.arange(len(keep))
        starts = (first + keep * window_s).astype(np.int64)
        stage_marks = data.marks(STAGE)
        mark_at = np.sort(stage_marks["at"].to_numpy(np.float64)) if len(stage_marks) else np.empty(0)
        return cls(
            window_s=int(window_s),
            starts_s=starts,
            count=count[keep],
            good=good.astype(np.int64)[keep],
            table=table.regroup(renumber, len(keep)),
            stage=np.searchsorted(mark_at, starts + window_s / 2.0, side="right").astype(np.int64),
            unjudged_bad=unjudged.astype(np.int64)[keep] if unjudged.any() else None,
        )

    def strata(self, min_size: int) -> list[IntArray]:
        """Interval positions grouped by stage; a stage with fewer than ``min_size`` intervals joins
        the stage before it (the first joins the next), so every group can be resampled."""
        groups: list[list[int]] = []
        for stage in np.unique(self.stage):
            members = np.flatnonzero(self.stage == stage).tolist()
            if groups and len(groups[-1]) < min_size:
                groups[-1].extend(members)
            else:
                groups.append(members)
        if len(groups) > 1 and len(groups[-1]) < min_size:
            groups[-2].extend(groups.pop())
        return [np.asarray(group, np.int64) for group in groups]

    def histogram(self) -> LatencyHistogram:
        """All intervals' latencies merged."""
        return self.table.histogram()

    def to_dict(self) -> dict[str, Any]:
        """JSON form (schema ``perfsuite.intervals/1``)."""
        windows = []
        groups = self.table.groups
        starts = np.searchsorted(groups, np.arange(self.n), side="left")
        ends = np.searchsorted(groups, np.arange(self.n), side="right")
        for i in range(self.n):
            histogram = LatencyHistogram.from_sparse(
                self.table.index[starts[i] : ends[i]], self.table.counts[starts[i] : ends[i]]
            )
            window = {
                "start_s": int(self.starts_s[i]),
                "count": int(self.count[i]),
                "good": int(self.good[i]),
                "stage": int(self.stage[i]),
                "rt": histogram.encode(),
            }
            if self.unjudged_bad is not None:
                window["unjudged_bad"] = int(self.unjudged_bad[i])
            windows.append(window)
        return {"schema": INTERVALS_SCHEMA, "window_s": self.window_s, "windows": windows}

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], source: str = "result file") -> IntervalSamples:
        """Samples from ``to_dict()``'s output; ConfigError naming ``source`` when malformed."""
        if document.get("schema") != INTERVALS_SCHEMA:
            raise ConfigError(
                f"{source}: intervals.schema is {document.get('schema')!r}, expected {INTERVALS_SCHEMA!r}"
            )
        try:
            window_s = int(document["window_s"])
            windows: Sequence[Mapping[str, Any]] = document["windows"]
            starts = np.asarray([int(w["start_s"]) for w in windows], np.int64)
            count = np.asarray([int(w["count"]) for w in windows], np.int64)
            good = np.asarray([int(w["good"]) for w in windows], np.int64)
            stage = np.asarray([int(w.get("stage", 0)) for w in windows], np.int64)
            unjudged = np.asarray([int(w.get("unjudged_bad", 0)) for w in windows], np.int64)
            which, index, counts = decode_many([w["rt"] for w in windows])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: intervals: malformed ({type(exc).__name__}: {exc})") from None
        table = HistogramTable.from_entries(which, index, counts, len(windows))
        return cls(window_s, starts, count, good, table, stage, unjudged if unjudged.any() else None)


__all__ = ["INTERVALS_SCHEMA", "IntervalSamples", "Selection"]
