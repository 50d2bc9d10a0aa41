"""The collector's Redis lost mid-run (issue 10): killed with SIGKILL, restarted empty (no persistence).

Writers keep a journal of every entry and write it all again when Redis comes back; a run whose
Redis is still away at the end is read from the spill files and written back later; ``perfsuite
run`` prints the report and exits 75 (EX_TEMPFAIL) rather than a grade's code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from perfsuite.collect import collect
from perfsuite.collector import (
    FROM_SPILL,
    CollectorReader,
    CollectorWriter,
    load_spilled,
    new_run_id,
    replay_spill,
)
from perfsuite.collector.runs import finish_fields, meta_entries, run_fields
from perfsuite.config import load_config
from perfsuite.embedded import ManagedProcess, free_port, start_redis
from perfsuite.errors import EXIT_TEMPFAIL
from perfsuite.result import RunResult, RunStatus

PREFIX = "psloss"
REPO = Path(__file__).resolve().parent.parent


def port_of(server: ManagedProcess) -> int:
    """The TCP port a private redis-server listens on."""
    return int(server.extra["port"])


def kill_hard(server: ManagedProcess) -> None:
    """SIGKILL our own private redis-server (never the shared one): what it held is gone."""
    assert server.extra["port"] != "6379"
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)


def spill_files(spill_dir: Path) -> list[str]:
    """Names of the spill files and journals left in ``spill_dir``."""
    if not spill_dir.is_dir():
        return []
    return sorted(p.name for p in spill_dir.iterdir() if p.suffix in (".spill", ".journal"))


def record_second(writer: CollectorWriter, at_s: float, n: int, name: str = "/x") -> None:
    """``n`` requests of one endpoint in one (past) second."""
    for i in range(n):
        writer.record("POST", name, 1_000 + i, at_s=at_s, error="HTTP 500" if i == 0 else None)


def start_meta(writer: CollectorWriter, run_id: str) -> None:
    """The run's metadata through its writer, as the Locust plugin of a master/local process does."""
    started = datetime.now(UTC)
    fields = run_fields(run_id, "webhook", "loss", "http://target", "{}", started)
    writer.put(meta_entries(PREFIX, run_id, fields, retention_s=3600, started_at=started))


def test_writer_rewrites_its_journal_when_redis_comes_back_empty(tmp_path: Path) -> None:
    """Redis is killed (no persistence) and restarted empty between flushes, once after a failed
    flush and once silently between two flushes: each time the writer writes its whole journal again,
    so the run (metadata included) comes back whole, every request counted once; the journal is
    deleted at close."""
    server = start_redis()
    spill_dir = tmp_path / "spill"
    run_id = new_run_id()
    try:
        writer = CollectorWriter(
            server.url, run_id, key_prefix=PREFIX, spill_dir=spill_dir, max_pending_batches=1, start=False
        )
        start_meta(writer, run_id)
        assert writer.journal_path.exists()
        base = time.time() - 100
        for second in range(3):
            record_second(writer, base + second, 40, "/before")
            assert writer.flush() is True
        kill_hard(server)
        for second in range(3, 6):
            record_second(writer, base + second, 40, "/during")
            assert writer.flush() is False
        assert writer.spill_path.exists() and writer.redis_outages == 1
        server = start_redis(port=port_of(server))  # empty: the first 3 batches and the meta are gone
        record_second(writer, base + 6, 40, "/after")
        assert writer.flush() is True
        assert not writer.spill_path.exists()
        reader = CollectorReader(server.url, PREFIX)
        assert reader.load(run_id).requests == 7 * 40  # everything, already before close
        kill_hard(server)
        server = start_redis(port=port_of(server))  # silently: no flush failed in between
        record_second(writer, base + 7, 40, "/last")
        writer.put(meta_entries(PREFIX, run_id, finish_fields("finished", locust_total_requests=8 * 40)))
        assert writer.close() is True
        assert spill_files(spill_dir) == []
        run = CollectorReader(server.url, PREFIX).load(run_id)
        assert run.requests == 8 * 40
        counts = run.summary().set_index("name")["count"].to_dict()
        assert counts == {"/before": 120, "/during": 120, "/after": 40, "/last": 40}
        assert run.complete, run.problems
        assert run.matches_locust is True and run.meta["status"] == "finished"
        assert run.meta["test_type"] == "webhook"
        assert run.redis_outages == writer.redis_outages == 2
        assert run.entries_rewritten == writer.entries_rewritten > 2 * 7
        assert list(CollectorReader(server.url, PREFIX).list_runs()["run_id"]) == [run_id]
        assert run.failure_reasons()["count"].sum() == 8
    finally:
        server.stop()


def test_run_is_read_from_spill_files_while_redis_is_down_then_written_back(tmp_path: Path) -> None:
    """Redis dies mid-run and is still down when the writers close: each leaves its whole journal as
    its spill file (late metadata appended), the run reads from those files exactly as it will from
    Redis, and once a Redis answers again (empty) replaying them writes it all and removes them."""
    server = start_redis()
    spill_dir = tmp_path / "spill"
    run_id = new_run_id()
    try:
        options: dict = {"key_prefix": PREFIX, "spill_dir": spill_dir, "start": False}
        main = CollectorWriter(server.url, run_id, writer_id="main", **options)
        worker = CollectorWriter(server.url, run_id, writer_id="worker", **options)
        start_meta(main, run_id)
        base = time.time() - 100
        record_second(worker, base, 50)
        main.mark("stage", at_s=base, name="ramp")
        assert worker.flush() and main.flush()
        kill_hard(server)
        record_second(worker, base + 1, 50)
        assert worker.flush() is False
        main.put(meta_entries(PREFIX, run_id, finish_fields("finished", locust_total_requests=99)))
        assert worker.close(timeout_s=0.3) is False and main.close(timeout_s=0.3) is False
        # a master's late Locust total, after its writer closed: spilled too, written later
        main.put(meta_entries(PREFIX, run_id, {"locust_total_requests": 100}))
        assert spill_files(spill_dir) == [f"{run_id}.main.spill", f"{run_id}.worker.spill"]

        spilled = load_spilled(spill_dir, run_id, PREFIX)
        assert spilled.source == FROM_SPILL and spilled.entries_from_files > 0
        assert spilled.requests == 100 and spilled.matches_locust is True
        assert spilled.complete, spilled.problems
        assert spilled.redis_outages == 2
        assert list(spilled.marks("stage")["name"]) == ["ramp"]

        server = start_redis(port=port_of(server))
        replayed = replay_spill(server.url, spill_dir)
        assert replayed.files == 2 and spill_files(spill_dir) == []
        run = CollectorReader(server.url, PREFIX).load(run_id)
        assert run.requests == spilled.requests and run.complete
        assert run.meta["locust_total_requests"] == "100" and run.meta["status"] == "finished"
        assert run.summary().equals(spilled.summary())
        assert list(CollectorReader(server.url, PREFIX).list_runs()["run_id"]) == [run_id]
    finally:
        server.stop()


CRASHING_WRITER = """
import os, signal, sys, time
from pathlib import Path
from perfsuite.collector import CollectorWriter
url, run_id, prefix, spill_dir = sys.argv[1:]
writer = CollectorWriter(url, run_id, key_prefix=prefix, spill_dir=Path(spill_dir), start=False)
for i in range(10):
    writer.record("POST", "/x", 1_000 + i, at_s=time.time() - 50)
writer.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_live_writers_files_are_not_replayed(redis_url: str, tmp_path: Path) -> None:
    """A running writer holds its journal: replaying the spill directory (another perfsuite command
    starting meanwhile) leaves that writer's files alone; the journal of a writer whose process was
    killed is written and removed."""
    live = CollectorWriter("redis://127.0.0.1:1/0", new_run_id(), spill_dir=tmp_path, start=False)
    crashed_run = new_run_id()
    crash = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, redis_url, crashed_run, PREFIX, str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crash.returncode == -signal.SIGKILL, crash.stderr
    assert len(spill_files(tmp_path)) == 2
    result = replay_spill(redis_url, tmp_path)
    assert result.files == 1 and spill_files(tmp_path) == [live.journal_path.name]
    crashed = CollectorReader(redis_url, PREFIX).load(crashed_run)
    assert crashed.requests == 10 and not crashed.complete  # it never closed
    live.close(timeout_s=0)
    assert spill_files(tmp_path) == [live.spill_path.name]


def test_collect_reads_the_spill_files_when_redis_is_down(tmp_path: Path) -> None:
    """The job's read-back with the collector's Redis still down: figures from the spill files,
    the loss stated in numbers (none lost), the status kept for later, exit code 75 whatever the
    grade (130 still wins)."""
    spill_dir = tmp_path / "spill"
    config = load_config(None, None, {"collector.spill_dir": str(spill_dir), "redis.key_prefix": PREFIX})
    dead = f"redis://127.0.0.1:{free_port()}/0"
    run_id = new_run_id()
    writer = CollectorWriter(dead, run_id, key_prefix=PREFIX, spill_dir=spill_dir, start=False)
    start_meta(writer, run_id)
    record_second(writer, time.time() - 30, 25)
    writer.put(meta_entries(PREFIX, run_id, finish_fields("finished", locust_total_requests=25)))
    assert writer.close(timeout_s=0) is False

    collected = collect(config, dead, run_id, RunStatus.TIMED_OUT)
    integrity = collected.integrity
    assert integrity.read_from_spill and integrity.redis_lost and integrity.redis_outages == 1
    assert integrity.requests == integrity.locust_requests == 25
    assert integrity.lost == 0 and integrity.exact and integrity.recovered_from_spill > 0
    assert collected.meta["status"] == "timed_out"  # kept in the run's spill files for later
    assert f"{run_id}.perfsuite.spill" in spill_files(spill_dir)

    lost = RunResult(test_type="webhook", collector=integrity)
    assert lost.exit_code == EXIT_TEMPFAIL == 75
    assert RunResult(test_type="all", parts=(lost,)).exit_code == 75
    assert RunResult(test_type="webhook", collector=integrity, status=RunStatus.INTERRUPTED).exit_code == 130
    kept = lost.model_copy(update={"collector": integrity.model_copy(update={"redis_lost": False})})
    assert kept.exit_code == kept.grade.exit_code != 75


def _config_file(tmp_path: Path, spill_dir: Path) -> Path:
    """The repository's scenarios.yaml with the spill directory in ``tmp_path`` and a tiny in-memory
    bound (batches spill to disk as soon as Redis fails)."""
    raw = yaml.safe_load((REPO / "scenarios.yaml").read_text())
    raw["collector"].update({"spill_dir": str(spill_dir), "max_pending_batches": 1, "flush_interval_s": 0.5})
    path = tmp_path / "scenarios.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
def test_collector_redis_killed_mid_run_and_restarted(tmp_path: Path) -> None:
    """`perfsuite run --scenario smoke` while its collector Redis (private, no persistence) is killed
    with SIGKILL and restarted empty on the same port seconds later: the report is printed, the
    collector's totals equal Locust's, the spill files are written back and removed, the run is
    stored (``runs list`` finds it) and the exit code is 75, not a grade's."""
    server = start_redis()
    spill_dir = tmp_path / "spill"
    config = _config_file(tmp_path, spill_dir)
    out = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TWILIO_AUTH_TOKEN")}
    env["REDIS_URL"] = server.url
    command = [sys.executable, "-m", "perfsuite", "run", "--test-type", "webhook", "--config", str(config)]
    command += ["--scenario", "smoke"]
    command += ["--requests-per-user", "100", "--output-file", str(out)]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not CollectorReader(server.url).list_runs().shape[0]:
            assert time.monotonic() < deadline and process.poll() is None, "the run never started"
            time.sleep(0.2)
        time.sleep(2)
        assert process.poll() is None, "the run ended before the kill"
        kill_hard(server)
        time.sleep(3)
        assert process.poll() is None, "the run ended while Redis was down"
        server = start_redis(port=port_of(server))
        stdout, stderr = process.communicate(timeout=240)

        assert process.returncode == EXIT_TEMPFAIL, stderr[-3000:]
        assert "Traceback" not in stderr
        assert "GRADE:" in stdout and "the collector's Redis was lost during the run" in stdout
        document = json.loads(out.read_text())
        collector = document["collector"]
        assert document["exit_code"] == 75 and document["status"] == "finished"
        assert collector["redis_lost"] is True and collector["redis_outages"] >= 1
        assert collector["requests"] == collector["locust_requests"] > 5 * 20
        assert collector["lost"] == 0 and collector["exact"] is True
        assert collector["rewritten_from_journals"] > 0
        assert spill_files(spill_dir) == []
        run = CollectorReader(server.url).load(document["run_id"])
        assert run.complete and run.matches_locust is True and run.meta["status"] == "finished"
        assert run.writers()["spilled"].sum() > 0  # batches did go through the spill file meanwhile
        listed = subprocess.run(
            [sys.executable, "-m", "perfsuite", "runs", "list", "--config", str(config), "--format", "json"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        stored = {row["run_id"]: row for row in json.loads(listed.stdout)}[document["run_id"]]
        assert stored["requests"] == collector["locust_requests"] and stored["grade"] == document["grade"]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        server.stop()
