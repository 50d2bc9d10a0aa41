"""Real capacity runs end to end (slow: real Locust, the demo bot, the fault proxy, a few seconds per
step): the embedded demo bot behind the fault proxy with a real Redis outage, the legacy bot failing
the same outage, a PostgreSQL outage with the bot on DEMO_BOT_DB_URL, --abort-on, the open model."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from capacity.figures import CapacityFigures
from capacity.job import CapacityTest, figures_of
from perfsuite.collector import CollectorReader
from perfsuite.config import SuiteConfig, load_config
from perfsuite.jobs import RunOptions, run_job
from perfsuite.report import render
from perfsuite.result import RunResult

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
TINY: dict[str, Any] = {
    "capacity.load_ramp_steps": [4, 12],
    "capacity.step_duration": 4,
    "capacity.think_time_s": [0.2, 0.3],
    "capacity.recovery": {"window_s": 2, "warmup_s": 1, "observe_s": 5},
    "capacity.alerts.window_s": 3,
    "capacity.backlog_drain_timeout_s": 3,
    "faults": [{"name": "redis-outage", "at_s": 3, "duration_s": 4, "driver": "proxy", "target": "redis"}],
}


def _config(**overrides: Any) -> SuiteConfig:
    return load_config(None, "smoke", {**TINY, **overrides})


def _run(config: SuiteConfig, redis_url: str, state_dir: Path, workers: int = 0) -> RunResult:
    return run_job(CapacityTest(), config, RunOptions(state_dir=state_dir, workers=workers), redis_url)


@pytest.fixture(scope="module")
def optimized(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunResult, str]]:
    """One capacity run on the optimized demo bot (an alert forced by a 1 ms P95 warning limit), and
    what the launcher echoed live."""
    import contextlib
    import io

    out = io.StringIO()
    config = _config(**{"capacity.alerts.p95_warning_ms": 1})
    with contextlib.redirect_stdout(out):
        result = _run(config, redis_server.url, tmp_path_factory.mktemp("optimized"))
    yield result, out.getvalue()


@pytest.mark.slow
@pytest.mark.xdist_group("capacity-optimized")  # one run of the module's fixture
def test_a_capacity_run_breaks_the_bots_redis_for_real_and_measures_it(
    optimized: tuple[RunResult, str], redis_server: Any
) -> None:
    """On the optimized demo bot behind the embedded fault proxy: the per-step table, the capacity and
    knee lines, the Redis outage (the bot's health said degraded; it kept answering) with its success
    during and recovery time, the alert recorded and shown live, and the resources sampled."""
    result, live = optimized
    figures = figures_of(result)
    assert [step.load for step in figures.steps] == [4, 12]
    assert all(step.requests > 0 and step.p95_ms is not None for step in figures.steps)
    assert figures.capacity.measured and figures.capacity.value in (0, 4, 12)
    outage = next(o for o in figures.outages if o.name == "redis-outage")
    assert outage.status == "run" and outage.requests > 0
    assert any("degraded" in said or "open" in said for said in outage.bot_said), outage.bot_said
    assert outage.success_rate is not None and outage.success_rate >= 0.9  # it degrades, it keeps acking
    assert outage.recovered is not None and outage.observed_s and outage.observed_s >= 4
    assert figures.alerts and figures.alerts[0].alert == "p95" and figures.alerts[0].severity == "warning"
    assert (
        figures.resources.bot_cpu_max_percent is not None
        and figures.resources.machine_cpu_max_percent is not None
    )
    assert figures.resources.generator_processes == 1
    text = render(result)
    for piece in (
        "capacity steps",
        "capacity:",
        "knee:",
        "outages",
        "redis-outage",
        "alerts (4.3",
        "resources per step",
    ):
        assert piece in text, piece
    assert "[perfsuite] fault redis-outage injected" in live and "[perfsuite] ALERT warning" in live
    assert "[perfsuite] step 2/2" in live
    marks = CollectorReader(redis_server.url).load(result.run_id).marks()
    assert {"fault_start", "fault_end", "alert", "resources", "stage"} <= set(marks["kind"])
    assert result.collector is not None and result.collector.exact


@pytest.mark.slow
@pytest.mark.xdist_group("capacity-optimized")  # one run of the module's fixture
def test_the_legacy_bot_fails_the_outage_the_optimized_one_degrades_through(
    optimized: tuple[RunResult, str], redis_server: Any, tmp_path: Path
) -> None:
    """The same profile against the legacy demo bot (no breaker, no degradation): while its Redis is
    away it answers 500, so its success during the outage is far lower and the run grades POOR.
    (Its lower capacity shows on longer progressions; see the report to the lead.)"""
    legacy = _run(_config(**{"target.demo_bot_mode": "legacy"}), redis_server.url, tmp_path)
    worse, better = figures_of(legacy), figures_of(optimized[0])
    worse_outage = next(o for o in worse.outages if o.status == "run")
    better_outage = next(o for o in better.outages if o.status == "run")
    assert worse_outage.success_rate is not None and better_outage.success_rate is not None
    assert worse_outage.success_rate < 0.5 < better_outage.success_rate
    assert (
        worse.capacity.value <= better.capacity.value
        or worse_outage.success_rate < better_outage.success_rate
    )
    assert legacy.grade.value == "POOR"
    assert any("does not degrade gracefully" in line for line in legacy.diagnosis)


def _postgres_answers() -> bool:
    try:
        import psycopg2

        psycopg2.connect(PG_URL, connect_timeout=2).close()
    except Exception:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _postgres_answers(), reason=f"PostgreSQL does not answer at {PG_URL}")
def test_a_postgresql_outage_through_the_proxy_with_the_bot_on_db_url(
    redis_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With DEMO_BOT_DB_URL, the embedded bot stores in PostgreSQL through the fault proxy; a database
    window takes PostgreSQL away for real: the bot keeps acking (success during it) while its queue
    grows, and the queue drains after the heal. (Its own schema in the shared database, dropped after.)"""
    import psycopg2

    schema = f"perfsuite_capacity_{secrets.token_hex(4)}"
    admin = psycopg2.connect(PG_URL, connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {schema}")
    monkeypatch.setenv("DEMO_BOT_DB_URL", f"{PG_URL}?options=-csearch_path%3D{schema}")
    window = {"name": "db-outage", "at_s": 3, "duration_s": 4, "driver": "proxy", "target": "database"}
    try:
        result = _run(_config(faults=[window]), redis_server.url, tmp_path)
        with admin.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {schema}.demo_bot_results")
            stored = cursor.fetchone()[0]
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()
    figures: CapacityFigures = figures_of(result)
    outage = next(o for o in figures.outages if o.name == "db-outage")
    assert outage.status == "run" and outage.target == "database"
    assert outage.success_rate is not None and outage.success_rate >= 0.9
    assert outage.backlog.peak_during is not None and outage.backlog.peak_during > (
        outage.backlog.before or 0
    )
    assert any("degraded" in said for said in outage.bot_said), outage.bot_said
    assert stored > 0  # the bot really stored in PostgreSQL


@pytest.mark.slow
def test_abort_on_critical_stops_the_run_at_the_first_critical_alert(
    redis_server: Any, tmp_path: Path
) -> None:
    """--abort-on critical (capacity.abort_on) ends the run like k6's abortOnFail: the progression stops,
    the alert is recorded as the one that aborted it, and a critical check fails."""
    config = _config(
        faults=[],
        **{
            "capacity.abort_on": "critical",
            "capacity.alerts.p95_warning_ms": 0.01,
            "capacity.alerts.p95_critical_ms": 0.01,
            "capacity.load_ramp_steps": [4, 8, 12],
            "capacity.step_duration": 6,
        },
    )
    result = _run(config, redis_server.url, tmp_path)
    figures = figures_of(result)
    assert figures.aborted_by is not None and "critical" in figures.aborted_by
    assert any(alert.aborted for alert in figures.alerts)
    assert figures.stopped_early is not None and "aborted" in figures.stopped_early
    assert len(figures.steps) < 3
    check = next(c for c in result.checks if "stopped the run" in c.name)
    assert not check.met and check.critical


@pytest.mark.slow
def test_the_open_model_steps_arrival_rates_whatever_the_bot_does(redis_server: Any, tmp_path: Path) -> None:
    """capacity.rate_steps_per_s, with a master and two workers: the workers share each step's arrival
    rate (an open model: requests start at their intended times); the steps and the capacity are in
    arrivals per second; the master samples the bot and the machine, each worker itself."""
    config = _config(faults=[], **{"capacity.rate_steps_per_s": [10, 30], "capacity.step_duration": 4})
    result = _run(config, redis_server.url, tmp_path, workers=2)
    figures = figures_of(result)
    assert figures.model == "open" and figures.unit == "req/s"
    assert [step.load for step in figures.steps] == [10, 30]
    # Each step ends where the plan says (the shape ticks once a second): the last one too, not
    # after the grace that lets late arrivals out, which would dilute its throughput.
    assert all(step.duration_s <= 4 + 1.5 for step in figures.steps), [s.duration_s for s in figures.steps]
    rates = [step.throughput_rps for step in figures.steps]
    assert 5 <= rates[0] <= 15 and 18 <= rates[1] <= 40, rates
    assert figures.capacity.unit == "req/s" and figures.capacity.value in (0, 10, 30)
    assert (
        figures.resources.bot_cpu_max_percent is not None
        and figures.resources.machine_cpu_max_percent is not None
    )
    assert len(figures.generators) == 2 and all(g.process.startswith("worker") for g in figures.generators)
