"""The Prometheus text exposition format, read without a client library: metric selectors
(``celery_queue_length{queue="default"}``) and the samples of a scrape."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_LABEL_VALUE = r'"((?:[^"\\]|\\.)*)"'
_SELECTOR = re.compile(rf"\s*({_NAME})\s*(?:\{{(.*)\}})?\s*")
_MATCHER = re.compile(rf"\s*({_LABEL_NAME})\s*(=~|!~|!=|=)\s*{_LABEL_VALUE}\s*(?:,|$)")
_SAMPLE_LABEL = re.compile(rf"\s*({_LABEL_NAME})\s*=\s*{_LABEL_VALUE}\s*(,)?")
_ESCAPES = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}

Sample = tuple[str, dict[str, str], float]
"""One sample of a scrape: metric name, labels, value."""


def _unescape(value: str) -> str:
    return re.sub(r"\\[\\\"n]", lambda m: _ESCAPES[m.group(0)], value)


@dataclass(frozen=True, slots=True)
class Selector:
    """A metric name and label matchers (``=``, ``!=``, ``=~``, ``!~``; regexes fully anchored, as
    in PromQL). Build it with :func:`parse_selector`."""

    name: str
    matchers: tuple[tuple[str, str, str], ...] = ()
    """(label, operator, value)."""
    patterns: tuple[re.Pattern[str] | None, ...] = field(default=(), compare=False, repr=False)
    """The compiled regex of each ``=~``/``!~`` matcher (None for the others)."""

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        """True when a sample called ``name`` with ``labels`` is selected (a missing label is "")."""
        if name != self.name:
            return False
        for (label, op, value), pattern in zip(self.matchers, self.patterns, strict=True):
            actual = labels.get(label, "")
            if (op == "=" and actual != value) or (op == "!=" and actual == value):
                return False
            if pattern is not None and (pattern.fullmatch(actual) is None) == (op == "=~"):
                return False
        return True


def parse_selector(text: str) -> Selector:
    """``celery_queue_length{queue="default"}`` -> :class:`Selector`; ValueError says what is wrong."""
    whole = _SELECTOR.fullmatch(text)
    if whole is None:
        raise ValueError(f'{text!r} is not a metric selector such as celery_queue_length{{queue="default"}}')
    name, body = whole.group(1), (whole.group(2) or "").strip()
    matchers: list[tuple[str, str, str]] = []
    patterns: list[re.Pattern[str] | None] = []
    position = 0
    while position < len(body):
        matcher = _MATCHER.match(body, position)
        if matcher is None:
            raise ValueError(f"{text!r}: cannot read the label matcher at {body[position:]!r}")
        label, op, value = matcher.group(1), matcher.group(2), _unescape(matcher.group(3))
        try:
            # as in Prometheus 3: fully anchored, and "." matches a newline too
            patterns.append(re.compile(value, re.DOTALL) if op in ("=~", "!~") else None)
        except re.error as exc:
            raise ValueError(f"{text!r}: bad regular expression for {label}: {exc}") from None
        matchers.append((label, op, value))
        position = matcher.end()
    return Selector(name, tuple(matchers), tuple(patterns))


def parse_exposition(text: str) -> list[Sample]:
    """The samples of a Prometheus text exposition (format 0.0.4, or OpenMetrics: timestamps and
    exemplars are skipped); ValueError names the first malformed line."""
    samples: list[Sample] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head = re.match(_NAME, line)
        if head is None:
            raise ValueError(f"line {number}: no metric name in {raw[:80]!r}")
        labels: dict[str, str] = {}
        position = head.end()
        if line.startswith("{", position):
            position += 1
            while not line[position:].lstrip().startswith("}"):
                pair = _SAMPLE_LABEL.match(line, position)
                if pair is None:
                    raise ValueError(f"line {number}: malformed labels in {raw[:80]!r}")
                labels[pair.group(1)] = _unescape(pair.group(2))
                position = pair.end()
                if not pair.group(3) and not line[position:].lstrip().startswith("}"):
                    raise ValueError(f"line {number}: labels must be separated by commas in {raw[:80]!r}")
            position = line.index("}", position) + 1
        rest = line[position:].split()
        if not rest or rest[0] == "#":
            raise ValueError(f"line {number}: no value in {raw[:80]!r}")
        try:
            value = float(rest[0])
        except ValueError:
            raise ValueError(f"line {number}: value {rest[0]!r} is not a number") from None
        samples.append((head.group(0), labels, value))
    return samples


__all__ = ["Sample", "Selector", "parse_exposition", "parse_selector"]
