"""The compose ``metrics`` profile and the shipped monitoring files (Prometheus and Grafana cannot
run here: Docker Hub is out of reach), checked by what can run: the Compose Specification, the real
``promtool``, the endpoint's real exposition against every name the dashboard queries, and the web
UI's endpoint following each test it starts (what the compose master runs)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from perfsuite.cli import build_parser
from perfsuite.collector import CollectorReader, CollectorWriter, create_run
from perfsuite.config import MetricsConfig
from perfsuite.correction import Correction
from perfsuite.embedded import free_port, start_demo_bot, start_redis, wait_for_http
from perfsuite.marks import STAGE, STEP_VERDICT, Stage
from perfsuite.metrics.endpoint import MetricsEndpoint
from tests.metrics_run import PREFIX, close_run, record_run, scrape, total, value

REPO = Path(__file__).resolve().parent.parent
MONITORING = REPO / "monitoring"
SCHEMA = REPO.parent / "shared" / "schemas" / "compose-spec.json"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "perfsuite.json"


def compose() -> dict[str, Any]:
    """docker-compose.yml as data (merge keys resolved)."""
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_metrics_profile_is_valid_and_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """The file with its ``metrics`` profile validates; Prometheus and Grafana run only in that
    profile, mounting files that exist; the master's endpoint is off unless PERFSUITE_METRICS_PORT
    is set (the CLI's default for ``--metrics-port``), listens on every address of its container
    and publishes the port Prometheus scrapes."""
    if SCHEMA.exists():
        jsonschema.validate(compose(), json.loads(SCHEMA.read_text()))
    services = compose()["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["metrics"]
        for volume in services[name]["volumes"]:
            assert (REPO / volume.split(":")[0]).exists(), volume
    master = services["locust-master"]
    assert master["command"][:2] == ["perfsuite", "web"]
    assert master["environment"]["PERFSUITE_METRICS_PORT"] == "${PERFSUITE_METRICS_PORT:-}"
    assert master["environment"]["PERFSUITE_METRICS_HOST"] == "0.0.0.0"
    assert master["environment"]["REDIS_URL"] == services["locust-worker"]["environment"]["REDIS_URL"]
    assert "${PERFSUITE_METRICS_PORT:-9646}:${PERFSUITE_METRICS_PORT:-9646}" in master["ports"]
    scraped = yaml.safe_load((MONITORING / "prometheus" / "prometheus.yml").read_text())
    assert scraped["scrape_configs"][0]["static_configs"][0]["targets"] == ["locust-master:9646"]
    monkeypatch.setenv("PERFSUITE_METRICS_PORT", "")
    assert build_parser().parse_args(["web"]).metrics_port is None  # compose's default: off
    monkeypatch.setenv("PERFSUITE_METRICS_PORT", "9646")
    monkeypatch.setenv("PERFSUITE_METRICS_HOST", "0.0.0.0")
    web = build_parser().parse_args(["web"])
    assert (web.metrics_port, web.metrics_host) == (9646, "0.0.0.0")


def test_shipped_prometheus_config_passes_promtool() -> None:
    """Prometheus's own checker accepts the compose profile's prometheus.yml."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian's prometheus package ships it)")
    done = subprocess.run(
        [promtool, "check", "config", str(MONITORING / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


class _Health(BaseHTTPRequestHandler):
    """A bot's /health stating its queue depth."""

    def do_GET(self) -> None:
        body = json.dumps({"status": "ok", "queue_depth": 3}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


def _exported_names(redis_url: str) -> set[str]:
    """Every sample name the endpoint serves over two runs between them: a closed-model capacity run
    with every mark (a knee too) and a bot whose /health states its queue, and an open-model run."""
    recorded = record_run(redis_url, "names-closed")
    extra = CollectorWriter(redis_url, "names-closed", "extra", start=False)
    extra.mark(
        STEP_VERDICT, step=2, load=15, requests=300, good_rps=20.0, p95_ms=900.0, success_rate=0.9,
        meets_slo=False, knee_step=2, capacity=5,
    )  # fmt: skip
    extra.flush(everything=True)
    recorded.writers.append(extra)
    health = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=health.serve_forever, daemon=True).start()
    settings = MetricsConfig(port=0, backlog_interval_s=0.2)
    endpoint = MetricsEndpoint(settings, redis_url, PREFIX, health_path="/health").start()
    names: set[str] = set()
    try:
        endpoint.follow(
            "names-closed", Correction.closed_model(0.1), f"http://127.0.0.1:{health.server_port}"
        )
        deadline = time.monotonic() + 10
        samples = scrape(endpoint.url)
        while not any(name == "perfsuite_bot_backlog" for name, _, _ in samples):
            assert time.monotonic() < deadline, "the backlog was never read"
            time.sleep(0.2)
            samples = scrape(endpoint.url)
        assert (
            value(
                samples,
                "perfsuite_bot_backlog",
                source=f"health http://127.0.0.1:{health.server_port}/health",
            )
            == 3
        )
        names |= {name for name, _, _ in samples}
        close_run(redis_url, recorded)
        create_run(redis_url, PREFIX, "names-open", "webhook", "smoke", "http://127.0.0.1:1", "{}")
        writer = CollectorWriter(redis_url, "names-open", "w", start=False)
        writer.record("POST", "webhook text", 5_000, timings_us={"rt_uncorrected": 4_000})
        writer.mark(STAGE, name=Stage.STEADY, rate_per_s=50.0)
        writer.flush(everything=True)
        endpoint.follow("names-open", Correction.open_model())
        names |= {name for name, _, _ in scrape(endpoint.url)}
    finally:
        endpoint.close(linger=False)
        health.shutdown()
        health.server_close()
    return names


def test_dashboard_queries_only_metrics_the_endpoint_exports(redis_url: str) -> None:
    """Every perfsuite_* name in the dashboard's PromQL is one the endpoint really serves, every
    panel queries the provisioned Prometheus data source, and the provisioning loads the dashboard
    from where compose mounts it."""
    dashboard = json.loads(DASHBOARD.read_text())
    datasource = yaml.safe_load((MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    expressions = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]
            expressions.append(target["expr"])
    used = {name for expression in expressions for name in re.findall(r"\bperfsuite_[a-z0-9_]+", expression)}
    exported = _exported_names(redis_url)
    assert used - exported == set()
    assert len(used) >= 30  # the dashboard shows most of what is exported
    provider = yaml.safe_load((MONITORING / "grafana/provisioning/dashboards/perfsuite.yml").read_text())
    mounted = {v.split(":")[1] for v in compose()["services"]["grafana"]["volumes"]}
    assert provider["providers"][0]["options"]["path"] in mounted


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _post(url: str, form: dict[str, str]) -> Any:
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as response:
        return json.loads(response.read() or b"{}")


@pytest.fixture()
def web_ui(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """``perfsuite web --metrics-port`` on the demo bot, as compose's master runs it (environment
    variables; one local Locust process): (web UI URL, metrics URL, bot URL)."""
    bot_redis = start_redis()
    token = secrets.token_hex(16)
    bot = start_demo_bot(bot_redis.url, token)
    web_port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "TWILIO_AUTH_TOKEN": token,
        "PERFSUITE_SCENARIO": "smoke",
        "PERFSUITE_METRICS_PORT": str(metrics_port),
        "PERFSUITE_METRICS_HOST": "127.0.0.1",
        "PERFSUITE_OVERRIDES": json.dumps({"metrics.linger_s": 0}),  # no linger when it stops
    }
    argv = [sys.executable, "-m", "perfsuite", "web", "--host", bot.url, "--web-port", str(web_port)]
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        web = f"http://127.0.0.1:{web_port}"
        assert wait_for_http(web + "/", 30), (tmp_path / "web.log").read_text()[-3000:]
        yield web, f"http://127.0.0.1:{metrics_port}/metrics", bot.url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        bot.stop()
        bot_redis.stop()


@pytest.mark.slow
def test_web_ui_endpoint_follows_each_test_it_starts(web_ui: tuple[str, str, str], redis_url: str) -> None:
    """Two tests started in the web UI: after each, the endpoint serves that test's run (its id) with
    the collector's totals for it; the second starts again from its own count."""
    web, metrics, bot = web_ui
    seen = []
    for _ in range(2):
        assert _post(web + "/swarm", {"user_count": "1", "spawn_rate": "1", "host": bot})["success"]
        deadline = time.monotonic() + 60
        time.sleep(1)
        while _get(web + "/stats/requests")["state"] not in ("stopped", "ready"):
            assert time.monotonic() < deadline, "the shape never finished"
            time.sleep(0.5)
        reader = CollectorReader(redis_url)
        run_id = reader.latest_run_id()
        assert run_id is not None and run_id not in seen
        deadline = time.monotonic() + 20
        while True:  # the run's last flushes, then a scrape reads them
            samples = scrape(metrics)
            info = [labels for name, labels, _ in samples if name == "perfsuite_run_info"]
            data = reader.load(run_id)
            if (
                info
                and info[0]["run_id"] == run_id
                and data.complete
                and value(samples, "perfsuite_run_running") == 0
            ):
                break
            assert time.monotonic() < deadline, (info, data.problems)
            time.sleep(0.5)
        assert total(samples, "perfsuite_requests_total") == data.requests == 35
        seen.append(run_id)
