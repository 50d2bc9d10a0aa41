"""The live metrics endpoint against a run recorded through the real collector writer into a real
Redis: its counts, buckets and percentiles are the collector's (the report's) exactly, its windowed
figures cover the recent seconds, its marks become the stage, steps, alerts, workers and trust, the
closed model's correction is the report's, no secret reaches a label, and it releases its port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from perfsuite.cli import build_parser
from perfsuite.collector import CollectorReader, CollectorWriter, create_run, finish_run
from perfsuite.collector.histogram import HIGHEST_EQUIVALENT_US, counts_index
from perfsuite.config import MetricsConfig, load_config
from perfsuite.correction import Correction
from perfsuite.marks import STAGE, Stage
from perfsuite.metrics.endpoint import MetricsEndpoint
from perfsuite.metrics.exposition import BUCKETS_S
from tests.metrics_run import PREFIX, close_run, following, record_run, scrape, total, value
from webhook_load.figures import latency_figures

REPO = Path(__file__).resolve().parent.parent


def test_totals_buckets_and_percentiles_equal_the_collectors(redis_url: str) -> None:
    """Once the run is final, every counter equals the collector's (the report's) count per endpoint
    and outcome, each bucket counts exactly the recorded values whose HDR value is at most its bound,
    and the whole-run P50/P95/P99 are the report's figures (per endpoint and for every request)."""
    recorded = record_run(redis_url, "run-exact")
    with following(redis_url, "run-exact") as endpoint:
        before = scrape(endpoint.url)  # while the writers are still open
        assert value(before, "perfsuite_run_running") == 1
        close_run(redis_url, recorded)
        endpoint.finished("run-exact")
        samples = scrape(endpoint.url)
    data = CollectorReader(redis_url).load("run-exact")
    summary = data.summary()
    for row in summary.to_dict("records"):
        labels = {"request_type": row["request_type"], "name": row["name"]}
        for outcome in ("success", "rejected", "backpressure", "failure"):
            assert value(samples, "perfsuite_requests_total", outcome=outcome, **labels) == row[outcome]
        assert value(samples, "perfsuite_request_duration_seconds_count", **labels) == row["count"]
        for quantile, column in (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms")):
            got = value(
                samples,
                "perfsuite_request_duration_quantile_seconds",
                window="run",
                quantile=quantile,
                **labels,
            )
            assert got == pytest.approx(row[column] / 1000, abs=1e-9)
        latencies = np.rint(recorded.latencies_us[(row["request_type"], row["name"])]).astype(np.int64)
        hdr_values = HIGHEST_EQUIVALENT_US[counts_index(latencies)]
        for bound in BUCKETS_S:
            le = f"{bound:g}"
            got = value(samples, "perfsuite_request_duration_seconds_bucket", le=le, **labels)
            assert got == int((hdr_values <= round(bound * 1e6)).sum()), le
    everything = data.total().iloc[0]
    assert total(samples, "perfsuite_requests_total") == data.requests == 3000
    for quantile, column in (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("0.99", "p99_ms")):
        got = value(samples, "perfsuite_latency_seconds", window="run", quantile=quantile)
        assert got == pytest.approx(everything[column] / 1000, abs=1e-9)
    assert value(samples, "perfsuite_run_running") == 0
    assert value(samples, "perfsuite_collector_writers", state="closed") == 3
    info = [labels for name, labels, _ in samples if name == "perfsuite_run_info"]
    assert info == [
        {
            "run_id": "run-exact",
            "test_type": "capacity",
            "scenario": "smoke",
            "target": "http://127.0.0.1:8000",
        }
    ]


def test_recent_window_covers_only_the_last_seconds(redis_url: str) -> None:
    """The rate and the windowed percentiles cover the last ``window_s`` seconds: slow requests of
    half a minute ago count in the run's P50, not in the window's."""
    create_run(redis_url, PREFIX, "run-window", "webhook", "smoke", "http://127.0.0.1:1", "{}")
    writer = CollectorWriter(redis_url, "run-window", "w", start=False)
    end = int(time.time()) - 1
    for i in range(300):  # 1 s each, 30 s ago
        writer.record("POST", "webhook text", 1_000_000, at_s=end - 30 + i / 100)
    for i in range(100):  # 2 ms each, over the last 5 s (20 per second)
        writer.record("POST", "webhook text", 2_000, at_s=end - 4.99 + i / 20)
    writer.flush(everything=True)
    with following(redis_url, "run-window", window_s=10) as endpoint:
        samples = scrape(endpoint.url)
    labels = {"request_type": "POST", "name": "webhook text"}
    assert value(samples, "perfsuite_requests_per_second", **labels) == pytest.approx(100 / 10)
    assert value(samples, "perfsuite_latency_seconds", window="10s", quantile="0.99") == pytest.approx(
        0.002, rel=1e-3
    )
    assert value(samples, "perfsuite_latency_seconds", window="run", quantile="0.5") == pytest.approx(
        1.0, rel=1e-3
    )


def test_marks_become_stage_steps_alerts_workers_and_trust(redis_url: str) -> None:
    """The capacity step running, the ended step's live verdict, an alert that fired and cleared and
    one still firing, a lost worker, and a worker over the CPU limit: the generator is not trusted."""
    record_run(redis_url, "run-marks")
    with following(redis_url, "run-marks") as endpoint:
        samples = scrape(endpoint.url)
    assert value(samples, "perfsuite_stage", stage="step") == 1
    assert value(samples, "perfsuite_stage", stage="ramp") == 0
    assert value(samples, "perfsuite_capacity_step") == 2
    assert value(samples, "perfsuite_load_users") == 15
    assert value(samples, "perfsuite_capacity_step_held", step="1") == 1
    assert value(samples, "perfsuite_capacity_step_p95_seconds", step="1") == pytest.approx(0.031)
    assert value(samples, "perfsuite_capacity_held_load") == 5
    assert value(samples, "perfsuite_alert_firing", alert="p95", severity="warning") == 0
    assert value(samples, "perfsuite_alerts_fired_total", alert="p95", severity="warning") == 1
    assert value(samples, "perfsuite_alert_firing", alert="machine_cpu", severity="warning") == 1
    assert value(samples, "perfsuite_workers", state="lost") == 1
    assert value(samples, "perfsuite_worker_up", worker="host_1") == 0
    assert value(samples, "perfsuite_worker_up", worker="host_0") == 1
    assert value(samples, "perfsuite_worker_saturated", worker="host_1") == 1
    assert value(samples, "perfsuite_worker_saturated", worker="host_0") == 0
    assert value(samples, "perfsuite_worker_requests_total", worker="host_0") == 1500
    assert value(samples, "perfsuite_worker_cpu_percent", worker="host_1") == 95
    assert value(samples, "perfsuite_generator_trusted") == 0


def test_closed_model_correction_is_the_reports(redis_url: str) -> None:
    """Closed model: the corrected percentiles are the report's ``latency.corrected`` (HDR's expected
    interval over the steady stage, the seconds before the burst), even when the burst's mark
    arrives after cells of the burst were read."""
    config = load_config(None, "smoke", {"webhook.think_time_s": [0.1, 0.3]})
    create_run(redis_url, PREFIX, "run-closed", "webhook", "smoke", "http://127.0.0.1:1", "{}")
    users = CollectorWriter(redis_url, "run-closed", "users", start=False)
    master = CollectorWriter(redis_url, "run-closed", "master", start=False)
    burst_at = int(time.time()) - 5
    for i in range(400):  # 25 s: steady 1-40 ms; from the burst on (the last 5 s) 900 ms
        at = burst_at - 20 + i / 16
        users.record("POST", "webhook text", 900_000 if at >= burst_at else 1_000 + (i % 40) * 1_000, at_s=at)
    with following(redis_url, "run-closed", Correction.closed_model(0.2)) as endpoint:
        users.flush(everything=True)
        scrape(endpoint.url)  # the burst's cells are read before its mark
        master.mark(STAGE, at_s=burst_at, name=Stage.BURST, users=10)
        master.flush(everything=True)
        for writer in (users, master):
            writer.close()
        finish_run(redis_url, PREFIX, "run-closed", "finished")
        endpoint.finished("run-closed")
        samples = scrape(endpoint.url)
    latency, _ = latency_figures(config, CollectorReader(redis_url).load("run-closed"))
    assert latency.correction == "hdr-expected-interval" and latency.corrected is not None
    for quantile, figure in (("0.5", latency.corrected.p50_ms), ("0.99", latency.corrected.p99_ms)):
        assert value(samples, "perfsuite_latency_corrected_seconds", quantile=quantile) == pytest.approx(
            figure / 1000, abs=1e-9
        )
    assert value(samples, "perfsuite_latency_expected_interval_seconds") == pytest.approx(
        (latency.expected_interval_ms or 0) / 1000
    )
    assert latency.corrected.p99_ms < 900  # the burst's 900 ms answers are out of the steady stage


def test_labels_never_carry_secrets(redis_url: str) -> None:
    """A target URL with a password and a request name holding a token-shaped string: neither
    reaches the exposition."""
    token = "0123456789abcdef0123456789abcdef"
    create_run(
        redis_url, PREFIX, "run-secret", "redis", "smoke", "redis://:hunter2pass@10.0.0.1:6379/0", "{}"
    )
    writer = CollectorWriter(redis_url, "run-secret", "w", start=False)
    writer.record("REDIS", f"GET key-{token}", 100)
    writer.flush(everything=True)
    with following(redis_url, "run-secret") as endpoint:
        text = "\n".join(f"{name} {labels}" for name, labels, _ in scrape(endpoint.url))
    assert "perfsuite_requests_total" in text
    assert "hunter2pass" not in text and token not in text


def test_linger_serves_the_final_figures_then_releases_the_port(redis_url: str) -> None:
    """Closing waits out ``linger_s`` after the run became final, serving its totals meanwhile; then
    nothing listens on the port, and the next endpoint can take it again."""
    recorded = record_run(redis_url, "run-linger")
    endpoint = MetricsEndpoint(MetricsConfig(port=0, linger_s=3.0), redis_url, PREFIX).start()
    endpoint.follow("run-linger", Correction.none())
    close_run(redis_url, recorded)
    endpoint.finished("run-linger")
    port, url = endpoint.port, endpoint.url
    closing = threading.Thread(target=endpoint.close)
    closing.start()
    assert total(scrape(url), "perfsuite_requests_total") == 3000  # while it lingers
    assert closing.is_alive()
    closing.join(timeout=30)
    assert not closing.is_alive()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    again = MetricsEndpoint(MetricsConfig(port=port), redis_url, PREFIX).start()
    assert again.port == port
    again.close()


def test_busy_metrics_port_exits_64_naming_it(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A metrics port already taken stops ``perfsuite run`` before any load, with exit 64 and a message
    naming the flag and the address; a port out of range is refused by the parser."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "perfsuite", "run", "--test-type", "webhook", "--metrics-port", str(port)],
            cwd=REPO,
            env={**{k: v for k, v in os.environ.items() if k != "TWILIO_AUTH_TOKEN"}, "REDIS_URL": redis_url},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 64, done.stderr
    assert f"--metrics-port {port}" in done.stderr and f"127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["run", "--metrics-port", "70000"])
    assert exited.value.code == 64
    assert "--metrics-port" in capsys.readouterr().err
