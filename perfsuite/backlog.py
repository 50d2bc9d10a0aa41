"""After the load stops, watch the target's queue drain (a bot that acks fast but piles up work
is not healthy: the seed's suite reported success while the queue grew for half an hour)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from pydantic import BaseModel, ConfigDict, computed_field


class Backlog(BaseModel):
    """Queue depth when the load stopped and how it drained."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    supported: bool = False
    """False when the target exposes no queue depth (no health URL or no such field)."""
    depth_at_stop: int | None = None
    depth_at_end: int | None = None
    drain_s: float | None = None
    """Seconds until the queue was empty; None if it did not empty within the timeout."""
    timeout_s: float = 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def drained(self) -> bool | None:
        """True when the queue emptied within the timeout (None when the depth is unknown)."""
        return self.depth_at_end == 0 if self.supported else None


def queue_depth(health: Any) -> int | None:
    """The queue depth in a health document (``queue.depth``, ``queue_depth`` or ``backlog``)."""
    if not isinstance(health, dict):
        return None
    queue = health.get("queue")
    if isinstance(queue, dict) and isinstance(queue.get("depth"), int):
        return int(queue["depth"])
    for key in ("queue_depth", "backlog"):
        if isinstance(health.get(key), int):
            return int(health[key])
    return None


def read_depth(health_url: str, timeout_s: float = 2.0) -> int | None:
    """Fetch ``health_url`` and return its queue depth, or None."""
    try:
        with urllib.request.urlopen(health_url, timeout=timeout_s) as response:
            return queue_depth(json.loads(response.read()))
    except (OSError, ValueError):
        return None


def watch_backlog(health_url: str | None, timeout_s: float, poll_s: float = 0.25) -> Backlog:
    """Poll the target's health until its queue is empty or ``timeout_s`` passes."""
    if not health_url:
        return Backlog(supported=False, timeout_s=timeout_s)
    started = time.monotonic()
    first = depth = read_depth(health_url)
    if first is None:
        return Backlog(supported=False, timeout_s=timeout_s)
    while depth is not None and depth > 0 and time.monotonic() - started < timeout_s:
        time.sleep(poll_s)
        depth = read_depth(health_url)
    drain_s = round(time.monotonic() - started, 3) if depth == 0 else None
    return Backlog(
        supported=True, depth_at_stop=first, depth_at_end=depth, drain_s=drain_s, timeout_s=timeout_s
    )


__all__ = ["Backlog", "queue_depth", "read_depth", "watch_backlog"]
