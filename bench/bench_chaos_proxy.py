"""Benchmark: what the fault proxy (``perfsuite chaos-proxy``) costs when no fault is active.

Run: ``python bench/bench_chaos_proxy.py [--pings 500] [--requests 20000] [--connections 10]``

Against one private ``redis-server`` and one fault proxy process (no toxic), in the same run:

- round trip: median PING time of one redis-py connection, direct and through the proxy; the
  difference is what the proxy adds to every request.
- throughput: ``redis-benchmark -t get`` with ``--connections`` clients, direct and through the
  proxy (skipped if redis-benchmark is not on PATH). The proxy is one Python process: its rate is
  the ceiling for traffic through it.

The machine is shared and noisy: read the ratios. Prints one line per figure, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Sequence

import redis

from perfsuite.embedded import start_redis
from perfsuite.faults.api import start_chaos_proxy
from perfsuite.faults.client import ToxiproxyClient


def median_ping_us(port: int, pings: int) -> float:
    """Median PING round trip in microseconds over ``pings`` pings on one connection."""
    client = redis.Redis(port=port)
    client.ping()
    samples = []
    for _ in range(pings):
        started = time.perf_counter()
        client.ping()
        samples.append((time.perf_counter() - started) * 1e6)
    client.close()
    return statistics.median(samples)


def get_rate(binary: str, port: int, requests: int, connections: int) -> float:
    """redis-benchmark's GET requests per second."""
    out = subprocess.run(
        [binary, "-p", str(port), "-t", "get", "-n", str(requests), "-c", str(connections), "-q"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    found = re.findall(r"GET: ([0-9.]+) requests per second", out.replace("\r", "\n"))
    return float(found[-1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pings", type=int, default=500)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=10)
    args = parser.parse_args(argv)

    server = start_redis()
    chaos = start_chaos_proxy()
    try:
        proxy = ToxiproxyClient(chaos.url).create_proxy(
            "redis", "127.0.0.1:0", f"127.0.0.1:{server.extra['port']}"
        )
        direct_port, proxy_port = int(server.extra["port"]), proxy.listen_port
        result: dict[str, float] = {
            "ping_direct_us": median_ping_us(direct_port, args.pings),
            "ping_proxied_us": median_ping_us(proxy_port, args.pings),
        }
        result["ping_added_us"] = result["ping_proxied_us"] - result["ping_direct_us"]
        print(
            f"PING median: direct {result['ping_direct_us']:.0f} us, through the proxy "
            f"{result['ping_proxied_us']:.0f} us (+{result['ping_added_us']:.0f} us)"
        )
        binary = shutil.which("redis-benchmark")
        if binary is None:
            print("redis-benchmark not on PATH: throughput skipped")
        else:
            result["get_direct_per_s"] = get_rate(binary, direct_port, args.requests, args.connections)
            result["get_proxied_per_s"] = get_rate(binary, proxy_port, args.requests, args.connections)
            result["get_ratio"] = result["get_proxied_per_s"] / result["get_direct_per_s"]
            print(
                f"GET with {args.connections} connections: direct {result['get_direct_per_s']:.0f}/s, "
                f"through the proxy {result['get_proxied_per_s']:.0f}/s (ratio {result['get_ratio']:.2f})"
            )
        print(json.dumps({key: round(value, 3) for key, value in result.items()}, sort_keys=True))
    finally:
        chaos.stop()
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
