"""The HTML report in a real headless Chromium, driven over the DevTools protocol.

Checks that a user opening the file sees drawn charts (time series with stage marks and fault
windows, before/after bars), that the page's script runs without a console error or exception
(hover read-out, legend toggles), and that it loads nothing from the network. A screenshot of each
page is written to the test's tmp directory (and to $PERFSUITE_SCREENSHOT_DIR when set).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from baseline.comparator import compare
from baseline.job import comparison_charts, comparison_result
from baseline.sides import run_side
from baseline.synthetic import SyntheticProfile, write_run
from perfsuite.charts import result_charts
from perfsuite.config import BaselineConfig
from perfsuite.history import RunHistory
from perfsuite.report_html import render_html

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed")

PROFILE = SyntheticProfile(seconds=40, rps=50, burst_at_s=30, burst_seconds=3, fault_at_s=12, fault_seconds=6)


class HeadlessChromium:
    """A headless Chromium and a small DevTools-protocol client for its one page."""

    def __init__(self, profile_dir: Path, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile_dir}",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                "--window-size=1200,900",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout_s) as reply:
            pages = [t for t in json.load(reply) if t["type"] == "page"]
        self.socket = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=timeout_s, suppress_origin=True
        )
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events seen meanwhile are kept in ``events``)."""
        self._next_id += 1
        self.socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    def wait_for(self, event: str) -> None:
        """Read messages until ``event`` arrives (bounded by the timeout)."""
        deadline = time.monotonic() + self.timeout_s
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(event)
            self.events.append(json.loads(self.socket.recv()))

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        reply = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(reply["exceptionDetails"])
        return reply["result"].get("value")

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, and requests to anything but the file."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "warning",
                "assert",
            ):
                found.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") in ("error", "warning"):
                found.append(f"log {params['entry']['level']}: {params['entry'].get('text')}")
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if not url.startswith(("file:", "data:", "about:")):
                    found.append(f"network request: {url}")
        return found

    def screenshot(self, path: Path) -> None:
        """A full-page PNG."""
        size = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1200,
            height=int(size[1]),
            deviceScaleFactor=1,
            mobile=False,
        )
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        self.call("Emulation.clearDeviceMetricsOverride")
        path.write_bytes(base64.b64decode(data))
        shots = os.environ.get("PERFSUITE_SCREENSHOT_DIR")
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(shots) / path.name)

    def close(self) -> None:
        """Stop the browser."""
        if getattr(self, "socket", None) is not None:
            self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeadlessChromium]:
    """One headless Chromium for the module, with a fresh profile."""
    chromium = HeadlessChromium(tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


@pytest.fixture()
def history(redis_url: str, tmp_path: Path) -> RunHistory:
    """Two stored runs with stage marks and a fault window: a slow 'legacy' one, a fast one."""
    spill = tmp_path / "spill"
    write_run(redis_url, "html-legacy", dataclasses.replace(PROFILE, median_ms=90.0), seed=1, spill_dir=spill)
    fast = dataclasses.replace(PROFILE, median_ms=9.0, failure_rate=0.01)
    write_run(redis_url, "html-optimized", fast, seed=2, spill_dir=spill)
    return RunHistory(redis_url, "perfsuite")


CHART_STATE = """JSON.stringify({
  charts: document.body.dataset.charts,
  drawn: document.body.dataset.chartsDrawn,
  svgs: Array.from(document.querySelectorAll("svg.chart")).map(function (svg) {
    var box = svg.getBoundingClientRect();
    return {id: svg.id, drawn: Number(svg.dataset.drawn), width: box.width, height: box.height,
            paths: Array.from(svg.querySelectorAll("path.series")).map(function (p) {
              return p.getTotalLength();
            }),
            stages: svg.querySelectorAll("line.stage").length,
            faults: svg.querySelectorAll("rect.fault").length,
            bars: svg.querySelectorAll("rect.bar").length};
  })
})"""


def test_comparison_report_draws_every_chart_without_errors(
    browser: HeadlessChromium, history: RunHistory, tmp_path: Path
) -> None:
    """Latency, throughput and error charts carry both runs' lines, stage marks and the shaded fault
    window; the before/after bars are drawn; hovering shows a read-out; a legend click hides its
    line; no console error, exception or network request happens."""
    comparison = compare(
        [run_side(history, "html-optimized")], BaselineConfig(), [run_side(history, "html-legacy")]
    )
    page = tmp_path / "comparison.html"
    page.write_text(
        render_html(comparison_result(comparison), comparison_charts(comparison)), encoding="utf-8"
    )
    browser.open(page.as_uri())
    state = json.loads(browser.evaluate(CHART_STATE))
    charts = {svg["id"]: svg for svg in state["svgs"]}
    assert set(charts) == {"chart-latency", "chart-throughput", "chart-errors", "chart-before-after"}
    assert state["charts"] == "4" and state["drawn"] == "4"
    for chart in charts.values():
        assert chart["width"] > 600 and chart["height"] > 100
    assert len(charts["chart-latency"]["paths"]) == 6  # P50/P95/P99 of two runs
    assert all(length > 100 for length in charts["chart-latency"]["paths"])
    assert charts["chart-latency"]["stages"] == 8  # ramp, burst, steady, done of each run
    assert charts["chart-latency"]["faults"] == 2  # one fault window per run, shaded
    assert charts["chart-before-after"]["bars"] >= 10
    box = browser.evaluate(
        "(function(){var r=document.querySelector('#chart-latency .hover').getBoundingClientRect();"
        "return [r.left + r.width / 2, r.top + r.height / 2];})()"
    )
    browser.call("Input.dispatchMouseEvent", type="mouseMoved", x=box[0], y=box[1])
    tooltip = browser.evaluate(
        "document.querySelector('#chart-latency').parentNode.querySelector('.tooltip').textContent"
    )
    assert "baseline P95" in tooltip and "current P99" in tooltip and "ms" in tooltip
    hidden = browser.evaluate(
        "(function(){var b=document.querySelector('.legend-item[data-chart=chart-latency]');b.click();"
        "var s=b.dataset.series;"
        "return document.querySelector('#chart-latency path[data-series=\"'+s+'\"]').style.display;})()"
    )
    assert hidden == "none"
    browser.screenshot(tmp_path / "comparison.png")
    assert browser.problems() == []


def test_single_run_report_draws_its_charts_without_errors(
    browser: HeadlessChromium, history: RunHistory, tmp_path: Path
) -> None:
    """`perfsuite report RUN --format html`'s page: the run's time charts and its tables, no errors."""
    result = history.result("html-optimized")
    page = tmp_path / "run.html"
    page.write_text(render_html(result, result_charts(result)), encoding="utf-8")
    browser.open(page.as_uri())
    state = json.loads(browser.evaluate(CHART_STATE))
    assert state["charts"] == "3" and state["drawn"] == "3"
    assert browser.evaluate("document.querySelectorAll('table').length") >= 1
    assert "errors/s" in browser.evaluate(
        "document.getElementById('chart-errors').parentNode.parentNode.textContent"
    )
    browser.screenshot(tmp_path / "run.png")
    assert browser.problems() == []


def test_report_is_self_contained(history: RunHistory) -> None:
    """The file references no external resource: no src/href attributes, no URL but in text."""
    comparison = compare(
        [run_side(history, "html-optimized")], BaselineConfig(), [run_side(history, "html-legacy")]
    )
    page = render_html(comparison_result(comparison), comparison_charts(comparison))
    assert " src=" not in page and " href=" not in page and "@import" not in page
    assert "<script src" not in page and "<link" not in page


def test_data_text_is_escaped(history: RunHistory) -> None:
    """A scenario name with markup is shown as text, never run as markup."""
    result = history.result("html-legacy").model_copy(update={"scenario": "<img onerror=alert(1)>"})
    page = render_html(result, result_charts(result))
    assert "<img onerror" not in page and "&lt;img onerror=alert(1)&gt;" in page
