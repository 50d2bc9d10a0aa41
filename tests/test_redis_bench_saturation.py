"""The Redis benchmark never blames Redis for its own generator: when the benchmark's Locust process
ran out of CPU (closed loop, clients sending without pause), the latency checks say the figures were
measured by a saturated generator and a warning says why and what to change. A recorded run of the
benchmark, judged once as recorded and once with its worker marked saturated."""

from __future__ import annotations

import json
from pathlib import Path

from perfsuite.config import load_config
from perfsuite.registry import get, load_result
from perfsuite.report import render
from perfsuite.result import RunResult
from perfsuite.worker_health import WorkerHealth

RECORDED = Path(__file__).resolve().parent / "golden" / "result_v1" / "redis_v1.json"
LATENCY = {"Redis average latency", "Redis P99 latency"}


def _worker(saturated: bool) -> WorkerHealth:
    reasons = (
        ("CPU reached 101% (limit 90%)", "event-loop lag P99 24.0 ms (limit 10 ms)") if saturated else ()
    )
    return WorkerHealth(
        client_id="local",
        host="vm",
        writer_id="vm-4242-abc",
        pid=4242,
        requests=100_000,
        share=1.0,
        closed=True,
        reported_requests=100_000,
        cpu_max_percent=101.0 if saturated else 40.0,
        loop_lag_p99_ms=24.0 if saturated else 1.0,
        loop_lag_max_ms=120.0 if saturated else 2.0,
        heartbeat_gap_max_s=0.0,
        joined_at_s=None,
        last_heartbeat_at_s=None,
        lost_at_s=None,
        saturated=saturated,
        saturation_reasons=reasons if saturated else (),
    )


def _judged(saturated: bool) -> RunResult:
    config = load_config(environ={})
    recorded = load_result(json.loads(RECORDED.read_text()), RECORDED.name)
    result = recorded.model_copy(update={"workers": (_worker(saturated),)})
    test_type = get("redis")
    return result.model_copy(
        update={
            "checks": tuple(test_type.checks(config, result)),
            "warnings": tuple(test_type.warnings(config, result)),
        }
    )


def test_a_saturated_generator_is_named_on_the_latency_checks_and_warned_about() -> None:
    """Saturated: both latency checks carry the note (in the terminal report too), the other checks
    do not, and one warning names the process, its CPU and lag, and what to change."""
    result = _judged(saturated=True)
    noted = {check.name for check in result.checks if "saturated generator" in check.note}
    assert noted == LATENCY
    warning = next(w for w in result.warnings if "was saturated" in w)
    assert "pid 4242" in warning and "CPU reached 101%" in warning and "lag P99 24.0 ms" in warning
    assert "measure the generator" in warning and "redis_bench.concurrent_operations" in warning
    text = render(result)
    assert "Redis average latency [4.2]" in text and "measured by a saturated generator" in text


def test_a_generator_that_kept_up_leaves_the_latency_checks_plain() -> None:
    """Not saturated: no note on any check, no such warning; the checks' verdicts are the same."""
    plain, saturated = _judged(saturated=False), _judged(saturated=True)
    assert all(not check.note for check in plain.checks if check.name in LATENCY)
    assert not any("was saturated" in warning for warning in plain.warnings)
    assert [check.met for check in plain.checks] == [check.met for check in saturated.checks]
