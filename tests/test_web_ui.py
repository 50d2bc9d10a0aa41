"""Locust's web UI with the suite's options, driven in headless Chromium as a person would: pick a
scenario and set a custom option, start, watch the statistics rise, stop; the run lands in the
history graded, with the chosen scenario and option."""

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

from perfsuite.collector import CollectorReader
from perfsuite.embedded import ManagedProcess, free_port, start_demo_bot, start_redis, wait_for_http
from tests.chromium import CHROMIUM, CLICK, SET_INPUT, HeadlessChromium, open_custom_parameters

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed")


@pytest.fixture()
def web_ui(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``perfsuite web`` against the demo bot (its own Redis), collector on the test's Redis."""
    bot_redis = start_redis()
    token = secrets.token_hex(16)
    bot: ManagedProcess = start_demo_bot(bot_redis.url, token)
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "TWILIO_AUTH_TOKEN": token}
    log = (tmp_path / "web.log").open("wb")
    web = subprocess.Popen(
        [sys.executable, "-m", "perfsuite", "web", "--host", bot.url, "--web-port", str(port)],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        assert wait_for_http(f"http://127.0.0.1:{port}/", 30), (tmp_path / "web.log").read_text()
        yield f"http://127.0.0.1:{port}", redis_url
    finally:
        web.terminate()
        web.wait(timeout=30)
        log.close()
        bot.stop()
        bot_redis.stop()


def _runs(redis_url: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "perfsuite", "runs", "list", "--format", "json"],
        env={**os.environ, "REDIS_URL": redis_url},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    runs: list[dict[str, Any]] = json.loads(done.stdout)
    return runs


@pytest.mark.slow
def test_a_test_started_in_the_browser_uses_the_chosen_scenario_and_lands_in_history(
    web_ui: tuple[str, str], tmp_path: Path
) -> None:
    """Scenario "smoke" and a 30% share of bad signatures picked in the form; statistics rise; STOP;
    `perfsuite runs list` shows the run, graded, stored with that scenario and that share."""
    url, redis_url = web_ui
    browser = HeadlessChromium(tmp_path / "profile")
    try:
        open_custom_parameters(browser, url)
        assert browser.evaluate(f"{SET_INPUT}('perfsuiteScenario', 'smoke')") == "smoke"
        assert browser.evaluate(f"{SET_INPUT}('perfsuiteInvalidSignatureRate', '0.3')") == "0.3"
        assert browser.evaluate(f"{SET_INPUT}('perfsuiteRequestsPerUser', '200')") == "200"
        browser.evaluate(f"{SET_INPUT}('userCount', '1')")
        browser.evaluate(f"{SET_INPUT}('spawnRate', '1')")
        assert browser.evaluate(f"{CLICK}('START')")
        seen = 0
        deadline = time.monotonic() + 30
        while seen < 20:  # the page's own statistics table rises
            assert time.monotonic() < deadline, browser.evaluate("document.body.innerText.slice(0, 2000)")
            time.sleep(0.5)
            text = browser.evaluate("document.body.innerText")
            numbers = [int(n.replace(",", "")) for n in _aggregated(text)]
            seen = max(numbers, default=0)
        browser.screenshot(tmp_path / "web-ui-running.png")
        assert browser.evaluate(f"{CLICK}('STOP')")
        assert browser.problems() == [] or all("network request" in p for p in browser.problems())
    finally:
        browser.close()
    deadline = time.monotonic() + 60
    listed: list[dict[str, Any]] = []
    while not (listed and listed[0]["grade"] != "-"):
        assert time.monotonic() < deadline, listed
        time.sleep(1)
        listed = _runs(redis_url)
    run = listed[0]
    assert run["scenario"] == "smoke" and run["test_type"] == "webhook" and run["requests"] >= seen
    meta = CollectorReader(redis_url).meta(run["run_id"])
    config = json.loads(meta["config"])
    assert config["traffic"]["invalid_signature_rate"] == 0.3
    assert config["webhook"]["requests_per_user"] == 200
    stored = json.loads(meta["result"])
    assert stored["scenario"] == "smoke" and stored["checks"]
    bad = sum(row["count"] for row in stored["endpoints"] if "bad-signature" in row["name"])
    assert bad >= 0.1 * stored["summary"]["requests"]  # the share chosen in the form, not the scenario's 2%


def _aggregated(text: str) -> list[str]:
    """The request counts on the page's "Aggregated" statistics row."""
    for line in text.splitlines():
        if line.strip().startswith("Aggregated"):
            return [cell for cell in line.split() if cell.replace(",", "").isdigit()][:1]
    return []
