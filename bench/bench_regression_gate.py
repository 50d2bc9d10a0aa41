"""A/A and A/B study of the regression gate on this machine, with other load beside it.

Does the gate stay quiet when nothing changed, and speak when something did? Two demo bots run
side by side (private Redis, started here, loaded with ``--host``): **A**, the build as it is, and
**B**, the same build with a known slowdown (``--extra-latency-ms``, calibrated to 30% of A's P95
over the warm-up runs, so B's P95 is 1.3x A's; ``--slowdown-factor`` uses the bot's multiplicative
``--slowdown`` knob instead). Every run is a real ``perfsuite`` webhook job (arrival-rate load
through Locust, the collector, a graded result stored in a private Redis), run in this process
through the job skeleton, exactly as ``perfsuite run --host URL --arrival-rate R --run-time T``.

The sequence: ``--warmup`` runs of A (the history), then ``--k`` steps, each one run of A and one
of B (their order alternating, so a drift in machine load hits both). At step k:

- **A/A pair**: baseline the previous A run, current the new A run: any regression is false;
- **A/B pair**: baseline the newest A run before B's, current the B run: a regression is a detection.

Both are compared by the real gate (``baseline.job.compare_named``), so the earlier A runs of
the same target and scenario join the baseline as its history (``--history-runs``, default the
configuration's ``baseline.history_runs``). With ``--current-runs N`` each step runs N of A and N
of B and the current side is that group (what ``perfsuite run --repeat N`` gives).

Other load: ``--burners`` processes that busy-loop, ``intermittent`` (on and off for random
0.5-4 s spells, seeded: load that changes between runs, as other people's work does) or
``steady``; the machine's other users come on top. The whole study stops after
``--max-minutes`` (default 30) and reports what it has.

Run: ``python bench/bench_regression_gate.py [--k 20] [--warmup 6] [--rate 40] [--run-time 10]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baseline.job import compare_named
from baseline.regression import Verdict
from perfsuite import registry
from perfsuite.collector import RunData
from perfsuite.config import BaselineConfig, SuiteConfig, load_config
from perfsuite.embedded import ManagedProcess, start_demo_bot, start_redis
from perfsuite.history import RunHistory
from perfsuite.jobs import RunOptions, run_job
from perfsuite.result import RunResult

TOKEN = "bench-gate-token-not-a-secret"
METRICS = ("webhook_avg_ms", "webhook_p50_ms", "webhook_p95_ms", "webhook_p99_ms", "webhook_success_rate")


def _burn(seed: int, pattern: str, stop_at: float) -> None:
    """A busy loop: always on (steady), or on and off for random spells (intermittent)."""
    rng = random.Random(seed)
    while time.time() < stop_at:
        spell = rng.uniform(0.5, 4.0)
        busy = pattern == "steady" or rng.random() < 0.5
        until = min(time.time() + spell, stop_at)
        if busy:
            while time.time() < until:
                pass
        else:
            time.sleep(max(0.0, until - time.time()))


@contextlib.contextmanager
def burners(count: int, pattern: str, max_s: float) -> Iterator[None]:
    """``count`` burner processes for the study's duration (each bounded by ``max_s``)."""
    processes = [
        multiprocessing.Process(target=_burn, args=(i, pattern, time.time() + max_s), daemon=True)
        for i in range(count if pattern != "none" else 0)
    ]
    for process in processes:
        process.start()
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=5)


@dataclass
class Pair:
    """One comparison of the study."""

    kind: str
    """``A/A`` or ``A/B``."""
    step: int
    baseline: str
    current: list[str]
    verdicts: dict[str, str] = field(default_factory=dict)
    effects: dict[str, float | None] = field(default_factory=dict)
    ratio_p95: float | None = None
    """Current P95 over the baseline's (the slowdown as measured)."""


class Study:
    """The runs and the comparisons (see the module docstring)."""

    def __init__(
        self,
        args: argparse.Namespace,
        collector_url: str,
        bot_redis: str,
        spill: Path,
        stack: contextlib.ExitStack,
    ) -> None:
        self.args = args
        self.stack = stack
        self.collector_url = collector_url
        self.bot_redis = bot_redis
        self.history = RunHistory(collector_url, "perfsuite")
        self.spill = spill
        overrides = {"arrival.rate_per_s": args.rate, "arrival.duration_s": args.run_time}
        self.config: SuiteConfig = load_config(None, None, overrides)
        self.settings: BaselineConfig = self.config.baseline.model_copy(
            update={"history_runs": args.history_runs} if args.history_runs is not None else {}
        )
        self.bots: dict[str, ManagedProcess] = {}
        self.runs: dict[str, list[str]] = {"A": [], "B": []}
        self.p95: dict[str, float] = {}
        self.values: list[dict[str, Any]] = []
        """Every run in order: its bot and its metrics (the raw data, for ``--output``)."""

    def start_bot(self, name: str, extra: list[str]) -> None:
        """Start bot ``name`` (its own key prefix on the shared private Redis); it stops with the study."""
        self.bots[name] = start_demo_bot(
            self.bot_redis,
            TOKEN,
            extra_args=["--key-prefix", f"gate{name}:", "--rate-limit-per-min", "0", *extra],
        )
        self.stack.callback(self.bots[name].stop)

    def run(self, name: str) -> RunResult:
        """One webhook job against bot ``name``, stored in the history."""
        history = self.history

        def store(result: RunResult, data: RunData | None) -> RunResult:
            history.store(result)
            return result

        options = RunOptions(host=self.bots[name].url, state_dir=self.spill)
        result = run_job(registry.get("webhook"), self.config, options, self.collector_url, store=store)
        if result.interrupted:
            raise KeyboardInterrupt
        self.runs[name].append(result.run_id)
        summary = result.summary
        self.values.append(
            {
                "run_id": result.run_id,
                "bot": name,
                "avg_ms": summary.avg_ms,
                "p50_ms": summary.p50_ms,
                "p95_ms": summary.p95_ms,
                "p99_ms": summary.p99_ms,
                "success_rate": summary.success_rate,
                "load_1m": os.getloadavg()[0],
            }
        )
        if result.summary.p95_ms is not None:
            self.p95[result.run_id] = result.summary.p95_ms
        return result

    def compare(self, kind: str, step: int, baseline: str, current: list[str]) -> Pair:
        """The gate's verdicts on ``current`` against ``baseline`` (and its history)."""
        comparison = compare_named(self.history, self.settings, baseline, ",".join(current))
        pair = Pair(kind, step, baseline, current)
        for row in comparison.rows:
            if row.difference is not None and row.spec.key in METRICS:
                pair.verdicts[row.spec.key] = row.difference.verdict.value
                pair.effects[row.spec.key] = row.difference.effect
        p95s = [self.p95[run_id] for run_id in current if run_id in self.p95]
        if p95s and baseline in self.p95:
            pair.ratio_p95 = statistics.geometric_mean(p95s) / self.p95[baseline]
        return pair


def _table(
    pairs: list[Pair], args: argparse.Namespace, extra_ms: float | None, realized: float | None
) -> str:
    aa = [p for p in pairs if p.kind == "A/A"]
    ab = [p for p in pairs if p.kind == "A/B"]
    lines = [
        f"K = {len(aa)} A/A pairs, {len(ab)} A/B pairs; {args.current_runs} current run(s) per side; "
        f"arrival rate {args.rate:g}/s for {args.run_time:g} s per run; burners: {args.burners} "
        f"{args.burn_pattern}",
        "slowdown injected into B: "
        + (
            f"{extra_ms:.2f} ms per request (30% of A's warm-up P95)"
            if extra_ms is not None
            else f"x{args.slowdown_factor}"
        )
        + (f"; measured P95 ratio B/A (median over A/B pairs): {realized:.2f}" if realized else ""),
        "",
        "| metric | A/A false regressions | A/A no change / inconclusive | A/B detected | A/B missed |",
        "|---|---|---|---|---|",
    ]
    for metric in METRICS:
        false = sum(p.verdicts.get(metric) == Verdict.REGRESSION for p in aa)
        quiet = sum(p.verdicts.get(metric) in (Verdict.NO_CHANGE, Verdict.INCONCLUSIVE) for p in aa)
        found = sum(p.verdicts.get(metric) == Verdict.REGRESSION for p in ab)
        lines.append(
            f"| {metric} | {false}/{len(aa)} ({_pct(false, len(aa))}) | {quiet}/{len(aa)} | "
            f"{found}/{len(ab)} ({_pct(found, len(ab))}) | {len(ab) - found}/{len(ab)} |"
        )
    return "\n".join(lines)


def _pct(count: int, total: int) -> str:
    return "-" if not total else f"{count / total * 100:.0f}%"


def main() -> None:
    """Run the study and print its table (and write the raw pairs with ``--output``)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--k", type=int, default=20, help="A/A and A/B pairs (default 20)")
    parser.add_argument("--warmup", type=int, default=6, help="runs of A before the first pair (default 6)")
    parser.add_argument("--rate", type=float, default=40.0, help="arrival rate, requests/s (default 40)")
    parser.add_argument("--run-time", type=float, default=10.0, help="seconds of load per run (default 10)")
    parser.add_argument("--current-runs", type=int, default=1, help="runs per side and step (default 1)")
    parser.add_argument("--history-runs", type=int, default=None, help="baseline.history_runs for the gate")
    parser.add_argument(
        "--burners", type=int, default=1, help="busy-loop processes beside the runs (default 1)"
    )
    parser.add_argument("--burn-pattern", choices=("intermittent", "steady", "none"), default="intermittent")
    parser.add_argument(
        "--slowdown", type=float, default=0.30, help="P95 slowdown injected into B (default 0.30)"
    )
    parser.add_argument(
        "--slowdown-factor", type=float, default=None, help="use the bot's --slowdown FACTOR instead"
    )
    parser.add_argument("--max-minutes", type=float, default=30.0, help="stop the study after this long")
    parser.add_argument("--output", type=Path, default=None, help="write the raw pairs here (JSON)")
    args = parser.parse_args()
    if not 1 <= args.k <= 100 or not 2 <= args.warmup <= 50 or not 1 <= args.current_runs <= 5:
        parser.error("--k 1..100, --warmup 2..50, --current-runs 1..5")
    os.environ["TWILIO_AUTH_TOKEN"] = TOKEN
    deadline = time.monotonic() + args.max_minutes * 60
    started = time.monotonic()
    pairs: list[Pair] = []
    extra_ms: float | None = None
    runs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        collector, bot_redis = start_redis(), start_redis()
        stack.callback(collector.stop)
        stack.callback(bot_redis.stop)
        spill = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        stack.enter_context(burners(args.burners, args.burn_pattern, args.max_minutes * 60))
        study = Study(args, collector.url, bot_redis.url, spill, stack)
        runs = study.values
        study.start_bot("A", [])
        for i in range(args.warmup):
            result = study.run("A")
            print(f"warm-up {i + 1}/{args.warmup}: A P95 {result.summary.p95_ms} ms", flush=True)
        if args.slowdown_factor is not None:
            study.start_bot("B", ["--slowdown", str(args.slowdown_factor)])
        else:
            warm = [study.p95[run_id] for run_id in study.runs["A"] if run_id in study.p95]
            extra_ms = args.slowdown * statistics.geometric_mean(warm)
            study.start_bot("B", ["--extra-latency-ms", f"{extra_ms:.3f}"])
        for step in range(1, args.k + 1):
            if time.monotonic() > deadline:
                print(f"stopped after {args.max_minutes:g} minutes at step {step - 1}", flush=True)
                break
            order = ("A", "B") if step % 2 else ("B", "A")
            made: dict[str, list[str]] = {"A": [], "B": []}
            before = study.runs["A"][-1]
            for name in order:
                for _ in range(args.current_runs):
                    made[name].append(study.run(name).run_id)
            base_for_b = made["A"][-1] if order[0] == "A" else before  # the newest A run before B's
            pairs.append(study.compare("A/A", step, before, made["A"]))
            pairs.append(study.compare("A/B", step, base_for_b, made["B"]))
            aa, ab = pairs[-2], pairs[-1]
            key = "webhook_p95_ms"
            print(
                f"step {step}: A/A P95 {aa.verdicts.get(key)} ({_fmt(aa.effects.get(key))}), "
                f"A/B P95 {ab.verdicts.get(key)} ({_fmt(ab.effects.get(key))}, "
                f"ratio {_fmt_ratio(ab.ratio_p95)}) "
                f"[{(time.monotonic() - started) / 60:.1f} min, load {os.getloadavg()[0]:.1f}]",
                flush=True,
            )
    ratios = [p.ratio_p95 for p in pairs if p.kind == "A/B" and p.ratio_p95 is not None]
    realized = statistics.median(ratios) if ratios else None
    print()
    print(_table(pairs, args, extra_ms, realized))
    print(f"\n{(time.monotonic() - started) / 60:.1f} minutes")
    if args.output is not None:
        args.output.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "extra_ms": extra_ms,
                    "runs": runs,
                    "pairs": [vars(p) for p in pairs],
                },
                indent=1,
            )
        )


def _fmt(effect: Any) -> str:
    return "-" if effect is None or not math.isfinite(effect) else f"{effect * 100:+.1f}%"


def _fmt_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}"


if __name__ == "__main__":
    main()
