"""JUnit XML as a real consumer (junitparser) reads it: one test case per threshold and per target."""

from __future__ import annotations

from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml

from baseline.comparator import compare
from baseline.job import comparison_result
from baseline.sides import sides_from_file
from perfsuite.config import BaselineConfig
from perfsuite.grading import Check
from perfsuite.report_junit import render_junit
from perfsuite.result import RunResult, Target

INPUTS = Path(__file__).resolve().parent / "golden" / "comparator" / "inputs"


def _job() -> RunResult:
    return RunResult(
        test_type="webhook",
        run_id="20260101T000000Z-abcdef",
        scenario="default",
        target=Target(host="http://127.0.0.1:8000", path="/webhook/whatsapp"),
        checks=(
            Check("webhook P99 response time", 120.0, "<=", 2000.0, "ms", "4.1", critical=True),
            Check("webhook success rate", 0.97, ">=", 0.99, "%", "4.3", critical=True),
            Check("queue backlog drained <after> the load & more", None, "<=", 30.0, "s", "4.3"),
        ),
    )


def _comparison(baseline: str, current: str) -> RunResult:
    """``current`` against ``baseline`` joined by the four earlier runs of the optimized build."""
    earlier = [sides_from_file(INPUTS / f"optimized_earlier_{i}.json")[0].result for i in range(1, 5)]
    comparison = compare(
        sides_from_file(INPUTS / f"{current}.json"),
        BaselineConfig(),
        sides_from_file(INPUTS / f"{baseline}.json"),
        history={"webhook": earlier},
    )
    return comparison_result(comparison)


def test_a_job_gives_one_case_per_threshold_and_a_failure_per_miss() -> None:
    """Every check is a test case named after it; the unmet ones fail with the reason as message."""
    xml = JUnitXml.fromstring(render_junit(_job()))
    suites = list(xml)
    assert [suite.name for suite in suites] == ["perfsuite.webhook"]
    cases = {case.name: case for case in suites[0]}
    assert set(cases) == {check.name for check in _job().checks}
    assert cases["webhook P99 response time"].is_passed
    assert cases["webhook P99 response time"].classname == "perfsuite.webhook.4.1"
    failure = cases["webhook success rate"].result[0]
    assert isinstance(failure, Failure) and failure.type == "threshold"
    assert failure.message == "webhook success rate: 97.00% (target >= 99.00%)"
    assert "(critical)" in (failure.text or "")
    assert cases["queue backlog drained <after> the load & more"].result[0].message.endswith("not measured")
    assert (suites[0].tests, suites[0].failures) == (3, 2)
    assert {p.name: p.value for p in suites[0].properties()}["run_id"] == "20260101T000000Z-abcdef"


def test_a_comparison_of_own_runs_gives_one_case_per_regression_check() -> None:
    """A 30% slower build against earlier runs of your own: no seed-targets suite (seed targets
    count only against the seed's figures); the regressions suite fails four cases, each with the
    effect and its between-run interval in the text."""
    result = _comparison("optimized", "optimized_slower")
    xml = JUnitXml.fromstring(render_junit(result))
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {"perfsuite.baseline.regressions"}
    regressions = suites["perfsuite.baseline.regressions"]
    assert (regressions.tests, regressions.failures) == (5, 4)
    assert {case.classname for case in regressions} == {"perfsuite.baseline.regressions"}
    failed = {case.name: case.result[0] for case in regressions if not case.is_passed}
    assert set(failed) == {
        f"webhook {name}: no significant regression"
        for name in ("average response time", "P50 response time", "P95 response time", "P99 response time")
    }
    p95 = failed["webhook P95 response time: no significant regression"]
    assert (
        p95.type == "regression" and "98% interval" in (p95.text or "") and "between runs" in (p95.text or "")
    )
    assert sum(s.tests for s in xml) == len(result.checks)


def test_an_all_result_has_a_suite_per_job_and_the_comparison() -> None:
    """``--test-type all``: each job's thresholds, then the comparison's targets."""
    comparison = comparison_result(compare(sides_from_file(INPUTS / "optimized.json"), BaselineConfig()))
    combined = RunResult(
        test_type="all",
        run_id="a,b",
        scenario="default",
        checks=comparison.checks,
        comparison=comparison.comparison,
        parts=(_job(),),
    )
    xml = JUnitXml.fromstring(render_junit(combined))
    names = [suite.name for suite in xml]
    assert names == ["perfsuite.webhook", "perfsuite.baseline.targets"]
    assert sum(suite.tests for suite in xml) == 3 + 3


@pytest.mark.parametrize("name", ["optimized", "legacy"])
def test_the_xml_is_well_formed_utf8_with_a_declaration(name: str) -> None:
    """The document starts with an XML declaration and parses as a whole."""
    text = render_junit(_comparison("legacy" if name == "optimized" else "optimized", name))
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites')
    assert JUnitXml.fromstring(text) is not None
