"""Live threshold alerts while the run goes (requirement 4.3), evaluated in the Locust master (or
local) process once per sample.

Rules (``capacity.alerts``), each firing when its value passes its limit and clearing when it is back:

- ``p95``: P95 of the requests answered over the last ``window_s`` seconds, from Locust's own
  cumulative statistics (:class:`SlidingPercentile`): past ``p95_warning_ms`` a warning, past
  ``p95_critical_ms`` critical;
- ``bot_cpu``: the bot's process (when it runs on this machine), mean over ``window_s``, 100 = one
  core; ``machine_cpu``: every core of the machine, mean over ``window_s``; past ``cpu_percent``: warning;
- ``machine_memory``: the machine's memory in use past ``memory_percent``: warning;
- ``pool``: the bot's connection pool (its /health ``pool``: in_use / max, when it says) past
  ``pool_utilization``: warning (5.2).

:class:`AlertEvaluator` turns samples into :class:`AlertEvent` values (fired or cleared). Pure: no
clock, no I/O (the Locust side prints, records the ``alert`` marks and, with ``abort_on``, stops).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from capacity.steps import StatsSnapshot, counts_between, percentile_of_counts
from perfsuite.config import AlertsConfig

Severity = Literal["warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One threshold on one live figure."""

    alert: str
    """``p95``, ``bot_cpu``, ``machine_cpu``, ``machine_memory`` or ``pool``."""
    severity: Severity
    limit: float
    unit: str
    """``ms``, ``%`` (a percentage: CPU, memory) or ``share`` (0-1: the pool)."""
    what: str
    """What the value is, for people."""

    @property
    def key(self) -> str:
        """``p95:critical``."""
        return f"{self.alert}:{self.severity}"

    def format(self, value: float) -> str:
        """``1,234 ms``, ``93%``."""
        if self.unit == "ms":
            return f"{value:,.0f} ms"
        if self.unit == "share":
            return f"{value * 100:.0f}%"
        return f"{value:.0f}%"


def rules_of(config: AlertsConfig) -> tuple[AlertRule, ...]:
    """The rules of ``capacity.alerts``."""
    window = f"{config.window_s:g} s"
    return (
        AlertRule("p95", "warning", config.p95_warning_ms, "ms", f"P95 over the last {window}"),
        AlertRule("p95", "critical", config.p95_critical_ms, "ms", f"P95 over the last {window}"),
        AlertRule(
            "bot_cpu",
            "warning",
            config.cpu_percent,
            "%",
            f"bot process CPU (mean of {window}, one core = 100%)",
        ),
        AlertRule(
            "machine_cpu", "warning", config.cpu_percent, "%", f"machine CPU (mean of {window}, every core)"
        ),
        AlertRule("machine_memory", "warning", config.memory_percent, "%", "machine memory in use"),
        AlertRule("pool", "warning", config.pool_utilization, "share", "bot connection pool in use"),
    )


@dataclass(frozen=True, slots=True)
class AlertSample:
    """The live figures at one moment (None: not known)."""

    at_s: float
    """Epoch seconds."""
    p95_ms: float | None = None
    """Already over the sliding window (see :class:`SlidingPercentile`)."""
    bot_cpu_percent: float | None = None
    machine_cpu_percent: float | None = None
    machine_memory_percent: float | None = None
    pool_utilization: float | None = None


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A rule fired (its value passed the limit) or cleared (back within it)."""

    rule: AlertRule
    fired: bool
    at_s: float
    value: float

    def message(self, elapsed_s: float | None = None) -> str:
        """``ALERT critical: P95 over the last 10 s 3,412 ms > 3,000 ms (+42 s)``."""
        when = f" (+{elapsed_s:.0f} s)" if elapsed_s is not None else ""
        rule = self.rule
        if self.fired:
            value, limit = rule.format(self.value), rule.format(rule.limit)
            return f"ALERT {rule.severity}: {rule.what} {value} > {limit}{when}"
        return f"alert cleared ({rule.severity}): {rule.what} {rule.format(self.value)}{when}"


class _WindowMean:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._values: deque[tuple[float, float]] = deque()

    def add(self, at_s: float, value: float | None) -> float | None:
        if value is not None:
            self._values.append((at_s, value))
        while self._values and self._values[0][0] < at_s - self.window_s:
            self._values.popleft()
        return sum(v for _, v in self._values) / len(self._values) if self._values else None


class AlertEvaluator:
    """Evaluates every rule at each sample; returns what fired or cleared."""

    def __init__(self, config: AlertsConfig) -> None:
        self.rules = rules_of(config)
        self._bot_cpu = _WindowMean(config.window_s)
        self._machine_cpu = _WindowMean(config.window_s)
        self.active: dict[str, AlertEvent] = {}
        """Rules firing now, by key, with the event that fired them."""

    def observe(self, sample: AlertSample) -> list[AlertEvent]:
        """Evaluate ``sample``; the events of the rules that changed state."""
        values = {
            "p95": sample.p95_ms,
            "bot_cpu": self._bot_cpu.add(sample.at_s, sample.bot_cpu_percent),
            "machine_cpu": self._machine_cpu.add(sample.at_s, sample.machine_cpu_percent),
            "machine_memory": sample.machine_memory_percent,
            "pool": sample.pool_utilization,
        }
        events = []
        for rule in self.rules:
            value = values[rule.alert]
            if value is None:
                continue
            over = value > rule.limit
            if over and rule.key not in self.active:
                event = AlertEvent(rule, True, sample.at_s, value)
                self.active[rule.key] = event
                events.append(event)
            elif not over and rule.key in self.active:
                del self.active[rule.key]
                events.append(AlertEvent(rule, False, sample.at_s, value))
        return events


class SlidingPercentile:
    """A percentile of the requests answered over the last ``window_s`` seconds, from cumulative
    snapshots of Locust's statistics (one per sample)."""

    def __init__(self, window_s: float, percent: float = 95.0) -> None:
        self.window_s = window_s
        self.percent = percent
        self._snapshots: deque[StatsSnapshot] = deque()

    def add(self, snapshot: StatsSnapshot) -> float | None:
        """Take ``snapshot``; the percentile since the one ``window_s`` before it (None: no request)."""
        self._snapshots.append(snapshot)
        while len(self._snapshots) > 1 and self._snapshots[1].at_s <= snapshot.at_s - self.window_s:
            self._snapshots.popleft()
        oldest = self._snapshots[0]
        if oldest is snapshot:
            return percentile_of_counts(snapshot.response_times, self.percent)
        return percentile_of_counts(
            counts_between(oldest.response_times, snapshot.response_times), self.percent
        )


def aborts(severity: str, abort_on: str | None) -> bool:
    """True when an alert of ``severity`` stops a run started with ``--abort-on abort_on``."""
    return abort_on is not None and SEVERITY_RANK[severity] >= SEVERITY_RANK[abort_on]


__all__ = [
    "SEVERITY_RANK",
    "AlertEvaluator",
    "AlertEvent",
    "AlertRule",
    "AlertSample",
    "Severity",
    "SlidingPercentile",
    "aborts",
    "rules_of",
]
