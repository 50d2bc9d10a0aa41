"""Losing a process of a distributed run: a worker killed mid-run (SIGKILL) leaves a completed run that
names it, says when it was lost and what it had sent; a killed master leaves workers that quit by
themselves. Master and two workers on loopback, built as ``perfsuite.launcher`` builds them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from perfsuite.collector import CollectorReader, CollectorWriter, LatencyHistogram, RunData
from perfsuite.embedded import free_port, wait_for_port
from perfsuite.launcher import LocustJob, locust_command
from perfsuite.report import render_section
from perfsuite.worker_health import (
    lost_workers_note,
    saturated_workers_reasons,
    worker_health_of,
    workers_section,
)
from perfsuite.workers import WORKER_HEALTH_MARK, WORKER_JOINED_MARK, WORKER_LOST_MARK

REPO = Path(__file__).resolve().parent.parent
LOCUSTFILES = Path(__file__).parent / "locustfiles"
PROBE_LOCUSTFILE = LOCUSTFILES / "worker_health_probe.py"
RUN_TIME_S = 12
MASTER_TIMEOUT_S = 5.0
"""Workers quit after this long without their master's heartbeat (Locust's default is 60 s)."""
SAMPLES_BEFORE_KILL = 3
"""One-second health samples each worker has flushed before a process is killed."""
HANG_BOUND_S = 60.0
"""A process that has not exited this long after it should have is hung (not a timing check)."""


@pytest.fixture(scope="module")
def probe_host() -> Iterator[str]:
    """URL of the probe HTTP server (a separate process)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, str(LOCUSTFILES / "probe_server.py"), str(port)])
    try:
        assert wait_for_port("127.0.0.1", port, 10.0), "probe server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait()


class Cluster:
    """A master and two workers (argv from ``perfsuite.launcher.locust_command``); all killed at exit."""

    def __init__(self, redis_url: str, host: str, run_id: str, tmp_path: Path) -> None:
        self.run_id = run_id
        self.json_file = tmp_path / "locust.json"
        self.log_path = tmp_path / "locust.log"
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "COLLECTOR_PROBE_SPILL_DIR": str(tmp_path / "spill"),
            "PERFSUITE_MASTER_TIMEOUT_S": str(MASTER_TIMEOUT_S),
        }
        job = LocustJob(
            locustfile=PROBE_LOCUSTFILE,
            host=host,
            run_id=run_id,
            env={},
            workers=2,
            run_time_s=RUN_TIME_S,
            users=4,
            spawn_rate=4,
            extra_args=("--collector-redis-url", redis_url, "--loglevel", "INFO"),
        )
        port = free_port()
        self._log: IO[bytes] = self.log_path.open("wb")
        self.master = self._start(locust_command(job, "master", self.json_file, port), env, tmp_path)
        self.workers = [
            self._start(locust_command(job, "worker", None, port), env, tmp_path) for _ in range(2)
        ]

    def _start(self, argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        """The processes' log so far (for failure messages)."""
        return self.log_path.read_text(errors="replace")[-6000:]

    def wait_for_load(self, reader: CollectorReader, timeout_s: float = 30.0) -> RunData:
        """Until both workers have flushed a few health samples (and their requests) to the collector."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                run = reader.load(self.run_id)
            except Exception:  # the run does not exist yet
                time.sleep(0.3)
                continue
            samples = run.marks(WORKER_HEALTH_MARK)
            if "cpu_percent" in samples:  # a few seconds into the run: each worker sampled 3 times
                per_worker = samples[samples["cpu_percent"].notna()].groupby("writer").size()
                if len(per_worker) == 2 and per_worker.min() >= SAMPLES_BEFORE_KILL:
                    return run
            time.sleep(0.3)
        raise AssertionError(f"the workers never sent load\n{self.log()}")

    def close(self) -> None:
        """Kill whatever still runs."""
        for process in (self.master, *self.workers):
            if process.poll() is None:
                process.kill()
                process.wait()
        self._log.close()


def _wait(process: subprocess.Popen[bytes], timeout_s: float) -> float | None:
    """Seconds until ``process`` exited, None if it still runs after ``timeout_s``."""
    started = time.monotonic()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None
    return time.monotonic() - started


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_named_and_the_totals_are_explained(
    redis_url: str, probe_host: str, tmp_path: Path
) -> None:
    """SIGKILL one of two workers mid-run: the master still ends the run (no hang), records the lost
    worker with its last heartbeat and what Locust had received from it; the collector's total is
    exactly what the surviving and the lost workers flushed (the lost writer never closed), and
    Locust's own total is the survivor's count plus what the lost worker had reported."""
    cluster = Cluster(redis_url, probe_host, "worker-kill", tmp_path)
    reader = CollectorReader(redis_url)
    try:
        before = cluster.wait_for_load(reader)
        victim = cluster.workers[0]
        victim.send_signal(signal.SIGKILL)
        killed_at = time.time()
        victim.wait()
        master_s = _wait(cluster.master, RUN_TIME_S + HANG_BOUND_S)
        assert master_s is not None, f"the master hung after a worker was lost\n{cluster.log()}"
        survivor_s = _wait(cluster.workers[1], HANG_BOUND_S)
        assert survivor_s is not None, f"the surviving worker did not quit\n{cluster.log()}"
    finally:
        cluster.close()
    print(
        f"\nmaster exited {master_s:.1f} s after the kill; the surviving worker {survivor_s:.1f} s after it"
    )
    assert cluster.master.returncode == 0, cluster.log()

    run = reader.load("worker-kill")
    writers = run.writers()
    print(writers[["writer_id", "closed", "requests", "found_requests", "host", "pid"]].to_string())
    victim_row = writers[writers["pid"] == victim.pid].iloc[0]
    assert not victim_row["closed"]  # SIGKILL: no final flush, no closed record
    flushed_before_kill = before.writers().set_index("pid")["found_requests"].to_dict()[victim.pid]
    assert int(victim_row["found_requests"]) >= flushed_before_kill
    survivors = writers[(writers["pid"] != victim.pid)]
    assert survivors["closed"].all()
    assert survivors["requests"].equals(survivors["found_requests"])
    assert run.requests == int(writers["found_requests"].sum())  # what every writer flushed, nothing else
    assert len(run.problems) == 1 and f"writer {victim_row['writer_id']} never closed" in run.problems[0]

    lost = run.marks(WORKER_LOST_MARK)
    assert len(lost) == 1, run.marks().to_string()
    health = worker_health_of(run)
    assert len(health) == 2
    dead = next(worker for worker in health if worker.lost)
    alive = next(worker for worker in health if not worker.lost)
    assert dead.client_id == lost["client_id"][0] and dead.pid == victim.pid
    assert dead.writer_id == victim_row["writer_id"] and dead.requests == int(victim_row["found_requests"])
    assert dead.last_heartbeat_at_s is not None and dead.lost_at_s is not None
    assert dead.last_heartbeat_at_s <= killed_at + 0.5 < dead.lost_at_s  # heard from before, lost after
    assert dead.reported_requests is not None and 0 < dead.reported_requests <= dead.requests + 500
    assert alive.closed and alive.requests > 0 and abs(dead.share + alive.share - 1) < 1e-9

    locust_total = sum(int(row["num_requests"]) for row in json.loads(cluster.json_file.read_text()))
    print(
        f"collector total {run.requests}, Locust's {locust_total}, lost one reported {dead.reported_requests}"
    )
    assert locust_total == alive.requests + dead.reported_requests

    started = _epoch(run.meta["started_at"])
    note = lost_workers_note(health, run_started_at_s=started)
    assert note is not None and dead.client_id in note
    print("\n".join(render_section(workers_section(health))))
    print(note)


def test_the_summary_names_lost_and_saturated_workers(redis_url: str, tmp_path: Path) -> None:
    """Marks as the master and two workers write them, through real writers and back: the lost
    worker is linked to its writer by the writer id its stats reports carried (it never sent a
    health sample), the saturated one is named with its reasons, the shares add up."""
    run_id = "worker-summary"
    master = CollectorWriter(redis_url, run_id, writer_id="master-1-aaaaaa", spill_dir=tmp_path, start=False)
    busy = CollectorWriter(redis_url, run_id, writer_id="w1-2-bbbbbb", spill_dir=tmp_path, start=False)
    dead = CollectorWriter(redis_url, run_id, writer_id="w2-3-cccccc", spill_dir=tmp_path, start=False)
    for _ in range(30):
        busy.record("GET", "/ok", 1000.0)
    for _ in range(10):
        dead.record("GET", "/ok", 1000.0)
    lag = LatencyHistogram()
    for lag_us in (2_000, 3_000, 40_000):
        lag.record(lag_us)
    master.mark(WORKER_JOINED_MARK, at_s=100.0, client_id="w1_b", worker_index=0, rejoined=False)
    master.mark(WORKER_JOINED_MARK, at_s=100.5, client_id="w2_c", worker_index=1, rejoined=False)
    busy.mark(
        WORKER_HEALTH_MARK,
        at_s=101.0,
        source="worker",
        client_id="w1_b",
        requests=10,
        cpu_percent=97.0,
        loop_lag_max_ms=40.0,
        master_heartbeat_age_s=0.4,
    )
    busy.mark(
        WORKER_HEALTH_MARK,
        at_s=109.0,
        source="worker",
        final=True,
        client_id="w1_b",
        requests=30,
        cpu_max_percent=97.0,
        master_heartbeat_gap_max_s=1.1,
        loop_lag_hist=lag.encode(),
    )
    master.mark(
        WORKER_LOST_MARK,
        at_s=106.0,
        client_id="w2_c",
        writer_id="w2-3-cccccc",
        last_heartbeat_at=102.0,
        heartbeat_gap_s=4.0,
        reported_requests=6,
        reported_failures=0,
        users=1,
        detected_by="heartbeat",
    )
    master.mark(
        WORKER_HEALTH_MARK,
        at_s=109.0,
        source="master",
        client_id="w1_b",
        writer_id="w1-2-bbbbbb",
        heartbeat_gap_max_s=1.2,
        reported_requests=28,
        reported_failures=0,
        lost=False,
    )
    for writer in (master, busy):
        assert writer.close()
    dead.flush(everything=True)  # what a killed worker leaves: batches, no closed record

    workers = worker_health_of(CollectorReader(redis_url).load(run_id))
    assert [worker.client_id for worker in workers] == ["w1_b", "w2_c"]
    busy_health, dead_health = workers
    assert busy_health.saturated and not busy_health.lost and busy_health.closed
    assert busy_health.requests == 30 and busy_health.cpu_max_percent == 97.0
    assert busy_health.loop_lag_max_ms is not None and busy_health.loop_lag_max_ms >= 40.0
    assert busy_health.heartbeat_gap_max_s == 1.2 and busy_health.reported_requests == 28
    assert dead_health.lost and not dead_health.closed and not dead_health.saturated
    assert (
        dead_health.writer_id == "w2-3-cccccc"
        and dead_health.requests == 10
        and dead_health.pid == os.getpid()
    )
    assert (dead_health.last_heartbeat_at_s, dead_health.lost_at_s) == (102.0, 106.0)
    assert dead_health.reported_requests == 6 and dead_health.heartbeat_gap_max_s == 4.0
    assert (busy_health.share, dead_health.share) == (0.75, 0.25)
    note = lost_workers_note(workers, run_started_at_s=100.0)
    assert note is not None and "w2_c" in note and "+2.0 s into the run" in note and "10 requests" in note
    (reason,) = saturated_workers_reasons(workers)
    assert "w1_b" in reason and "CPU reached 97%" in reason and "lag P99" in reason
    assert json.loads(json.dumps([worker.model_dump(mode="json") for worker in workers]))[1]["lost"] is True
    assert lost_workers_note(workers[:1]) is None


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


@pytest.mark.slow
def test_workers_quit_by_themselves_when_the_master_dies(
    redis_url: str, probe_host: str, tmp_path: Path
) -> None:
    """SIGKILL the master mid-run: both workers stop their users (their writers close: nothing is
    lost) and exit once the master's heartbeat has been missing for ``--master-heartbeat-timeout``."""
    cluster = Cluster(redis_url, probe_host, "master-kill", tmp_path)
    reader = CollectorReader(redis_url)
    try:
        cluster.wait_for_load(reader)
        cluster.master.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        cluster.master.wait()
        exits: list[Any] = []
        for worker in cluster.workers:
            waited = _wait(worker, MASTER_TIMEOUT_S + HANG_BOUND_S - (time.monotonic() - killed))
            exits.append(None if waited is None else time.monotonic() - killed)
        assert None not in exits, f"a worker outlived its master\n{cluster.log()}"
    finally:
        cluster.close()
    print(f"\nworkers exited {', '.join(f'{s:.1f}' for s in exits)} s after the master was killed")
    assert "Didn't get heartbeat from master" in cluster.log()
    run = reader.load("master-kill")
    writers = run.writers()
    workers = writers[writers["requests"] > 0]
    assert len(workers) == 2 and workers["closed"].all()  # the workers' data is complete
    assert run.meta["status"] == "running"  # nobody was left to finish the run
    health = worker_health_of(run)
    gaps = [worker.heartbeat_gap_max_s for worker in health]
    assert len(gaps) == 2 and all(gap is not None and gap >= MASTER_TIMEOUT_S for gap in gaps), gaps
    print("\n".join(render_section(workers_section(health))))


@pytest.mark.parametrize("locustfile", ["webhook", "system_capacity", "redis_benchmark"])
def test_every_suite_locustfile_takes_the_workers_heartbeat_limits(locustfile: str) -> None:
    """The launcher tells workers how long to wait for a lost master through PERFSUITE_MASTER_TIMEOUT_S;
    every test type's locustfile must register that option, or its orphaned workers wait Locust's
    60 s instead (the capacity locustfile once did not)."""
    probe = (
        "import importlib, sys\n"
        "importlib.import_module('locustfiles.' + sys.argv[1])\n"
        "from locust.argument_parser import get_parser\n"
        "options = get_parser().parse_args([])\n"
        "print(options.perfsuite_master_timeout_s, options.perfsuite_heartbeat_liveness)\n"
    )
    env = {**os.environ, "PERFSUITE_MASTER_TIMEOUT_S": "7", "PYTHONPATH": str(LOCUSTFILES.parent.parent)}
    done = subprocess.run(
        [sys.executable, "-c", probe, locustfile], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[0] == "7.0"


def _kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process under it (a test that failed leaves nothing running)."""
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        parent = psutil.Process(pid)
        for process in [*parent.children(recursive=True), parent]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


RUN_TIME_CLI_S = 10
EXIT_BOUND_S = 15.0
"""The issue's bound: a run ends within its run time plus this, whatever its workers did."""


def _locust_workers(process: subprocess.Popen[str]) -> list[Any]:
    """The Locust worker processes ``perfsuite run`` started (psutil.Process objects)."""
    import psutil

    with contextlib.suppress(psutil.NoSuchProcess):
        return [
            child
            for child in psutil.Process(process.pid).children()
            if "--worker" in child.cmdline() and "locust" in " ".join(child.cmdline())
        ]
    return []


LOADS = {
    "open model": ("--arrival-rate", "30", "--run-time", str(RUN_TIME_CLI_S)),
    # 4 users x 80 messages, 50-200 ms apart: about 10 s, the seed profile's quota (no time bound)
    "closed model": ("--users", "4", "--requests-per-user", "80", "--ramp-up", "1", "--no-burst"),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "load"), [("killed", "open model"), ("hung", "open model"), ("killed", "closed model")]
)
def test_a_run_whose_worker_dies_or_hangs_ends_in_time_and_names_the_loss(
    redis_url: str, tmp_path: Path, fault: str, load: str
) -> None:
    """``perfsuite run --workers 2`` (open model at 30/s for 10 s, or the seed profile's quota of
    about 10 s), one worker SIGKILLed (or SIGSTOPped: hung) once both are sending: the run still ends
    within 10 s + 15 s of its start (the shape does not wait for a lost worker's share of arrivals or
    of the quota, a hung worker is killed), exits 1 (FAIR: the critical check that every worker ran
    to the end is missed, not the collector's), and the report and the JSON name the lost worker
    with what it had sent."""
    out = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TWILIO_AUTH_TOKEN")}
    env.update(REDIS_URL=redis_url, PERFSUITE_CONFIG=str(REPO / "scenarios.yaml"), PYTHONUNBUFFERED="1")
    argv = [sys.executable, "-m", "perfsuite", "run", "--test-type", "webhook", "--workers", "2"]
    argv += [*LOADS[load], "--output-file", str(out)]
    reader = CollectorReader(redis_url)
    pipe = subprocess.PIPE
    process = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=pipe, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:  # both workers flushed health samples: the run is under way
            assert process.poll() is None and time.monotonic() < deadline, "the run never got going"
            runs = reader.list_runs()
            if len(runs):
                samples = reader.load(str(runs["run_id"].iloc[0])).marks(WORKER_HEALTH_MARK)
                if "cpu_percent" in samples:
                    per_worker = samples[samples["cpu_percent"].notna()].groupby("writer").size()
                    if len(per_worker) == 2 and per_worker.min() >= 2:
                        break
            time.sleep(0.3)
        victim = _locust_workers(process)[0]
        victim.send_signal(signal.SIGKILL if fault == "killed" else signal.SIGSTOP)
        stdout, _ = process.communicate(timeout=RUN_TIME_CLI_S + EXIT_BOUND_S + HANG_BOUND_S)
        ended = time.time()
    finally:
        with contextlib.suppress(Exception):
            victim.kill()
        if process.poll() is None:  # SIGTERM stops it as Ctrl-C does: its demo bot and Redis too
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _kill_tree(process.pid)
    document = json.loads(out.read_text())
    started = _epoch(document["started_at"])
    print(f"\n{fault}, {load}: the run ended {ended - started:.1f} s after its start")
    assert ended - started <= RUN_TIME_CLI_S + EXIT_BOUND_S, stdout[-3000:]
    assert process.returncode == 1, stdout[-3000:]
    collector = document["collector"]
    assert collector["lost_workers"] == 1 and collector["exact"] is True, collector
    assert collector["redis_lost"] is False  # a killed worker's journal is no lost collector Redis
    lost = [worker for worker in document["workers"] if worker["lost"]]
    assert len(lost) == 1 and lost[0]["requests"] > 0
    missed = [check["name"] for check in document["checks"] if not check["met"]]
    assert missed == ["every worker ran to the end (none lost mid-run)"], missed
    assert "1 of 2 workers lost mid-run" in stdout
    assert f"it had flushed {lost[0]['requests']:,} requests to the collector" in stdout


def test_a_run_that_never_started_says_which_workers_ended_before_it(tmp_path: Path) -> None:
    """Locust's master gives up (exit 1) when its workers do not all join: the error names the run,
    the wait, the local workers that ended before it and the log, instead of blaming the collector."""
    from perfsuite.jobs import never_started
    from perfsuite.launcher import EXPECT_WORKERS_MAX_WAIT_S, LocustOutcome

    job = LocustJob(locustfile=PROBE_LOCUSTFILE, host="http://127.0.0.1:1", run_id="r1", env={}, workers=2)
    outcome = LocustOutcome(
        returncode=1,
        interrupted=False,
        timed_out=False,
        log_path=tmp_path / "r1-locust.log",
        workers_exited=("worker 1 of 2 (pid 4711): exit code -9",),
    )
    text = never_started(job, outcome)
    assert text.startswith("run r1 never started: Locust exited with code 1")
    assert f"2 worker(s) have not all joined within {EXPECT_WORKERS_MAX_WAIT_S} s" in text
    assert "worker 1 of 2 (pid 4711): exit code -9" in text and str(tmp_path / "r1-locust.log") in text
