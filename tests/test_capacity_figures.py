"""The capacity figures of runs written through the real collector (baseline/synthetic.py): per-step
figures between the stage marks, the knee and the capacity found from the data, success during a
fault window and the recovery time after it, alerts and resources read back from their marks, the
report blocks, the comparison's metrics, and a result file read back typed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from baseline.synthetic import SyntheticProfile, SyntheticStep, write_run
from baseline.targets import values_of
from capacity.cells import RunCells
from capacity.figures import CapacityFigures
from capacity.job import CapacityTest, figures_of
from capacity.measure import capacity_figures
from capacity.plan import CapacityPlan
from capacity.recovery import recovery_after
from capacity.report import capacity_sections
from perfsuite.collector import CollectorReader, CollectorWriter, RunData
from perfsuite.config import RecoveryConfig, SuiteConfig, load_config
from perfsuite.launcher import LIVE_PREFIX, LogEcho
from perfsuite.marks import ALERT, RESOURCES, SAMPLE
from perfsuite.registry import load_result
from perfsuite.result import RunResult, Target
from perfsuite.sections import plain_table

START_S = 1_790_000_000
STEPS = (
    SyntheticStep(users=10, seconds=6, rps=20, median_ms=5),
    SyntheticStep(users=20, seconds=6, rps=40, median_ms=6),
    SyntheticStep(users=40, seconds=6, rps=78, median_ms=9),
    SyntheticStep(users=80, seconds=6, rps=90, median_ms=60),  # the knee: +100% load, +15% throughput
    SyntheticStep(users=160, seconds=6, rps=92, median_ms=700, failure_rate=0.05),
)
OUTAGE = SyntheticProfile(
    seconds=40,
    rps=20,
    median_ms=5,
    sigma=0.3,
    drift=0.05,
    fault_at_s=10,
    fault_seconds=6,
    fault_failure_rate=0.5,
    fault_after_seconds=5,  # the system still fails 5 s after the heal
    fault_name="redis-outage",
    steps=STEPS,
)


def _config() -> SuiteConfig:
    return load_config(
        None,
        None,
        {
            "capacity.load_ramp_steps": [step.users for step in STEPS],
            "capacity.step_duration": 6,
            "capacity.slo.p95_ms": 200,
            "capacity.recovery.window_s": 3,
            "capacity.recovery.warmup_s": 2,
            "faults": [
                {"name": "redis-outage", "at_s": 10, "duration_s": 6, "driver": "proxy", "target": "redis"}
            ],
        },
    )


@pytest.fixture()
def run(redis_url: str, tmp_path: Path) -> RunData:
    """A synthetic capacity run: a 40 s outage phase with a failing window, then five steps."""
    write_run(redis_url, "cap-run", OUTAGE, seed=3, test_type="capacity", start_s=START_S, spill_dir=tmp_path)
    writer = CollectorWriter(redis_url, "cap-run", spill_dir=tmp_path, start=False)
    for second in range(40, 70):  # the bot's usage and health, one sample a second
        at = START_S + second + 0.2
        writer.mark(RESOURCES, at_s=at, role="bot", process="bot", cpu_percent=20 + second, rss_mb=50)
        writer.mark(RESOURCES, at_s=at, role="machine", process="machine", cpu_percent=60, memory_percent=30)
        busy = 95 if second >= 64 else 30
        writer.mark(
            RESOURCES, at_s=at, role="generator", process="local", cpu_percent=busy, loop_lag_max_ms=3
        )
        writer.mark(SAMPLE, at_s=at, source="bot_health", pool_in_use=4, pool_max=20, queue_depth=0)
    for second in range(8, 30):
        depth = 300 if 10 <= second < 20 else 0
        writer.mark(SAMPLE, at_s=START_S + second + 0.5, source="bot_health", queue_depth=depth, status="ok")
    writer.mark(ALERT, at_s=START_S + 66, alert="p95", severity="warning", state="fired", value=1200.0,
                limit=1000.0, unit="ms", what="P95 over the last 10 s")  # fmt: skip
    writer.mark(ALERT, at_s=START_S + 69, alert="p95", severity="warning", state="cleared", value=100.0,
                peak=1900.0, unit="ms")  # fmt: skip
    writer.close()
    return CollectorReader(redis_url).load("cap-run")


def test_steps_knee_capacity_and_outage_come_from_the_run_s_data(run: RunData) -> None:
    """Each step's figures cover its own seconds (the first one left out to settle); the knee is the
    step whose throughput stopped following the load while P95 climbed; the capacity is the last step
    meeting the SLOs; the last step saturated the generator; the alert and resources are read back."""
    config = _config()
    figures = capacity_figures(config, run, CapacityPlan.from_config(config, config.faults))
    assert [step.load for step in figures.steps] == [10, 20, 40, 80, 160]
    first = figures.steps[0]
    assert first.measured_s == 5 and first.requests == 100 and first.throughput_rps == 20
    assert [step.meets_slo for step in figures.steps] == [True, True, True, True, False]
    assert (
        figures.capacity.value == 80
        and figures.capacity.step == 4
        and figures.capacity.first_failing_step == 5
    )
    assert figures.capacity.limited_by_generator  # the failing step saturated our generator
    assert figures.steps[4].generator_saturated and not figures.steps[3].generator_saturated
    assert figures.knee is not None and figures.knee.step == 4
    assert figures.steps[4].success_rate == pytest.approx(0.95, abs=0.03)
    assert (
        figures.alerts[0].at_s == 66
        and figures.alerts[0].cleared_at_s == 69
        and figures.alerts[0].peak == 1900
    )
    assert figures.steps[1].resources.bot_cpu_max_percent is not None
    assert figures.pool.max == 20 and figures.pool.capacity_step_utilization == pytest.approx(0.2)
    assert [(g.process, g.samples, g.cpu_max_percent) for g in figures.generators] == [("local", 30, 95.0)]


def test_success_during_the_outage_and_the_recovery_time_follow_the_rule(run: RunData) -> None:
    """Half the requests fail during the window: success during it about 50%; they keep failing 5 s
    after the heal, so the rolling 3 s window holds the pre-fault levels from about 5 s on."""
    config = _config()
    figures = capacity_figures(config, run, CapacityPlan.from_config(config, config.faults))
    outage = figures.outages[0]
    assert outage.status == "run" and outage.at_s == 10 and outage.duration_s == 6
    assert outage.success_rate == pytest.approx(0.5, abs=0.1)
    assert outage.reference_success_rate == 1.0
    assert outage.recovered and outage.recovery_s == 5
    assert outage.backlog.before == 0 and outage.backlog.peak_during == 300 and outage.backlog.at_end == 0
    assert outage.backlog.drained_after_s is not None and 3 <= outage.backlog.drained_after_s <= 5


def test_recovery_is_not_claimed_when_the_last_window_still_misses(run: RunData) -> None:
    """Watched only until 3 s after the heal (the system still failing), the window is not recovered;
    a watch shorter than one rolling window cannot tell."""
    cells = RunCells(run)
    reference = cells.stretch(START_S + 2, START_S + 10)
    rule = RecoveryConfig(window_s=3)
    heal = START_S + 16.0
    assert recovery_after(cells, heal, heal + 6, reference, rule).recovered is False
    assert recovery_after(cells, heal, heal + 2, reference, rule).recovered is None
    assert recovery_after(cells, heal, heal + 20, reference, rule).recovery_s == 5


def test_report_blocks_and_metrics_of_a_capacity_result(run: RunData) -> None:
    """The report shows the step table, the capacity and knee lines, the outage block and the alerts;
    the comparison reads capacity_users and recovery_time_s from the typed figures."""
    config = _config()
    figures = capacity_figures(config, run, CapacityPlan.from_config(config, config.faults))
    result = RunResult(test_type="capacity", run_id="cap-run", target=Target(), figures=figures)
    sections = {section.key: section for section in capacity_sections(figures)}
    assert set(sections) == {"capacity", "outages", "alerts", "resources", "backlog"}
    steps = sections["capacity"]
    assert steps.table is not None and len(steps.table.rows) == 5
    text = "\n".join(line.text for line in steps.after)
    assert "at least 80 users (limited by the generator" in text and "knee: step 4" in text
    assert "redis-outage" in "\n".join(plain_table(sections["outages"].table))  # type: ignore[arg-type]
    values = values_of(result)
    assert values["capacity_users"] == 80 and values["recovery_time_s"] == 5
    assert values["outage_success_rate"] == pytest.approx(0.5, abs=0.1)
    checks = {check.name: check for check in CapacityTest().checks(config, result)}
    assert checks["success rate during redis-outage (proxy -> redis)"].met is False
    assert checks["recovery after redis-outage"].met is True


def test_a_capacity_result_file_reads_back_typed(run: RunData, tmp_path: Path) -> None:
    """The JSON document of a capacity run (computed fields included) reads back as CapacityFigures."""
    config = _config()
    figures = capacity_figures(config, run, CapacityPlan.from_config(config, config.faults))
    document = RunResult(test_type="capacity", run_id="cap-run", figures=figures).to_document()
    again = load_result(json.loads(json.dumps(document)))
    assert isinstance(again.figures, CapacityFigures) and figures_of(again) == figures


def test_the_golden_capacity_input_is_a_capacity_result_document() -> None:
    """tests/golden/comparator/inputs/capacity.json is a perfsuite.result/2 document in the capacity
    figures model: 600 users held, a Redis outage recovered in 31.5 s, the pool at 70% at its peak."""
    path = Path(__file__).resolve().parent / "golden" / "comparator" / "inputs" / "capacity.json"
    result = load_result(json.loads(path.read_text()))
    assert isinstance(result.figures, CapacityFigures)
    values = values_of(result)
    assert (values["capacity_users"], values["recovery_time_s"]) == (600, 31.5)
    assert values["capacity_pool_peak_utilization"] == pytest.approx(0.7)


def test_live_lines_of_the_locust_log_are_echoed_as_they_come(tmp_path: Path) -> None:
    """The launcher shows a locustfile's prefixed lines (alerts, steps, faults) while the run goes:
    complete lines only, each once, nothing else of Locust's log."""
    log = tmp_path / "locust.log"
    log.write_bytes(b"locust noise\n" + LIVE_PREFIX.encode() + b"ALERT warning: P95 1,234 ms\n[perf")

    class Out:
        def __init__(self) -> None:
            self.text = ""

        def write(self, text: str) -> None:
            self.text += text

        def flush(self) -> None:
            pass

    out = Out()
    echo = LogEcho(log, out)  # type: ignore[arg-type]
    assert echo.poll() == 1 and out.text == LIVE_PREFIX + "ALERT warning: P95 1,234 ms\n"
    with log.open("ab") as more:
        more.write(b"suite] step 1/3 (5 users): meets the SLOs\nmore noise\n")
    assert echo.poll() == 1 and out.text.endswith(LIVE_PREFIX + "step 1/3 (5 users): meets the SLOs\n")
    assert echo.poll() == 0
