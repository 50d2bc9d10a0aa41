"""The A/B comparison's report block (drawn by the terminal, HTML and JUnit reports alike)."""

from __future__ import annotations

from abtest.comparison import FASTER, INCONCLUSIVE, LABELS, SAME, SLOWER, AbFigures, MetricComparison
from perfsuite.sections import Line, Section, Tone, lines, ms, table

_TONES: dict[str, Tone] = {SLOWER: "bad", FASTER: "ok", SAME: "ok", INCONCLUSIVE: "warn"}


def _percent(value: float | None, beyond: str) -> str:
    return beyond if value is None else f"{value * 100:+.1f}%"


def _interval(row: MetricComparison) -> str:
    return f"{_percent(row.low, '< -95%')} .. {_percent(row.high, '> +1900%')}"


def ab_sections(figures: AbFigures) -> list[Section]:
    """The verdict, how it was reached, and every statistic of B against A."""
    if not figures.sides:
        return []
    label = LABELS.get(figures.metric, figures.metric)
    when = (
        f"clear after {figures.decided_at_s:g} s of load "
        f"({figures.slices} paired slices of {figures.slice_s} s)"
        if figures.decided_at_s is not None
        else f"read at the end: {figures.slices} paired slices of {figures.slice_s} s"
    )
    stop = (
        "; the load was stopped there" if figures.stopped_early else f" (limit {figures.max_run_time_s:g} s)"
    )
    head = lines(
        Line(
            f"verdict on {label}: B is {figures.verdict.upper()} — {figures.reason}", _TONES[figures.verdict]
        ),
        f"{when}{stop}; {figures.rate_per_s:g} arrivals/s split between A and B, "
        "pair by pair in random order",
        *(
            f"{side.side}: {side.host}  {side.requests:,} requests, "
            + (f"{side.success_rate:.1%} answered as intended" if side.success_rate is not None else "none")
            + f", {side.compared:,} in the compared slices"
            for side in figures.sides
        ),
    )
    rows = [
        [
            LABELS[row.metric] + (" (decides)" if row.metric == figures.metric else ""),
            ms(row.a_ms, 2),
            ms(row.b_ms, 2),
            _percent(row.change, "-"),
            _interval(row) if row.change is not None else "-",
            row.verdict,
        ]
        for row in figures.metrics
    ]
    after = lines(
        f"B against A per paired slice; interval: always-valid at {figures.confidence:.0%} confidence "
        f"(holds however early the comparison stopped); sensitivity +-{figures.min_effect * 100:g}%. "
        "A and B columns: the slices' values combined (geometric mean), for reading only."
    )
    return [
        Section(
            "A/B comparison (B against A)",
            lines=head,
            table=table(["statistic", "A ms", "B ms", "B vs A", "interval", "verdict"], rows),
            after=after,
            key="ab",
        )
    ]


__all__ = ["ab_sections"]
