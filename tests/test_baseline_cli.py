"""Run history and comparison verbs end to end: `perfsuite runs list | compare | report` and
`run --test-type baseline`, in subprocesses against runs stored in a private Redis."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from junitparser import JUnitXml

from baseline.synthetic import SyntheticProfile, write_run
from perfsuite.grading import Check
from perfsuite.history import RunHistory
from perfsuite.registry import json_schema
from perfsuite.result import Target

JSON_SCHEMA = json_schema()

REPO = Path(__file__).resolve().parent.parent
FAST = SyntheticProfile(seconds=30, rps=60, median_ms=8.0, burst_at_s=20, burst_seconds=2, burst_factor=2.0)
SLOW = dataclasses.replace(FAST, median_ms=80.0)


def perfsuite(
    *args: str, redis_url: str, cwd: Path = REPO, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m perfsuite ARGS`` with the collector at ``redis_url``."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TWILIO_AUTH_TOKEN")}
    env["REDIS_URL"] = redis_url
    return subprocess.run(
        [sys.executable, "-m", "perfsuite", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


@pytest.fixture()
def stored(redis_url: str, tmp_path: Path) -> dict[str, str]:
    """A slow run, then a fast one, a minute apart, each with a graded result stored with it."""
    history = RunHistory(redis_url, "perfsuite")
    ids = {}
    for offset, (name, profile) in enumerate((("slow", SLOW), ("fast", FAST))):
        run_id = f"2026010{offset + 1}T000000Z-00000{offset}"
        write_run(
            redis_url, run_id, profile, seed=offset, start_s=1_767_225_600 + 60 * offset, spill_dir=tmp_path
        )
        result = history.result(run_id)  # the figures `perfsuite run` would store, plus:
        mode = "legacy" if name == "slow" else "optimized"
        target = Target(
            host="http://127.0.0.1:1", path="/webhook/whatsapp", embedded=True, demo_bot_mode=mode
        )
        check = Check("webhook P99 response time", result.summary.p99_ms, "<=", 2000.0, "ms", "4.1")
        history.store(
            result.model_copy(
                update={"target": target, "config": {"target": {"demo_bot_mode": mode}}, "checks": (check,)}
            )
        )
        ids[name] = run_id
    return ids


def test_runs_list_shows_runs_newest_first_with_grade_and_demo_bot_mode(
    redis_url: str, stored: dict[str, str]
) -> None:
    """The history table and its JSON form list both runs, the newest first."""
    done = perfsuite("runs", "list", redis_url=redis_url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["run", "id", "test"]
    assert lines[2].startswith(stored["fast"]) and lines[3].startswith(stored["slow"])
    assert "optimized" in lines[2] and "legacy" in lines[3] and "EXCELLENT" in lines[2]
    listed = json.loads(perfsuite("runs", "list", "--format", "json", redis_url=redis_url).stdout)
    assert [run["run_id"] for run in listed] == [stored["fast"], stored["slow"]]
    assert listed[0]["requests"] == 30 * 60 + 2 * 60


def test_one_run_each_side_is_inconclusive_and_exits_0(redis_url: str, stored: dict[str, str]) -> None:
    """Slow -> fast and fast -> slow with one run each side and no earlier run: the table shows
    both runs' figures, every verdict is 'inconclusive (run-to-run noise unknown)' with the
    within-run interval, and the gate exits 0 both ways (never a guessed regression)."""
    better = perfsuite("compare", stored["slow"], stored["fast"], redis_url=redis_url)
    assert better.returncode == 0, better.stderr
    assert "COMPARISON GRADE: EXCELLENT" in better.stdout
    assert "demo bot legacy" in better.stdout and "demo bot optimized" in better.stdout
    assert "webhook P95 response time" in better.stdout
    assert "inconclusive (run-to-run noise unknown) -" in better.stdout and "[within run" in better.stdout
    reverse = perfsuite(
        "compare", stored["fast"], "latest", redis_url=redis_url
    )  # latest other: the slow run
    assert reverse.returncode == 0, reverse.stdout + reverse.stderr
    assert f"current:  run {stored['slow']}" in reverse.stdout
    assert "regressions 0; inconclusive 5: run-to-run noise unknown" in reverse.stdout
    for seed_only in ("seed target", "expected", "requirement"):
        assert seed_only not in reverse.stdout


def _store_series(
    redis_url: str, tmp_path: Path, profiles: list[SyntheticProfile], group: str | None = None, first: int = 0
) -> list[str]:
    """Runs of one target one minute apart (after the fixture's), each stored as `perfsuite run`
    stores it, all in ``group`` when given."""
    history = RunHistory(redis_url, "perfsuite")
    ids = []
    for i, profile in enumerate(profiles):
        n = first + i
        run_id = f"20260102T{n // 60:02d}{n % 60:02d}00Z-{n:06d}"
        write_run(redis_url, run_id, profile, seed=50 + n, start_s=1_767_312_000 + 60 * n, spill_dir=tmp_path)
        history.store(history.result(run_id), group=group)
        ids.append(run_id)
    return ids


def test_compare_groups_and_lists_of_runs(redis_url: str, tmp_path: Path) -> None:
    """Sides of several runs: a group id (`run --repeat`) or ids joined with commas. Three runs of a
    build against three runs 30% slower: the P95 verdict is a regression with its between-run
    interval (3 vs 3 runs), exit 2; the same build's groups are no change, exit 0; `latest` takes
    the newest run's whole group; `runs list` shows the group column."""
    steady = dataclasses.replace(FAST, burst_at_s=None, run_drift=0.05)
    first = _store_series(redis_url, tmp_path, [steady] * 3, group="gA")
    second = _store_series(redis_url, tmp_path, [steady] * 3, group="gB", first=3)
    slower = _store_series(
        redis_url, tmp_path, [dataclasses.replace(steady, slowdown=1.3)] * 3, group="gC", first=6
    )
    same = perfsuite("compare", "gA", ",".join(second), "--no-history", redis_url=redis_url)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "group gA: 3 webhook runs" in same.stdout and "regressions 0" in same.stdout
    assert "(3 vs 3 runs)" in same.stdout and "noise unknown)" not in same.stdout
    worse = perfsuite("compare", "gB", "latest", "--no-history", "--format", "json", redis_url=redis_url)
    document = json.loads(worse.stdout)["comparison"]
    assert worse.returncode == 2, worse.stdout
    assert [run["run_id"] for run in document["current"]["runs"]] == slower
    p95 = next(row for row in document["metrics"] if row["key"] == "webhook_p95_ms")["difference"]
    assert p95["verdict"] == "regression" and p95["noise"]["current_runs"] == 3 and p95["ci_low"] > 0
    with_history = json.loads(
        perfsuite("compare", "gB", "gC", "--format", "json", redis_url=redis_url).stdout
    )
    assert with_history["comparison"]["history"] == {"webhook": first}
    listed = perfsuite("runs", "list", redis_url=redis_url).stdout.splitlines()
    assert listed[0].split()[-1] == "group" and listed[2].endswith("gC")


def test_runs_trend_marks_the_step_in_a_series(redis_url: str, tmp_path: Path) -> None:
    """`runs trend`: P95 of eight runs of one target, then six 40% slower: one change point, at the
    first slower run, in text and JSON; an unknown metric is a usage error naming the known ones."""
    steady = dataclasses.replace(FAST, burst_at_s=None, run_drift=0.05)
    ids = _store_series(redis_url, tmp_path, [steady] * 8 + [dataclasses.replace(steady, slowdown=1.4)] * 6)
    text = perfsuite("runs", "trend", "--metric", "webhook_p95_ms", redis_url=redis_url)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    marked = [line for line in lines if "<< change +" in line]
    assert len(marked) == 1 and marked[0].split()[1] == ids[8], text.stdout
    assert "14 run(s), oldest first" in text.stdout and "1 change point(s)" in text.stdout
    document = json.loads(
        perfsuite(
            "runs", "trend", "--metric", "webhook_p95_ms", "--format", "json", redis_url=redis_url
        ).stdout
    )
    assert document["schema"] == "perfsuite.trend/1" and [run["run_id"] for run in document["runs"]] == ids
    (step,) = document["change_points"]
    assert step["index"] == 8 and step["run_id"] == ids[8] and 0.25 < step["change"] < 0.6
    wrong = perfsuite("runs", "trend", "--metric", "p95", redis_url=redis_url)
    assert wrong.returncode == 64 and "webhook_p95_ms" in wrong.stderr


def test_compare_writes_json_junit_and_html(redis_url: str, stored: dict[str, str], tmp_path: Path) -> None:
    """Each format: a valid JSON result, JUnit XML a consumer parses, and a self-contained HTML page."""
    out = tmp_path / "comparison.json"
    done = perfsuite(
        "compare",
        stored["slow"],
        stored["fast"],
        "--format",
        "json",
        "--output-file",
        str(out),
        redis_url=redis_url,
    )
    assert done.returncode == 0 and "COMPARISON GRADE" in done.stdout
    document = json.loads(out.read_text())
    jsonschema.validate(document, JSON_SCHEMA)
    assert (
        document["test_type"] == "baseline" and document["comparison"]["schema"] == "perfsuite.comparison/2"
    )
    junit = perfsuite("compare", stored["slow"], stored["fast"], "--format", "junit", redis_url=redis_url)
    suites = {suite.name: suite for suite in JUnitXml.fromstring(junit.stdout)}
    assert set(suites) == {"perfsuite.baseline.regressions"}  # no seed targets against your own runs
    page = perfsuite(
        "compare", stored["slow"], stored["fast"], "--format", "html", redis_url=redis_url
    ).stdout
    assert page.startswith("<!DOCTYPE html>") and page.count('<svg class="chart') == 4


def test_report_of_a_stored_run_in_every_format(
    redis_url: str, stored: dict[str, str], tmp_path: Path
) -> None:
    """`report RUN` prints the stored grade; JSON carries the run's intervals for later comparisons;
    `latest` is the newest run; a result file reports like the run it came from."""
    text = perfsuite("report", stored["slow"], redis_url=redis_url)
    assert text.returncode == 0 and "GRADE: EXCELLENT" in text.stdout and stored["slow"] in text.stdout
    out = tmp_path / "fast.json"
    assert (
        perfsuite(
            "report", "latest", "--format", "json", "--output-file", str(out), redis_url=redis_url
        ).returncode
        == 0
    )
    document = json.loads(out.read_text())
    assert document["run_id"] == stored["fast"] and len(document["intervals"]["windows"]) == 30
    assert {mark["name"] for mark in document["marks"] if mark["kind"] == "stage"} == {
        "ramp",
        "burst",
        "steady",
        "done",
    }
    again = perfsuite("report", str(out), redis_url=redis_url)
    assert again.returncode == 0 and f"run {stored['fast']}" in again.stdout
    versus_file = perfsuite("compare", str(out), stored["slow"], redis_url=redis_url)
    assert versus_file.returncode == 0 and f"file {out}" in versus_file.stdout


def test_run_baseline_compares_the_latest_run_with_a_named_one(
    redis_url: str, stored: dict[str, str]
) -> None:
    """`run --test-type baseline --baseline-run SLOW` compares the newest other run (the fast one)."""
    done = perfsuite("run", "--test-type", "baseline", "--baseline-run", stored["slow"], redis_url=redis_url)
    assert done.returncode == 0, done.stderr
    assert (
        f"baseline: run {stored['slow']}" in done.stdout and f"current:  run {stored['fast']}" in done.stdout
    )
    seed = perfsuite("run", "--test-type", "baseline", redis_url=redis_url)
    assert seed.returncode == 2 and "seed targets met 3/9" in seed.stdout and "not run" in seed.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("compare", "20260101T000000Z-000000", "20260101T000000Z-000000"), "share run"),
        (("compare", "20260101T000000Z-000000", "20990101T000000Z-ffffff"), "no stored run or group"),
        (("compare", "20260101T000000Z-000000,", "latest"), "an empty item"),
        (("run", "--repeat", "21"), "--repeat must be between 1 and 20"),
        (("run", "--test-type", "all", "--repeat", "2"), "--repeat"),
        (("compare", "missing.json", "latest"), "cannot read"),
        (
            ("run", "--test-type", "webhook", "--baseline-run", "20260101T000000Z-000000"),
            "only with --test-type baseline or all",
        ),
        (("run", "--test-type", "soak"), "invalid choice: 'soak'"),
        (("run", "--test-type", "all", "--run-id", "x"), "--run-id"),
        (("report", "20990101T000000Z-ffffff"), "not found"),
        (("report", "latest", "--format", "pdf"), "--format"),
    ],
)
def test_mistakes_exit_64_with_a_message_naming_them(
    redis_url: str, stored: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    """Wrong ids, files, flags and unavailable test types are usage errors (64), never a grade."""
    done = perfsuite(*args, redis_url=redis_url)
    assert done.returncode == 64, (done.stdout, done.stderr)
    assert message in done.stderr and "Traceback" not in done.stderr


def test_baseline_with_no_stored_run_says_what_to_do(redis_url: str) -> None:
    """An empty history: the seed comparison explains that a run must come first."""
    done = perfsuite("run", "--test-type", "baseline", redis_url=redis_url)
    assert done.returncode == 64 and "run `perfsuite run` first" in done.stderr
    assert "no runs stored yet" in perfsuite("runs", "list", redis_url=redis_url).stdout
