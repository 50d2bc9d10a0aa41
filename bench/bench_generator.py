"""Generator efficiency: signed webhooks per core, perfsuite against bare Locust and wrk (not a test).

Run: ``python bench/bench_generator.py [--rounds 5] [--window-s 10] [--rates 100,1000,...]``

Target: nginx (Debian's package) from a private config in a temp dir, ``worker_processes 1``, on a
free loopback port, answering ``POST /webhook/whatsapp`` with ``200 <Response></Response>``,
pinned to core 0 (with the collector's private redis-server). Every generator is pinned to core 1.
In each round, in turn (the order rotates from round to round):

(a) bare Locust: FastHttpUser x ``--users``, no wait, posting one pre-built form of the mean size of
    perfsuite's messages with the same header set (a locustfile generated into the temp dir);
(b) perfsuite ``locustfiles/webhook.py``, closed model, collector on (private Redis), ``--users``
    users, no think time, no bad signatures nor retries (nginx validates nothing: every answer is a
    success, as for (a));
(c) the same locustfile with the collector not installed (the code has no switch: a generated
    locustfile imports the webhook users and shape and removes the locustfile's ``init`` listener
    that installs the collector; the saturation monitor still runs, marks go nowhere);
(d) ``perfsuite run --arrival-rate R`` (open model, Poisson, the suite's defaults otherwise) at each
    rate of ``--rates``, judged by the suite's own trust rule (the result's ``latency.trustworthy``);
(e) ``wrk`` (one thread, ``--users`` connections) with the same request: the machine's ceiling;
(f) bare Locust paced at 100 requests/s (10 users x ``constant_throughput(10)``): Locust's own
    floor for the open model's idle cost.

With ``--workers 2``, (a) and (b) also run as ``--processes 2`` on both cores; nginx is then
unpinned (it shares both cores with the generator). ``--variant NAME=DIR`` adds rows (b), (c) and
the (d) ladder for a copy of the repository at DIR (e.g. a prototype, or the code before a change),
keyed ``b@NAME`` etc.; ``--rows`` picks rows by key (``d`` / ``d@NAME``: a whole ladder).

Measuring: each row runs until its load is steady (first requests seen by nginx, then
``--warmup-s``), then over ``--window-s``: requests = nginx's own counter (``stub_status``), CPU =
user + system time of the generator's processes (``psutil``: every process of the row's tree
whose command line names locust, or wrk). Startup and shutdown are outside the window. Figures are
medians over rounds (min-max after them); ratios are per round against that round's bare Locust.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from perfsuite.config import load_config  # noqa: E402
from perfsuite.embedded import ManagedProcess, free_port, start_redis, wait_for_port  # noqa: E402
from perfsuite.twilio import TrafficGenerator  # noqa: E402

WEBHOOK = "/webhook/whatsapp"
STATUS = "/nginx_status"
TOKEN = "bench-token-not-a-secret-0123456"
TARGET_CORE, GENERATOR_CORE = 0, 1

NGINX_CONF = """
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_body_buffer_size 64k;
    default_type application/xml;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location = {webhook} {{ return 200 '<Response></Response>'; }}
        location = {status} {{ stub_status; }}
        location / {{ return 404; }}
    }}
}}
"""

BARE_LOCUSTFILE = """
from locust import FastHttpUser, constant, constant_throughput, task

BODY = {body!r}
HEADERS = {headers!r}

class Bare(FastHttpUser):
    wait_time = {wait}

    @task
    def post(self):
        self.client.post({path!r}, data=BODY, headers=HEADERS)
"""

NO_COLLECTOR_LOCUSTFILE = """
# perfsuite's webhook users and shape, without the collector: the init listener that installs it
# is removed (the token check it also does is not needed here).
from locust import events

from locustfiles import webhook
from locustfiles.webhook import BurstUser, SeedWebhookProfile, WhatsAppUser  # noqa: F401

events.init.remove_listener(webhook._on_init)
"""

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["User-Agent"] = "TwilioProxy/1.1"
wrk.headers["I-Twilio-Idempotency-Token"] = "7a1c2d9e-0000-4000-8000-000000000000"
wrk.headers["X-Twilio-Signature"] = "aUi0tYg7pYOi1kewM1r+3mTz8kY="
"""


# ------------------------------------------------------------------------------------------ target


@dataclass(slots=True)
class Nginx:
    """The private nginx: its URL and request counter."""

    process: subprocess.Popen[bytes]
    url: str
    tmp: Path
    polls: int = 0
    """Status requests made so far (nginx counts them too)."""

    @classmethod
    def start(cls, tmp: Path) -> Nginx:
        port = free_port()
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (tmp / sub).mkdir(parents=True, exist_ok=True)
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, webhook=WEBHOOK, status=STATUS))
        process = subprocess.Popen(
            ["taskset", "-c", str(TARGET_CORE), "nginx", "-c", str(conf), "-p", str(tmp)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not wait_for_port("127.0.0.1", port, 10) or process.poll() is not None:
            raise SystemExit(f"nginx did not start: {(tmp / 'nginx-error.log').read_text(errors='replace')}")
        return cls(process, f"http://127.0.0.1:{port}", tmp)

    def requests(self) -> int:
        """Requests nginx served so far, less this script's own status requests."""
        with urllib.request.urlopen(self.url + STATUS, timeout=5) as response:
            lines = response.read().decode().splitlines()
        self.polls += 1
        return int(lines[2].split()[2]) - self.polls

    def pin(self, cores: Sequence[int]) -> None:
        """Set the CPU affinity of nginx's master and worker."""
        root = psutil.Process(self.process.pid)
        for proc in [root, *root.children(recursive=True)]:
            proc.cpu_affinity(list(cores))

    def stop(self) -> None:
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


# ------------------------------------------------------------------------------------------ measuring


@dataclass(slots=True)
class Measure:
    """One row of one round: what happened over the steady window."""

    requests: int
    cpu_s: float
    elapsed_s: float
    trust: bool | None = None
    reasons: tuple[str, ...] = ()
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.requests * 1e6 if self.requests else float("nan")

    @property
    def cpu_percent(self) -> float:
        return self.cpu_s / self.elapsed_s * 100


def _generator_cpu(root_pid: int) -> dict[int, float]:
    """User + system seconds of every locust / wrk process in the tree of ``root_pid``."""
    try:
        root = psutil.Process(root_pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    out: dict[int, float] = {}
    for proc in procs:
        try:
            cmdline = " ".join(proc.cmdline())
            if "locust" in cmdline or "wrk" in cmdline:
                times = proc.cpu_times()
                out[proc.pid] = times.user + times.system
        except psutil.Error:
            continue
    return out


@dataclass(frozen=True, slots=True)
class Row:
    """A generator to measure: its command line and environment, on which cores."""

    key: str
    title: str
    argv: list[str]
    env: dict[str, str]
    cores: tuple[int, ...] = (GENERATOR_CORE,)
    stop_after_window: bool = True
    """False: let it end by itself (perfsuite run: its result carries the trust verdict)."""
    result_file: Path | None = None
    first_requests: int = 20
    """Requests nginx must see before the warm-up starts."""
    cwd: Path = REPO


Probe = Callable[[int], dict[str, float]]
"""Cumulative figures of a row's run (given its root pid), read at the window's start and end: their
differences land in ``Measure.extra`` (e.g. the CPU seconds of processes other than the generator's)."""


def run_row(
    row: Row, nginx: Nginx, args: argparse.Namespace, log: Path, probe: Probe | None = None
) -> Measure | None:
    """Run one row, measure its steady window; None when it never got going."""
    if row.result_file is not None:
        row.result_file.unlink(missing_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            ["taskset", "-c", ",".join(map(str, row.cores)), *row.argv],
            cwd=row.cwd, env=row.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        before = nginx.requests()
        deadline = time.monotonic() + 60
        while nginx.requests() - before < row.first_requests:
            if process.poll() is not None or time.monotonic() > deadline:
                print(f"    {row.key}: no load reached the target (see {log})", file=sys.stderr)
                return None
            time.sleep(0.1)
        time.sleep(args.warmup_s)
        probed0 = probe(process.pid) if probe is not None else {}
        cpu0, n0, t0 = _generator_cpu(process.pid), nginx.requests(), time.monotonic()
        time.sleep(args.window_s)
        cpu1, n1, t1 = _generator_cpu(process.pid), nginx.requests(), time.monotonic()
        probed1 = probe(process.pid) if probe is not None else {}
        cpu_s = sum(value - cpu0.get(pid, 0.0) for pid, value in cpu1.items())
        measure = Measure(requests=n1 - n0, cpu_s=cpu_s, elapsed_s=t1 - t0)
        measure.extra.update({key: probed1[key] - probed0.get(key, 0.0) for key in probed1})
        if process.pid in cpu1:  # with --processes the root process is Locust's master
            measure.extra["root_cpu_s"] = cpu1[process.pid] - cpu0.get(process.pid, 0.0)
        if row.stop_after_window:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=args.window_s * 3 + 120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if row.result_file is not None:
        if not row.result_file.exists():
            print(f"    {row.key}: no result file (see {log})", file=sys.stderr)
            return measure
        result = json.loads(row.result_file.read_text())
        figures = result.get("figures") or result  # perfsuite.result/2 keeps them under figures
        latency, arrival = figures["latency"], figures.get("arrival") or {}
        measure.trust = bool(latency["trustworthy"])
        measure.reasons = tuple(latency["untrustworthy_reasons"])
        generator = latency.get("generator") or {}
        measure.extra = {
            "cpu_max": float(generator.get("cpu_max_percent") or 0),
            "loop_p99": float(generator.get("loop_lag_p99_ms") or 0),
            "sched_p99": float((arrival.get("schedule_lag_ms") or {}).get("p99") or 0),
            "p99_ms": float(latency["corrected"].get("p99_ms") or 0),
        }
    return measure


# ------------------------------------------------------------------------------------------ rows


def message_shape() -> tuple[int, dict[str, str]]:
    """Mean urlencoded size of perfsuite's messages (default mix) and one message's headers."""
    config = load_config()
    generator = TrafficGenerator(
        account_sid=config.target.account_sid,
        bot_number=config.target.bot_number,
        public_url="http://127.0.0.1:8080" + WEBHOOK,
        auth_token=TOKEN,
        mix=config.traffic.message_mix,
        invalid_signature_rate=0,
        duplicate_rate=0,
        rng=random.Random(1),
    )
    sender = generator.new_sender()
    messages = [generator.next_message(sender) for _ in range(5000)]
    size = round(statistics.mean(len(m.urlencoded().encode()) for m in messages))
    return size, messages[0].headers()


def bare_body(size: int) -> bytes:
    """A plausible form of exactly ``size`` bytes."""
    head = b"SmsMessageSid=SM0123456789abcdef0123456789abcdef&NumMedia=0&ProfileName=Ana&Body="
    return head + b"x" * max(0, size - len(head))


def build_rows(args: argparse.Namespace, tmp: Path, nginx: Nginx, redis_url: str) -> dict[str, Row]:
    size, headers = message_shape()
    body = bare_body(size)
    args.body_size = size
    python = sys.executable
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PERFSUITE_")}
    base_env.update(REDIS_URL=redis_url, TWILIO_AUTH_TOKEN=TOKEN, PYTHONUNBUFFERED="1")

    def locust(locustfile: Path, *extra: str) -> list[str]:
        return [python, "-m", "locust", "-f", str(locustfile), "--headless", "--host", nginx.url,
                "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "2", *extra]  # fmt: skip

    rows: dict[str, Row] = {}
    users = str(args.users)
    bare = tmp / "bare_locustfile.py"
    bare.write_text(BARE_LOCUSTFILE.format(body=body, headers=headers, path=WEBHOOK, wait="constant(0)"))
    paced = tmp / "paced_locustfile.py"
    paced.write_text(
        BARE_LOCUSTFILE.format(body=body, headers=headers, path=WEBHOOK, wait="constant_throughput(10)")
    )
    rows["a"] = Row("a", "bare Locust FastHttpUser", locust(bare, "-u", users, "-r", users), base_env)
    closed = {
        "webhook.concurrent_users": args.users,
        "webhook.requests_per_user": 1_000_000,
        "webhook.ramp_up_time": 1,
        "webhook.think_time_s": [0, 0],
        "webhook.enable_burst_testing": False,
        "webhook.max_duration_s": 3600,
        "traffic.invalid_signature_rate": 0,
        "traffic.duplicate_rate": 0,
    }
    for name, repo in [("", REPO), *args.variant]:
        env = {**base_env, "PYTHONPATH": str(repo), "PERFSUITE_OVERRIDES": json.dumps(closed)}
        suffix, tag = (f" [{name}]", f"@{name}") if name else ("", "")
        # cwd = the copy itself: `python -m` puts the working directory first on sys.path.
        rows["b" + tag] = Row(
            "b" + tag, "perfsuite closed, collector on" + suffix,
            locust(Path(repo) / "locustfiles" / "webhook.py"), env, cwd=Path(repo),
        )  # fmt: skip
        no_collector = tmp / f"no_collector{name}.py"
        no_collector.write_text(NO_COLLECTOR_LOCUSTFILE)
        rows["c" + tag] = Row("c" + tag, "perfsuite closed, collector not installed" + suffix,
                              locust(no_collector), env, cwd=Path(repo))  # fmt: skip
    if args.workers == 2:
        rows["a1w"] = Row("a1w", "bare Locust, master + 1 worker (2 cores)",
                          locust(bare, "-u", users, "-r", users, "--processes", "1"), base_env,
                          cores=(0, 1))  # fmt: skip
        rows["b1w"] = Row("b1w", "perfsuite closed, master + 1 worker (2 cores)",
                          locust(REPO / "locustfiles" / "webhook.py", "--processes", "1"),
                          {**base_env, "PYTHONPATH": str(REPO), "PERFSUITE_OVERRIDES": json.dumps(closed)},
                          cores=(0, 1))  # fmt: skip
        rows["a2"] = Row("a2", "bare Locust, --processes 2 (2 cores)",
                         locust(bare, "-u", users, "-r", users, "--processes", "2"), base_env,
                         cores=(0, 1))  # fmt: skip
        rows["b2"] = Row("b2", "perfsuite closed, collector on, --processes 2 (2 cores)",
                         locust(REPO / "locustfiles" / "webhook.py", "--processes", "2"),
                         {**base_env, "PYTHONPATH": str(REPO), "PERFSUITE_OVERRIDES": json.dumps(closed)},
                         cores=(0, 1))  # fmt: skip
    config = tmp / "open.yaml"
    config.write_text(
        "version: 1\nscenarios:\n  default: {}\ntarget:\n  health_path: null\n"
        "traffic:\n  invalid_signature_rate: 0\n  duplicate_rate: 0\n"
    )
    run_s = args.warmup_s + args.window_s + 3
    for name, repo in [("", REPO), *args.variant]:
        tag = f"@{name}" if name else ""
        for rate in args.rates:
            key = f"d{rate:g}{tag}"
            out = tmp / f"open-{rate:g}{name}.json"
            rows[key] = Row(
                key, f"perfsuite open model at {rate:g}/s" + (f" [{name}]" if name else ""),
                [python, "-m", "perfsuite", "run", "--config", str(config), "--host", nginx.url,
                 "--arrival-rate", f"{rate:g}", "--run-time", f"{run_s:g}", "--output-file", str(out)],
                {**base_env, "PYTHONPATH": str(repo)}, stop_after_window=False, result_file=out,
                first_requests=max(5, min(20, round(rate / 20))), cwd=Path(repo),
            )  # fmt: skip
    if not args.no_wrk and shutil.which("wrk"):
        script = tmp / "post.lua"
        script.write_text(WRK_SCRIPT.format(body=json.dumps(body.decode())))
        rows["e"] = Row("e", "wrk, 1 thread", ["wrk", "-t1", f"-c{args.users}", f"-d{run_s + 30:g}s",
                        "-s", str(script), nginx.url + WEBHOOK], base_env)  # fmt: skip
    rows["f"] = Row(
        "f", "bare Locust paced at 100/s (10 users)", locust(paced, "-u", "10", "-r", "10"), base_env
    )
    return rows


def _ladder_of(key: str) -> str | None:
    """``d`` (or ``d@name``) for the open-model rows of a variant: ``--rows d@before`` selects them all."""
    if not key.startswith("d"):
        return None
    _, at, name = key.partition("@")
    return "d" + at + name


# ------------------------------------------------------------------------------------------ report


def _median_span(values: Sequence[float], fmt: Callable[[float], str]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}-{fmt(max(values))})"


def report(
    rows: dict[str, Row], results: dict[str, list[tuple[int, Measure]]], args: argparse.Namespace
) -> None:
    bare_by_round = {r: m for r, m in results.get("a", [])}
    print(f"\nform size {args.body_size} bytes (mean of perfsuite's messages, default mix); "
          f"{args.rounds} rounds, window {args.window_s:g} s after {args.warmup_s:g} s warm-up; "
          "median (min-max) over rounds\n")  # fmt: skip
    header = (
        f"{'row':<58}{'requests/s':>24}{'CPU us/request':>22}{'CPU %':>8}"
        f"{'req/s vs a':>20}{'req/s per core vs a':>22}"
    )
    print(header)
    print("-" * len(header))
    for key, row in rows.items():
        measures = results.get(key, [])
        if not measures or key.startswith("d"):
            continue
        ms = [m for _, m in measures]
        ratios = [m.rps / bare_by_round[r].rps for r, m in measures if r in bare_by_round]
        efficiency = [bare_by_round[r].cpu_us / m.cpu_us for r, m in measures if r in bare_by_round]
        print(
            f"({key}) {row.title:<53}"
            f"{_median_span([m.rps for m in ms], lambda v: f'{v:,.0f}'):>24}"
            f"{_median_span([m.cpu_us for m in ms], lambda v: f'{v:,.0f}'):>22}"
            f"{statistics.median(m.cpu_percent for m in ms):>8.0f}"
            f"{_median_span(ratios, lambda v: f'{v:.2f}'):>20}"
            f"{_median_span(efficiency, lambda v: f'{v:.2f}'):>22}"
        )
    distributed(results)
    open_keys = [k for k in rows if k.startswith("d")]
    if not open_keys:
        return
    bare_rps = statistics.median(m.rps for m in bare_by_round.values()) if bare_by_round else float("nan")
    bare_us = statistics.median(m.cpu_us for m in bare_by_round.values()) if bare_by_round else float("nan")
    bare_per_core = 1e6 / bare_us
    print(
        "\nopen model (perfsuite run --arrival-rate R): achieved rate, CPU, the suite's trust verdict; "
        f"bare Locust closed model: {bare_rps:,.0f} requests/s, {bare_per_core:,.0f} requests/s per core"
    )
    for tag in dict.fromkeys(k.partition("@")[2] for k in open_keys):
        keys = [k for k in open_keys if k.partition("@")[2] == tag]
        print("\nperfsuite open model" + (f" [{tag}]" if tag else ""))
        header = (
            f"{'rate/s':>8}{'requests/s':>22}{'CPU us/req':>18}{'CPU %':>18}{'trusted':>9}"
            f"{'sched P99 ms':>14}{'loop P99 ms':>13}{'rate/(a/core)':>15}  why not (last untrusted round)"
        )
        print(header)
        print("-" * len(header))
        highest_all = highest_majority = 0.0
        for key in keys:
            ms = [m for _, m in results.get(key, [])]
            if not ms:
                continue
            rate = float(key[1:].partition("@")[0])
            trusted = sum(1 for m in ms if m.trust)
            if trusted == len(ms):
                highest_all = max(highest_all, rate)
            if trusted * 2 > len(ms):
                highest_majority = max(highest_majority, rate)
            reasons = next((m.reasons for m in reversed(ms) if m.trust is False), ())
            reason = "; ".join(r.split(":")[0].split(" (")[0] for r in reasons)[:100]
            print(
                f"{rate:>8,.0f}{_median_span([m.rps for m in ms], lambda v: f'{v:,.0f}'):>22}"
                f"{_median_span([m.cpu_us for m in ms], lambda v: f'{v:,.0f}'):>18}"
                f"{_median_span([m.cpu_percent for m in ms], lambda v: f'{v:.1f}'):>18}"
                f"{f'{trusted}/{len(ms)}':>9}"
                f"{statistics.median(m.extra.get('sched_p99', 0) for m in ms):>14.2f}"
                f"{statistics.median(m.extra.get('loop_p99', 0) for m in ms):>13.2f}"
                f"{rate / bare_per_core:>15.2f}  {reason}"
            )
        print(
            f"highest rate trusted in every round: {highest_all:,.0f}/s "
            f"({highest_all / bare_per_core:.2f} of bare Locust's requests/s per core); "
            f"in most rounds: {highest_majority:,.0f}/s "
            f"({highest_majority / bare_per_core:.2f})"
        )


def distributed(results: dict[str, list[tuple[int, Measure]]]) -> None:
    """Master + 1 and + 2 workers: requests/s and the master's CPU per 1,000 requests/s, perfsuite
    against bare Locust with the same worker count (per round, then the median)."""
    pairs = [("1 worker", "a1w", "b1w"), ("2 workers", "a2", "b2")]
    if not any(results.get(b) for _, _, b in pairs):
        return
    print(
        "\ndistributed (master + N workers on 2 cores, nginx unpinned): perfsuite against bare Locust "
        "with the same worker count"
    )
    header = f"{'workers':<10}{'bare req/s':>14}{'perfsuite req/s':>18}{'ratio':>8}"
    header += f"{'bare master CPU % per 1k req/s':>33}{'perfsuite master':>18}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for label, bare_key, ours_key in pairs:
        bare = dict(results.get(bare_key, []))
        ours = dict(results.get(ours_key, []))
        rounds = sorted(set(bare) & set(ours))
        if not rounds:
            continue

        def master_per_k(m: Measure) -> float:
            return 100 * m.extra.get("root_cpu_s", float("nan")) / m.elapsed_s / (m.rps / 1000)

        print(
            f"{label:<10}{statistics.median(bare[r].rps for r in rounds):>14,.0f}"
            f"{statistics.median(ours[r].rps for r in rounds):>18,.0f}"
            f"{statistics.median(ours[r].rps / bare[r].rps for r in rounds):>8.2f}"
            f"{statistics.median(master_per_k(bare[r]) for r in rounds):>33.2f}"
            f"{statistics.median(master_per_k(ours[r]) for r in rounds):>18.2f}"
            f"{statistics.median(master_per_k(ours[r]) / master_per_k(bare[r]) for r in rounds):>8.2f}"
        )


# ------------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--window-s", type=float, default=10.0, help="measured seconds per row")
    parser.add_argument("--warmup-s", type=float, default=3.0, help="seconds of load before the window")
    parser.add_argument("--users", type=int, default=100, help="closed-model users / wrk connections")
    parser.add_argument("--rates", default="100,500,1000,1500,2000,3000,4000",
                        help="open-model ladder, requests/s (empty: skip)")  # fmt: skip
    parser.add_argument(
        "--rows", default="", help="only these rows, e.g. a,b,c,e,b@proto,d@proto (default: all)"
    )
    parser.add_argument("--workers", type=int, choices=(1, 2), default=1, help="2: add --processes 2 rows")
    parser.add_argument("--no-wrk", action="store_true")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=DIR",
                        help="extra (b)/(c) rows from a copy of the repository (prototypes)")  # fmt: skip
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    args.variant = [tuple(v.split("=", 1)) for v in args.variant]
    if psutil.cpu_count() < 2:
        raise SystemExit("needs 2 cores (target on one, generator on the other)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop nginx and Redis on the way out
    # This script only sleeps and polls: keep it off the generator's core.
    os.sched_setaffinity(0, {TARGET_CORE})
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-generator-") as tmp_name:
        tmp = Path(tmp_name)
        nginx = Nginx.start(tmp / "nginx")
        redis: ManagedProcess = start_redis()
        psutil.Process(redis.process.pid).cpu_affinity([TARGET_CORE])
        try:
            rows = build_rows(args, tmp, nginx, redis.url)
            if args.rows:
                wanted = set(args.rows.split(","))
                rows = {k: r for k, r in rows.items() if k in wanted or _ladder_of(k) in wanted}
            keys = list(rows)
            results: dict[str, list[tuple[int, Measure]]] = {}
            print(f"nginx {nginx.url}; {len(keys)} rows x {args.rounds} rounds; logs in {tmp}", flush=True)
            for round_index in range(args.rounds):
                shift = round_index % len(keys)
                for key in keys[shift:] + keys[:shift]:
                    row = rows[key]
                    nginx.pin(row.cores if len(row.cores) > 1 else (TARGET_CORE,))
                    measure = run_row(row, nginx, args, tmp / f"{key}.log")
                    if measure is None:
                        continue
                    results.setdefault(key, []).append((round_index, measure))
                    trust = "" if measure.trust is None else f" trusted={measure.trust}"
                    print(
                        f"  round {round_index + 1} ({key}) {measure.rps:9,.0f} req/s "
                        f"{measure.cpu_us:7.1f} us/req  CPU {measure.cpu_percent:5.1f}%{trust}",
                        flush=True,
                    )
            nginx.pin((TARGET_CORE,))
            report(rows, results, args)
        finally:
            redis.stop()
            nginx.stop()
    print(f"\n({time.monotonic() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
