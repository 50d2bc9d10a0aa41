"""The seed's requirement mapping and the metrics a comparison looks at.

Every metric a comparison shows is one :class:`MetricSpec`: a test type's own metric (how to read
it from a typed result, which way is better, which interval statistic tests it between two runs;
``TestType.metrics``), plus whether the seed states a figure ("before") and a target ("after",
``baseline.figures`` / ``baseline.targets`` in scenarios.yaml) for it (:data:`SEED_METRICS`).

The seed's mapping (load-testing-suite-README.md, "Requirements Validation"):

======  ==========================  ===============================================
req     test component              validation
======  ==========================  ===============================================
4.1     Webhook Load Test           response time tracking and breakdown analysis
4.2     Redis Benchmark             operation latency measurement and monitoring
4.3     Capacity Test               performance threshold alerts and violations
5.1     Redis Benchmark + Capacity  connection pool management under load
5.2     Capacity Test               connection pool utilization monitoring
======  ==========================  ===============================================

Improvements: for a time or a count, the relative change in the good direction
(``(baseline - current) / baseline`` when lower is better: 14 s -> 2 s is +85.7%); for a rate
(success or failure share), the change in percentage points (85% -> 99% is +14 pp), as the seed
states its expected improvements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perfsuite.config import BaselineFigures, BaselineTargets
from perfsuite.registry import find
from perfsuite.result import RunResult

TEST_TYPES: tuple[str, ...] = ("webhook", "redis", "capacity")
"""Test types whose figures a comparison can hold, in report order."""


@dataclass(frozen=True, slots=True)
class Requirement:
    """One row of the seed's requirement mapping."""

    id: str
    title: str
    component: str
    """The seed's test component that validates it."""
    validation: str


REQUIREMENTS: dict[str, Requirement] = {
    r.id: r
    for r in (
        Requirement(
            "4.1",
            "Webhook response time tracking with detailed timing breakdowns",
            "Webhook Load Test",
            "Response time tracking and breakdown analysis",
        ),
        Requirement(
            "4.2",
            "Redis operation monitoring with latency measurements",
            "Redis Benchmark",
            "Operation latency measurement and monitoring",
        ),
        Requirement(
            "4.3",
            "Performance threshold alerts for critical metrics",
            "Capacity Test",
            "Performance threshold alerts and violations",
        ),
        Requirement(
            "5.1",
            "Connection pool management optimization",
            "Redis Benchmark + Capacity",
            "Connection pool management under load",
        ),
        Requirement(
            "5.2",
            "Connection pool utilization monitoring",
            "Capacity Test",
            "Connection pool utilization monitoring",
        ),
    )
}
"""The seed's requirements by id, in order."""


@dataclass(frozen=True, slots=True)
class SeedMetric:
    """A figure the seed states a "before" and an expected "after" for (keys of
    ``baseline.figures`` / ``baseline.targets`` in scenarios.yaml)."""

    key: str
    label: str
    test_type: str
    unit: str
    lower_is_better: bool
    requirement: str
    critical: bool = False


SEED_METRICS: tuple[SeedMetric, ...] = (
    SeedMetric("webhook_avg_ms", "webhook average response time", "webhook", "ms", True, "4.1"),
    SeedMetric("webhook_p99_ms", "webhook P99 response time", "webhook", "ms", True, "4.1", critical=True),
    SeedMetric("webhook_success_rate", "webhook success rate", "webhook", "%", False, "4.3", critical=True),
    SeedMetric("redis_avg_ms", "Redis average latency", "redis", "ms", True, "4.2"),
    SeedMetric("redis_p95_ms", "Redis P95 latency", "redis", "ms", True, "4.2"),
    SeedMetric("redis_success_rate", "Redis success rate", "redis", "%", False, "5.1", critical=True),
    SeedMetric("redis_connection_failure_rate", "Redis connection failure rate", "redis", "%", True, "5.1"),
    SeedMetric("capacity_users", "capacity (concurrent users held)", "capacity", "users", False, "4.3"),
    SeedMetric("recovery_time_s", "recovery time after an outage", "capacity", "s", True, "4.3"),
)
"""The seed's before/after figures (load-testing-suite-README.md, "Expected Improvements")."""

SEED_KEYS = frozenset(metric.key for metric in SEED_METRICS)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number  # NaN -> None


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One compared metric: a test type's :class:`~perfsuite.jobs.Metric` (or, for a test type this
    installation lacks, the seed's description of it) plus whether the seed states figures for it."""

    key: str
    """Stable id; for seed metrics also the attribute name in BaselineFigures / BaselineTargets."""
    label: str
    test_type: str
    unit: str
    """``ms``, ``s``, ``%`` (a share 0-1), ``users``, ``req/s``."""
    lower_is_better: bool
    requirement: str
    extract: Callable[[RunResult], float | None]
    """Reads the value from a typed result."""
    statistic: str | None = None
    """Interval statistic that tests it between two runs; None: shown, not tested for regressions."""
    seed: bool = False
    """Has a seed figure and target."""
    critical: bool = False
    """Its target check (and regression check) is critical for the grade."""

    @property
    def is_rate(self) -> bool:
        """A share (0-1): improvements in percentage points."""
        return self.unit == "%"

    def seed_figure(self, figures: BaselineFigures) -> float | None:
        """The seed's pre-optimization figure (None when the seed gives none)."""
        return _number(getattr(figures, self.key, None)) if self.seed else None

    def seed_target(self, targets: BaselineTargets) -> float | None:
        """The seed's expected figure after the optimization (None when the seed gives none)."""
        return _number(getattr(targets, self.key, None)) if self.seed else None

    @property
    def comparison(self) -> str:
        """How the current value must relate to the target: ``<=`` or ``>=``."""
        return "<=" if self.lower_is_better else ">="

    def improvement(self, baseline: float | None, current: float | None) -> float | None:
        """The change from ``baseline`` to ``current`` in the good direction (positive = better):
        a fraction of the baseline, or percentage points (as a fraction) for a rate."""
        if baseline is None or current is None:
            return None
        sign = -1.0 if self.lower_is_better else 1.0
        if self.is_rate:
            return sign * (current - baseline)
        if baseline == 0:
            return None
        return sign * (current - baseline) / baseline

    def expected_improvement(self, figures: BaselineFigures, targets: BaselineTargets) -> float | None:
        """The seed's expected improvement, from its figure to its target."""
        return self.improvement(self.seed_figure(figures), self.seed_target(targets))

    def value(self, result: RunResult) -> float | None:
        """This metric of ``result`` (None when it has none)."""
        return _number(self.extract(result))


def _unreadable(result: RunResult) -> float | None:
    """A seed metric of a test type this installation lacks: its figures cannot be read."""
    return None


def metrics_of(test_type: str) -> tuple[MetricSpec, ...]:
    """The metrics a run of ``test_type`` provides: its test type's own, in its order, or the seed's
    description of them when this installation lacks the test type (their values then cannot be
    read: "not measured")."""
    installed = find(test_type)
    if installed is not None:
        return tuple(
            MetricSpec(
                key=metric.key,
                label=metric.label,
                test_type=test_type,
                unit=metric.unit,
                lower_is_better=metric.lower_is_better,
                requirement=metric.requirement,
                extract=metric.value,
                statistic=metric.statistic,
                seed=metric.key in SEED_KEYS,
                critical=metric.critical,
            )
            for metric in installed.metrics()
        )
    return tuple(
        MetricSpec(
            key=seed.key,
            label=seed.label,
            test_type=test_type,
            unit=seed.unit,
            lower_is_better=seed.lower_is_better,
            requirement=seed.requirement,
            extract=_unreadable,
            seed=True,
            critical=seed.critical,
        )
        for seed in SEED_METRICS
        if seed.test_type == test_type
    )


def values_of(result: RunResult) -> dict[str, float | None]:
    """Every metric of the result's test type."""
    return {spec.key: spec.value(result) for spec in metrics_of(result.test_type)}


__all__ = [
    "REQUIREMENTS",
    "SEED_KEYS",
    "SEED_METRICS",
    "TEST_TYPES",
    "MetricSpec",
    "Requirement",
    "SeedMetric",
    "metrics_of",
    "values_of",
]
