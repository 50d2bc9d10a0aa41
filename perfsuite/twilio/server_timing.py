"""Server-Timing headers (``db;dur=1.2;desc="x", app;dur=0.3``): the bot's own timing breakdown."""

from __future__ import annotations

import math
import re

_METRIC_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DURATION = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _split_unquoted(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside double-quoted strings (which may contain backslash escapes)."""
    parts: list[str] = []
    start, quoted, escaped = 0, False, False
    for position, char in enumerate(text):
        if escaped:
            escaped = False
        elif quoted:
            if char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == separator:
            parts.append(text[start:position])
            start = position + 1
    parts.append(text[start:])
    return parts


def parse_server_timing(header: str | None) -> dict[str, float]:
    """Durations (milliseconds) from a Server-Timing header: ``db;dur=1.2;desc="x", app;dur=0.3``.

    Metrics without a usable ``dur`` are left out; a metric named twice has its durations added;
    the first ``dur`` of a metric wins (as the spec says). Malformed parts are skipped, never raised.
    """
    durations: dict[str, float] = {}
    if not header:
        return durations
    for metric in _split_unquoted(header, ","):
        name, *metric_params = _split_unquoted(metric, ";")
        name = name.strip()
        if not _METRIC_NAME.fullmatch(name):
            continue
        for param in metric_params:
            key, has_value, value = param.partition("=")
            if key.strip().lower() != "dur" or not has_value:
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].strip()
            if _DURATION.fullmatch(value):
                duration_ms = float(value)
                if math.isfinite(duration_ms):
                    durations[name] = durations.get(name, 0.0) + duration_ms
            break
    return durations


__all__ = ["parse_server_timing"]
