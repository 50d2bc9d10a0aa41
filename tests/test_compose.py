"""docker-compose.yml: valid by the Compose Specification, and its Locust command lines work as
local processes (master with the web UI + a worker), two tests started from the web UI."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from perfsuite.collector import CollectorReader
from perfsuite.embedded import free_port, start_demo_bot, start_redis, wait_for_http

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO.parent / "shared" / "schemas" / "compose-spec.json"


def compose(name: str = "docker-compose.yml") -> dict[str, Any]:
    """docker-compose.yml (or another compose file of the repository) as data."""
    document: dict[str, Any] = yaml.safe_load((REPO / name).read_text())
    return document


@pytest.mark.skipif(not SCHEMA.exists(), reason="compose-spec.json not beside the checkout")
@pytest.mark.parametrize("name", ["docker-compose.yml", "docker-compose.headless.yml"])
def test_compose_file_is_valid_by_the_compose_specification(name: str) -> None:
    """The file (and the headless variant's) validates against the Compose Specification JSON schema."""
    jsonschema.validate(compose(name), json.loads(SCHEMA.read_text()))


def test_the_headless_master_waits_for_as_many_workers_as_compose_starts() -> None:
    """docker-compose.headless.yml turns the master into `perfsuite run` waiting for ${WORKERS}
    workers, the number of worker replicas the main file starts; the result goes to the mounted
    results directory."""
    master = compose("docker-compose.headless.yml")["services"]["locust-master"]
    command = master["command"]
    assert command[:2] == ["perfsuite", "run"]
    assert command[command.index("--remote-workers") + 1] == "${WORKERS:-2}"
    assert compose()["services"]["locust-worker"]["deploy"]["replicas"] == "${WORKERS:-2}"
    assert any(volume.endswith(":/results") for volume in master["volumes"])
    assert command[command.index("--output-file") + 1].startswith("/results/")


def test_compose_services_cover_the_distributed_setup() -> None:
    """Collector Redis, the bot and its Redis behind the fault proxy, a master with the web UI, scalable
    workers; no secret is written into the file (the token comes from the environment)."""
    services = compose()["services"]
    wanted = {"collector-redis", "bot-redis", "chaos-proxy", "demo-bot", "locust-master", "locust-worker"}
    assert wanted <= set(services)
    assert "chaos-proxy:26379" in services["demo-bot"]["environment"]["DEMO_BOT_REDIS_URL"]
    assert "perfsuite.faults" in services["chaos-proxy"]["command"]
    assert "8089:8089" in services["locust-master"]["ports"]
    assert services["locust-worker"]["command"][:4] == ["perfsuite", "worker", "--master", "locust-master"]
    text = (REPO / "docker-compose.yml").read_text()
    assert "TWILIO_AUTH_TOKEN: ${TWILIO_AUTH_TOKEN:?" in text


def _local(command: list[str], replacements: dict[str, str]) -> list[str]:
    out = []
    for arg in command:
        for old, new in replacements.items():
            arg = arg.replace(old, new)
        out.append(arg)
    assert out[0] in ("locust", "perfsuite")
    return [sys.executable, "-m", out[0], *out[1:]]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _post(url: str, form: dict[str, str]) -> Any:
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5) as response:
        return json.loads(response.read() or b"{}")


def _settled_count(web: str, timeout_s: float = 30.0) -> int:
    """Locust's request count once the workers' last stats reports are in: unchanged across one
    report interval (3 s), bounded by ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    previous = -1
    while True:
        stats = _get(web + "/stats/requests")["stats"]
        count = sum(row["num_requests"] for row in stats if row["name"] != "Aggregated")
        if count == previous or time.monotonic() > deadline:
            return count
        previous = count
        time.sleep(3.5)


@pytest.mark.slow
def test_compose_command_lines_run_two_web_ui_tests_distributed(redis_url: str, tmp_path: Path) -> None:
    """The master and worker exactly as compose runs them (hosts mapped to loopback): two tests
    started from the web UI are two runs in the collector, each counting what Locust counted."""
    services = compose()["services"]
    bot_redis = start_redis()
    token = secrets.token_hex(16)
    bot = start_demo_bot(bot_redis.url, token)
    master_port, web_port = free_port(), free_port()
    replacements = {
        "/app/": str(REPO) + "/",
        "${TARGET_HOST:-http://demo-bot:8000}": bot.url,
        "locust-master": "127.0.0.1",
        "5557": str(master_port),
        "${TEST_TYPE:-webhook}": "webhook",
    }
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "TWILIO_AUTH_TOKEN": token,
        "PERFSUITE_SCENARIO": "smoke",
        "PERFSUITE_CONFIG": str(REPO / "scenarios.yaml"),
    }
    master_cmd = [
        *_local(services["locust-master"]["command"], replacements),
        "--web-host",
        "127.0.0.1",
        "--web-port",
        str(web_port),
        "--master-bind-host",
        "127.0.0.1",
    ]
    worker_cmd = _local(services["locust-worker"]["command"], replacements)
    log = (tmp_path / "locust.log").open("wb")
    master = subprocess.Popen(master_cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    worker = subprocess.Popen(worker_cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    web = f"http://127.0.0.1:{web_port}"
    try:
        assert wait_for_http(web + "/", 30), (tmp_path / "locust.log").read_text()
        deadline = time.monotonic() + 30
        while _get(web + "/worker-count")["worker_count"] < 1:
            assert time.monotonic() < deadline, "worker never connected"
            time.sleep(0.2)
        counts = []
        for _ in range(2):
            assert _post(web + "/swarm", {"user_count": "1", "spawn_rate": "1", "host": bot.url})["success"]
            deadline = time.monotonic() + 60
            time.sleep(1)
            while _get(web + "/stats/requests")["state"] not in ("stopped", "ready"):
                assert time.monotonic() < deadline, "the shape never finished"
                time.sleep(0.5)
            counts.append(_settled_count(web))
    finally:
        for process in (worker, master):
            process.terminate()
            process.wait(timeout=30)
        log.close()
        bot.stop()
        bot_redis.stop()
    runs = CollectorReader(redis_url).list_runs()
    assert len(runs) == 2, (tmp_path / "locust.log").read_text()[-3000:]
    recorded = sorted(int(CollectorReader(redis_url).load(run_id).requests) for run_id in runs["run_id"])
    assert recorded == sorted(counts) == [35, 35]
