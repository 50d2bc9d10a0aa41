"""A/A and A/B study of the interleaved comparison (``perfsuite ab``) on this machine, under other load.

Does ``perfsuite ab`` stay quiet when nothing changed, and find a slowdown when there is one? The same
setting as the history gate's study (``bench/bench_regression_gate.py``: the same burner, demo bots
with ``--extra-latency-ms``), so the two can be read side by side. Four demo bots run on one private
Redis: **A** and **A2**, two instances of the build as it is, and **B10** and **B30**, the same build
with ``--extra-latency-ms`` set to 10% and 30% of A's P95 (measured in a calibration comparison
first, under the same load). Each trial is one real comparison, run in this process through the job
skeleton exactly as ``perfsuite ab --host-a A --host-b X --arrival-rate R --run-time T`` runs it
(Locust, the collector, the live watcher that stops the load once the answer is clear):

- **A/A**: A against A2: a "slower" (or "faster") verdict is false;
- **A/B 10%** and **A/B 30%**: A against B10 / B30: "slower" is a detection.

Each round runs the three in a random order (a drift in machine load hits all). ``--burners``
processes busy-loop beside it, ``intermittent`` (on and off in random 0.5-4 s spells) by default;
the machine's other users come on top. The study stops after ``--max-minutes`` and reports what it
has.

Run: ``python bench/bench_ab_gate.py [--rounds 15] [--rate 200] [--run-time 60] [--output ab.json]``;
``--summarise ab.json`` prints a stored study's summary again.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_regression_gate import burners

from abtest.comparison import SIDES, AbFigures
from abtest.job import AbTest
from perfsuite.collector import CollectorReader
from perfsuite.config import SuiteConfig, load_config
from perfsuite.embedded import ManagedProcess, start_demo_bot, start_redis
from perfsuite.jobs import RunOptions, run_job

TOKEN = "bench-ab-token-not-a-secret"


def _bot(redis_url: str, extra_ms: float, log_dir: Path) -> ManagedProcess:
    args = ["--rate-limit-per-min", "0"]
    if extra_ms:
        args += ["--extra-latency-ms", f"{extra_ms:.3f}"]
    return start_demo_bot(redis_url, TOKEN, log_dir=log_dir, extra_args=tuple(args))


def _config(collector_url: str, host_b: str, rate: float, run_time_s: float) -> SuiteConfig:
    overrides = {"ab.host_b": host_b, "ab.rate_per_s": rate, "ab.max_run_time_s": run_time_s}
    return load_config(overrides=overrides, environ={"TWILIO_AUTH_TOKEN": TOKEN, "REDIS_URL": collector_url})


def compare(
    collector_url: str, host_a: str, host_b: str, rate: float, run_time_s: float, state: Path
) -> dict[str, Any]:
    """One comparison of ``host_b`` against ``host_a``: its figures and how long it took."""
    config = _config(collector_url, host_b, rate, run_time_s)
    started = time.monotonic()
    result = run_job(AbTest(), config, RunOptions(host=host_a, state_dir=state), collector_url)
    figures = result.figures if isinstance(result.figures, AbFigures) else AbFigures()
    p95 = figures.of("p95")
    whole = whole_run_p95_ms(collector_url, result.run_id)
    return {
        "run_id": result.run_id,
        "verdict": figures.verdict,
        "decided_at_s": figures.decided_at_s,
        "slices": figures.slices,
        "stopped_early": figures.stopped_early,
        "p95_change": p95.change if p95 else None,
        "p95_low": p95.low if p95 else None,
        "p95_high": p95.high if p95 else None,
        "p95_a_ms": p95.a_ms if p95 else None,
        "p95_b_ms": p95.b_ms if p95 else None,
        "p95_whole_run_ms": whole,
        "exact": bool(result.collector and result.collector.exact),
        "wall_s": time.monotonic() - started,
        "load1": os.getloadavg()[0],
    }


def whole_run_p95_ms(collector_url: str, run_id: str) -> dict[str, float]:
    """Each side's P95 over the whole run (its valid-signature rows' merged histograms), as a report
    would show it: the slowdown as measured."""
    data = CollectorReader(collector_url).load(run_id)
    cells = data.cells
    out = {}
    for side in SIDES:
        names = cells["name"].astype(str)
        chosen = np.flatnonzero(names.str.startswith(side + " ") & ~names.str.contains("bad-signature"))
        out[side] = data.histograms["rt"].histogram(chosen).percentile_us(95.0) / 1000
    return out


def _rate(hits: int, n: int) -> str:
    return f"{hits}/{n} ({hits / n:.0%})" if n else "-"


def _spread(values: list[float]) -> list[float] | None:
    """``[min, median, max]`` of ``values`` (None when there are none)."""
    return [min(values), statistics.median(values), max(values)] if values else None


def summarise(trials: list[dict[str, Any]], run_time_s: float) -> dict[str, Any]:
    """Rates per condition (the goals' figures)."""
    out: dict[str, Any] = {}
    for kind in ("A/A", "A/B 10%", "A/B 30%"):
        rows = [trial for trial in trials if trial["kind"] == kind]
        slower = sum(trial["verdict"] == "slower" for trial in rows)
        faster = sum(trial["verdict"] == "faster" for trial in rows)
        within = sum(
            trial["verdict"] == "slower" and (trial["decided_at_s"] or math.inf) <= run_time_s
            for trial in rows
        )
        times = [
            trial["decided_at_s"] for trial in rows if trial["verdict"] == "slower" and trial["decided_at_s"]
        ]
        ratios = [trial["p95_whole_run_ms"]["B"] / trial["p95_whole_run_ms"]["A"] for trial in rows]
        widths = [
            (trial["p95_high"] - trial["p95_low"]) / 2
            for trial in rows
            if trial["p95_low"] is not None and trial["p95_high"] is not None
        ]
        typical = [1 + trial["p95_change"] for trial in rows if trial["p95_change"] is not None]
        out[kind] = {
            "trials": len(rows),
            "slower": _rate(slower, len(rows)),
            "faster": _rate(faster, len(rows)),
            "slower_within_run_time": _rate(within, len(rows)),
            "verdicts": {
                verdict: sum(t["verdict"] == verdict for t in rows)
                for verdict in {t["verdict"] for t in rows}
            },
            "decided_at_s_min_median_max": _spread(times),
            "p95_interval_half_width_min_median_max": _spread(widths),
            "p95_a_ms_min_median_max": _spread([t["p95_a_ms"] for t in rows if t["p95_a_ms"] is not None]),
            "load1_min_max": [min(t["load1"] for t in rows), max(t["load1"] for t in rows)] if rows else None,
            "median_p95_ratio_whole_run": statistics.median(ratios) if ratios else None,
            "median_p95_ratio_typical_slice": statistics.median(typical) if typical else None,
            "collector_exact": all(trial["exact"] for trial in rows),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15, help="rounds of the three comparisons (default 15)")
    parser.add_argument("--rate", type=float, default=200.0, help="arrivals per second, both sides together")
    parser.add_argument("--run-time", type=float, default=60.0, help="each comparison's limit in seconds")
    parser.add_argument("--burners", type=int, default=1)
    parser.add_argument("--pattern", choices=("intermittent", "steady", "none"), default="intermittent")
    parser.add_argument("--max-minutes", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None, help="write every trial and the summary as JSON")
    parser.add_argument(
        "--summarise", type=Path, default=None, help="print the summary of a stored --output file and exit"
    )
    args = parser.parse_args()
    if args.summarise is not None:
        stored = json.loads(args.summarise.read_text())
        print(json.dumps(summarise(stored["trials"], stored["settings"]["run_time"]), indent=2))
        return 0
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.max_minutes * 60
    trials: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as state_dir:
        state = Path(state_dir)
        collector = start_redis()
        stack.callback(collector.stop)
        bot_redis = start_redis()
        stack.callback(bot_redis.stop)
        a = _bot(bot_redis.url, 0, state)
        stack.callback(a.stop)
        a2 = _bot(bot_redis.url, 0, state)
        stack.callback(a2.stop)
        stack.enter_context(burners(args.burners, args.pattern, args.max_minutes * 60 + 600))
        calibration = compare(collector.url, a.url, a2.url, args.rate, 20, state)
        p95_a = calibration["p95_a_ms"] or 10.0
        print(f"calibration (A/A, 20 s): A's P95 {p95_a:.2f} ms; verdict {calibration['verdict']}")
        b10 = _bot(bot_redis.url, 0.10 * p95_a, state)
        stack.callback(b10.stop)
        b30 = _bot(bot_redis.url, 0.30 * p95_a, state)
        stack.callback(b30.stop)
        print(f"B10: +{0.10 * p95_a:.3f} ms, B30: +{0.30 * p95_a:.3f} ms on every answer")
        conditions = [("A/A", a2.url), ("A/B 10%", b10.url), ("A/B 30%", b30.url)]
        for round_no in range(1, args.rounds + 1):
            order = conditions[:]
            rng.shuffle(order)
            for kind, host_b in order:
                if time.monotonic() > deadline:
                    break
                trial = {
                    "kind": kind,
                    "round": round_no,
                    **compare(collector.url, a.url, host_b, args.rate, args.run_time, state),
                }
                trials.append(trial)
                print(
                    f"round {round_no} {kind:8} {trial['verdict']:13} decided at {trial['decided_at_s']} s "
                    f"({trial['slices']} slices), P95 change {trial['p95_change']}, "
                    f"load {trial['load1']:.1f}",
                    flush=True,
                )
            if time.monotonic() > deadline:
                print("stopped: --max-minutes reached")
                break
    summary = summarise(trials, args.run_time)
    document = {
        "settings": vars(args) | {"output": str(args.output)},
        "calibration": calibration,
        "extra_latency_ms": {"B10": 0.10 * p95_a, "B30": 0.30 * p95_a},
        "summary": summary,
        "trials": trials,
    }
    print(json.dumps(summary, indent=2))
    if args.output is not None:
        args.output.write_text(json.dumps(document, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
