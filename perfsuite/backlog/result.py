"""What the backlog watch found (:class:`Backlog`, part of the webhook result's figures) and the
report lines it reads as (:func:`describe_backlog`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, computed_field

from perfsuite.activity import Activity, describe_activity
from perfsuite.backlog.sources import SourceKind
from perfsuite.sections import Line

UNKNOWN = (
    "backlog unknown: the target exposes no queue depth; point target.backlog at the bot's Redis keys, "
    "a Prometheus metric or /health"
)
"""The reason given when there is no backlog source at all."""


class SourceDepth(BaseModel):
    """One source's depth (a Redis key, a metric, a health field)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    source: str
    """What was read: ``redis list zoo:queue``, ``prometheus q{queue="a"}``, ``health URL``."""
    kind: SourceKind
    depth_at_stop: int | None = None
    """None: it could not be read when the load stopped, and was left out (see ``error``)."""
    depth_at_end: int | None = None
    """The last depth read (a failed read keeps the one before)."""
    error: str | None = None
    """Why it could not be read when the load stopped, or why its last failed read failed."""
    failed_reads: int = 0
    """Reads that failed after the first one."""


class Backlog(BaseModel):
    """Queue depth when the load stopped and how it drained (the sum over the readable sources)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    supported: bool = False
    """False when no backlog source could be read (see ``reason``)."""
    depth_at_stop: int | None = None
    depth_at_end: int | None = None
    drain_s: float | None = None
    """Seconds until the queue was empty; None if it did not empty within the timeout."""
    timeout_s: float = 0.0
    reason: str | None = None
    """Why the backlog is unknown (``supported`` False): a warning for the report."""
    sources: tuple[SourceDepth, ...] = ()
    """Each source's own depths, the unreadable ones with their reason."""
    drain_rate_per_s: float | None = None
    """Tasks per second leaving the backlog: minus the slope of a least-squares line through the
    depths read over the watch (negative: it grew); None with fewer than two reads."""
    watched_s: float = 0.0
    """Seconds from the first read to the last."""
    reads: int = 0
    activity: Activity | None = None
    """The bot process's CPU over the watch (None: no process given)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def drained(self) -> bool | None:
        """True when the queue emptied within the timeout (None when the depth is unknown)."""
        return self.depth_at_end == 0 if self.supported else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def estimated_drain_s(self) -> float | None:
        """Seconds the backlog left at the end of the watch still needs at the observed rate (None
        when it drained, is unknown or is not draining)."""
        rate = self.drain_rate_per_s
        if not self.supported or not self.depth_at_end or rate is None or rate <= 0:
            return None
        return round(self.depth_at_end / rate, 1)


def human_duration(seconds: float) -> str:
    """``45 s``, ``13 minutes``, ``2.5 hours``, ``3.1 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


def _rate(per_s: float) -> str:
    if per_s >= 10:
        return f"~{per_s:,.0f}/s"
    return f"~{per_s:.1f}/s" if per_s >= 1 else f"~{per_s:.2f}/s"


def _verdict(backlog: Backlog) -> Line:
    rate = backlog.drain_rate_per_s
    stop, end = backlog.depth_at_stop or 0, backlog.depth_at_end or 0
    if not backlog.supported:
        return Line(backlog.reason or UNKNOWN, "warn")
    if backlog.drained:
        speed = f" ({_rate(rate)})" if rate and rate > 0 and stop else ""
        return Line(f"{stop:,} queued when the load stopped, drained in {backlog.drain_s:g} s{speed}", "ok")
    if not backlog.timeout_s:
        return Line(f"{stop:,} queued when the load stopped (drain not watched)", "bad")
    head = f"{end:,} still queued {backlog.watched_s:.0f} s after the load ({stop:,} at stop)"
    if backlog.estimated_drain_s is not None and rate is not None:
        eta = human_duration(backlog.estimated_drain_s)
        return Line(f"{head}, draining at {_rate(rate)}: about {eta} more to empty", "bad")
    if rate is not None and rate < 0:
        return Line(f"{head}, growing at {_rate(-rate)}", "bad")
    return Line(f"{head}, not draining", "bad")


def describe_backlog(backlog: Backlog) -> list[Line]:
    """The report lines for ``backlog``: the verdict; each source when there are several, one failed
    or some reads failed; the bot process's activity."""
    found = [_verdict(backlog)]
    several = len(backlog.sources) > 1
    for source in backlog.sources:
        if source.depth_at_stop is None:
            if backlog.supported:  # an unknown backlog's reason already names every failure
                found.append(Line(f"  {source.source}: not read: {source.error}", "warn"))
        elif several or source.failed_reads:
            failed = f" ({source.failed_reads} reads failed: {source.error})" if source.failed_reads else ""
            found.append(
                Line(
                    f"  {source.source}: {source.depth_at_stop:,} at stop, "
                    f"{source.depth_at_end or 0:,} at the end{failed}",
                    "",
                )
            )
    if backlog.activity is not None:
        found.append(describe_activity(backlog.activity))
    return found


__all__ = ["UNKNOWN", "Backlog", "SourceDepth", "describe_backlog", "human_duration"]
