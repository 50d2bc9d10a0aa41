"""The capacity verdict against bots nobody here wrote (the zoo): a bot that refuses every validly
signed message (its own signature scheme) or sheds every request holds no step, however fast it
answers; a bot that acks with an empty 200 holds its steps (a 2xx is a delivered webhook); a bot whose
Redis is paused is judged by what it answered during the outage. Short real runs: a few seconds per
step; fault windows only through drivers that need no proxy of ours in front of the bot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from capacity.faults import REDIS_URL_ENV
from capacity.job import CapacityTest, figures_of
from perfsuite.config import load_config
from perfsuite.embedded import start_redis
from perfsuite.jobs import RunOptions, run_job
from perfsuite.result import RunResult
from tests.zoo import start_bot
from tests.zoo.fixtures import ZOO_TOKEN, Zoo

SHORT: dict[str, Any] = {
    "capacity.load_ramp_steps": [3, 6],
    "capacity.step_duration": 3,
    "capacity.think_time_s": [0.1, 0.2],
    "capacity.backlog_drain_timeout_s": 1,
    "faults": [],
}


def run_on(bot_name: str, zoo: Zoo, redis_url: str, state_dir: Path) -> RunResult:
    """One short capacity run against the zoo bot ``bot_name``."""
    config = load_config(
        None, "smoke", SHORT, environ={"TWILIO_AUTH_TOKEN": ZOO_TOKEN, "REDIS_URL": redis_url}
    )
    return run_job(
        CapacityTest(), config, RunOptions(host=zoo.bot(bot_name).url, state_dir=state_dir), redis_url
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["own_scheme", "sheds_load"])
def test_a_bot_that_refuses_or_sheds_everything_holds_no_step(
    zoo: Zoo, redis_url: str, tmp_path: Path, name: str
) -> None:
    """Fast answers are not capacity: no step held, capacity 0 (not "at least N"), graded POOR, and
    the diagnosis says the bot could not hold even the first step."""
    result = run_on(name, zoo, redis_url, tmp_path)
    figures = figures_of(result)
    report = f"{result.grade} {[(c.name, c.met) for c in result.checks]} {result.diagnosis}"
    assert [step.load for step in figures.steps][:1] == [3], report
    assert all(step.requests > 0 and not step.meets_slo for step in figures.steps), report
    assert figures.capacity.measured and figures.capacity.step is None, report
    assert (result.grade.value, result.exit_code) == ("POOR", 2), report
    assert result.diagnosis and "first step" in result.diagnosis[0], report


@pytest.mark.slow
def test_an_empty_200_acker_holds_its_steps(zoo: Zoo, redis_url: str, tmp_path: Path) -> None:
    """An async acker (200, empty text/plain) delivers every message: both steps held, success 100%."""
    result = run_on("async_acker", zoo, redis_url, tmp_path)
    figures = figures_of(result)
    report = f"{result.grade} {[(c.name, c.met) for c in result.checks]} {result.diagnosis}"
    assert [step.load for step in figures.steps] == [3, 6], report
    assert all(step.meets_slo and step.success_rate == 1.0 for step in figures.steps), report
    assert figures.capacity.step == 2 and figures.capacity.value == 6, report
    assert result.exit_code == 0, report


@pytest.mark.slow
def test_a_third_party_bot_losing_its_redis_is_judged_by_what_it_answered(
    tmp_path: Path, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bot of its own making (the zoo's slow_queue: LPUSH per message, 500 when Redis fails) whose
    Redis is paused (CLIENT PAUSE, the redis_pause driver, no proxy of ours): the outage ran, success
    during it is what the bot answered (its 500s and timeouts, far under 90%: POOR), the bot's own
    words are kept, and recovery after the heal is measured."""
    bot_redis = start_redis()
    bot = start_bot("slow_queue", ZOO_TOKEN, redis_url=bot_redis.url, extra_args=("--drain-per-s", "50"))
    try:
        monkeypatch.setenv(REDIS_URL_ENV, bot_redis.url)
        overrides = {
            **SHORT,
            "capacity.load_ramp_steps": [3],
            "capacity.recovery": {"window_s": 2, "warmup_s": 1, "observe_s": 6},
            "faults": [{"name": "bot-redis-paused", "at_s": 3, "duration_s": 4, "driver": "redis_pause",
                        "target": "redis"}],
        }  # fmt: skip
        config = load_config(
            None, "smoke", overrides, environ={"TWILIO_AUTH_TOKEN": ZOO_TOKEN, "REDIS_URL": redis_server.url}
        )
        result = run_job(
            CapacityTest(), config, RunOptions(host=bot.url, state_dir=tmp_path), redis_server.url
        )
    finally:
        bot.stop()
        bot_redis.stop()
    figures = figures_of(result)
    report = f"{result.grade} {[(c.name, c.met) for c in result.checks]} {result.diagnosis} {figures.outages}"
    outage = next(o for o in figures.outages if o.name == "bot-redis-paused")
    assert outage.status == "run" and outage.requests > 0, report
    assert outage.success_rate is not None and outage.success_rate < 0.5, report
    assert (result.grade.value, result.exit_code) == ("POOR", 2), report
    assert any("bot-redis-paused" in line for line in result.diagnosis), report
    assert outage.recovered is not None, report
