"""Arrival-rate load end to end: ``perfsuite run --arrival-rate R --run-time S`` (real Locust processes,
real HTTP, real Redis) against a target with a known service time (tests/arrival_target.py).

Fidelity: the reported percentiles match the service times the target really spent (its own exact
record) within 2%; late, waiting and dropped arrivals are counted and make the verdict untrustworthy
when they should; the closed model gets HDR's expected-interval correction; master + workers split
the rate. The stall test (the target frozen with SIGSTOP) is in test_arrival_stall.py.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from perfsuite.collector import CollectorReader
from perfsuite.registry import json_schema
from tests.arrival_target import TargetProcess

JSON_SCHEMA = json_schema()

REPO = Path(__file__).resolve().parent.parent
QUIET_TRAFFIC = "traffic:\n  invalid_signature_rate: 0\n  duplicate_rate: 0\ntarget:\n  probe: false\n"
"""The target accepts every signature: no deliberately bad ones (they would count as failures), and
no signature probe (its five requests would reach the target's own record of service times)."""


def perfsuite_run(
    redis_url: str, host: str, tmp_path: Path, config_yaml: str, *args: str, timeout_s: float = 120
) -> tuple[dict[str, Any], str]:
    """Run ``perfsuite run`` against ``host`` with ``config_yaml`` as scenarios.yaml; the JSON result
    and the printed report."""
    config = tmp_path / "scenarios.yaml"
    # (A file without scenarios.default makes the Locust processes exit 64: see the report to the lead.)
    config.write_text("version: 1\nscenarios:\n  default: {}\n" + config_yaml)
    out = tmp_path / "result.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "TWILIO_AUTH_TOKEN", "PERFSUITE_OVERRIDES")
    }
    env.update(REDIS_URL=redis_url, TWILIO_AUTH_TOKEN="t" * 32)
    done = subprocess.run(
        [sys.executable, "-m", "perfsuite", "run", "--test-type", "webhook", "--config", str(config),
         "--host", host, "--output-file", str(out), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip
    assert done.returncode in (0, 1, 2), done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def nearest_rank_ms(values_us: list[int], percentile: float) -> float:
    """The ``percentile`` of exact values by the nearest-rank rule HDR histograms follow, in ms."""
    ordered = np.sort(np.asarray(values_us))
    return float(ordered[max(1, math.ceil(percentile / 100 * len(ordered))) - 1]) / 1000


def locust_percentile_ms(stats: list[dict[str, Any]], percentile: float) -> float:
    """Locust's own percentile from its --json-file stats (its rounded response-time buckets)."""
    counts: dict[float, int] = {}
    for entry in stats:
        for bucket, count in entry["response_times"].items():
            counts[float(bucket)] = counts.get(float(bucket), 0) + int(count)
    total = sum(counts.values())
    processed = 0
    for bucket in sorted(counts, reverse=True):  # locust.stats.calculate_response_time_percentile
        processed += counts[bucket]
        if total - processed <= int(total * percentile / 100):
            return bucket
    return 0.0


@pytest.mark.serial
def test_reported_percentiles_match_the_known_service_time(redis_url: str, tmp_path: Path) -> None:
    """Poisson arrivals at 50/s for 8 s against a target that spends 200 ms on each request and 1,234 ms
    on every 20th: corrected and uncorrected P50 and P99 lie within 2% of the percentiles of the service
    times the target itself recorded, while Locust's own P99 (rounded to two digits: 1,200 ms) is off by
    more than 2%. The JSON result carries both figures and the trust verdict."""
    target = TargetProcess(200, tail_every=20, tail_ms=1234, times_file=tmp_path / "service_times.txt")
    try:
        result, report = perfsuite_run(
            redis_url, target.url, tmp_path, QUIET_TRAFFIC, "--arrival-rate", "50", "--run-time", "8",
            "--run-id", "arrival-fidelity",
        )  # fmt: skip
    finally:
        service_times_us = target.stop()
    jsonschema.validate(result, JSON_SCHEMA)
    latency, arrival = result["figures"]["latency"], result["figures"]["arrival"]
    assert latency["model"] == "open" and latency["correction"] == "intended-start"
    assert isinstance(latency["trustworthy"], bool)
    assert latency["trustworthy"] or latency["untrustworthy_reasons"]
    assert len(service_times_us) == arrival["sent"] == result["collector"]["requests"] > 300
    assert result["collector"]["exact"]
    for percentile, key in ((50, "p50_ms"), (99, "p99_ms")):
        truth = nearest_rank_ms(service_times_us, percentile)
        for figure in ("corrected", "uncorrected"):
            reported = latency[figure][key]
            assert truth <= reported <= truth * 1.02, (figure, key, reported, truth, latency["generator"])
    assert result["summary"]["p99_ms"] == pytest.approx(latency["corrected"]["p99_ms"])
    locust_stats = json.loads((REPO / ".perfsuite" / "logs" / "arrival-fidelity-locust.json").read_text())
    locust_p99 = locust_percentile_ms(locust_stats, 99)
    truth_p99 = nearest_rank_ms(service_times_us, 99)
    assert abs(locust_p99 - truth_p99) > 0.02 * truth_p99, (locust_p99, truth_p99)
    assert arrival["scheduled"] == arrival["sent"] and arrival["dropped"] == arrival["unsent"] == 0
    assert abs(arrival["scheduled"] - 400) < 5 * math.sqrt(400)  # Poisson count
    assert "uncorrected: from the actual send" in report and "latency figures:" in report


def test_full_pool_waits_drops_and_marks_latency_untrustworthy(redis_url: str, tmp_path: Path) -> None:
    """100 arrivals/s at a 50 ms target through 2 slots (at most 40/s) and a waiting queue of 3: the
    arrivals that waited, started late or were dropped are counted (every scheduled arrival is either
    sent, dropped or unsent), drops are marked in the collector, and the verdict is untrustworthy
    with the reasons (drops, and the generator's CPU over a deliberately tiny limit)."""
    target = TargetProcess(50)
    config = QUIET_TRAFFIC + (
        "arrival:\n  distribution: uniform\n  max_concurrency: 2\n  max_waiting: 3\n  max_cpu_percent: 0.5\n"
    )
    try:
        result, report = perfsuite_run(
            redis_url, target.url, tmp_path, config, "--arrival-rate", "100", "--run-time", "3",
            "--run-id", "arrival-drops",
        )  # fmt: skip
    finally:
        target.stop()
    arrival, latency = result["figures"]["arrival"], result["figures"]["latency"]
    assert arrival["scheduled"] == 300  # uniform: exactly rate x duration
    assert arrival["sent"] + arrival["dropped"] + arrival["unsent"] == arrival["scheduled"]
    assert arrival["max_in_flight"] == 2 and arrival["max_waiting"] == 3
    assert arrival["dropped"] > 100 and arrival["waited"] > 0 and arrival["late"] > 0
    assert arrival["sent"] - arrival["abandoned"] == result["collector"]["requests"]
    drops = CollectorReader(redis_url).load("arrival-drops").marks("arrival_drops")
    assert int(drops["dropped"].sum()) == arrival["dropped"]
    assert latency["trustworthy"] is False
    reasons = " ".join(latency["untrustworthy_reasons"])
    assert f"{arrival['dropped']:,} arrivals dropped" in reasons and "generator CPU" in reasons
    assert "UNTRUSTWORTHY" in report and "waited for a slot" in report
    assert any("latency figures untrustworthy" in warning for warning in result["warnings"])
    # The waiting arrivals' latency runs from their intended start: far above the 50 ms service time.
    assert latency["corrected"]["p50_ms"] > 2 * latency["uncorrected"]["p50_ms"]


@pytest.mark.serial
def test_closed_model_gets_hdr_expected_interval_correction(redis_url: str, tmp_path: Path) -> None:
    """The seed's closed profile (5 users x 20 messages, 50-200 ms think time) against a target that
    answers in 50 ms and takes 1 s on every 10th request: the steady stage is corrected with HDR's
    expected interval (mean think time + median response time) and reported as such; the corrected
    figures hold the requests the waiting users did not send, so their P90 is far above the measured."""
    target = TargetProcess(50, tail_every=10, tail_ms=1000)
    config = QUIET_TRAFFIC + "webhook:\n  enable_burst_testing: false\n"
    try:
        result, report = perfsuite_run(
            redis_url,
            target.url,
            tmp_path,
            config,
            "--users",
            "5",
            "--requests-per-user",
            "20",
            "--ramp-up",
            "1",
        )
    finally:
        target.stop()
    latency = result["figures"]["latency"]
    assert result["figures"]["arrival"] is None
    assert latency["model"] == "closed" and latency["correction"] == "hdr-expected-interval"
    measured, corrected = latency["uncorrected"], latency["corrected"]
    assert latency["expected_interval_ms"] == pytest.approx(125 + measured["p50_ms"], rel=1e-6)
    assert corrected["count"] > measured["count"] >= 90
    assert measured["p90_ms"] < 100 < corrected["p90_ms"]
    assert "HDR's expected interval" in report


@pytest.mark.slow
def test_master_and_workers_split_the_rate(redis_url: str, tmp_path: Path) -> None:
    """A master and two workers with a uniform ramp 40/s -> 80/s over 4 s: the two workers send their
    shares of exactly the planned 240 arrivals, and the collector holds every request."""
    target = TargetProcess(5)
    config = QUIET_TRAFFIC + "arrival:\n  distribution: uniform\n  ramp_to_rate_per_s: 80\n"
    try:
        result, _ = perfsuite_run(
            redis_url, target.url, tmp_path, config, "--arrival-rate", "40", "--run-time", "4",
            "--workers", "2", "--run-id", "arrival-distributed",
        )  # fmt: skip
    finally:
        target.stop()
    arrival = result["figures"]["arrival"]
    assert arrival["processes"] == 2 and arrival["planned"] == 240
    assert arrival["scheduled"] == arrival["sent"] == 240
    assert result["collector"]["requests"] == 240 and result["collector"]["exact"]
    assert (
        result["figures"]["latency"]["generator"]["processes"] == 2
    )  # both workers monitored, not the master
    starts = CollectorReader(redis_url).load("arrival-distributed").marks("arrival_start")
    assert sorted(starts["slot"].astype(int)) == [0, 1] and set(starts["slots"].astype(int)) == {2}


@pytest.mark.slow
def test_a_distributed_time_bounded_run_counts_the_requests_in_flight_at_its_end(
    redis_url: str, tmp_path: Path
) -> None:
    """A master and two workers, the closed model bounded by --run-time, against a target that takes
    700 ms per request: users are in their requests when the time is up. Locust's own total still
    holds them (the master stops the test and waits for the workers' last reports before it quits;
    it used to quit after 0.5 s and miss them), so it equals the collector's and the run is exact."""
    target = TargetProcess(700)
    config = QUIET_TRAFFIC + "webhook:\n  enable_burst_testing: false\n"
    try:
        result, _ = perfsuite_run(
            redis_url, target.url, tmp_path, config, "--workers", "2", "--users", "10", "--ramp-up", "1",
            "--run-time", "4",
        )  # fmt: skip
    finally:
        target.stop()
    collector = result["collector"]
    assert collector["requests"] == collector["locust_requests"] > 20, collector
    assert collector["exact"] and result["exit_code"] == 0, collector
