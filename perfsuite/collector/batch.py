"""The batch: what one writer flush stores in one Redis hash field (zlib-compressed JSON).

```
{"v": 1, "writer": "<writer_id>", "seq": 7, "written_at": <epoch s>,
 "cells": [{"s": <epoch second>, "t": <request_type>, "n": <name>,
            "c": [success, rejected, backpressure, failure], "b": <response bytes>,
            "r": {<failure reason>: count}, "x": <clamped values>,
            "h": {"rt": "HISTF...", "ttfb": "HISTF...", ...}}],
 "marks": [{"at": <epoch s>, "kind": "stage", "fields": {...}}],
 "rows": [[at_s, request_type, name, latency_us, outcome, response_length], ...]}
```

A cell is one (second, request_type, name); the same cell may appear in several batches and several
writers, the reader adds them up. Histograms use the standard HdrHistogram encoding.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

OUTCOMES: tuple[str, ...] = ("success", "rejected", "backpressure", "failure")
"""Request outcomes, in the order of a cell's count list: success, expected rejection (e.g. a bad
signature answered 403), backpressure (429/503 with Retry-After), failure."""

OUTCOME_INDEX: dict[str, int] = {outcome: i for i, outcome in enumerate(OUTCOMES)}

ANSWERED_AS_INTENDED: tuple[str, ...] = ("success", "rejected")
"""Outcomes that count as answered as intended: the **success rate** is their share of the requests
judged (:func:`success_rate`). A rejection is the expected refusal of a request the generator meant
to be refused (a bad signature); requests a test deliberately sends into an injected fault, or that
our own client refused without sending, are not judged (``excluded``)."""


def success_rate(success: int, rejected: int, requests: int) -> float | None:
    """The success rate, the one definition every test type and report uses: ``(success + rejected)
    / requests``; None without requests."""
    return (success + rejected) / requests if requests else None


FORMAT_VERSION = 1
"""Batch format version written in field ``v``."""


def encode_batch(batch: dict[str, Any]) -> bytes:
    """The stored form of a batch: compact JSON, zlib level 6. Non-JSON mark values become strings."""
    return zlib.compress(json.dumps(batch, separators=(",", ":"), default=str).encode(), 6)


def decode_batch(blob: bytes) -> dict[str, Any]:
    """A batch dict from its stored form; ValueError when it is not one."""
    try:
        batch = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError) as exc:
        raise ValueError(f"not a collector batch: {exc}") from exc
    if not isinstance(batch, dict) or batch.get("v") != FORMAT_VERSION:
        raise ValueError("not a collector batch of format version 1")
    return batch


__all__ = [
    "ANSWERED_AS_INTENDED",
    "FORMAT_VERSION",
    "OUTCOMES",
    "OUTCOME_INDEX",
    "decode_batch",
    "encode_batch",
    "success_rate",
]
