"""Real runs on the embedded demo bot, end to end: the README's legacy-then-optimized comparison and
`--test-type all` (each takes 10-20 s: real Locust, real demo bot, real Redis benchmark)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from junitparser import JUnitXml

from perfsuite.registry import json_schema
from tests.test_baseline_cli import perfsuite

JSON_SCHEMA = json_schema()


@pytest.mark.slow
def test_legacy_then_optimized_demo_bot_comparison(redis_url: str, tmp_path: Path) -> None:
    """The README's before/after on one machine: a legacy run, an optimized run, then compare them:
    the optimized bot is faster with no regression, and every output file is written."""
    smoke = ("--test-type", "webhook", "--scenario", "smoke", "--users", "20")
    legacy = perfsuite(
        "run",
        *smoke,
        "--demo-bot-mode",
        "legacy",
        "--output-file",
        str(tmp_path / "legacy.json"),
        redis_url=redis_url,
        cwd=tmp_path,
        timeout_s=180,
    )
    assert legacy.returncode in (0, 1, 2), legacy.stderr
    optimized = perfsuite(
        "run",
        *smoke,
        "--output-file",
        str(tmp_path / "optimized.json"),
        "--html-file",
        str(tmp_path / "optimized.html"),
        "--junit-file",
        str(tmp_path / "junit.xml"),
        redis_url=redis_url,
        cwd=tmp_path,
        timeout_s=180,
    )
    assert optimized.returncode in (0, 1, 2), optimized.stderr
    legacy_id = json.loads((tmp_path / "legacy.json").read_text())["run_id"]
    optimized_doc = json.loads((tmp_path / "optimized.json").read_text())
    jsonschema.validate(optimized_doc, JSON_SCHEMA)
    assert optimized_doc["intervals"]["windows"]
    assert (tmp_path / "optimized.html").read_text().count('<svg class="chart') == 3
    assert len(list(JUnitXml.fromstring((tmp_path / "junit.xml").read_text()))) == 1
    done = perfsuite("compare", legacy_id, optimized_doc["run_id"], redis_url=redis_url, cwd=tmp_path)
    assert "demo bot legacy" in done.stdout and "demo bot optimized" in done.stdout
    assert "regressions 0" in done.stdout, done.stdout
    assert done.returncode == 0, done.stdout
    listed = perfsuite("runs", "list", redis_url=redis_url, cwd=tmp_path).stdout
    assert legacy_id in listed and optimized_doc["run_id"] in listed


@pytest.mark.slow
def test_all_runs_every_available_job_then_compares_exactly_those_runs(
    redis_url: str, tmp_path: Path
) -> None:
    """`--test-type all`: webhook, redis and capacity run, then the seed comparison of exactly those
    three runs, which measures every seed target (capacity and recovery time included); the overall
    grade is the worst of the parts' and the comparison's; JSON, HTML and JUnit hold every part."""
    out, junit = tmp_path / "all.json", tmp_path / "all.xml"
    done = perfsuite(
        "run",
        "--test-type",
        "all",
        "--scenario",
        "smoke",
        "--output-file",
        str(out),
        "--junit-file",
        str(junit),
        "--html-file",
        str(tmp_path / "all.html"),
        redis_url=redis_url,
        cwd=tmp_path,
        timeout_s=400,
    )
    document = json.loads(out.read_text())
    jsonschema.validate(document, JSON_SCHEMA)
    available = [part["test_type"] for part in document["parts"]]
    assert available == ["webhook", "redis", "capacity"]
    comparison = document["comparison"]
    assert comparison["scope"] == ["webhook", "redis", "capacity"]
    capacity_rows = {row["key"]: row for row in comparison["metrics"] if row["test_type"] == "capacity"}
    assert set(capacity_rows) == {"capacity_users", "recovery_time_s"}
    assert all(row["status"] == "measured" for row in capacity_rows.values()), capacity_rows
    assert comparison["targets_total"] == 9
    order = ["EXCELLENT", "GOOD", "FAIR", "POOR"]
    grades = [part["grade"] for part in document["parts"]] + [comparison["grade"]]
    assert document["grade"] == max(grades, key=order.index)
    assert done.returncode == document["exit_code"]
    assert f"OVERALL GRADE: {document['grade']}" in done.stdout and "not available" not in done.stdout
    suites = [suite.name for suite in JUnitXml.fromstring(junit.read_text())]
    assert suites[: len(available)] == [f"perfsuite.{t}" for t in available]
    assert "perfsuite.baseline.targets" in suites
    assert (tmp_path / "all.html").read_text().count('<svg class="chart') == 3 * len(available) + 1


@pytest.mark.slow
def test_repeat_runs_a_group_that_compares_as_one_side(redis_url: str, tmp_path: Path) -> None:
    """`run --repeat 3` on the embedded demo bot: three stored runs in one group, one numbered
    result file each, the group's table with the spread between runs; `runs list` shows the group;
    the first run against the other two (`id2,id3`) gets verdicts from their spread (1 vs 2 runs)."""
    done = perfsuite(
        "run",
        "--test-type",
        "webhook",
        "--repeat",
        "3",
        "--arrival-rate",
        "20",
        "--run-time",
        "2",
        "--output-file",
        str(tmp_path / "run.json"),
        redis_url=redis_url,
        cwd=tmp_path,
        timeout_s=300,
    )
    assert done.returncode in (0, 1, 2), done.stdout + done.stderr
    ids = [json.loads((tmp_path / f"run-{i}.json").read_text())["run_id"] for i in (1, 2, 3)]
    assert "spread between runs" in done.stdout and "perfsuite group g" in done.stdout
    group = done.stdout.split("perfsuite group ")[1].split(":")[0]
    listed = perfsuite("runs", "list", redis_url=redis_url, cwd=tmp_path).stdout
    assert all(run_id in listed for run_id in ids) and listed.count(group) == 3
    compared = perfsuite("compare", ids[0], ",".join(ids[1:]), redis_url=redis_url, cwd=tmp_path)
    assert compared.returncode in (0, 1, 2), compared.stderr
    assert "(1 vs 2 runs)" in compared.stdout and "noise unknown)" not in compared.stdout
