"""Comparator benchmark (figures for BENCHMARKS.md; not a test).

Synthesizes two one-hour runs at 1,000 requests/s (3 endpoints, per-second drift, a burst; the
second run 30% slower) into a private Redis through the real collector writer, then times what
``perfsuite compare RUN_A RUN_B`` does: read both runs back and cut them into intervals, run the
noise-aware comparison (bootstrap over intervals), and render the text, JSON, HTML and JUnit
reports. The reference, in the same process: reading both runs back and computing their summary
(what any report of the two runs costs anyway).

Budget: the whole comparison at most 5 s.

Usage: python bench/bench_baseline.py [--seconds S] [--rps R]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

from baseline.comparator import compare
from baseline.job import comparison_charts, comparison_result
from baseline.sides import run_side
from baseline.synthetic import SyntheticProfile, write_run
from perfsuite.collector import CollectorReader
from perfsuite.config import BaselineConfig
from perfsuite.embedded import start_redis
from perfsuite.history import RunHistory
from perfsuite.report import render
from perfsuite.report_html import render_html
from perfsuite.report_junit import render_junit

BUDGET_S = 5.0


def main() -> None:
    """Synthesize, then time the comparison and its reference; print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=3600, help="length of each synthesized run")
    parser.add_argument("--rps", type=int, default=1000, help="requests per second of each run")
    args = parser.parse_args()
    profile = SyntheticProfile(
        seconds=args.seconds, rps=args.rps, burst_at_s=args.seconds // 2, burst_seconds=60, burst_factor=1.5
    )
    server = start_redis()
    try:
        with tempfile.TemporaryDirectory() as spill:
            started = time.perf_counter()
            write_run(server.url, "bench-before", profile, seed=1, key_prefix="bench", spill_dir=Path(spill))
            write_run(
                server.url,
                "bench-after",
                dataclasses.replace(profile, slowdown=1.3),
                seed=2,
                key_prefix="bench",
                spill_dir=Path(spill),
            )
            synthesized_s = time.perf_counter() - started
        reader = CollectorReader(server.url, "bench")
        t0 = time.perf_counter()
        runs = [reader.load(run_id) for run_id in ("bench-before", "bench-after")]
        for run in runs:
            run.total()
            run.summary()
        reference_s = time.perf_counter() - t0

        history = RunHistory(server.url, "bench")
        t0 = time.perf_counter()
        before, after = run_side(history, "bench-before"), run_side(history, "bench-after")
        t1 = time.perf_counter()
        comparison = compare([after], BaselineConfig(), [before])
        t2 = time.perf_counter()
        result = comparison_result(comparison)
        text = render(result)
        document = json.dumps(result.to_document())
        page = render_html(result, comparison_charts(comparison))
        junit = render_junit(result)
        t3 = time.perf_counter()
    finally:
        server.stop()

    total_s = t3 - t0
    requests = sum(run.requests for run in runs)
    print(f"two runs of {args.seconds:,} s at {args.rps:,} requests/s: {requests:,} requests in total")
    print(f"  synthesized through the collector writer in {synthesized_s:.1f} s")
    samples = before.samples
    print(f"  intervals per run: {samples.n if samples else 0} x {samples.window_s if samples else 0} s")
    print(f"  reference: load both runs + summary      {reference_s:6.2f} s")
    print(f"  read both runs back, cut into intervals  {t1 - t0:6.2f} s")
    print(f"  noise-aware comparison (bootstrap)       {t2 - t1:6.2f} s")
    print(
        f"  reports (text, JSON, HTML, JUnit)        {t3 - t2:6.2f} s   "
        f"({len(text):,} / {len(document):,} / {len(page):,} / {len(junit):,} bytes)"
    )
    print(
        f"  TOTAL compare                            {total_s:6.2f} s   (budget {BUDGET_S:.0f} s; "
        f"{total_s / reference_s:.2f}x the reference)"
    )
    p95 = next(row for row in comparison.rows if row.spec.key == "webhook_p95_ms")
    print(
        f"  verdict on the 30% slower run: P95 {p95.difference.verdict.value if p95.difference else '-'} "
        f"({p95.difference.reason if p95.difference else ''})"
    )
    print(f"  grade {comparison.grade.value}; {'within' if total_s <= BUDGET_S else 'OVER'} budget")


if __name__ == "__main__":
    main()
