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
