"""The terminal and the HTML report of one run show the same figures: every block the terminal
prints (its title, each line, each table cell), every check, warning and diagnosis line is in the
HTML page too."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from perfsuite.charts import result_charts
from perfsuite.registry import load_result, sections_of
from perfsuite.report import core_sections, render
from perfsuite.report_html import render_html
from perfsuite.result import RunResult

RECORDED = Path(__file__).resolve().parent / "golden" / "result_v1"


def _page_text(result: RunResult) -> str:
    return html.unescape(render_html(result, result_charts(result)))


@pytest.mark.parametrize(
    "name", ["webhook_v1.json", "redis_v1.json", "arrival_v1.json", "../result_v2/capacity_legacy.json"]
)
def test_every_terminal_block_is_in_the_html(name: str) -> None:
    """Real recorded runs (webhook closed and open model, Redis benchmark, and a capacity run on the
    legacy demo bot with its knee, a failed outage, alerts and the bot's own words): whatever the
    terminal shows of them, the HTML shows as well."""
    result = load_result(json.loads((RECORDED / name).read_text()), name)
    text, page = render(result), _page_text(result)
    sections = [*sections_of(result), *core_sections(result)]
    assert len(sections) >= 3
    for section in sections:
        assert section.title in text and section.title in page, section.title
        for line in (*section.lines, *section.after):
            assert line.text in text and line.text in page, line.text
        if section.table is not None:
            for cell in (cell for row in section.table.rows for cell in row):
                assert cell in page, (section.title, cell)
    for check in result.checks:
        assert check.name in text and check.name in page
        assert check.note in text and check.note in page
    for warning in (*result.warnings, *result.diagnosis):
        assert warning in page


def test_the_headline_figures_agree() -> None:
    """Requests, throughput, percentiles, success rate and every outcome count: the same numbers."""
    result = load_result(json.loads((RECORDED / "webhook_v1.json").read_text()))
    summary, text, page = result.summary, render(result), _page_text(result)
    for figure in (f"{summary.p50_ms:,.1f}", f"{summary.p95_ms:,.1f}", f"{summary.p99_ms:,.1f}"):
        assert figure in text and figure in page
    rate = f"{(summary.success_rate or 0) * 100:.2f}%"
    assert rate in text and rate in page
    for row in result.endpoints:
        assert f"{row.request_type} {row.name}" in text and f"{row.request_type} {row.name}" in page
    assert "rejected" in page and "backpressure" in page
