"""The runs a comparison compares: from the run history or from result files, one run or several.

A side is written as comma-separated items, each a stored run id, a group id (the runs of one
``perfsuite run --repeat N``) or a result JSON file: ``20260101T000000Z-a1b2c3``,
``g20260101T000000Z-d4e5f6``, ``id1,id2,id3``, ``before.json``. ``latest`` (the current side
only) is the newest run of the baseline's target and scenario, with its whole group when it has
one. The baseline's **history** is the earlier runs of its test type, target and scenario.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from baseline.comparator import RunSide
from perfsuite.errors import ConfigError
from perfsuite.history import RunHistory, marks_of, selection_for
from perfsuite.intervals import IntervalSamples
from perfsuite.registry import load_result
from perfsuite.result import RunResult, RunStatus, read_json


def side_label(result: RunResult, source: str, where: str = "") -> str:
    """``run <id> (webhook, scenario default, demo bot legacy)`` or ``file <path> (...)``."""
    details = [result.test_type or "?", f"scenario {result.scenario or '?'}"]
    if result.target.embedded and result.target.demo_bot_mode:
        details.append(f"demo bot {result.target.demo_bot_mode}")
    name = f"run {result.run_id}" if source == "run" else f"file {where}"
    return f"{name} ({', '.join(details)})"


def run_side(history: RunHistory, run_id: str) -> RunSide:
    """A stored run as one side of a comparison (with its intervals, marks and group)."""
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
        group=data.meta.get("group") or None,
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


def _is_file(item: str) -> bool:
    return item.endswith(".json") or Path(item).is_file()


def resolve_side(history: RunHistory, text: str, flag: str) -> list[RunSide]:
    """The runs ``text`` names (see the module docstring); ConfigError naming ``flag`` and the item
    that is neither a file, a run nor a group."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise ConfigError(f"{flag} {text!r}: an empty item; separate run ids, group ids or files with ','")
    sides: list[RunSide] = []
    for item in items:
        if _is_file(item):
            sides += sides_from_file(Path(item), flag)
        elif history.exists(item):
            sides.append(run_side(history, item))
        else:
            members = history.group_runs(item)
            if not members:
                raise ConfigError(
                    f"{flag} {item}: no stored run or group has this id, and no such file (see "
                    "`perfsuite runs list`)"
                )
            sides += [run_side(history, run_id) for run_id in members]
    return sides


def latest_side(history: RunHistory, like: Sequence[RunSide], flag: str = "CURRENT") -> list[RunSide]:
    """The newest run of the same test type, target and scenario as ``like``'s first run (not one
    of ``like``), with every run of its group; ConfigError naming ``flag`` when there is none."""
    first = like[0].result
    exclude = [side.run_id for side in like]
    run_id = history.latest(first.test_type, first.target.identity, first.scenario, exclude=exclude)
    if run_id is None:
        raise ConfigError(
            f"{flag} latest: no other {first.test_type} run of {first.target.identity} is stored "
            "(see `perfsuite runs list`)"
        )
    group = history.group_of(run_id)
    members = history.group_runs(group) if group else [run_id]
    return [run_side(history, member) for member in members if member not in exclude]


def earlier_results(
    history: RunHistory, baseline: Sequence[RunSide], exclude: Sequence[str], limit: int
) -> list[RunResult]:
    """Up to ``limit`` runs of the baseline's test type, target and scenario that finished and
    were graded by ``perfsuite run``, started no later than the newest baseline run, and are not
    in ``exclude``: oldest first (the history the gate joins to the baseline)."""
    if limit <= 0 or not baseline:
        return []
    first = baseline[0].result
    newest = max(side.result.started_at for side in baseline)
    out: list[RunResult] = []
    skip = set(exclude) | {side.run_id for side in baseline}
    for info, stored in history.entries(
        limit=limit + len(skip) + 50,
        test_type=first.test_type,
        target=first.target.identity,
        scenario=first.scenario,
    ):
        if info.run_id in skip or stored is None or stored.status is not RunStatus.FINISHED:
            continue
        if newest and info.started_at and info.started_at > newest:
            continue
        out.append(stored)
        if len(out) >= limit:
            break
    return out[::-1]


__all__ = ["earlier_results", "latest_side", "resolve_side", "run_side", "side_label", "sides_from_file"]
