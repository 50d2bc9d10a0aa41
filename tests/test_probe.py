"""The signature probe (``perfsuite.probe``) judged against the zoo's real bots over real HTTP."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from urllib.parse import parse_qsl

import pytest
import redis

from perfsuite.config import load_config
from perfsuite.embedded import free_port
from perfsuite.errors import ConfigError
from perfsuite.probe import (
    EXIT_INCONCLUSIVE,
    PROBE_BODY,
    Answer,
    CaseName,
    Expectation,
    ProbeReport,
    ProbeTarget,
    Verdict,
    add_arguments,
    probe_signatures,
    run,
)
from perfsuite.redact import EXCERPT_CHARS
from tests.zoo import QUEUE_KEY, ZooBot, start_bot
from tests.zoo.fixtures import ZOO_TOKEN, Zoo

BAD_CASES = (
    CaseName.WRONG_TOKEN,
    CaseName.MISSING_SIGNATURE,
    CaseName.WRONG_URL,
    CaseName.REPLAY_BROKEN_SIGNATURE,
)


def probe(bot: ZooBot, *, public_url: str = "", timeout_s: float = 5.0) -> ProbeReport:
    """Probe ``bot`` with the zoo's token."""
    return probe_signatures(ProbeTarget(bot.url, public_url=public_url, timeout_s=timeout_s), ZOO_TOKEN)


def verdicts(report: ProbeReport) -> dict[str, Verdict]:
    """Case name -> verdict."""
    return {case.name.value: case.verdict for case in report.cases}


def parse(*argv: str) -> argparse.Namespace:
    """The probe's command line, parsed as ``perfsuite probe`` will."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    "name",
    ["twiml", "rejects_401", "async_acker", "no_content_acker", "json_acker", "refuses_media", "no_health"],
)
def test_a_bot_following_twilios_scheme_is_all_as_expected(zoo: Zoo, name: str) -> None:
    """TwiML, empty-200, 204 and JSON acks all accept; 403 and 401 both refuse: every case as expected."""
    report = probe(zoo.bot(name))
    assert report.all_as_expected, report.render_lines()
    assert (report.exit_code, report.diagnosis, report.findings) == (0, None, ())
    assert [case.name for case in report.cases] == list(CaseName)
    assert [case.expected for case in report.cases] == [Expectation.ACCEPT] + [Expectation.REFUSE] * 4
    assert report.render_lines()[-1] == "all 5 cases as expected"


def test_the_replay_repeats_the_valid_message_and_the_others_are_fresh(zoo: Zoo) -> None:
    """The replay carries the valid message's MessageSid; the other cases each have their own."""
    report = probe(zoo.bot("twiml"))
    sids = [case.message_sid for case in report.cases]
    assert sids[-1] == sids[0] and len(set(sids)) == 4
    assert all(case.elapsed_ms > 0 for case in report.cases)


def test_own_scheme_bot_refuses_the_valid_message_and_the_diagnosis_names_the_causes(zoo: Zoo) -> None:
    """A bot with its own signature scheme refuses genuine Twilio traffic: exit 2, and the diagnosis
    names a token mismatch, a public_url mismatch and a non-Twilio scheme."""
    bot = zoo.bot("own_scheme")
    report = probe(bot)
    assert report.valid_refused and report.invalid_accepted == ()
    assert verdicts(report)["valid"] is Verdict.REJECTS_VALID
    assert report.case(CaseName.VALID).status == 401
    assert report.exit_code == 2
    diagnosis = report.diagnosis or ""
    assert "token mismatch (TWILIO_AUTH_TOKEN is not the bot's)" in diagnosis
    assert (
        f"public_url other than the one the bot validates against (signed for {bot.webhook_url}" in diagnosis
    )
    assert "does not follow Twilio's signature scheme" in diagnosis
    assert report.render_lines()[-1] == "diagnosis: " + diagnosis


def test_a_bot_with_another_token_refuses_the_valid_message(zoo: Zoo) -> None:
    """Token mismatch: the twiml bot with another token refuses the valid message (exit 2)."""
    report = probe(zoo.bot("twiml", token="not-the-suites-token"))
    assert report.valid_refused and report.exit_code == 2
    assert "token mismatch" in (report.diagnosis or "")


def test_a_public_url_of_the_other_scheme_is_named_precisely(zoo: Zoo) -> None:
    """A bot that sees https://... refuses signatures for http://... but accepts the probe's
    other-scheme (wrong_url) signature: the diagnosis is a public_url mismatch naming the URL;
    probing with the right --public-url is all as expected."""
    seen = "https://bot.example.com/webhook/whatsapp"
    bot = zoo.bot("twiml", public_url=seen)
    report = probe(bot, public_url="http://bot.example.com/webhook/whatsapp")
    assert report.valid_refused and report.invalid_accepted == (CaseName.WRONG_URL,)
    assert report.findings == (
        f"public_url mismatch: the bot accepts signatures made for {seen} and refuses those for "
        "http://bot.example.com/webhook/whatsapp; give the URL the bot sees as the public URL",
    )
    assert probe(bot, public_url=seen).all_as_expected


def test_replay_cache_is_flagged_for_accepting_a_replay(zoo: Zoo) -> None:
    """Only the replay with a broken signature is accepted: validation skipped for a known MessageSid."""
    report = probe(zoo.bot("replay_cache"))
    assert report.invalid_accepted == (CaseName.REPLAY_BROKEN_SIGNATURE,)
    assert verdicts(report)["replay_broken_signature"] is Verdict.ACCEPTS_INVALID
    assert report.findings == (
        "validation skipped for a known MessageSid (replay accepted with a broken signature)",
    )
    assert report.exit_code == 2


def test_a_bot_accepting_everything_is_flagged_for_not_validating(zoo: Zoo) -> None:
    """accepts_all: every bad signature accepted; the diagnosis says the bot does not validate."""
    report = probe(zoo.bot("accepts_all"))
    assert report.invalid_accepted == BAD_CASES
    assert not report.valid_refused and report.exit_code == 2
    assert report.findings == (
        "the bot does not validate X-Twilio-Signature (it accepts wrong, missing and misdirected ones)",
    )


def test_backpressure_is_inconclusive_not_a_verdict(zoo: Zoo) -> None:
    """503 everywhere: every case inconclusive, nothing wrong proven: exit 1, findings say backpressure."""
    report = probe(zoo.bot("sheds_load"))
    assert {case.answer for case in report.cases} == {Answer.BACKPRESSURE}
    assert set(verdicts(report).values()) == {Verdict.INCONCLUSIVE}
    assert report.exit_code == EXIT_INCONCLUSIVE
    assert report.findings == (
        "valid, wrong_token, missing_signature, wrong_url, replay_broken_signature could not be judged: "
        "backpressure (HTTP 503); probe again when the bot is idle",
    )


def test_a_bot_stalling_past_the_timeout_gets_no_answer_and_the_rest_is_not_sent(zoo: Zoo) -> None:
    """The valid message times out: no answer (exit 69), and the four other cases are not sent."""
    report = probe(zoo.bot("stalls", extra_args=("--stall-s", "5")), timeout_s=0.3)
    assert set(verdicts(report).values()) == {Verdict.NO_ANSWER}
    assert report.case(CaseName.VALID).error == "timed out after 0.3 s"
    assert {case.error for case in report.cases[1:]} == {"not sent: no answer to the valid message"}
    assert report.exit_code == 69
    assert report.diagnosis == f"no answer from {report.webhook_url} (timed out after 0.3 s)"


def test_body_excerpts_never_show_the_token_and_stay_short(zoo: Zoo) -> None:
    """A bot that echoes the expected signature and the auth token in its refusals: excerpts redact
    both and keep to 120 characters."""
    report = probe(zoo.bot("leaky_errors"))
    assert report.all_as_expected
    excerpt = report.case(CaseName.WRONG_TOKEN).body_excerpt
    assert excerpt == "Invalid signature. Expected <redacted> (computed with auth token <redacted>)"
    rendered = json.dumps(report.to_dict()) + "\n".join(report.render_lines()) + repr(report)
    assert ZOO_TOKEN not in rendered
    assert all(len(case.body_excerpt) <= EXCERPT_CHARS for case in report.cases)


@pytest.fixture()
def slow_queue(redis_url: str) -> Iterator[ZooBot]:
    """slow_queue on the test's private Redis, draining one message per 10 s (queued bodies stay readable)."""
    bot = start_bot("slow_queue", ZOO_TOKEN, redis_url=redis_url, extra_args=("--drain-per-s", "0.1"))
    yield bot
    bot.stop()


def test_probe_messages_say_what_they_are(slow_queue: ZooBot, redis_url: str) -> None:
    """The one message a bot accepts from the probe carries the probe's Body (it is identifiable)."""
    report = probe(slow_queue)
    assert report.all_as_expected
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        queued = client.lrange(QUEUE_KEY, 0, -1)
    finally:
        client.close()
    assert len(queued) == 1  # the first drain is 10 s away
    fields = dict(parse_qsl(str(queued[0]), keep_blank_values=True))
    assert fields["Body"] == PROBE_BODY and fields["MessageSid"] == report.case(CaseName.VALID).message_sid


def test_report_to_dict_is_json_with_every_case(zoo: Zoo) -> None:
    """to_dict() has the URLs, the probe id, the diagnosis and each case with status and verdict."""
    report = probe(zoo.bot("replay_cache"))
    document = json.loads(json.dumps(report.to_dict()))
    assert document["probe_id"] == report.probe_id and document["probe_id"].startswith("probe-")
    assert document["diagnosis"] == report.diagnosis and document["all_as_expected"] is False
    replay = document["cases"][-1]
    assert (replay["name"], replay["status"], replay["answer"]) == (
        "replay_broken_signature",
        200,
        "accepted",
    )
    assert replay["verdict"] == "accepts what Twilio's scheme rejects" and replay["expected"] == "refuse"


def test_target_from_config_uses_the_runs_public_url_and_timeout() -> None:
    """ProbeTarget.from_config takes the webhook path, public URL and request timeout of the configuration."""
    config = load_config(
        overrides={"target.public_url": "https://bot.example.com/hook", "target.webhook_path": "/hook"},
        environ={},
    )
    target = ProbeTarget.from_config(config, "http://127.0.0.1:8000")
    assert (target.webhook_url, target.public_url) == (
        "http://127.0.0.1:8000/hook",
        "https://bot.example.com/hook",
    )
    assert target.timeout_s == config.target.request_timeout_s


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"host": "ftp://bot"}, "--host"),
        ({"host": "http://:80"}, "--host"),
        ({"path": "webhook"}, "--path"),
        ({"public_url": "bot.example.com/hook"}, "--public-url"),
        ({"timeout_s": 0}, "--timeout"),
        ({"timeout_s": float("nan")}, "--timeout"),
    ],
)
def test_bad_targets_are_refused_naming_the_flag(changes: dict[str, object], named: str) -> None:
    """Each bad input raises ConfigError (exit 64) whose message names the flag."""
    arguments: dict[str, object] = {"host": "http://127.0.0.1:8000"} | changes
    with pytest.raises(ConfigError, match=named):
        ProbeTarget(**arguments)  # type: ignore[arg-type]


def test_run_exits_0_and_prints_the_report_for_a_good_bot(
    zoo: Zoo, capsys: pytest.CaptureFixture[str]
) -> None:
    """``perfsuite probe --host URL`` against a Twilio-conformant bot prints five cases and exits 0."""
    code = run(parse("--host", zoo.bot("twiml").url), {"TWILIO_AUTH_TOKEN": ZOO_TOKEN})
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and len(out) == 7 and out[-1] == "all 5 cases as expected"


def test_run_json_and_exit_2_for_a_bot_refusing_everything(
    zoo: Zoo, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--format json`` prints the report as JSON; a refused valid message exits 2."""
    args = parse("--host", zoo.bot("own_scheme").url, "--format", "json")
    assert run(args, {"TWILIO_AUTH_TOKEN": ZOO_TOKEN}) == 2
    assert (
        json.loads(capsys.readouterr().out)["cases"][0]["verdict"] == "rejects what Twilio's scheme accepts"
    )


def test_run_exits_69_when_the_host_does_not_answer(capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing listening on the port: exit 69, and the report says there was no answer."""
    code = run(parse("--host", f"http://127.0.0.1:{free_port()}"), {"TWILIO_AUTH_TOKEN": ZOO_TOKEN})
    assert code == 69
    assert "diagnosis: no answer from" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (("--host", "http://127.0.0.1:9"), {}, "TWILIO_AUTH_TOKEN: not set"),
        (("--host", "localhost:8000"), {"TWILIO_AUTH_TOKEN": "x"}, "--host: must be an http(s) URL"),
        (("--host", "http://127.0.0.1:9", "--timeout", "-1"), {"TWILIO_AUTH_TOKEN": "x"}, "--timeout"),
    ],
)
def test_run_exits_64_with_a_clear_message_on_bad_input(
    argv: tuple[str, ...], environ: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing token or a bad flag: exit 64, nothing sent, the message on standard error names it."""
    assert run(parse(*argv), environ) == 64
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err
