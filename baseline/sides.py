"""The runs a comparison compares: from the run history or from result files."""

from __future__ import annotations

from pathlib import Path

from baseline.comparator import RunSide
from perfsuite.errors import ConfigError
from perfsuite.history import RunHistory, marks_of, selection_for
from perfsuite.intervals import IntervalSamples
from perfsuite.registry import load_result
from perfsuite.result import RunResult, read_json


def side_label(result: RunResult, source: str, where: str = "") -> str:
    """``run <id> (webhook, scenario default, demo bot legacy)`` or ``file <path> (...)``."""
    details = [result.test_type or "?", f"scenario {result.scenario or '?'}"]
    if result.target.embedded and result.target.demo_bot_mode:
        details.append(f"demo bot {result.target.demo_bot_mode}")
    name = f"run {result.run_id}" if source == "run" else f"file {where}"
    return f"{name} ({', '.join(details)})"


def run_side(history: RunHistory, run_id: str) -> RunSide:
    """A stored run as one side of a comparison (with its intervals and marks)."""
    result, data = history.load(run_id)
    samples = IntervalSamples.from_run(data, selection_for(result), history.max_intervals)
    return RunSide(
        test_type=result.test_type,
        run_id=run_id,
        label=side_label(result, "run"),
        source="run",
        result=result.model_copy(update={"marks": tuple(marks_of(data))}),
        samples=samples,
        complete=data.complete,
    )


def sides_from_file(path: Path, flag: str = "--baseline-file") -> list[RunSide]:
    """The run(s) of a result file as comparison sides: one for a single job's result, one per job
    for an ``all`` result; noise-aware when a run holds its ``intervals``."""
    result = load_result(read_json(path, flag), f"{flag} {path}")
    runs = list(result.parts) if result.test_type == "all" else [result]
    if result.test_type == "baseline" or not runs:
        raise ConfigError(
            f"{flag} {path}: a {result.test_type} result holds no run to compare with; "
            "use the result file of a webhook, redis, capacity or all run"
        )
    sides = []
    for run in runs:
        samples = IntervalSamples.from_dict(run.intervals, f"{flag} {path}") if run.intervals else None
        sides.append(
            RunSide(
                test_type=run.test_type,
                run_id=run.run_id,
                label=side_label(run, "file", str(path)),
                source="file",
                result=run,
                samples=samples,
                complete=run.collector.writers_complete if run.collector is not None else True,
            )
        )
    return sides


__all__ = ["run_side", "side_label", "sides_from_file"]
