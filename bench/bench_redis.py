"""Benchmark: the suite's Redis benchmark (ops/s) against ``redis-benchmark`` on the same server.

Run: ``python bench/bench_redis.py [--connections 50] [--processes 1 2] [--pipeline 1 16] [--rounds 2]``

For each (processes, pipeline) setting, subject and reference run in the same invocation, in
turn, ``--rounds`` times each, against one private ``redis-server`` (no persistence); the collector
writes to a second private server so that the benchmarked one serves benchmark traffic only:

- subject: ``perfsuite run --test-type redis`` as the CLI runs it (``perfsuite.jobs.run_job`` with
  ``redis_bench.job.RedisBenchTest``):
  Locust users firing one request event per command into the collector, through the bounded pool
  and the breaker, with no faults injected; ``processes`` > 1 runs a Locust master + that many
  workers. Its figure is operations sent per second over the span from the first to the last
  operation (what the report prints).
- reference: ``redis-benchmark`` with the same number of connections, split over the same number
  of client processes run at once (their rates added), the same pipeline depth, key space and
  mean value size. It cannot mix operations in one run, so GET, SET and DEL run one after the
  other and are combined by the suite's mix (70/25/5): 1 / sum(share / rate).

The ratio subject / reference is what matters (this machine is shared and noisy); the goal is
>= 0.5. Prints one line per setting, then one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perfsuite.config import load_config
from perfsuite.embedded import ManagedProcess, start_redis
from perfsuite.jobs import RunOptions, run_job
from redis_bench.job import RedisBenchTest, figures_of

MIX = {"GET": 0.70, "SET": 0.25, "DEL": 0.05}
KEY_SPACE = 10_000
VALUE_SIZE_BYTES = (64, 1024)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


def reference_rate(
    port: int, connections: int, processes: int, pipeline: int, operations: int, binary: str
) -> dict[str, float]:
    """redis-benchmark's requests/s for GET, SET and DEL, and their mix."""
    mean_size = sum(VALUE_SIZE_BYTES) // 2
    rates: dict[str, float] = {}
    for operation in MIX:
        test = ["-t", operation.lower()] if operation != "DEL" else ["DEL", "key:__rand_int__"]
        runs = []
        for process_connections, process_operations in zip(
            _split(connections, processes), _split(operations, processes), strict=True
        ):
            args = [binary, "-h", "127.0.0.1", "-p", str(port), "-c", str(process_connections)]
            args += ["-n", str(process_operations), "-r", str(KEY_SPACE), "-d", str(mean_size)]
            args += ["-P", str(pipeline), "--csv", *test]
            runs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        total = 0.0
        for run in runs:
            out, _ = run.communicate(timeout=300)
            rows = list(csv.reader(io.StringIO(out)))
            total += float(rows[-1][1])
        rates[operation] = total
    rates["mix"] = 1 / sum(share / rates[operation] for operation, share in MIX.items())
    return rates


def subject_rate(
    bench: ManagedProcess,
    collector: ManagedProcess,
    connections: int,
    processes: int,
    pipeline: int,
    operations: int,
    state_dir: Path,
) -> dict[str, Any]:
    """The suite's operations sent per second (and latency) for one run of the Redis job."""
    per_process = max(1, connections // processes)
    config = load_config(
        overrides={
            "redis.url": collector.url,
            "redis_bench.url": bench.url,
            "redis_bench.concurrent_operations": connections,
            "redis_bench.operations_per_worker": max(1, operations // connections),
            "redis_bench.pool_size": per_process,
            "redis_bench.max_connections": per_process,
            "redis_bench.pipeline_depth": pipeline,
            "redis_bench.key_space": KEY_SPACE,
            "redis_bench.value_size_bytes": list(VALUE_SIZE_BYTES),
            "redis_bench.test_circuit_breaker": False,
            "redis_bench.max_duration_s": 300,
        },
        environ={},
    )
    options = RunOptions(workers=processes if processes > 1 else 0, state_dir=state_dir)
    result = run_job(RedisBenchTest(), config, options, collector.url)
    figures = figures_of(result)
    return {
        "ops_per_s": figures.redis.ops_per_s,
        "operations": figures.redis.operations_sent,
        "avg_ms": figures.redis.organic.avg_ms,
        "p99_ms": figures.redis.organic.p99_ms,
        "exact": result.collector is not None and result.collector.exact,
        "peak_in_use": figures.pool.peak_in_use,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Run every setting and print the rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50, help="connections in all (default 50)")
    parser.add_argument(
        "--processes", type=int, nargs="+", default=[1, 2], help="client processes (default 1 2)"
    )
    parser.add_argument("--pipeline", type=int, nargs="+", default=[1], help="pipeline depths (default 1)")
    parser.add_argument("--operations", type=int, default=200_000, help="operations per run (default 200000)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each, median kept (default 2)")
    args = parser.parse_args(argv)
    binary = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
    results = []
    with contextlib.ExitStack() as stack:
        bench = start_redis()
        stack.callback(bench.stop)
        collector = start_redis()
        stack.callback(collector.stop)
        state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-redis-")))
        port = int(bench.extra["port"])
        for processes in args.processes:
            for pipeline in args.pipeline:
                ours, theirs = [], []
                for _ in range(args.rounds):
                    theirs.append(
                        reference_rate(port, args.connections, processes, pipeline, args.operations, binary)
                    )
                    ours.append(
                        subject_rate(
                            bench,
                            collector,
                            args.connections,
                            processes,
                            pipeline,
                            args.operations,
                            state_dir,
                        )
                    )
                    time.sleep(0.5)
                subject = statistics.median(run["ops_per_s"] for run in ours)
                reference = statistics.median(run["mix"] for run in theirs)
                row = {
                    "connections": args.connections,
                    "processes": processes,
                    "pipeline": pipeline,
                    "suite_ops_per_s": round(subject),
                    "redis_benchmark_ops_per_s": round(reference),
                    "ratio": round(subject / reference, 3),
                    "suite_runs": ours,
                    "redis_benchmark_runs": [{k: round(v) for k, v in run.items()} for run in theirs],
                }
                results.append(row)
                print(
                    f"connections {args.connections:>4}  processes {processes}  pipeline {pipeline:>3}:  "
                    f"suite {subject:>9,.0f} ops/s  redis-benchmark {reference:>9,.0f} ops/s  "
                    f"ratio {subject / reference:.3f}  "
                    f"(suite P99 {statistics.median(run['p99_ms'] for run in ours):.2f} ms)",
                    flush=True,
                )
    print(json.dumps({"bench": "redis", "results": results}))


if __name__ == "__main__":
    main()
