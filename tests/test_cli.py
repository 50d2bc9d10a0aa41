"""The perfsuite command end to end in a subprocess: bad input exits 64, missing services 69."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from perfsuite.embedded import free_port

REPO = Path(__file__).resolve().parent.parent


def perfsuite(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m perfsuite ARGS`` from the repository root."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TWILIO_AUTH_TOKEN")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "perfsuite", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def test_unknown_test_type_exits_64_naming_the_flag() -> None:
    """A test type that does not exist is a usage error, not a POOR grade (2)."""
    done = perfsuite("run", "--test-type", "webhok")
    assert done.returncode == 64
    assert "--test-type" in done.stderr and "webhok" in done.stderr
    assert "Traceback" not in done.stderr


def test_negative_user_count_exits_64_naming_the_flag() -> None:
    """--users -5 is refused before anything starts."""
    done = perfsuite("run", "--users", "-5")
    assert done.returncode == 64
    assert "--users" in done.stderr and "-5" in done.stderr


def test_broken_scenarios_file_exits_64_naming_the_key(tmp_path: Path) -> None:
    """A bad value in scenarios.yaml is named by its key path."""
    bad = tmp_path / "scenarios.yaml"
    bad.write_text("webhook:\n  concurrent_users: -3\n")
    done = perfsuite("run", "--config", str(bad))
    assert done.returncode == 64
    assert "webhook.concurrent_users" in done.stderr and "-3" in done.stderr
    assert "Traceback" not in done.stderr


def test_unreachable_redis_url_exits_69_naming_it() -> None:
    """A configured collector Redis that does not answer stops the run at preflight."""
    url = f"redis://:sekrit@127.0.0.1:{free_port()}/0"
    done = perfsuite("run", "--scenario", "smoke", env={"REDIS_URL": url})
    assert done.returncode == 69
    assert "REDIS_URL" in done.stderr and f"127.0.0.1:{url.rsplit(':', 1)[1]}" in done.stderr
    assert "sekrit" not in done.stderr + done.stdout


def test_unreachable_host_exits_69_naming_it(redis_url: str) -> None:
    """A --host nobody listens on is reported by name at preflight."""
    host = f"http://127.0.0.1:{free_port()}"
    done = perfsuite("run", "--host", host, env={"REDIS_URL": redis_url, "TWILIO_AUTH_TOKEN": "x" * 32})
    assert done.returncode == 69
    assert host in done.stderr


def test_host_without_auth_token_exits_64(redis_url: str, redis_server: object) -> None:
    """Signing for a real bot needs its token; without it the run refuses instead of sending junk."""
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    done = perfsuite("run", "--host", f"http://127.0.0.1:{port}", env={"REDIS_URL": redis_url})
    assert done.returncode == 64
    assert "TWILIO_AUTH_TOKEN" in done.stderr


@pytest.mark.slow
def test_smoke_run_on_embedded_defaults_prints_graded_report(redis_url: str, tmp_path: Path) -> None:
    """The main job on the demo bot: report with percentiles, thresholds and grade; JSON written."""
    out = tmp_path / "result.json"
    done = perfsuite(
        "run",
        "--test-type",
        "webhook",
        "--scenario",
        "smoke",
        "--output-file",
        str(out),
        env={"REDIS_URL": redis_url},
        timeout_s=180,
    )
    assert done.returncode in (0, 1, 2), done.stderr
    for text in ("P50", "P95", "P99", "throughput", "success rate", "GRADE:", "thresholds"):
        assert text in done.stdout
    import json

    document = json.loads(out.read_text())
    assert document["schema"] == "perfsuite.result/2"
    assert document["collector"]["exact"] is True
    assert document["collector"]["requests"] == 5 * 5 + 10  # users x quota + burst
    assert document["exit_code"] == done.returncode
    assert document["grade"] in done.stdout
    from perfsuite.collector import CollectorReader

    stages = CollectorReader(redis_url).load(document["run_id"]).marks("stage")
    assert list(stages["name"]) == ["ramp", "burst", "done"]  # the seed profile's stages, in order


@pytest.mark.slow
def test_ctrl_c_exits_130_with_partial_results_written(redis_url: str, tmp_path: Path) -> None:
    """Ctrl-C mid-run: exit 130, the partial report is printed and written, the collector still
    counted exactly what Locust counted, and the run is stored as interrupted."""
    import json
    import signal
    import time

    from perfsuite.collector import CollectorReader

    out = tmp_path / "partial.json"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TWILIO_AUTH_TOKEN")}
    env["REDIS_URL"] = redis_url
    earlier = set(CollectorReader(redis_url).list_runs().get("run_id", []))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perfsuite",
            "run",
            "--test-type",
            "webhook",
            "--users",
            "10",
            "--requests-per-user",
            "100000",
            "--ramp-up",
            "1",
            "--output-file",
            str(out),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_reaches_it,
    )
    try:
        deadline = time.monotonic() + 60
        while not set(CollectorReader(redis_url).list_runs().get("run_id", [])) - earlier:  # this run
            assert time.monotonic() < deadline and process.poll() is None, "the run never started"
            time.sleep(0.2)
        time.sleep(3)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        _kill_tree(process)
    assert process.returncode == 130, stderr
    assert "interrupted" in stdout and "GRADE:" in stdout
    document = json.loads(out.read_text())
    assert document["status"] == "interrupted" and document["exit_code"] == 130
    assert document["collector"]["requests"] > 0
    assert document["collector"]["requests"] == document["collector"]["locust_requests"]
    assert CollectorReader(redis_url).meta(document["run_id"])["status"] == "interrupted"


def _ctrl_c_reaches_it() -> None:
    """In the child before exec: SIGINT back to its default. A shell without job control starts
    background commands (``pytest ... &`` in a script) with SIGINT ignored, every child inherits
    that, and a program started with SIGINT ignored rightly keeps ignoring it, as perfsuite does."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _kill_tree(process: subprocess.Popen[str]) -> None:
    """Kill ``process`` and whatever it started, if still running (a failed test leaves nothing behind)."""
    import psutil

    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    process.communicate()


@pytest.mark.slow
@pytest.mark.parametrize(
    "moment",
    ["importing", "bot's redis-server starting", "demo bot starting", "locust starting"],
)
def test_ctrl_c_while_starting_exits_130_and_leaves_nothing_running(redis_url: str, moment: str) -> None:
    """Ctrl-C at any moment of the start (the command still importing, the embedded services or
    Locust just started): exit 130 with one line, no traceback, and no process it started left
    running (a Locust left behind would go on loading the bot and writing to the collector)."""
    import signal
    import time

    import psutil

    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TWILIO_AUTH_TOKEN")}
    env["REDIS_URL"] = redis_url
    argv = [sys.executable, "-m", "perfsuite", "run", "--test-type", "webhook", "--users", "2"]
    argv += ["--requests-per-user", "100000", "--ramp-up", "1"]
    pipe = subprocess.PIPE
    process = subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=pipe, stderr=pipe, text=True, preexec_fn=_ctrl_c_reaches_it
    )
    marker = {
        "importing": None,
        "bot's redis-server starting": "redis-server",
        "demo bot starting": "demo_bot",
        "locust starting": "locust",
    }[moment]
    seen: dict[int, psutil.Process] = {}
    try:
        if marker is None:  # past the interpreter's own start (before it, SIGINT kills any program)
            _wait_until_importing(process.pid)
        deadline = time.monotonic() + 60
        while marker is not None:
            assert process.poll() is None and time.monotonic() < deadline, f"{marker} never started"
            with contextlib.suppress(psutil.NoSuchProcess):
                children = psutil.Process(process.pid).children(recursive=True)
                for child in children:
                    child.info = " ".join(child.cmdline())  # kept for the failure message
                    seen[child.pid] = child
                if any(marker in child.info for child in children):
                    break
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        _stdout, stderr = process.communicate(timeout=90)
    finally:
        _kill_tree(process)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "perfsuite: interrupted" in stderr
    left = [child.pid for child in seen.values() if _running(child)]
    assert not left, [seen[pid].info for pid in left]


def _wait_until_importing(pid: int, timeout_s: float = 30.0) -> None:
    """Until process ``pid`` imports the command's modules: a compiled extension of pandas (which
    the command line imports) is mapped into it, so the interpreter's own start is over (a fixed
    sleep was too short on a loaded machine: the SIGINT came during its start-up and it died with
    "Fatal Python error: init_sys_streams")."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if "/pandas/" in Path(f"/proc/{pid}/maps").read_text():
                return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} never started importing pandas")


def _running(process: Any) -> bool:
    """Whether ``process`` (a psutil.Process) still runs (a zombie or a vanished process does not)."""
    import psutil

    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def test_unwritable_output_file_fails_before_the_run(tmp_path: Path) -> None:
    """An output path that cannot be written is refused (exit 64) before any load is sent, so no
    run is wasted; a directory given as a file is named as such."""
    done = perfsuite("run", "--output-file", "/proc/no/such/result.json")
    assert done.returncode == 64
    assert "--output-file /proc/no/such/result.json" in done.stderr
    assert "GRADE" not in done.stdout
    done = perfsuite("run", "--html-file", str(tmp_path))
    assert done.returncode == 64 and "is a directory" in done.stderr


@pytest.mark.slow
def test_run_time_bounds_a_closed_model_run_as_locust_s_does(redis_url: str, tmp_path: Path) -> None:
    """`--users 3 --run-time 3s`: users keep sending (no per-user quota) until 3 s passed, then stop."""
    import json

    out = tmp_path / "result.json"
    done = perfsuite(
        "run", "--test-type", "webhook", "--users", "3", "--run-time", "3s", "--no-burst",
        "--output-file", str(out),
        env={"REDIS_URL": redis_url}, timeout_s=120,
    )  # fmt: skip
    assert done.returncode in (0, 1, 2), done.stderr
    document = json.loads(out.read_text())
    assert document["config"]["webhook"]["run_time_s"] == 3
    assert 2 <= document["summary"]["duration_s"] <= 6, document["summary"]
    assert document["summary"]["requests"] > 3 * 5  # more than a few rounds of the 3 users


@pytest.mark.slow
def test_ctrl_c_while_the_backlog_drains_stops_waiting_and_reports(redis_url: str, tmp_path: Path) -> None:
    """Ctrl-C after the load, while the suite waits for a bot's queue to drain (a zoo bot working it
    off at 5 tasks/s, 60 s allowed): the wait stops at once, the report of what ran is printed and
    written (status interrupted, the backlog as seen), exit 130 within seconds."""
    import json
    import signal
    import time

    import psutil

    from tests.zoo import QUEUE_KEY, start_bot

    bot_redis = redis_url.rsplit("/", 1)[0] + "/2"
    token = "ctrl-c-backlog-token"
    bot = start_bot("slow_queue", token, redis_url=bot_redis, extra_args=("--drain-per-s", "5"))
    config = tmp_path / "scenarios.yaml"
    config.write_text(
        "webhook:\n  concurrent_users: 4\n  requests_per_user: 10\n  ramp_up_time: 0.5\n"
        "  enable_burst_testing: false\n  backlog_drain_timeout_s: 60\n"
        "target:\n  probe: false\n  backlog:\n    redis:\n      url_env: BOT_REDIS_URL\n"
        f"      keys: [{{key: {QUEUE_KEY}, type: list}}]\n"
    )
    out = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TWILIO_AUTH_TOKEN")}
    env.update(REDIS_URL=redis_url, TWILIO_AUTH_TOKEN=token, BOT_REDIS_URL=bot_redis)
    argv = [sys.executable, "-m", "perfsuite", "run", "--config", str(config), "--test-type", "webhook"]
    argv += ["--host", bot.url, "--output-file", str(out)]
    pipe = subprocess.PIPE
    process = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=pipe, stderr=pipe, text=True, preexec_fn=_ctrl_c_reaches_it
    )
    try:
        deadline = time.monotonic() + 90
        locust_seen = False
        while True:  # the load ran and ended: Locust is gone, perfsuite watches the backlog
            assert process.poll() is None and time.monotonic() < deadline, "the load never ended"
            with contextlib.suppress(psutil.NoSuchProcess):
                locust = [
                    c for c in psutil.Process(process.pid).children() if "locust" in " ".join(c.cmdline())
                ]
                locust_seen = locust_seen or bool(locust)
                if locust_seen and not locust:
                    break
            time.sleep(0.1)
        time.sleep(1)
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        stdout, stderr = process.communicate(timeout=60)
        took_s = time.monotonic() - interrupted
    finally:
        _kill_tree(process)
        bot.stop()
    print(f"\nexited {took_s:.1f} s after the Ctrl-C")
    assert process.returncode == 130, stdout + stderr
    assert took_s < 10, stdout + stderr
    assert "Traceback" not in stderr and "GRADE:" in stdout
    document = json.loads(out.read_text())
    assert document["status"] == "interrupted" and document["collector"]["exact"] is True
    backlog = document["figures"]["backlog"]
    assert backlog["supported"] and backlog["depth_at_stop"] > 0 and backlog["drained"] is not True, backlog
