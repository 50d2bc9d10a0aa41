"""The stall test: a target frozen with SIGSTOP for S seconds every T seconds under a constant arrival
rate. The corrected P99 lands within 10% of the analytic S - 0.01·T, the uncorrected one (from the
actual send) shows the gap coordinated omission would leave, and the late arrivals are counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.arrival_target import Staller, TargetProcess, analytic_stall_p99_s
from tests.test_arrival_locust import QUIET_TRAFFIC, perfsuite_run

STALL_S, PERIOD_S, CYCLES, RATE_PER_S, SERVICE_MS = 0.5, 5.0, 3, 200, 2.0


@pytest.mark.serial
@pytest.mark.slow
def test_stalled_target_corrected_p99_matches_the_analytic_value(redis_url: str, tmp_path: Path) -> None:
    """200 arrivals/s (uniform) for 3 cycles of a target that answers in 2 ms but freezes 0.5 s every
    5 s, through 5 slots (as 5 closed-model users would have): the corrected P99 is within 10% of
    0.5 - 0.01·5 = 0.45 s (plus the service time); the uncorrected P99, from the actual send, misses
    the stalls (the arrivals that waited for a slot were sent after the stall), and the arrivals that
    waited and started late are counted and reported; none was dropped."""
    target = TargetProcess(SERVICE_MS)
    staller = Staller(target.pid, STALL_S, PERIOD_S).start()  # runs across the whole Locust run
    config = QUIET_TRAFFIC + "arrival:\n  distribution: uniform\n  max_concurrency: 5\n"
    try:
        result, report = perfsuite_run(
            redis_url, target.url, tmp_path, config, "--arrival-rate", str(RATE_PER_S),
            "--run-time", str(PERIOD_S * CYCLES), "--run-id", "arrival-stall",
        )  # fmt: skip
    finally:
        staller.stop()
        target.stop()
    latency, arrival = result["figures"]["latency"], result["figures"]["arrival"]
    analytic_ms = analytic_stall_p99_s(STALL_S, PERIOD_S) * 1000 + SERVICE_MS
    corrected_p99, uncorrected_p99 = latency["corrected"]["p99_ms"], latency["uncorrected"]["p99_ms"]
    figures = (corrected_p99, uncorrected_p99, analytic_ms, arrival, latency["generator"])
    assert abs(corrected_p99 - analytic_ms) <= 0.10 * analytic_ms, figures
    assert uncorrected_p99 < 0.25 * analytic_ms, figures
    assert latency["uncorrected"]["max_ms"] >= 0.8 * STALL_S * 1000  # the requests in flight did see it
    assert arrival["scheduled"] == arrival["sent"] == RATE_PER_S * PERIOD_S * CYCLES
    assert arrival["dropped"] == arrival["unsent"] == 0
    # Each stall leaves ~100 arrivals; all but the 5 in flight wait for a slot and start late.
    assert arrival["waited"] >= CYCLES * 0.7 * (RATE_PER_S * STALL_S - 5), figures
    assert arrival["late"] >= arrival["waited"] * 0.9
    assert arrival["max_in_flight"] == 5
    assert (
        f"{arrival['late']:,} late (> 10 ms)" in report
        and f"{arrival['waited']:,} waited for a slot" in report
    )
