"""The webhook test's verdicts on bots nobody here wrote: each zoo bot gets the grade, exit code,
key checks and first diagnosis line a user of such a bot must see (issue 9's table).

Every run is a real ``perfsuite`` webhook job (Locust process, collector, probe, backlog watch)
against a real zoo bot, with a short profile and a fifth of the messages signed wrongly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from perfsuite import registry
from perfsuite.config import load_config
from perfsuite.jobs import RunOptions, run_job
from perfsuite.result import RunResult
from tests.zoo import QUEUE_KEY, start_bot
from tests.zoo.fixtures import ZOO_TOKEN, Zoo
from webhook_load.job import figures_of

PROFILE = {
    "webhook.concurrent_users": 5,
    "webhook.requests_per_user": 12,
    "webhook.ramp_up_time": 0.5,
    "webhook.burst_intensity": 10,
    "webhook.think_time_s": [0.01, 0.05],
    "webhook.backlog_drain_timeout_s": 2,
    "traffic.invalid_signature_rate": 0.2,
    "webhook.target_response_time_ms": 5000.0,
    "webhook.max_response_time_ms": 10000.0,
}
"""70 messages, 14 or so with a bad signature, a few seconds per bot; latency limits far above any
bot here (a loaded test machine must not turn a verdict on signatures into one on latency)."""


QUEUE_LIST = {"key": QUEUE_KEY, "type": "list"}
SLOW_DRAIN = ("--drain-per-s", "5")


def _the_async_acker_succeeds_with_one_conformance_finding(result: RunResult) -> None:
    """An empty-200 acker: every valid message delivered (success >= 99%), one conformance finding
    naming Twilio's error 12300."""
    assert (result.summary.success_rate or 0) >= 0.99
    findings = figures_of(result).conformance.findings
    assert findings and all("12300" in finding.finding for finding in findings)
    assert {finding.finding for finding in findings} == {
        "Twilio error 12300 (Invalid Content-Type): answered text/plain, empty body"
    }


def _the_probe_says_which_case_a_bot_refusing_every_valid_signature_fails(result: RunResult) -> None:
    """Its own signature scheme: the diagnosis names token, public_url and scheme, and the probe (run
    before the load) shows the valid message refused."""
    first = result.diagnosis[0]
    for words in ("TWILIO_AUTH_TOKEN", "target.public_url", "signature scheme"):
        assert words in first
    probe = figures_of(result).probe
    assert probe is not None and not probe.all_as_expected
    assert [case.verdict for case in probe.cases if case.name == "valid"] == [
        "rejects what Twilio's scheme accepts"
    ]


def _a_refusal_keeps_the_bot_s_own_words(result: RunResult) -> None:
    """A bot refusing a media type: the failure reason holds its words, not only the status."""
    reasons = [reason.reason for reason in result.failure_reasons]
    assert any('HTTP 400: "Unsupported media type: image/webp"' in reason for reason in reasons), reasons


def _a_hidden_queue_is_seen_with_its_drain_estimate(result: RunResult) -> None:
    """A bot that acks at once and works through a Redis list slowly, pointed at the list: the report
    shows the backlog at stop, that it did not drain, its drain rate and the time it still needs."""
    seen = figures_of(result).backlog
    assert seen.supported and (seen.depth_at_stop or 0) > 10 and seen.drained is False
    assert seen.drain_rate_per_s is not None and 1 <= seen.drain_rate_per_s <= 20
    assert seen.estimated_drain_s is not None and seen.estimated_drain_s > 0


def _a_hidden_queue_without_a_source_is_unknown(result: RunResult) -> None:
    """The same bot without a backlog source: "unknown" (a warning), never silently dropped."""
    unknown = figures_of(result).backlog
    assert not unknown.supported and unknown.reason and "backlog unknown" in unknown.reason


@dataclass(frozen=True)
class Case:
    """A zoo bot and what a user must see when perfsuite tests it."""

    bot: str
    grade: str
    exit_code: int
    met: tuple[str, ...] = ()
    """Checks that must be met (name prefixes)."""
    missed: tuple[str, ...] = ()
    """Checks that must be missed (name prefixes)."""
    diagnosis: str | None = None
    """Words the first diagnosis line holds (None: no diagnosis at all)."""
    warning: str | None = None
    """Words one warning holds."""
    token: str = ZOO_TOKEN
    extra: dict[str, object] = field(default_factory=dict)
    bot_args: tuple[str, ...] = ()
    queue: bool = False
    """Run against the zoo's ``slow_queue`` bot with its own Redis (its own db of the test Redis)."""
    also: Callable[[RunResult], None] | None = None
    """More that the user relies on in this bot's result (asserted in the same test: one run each)."""

    @property
    def name(self) -> str:
        """The table's name of the case."""
        name = self.bot + (" (token mismatch)" if self.token != ZOO_TOKEN else "")
        return name + (" (no backlog source)" if self.queue and "target.backlog" not in self.extra else "")


CASES = (
    Case("twiml", "EXCELLENT", 0, met=("webhook success rate", "invalid signatures refused (401 or 403)")),
    Case(
        "async_acker",
        "GOOD",
        0,
        met=("webhook success rate",),
        missed=("answers Twilio parses as TwiML",),
        warning="Twilio error 12300",
        also=_the_async_acker_succeeds_with_one_conformance_finding,
    ),
    Case("no_content_acker", "GOOD", 0, met=("webhook success rate",), warning="Twilio error 12300"),
    Case("json_acker", "GOOD", 0, met=("webhook success rate",), warning="answered application/json"),
    Case("rejects_401", "EXCELLENT", 0, met=("invalid signatures refused (401 or 403)",)),
    Case(
        "own_scheme",
        "POOR",
        2,
        missed=("webhook success rate",),
        diagnosis="TWILIO_AUTH_TOKEN is not the bot's auth token",
        also=_the_probe_says_which_case_a_bot_refusing_every_valid_signature_fails,
    ),
    Case(
        "twiml",
        "POOR",
        2,
        missed=("webhook success rate",),
        diagnosis="validly signed messages (HTTP 403)",
        token="a-token-the-bot-does-not-have",
    ),
    Case(
        "accepts_all",
        "POOR",
        2,
        missed=("invalid signatures refused",),
        diagnosis="accepted",
    ),
    Case("replay_cache", "EXCELLENT", 0, warning="replay", diagnosis="replay"),
    Case("no_health", "EXCELLENT", 0, warning="backlog unknown"),
    Case("sheds_load", "POOR", 2, missed=("webhook success rate",), diagnosis="shed"),
    Case(
        "refuses_media",
        "FAIR",
        1,
        missed=("webhook success rate",),
        extra={"traffic.message_mix": {"image": 1}},
        also=_a_refusal_keeps_the_bot_s_own_words,
    ),
    Case(
        "slow_queue",
        "GOOD",
        0,
        missed=("queue backlog drained after the load",),
        diagnosis="still queued",
        extra={
            "target.backlog": {
                "redis": {"url_env": "BOT_REDIS_URL", "keys": [{"key": QUEUE_KEY, "type": "list"}]}
            }
        },
        bot_args=SLOW_DRAIN,
        queue=True,
        also=_a_hidden_queue_is_seen_with_its_drain_estimate,
    ),
    Case(
        "slow_queue",
        "EXCELLENT",
        0,
        warning="backlog unknown",
        bot_args=SLOW_DRAIN,
        queue=True,
        also=_a_hidden_queue_without_a_source_is_unknown,
    ),
)


def run_case(case: Case, zoo: Zoo, redis_url: str, state: Path) -> RunResult:
    """One real webhook job against the case's bot (a queueing bot gets its own Redis database, the
    test's, flushed, so its queue starts empty)."""
    queue_bot = None
    bot_redis = redis_url.rsplit("/", 1)[0] + "/1"
    if case.queue:
        redis.Redis.from_url(bot_redis).flushdb()
        queue_bot = start_bot(case.bot, case.token, redis_url=bot_redis, extra_args=case.bot_args)
    bot = queue_bot or zoo.bot(case.bot, token=case.token, extra_args=case.bot_args)
    config = load_config(
        overrides={**PROFILE, "collector.spill_dir": str(state / "spill"), **case.extra},
        environ={"TWILIO_AUTH_TOKEN": ZOO_TOKEN, "REDIS_URL": redis_url},
    )
    options = RunOptions(host=bot.url, state_dir=state)
    os.environ["BOT_REDIS_URL"] = bot_redis
    try:
        return run_job(registry.get("webhook"), config, options, redis_url)
    finally:
        os.environ.pop("BOT_REDIS_URL", None)
        if queue_bot is not None:
            queue_bot.stop()


def verdict_row(case: Case, result: RunResult) -> str:
    """What a zoo bot got, as a row of issue 9's Markdown table: grade, exit code, the checks missed,
    the first line of the diagnosis (else the first warning)."""
    rate = "-" if result.summary.success_rate is None else f"{result.summary.success_rate:.1%}"
    missed = "; ".join(check.name for check in result.checks if not check.met) or "-"
    first = (result.diagnosis or result.warnings or ("-",))[0].replace("|", "/")[:160]
    return f"| {case.name} | {result.grade.value} | {result.exit_code} | {rate} | {missed} | {first} |"


def _checks(result: RunResult, prefix: str) -> list[bool]:
    return [check.met for check in result.checks if check.name.startswith(prefix)]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[f"{c.bot}-{c.grade}" for c in CASES])
def test_a_third_party_bot_gets_the_verdict_a_user_can_trust(
    case: Case, zoo: Zoo, redis_url: str, tmp_path: Path
) -> None:
    """Grade, exit code, key checks and the first diagnosis line for each zoo bot (and what else its
    case names), from one real run; ``pytest -s`` prints the table row."""
    result = run_case(case, zoo, redis_url, tmp_path)
    print("\n" + verdict_row(case, result))
    report = f"{result.grade} {[(c.name, c.met) for c in result.checks]} {result.diagnosis} {result.warnings}"
    assert result.collector is not None and result.collector.exact, report
    assert (result.grade.value, result.exit_code) == (case.grade, case.exit_code), report
    for prefix in case.met:
        assert _checks(result, prefix) == [True], (prefix, report)
    for prefix in case.missed:
        assert _checks(result, prefix) == [False], (prefix, report)
    if case.diagnosis is None:
        assert result.diagnosis == (), report
    else:
        assert result.diagnosis and case.diagnosis in result.diagnosis[0], report
    if case.warning is not None:
        assert any(case.warning in warning for warning in result.warnings), report
    if case.also is not None:
        case.also(result)
