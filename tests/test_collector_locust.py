"""The collector inside real Locust processes (local, then master + worker) against a local HTTP server:
its totals equal Locust's own exactly and its percentiles match the exact latencies Locust saw."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from perfsuite.collector import CollectorReader, RunData
from perfsuite.embedded import free_port, wait_for_port

LOCUSTFILES = Path(__file__).parent / "locustfiles"
PROBE_LOCUSTFILE = LOCUSTFILES / "collector_probe.py"
LOAD = ["--headless", "-u", "5", "-r", "5", "-t", "3s", "--only-summary", "--loglevel", "WARNING"]


@pytest.fixture(scope="module")
def probe_host() -> Iterator[str]:
    """URL of the probe HTTP server (a separate process) for this module's runs."""
    port = free_port()
    server = subprocess.Popen([sys.executable, str(LOCUSTFILES / "probe_server.py"), str(port)])
    try:
        assert wait_for_port("127.0.0.1", port, 10.0), "probe server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait()


def probe_env(tmp_path: Path) -> dict[str, str]:
    """Environment of the Locust processes: where the locustfile writes latencies and spills."""
    return dict(
        os.environ,
        COLLECTOR_PROBE_LATENCY_DIR=str(tmp_path / "latencies"),
        COLLECTOR_PROBE_SPILL_DIR=str(tmp_path / "spill"),
    )


def locust_command(*args: str) -> list[str]:
    """``locust -f <probe locustfile> args...`` with this interpreter's locust."""
    return [sys.executable, "-m", "locust", "-f", str(PROBE_LOCUSTFILE), *args]


def locust_own_total(json_file: Path) -> int:
    """Locust's own request total from its --json-file output."""
    return sum(entry["num_requests"] for entry in json.loads(json_file.read_text()))


def exact_latencies_us(tmp_path: Path) -> np.ndarray:
    """Every response time Locust reported, in microseconds, as the collector converts them."""
    values = [float(v) for path in (tmp_path / "latencies").glob("*.txt") for v in path.read_text().split()]
    return np.rint(np.asarray(values) * 1000.0).astype(np.int64)


def assert_matches_locust(run: RunData, json_file: Path, tmp_path: Path) -> None:
    """Totals equal Locust's exactly; P50/P95/P99 within HDR precision of the exact latencies."""
    locust_total = locust_own_total(json_file)
    latencies = exact_latencies_us(tmp_path)
    assert locust_total > 100
    assert run.requests == locust_total == len(latencies)
    assert run.locust_total_requests == locust_total and run.matches_locust
    assert run.complete, run.problems
    assert run.meta["status"] == "finished"
    total = run.total().iloc[0]
    ordered = np.sort(latencies)
    for percentile in (50, 95, 99):
        exact = int(ordered[max(1, int(percentile * len(ordered) / 100 + 0.5)) - 1])
        reported = round(total[f"p{percentile}_ms"] * 1000)  # whole microseconds held as ms floats
        assert exact <= reported <= exact * 1.001 + 1, (percentile, reported, exact)
    summary = run.summary().set_index("name").to_dict("index")
    for name, outcome in (
        ("/status/403", "rejected"),
        ("/status/503", "backpressure"),
        ("/status/500", "failure"),
        ("/ok", "success"),
    ):
        assert summary[name][outcome] == summary[name]["count"] > 0
    assert run.metric_summary("server.work").iloc[0]["count"] == summary["/ok"]["count"]
    assert not list((tmp_path / "spill").glob("*.spill"))
    assert set(run.marks("stage")["users"]) == {5}


def test_local_run_totals_equal_locusts_own(redis_url: str, probe_host: str, tmp_path: Path) -> None:
    """A single-process headless Locust run: the collector holds every request Locust counted."""
    json_file = tmp_path / "stats"
    result = subprocess.run(
        locust_command(
            *LOAD,
            "--host",
            probe_host,
            "--json-file",
            str(json_file),
            "--collector-redis-url",
            redis_url,
            "--collector-prefix",
            "pslocal",
            "--run-id",
            "local-probe-run",
        ),
        env=probe_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    stats = json.loads(Path(f"{json_file}.json").read_text())
    failures = sum(entry["num_failures"] for entry in stats)
    assert result.returncode == (1 if failures else 0), result.stderr[-2000:]  # Locust exits 1 on failures
    run = CollectorReader(redis_url, "pslocal").load("local-probe-run")
    assert run.meta["role"] == "local" and run.meta["test_type"] == "probe"
    assert_matches_locust(run, Path(f"{json_file}.json"), tmp_path)


@pytest.mark.slow
def test_distributed_run_totals_equal_locusts_own(redis_url: str, probe_host: str, tmp_path: Path) -> None:
    """Master + one worker: the worker learns the run id (and Redis URL) from the master, and the
    collector's totals equal the master's final Locust totals, including the worker's last report."""
    json_file = tmp_path / "stats"
    master_port = free_port()
    env = probe_env(tmp_path)
    master = subprocess.Popen(
        locust_command(
            *LOAD,
            "--master",
            "--expect-workers",
            "1",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--host",
            probe_host,
            "--json-file",
            str(json_file),
            "--collector-redis-url",
            redis_url,
            "--run-id",
            "distributed-probe-run",
        ),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    worker = subprocess.Popen(
        locust_command("--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        master_log, _ = master.communicate(timeout=90)
        worker_log, _ = worker.communicate(timeout=30)
    finally:
        for process in (master, worker):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert master.returncode == 1, master_log[-2000:]
    assert worker.returncode == 0, worker_log[-2000:]
    run = CollectorReader(redis_url).load("distributed-probe-run")
    assert run.meta["role"] == "master" and run.meta["workers"] == "1"
    writers = run.writers()
    assert len(writers) == 2  # the master's marks-only writer and the worker's
    assert sorted(writers["requests"])[0] == 0
    marks = run.marks("stage")
    assert set(marks["role"]) == {"master", "worker"}  # the master's marks-only writer carried its mark
    assert_matches_locust(run, Path(f"{json_file}.json"), tmp_path)


def test_interrupted_run_is_marked_and_still_complete(
    redis_url: str, probe_host: str, tmp_path: Path
) -> None:
    """SIGTERM during a run (what docker and CI send): the run is marked interrupted and still holds
    exactly Locust's total. (A SIGINT is raised as KeyboardInterrupt inside whichever greenlet runs,
    possibly between two request listeners, so after a Ctrl-C one request per process may differ.)"""
    json_file = tmp_path / "stats"
    command = locust_command(
        "--headless", "-u", "3", "-r", "3", "-t", "60s", "--only-summary", "--host", probe_host,
        "--json-file", str(json_file), "--collector-redis-url", redis_url, "--run-id", "interrupted-run",
    )  # fmt: skip
    process = subprocess.Popen(
        command, env=probe_env(tmp_path), cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(exact_latencies_us(tmp_path)) < 200:
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    run = CollectorReader(redis_url).load("interrupted-run")
    assert run.meta["status"] == "interrupted", log[-2000:]
    assert run.requests == locust_own_total(Path(f"{json_file}.json")) == run.locust_total_requests
    assert run.requests >= 200
    assert run.complete, run.problems


def test_each_test_of_a_process_gets_its_own_run(redis_url: str, probe_host: str) -> None:
    """Two tests started in one Locust process (as from the web UI): the requested run id names the
    first, the second gets a new id, and each run holds exactly its own test's requests."""
    result = subprocess.run(
        [
            sys.executable,
            str(LOCUSTFILES / "two_tests_one_process.py"),
            redis_url,
            probe_host,
            "first-two",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    tests = json.loads(result.stdout)
    assert tests[0]["run_id"] == "first-two" and tests[1]["run_id"] != "first-two"
    reader = CollectorReader(redis_url)
    for test in tests:
        run = reader.load(test["run_id"])
        assert run.requests == test["locust"] == run.locust_total_requests
        assert run.requests > 0
        assert run.complete and run.meta["status"] == "finished"
    assert set(reader.list_runs()["run_id"]) == {test["run_id"] for test in tests}
