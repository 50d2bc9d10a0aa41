"""The live metrics endpoint scraped by a real Prometheus server (Debian's ``prometheus``, started on a
free loopback port) through a short real run: the demo bot, Locust with two workers, ``perfsuite run
--metrics-port``. What Prometheus holds at the end is the report's: totals exactly, the P95 within
the histogram's precision; then the endpoint is gone."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perfsuite.embedded import free_port, wait_for_http
from perfsuite.metrics.exposition import BUCKETS_S

REPO = Path(__file__).resolve().parent.parent
PROMETHEUS = shutil.which("prometheus")
LOOKBACK = "[5m]"


@pytest.fixture()
def prometheus(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A private Prometheus scraping 127.0.0.1:<metrics port> every second: (its URL, that port)."""
    if PROMETHEUS is None:
        pytest.skip("prometheus is not installed (scripts/ensure-system-packages installs Debian's package)")
    metrics_port, web_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: perfsuite\n    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
    )
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{web_port}"
    try:
        assert wait_for_http(url + "/-/ready", 30), (tmp_path / "prometheus.log").read_text()[-2000:]
        yield url, metrics_port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def query(url: str, expression: str) -> list[dict[str, Any]]:
    """The instant vector of ``expression`` now (Prometheus's HTTP API)."""
    address = f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(address, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def _bucket_holding(cumulative: list[float], rank: float) -> int:
    """The first bucket whose cumulative count reaches ``rank`` (``cumulative[0]`` is 0, below the
    first bucket): where a sample of that rank lies, as Prometheus's histogram_quantile finds it."""
    return next(index for index, count in enumerate(cumulative) if index and count >= rank)


def scalar(url: str, expression: str) -> float:
    """The single value of ``expression``."""
    result = query(url, expression)
    assert len(result) == 1, (expression, result)
    return float(result[0]["value"][1])


@pytest.mark.slow
def test_prometheus_scrapes_the_reports_figures_and_the_endpoint_goes_away(
    prometheus: tuple[str, int], redis_url: str, tmp_path: Path
) -> None:
    """A short webhook run (the smoke profile, two workers) scraped every second: the last scraped
    totals per endpoint and outcome equal the JSON result's, the whole-run P95 gauge is its P95, the
    scraped buckets hold that P95 at HdrHistogram's rank and the histogram's P95 is Prometheus's
    interpolation at its own rank (the same sample or the next); once the run has exited, nothing
    listens on the metrics port any more."""
    url, metrics_port = prometheus
    out = tmp_path / "result.json"
    scenarios = (REPO / "scenarios.yaml").read_text()
    assert scenarios.count("linger_s: 5 ") == 1
    config = (
        tmp_path / "scenarios.yaml"
    )  # the repository's, with a shorter linger (Prometheus scrapes every 1 s)
    config.write_text(scenarios.replace("linger_s: 5 ", "linger_s: 2 "))
    env = {k: v for k, v in os.environ.items() if k not in ("TWILIO_AUTH_TOKEN", "PERFSUITE_METRICS_PORT")}
    env["REDIS_URL"] = redis_url
    argv = [sys.executable, "-m", "perfsuite", "run", "--test-type", "webhook", "--scenario", "smoke"]
    argv += ["--config", str(config), "--workers", "2", "--metrics-port", str(metrics_port)]
    done = subprocess.run(
        [*argv, "--output-file", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"live metrics on http://127.0.0.1:{metrics_port}/metrics" in done.stdout
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", metrics_port), 2):
        pass
    result = json.loads(out.read_text())
    summary = result["summary"]
    assert summary["requests"] == 5 * 5 + 10  # users x quota + burst
    assert scalar(url, f"max_over_time(up{{job='perfsuite'}}{LOOKBACK})") == 1
    assert scalar(url, f"sum(last_over_time(perfsuite_requests_total{LOOKBACK}))") == summary["requests"]
    for outcome in ("success", "rejected", "backpressure", "failure"):
        expression = f"sum(last_over_time(perfsuite_requests_total{{outcome='{outcome}'}}{LOOKBACK}))"
        assert scalar(url, expression) == summary[outcome], outcome
    scraped = {
        (row["metric"]["request_type"], row["metric"]["name"]): float(row["value"][1])
        for row in query(
            url, f"sum by (request_type, name) (last_over_time(perfsuite_requests_total{LOOKBACK}))"
        )
    }
    assert scraped == {(row["request_type"], row["name"]): row["count"] for row in result["endpoints"]}
    p95_s = summary["p95_ms"] / 1000
    gauge = scalar(
        url, f"last_over_time(perfsuite_latency_seconds{{window='run',quantile='0.95'}}{LOOKBACK})"
    )
    assert gauge == pytest.approx(p95_s, abs=1e-6)  # HdrHistogram's figure, as the report prints it
    interpolated = scalar(
        url,
        "histogram_quantile(0.95, sum by (le) "
        f"(last_over_time(perfsuite_request_duration_seconds_bucket{LOOKBACK})))",
    )
    scraped_buckets = sorted(
        (float(row["metric"]["le"]), float(row["value"][1]))
        for row in query(
            url, f"sum by (le) (last_over_time(perfsuite_request_duration_seconds_bucket{LOOKBACK}))"
        )
    )
    assert [bound for bound, _ in scraped_buckets] == [*BUCKETS_S, math.inf]
    edges = [0.0, *BUCKETS_S]  # bucket i (1-based) is (edges[i - 1], edges[i]]
    cumulative = [0.0, *(count for _, count in scraped_buckets)]
    assert cumulative[-1] == summary["requests"]
    # The report's P95 is HdrHistogram's: the sample of rank round(0.95 N) (half up). The exact
    # buckets put it in the bucket where the cumulative count first reaches that rank.
    report_rank = max(math.floor(0.95 * summary["requests"] + 0.5), 1)
    report_bucket = _bucket_holding(cumulative, report_rank)
    assert edges[report_bucket - 1] < p95_s <= edges[report_bucket], (p95_s, scraped_buckets)
    # Prometheus's rank is 0.95 N itself, not rounded: the bucket where the cumulative count first
    # reaches it, interpolated linearly between that bucket's edges. Its sample, ceil(0.95 N), is the
    # report's or the next one (N = 35: 33.25, the 34th against the report's 33rd), so when the 33rd is
    # the last below a bound its bucket is the next non-empty one, and the value lies above the
    # report's bucket (0.011875 against 0.009751 once: 33 requests at most 10 ms, 2 up to 25 ms).
    prometheus_rank = 0.95 * summary["requests"]
    assert 0 <= math.ceil(prometheus_rank) - report_rank <= 1
    bucket = _bucket_holding(cumulative, prometheus_rank)
    assert bucket == report_bucket or cumulative[report_bucket] == report_rank, (bucket, report_bucket)
    assert bucket < len(BUCKETS_S) + 1, scraped_buckets  # not +Inf (Prometheus's value would be 60 s)
    below, inside = cumulative[bucket - 1], cumulative[bucket] - cumulative[bucket - 1]
    expected = edges[bucket - 1] + (edges[bucket] - edges[bucket - 1]) * (prometheus_rank - below) / inside
    assert interpolated == pytest.approx(expected, rel=1e-9), (interpolated, p95_s, scraped_buckets)
    assert edges[bucket - 1] <= interpolated <= edges[bucket]
    deadline = time.monotonic() + 10
    while query(url, "up{job='perfsuite'} == 1") and time.monotonic() < deadline:
        time.sleep(0.5)  # Prometheus sees the target down at its next scrape
    assert query(url, "up{job='perfsuite'} == 1") == []
