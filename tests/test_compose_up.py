"""`docker compose up`, for real: the whole compose project on the machine's Docker engine (images
made here, no registry), with the README's commands. Headless with 2 worker containers: a webhook
run graded, every request of both workers in the collector; a capacity step with a real Redis
outage through the chaos-proxy container and a worker container killed mid-run, named in the
report; then the web UI with the suite's custom parameters in Chromium; `down` leaves nothing.

Skipped (with the reason) only where no engine can run (``scripts/ensure-docker`` says why)."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfsuite.embedded import wait_for_http
from tests.chromium import CHROMIUM, HeadlessChromium, open_custom_parameters
from tests.compose_project import REPO, ComposeProject, engine_problem, ensure_base_images

OVERRIDES = {
    "capacity.enable_database_failure": False,  # the demo bot stores in SQLite: no database to cut
    "capacity.load_ramp_steps": [5],  # one step; the smoke scenario's outage window stays
}
RUN_BOUND_S = 240.0
"""A headless run that has not ended this long after `up` is hung (a bound, not a timing check)."""


def _result(project: ComposeProject, test_type: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((project.results / f"{test_type}.json").read_text())
    return document


def _headless_exit_code(project: ComposeProject, test_type: str) -> int:
    """The master's exit code once its run ended. (Should the master hang after printing its report,
    as a run with a SIGKILLed worker did before a fix on main, it is stopped past RUN_BOUND_S and the
    result file's exit code counts.)"""
    code = project.exit_code("locust-master", RUN_BOUND_S)
    if code is None:
        assert "result written to" in project.logs("locust-master"), "the headless run never ended"
        project.compose("kill", "locust-master", headless=True, test_type=test_type)
        code = int(_result(project, test_type)["exit_code"])
    return code


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_docker_compose_up_runs_the_suite_distributed_on_a_real_engine(tmp_path: Path) -> None:
    """Built from the wheel, the compose project runs headless with 2 worker containers to graded
    reports (exit codes as the grades say): the webhook run's collector count equals Locust's, split
    over both workers; the capacity run cuts the bot's Redis through the chaos-proxy container (the
    bot's /health says so) and names the worker container killed mid-run as lost; the web UI on the
    master's :8089 offers the suite's parameters with every scenario of the image's scenarios.yaml;
    `down -v` leaves no container, network or volume; the auth token is in no log or result."""
    problem = engine_problem()
    if problem is not None:
        pytest.skip(problem)
    ensure_base_images()
    token = secrets.token_hex(16)
    project = ComposeProject(tmp_path, token, OVERRIDES, workers=2)
    logs: list[str] = []
    try:
        project.must("build", headless=True, timeout_s=900)

        # 1. headless webhook run: the README's `up -d`, `wait`, `logs`
        project.must("up", "-d", headless=True, test_type="webhook")
        code = _headless_exit_code(project, "webhook")
        logs.append(report := project.logs("locust-master"))
        webhook = _result(project, "webhook")
        assert code == webhook["exit_code"] == 0 and webhook["grade"] in ("EXCELLENT", "GOOD"), report
        assert "GRADE: " + webhook["grade"] in report and "perfsuite webhook test" in report
        collector = webhook["collector"]
        assert collector["exact"] and collector["requests"] == collector["locust_requests"] == 35, report
        workers = webhook["workers"]
        assert len(workers) == 2 and all(w["requests"] > 0 and not w["lost"] for w in workers), workers
        assert sum(w["requests"] for w in workers) == collector["requests"]

        # 2. headless capacity step with a Redis outage; one worker container killed mid-run
        project.must("up", "-d", headless=True, test_type="capacity")
        project.wait_for_log("locust-master", "fault redis-outage injected", RUN_BOUND_S)
        victim = project.containers("locust-worker")[0]
        victim_host = project.hostname(victim)
        subprocess.run(["docker", "kill", "--signal", "KILL", victim], check=True, capture_output=True)
        code = _headless_exit_code(project, "capacity")
        logs.append(report := project.logs("locust-master"))
        capacity = _result(project, "capacity")
        assert code == capacity["exit_code"] and capacity["grade"] and capacity["status"] == "finished"
        (outage,) = capacity["figures"]["outages"]
        assert outage["status"] == "run" and "chaos-proxy:8474" in outage["description"], outage
        assert "status degraded" in outage["bot_said"], outage  # the bot itself lost its Redis
        lost = [w for w in capacity["workers"] if w["lost"]]
        assert [w["host"] for w in lost] == [victim_host], capacity["workers"]
        assert "1 of 2 workers lost mid-run" in report and f"(host {victim_host}" in report, report

        # 3. the default project: the web UI with the suite's parameters, both workers joined
        project.must("up", "-d")
        web = f"http://127.0.0.1:{project.ports.web}"
        assert wait_for_http(web + "/", 60), project.logs("locust-master")
        deadline = time.monotonic() + 60
        while len(_get(web + "/stats/requests").get("workers") or ()) < 2:
            assert time.monotonic() < deadline, project.logs("locust-worker")
            time.sleep(0.5)
        if Path(CHROMIUM).exists():  # as for `perfsuite web` (tests/test_web_ui.py)
            browser = HeadlessChromium(tmp_path / "profile")
            try:
                open_custom_parameters(browser, web)
                fields = browser.evaluate(
                    "Array.from(document.querySelectorAll('[name^=\"perfsuite\"]'))"
                    ".map(function (e) { return e.name; }).join(',')"
                ).split(",")
                offered = browser.evaluate(
                    "Array.from(document.querySelector('[name=\"perfsuiteScenario\"]').options)"
                    ".map(function (o) { return o.value; }).join(',')"
                ).split(",")
                chosen = browser.evaluate("document.querySelector('[name=\"perfsuiteScenario\"]').value")
                text = browser.evaluate("document.body.innerText")
                browser.screenshot(tmp_path / "compose-web-ui.png")
            finally:
                browser.close()
            assert {"perfsuiteRequestsPerUser", "perfsuiteInvalidSignatureRate"} <= set(fields), fields
            scenarios = yaml.safe_load((REPO / "scenarios.yaml").read_text())["scenarios"]
            assert set(offered) == set(scenarios) and chosen == "smoke", (offered, chosen)
            assert re.search(r"WORKERS\s*2", text.upper()), text[:2000]
        logs.append(project.logs("locust-master") + project.logs("locust-worker") + project.logs("demo-bot"))
    finally:
        project.down()
    assert project.leftovers() == []
    for where in [*logs, *(path.read_text() for path in project.results.glob("*.json"))]:
        assert token not in where
