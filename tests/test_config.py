"""scenarios.yaml loading: defaults from the seed, overlays, overrides, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfsuite.config import DEFAULT_CONFIG_PATH, load_config, parse_duration, redact_url
from perfsuite.errors import EXIT_USAGE, ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenarios.yaml"
    path.write_text(text)
    return path


def test_seed_defaults_are_the_shipped_configuration() -> None:
    """The repository's scenarios.yaml carries the seed's LoadTestConfig defaults."""
    config = load_config(environ={})
    webhook = config.webhook
    assert (webhook.concurrent_users, webhook.requests_per_user, webhook.ramp_up_time) == (50, 20, 10)
    assert webhook.enable_burst_testing and webhook.burst_intensity == 100
    assert (webhook.target_response_time_ms, webhook.max_response_time_ms) == (500, 2000)
    assert webhook.success_threshold == 0.99
    assert config.source == str(DEFAULT_CONFIG_PATH)


def test_scenario_overlay_and_overrides_merge_in_order() -> None:
    """A scenario overlays the defaults; command-line overrides win over both."""
    config = load_config(scenario="smoke", overrides={"webhook.requests_per_user": 3}, environ={})
    assert config.webhook.concurrent_users == 5
    assert config.webhook.requests_per_user == 3
    assert config.webhook.target_response_time_ms == 500  # untouched defaults stay
    assert config.scenario == "smoke"


def test_config_is_frozen() -> None:
    """Nobody can change the configuration after it was validated."""
    config = load_config(environ={})
    with pytest.raises(Exception, match="frozen"):
        config.webhook.concurrent_users = 1  # type: ignore[misc]


def test_negative_user_count_names_the_key() -> None:
    """A bad value fails at load with its key path, the value and what is allowed (exit 64)."""
    with pytest.raises(ConfigError) as caught:
        load_config(overrides={"webhook.concurrent_users": -5}, environ={})
    assert "webhook.concurrent_users" in str(caught.value)
    assert "-5" in str(caught.value)
    assert caught.value.exit_code == EXIT_USAGE


def test_unknown_key_and_broken_yaml_are_named(tmp_path: Path) -> None:
    """A misspelt key is named with its path; malformed YAML names the line."""
    with pytest.raises(ConfigError, match=r"webhook\.concurent_users: unknown key"):
        load_config(_write(tmp_path, "webhook:\n  concurent_users: 5\n"), environ={})
    with pytest.raises(ConfigError, match=r"line \d+ column \d+: not valid YAML"):
        load_config(_write(tmp_path, "webhook:\n  concurrent_users: [5\n"), environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml", environ={})


def test_message_mix_rejects_unknown_kinds(tmp_path: Path) -> None:
    """The mix may only name message kinds the generator knows."""
    with pytest.raises(ConfigError, match=r"traffic\.message_mix: unknown message kind\(s\) \['video'\]"):
        load_config(_write(tmp_path, "traffic:\n  message_mix: {text: 1, video: 2}\n"), environ={})


def test_unknown_scenario_lists_the_defined_ones() -> None:
    """Asking for a scenario that does not exist says which ones do."""
    with pytest.raises(ConfigError, match=r"scenario 'nope' is not defined.*smoke"):
        load_config(scenario="nope", environ={})


def test_target_bounds_are_consistent(tmp_path: Path) -> None:
    """The target response time cannot exceed the maximum."""
    with pytest.raises(ConfigError, match="must not exceed"):
        load_config(_write(tmp_path, "webhook:\n  target_response_time_ms: 3000\n"), environ={})


def test_secrets_come_from_the_environment_only(tmp_path: Path) -> None:
    """Secrets in the file are refused; from the environment they never show in snapshots or repr."""
    with pytest.raises(ConfigError, match="secrets are never read from the file"):
        load_config(_write(tmp_path, "secrets:\n  twilio_auth_token: abc\n"), environ={})
    env = {"TWILIO_AUTH_TOKEN": "tok-s3cret", "REDIS_URL": "redis://:pa55word@127.0.0.1:6390/0"}
    config = load_config(environ=env)
    assert config.auth_token == "tok-s3cret"
    assert config.collector_redis_url == env["REDIS_URL"]
    shown = config.snapshot_json() + repr(config) + str(config.process_env())
    assert "tok-s3cret" not in shown and "pa55word" not in shown
    assert "redis://:***@127.0.0.1:6390/0" in config.snapshot_json()


def test_bad_redis_url_in_environment_is_named() -> None:
    """REDIS_URL that is not a Redis URL is rejected by name, without echoing a password."""
    with pytest.raises(ConfigError, match="REDIS_URL") as caught:
        load_config(environ={"REDIS_URL": "http://user:hunter2@example"})
    assert "hunter2" not in str(caught.value)


def test_redact_url_keeps_everything_but_the_password() -> None:
    """Only the password is hidden."""
    assert redact_url("redis://user:pw@h:1/2") == "redis://user:***@h:1/2"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("2.5s", 2.5),
        ("1h", 3600.0),
        ("1m30s", 90.0),
    ],
)
def test_run_time_takes_locust_forms(text: str, seconds: float) -> None:
    """--run-time reads durations the way Locust users type them."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m", "-3", "0s", "1h-5m"])
def test_a_bad_run_time_is_named(text: str) -> None:
    """A duration that is not one names the flag and shows the forms allowed."""
    with pytest.raises(ConfigError) as error:
        parse_duration(text)
    assert "--run-time" in str(error.value)
