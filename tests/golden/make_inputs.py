"""Regenerate the comparator's golden INPUT files (result documents with intervals).

Not a test: run it only to change the inputs, then regenerate the expected outputs with
``PERFSUITE_UPDATE_GOLDEN=1 pytest tests/test_baseline_golden.py`` and review the diff.

    python tests/golden/make_inputs.py [NAME ...]

With names, only those inputs are (re)written (the others keep their bytes).
Runs are synthesized through the real collector writer into a private Redis at fixed times, read
back with ``RunHistory.result`` (the same path as ``perfsuite report RUN --format json``) and
written as result documents (the files checked in first were version-1 ones, which version 2 still
reads; those added later, `legacy_again` and `optimized_earlier_*`, are version 2).
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
from perfsuite.embedded import start_redis
from perfsuite.history import RunHistory

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
CAPACITY_DOCUMENT: dict[str, Any] = {
    **{key: value for key, value in REDIS_DOCUMENT.items() if key not in ("redis", "pool", "checks")},
    "test_type": "capacity",
    "run_id": "golden-capacity",
    "host": "http://127.0.0.1:8000",
    "summary": {"requests": 90000, "success_rate": 0.995, "max_users": 600},
    "checks": [],
    "capacity": {"max_users": 600, "recovery_time_s": 31.5, "pool": {"peak_utilization": 0.7}},
}


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
            _write("capacity", CAPACITY_DOCUMENT)
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
