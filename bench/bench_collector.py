"""Collector benchmarks (figures for BENCHMARKS.md; not a test).

(a) Hot path: firing Locust ``request`` events N times with a listener that does nothing, with
    Locust's own statistics (``RequestStats.log_request``, what every Locust process does anyway), and
    with the collector plugin's listener writing into a CollectorWriter; plus the flush cost per request.
(b) Reading: synthesize two one-hour runs at 1,000 requests/s (4 endpoints) into a private Redis through
    the real writer, then time loading both runs and computing summary + per-second time series.

Usage: python bench/bench_collector.py [--events N] [--seconds S] [--rps R]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from locust.env import Environment
from locust.event import EventHook
from locust.stats import RequestStats

from perfsuite.collector import CollectorReader, CollectorWriter, create_run, finish_run, locust_plugin
from perfsuite.embedded import start_redis

ENDPOINTS = ("/webhook", "/health", "/status", "/media")


def _fire_many(hook: EventHook, n: int, latencies_ms: np.ndarray) -> float:
    fire = hook.fire
    started = time.perf_counter()
    for i in range(n):
        fire(
            request_type="POST",
            name=ENDPOINTS[i & 3],
            response_time=latencies_ms[i],
            response_length=120,
            exception=None,
            context={},
        )
    return time.perf_counter() - started


def bench_hot_path(n: int, redis_url: str, spill_dir: Path) -> None:
    """Records/s for: no-op listener, Locust's own stats, the collector's listener (+ flush)."""
    latencies_ms = np.random.default_rng(1).lognormal(2.0, 0.6, n).tolist()

    noop = EventHook()
    noop.add_listener(lambda **_kwargs: None)
    noop_s = _fire_many(noop, n, latencies_ms)

    stats = RequestStats()
    own = EventHook()
    own.add_listener(
        lambda request_type, name, response_time, response_length, exception, **_kw: stats.log_request(
            request_type, name, response_time, response_length
        )
    )
    locust_s = _fire_many(own, n, latencies_ms)

    environment = Environment()
    plugin = locust_plugin.install(environment, redis_url=redis_url, spill_dir=spill_dir)
    writer = CollectorWriter(redis_url, "bench-hot-path", spill_dir=spill_dir, start=False)
    plugin.writer = writer
    collector = EventHook()
    collector.add_listener(plugin.on_request)
    collector_s = _fire_many(collector, n, latencies_ms)
    flush_started = time.perf_counter()
    writer.close()
    flush_s = time.perf_counter() - flush_started

    print(f"(a) hot path, {n:,} request events")
    for label, seconds in (
        ("no-op listener", noop_s),
        ("Locust's own stats", locust_s),
        ("collector", collector_s),
    ):
        print(f"    {label:<24} {n / seconds:>12,.0f} events/s  {seconds / n * 1e6:6.2f} us/event")
    print(
        f"    collector final flush    {flush_s * 1e3:10.1f} ms total   {flush_s / n * 1e6:6.2f} us/request"
    )
    added_us = (collector_s - noop_s) / n * 1e6
    locust_added_us = (locust_s - noop_s) / n * 1e6
    print(
        f"    collector adds {added_us:.2f} us/request on the hot path "
        f"({added_us / locust_added_us:.2f}x Locust's own stats); ratio collector/no-op "
        f"{collector_s / noop_s:.2f}x"
    )


def synthesize_run(
    redis_url: str, run_id: str, seconds: int, rps: int, spill_dir: Path, seed: int
) -> tuple[float, float]:
    """One run of ``seconds`` at ``rps`` through the real writer (one flush per second): seconds
    taken, and seconds spent flushing (batching, journal, Redis writes, the final close)."""
    create_run(redis_url, "bench", run_id, "webhook", "bench", "http://bench", "{}")
    writer = CollectorWriter(redis_url, run_id, key_prefix="bench", spill_dir=spill_dir, start=False)
    rng = np.random.default_rng(seed)
    start_s = int(time.time()) - seconds - 10
    started = time.perf_counter()
    flushing = 0.0
    record = writer.record
    for second in range(seconds):
        latencies = rng.lognormal(9.5, 0.7, rps).astype(np.int64).tolist()
        at = start_s + second + 0.5
        for i, latency_us in enumerate(latencies):
            record("POST", ENDPOINTS[i & 3], latency_us, at_s=at, outcome="failure" if i == 0 else "success")
        flush_started = time.perf_counter()
        writer.flush()
        flushing += time.perf_counter() - flush_started
    flush_started = time.perf_counter()
    writer.close()
    flushing += time.perf_counter() - flush_started
    finish_run(redis_url, "bench", run_id, "finished", locust_total_requests=seconds * rps)
    return time.perf_counter() - started, flushing


def bench_reading(seconds: int, rps: int, spill_dir: Path) -> None:
    """Synthesize two runs, then time loading and summarising both."""
    server = start_redis()
    try:
        synth = [
            synthesize_run(server.url, f"bench-run-{i}", seconds, rps, spill_dir, seed=i) for i in range(2)
        ]
        print(f"\n(b) two runs of {seconds} s at {rps:,} requests/s ({len(ENDPOINTS)} endpoints)")
        print(f"    synthesized through the writer in {synth[0][0]:.1f} s and {synth[1][0]:.1f} s")
        per_request_us = min(flushing for _, flushing in synth) / (seconds * rps) * 1e6
        print(f"    flushing (one batch per second: journal + Redis) {per_request_us:.2f} us/request")
        memory = float(str(server_info(server.url)["used_memory"]))
        print(f"    Redis memory for both runs: {memory / 2**20:.1f} MiB")
        reader = CollectorReader(server.url, "bench")
        started = time.perf_counter()
        runs = [reader.load(f"bench-run-{i}") for i in range(2)]
        loaded = time.perf_counter()
        for run in runs:
            run.summary()
            run.total()
            run.timeseries()
        summarised = time.perf_counter()
        for run in runs:
            run.timeseries(per_endpoint=True)
        per_endpoint = time.perf_counter()
        print(f"    load both runs               {loaded - started:6.2f} s")
        print(f"    summary + total + timeseries {summarised - loaded:6.2f} s")
        print(f"    total (target well < 5 s)    {summarised - started:6.2f} s")
        print(f"    + per-endpoint timeseries    {per_endpoint - summarised:6.2f} s")
        for run in runs:
            total = run.total().iloc[0]
            print(
                f"    {run.run_id}: {run.requests:,} requests, complete={run.complete}, "
                f"matches_locust={run.matches_locust}, "
                f"p50 {total['p50_ms']:.2f} ms, p99 {total['p99_ms']:.2f} ms"
            )
    finally:
        server.stop()


def server_info(url: str) -> dict[str, object]:
    """Redis INFO memory of the bench server."""
    import redis

    return dict(redis.Redis.from_url(url).info("memory"))


def main() -> None:
    """Run both benchmarks and print their figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=300_000, help="request events for (a)")
    parser.add_argument("--seconds", type=int, default=3600, help="length of each synthesized run for (b)")
    parser.add_argument("--rps", type=int, default=1000, help="requests per second of each run for (b)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as spill:
        server = start_redis()
        try:
            bench_hot_path(args.events, server.url, Path(spill))
        finally:
            server.stop()
        bench_reading(args.seconds, args.rps, Path(spill))


if __name__ == "__main__":
    main()
