"""Golden files of the comparator: fixed result files in, exact comparison document and table out.

Inputs live in tests/golden/comparator/inputs (made by tests/golden/make_inputs.py through the real
collector); expected outputs in tests/golden/comparator/expected. After a deliberate change,
regenerate the outputs with ``PERFSUITE_UPDATE_GOLDEN=1 pytest tests/test_baseline_golden.py`` and
review the diff like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from baseline.comparator import compare
from baseline.sides import sides_from_file
from perfsuite.config import BaselineConfig
from perfsuite.grading import Grade
from perfsuite.report import render_comparison

GOLDEN = Path(__file__).resolve().parent / "golden" / "comparator"
UPDATE = os.environ.get("PERFSUITE_UPDATE_GOLDEN") == "1"
ALL_TYPES = ("webhook", "redis", "capacity")

CASES: dict[str, dict[str, Any]] = {
    "excellent_legacy_to_optimized": {
        "baseline": "legacy",
        "current": ["optimized"],
        "grade": Grade.EXCELLENT,
    },
    "excellent_same_build_twice": {
        "baseline": "optimized",
        "current": ["optimized_again"],
        "grade": Grade.EXCELLENT,
    },
    "excellent_seed_every_target": {
        "baseline": None,
        "current": ["optimized", "redis", "capacity"],
        "grade": Grade.EXCELLENT,
    },
    "good_average_target_missed": {
        "baseline": "slow_a",
        "current": ["slow_b"],
        "grade": Grade.GOOD,
    },
    "fair_thirty_percent_slower": {
        "baseline": "optimized",
        "current": ["optimized_slower"],
        "grade": Grade.FAIR,
    },
    "poor_one_seed_target_of_nine": {
        "baseline": None,
        "current": ["poor"],
        "scope": ALL_TYPES,
        "grade": Grade.POOR,
    },
    "excellent_noise_unknown_baseline_file": {
        "baseline": "legacy_no_intervals",
        "current": ["optimized"],
        "grade": Grade.EXCELLENT,
    },
}


def _outputs(case: dict[str, Any]) -> tuple[dict[str, Any], str]:
    def side(name: str) -> Any:
        return sides_from_file(Path("inputs") / f"{name}.json")[0]

    baseline = [side(case["baseline"])] if case["baseline"] else []
    comparison = compare(
        [side(name) for name in case["current"]], BaselineConfig(), baseline, case.get("scope")
    )
    document = comparison.to_dict()
    return document, render_comparison(document) + "\n"


@pytest.mark.parametrize("name", sorted(CASES))
def test_comparator_output_matches_its_golden_file(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison document and the printed table of each fixed case are exactly the stored ones,
    and each case earns the grade its name promises."""
    monkeypatch.chdir(GOLDEN)  # labels name the input files by these relative paths
    document, text = _outputs(CASES[name])
    expected_json, expected_text = GOLDEN / "expected" / f"{name}.json", GOLDEN / "expected" / f"{name}.txt"
    if UPDATE:
        expected_json.parent.mkdir(exist_ok=True)
        expected_json.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        expected_text.write_text(text, encoding="utf-8")
    assert document == json.loads(expected_json.read_text(encoding="utf-8"))
    assert text == expected_text.read_text(encoding="utf-8")
    assert document["grade"] == CASES[name]["grade"].value
    assert document["exit_code"] == CASES[name]["grade"].exit_code


def test_the_golden_cases_reach_every_grade() -> None:
    """EXCELLENT, GOOD, FAIR and POOR each have at least one golden case."""
    assert {case["grade"] for case in CASES.values()} == set(Grade)


def test_one_target_of_nine_is_poor_not_good(monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed's own suite graded GOOD with 1 of 10 targets met; here targets that were not measured
    count as not met, the table says 'not run', and the grade is POOR (exit 2)."""
    monkeypatch.chdir(GOLDEN)
    document, text = _outputs(CASES["poor_one_seed_target_of_nine"])
    assert (document["targets_met"], document["targets_total"]) == (1, 9)
    assert document["grade"] == "POOR" and document["exit_code"] == 2
    assert text.count("not run") == 6
    statuses = {r["id"]: r["status"] for r in document["requirements"]}
    assert statuses == {
        "4.1": "not met",
        "4.2": "not met",
        "4.3": "not met",
        "5.1": "not met",
        "5.2": "not measured",
    }


def test_a_thirty_percent_slowdown_is_reported_with_its_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """The FAIR case names the regressed metrics and prints each one's effect with its interval."""
    monkeypatch.chdir(GOLDEN)
    document, text = _outputs(CASES["fair_thirty_percent_slower"])
    assert document["regressions"] == ["webhook_avg_ms", "webhook_p50_ms", "webhook_p95_ms", "webhook_p99_ms"]
    p95 = next(row for row in document["metrics"] if row["key"] == "webhook_p95_ms")
    assert p95["difference"]["verdict"] == "regression"
    assert 0.10 < p95["difference"]["ci_low"] < p95["difference"]["effect"] < p95["difference"]["ci_high"]
    assert "regression +36.2% [+28.8, +46.6]" in text
