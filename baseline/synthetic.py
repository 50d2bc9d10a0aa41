"""Synthetic runs written through the real collector writer (tests, benchmarks, golden inputs).

A :class:`SyntheticProfile` describes a run: its length, its request rate, a log-normal latency
distribution, a per-second latency drift (real runs wander from second to second), a whole-run
level drawn per run (runs differ by machine load, caches...), an optional burst, a failure share
and a slowdown factor, an optional fault window (with the failures it causes while open and for a
while after the heal) and optional capacity steps (:class:`SyntheticStep`); :func:`write_run`
records every request through ``CollectorWriter.record`` into Redis (with stage marks and
fault-window marks) and creates and finishes the run's metadata as ``perfsuite run`` does. Same
seed, same run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from perfsuite.collector import DEFAULT_PREFIX, CollectorWriter, create_run, finish_run
from perfsuite.marks import FAULT_END, FAULT_START, STAGE, Stage


@dataclass(frozen=True, slots=True)
class SyntheticStep:
    """One step of a capacity progression: its users, length, request rate, latency and failures."""

    users: int
    seconds: int
    rps: int
    median_ms: float
    failure_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class SyntheticProfile:
    """The shape of a synthetic run."""

    seconds: int = 60
    rps: int = 200
    """Requests per second (all names together)."""
    median_ms: float = 20.0
    sigma: float = 0.5
    """Shape of the log-normal latency distribution."""
    drift: float = 0.15
    """Standard deviation of the per-second log latency factor (second-to-second wander)."""
    slowdown: float = 1.0
    """Multiplies every latency (1.3 = a 30% slowdown)."""
    run_drift: float = 0.0
    """Standard deviation of a log latency factor drawn once per run (``seed``) and applied to every
    request: the variation *between* runs that no interval inside one run shows."""
    failure_rate: float = 0.0
    rejected_rate: float = 0.0
    """Share answered with an expected rejection (a 403 to a bad signature)."""
    burst_at_s: int | None = None
    """Second at which a burst starts (None: no burst)."""
    burst_seconds: int = 2
    burst_factor: float = 4.0
    """Burst seconds carry this many times the requests, each this many times slower."""
    fault_at_s: int | None = None
    """Second at which a fault window opens (marks ``fault_start`` / ``fault_end``)."""
    fault_seconds: int = 5
    fault_failure_rate: float = 0.0
    """Share of the requests that fail while the fault window is open ..."""
    fault_after_seconds: int = 0
    """... and for this many seconds after the heal (the system recovering)."""
    fault_name: str = "redis-pause"
    steps: tuple[SyntheticStep, ...] = ()
    """Capacity steps after the first ``seconds`` (that phase is then the outage phase: its stage mark
    is ``steady`` with ``phase="outages"``), each opened by a ``step`` stage mark."""
    names: tuple[str, ...] = ("webhook text", "webhook document", "webhook image")
    request_type: str = "POST"


def write_run(
    redis_url: str,
    run_id: str,
    profile: SyntheticProfile,
    *,
    seed: int = 0,
    key_prefix: str = DEFAULT_PREFIX,
    test_type: str = "webhook",
    scenario: str = "synthetic",
    start_s: int | None = None,
    spill_dir: Path = Path(".perfsuite") / "spill",
    config_json: str = "{}",
) -> int:
    """Record one synthetic run into the collector at ``redis_url``; returns its request count.

    ``start_s`` (epoch seconds) places the run in time (default: ending 10 s ago).
    """
    rng = np.random.default_rng(seed)
    # a separate stream, so runs without a run-level drift are exactly what they always were
    run_factor = float(np.exp(np.random.default_rng([seed, 1]).normal(0.0, profile.run_drift)))
    length_s = profile.seconds + sum(step.seconds for step in profile.steps)
    start = int(time.time()) - length_s - 10 if start_s is None else int(start_s)
    create_run(
        redis_url,
        key_prefix,
        run_id,
        test_type,
        scenario,
        "http://synthetic",
        config_json,
        started_at=datetime.fromtimestamp(start, UTC),
    )
    writer = CollectorWriter(redis_url, run_id, key_prefix=key_prefix, spill_dir=spill_dir, start=False)
    record = writer.record
    names = profile.names
    total = 0
    if profile.steps:
        first_users = profile.steps[0].users
        writer.mark(STAGE, at_s=start, name=Stage.STEADY, phase="outages", users=first_users)
    else:
        writer.mark(STAGE, at_s=start, name=Stage.RAMP)
    fault_until = (
        profile.fault_at_s + profile.fault_seconds + profile.fault_after_seconds
        if profile.fault_at_s is not None
        else None
    )

    def one_second(second: int, rps: float, median_ms: float, failure_rate: float, in_burst: bool) -> int:
        n = int(rps * (profile.burst_factor if in_burst else 1.0))
        factor = float(np.exp(rng.normal(0.0, profile.drift))) * profile.slowdown * run_factor
        if in_burst:
            factor *= profile.burst_factor
        latencies_us = (rng.lognormal(np.log(median_ms * 1000.0), profile.sigma, n) * factor).tolist()
        outcome_draw = rng.random(n)
        which = rng.integers(0, len(names), n)
        at = start + second + 0.5
        for i in range(n):
            draw = outcome_draw[i]
            outcome = (
                "failure"
                if draw < failure_rate
                else "rejected"
                if draw < failure_rate + profile.rejected_rate
                else "success"
            )
            record(
                profile.request_type,
                names[which[i]],
                latencies_us[i],
                at_s=at,
                outcome=outcome,
                error="HTTP 500" if outcome == "failure" else None,
            )
        if second % 60 == 59:
            writer.flush()
        return n

    for second in range(profile.seconds):
        in_burst = (
            profile.burst_at_s is not None
            and profile.burst_at_s <= second < profile.burst_at_s + profile.burst_seconds
        )
        if profile.burst_at_s is not None and second == profile.burst_at_s:
            writer.mark(STAGE, at_s=start + second, name=Stage.BURST)
        if profile.burst_at_s is not None and second == profile.burst_at_s + profile.burst_seconds:
            writer.mark(STAGE, at_s=start + second, name=Stage.STEADY)
        fault = {"fault": profile.fault_name, "driver": "proxy", "target": "redis"}
        if profile.fault_at_s is not None and second == profile.fault_at_s:
            writer.mark(FAULT_START, at_s=start + second, **fault)
        if profile.fault_at_s is not None and second == profile.fault_at_s + profile.fault_seconds:
            writer.mark(FAULT_END, at_s=start + second, **fault)
        failing = (
            profile.fault_at_s is not None
            and fault_until is not None
            and profile.fault_at_s <= second < fault_until
        )
        failure_rate = profile.fault_failure_rate if failing else profile.failure_rate
        total += one_second(second, profile.rps, profile.median_ms, failure_rate, in_burst)
    second = profile.seconds
    for index, step in enumerate(profile.steps, start=1):
        writer.mark(STAGE, at_s=start + second, name=Stage.STEP, step=index, users=step.users)
        for _ in range(step.seconds):
            total += one_second(second, step.rps, step.median_ms, step.failure_rate, False)
            second += 1
    writer.mark(STAGE, at_s=start + length_s, name=Stage.DONE)
    writer.close()
    finish_run(redis_url, key_prefix, run_id, "finished", locust_total_requests=total)
    return total


__all__ = ["SyntheticProfile", "SyntheticStep", "write_run"]
