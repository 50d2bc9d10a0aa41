"""The HTML report in a real headless Chromium, driven over the DevTools protocol.

Checks that a user opening the file sees drawn charts (time series with stage marks and fault
windows, before/after bars), that the page's script runs without a console error or exception
(hover read-out, legend toggles), and that it loads nothing from the network. A screenshot of each
page is written to the test's tmp directory (and to $PERFSUITE_SCREENSHOT_DIR when set).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from baseline.comparator import compare
from baseline.job import comparison_charts, comparison_result
from baseline.sides import run_side
from baseline.synthetic import SyntheticProfile, write_run
from perfsuite.charts import result_charts
from perfsuite.config import BaselineConfig
from perfsuite.history import RunHistory
from perfsuite.report_html import render_html
from tests.chromium import CHROMIUM, HeadlessChromium

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is not installed")

PROFILE = SyntheticProfile(seconds=40, rps=50, burst_at_s=30, burst_seconds=3, fault_at_s=12, fault_seconds=6)


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
