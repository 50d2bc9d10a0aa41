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
from perfsuite.report_html import render_html
from perfsuite.result import RunResult

GOLDEN = Path(__file__).resolve().parent / "golden" / "comparator"
UPDATE = os.environ.get("PERFSUITE_UPDATE_GOLDEN") == "1"
ALL_TYPES = ("webhook", "redis", "capacity")

EARLIER = [f"optimized_earlier_{i}" for i in range(1, 5)]
"""Four earlier runs of the optimized build: the history that joins the baseline."""

CASES: dict[str, dict[str, Any]] = {
    "excellent_legacy_to_optimized_groups": {
        "baseline": ["legacy", "legacy_again"],
        "current": ["optimized", "optimized_again"],
        "grade": Grade.EXCELLENT,
    },
    "excellent_same_build_with_history": {
        "baseline": ["optimized"],
        "history": EARLIER,
        "current": ["optimized_again"],
        "grade": Grade.EXCELLENT,
    },
    "excellent_seed_every_target": {
        "baseline": [],
        "current": ["optimized", "redis", "capacity"],
        "grade": Grade.EXCELLENT,
    },
    "good_average_target_missed": {
        "baseline": [],
        "current": ["slow_b", "redis"],
        "scope": ("webhook", "redis"),
        "grade": Grade.GOOD,
    },
    "fair_average_target_missed_webhook_only": {
        "baseline": [],
        "current": ["slow_b"],
        "grade": Grade.FAIR,
    },
    "poor_thirty_percent_slower_with_history": {
        "baseline": ["optimized"],
        "history": EARLIER,
        "current": ["optimized_slower"],
        "grade": Grade.POOR,
    },
    "inconclusive_thirty_percent_slower_one_run_each": {
        "baseline": ["optimized"],
        "current": ["optimized_slower"],
        "grade": Grade.EXCELLENT,
    },
    "poor_one_seed_target_of_nine": {
        "baseline": [],
        "current": ["poor"],
        "scope": ALL_TYPES,
        "grade": Grade.POOR,
    },
    "excellent_noise_unknown_baseline_file": {
        "baseline": ["legacy_no_intervals"],
        "current": ["optimized"],
        "grade": Grade.EXCELLENT,
    },
}
"""Each case: baseline and current input files, the earlier runs offered as history, the scope, the
grade its name promises. Renamed in issue 10 where the meaning changed: ``excellent_same_build_twice``
and ``fair_thirty_percent_slower`` (one run each side, now inconclusive) became the cases with
history and ``inconclusive_thirty_percent_slower_one_run_each``; with no seed targets padding the
checks, four latency regressions out of five checks are POOR, no longer FAIR;
``excellent_legacy_to_optimized`` compares groups; ``good_average_target_missed`` and
``fair_average_target_missed_webhook_only`` are judged against the seed's figures (a comparison
of your own runs has no seed targets)."""


def _outputs(case: dict[str, Any]) -> tuple[dict[str, Any], str]:
    def side(name: str) -> Any:
        return sides_from_file(Path("inputs") / f"{name}.json")[0]

    history = [side(name).result for name in case.get("history", [])]
    comparison = compare(
        [side(name) for name in case["current"]],
        BaselineConfig(),
        [side(name) for name in case["baseline"]],
        case.get("scope"),
        history={"webhook": history} if history else None,
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


def test_a_thirty_percent_slowdown_with_history_is_reported_with_its_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Against a baseline joined by four earlier runs of the same build, a 30% slower run is a
    regression on every latency statistic (four of five critical checks missed: POOR, exit 2),
    printed with its between-run interval and run counts."""
    monkeypatch.chdir(GOLDEN)
    document, text = _outputs(CASES["poor_thirty_percent_slower_with_history"])
    assert document["regressions"] == ["webhook_avg_ms", "webhook_p50_ms", "webhook_p95_ms", "webhook_p99_ms"]
    p95 = next(row for row in document["metrics"] if row["key"] == "webhook_p95_ms")["difference"]
    assert p95["verdict"] == "regression"
    assert 0.10 < p95["ci_low"] < p95["effect"] < p95["ci_high"]
    assert p95["noise"] == {
        "baseline_runs": 1,
        "history_runs": 4,
        "current_runs": 1,
        "df": 4,
        "spread": p95["noise"]["spread"],
    }
    assert "(5 vs 1 runs)" in text and document["history"] == {
        "webhook": [f"golden-optimized-earlier-{i}" for i in range(1, 5)]
    }


def test_one_run_each_side_is_inconclusive_never_a_regression(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same 30% slowdown with one run each side and no history: nothing measured the variation
    between runs, so every verdict is 'inconclusive (run-to-run noise unknown)', the within-run
    interval is shown as information only, and the gate stays green (exit 0)."""
    monkeypatch.chdir(GOLDEN)
    document, text = _outputs(CASES["inconclusive_thirty_percent_slower_one_run_each"])
    assert document["regressions"] == [] and document["exit_code"] == 0
    assert document["noise_unknown"] == [
        "webhook_avg_ms",
        "webhook_p50_ms",
        "webhook_p95_ms",
        "webhook_p99_ms",
        "webhook_success_rate",
    ]
    assert "inconclusive (run-to-run noise unknown) +36.2% [within run" in text
    assert "inconclusive 5: run-to-run noise unknown" in text


def test_own_runs_show_no_seed_columns_or_requirements(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comparing your own runs shows your figures only: no expected improvement, seed target or met
    column, no requirement table or numbers; those appear only against the seed's figures."""
    monkeypatch.chdir(GOLDEN)
    own, own_text = _outputs(CASES["excellent_same_build_with_history"])
    assert own["requirements"] == [] and own["target_checks"] == [] and own["targets_total"] == 0
    assert all(row["requirement"] is None and row["target"] is None for row in own["metrics"])
    assert all(row["expected_improvement"] is None and row["met"] is None for row in own["metrics"])
    assert not any(check["requirement"] for check in own["checks"])
    for seed_only in ("seed target", "expected", " req ", "requirement", "4.1", "seed targets met"):
        assert seed_only not in own_text
    seed, seed_text = _outputs(CASES["excellent_seed_every_target"])
    assert len(seed["requirements"]) == 5 and seed["targets_total"] == 9
    for seed_only in ("seed target", "expected", "target achievement per requirement", "4.1"):
        assert seed_only in seed_text


@pytest.mark.parametrize("name", ["fair_thirty_percent_slower", "excellent_seed_every_target"])
def test_version_1_comparison_documents_still_render(name: str) -> None:
    """A `perfsuite.comparison/1` document (a result file written before issue 10) renders as text
    and HTML: its within-run verdicts are shown as they were decided, with the old noise line."""
    document = json.loads((GOLDEN / "v1" / f"{name}.json").read_text(encoding="utf-8"))
    assert document["schema"] == "perfsuite.comparison/1"
    text = render_comparison(document)
    assert f"COMPARISON GRADE: {document['grade']}" in text
    if document["baseline"]["kind"] != "seed":
        assert "bootstrap interval over each run's intervals" in text
        assert "regression +36.2% [+28.8, +46.6]" in text
    result = RunResult(test_type="baseline", comparison=document)
    assert render_html(result, []).count(document["grade"]) >= 1
