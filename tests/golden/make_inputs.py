"""Regenerate the comparator's golden INPUT files (result documents with intervals).

Not a test: run it only to change the inputs, then regenerate the expected outputs with
``PERFSUITE_UPDATE_GOLDEN=1 pytest tests/test_baseline_golden.py`` and review the diff.

    python tests/golden/make_inputs.py [NAME ...]   # e.g. capacity

With names, only those inputs are (re)written (the others keep their bytes).
Runs are synthesized through the real collector writer into a private Redis at fixed times, read
back with ``RunHistory.result`` (the same path as ``perfsuite report RUN --format json``) and
written as result documents (the files checked in first were version-1 ones, which version 2 still
reads; those added later, `legacy_again` and `optimized_earlier_*`, are version 2). The capacity
file is a version-2 document whose figures are the capacity test type's own model
(:class:`capacity.figures.CapacityFigures`), built here field by field.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from baseline.synthetic import SyntheticProfile, write_run
from capacity.figures import Capacity, CapacityFigures, Knee, Outage, OutageBacklog, Pool, Resources, Step
from perfsuite.embedded import start_redis
from perfsuite.history import RunHistory
from perfsuite.result import CollectorIntegrity, RunResult, Summary, Target

HERE = Path(__file__).resolve().parent / "comparator" / "inputs"
START_S = 1_790_000_000
"""Fixed epoch second every synthetic run starts at (so the files never change by themselves)."""

BASE = SyntheticProfile(seconds=30, rps=100, sigma=0.5, drift=0.1)
WEBHOOK_RUNS: dict[str, tuple[SyntheticProfile, int]] = {
    "legacy": (
        dataclasses.replace(BASE, median_ms=80.0, burst_at_s=24, burst_seconds=2, burst_factor=2.0),
        1,
    ),
    "optimized": (dataclasses.replace(BASE, median_ms=8.0, rejected_rate=0.02), 2),
    "optimized_again": (dataclasses.replace(BASE, median_ms=8.0, rejected_rate=0.02), 3),
    "optimized_slower": (dataclasses.replace(BASE, median_ms=8.0, slowdown=1.3, rejected_rate=0.02), 4),
    "slow_a": (dataclasses.replace(BASE, median_ms=460.0, sigma=0.45), 5),
    "slow_b": (dataclasses.replace(BASE, median_ms=460.0, sigma=0.45), 6),
    "poor": (dataclasses.replace(BASE, median_ms=600.0, sigma=0.6, failure_rate=0.004), 7),
    "legacy_again": (
        dataclasses.replace(BASE, median_ms=80.0, burst_at_s=24, burst_seconds=2, burst_factor=2.0),
        8,
    ),
}
EARLIER_RUNS: dict[str, tuple[SyntheticProfile, int]] = {
    f"optimized_earlier_{i}": (dataclasses.replace(BASE, median_ms=8.0, rejected_rate=0.02), 20 + i)
    for i in range(1, 5)
}
"""Earlier runs of the optimized build (the history a comparison's baseline is joined by); they
start before every run above, oldest first."""

REDIS_DOCUMENT: dict[str, Any] = {
    "schema": "perfsuite.result/1",
    "test_type": "redis",
    "run_id": "golden-redis",
    "scenario": "golden",
    "host": "redis://127.0.0.1:6399/0",
    "started_at": "2026-09-21T10:13:20.000+00:00",
    "stopped_at": "2026-09-21T10:13:50.000+00:00",
    "grade": "EXCELLENT",
    "exit_code": 0,
    "interrupted": False,
    "summary": {
        "requests": 60000,
        "success": 59990,
        "failure": 10,
        "success_rate": 0.999833,
        "avg_ms": 0.42,
        "p50_ms": 0.31,
        "p95_ms": 1.2,
        "p99_ms": 3.9,
        "max_ms": 12.5,
        "rps": 2000.0,
    },
    "endpoints": [],
    "timings": {},
    "checks": [
        {
            "name": "Redis P99 latency",
            "actual": 3.9,
            "comparison": "<=",
            "target": 50.0,
            "unit": "ms",
            "requirement": "4.2",
            "critical": False,
            "met": True,
        },
        {
            "name": "pool never exhausted",
            "actual": 0.0,
            "comparison": "==",
            "target": 0.0,
            "unit": "waits",
            "requirement": "5.2",
            "critical": False,
            "met": True,
        },
    ],
    "collector": {"requests": 60000, "locust_requests": 60000, "exact": True, "writers_complete": True},
    "backlog": {},
    "failure_reasons": [],
    "warnings": [],
    "config": {},
    "redis": {"operations_sent": 60000, "organic_failures": 10, "per_operation": []},
    "pool": {"peak_utilization": 0.42},
}
GOLDEN_START_S = 1_790_158_800.0
"""2026-09-21T10:13:20Z: when the golden Redis and capacity runs started."""


def _step(
    index: int, users: int, rps: float, p95_ms: float, success_rate: float, misses: tuple[str, ...]
) -> Step:
    requests = int(rps * 28)
    failure = round(requests * (1 - success_rate))
    return Step(
        index=index,
        load=users,
        started_at_s=GOLDEN_START_S + 60 + (index - 1) * 30,
        duration_s=30.0,
        measured_s=28,
        requests=requests,
        success=requests - failure,
        failure=failure,
        throughput_rps=rps,
        good_rps=round(rps * success_rate, 2),
        p50_ms=round(p95_ms / 4, 1),
        p95_ms=p95_ms,
        p99_ms=round(p95_ms * 1.6, 1),
        success_rate=success_rate,
        slo_misses=misses,
        resources=Resources(pool_in_use_max=min(20, users // 50), pool_max=20),
    )


def capacity_document() -> dict[str, Any]:
    """A capacity result: 600 users held (800 missed the P95 SLO, the knee), a Redis outage recovered
    in 31.5 s, the bot's pool at 70% at its peak."""
    steps = (
        _step(1, 100, 98.0, 12.0, 1.0, ()),
        _step(2, 200, 197.0, 14.5, 1.0, ()),
        _step(3, 400, 391.0, 31.0, 0.999, ()),
        _step(4, 600, 582.0, 140.0, 0.998, ()),
        _step(5, 800, 640.0, 910.0, 0.995, ("P95 910 ms > 500 ms",)),
        _step(6, 1000, 655.0, 2400.0, 0.97, ("P95 2,400 ms > 500 ms", "success 97.0% < 99%")),
    )
    figures = CapacityFigures(
        planned_steps=6,
        steps=steps,
        capacity=Capacity(value=600, step=4, first_failing_step=5),
        knee=Knee(
            step=5,
            load=800,
            load_growth=0.3333,
            throughput_growth=0.0997,
            p95_before_ms=140.0,
            p95_after_ms=910.0,
        ),
        outage_load=100,
        outages=(
            Outage(
                name="redis-outage",
                driver="proxy",
                target="redis",
                status="run",
                at_s=20.0,
                duration_s=15.0,
                requests=1470,
                success=1426,
                failure=44,
                success_rate=0.97,
                p95_ms=38.0,
                reference_success_rate=1.0,
                reference_p95_ms=11.0,
                bot_said=("status degraded", "breaker open"),
                recovered=True,
                recovery_s=31.5,
                observed_s=45.0,
                backlog=OutageBacklog(
                    before=0, peak_during=420, at_heal=380, peak_after=380, at_end=0, drained_after_s=12.0
                ),
            ),
        ),
        pool=Pool(max=20, peak_in_use=14, capacity_step_utilization=0.6),
    )
    result = RunResult(
        test_type="capacity",
        run_id="golden-capacity",
        scenario="golden",
        target=Target(host="http://127.0.0.1:8000", path="/webhook/whatsapp"),
        started_at="2026-09-21T10:13:20.000+00:00",
        stopped_at="2026-09-21T10:18:20.000+00:00",
        summary=Summary(requests=90000, success=89550, failure=450, rps=300.0, duration_s=300.0),
        collector=CollectorIntegrity(requests=90000, locust_requests=90000),
        figures=figures,
    )
    return result.to_document()


def _write(name: str, document: dict[str, Any]) -> None:
    (HERE / f"{name}.json").write_text(
        json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )


def main(only: Sequence[str] = ()) -> None:
    """Write every input file (or only those named in ``only``)."""
    HERE.mkdir(parents=True, exist_ok=True)
    wanted = set(only)
    server = start_redis()
    try:
        history = RunHistory(server.url, "golden")
        runs = {
            **{
                name: (profile, seed, START_S + index * 100)
                for index, (name, (profile, seed)) in enumerate(WEBHOOK_RUNS.items())
            },
            **{
                name: (profile, seed, START_S - (len(EARLIER_RUNS) - index) * 100)
                for index, (name, (profile, seed)) in enumerate(EARLIER_RUNS.items())
            },
        }
        with tempfile.TemporaryDirectory() as spill:
            for name, (profile, seed, start_s) in runs.items():
                if (
                    wanted
                    and name not in wanted
                    and not (name == "legacy" and "legacy_no_intervals" in wanted)
                ):
                    continue
                run_id = f"golden-{name.replace('_', '-')}"
                write_run(
                    server.url,
                    run_id,
                    profile,
                    seed=seed,
                    key_prefix="golden",
                    scenario="golden",
                    start_s=start_s,
                    spill_dir=Path(spill),
                )
                _write(name, history.result(run_id).to_document())
        if not wanted or "legacy_no_intervals" in wanted:
            without = json.loads((HERE / "legacy.json").read_text())
            without.pop("intervals")
            without["run_id"] = "golden-legacy-no-intervals"
            _write("legacy_no_intervals", without)
        if not wanted or "redis" in wanted:
            _write("redis", REDIS_DOCUMENT)
        if not wanted or "capacity" in wanted:
            _write("capacity", capacity_document())
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
