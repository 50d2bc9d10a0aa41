"""The seed's requirement mapping and the metrics a comparison looks at.

Every metric a comparison shows is one :class:`MetricSpec`: where its value sits in a result
document, which way is better, the seed requirement it validates, whether it has a seed figure
("before") and target ("after", from ``baseline.figures`` / ``baseline.targets`` in
scenarios.yaml), and which interval statistic tests it for regressions between two runs.

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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from perfsuite.config import BaselineFigures, BaselineTargets

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

Extractor = Callable[[Mapping[str, Any]], float | None]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if number != number else number  # NaN -> None


def at(*path: str) -> Extractor:
    """An extractor reading ``document[path[0]][path[1]]...`` as a number (None when absent)."""

    def extract(document: Mapping[str, Any]) -> float | None:
        node: Any = document
        for key in path:
            if not isinstance(node, Mapping) or key not in node:
                return None
            node = node[key]
        return _number(node)

    return extract


def first_of(*extractors: Extractor) -> Extractor:
    """The first extractor that finds a value."""

    def extract(document: Mapping[str, Any]) -> float | None:
        for extractor in extractors:
            value = extractor(document)
            if value is not None:
                return value
        return None

    return extract


def _redis_connection_failure_rate(document: Mapping[str, Any]) -> float | None:
    """Share of Redis operations sent to the server that failed (timeouts, refused or reset
    connections, pool exhaustion, error replies): the seed's "connection failure rate"."""
    sent = at("redis", "operations_sent")(document)
    failed = at("redis", "organic_failures")(document)
    if sent and failed is not None:
        return failed / sent
    success_rate = at("summary", "success_rate")(document)
    return None if success_rate is None else 1.0 - success_rate


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One compared metric."""

    key: str
    """Stable id; for seed metrics also the attribute name in BaselineFigures / BaselineTargets."""
    label: str
    test_type: str
    unit: str
    """``ms``, ``s``, ``%`` (a share 0-1), ``users``, ``req/s``."""
    lower_is_better: bool
    requirement: str
    extract: Extractor
    """Reads the value from a result document (``perfsuite.result/1``)."""
    statistic: str | None = None
    """Interval statistic that tests it between two runs (``avg``, ``p50``, ``p95``, ``p99``,
    ``success_rate``); None: shown, not tested for regressions."""
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


def _spec(
    key: str,
    label: str,
    test_type: str,
    unit: str,
    lower: bool,
    req: str,
    extract: Extractor,
    statistic: str | None = None,
    seed: bool = False,
    critical: bool = False,
) -> MetricSpec:
    return MetricSpec(key, label, test_type, unit, lower, req, extract, statistic, seed, critical)


METRICS: tuple[MetricSpec, ...] = (
    _spec(
        "webhook_avg_ms",
        "webhook average response time",
        "webhook",
        "ms",
        True,
        "4.1",
        at("summary", "avg_ms"),
        "avg",
        seed=True,
    ),
    _spec(
        "webhook_p50_ms",
        "webhook P50 response time",
        "webhook",
        "ms",
        True,
        "4.1",
        at("summary", "p50_ms"),
        "p50",
    ),
    _spec(
        "webhook_p95_ms",
        "webhook P95 response time",
        "webhook",
        "ms",
        True,
        "4.1",
        at("summary", "p95_ms"),
        "p95",
    ),
    _spec(
        "webhook_p99_ms",
        "webhook P99 response time",
        "webhook",
        "ms",
        True,
        "4.1",
        at("summary", "p99_ms"),
        "p99",
        seed=True,
        critical=True,
    ),
    _spec(
        "webhook_success_rate",
        "webhook success rate",
        "webhook",
        "%",
        False,
        "4.3",
        at("summary", "success_rate"),
        "success_rate",
        seed=True,
        critical=True,
    ),
    _spec("webhook_rps", "webhook throughput", "webhook", "req/s", False, "4.1", at("summary", "rps")),
    _spec(
        "redis_avg_ms",
        "Redis average latency",
        "redis",
        "ms",
        True,
        "4.2",
        at("summary", "avg_ms"),
        "avg",
        seed=True,
    ),
    _spec("redis_p50_ms", "Redis P50 latency", "redis", "ms", True, "4.2", at("summary", "p50_ms"), "p50"),
    _spec(
        "redis_p95_ms",
        "Redis P95 latency",
        "redis",
        "ms",
        True,
        "4.2",
        at("summary", "p95_ms"),
        "p95",
        seed=True,
    ),
    _spec("redis_p99_ms", "Redis P99 latency", "redis", "ms", True, "4.2", at("summary", "p99_ms"), "p99"),
    _spec(
        "redis_success_rate",
        "Redis success rate",
        "redis",
        "%",
        False,
        "5.1",
        at("summary", "success_rate"),
        "success_rate",
        seed=True,
        critical=True,
    ),
    _spec(
        "redis_connection_failure_rate",
        "Redis connection failure rate",
        "redis",
        "%",
        True,
        "5.1",
        _redis_connection_failure_rate,
        seed=True,
    ),
    _spec("redis_ops_per_s", "Redis throughput", "redis", "req/s", False, "4.2", at("summary", "rps")),
    _spec(
        "redis_pool_peak_utilization",
        "Redis pool peak utilization",
        "redis",
        "%",
        True,
        "5.2",
        at("pool", "peak_utilization"),
    ),
    _spec(
        "capacity_users",
        "capacity (concurrent users held)",
        "capacity",
        "users",
        False,
        "4.3",
        first_of(at("capacity", "max_users"), at("summary", "max_users")),
        seed=True,
    ),
    _spec(
        "recovery_time_s",
        "recovery time after an outage",
        "capacity",
        "s",
        True,
        "4.3",
        first_of(at("capacity", "recovery_time_s"), at("summary", "recovery_time_s")),
        seed=True,
    ),
    _spec(
        "capacity_pool_peak_utilization",
        "capacity pool peak utilization",
        "capacity",
        "%",
        True,
        "5.2",
        first_of(at("capacity", "pool", "peak_utilization"), at("pool", "peak_utilization")),
    ),
)
"""Every compared metric, in report order."""

METRICS_BY_KEY: dict[str, MetricSpec] = {spec.key: spec for spec in METRICS}


def metrics_of(test_type: str) -> tuple[MetricSpec, ...]:
    """The metrics that a run of ``test_type`` provides."""
    return tuple(spec for spec in METRICS if spec.test_type == test_type)


def values_of(document: Mapping[str, Any]) -> dict[str, float | None]:
    """Every metric of the document's test type, read from a result document."""
    return {spec.key: spec.extract(document) for spec in metrics_of(str(document.get("test_type", "")))}


__all__ = [
    "METRICS",
    "METRICS_BY_KEY",
    "REQUIREMENTS",
    "TEST_TYPES",
    "MetricSpec",
    "Requirement",
    "at",
    "first_of",
    "metrics_of",
    "values_of",
]
