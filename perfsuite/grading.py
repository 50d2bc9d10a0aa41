"""Thresholds as check objects, and the one rule that turns checks into a grade.

The rule (also in the README):

- **EXCELLENT**: every check met.
- **GOOD**: every critical check met and at least 75% of all checks met.
- **FAIR**: at least 50% of all checks met.
- **POOR**: anything less, no check could be evaluated, or a critical check **missed by far**: its
  value lies beyond the check's ``far`` bound (a success rate under 50%, a bot that accepts or
  refuses every bad signature...). A bot that refuses everything is never FAIR.

Exit codes follow the seed: EXCELLENT and GOOD exit 0, FAIR 1, POOR 2.

The same rule grades a comparison (``--test-type baseline``, ``perfsuite compare``); its checks are:

- one **target** check per seed target of the compared test types: the current value against the
  seed's expected post-optimization figure (``baseline.targets``). A target whose test was not run
  or could not be measured is a check NOT met, so comparing one test type against the seed's whole
  mapping cannot earn more than its share (1 of 10 targets met is POOR, never GOOD);
- one **no-regression** check per statistic compared with an earlier run (critical): it fails only
  when the change is outside the run-to-run interval AND beyond the minimum effect
  (``baseline/regression.py``).

A result made of several jobs (``--test-type all``) gets the worst of its parts' grades and its
own checks' grade (:func:`combined`).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, Literal

from pydantic import computed_field
from pydantic.dataclasses import dataclass

from perfsuite.errors import EXIT_FAIR, EXIT_OK, EXIT_POOR

GOOD_SHARE = 0.75
"""Share of checks a GOOD run meets (with every critical one)."""
FAIR_SHARE = 0.50
"""Share of checks a FAIR run meets."""


class Grade(enum.StrEnum):
    """The seed's four grades, best first."""

    EXCELLENT = "EXCELLENT"
    GOOD = "GOOD"
    FAIR = "FAIR"
    POOR = "POOR"

    @property
    def exit_code(self) -> int:
        """0 for EXCELLENT and GOOD, 1 for FAIR, 2 for POOR."""
        return {Grade.EXCELLENT: EXIT_OK, Grade.GOOD: EXIT_OK, Grade.FAIR: EXIT_FAIR}.get(self, EXIT_POOR)


Comparison = Literal["<=", ">=", "=="]


@dataclass(frozen=True, slots=True)
class Check:
    """One threshold applied to one measured value."""

    name: str
    """What is checked, e.g. ``webhook P99 response time``."""
    actual: float | None
    """The measured value; None when it could not be measured (the check then fails)."""
    comparison: Comparison
    target: float
    unit: str = ""
    requirement: str = ""
    """The seed requirement it validates (4.1, 4.2, 4.3, 5.1, 5.2) or empty."""
    critical: bool = False
    """A GOOD grade needs every critical check met."""
    note: str = ""
    """More detail for people (an interval, where a figure came from); empty by default."""
    far: float | None = None
    """For a critical check: a value beyond this bound (on the wrong side of ``comparison``) is a
    miss by far, which makes the grade POOR whatever else was met. None: no such bound."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def met(self) -> bool:
        """True when ``actual`` satisfies ``comparison target``."""
        return _satisfies(self.actual, self.comparison, self.target)

    @property
    def missed_by_far(self) -> bool:
        """A critical check whose value is beyond its ``far`` bound (or was not measured at all
        while it has one)."""
        if not self.critical or self.far is None or self.met:
            return False
        if self.actual is None:
            return True
        return not _satisfies(self.actual, self.comparison if self.comparison != "==" else "<=", self.far)

    def reason(self) -> str | None:
        """Why the check failed, or None when it is met."""
        if self.met:
            return None
        if self.actual is None:
            return f"{self.name}: not measured"
        actual, target = format_value(self.actual, self.unit), format_value(self.target, self.unit)
        return f"{self.name}: {actual} (target {self.comparison} {target})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, with ``met`` (``note`` and ``far`` only when set)."""
        data = {**asdict(self), "met": self.met}
        if not self.note:
            data.pop("note")
        if self.far is None:
            data.pop("far")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Check:
        """Inverse of :meth:`to_dict` (``met`` is recomputed, not read)."""
        comparison = data.get("comparison")
        if comparison not in ("<=", ">=", "=="):
            raise ValueError(
                f"check {data.get('name')!r}: comparison {comparison!r} is not one of <=, >=, =="
            )
        actual = data.get("actual")
        return cls(
            name=str(data["name"]),
            actual=None if actual is None else float(actual),
            comparison=comparison,
            target=float(data["target"]),
            unit=str(data.get("unit", "")),
            requirement=str(data.get("requirement", "")),
            critical=bool(data.get("critical", False)),
            note=str(data.get("note", "")),
            far=None if data.get("far") is None else float(data["far"]),
        )


def _satisfies(actual: float | None, comparison: str, bound: float) -> bool:
    if actual is None or (isinstance(actual, float) and math.isnan(actual)):
        return False
    if comparison == "<=":
        return actual <= bound
    if comparison == ">=":
        return actual >= bound
    return actual == bound


def format_value(value: float, unit: str) -> str:
    """``value`` with its unit for people: 12.3 ms, 99.50%, 1,234 req."""
    if unit == "%":
        return f"{value * 100:.2f}%"
    if unit in ("ms", "s"):
        return f"{value:,.1f} {unit}"
    if float(value).is_integer():
        return f"{int(value):,}{(' ' + unit) if unit else ''}"
    return f"{value:,.2f}{(' ' + unit) if unit else ''}"


def grade(checks: Sequence[Check]) -> Grade:
    """The grade that ``checks`` earn by the rule in this module's docstring."""
    if not checks or any(check.missed_by_far for check in checks):
        return Grade.POOR
    met = sum(check.met for check in checks)
    share = met / len(checks)
    if met == len(checks):
        return Grade.EXCELLENT
    if all(check.met for check in checks if check.critical) and share >= GOOD_SHARE:
        return Grade.GOOD
    if share >= FAIR_SHARE:
        return Grade.FAIR
    return Grade.POOR


def worst(grades: Iterable[Grade]) -> Grade:
    """The lowest of several grades (POOR if none)."""
    order = list(Grade)
    return max(grades, key=order.index, default=Grade.POOR)


def combined(checks: Sequence[Check], part_grades: Sequence[Grade] = ()) -> Grade:
    """The grade of a result made of parts: the worst of the parts' grades and of ``checks``' grade
    (``checks`` are left out when empty and there are parts)."""
    if not part_grades:
        return grade(checks)
    return worst([*part_grades, *([grade(checks)] if checks else [])])


__all__ = ["FAIR_SHARE", "GOOD_SHARE", "Check", "Grade", "combined", "format_value", "grade", "worst"]
