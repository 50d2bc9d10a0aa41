"""JUnit XML: one test case per threshold and per target, for CI systems.

Layout (the de-facto JUnit schema that Jenkins, GitLab, GitHub Actions reporters and
``junitparser`` read):

- ``<testsuites name="perfsuite" tests failures errors="0">``
- one ``<testsuite>`` per job's thresholds (``perfsuite.webhook``...), and for a comparison one for
  the seed targets (``perfsuite.baseline.targets``, only against the seed's figures) and one for
  the no-regression checks (``perfsuite.baseline.regressions``, only against runs); each with
  properties (run id, grade, scenario);
- one ``<testcase name=check classname=suite.requirement>`` per check; an unmet check holds a
  ``<failure message=... type="threshold"|"target"|"regression">`` whose text gives the actual value,
  the target and the detail.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

from perfsuite.grading import Check, format_value
from perfsuite.result import RunResult


def _suite(
    root: ET.Element, name: str, checks: Sequence[Check], kind: str, properties: Mapping[str, str]
) -> None:
    failures = sum(not check.met for check in checks)
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": name,
            "tests": str(len(checks)),
            "failures": str(failures),
            "errors": "0",
            "skipped": "0",
            "time": "0",
        },
    )
    props = ET.SubElement(suite, "properties")
    for key, value in properties.items():
        ET.SubElement(props, "property", {"name": key, "value": value})
    for check in checks:
        classname = f"{name}.{check.requirement}" if check.requirement else name
        case = ET.SubElement(suite, "testcase", {"name": check.name, "classname": classname, "time": "0"})
        actual = "not measured" if check.actual is None else format_value(check.actual, check.unit)
        expected = f"{check.comparison} {format_value(check.target, check.unit)}"
        detail = f"actual {actual}, target {expected}" + (" (critical)" if check.critical else "")
        if check.note:
            detail += f"\n{check.note}"
        if check.met:
            ET.SubElement(case, "system-out").text = detail
        else:
            failure = ET.SubElement(case, "failure", {"message": check.reason() or check.name, "type": kind})
            failure.text = detail


def _job_suites(root: ET.Element, result: RunResult) -> None:
    properties = {
        "run_id": result.run_id,
        "test_type": result.test_type,
        "scenario": result.scenario,
        "grade": result.grade.value,
    }
    _suite(root, f"perfsuite.{result.test_type}", result.checks, "threshold", properties)


def render_junit(result: RunResult) -> str:
    """``result`` as a JUnit XML document (UTF-8 text with an XML declaration)."""
    root = ET.Element("testsuites", {"name": "perfsuite"})
    for part in result.parts:
        _job_suites(root, part)
    comparison = result.comparison
    if comparison:
        properties = {
            "baseline": str(comparison["baseline"]["label"]),
            "current": str(comparison["current"]["label"]),
            "grade": str(comparison["grade"]),
        }
        targets = [Check.from_dict(check) for check in comparison.get("target_checks", [])]
        regressions = [Check.from_dict(check) for check in comparison.get("regression_checks", [])]
        if targets:  # only against the seed's figures
            _suite(root, "perfsuite.baseline.targets", targets, "target", properties)
        if regressions:
            _suite(root, "perfsuite.baseline.regressions", regressions, "regression", properties)
    elif not result.parts:
        _job_suites(root, result)
    suites = list(root)
    root.set("tests", str(sum(int(s.get("tests", "0")) for s in suites)))
    root.set("failures", str(sum(int(s.get("failures", "0")) for s in suites)))
    root.set("errors", "0")
    root.set("time", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


__all__ = ["render_junit"]
