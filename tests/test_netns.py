"""A distributed run across separate hosts: network namespaces joined by veths through a bridge
(``tests/netns.py``). The Locust master in host "master", a worker in each of "w1" and "w2", the demo
bot with its own Redis and the collector's Redis in "target". Every byte between them crosses the
veths; loopback in one host is not loopback in another.

The command lines are the ones a user runs: ``perfsuite run --remote-workers 2 --master-bind-host
<address>`` on the master's host, ``perfsuite worker --master <address>`` on each worker's host.
What the hosts need beyond a single-machine run:

- master: bound to its own address (or ``*``, the default with ``--remote-workers``), never 127.0.0.1;
- workers: ``--master <the master's address>``;
- every Locust process: ``REDIS_URL`` with the collector's *routable* address: workers write to
  the collector themselves, so a collector on 127.0.0.1 of the master's host is out of their reach;
- the bot: ``--host <its address>`` (it signs what it is sent to: ``--host http://<address>:port``).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perfsuite.embedded import redis_server_binary
from tests.netns import Counters, Host, Network

REPO = Path(__file__).resolve().parent.parent
HOSTS = ("master", "w1", "w2", "target")
MASTER_PORT, BOT_PORT, COLLECTOR_PORT, BOT_REDIS_PORT = 5557, 8000, 6379, 6380
"""The docker-compose ports: each host has its own port space, so fixed ports cannot clash."""
RUN_BOUND_S = 120.0
"""A hang guard for the whole Locust run (it takes about 10 s), not a timing check."""

_READ_RUN = """
import json, sys
from perfsuite.collector import CollectorReader
run = CollectorReader(sys.argv[1]).load(sys.argv[2])
print(json.dumps({
    "requests": run.requests,
    "locust_total_requests": run.locust_total_requests,
    "matches_locust": run.matches_locust,
    "problems": list(run.problems),
    "meta": {k: v for k, v in run.meta.items() if k != "config"},
    "writers": run.writers().to_dict("records"),
}, default=str))
"""


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    """Four hosts on one bridge; removed at the end of the module, also on failure."""
    with Network(HOSTS) as net:
        yield net


def _redis(host: Host, address: str, port: int) -> subprocess.Popen[bytes]:
    argv = [redis_server_binary(), "--bind", address, "--port", str(port), "--save", "", "--appendonly", "no"]
    return host.popen([*argv, "--protected-mode", "no"], stdout=subprocess.DEVNULL)


def _locust_env(network: Network, token: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """What ``perfsuite.launcher`` gives every Locust process, with the collector's routable address."""
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
        "PERFSUITE_CONFIG": str(REPO / "scenarios.yaml"),
        "PERFSUITE_SCENARIO": "smoke",
        "PERFSUITE_OVERRIDES": "{}",
        "TWILIO_AUTH_TOKEN": token,
        "REDIS_URL": f"redis://{network['target'].address}:{COLLECTOR_PORT}/0",
        **(extra or {}),
    }


def _delta(after: Counters, before: Counters) -> tuple[int, int]:
    return after.rx_bytes - before.rx_bytes, after.tx_bytes - before.tx_bytes


@pytest.mark.slow
def test_a_master_bound_to_loopback_is_out_of_reach_of_other_hosts(network: Network, tmp_path: Path) -> None:
    """What ``perfsuite.launcher`` does today (``--master-bind-host 127.0.0.1``) cannot serve a worker on
    another host: the master's port answers on its own loopback only."""
    master = network["master"]
    argv = [sys.executable, "-m", "locust", "-f", str(REPO / "locustfiles" / "webhook.py"), "--headless"]
    argv += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(MASTER_PORT)]
    argv += ["--expect-workers", "1", "--expect-workers-max-wait", "20"]
    process = master.popen(
        argv,
        env=_locust_env(network, "x" * 32),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert master.wait_for_port("127.0.0.1", MASTER_PORT, 20), "the master did not start"
        assert not network["w1"].can_connect(master.address, MASTER_PORT)
    finally:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_a_run_across_hosts_counts_every_request_once(network: Network, tmp_path: Path) -> None:
    """Smoke scenario, master + 2 workers on their own hosts against the bot on a fourth: the run
    completes, the collector's total equals Locust's own, each worker's share (its writer record,
    named by its hostname) is > 0 and they add up, and the traffic went over the veths only."""
    target, master = network["target"], network["master"]
    token = secrets.token_hex(16)
    _redis(target, target.address, COLLECTOR_PORT)
    _redis(target, "127.0.0.1", BOT_REDIS_PORT)  # the bot's own Redis: loopback of the target host
    bot_env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TWILIO_AUTH_TOKEN": token,
        "DEMO_BOT_REDIS_URL": f"redis://127.0.0.1:{BOT_REDIS_PORT}/0",
    }
    bot_argv = [sys.executable, "-m", "demo_bot", "--host", target.address, "--port", str(BOT_PORT)]
    bot_log = (tmp_path / "bot.log").open("wb")
    target.popen(bot_argv, env=bot_env, cwd=tmp_path, stdout=bot_log, stderr=subprocess.STDOUT)
    assert master.wait_for_port(target.address, COLLECTOR_PORT, 10), "collector Redis unreachable"
    assert master.wait_for_port(target.address, BOT_PORT, 20), (tmp_path / "bot.log").read_text()

    # Loopback is per host: the target's services and the machine's own are out of a worker's reach.
    w1 = network["w1"]
    assert w1.can_connect(target.address, BOT_PORT)
    assert not w1.can_connect("127.0.0.1", BOT_PORT)
    assert not w1.can_connect("127.0.0.1", 6379)  # the machine's shared Redis is not visible here

    run_id = f"netns-{os.getpid()}"
    out = tmp_path / "result.json"
    master_argv = [sys.executable, "-m", "perfsuite", "run", "--test-type", "webhook", "--scenario", "smoke"]
    master_argv += ["--run-id", run_id]
    master_argv += ["--host", f"http://{target.address}:{BOT_PORT}", "--output-file", str(out)]
    master_argv += [
        "--remote-workers",
        "2",
        "--master-bind-host",
        master.address,
        "--master-port",
        str(MASTER_PORT),
    ]
    worker_argv = [
        sys.executable,
        "-m",
        "perfsuite",
        "worker",
        "--master",
        master.address,
        "--scenario",
        "smoke",
    ]
    env = _locust_env(network, token)
    before = {name: network[name].counters() for name in HOSTS}
    log = (tmp_path / "locust.log").open("wb")
    started = time.monotonic()
    main = master.popen(master_argv, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    workers = [
        network[name].popen(worker_argv, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        for name in ("w1", "w2")
    ]
    try:
        main.wait(timeout=RUN_BOUND_S)
        for worker in workers:
            worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the distributed run did not end:\n" + (tmp_path / "locust.log").read_text()[-4000:])
    finally:
        log.close()
        bot_log.close()
    elapsed = time.monotonic() - started
    locust_log = (tmp_path / "locust.log").read_text()
    assert main.returncode in (0, 1), locust_log[-4000:]  # a grade (FAIR on a loaded machine at worst)
    assert all(worker.returncode == 0 for worker in workers), locust_log[-4000:]

    result = json.loads(out.read_text())
    reading = master.run([sys.executable, "-c", _READ_RUN, env["REDIS_URL"], run_id], env=env)
    assert reading.returncode == 0, reading.stderr
    run: dict[str, Any] = json.loads(reading.stdout)
    writers = run["writers"]
    shares = {row["host"]: row["found_requests"] for row in writers}
    print(
        f"\nrun {run_id}: {run['requests']} in the collector, {run['locust_total_requests']} by Locust, "
        f"{elapsed:.1f} s"
    )
    for worker in result["workers"]:
        print(
            f"  worker {worker['host']:<7} pid {worker['pid']:>7}: {worker['requests']:>4} requests "
            f"({worker['share']:.0%})"
        )
    after = {name: network[name].counters() for name in HOSTS}
    for name in HOSTS:
        rx, tx = _delta(after[name], before[name])
        print(f"  {name:<7} eth0 rx {rx:>9,} B  tx {tx:>9,} B")

    assert run["problems"] == [], run["problems"]
    assert run["requests"] == run["locust_total_requests"] > 0
    assert result["collector"]["exact"] and result["collector"]["requests"] == run["requests"]
    reported = {worker["host"]: worker for worker in result["workers"]}
    assert sorted(reported) == ["w1", "w2"] and not any(worker["lost"] for worker in result["workers"])
    assert reported["w1"]["requests"] + reported["w2"]["requests"] == run["requests"]
    assert abs(reported["w1"]["share"] + reported["w2"]["share"] - 1) < 1e-9
    assert run["meta"]["status"] == "finished" and run["meta"]["workers"] == "2"
    assert sorted(shares) == ["master", "w1", "w2"]  # one writer per process, named by its host
    assert shares["master"] == 0 and shares["w1"] > 0 and shares["w2"] > 0
    assert shares["w1"] + shares["w2"] == run["requests"]
    # The load and the collector writes crossed the veths: each worker sent and received over eth0.
    for name in ("w1", "w2", "master", "target"):
        rx, tx = _delta(after[name], before[name])
        assert rx > 0 and tx > 0, (name, rx, tx)
    worker_tx = sum(_delta(after[name], before[name])[1] for name in ("w1", "w2"))
    assert _delta(after["target"], before["target"])[0] >= worker_tx * 0.5  # most of it went to the target
