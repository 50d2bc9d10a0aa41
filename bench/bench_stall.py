"""Benchmark: a stalling target under a constant request rate, through bare Locust and through perfsuite.

Run: ``python bench/bench_stall.py [--rate 200] [--stall-s 1] [--period-s 10] [--cycles 3] [--users 10]``

The target (``tests/arrival_target.py``: answers in ``--service-ms``) is frozen with SIGSTOP for
``--stall-s`` every ``--period-s`` during each run. Three runs of ``cycles x period`` seconds each, one
after the other, each against a fresh target:

1. bare Locust: ``--users`` FastHttpUsers with ``constant_throughput(rate / users)`` (a closed model
   paced at the same total rate), figures from Locust's own CSV statistics;
2. ``perfsuite run --arrival-rate`` with ``arrival.max_concurrency = --users`` (the same concurrency
   as Locust: arrivals wait for a free slot, latency still counted from the intended start);
3. ``perfsuite run --arrival-rate`` with the default pool (1,000 requests in flight per process).

The analytic P99 of the intended requests is ``stall - 0.01 x period`` (plus the service time). The
table shows how far each reported P99 is from it and how many intended requests were never sent.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from perfsuite.embedded import start_redis  # noqa: E402
from tests.arrival_target import Staller, TargetProcess, analytic_stall_p99_s  # noqa: E402

WEBHOOK = "/webhook/whatsapp"

BARE_LOCUSTFILE = """
from locust import FastHttpUser, constant_throughput, task

class Bare(FastHttpUser):
    wait_time = constant_throughput({per_user_rate})

    @task
    def post(self):
        self.client.post("{path}", data="Body=hello&From=whatsapp%3A%2B15550001111")
"""


@dataclass(frozen=True, slots=True)
class Column:
    """What one run reported."""

    title: str
    sent: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    uncorrected_p99_ms: float | None = None
    late: int | None = None
    waited: int | None = None
    dropped: int | None = None
    trust: str = "-"
    stalls: int = 0


def run_bare_locust(args: argparse.Namespace, workdir: Path) -> Column:
    """Bare Locust: closed-model users paced at the same total rate."""
    locustfile = workdir / "bare_locustfile.py"
    locustfile.write_text(BARE_LOCUSTFILE.format(per_user_rate=args.rate / args.users, path=WEBHOOK))
    target = TargetProcess(args.service_ms)
    staller = Staller(target.pid, args.stall_s, args.period_s).start()
    try:
        subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host", target.url,
             "-u", str(args.users), "-r", str(args.users), "-t", f"{round(args.duration_s)}s",
             "--csv", str(workdir / "bare"), "--only-summary", "--loglevel", "WARNING"],
            cwd=workdir, check=False, capture_output=True, timeout=args.duration_s + 120,
        )  # fmt: skip
    finally:
        staller.stop()
        target.stop()
    with open(workdir / "bare_stats.csv", newline="") as handle:
        total = next(row for row in csv.DictReader(handle) if row["Name"] == "Aggregated")
    return Column(
        title=f"bare Locust, {args.users} users",
        sent=int(total["Request Count"]),
        p50_ms=float(total["50%"]),
        p99_ms=float(total["99%"]),
        max_ms=float(total["Max Response Time"]),
        stalls=staller.stalls,
    )


def run_perfsuite(args: argparse.Namespace, workdir: Path, redis_url: str, pool: int | None) -> Column:
    """``perfsuite run --arrival-rate`` with a pool of ``pool`` slots (None: the default)."""
    name = f"pool{pool or 'default'}"
    config = workdir / f"{name}.yaml"
    arrival = "arrival:\n  distribution: uniform\n" + (f"  max_concurrency: {pool}\n" if pool else "")
    config.write_text(
        "version: 1\nscenarios:\n  default: {}\n"
        "traffic:\n  invalid_signature_rate: 0\n  duplicate_rate: 0\n" + arrival
    )
    out = workdir / f"{name}.json"
    env = {**os.environ, "REDIS_URL": redis_url, "TWILIO_AUTH_TOKEN": "bench-token-not-a-secret"}
    target = TargetProcess(args.service_ms)
    staller = Staller(target.pid, args.stall_s, args.period_s).start()
    try:
        subprocess.run(
            [sys.executable, "-m", "perfsuite", "run", "--test-type", "webhook", "--config", str(config),
             "--host", target.url,
             "--arrival-rate", str(args.rate), "--run-time", str(args.duration_s), "--output-file", str(out)],
            cwd=REPO, env=env, check=False, capture_output=True, timeout=args.duration_s + 180,
        )  # fmt: skip
    finally:
        staller.stop()
        target.stop()
    result = json.loads(out.read_text())
    latency, arrival = result["latency"], result["arrival"]
    corrected, uncorrected = latency["corrected"], latency["uncorrected"]
    return Column(
        title=f"perfsuite, pool {pool or result['arrival']['max_concurrency']}",
        sent=arrival["sent"],
        p50_ms=corrected["p50_ms"],
        p99_ms=corrected["p99_ms"],
        max_ms=corrected["max_ms"],
        uncorrected_p99_ms=uncorrected["p99_ms"],
        late=arrival["late"],
        waited=arrival["waited"],
        dropped=arrival["dropped"] + arrival["unsent"],
        trust="yes" if latency["trustworthy"] else "NO: " + "; ".join(latency["untrustworthy_reasons"]),
        stalls=staller.stalls,
    )


def _cell(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def print_table(args: argparse.Namespace, columns: list[Column]) -> None:
    """The runs side by side."""
    intended = round(args.rate * args.duration_s)
    analytic_ms = analytic_stall_p99_s(args.stall_s, args.period_s) * 1000 + args.service_ms
    print(
        f"\nstall scenario: {args.rate:g} requests/s for {args.duration_s:g} s; the target (service "
        f"{args.service_ms:g} ms) frozen {args.stall_s:g} s every {args.period_s:g} s with SIGSTOP"
    )
    print(f"analytic P99 of the intended requests: {analytic_ms:,.1f} ms (stall - 0.01 x period + service)\n")
    rows: list[tuple[str, list[str]]] = [
        ("stalls during the run", [str(c.stalls) for c in columns]),
        ("intended requests", [f"{intended:,}"] * len(columns)),
        ("sent", [_cell(c.sent) for c in columns]),
        ("never sent", [_cell(intended - c.sent) for c in columns]),
        ("dropped (pool and queue full)", [_cell(c.dropped) for c in columns]),
        ("P50 ms", [_cell(c.p50_ms) for c in columns]),
        ("P99 ms", [_cell(c.p99_ms) for c in columns]),
        (
            "P99 vs analytic",
            [f"{(c.p99_ms / analytic_ms - 1) * 100:+.0f}%" if c.p99_ms else "-" for c in columns],
        ),
        ("max ms", [_cell(c.max_ms) for c in columns]),
        ("uncorrected P99 ms (from send)", [_cell(c.uncorrected_p99_ms) for c in columns]),
        ("late starts", [_cell(c.late) for c in columns]),
        ("waited for a slot", [_cell(c.waited) for c in columns]),
    ]
    width = max(28, *(len(c.title) + 2 for c in columns))
    print(f"{'':<32}" + "".join(f"{c.title:>{width}}" for c in columns))
    for label, cells in rows:
        print(f"{label:<32}" + "".join(f"{cell:>{width}}" for cell in cells))
    for column in columns:
        if column.trust != "-":
            print(f"latency trustworthy ({column.title}): {column.trust}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    parser.add_argument("--stall-s", type=float, default=1.0, help="seconds frozen per cycle (default 1)")
    parser.add_argument("--period-s", type=float, default=10.0, help="cycle length in seconds (default 10)")
    parser.add_argument("--cycles", type=int, default=3, help="stall cycles per run (default 3)")
    parser.add_argument("--users", type=int, default=10, help="bare Locust users = perfsuite's small pool")
    parser.add_argument("--service-ms", type=float, default=2.0, help="target service time (default 2 ms)")
    args = parser.parse_args()
    args.duration_s = args.period_s * args.cycles
    redis = start_redis()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-stall-") as tmp:
            workdir = Path(tmp)
            columns = [
                run_bare_locust(args, workdir),
                run_perfsuite(args, workdir, redis.url, args.users),
                run_perfsuite(args, workdir, redis.url, None),
            ]
    finally:
        redis.stop()
    print_table(args, columns)
    print(f"\n(three runs, {time.monotonic() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
