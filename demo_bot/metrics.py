"""The bot's metrics and their Prometheus text exposition (format 0.0.4), without a client library.

Counters and histograms live here; gauges (queue depth, pool, breaker) are read at scrape time
and passed to :meth:`Metrics.render`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    15.0,
)
"""Histogram bucket upper bounds in seconds (15 s: Twilio's webhook timeout)."""

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: Labels = ()) -> str:
    pairs = labels + extra
    if not pairs:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in pairs) + "}"


def _number(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class Counter:
    """A monotonically increasing count, optionally split by labels."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.help_text = help_text
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to the series with ``labels``."""
        key = tuple(sorted(labels.items()))
        self._values[key] = self._values.get(key, 0.0) + amount

    def total(self) -> float:
        """Sum over every label set."""
        return sum(self._values.values())

    def value(self, **labels: str) -> float:
        """The series with exactly ``labels``."""
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> Iterable[str]:
        """Exposition lines."""
        yield f"# HELP {self.name} {self.help_text}"
        yield f"# TYPE {self.name} counter"
        if not self._values:
            yield f"{self.name} 0"
        for labels, value in sorted(self._values.items()):
            yield f"{self.name}{_labels(labels)} {_number(value)}"


class Histogram:
    """Cumulative-bucket histogram of durations in seconds."""

    def __init__(self, name: str, help_text: str, buckets_s: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.name = name
        self.help_text = help_text
        self.buckets_s = buckets_s
        self._counts = [0] * (len(buckets_s) + 1)
        self._sum_s = 0.0
        self.count = 0
        """Observations so far."""

    def observe(self, duration_s: float) -> None:
        """Record one duration (seconds)."""
        self._counts[bisect.bisect_left(self.buckets_s, duration_s)] += 1
        self._sum_s += duration_s
        self.count += 1

    def render(self) -> Iterable[str]:
        """Exposition lines (cumulative buckets, +Inf, sum, count)."""
        yield f"# HELP {self.name} {self.help_text}"
        yield f"# TYPE {self.name} histogram"
        cumulative = 0
        for bound, count in zip((*self.buckets_s, float("inf")), self._counts, strict=True):
            cumulative += count
            yield f"{self.name}_bucket{_labels((), (('le', _number(bound)),))} {cumulative}"
        yield f"{self.name}_sum {_number(self._sum_s)}"
        yield f"{self.name}_count {self.count}"


class Metrics:
    """Every counter and histogram the bot keeps."""

    def __init__(self) -> None:
        self.received = Counter("demo_bot_webhooks_received_total", "Webhook POSTs received.")
        self.accepted = Counter(
            "demo_bot_webhooks_accepted_total", "New messages accepted for analysis, by queue backend."
        )
        self.rejected = Counter(
            "demo_bot_webhooks_rejected_total", "Webhooks refused: bad or missing signature, bad request."
        )
        self.ratelimited = Counter("demo_bot_webhooks_ratelimited_total", "Webhooks answered 429.")
        self.duplicates = Counter(
            "demo_bot_webhooks_duplicates_total", "Replayed MessageSids answered 200 and not queued again."
        )
        self.backpressure = Counter(
            "demo_bot_webhooks_backpressure_total", "Webhooks answered 503 with Retry-After, by reason."
        )
        self.failed = Counter("demo_bot_webhooks_failed_total", "Webhooks answered 500.")
        self.processed = Counter(
            "demo_bot_messages_processed_total", "Messages analysed and stored, by kind."
        )
        self.requeued = Counter(
            "demo_bot_messages_requeued_total", "Messages put back on the queue after storage failures."
        )
        self.storage_failures = Counter("demo_bot_storage_failures_total", "Failed store attempts.")
        self.webhook_latency = Histogram(
            "demo_bot_webhook_duration_seconds", "Time from request read to response ready, webhooks."
        )
        self.processing_latency = Histogram(
            "demo_bot_message_processing_seconds", "Time from webhook arrival to stored result."
        )

    def counters(self) -> tuple[Counter, ...]:
        """All counters, in exposition order."""
        return (
            self.received,
            self.accepted,
            self.rejected,
            self.ratelimited,
            self.duplicates,
            self.backpressure,
            self.failed,
            self.processed,
            self.requeued,
            self.storage_failures,
        )

    def render(self, gauges: Mapping[str, tuple[str, Mapping[Labels, float]]]) -> str:
        """The whole exposition; ``gauges`` maps name -> (help, {labels: value})."""
        lines: list[str] = []
        for counter in self.counters():
            lines.extend(counter.render())
        for name, (help_text, series) in gauges.items():
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} gauge")
            for labels, value in series.items():
                lines.append(f"{name}{_labels(labels)} {_number(value)}")
        lines.extend(self.webhook_latency.render())
        lines.extend(self.processing_latency.render())
        return "\n".join(lines) + "\n"


__all__ = ["LATENCY_BUCKETS_S", "Counter", "Histogram", "Labels", "Metrics"]
