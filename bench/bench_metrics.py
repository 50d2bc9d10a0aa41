"""What the live metrics endpoint costs the load generator: requests/s per core with and without it
(not a test).

Run: ``python bench/bench_metrics.py [--rounds 5] [--window-s 10] [--scrape-every-s 0.5] [--workers 0]``

The same ``perfsuite run`` webhook workload (closed model, ``--users`` users without think time, no
bad signatures, retries, probe or burst) against the generator benchmark's nginx
(``bench/bench_generator.py``: nginx and the collector's private redis-server pinned to core 0),
in interleaved rounds (the order alternating):

(off) ``perfsuite run`` without the endpoint;
(on)  the same with ``--metrics-port`` while this script scrapes ``/metrics`` every
      ``--scrape-every-s`` (twice a second by default: more often than the shipped Prometheus).

The whole ``perfsuite run`` tree is pinned to core 1, so the endpoint (a thread of the perfsuite
process, reading the collector's Redis at each scrape) shares the generator's core: the
conservative case. Over each steady window: requests = nginx's counter, CPU = user + system time
of the Locust processes, of the perfsuite process (the endpoint lives there) and of the collector's
redis-server (which serves the endpoint's reads). "Per core" = requests per CPU second; ratios are
per round (on / off), then the median (min-max).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_generator import (
    REPO,
    TARGET_CORE,
    TOKEN,
    Measure,
    Nginx,
    Probe,
    Row,
    _median_span,
    run_row,
)

from perfsuite.embedded import ManagedProcess, free_port, start_redis

CONFIG = """version: 1
scenarios:
  default: {}
target:
  health_path: null
  probe: false
webhook:
  think_time_s: [0, 0]
  enable_burst_testing: false
  max_duration_s: 3600
traffic:
  invalid_signature_rate: 0
  duplicate_rate: 0
metrics:
  linger_s: 0
"""


class Scraper:
    """Scrapes ``url`` every ``every_s`` in a thread; counts scrapes and their time."""

    def __init__(self, url: str, every_s: float) -> None:
        self.url = url
        self.every_s = every_s
        self.ok = 0
        self.failed = 0
        self.seconds: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    body = response.read()
                if b"perfsuite_requests_total" in body:
                    self.ok += 1
                    self.seconds.append(time.perf_counter() - started)
            except OSError:
                self.failed += 1  # before the endpoint listens, after it closed
            self._stop.wait(self.every_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def probe_of(redis: ManagedProcess) -> Probe:
    """CPU seconds of the perfsuite process itself (the row's root) and of the collector's Redis."""

    def probe(root_pid: int) -> dict[str, float]:
        figures = {}
        for key, pid in (("perfsuite_cpu_s", root_pid), ("redis_cpu_s", redis.process.pid)):
            try:
                times = psutil.Process(pid).cpu_times()
                figures[key] = times.user + times.system
            except psutil.Error:
                figures[key] = 0.0
        return figures

    return probe


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--window-s", type=float, default=10.0, help="measured seconds per row")
    parser.add_argument("--warmup-s", type=float, default=3.0, help="seconds of load before the window")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--workers", type=int, default=0, help="perfsuite run --workers (0: one process)")
    parser.add_argument("--scrape-every-s", type=float, default=0.5)
    args = parser.parse_args()
    if psutil.cpu_count() < 2:
        raise SystemExit("needs 2 cores (target on one, generator on the other)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.sched_setaffinity(0, {TARGET_CORE})  # this script and its scraper thread stay off core 1
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp_name:
        tmp = Path(tmp_name)
        nginx = Nginx.start(tmp / "nginx")
        redis = start_redis()
        psutil.Process(redis.process.pid).cpu_affinity([TARGET_CORE])
        config = tmp / "bench.yaml"
        config.write_text(CONFIG)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERFSUITE_")}
        env.update(REDIS_URL=redis.url, TWILIO_AUTH_TOKEN=TOKEN, PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
        run_s = args.warmup_s + args.window_s + 3
        base = [sys.executable, "-m", "perfsuite", "run", "--test-type", "webhook", "--config", str(config)]
        base += ["--host", nginx.url, "--users", str(args.users), "--requests-per-user", "1000000"]
        base += ["--ramp-up", "1", "--run-time", f"{run_s:g}", "--workers", str(args.workers)]
        probe = probe_of(redis)
        results: dict[str, list[Measure]] = {"off": [], "on": []}
        scrapes: list[Scraper] = []
        try:
            print(f"nginx {nginx.url}; {args.rounds} rounds; logs in {tmp}", flush=True)
            for round_index in range(args.rounds):
                order = ("off", "on") if round_index % 2 == 0 else ("on", "off")
                for key in order:
                    argv, scraper = list(base), None
                    if key == "on":
                        port = free_port()
                        argv += ["--metrics-port", str(port)]
                        scraper = Scraper(f"http://127.0.0.1:{port}/metrics", args.scrape_every_s)
                    row = Row(key, f"metrics {key}", argv, env, stop_after_window=False, first_requests=50)
                    nginx.pin((TARGET_CORE,))
                    try:
                        measure = run_row(row, nginx, args, tmp / f"{key}.log", probe)
                    finally:
                        if scraper is not None:
                            scraper.stop()
                            scrapes.append(scraper)
                    if measure is None:
                        continue
                    results[key].append(measure)
                    extra = measure.extra
                    print(
                        f"  round {round_index + 1} ({key:>3}) {measure.rps:8,.0f} req/s, Locust "
                        f"{measure.cpu_us:6.1f} us/req, perfsuite process {extra['perfsuite_cpu_s']:.3f} s, "
                        f"redis {extra['redis_cpu_s']:.3f} s"
                        + (f", {scraper.ok} scrapes" if scraper else ""),
                        flush=True,
                    )
        finally:
            redis.stop()
            nginx.stop()
    report(results, scrapes, args)
    print(f"\n({time.monotonic() - started:.0f} s in all)")


def report(results: dict[str, list[Measure]], scrapes: list[Scraper], args: argparse.Namespace) -> None:
    pairs = list(zip(results["off"], results["on"], strict=False))
    if not pairs:
        raise SystemExit("no round measured both rows")

    def per_core(m: Measure, everything: bool) -> float:
        cpu = m.cpu_s + (m.extra["perfsuite_cpu_s"] + m.extra["redis_cpu_s"] if everything else 0.0)
        return m.requests / cpu

    print(
        f"\n{len(pairs)} rounds, window {args.window_s:g} s after {args.warmup_s:g} s warm-up, "
        f"{args.users} users, --workers {args.workers}, scrape every {args.scrape_every_s:g} s; "
        "median (min-max) over rounds\n"
    )
    header = f"{'':<44}{'metrics off':>22}{'metrics on':>22}{'ratio on/off':>22}"
    print(header)
    print("-" * len(header))
    rows = (
        ("requests/s", lambda m: m.rps, "{:,.0f}"),
        ("requests/s per core (Locust processes)", lambda m: per_core(m, False), "{:,.0f}"),
        ("requests/s per core (+ perfsuite + Redis)", lambda m: per_core(m, True), "{:,.0f}"),
        (
            "perfsuite process CPU % (the endpoint's)",
            lambda m: 100 * m.extra["perfsuite_cpu_s"] / m.elapsed_s,
            "{:.2f}",
        ),
        ("collector Redis CPU %", lambda m: 100 * m.extra["redis_cpu_s"] / m.elapsed_s, "{:.2f}"),
    )
    for title, figure, form in rows:
        off = [figure(a) for a, _ in pairs]
        on = [figure(b) for _, b in pairs]
        ratios = [b / a if a else float("nan") for a, b in zip(off, on, strict=True)]
        print(
            f"{title:<44}{_median_span(off, form.format):>22}{_median_span(on, form.format):>22}"
            f"{_median_span(ratios, '{:.3f}'.format):>22}"
        )
    idle = statistics.median(a.extra["perfsuite_cpu_s"] for a, _ in pairs)
    shares = [(b.extra["perfsuite_cpu_s"] - idle) / b.cpu_s for _, b in pairs]
    print(
        f"\nthe endpoint's CPU (perfsuite process, on - off's median) over the Locust processes' CPU, same "
        f"round: {_median_span([100 * x for x in shares], '{:.2f}%'.format)}"
    )
    seconds = [s for scraper in scrapes for s in scraper.seconds]
    if seconds:
        p95 = sorted(seconds)[int(len(seconds) * 0.95)]
        print(
            f"\nscrapes: {sum(s.ok for s in scrapes)} served, {sum(s.failed for s in scrapes)} refused "
            f"(before the endpoint listened or after it closed); time per scrape median "
            f"{statistics.median(seconds) * 1000:.1f} ms, P95 {p95 * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
