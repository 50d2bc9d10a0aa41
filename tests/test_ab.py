"""The interleaved A/B comparison (``perfsuite ab``): its sequential test, and whole comparisons on
real processes (two bots, a real Redis collector, real Locust), each short and bounded."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import numpy as np
import pytest

from perfsuite.embedded import start_demo_bot, start_redis
from perfsuite.stats import paired_sequence
from tests.test_cli import perfsuite
from tests.zoo.fixtures import Zoo

# ---------------------------------------------------------------- the sequential test


def test_the_paired_test_stays_quiet_on_symmetric_noise_however_often_it_looks() -> None:
    """A/A: slice differences symmetric about 0 (normal, and heavy-tailed as a busy machine makes
    them): looking after every one of 120 slices, a "slower" (or "faster") verdict comes at most at
    the promised rate, (1 - confidence) / 2 each."""
    rng = np.random.default_rng(7)
    trials = 200
    for draw in (lambda: rng.normal(0.0, 0.3, 120), lambda: rng.standard_t(2, 120) * 0.2):
        up = down = 0
        for _ in range(trials):
            looks = paired_sequence(draw().tolist(), 0.95, candidates=[0.0])
            up += looks[-1].up
            down += looks[-1].down
        assert up / trials <= 0.025 + 0.02, up
        assert down / trials <= 0.025 + 0.02, down


def test_the_paired_test_finds_a_real_difference_and_its_interval_covers_it() -> None:
    """B 30% slower (log ratio 0.26) with slice noise 0.3: found, and the interval holds the truth
    at the end (and is what remains of every earlier interval: it only narrows)."""
    rng = np.random.default_rng(11)
    found = covered = 0
    for _ in range(20):
        looks = paired_sequence(rng.normal(0.26, 0.3, 60).tolist(), 0.95)
        found += looks[-1].up
        covered += looks[-1].low <= 0.26 <= looks[-1].high
        assert all(b.low >= a.low and b.high <= a.high for a, b in itertools.pairwise(looks))
        assert not any(look.down for look in looks)
    assert found >= 18
    assert covered >= 18


def test_each_look_depends_only_on_the_slices_before_it() -> None:
    """What the test says after slice k is the same whether or not later slices exist: stopping at
    a look cannot be biased by data not yet seen."""
    values = np.random.default_rng(3).normal(0.1, 0.3, 40).tolist()
    full = paired_sequence(values, 0.95)
    assert paired_sequence(values[:17], 0.95) == full[:17]


def test_the_paired_test_refuses_a_confidence_outside_its_range() -> None:
    with pytest.raises(ValueError, match="confidence"):
        paired_sequence([0.1], 1.5)


# ---------------------------------------------------------------- the command line


def test_ab_with_only_one_host_exits_64_naming_the_missing_one() -> None:
    done = perfsuite("ab", "--host-a", "http://127.0.0.1:9", env={"TWILIO_AUTH_TOKEN": "t"})
    assert done.returncode == 64, done.stderr
    assert "--host-b" in done.stderr
    assert "Traceback" not in done.stderr


def test_ab_settings_out_of_range_exit_64_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "scenarios.yaml"
    bad.write_text("ab:\n  confidence: 1.5\n")
    done = perfsuite("ab", "--config", str(bad))
    assert done.returncode == 64
    assert "ab.confidence" in done.stderr and "1.5" in done.stderr
    done = perfsuite("ab", "--metric", "p90")
    assert done.returncode == 64 and "--metric" in done.stderr


# ---------------------------------------------------------------- whole comparisons


def _figures(result_file: Path) -> dict:
    document = json.loads(result_file.read_text())
    assert document["test_type"] == "ab"
    return document


def test_an_a_a_comparison_of_two_demo_bots_finds_b_not_slower(redis_url: str, tmp_path: Path) -> None:
    """Two embedded demo bots of the same build (no host given): B is not found slower, exit 0; both
    sides got the same stream (the same number of requests within a pair), the collector agrees
    with Locust, and the JUnit and HTML reports carry the comparison."""
    out, junit, html = tmp_path / "ab.json", tmp_path / "ab.xml", tmp_path / "ab.html"
    done = perfsuite(
        "ab",
        "--run-time",
        "12",
        "--arrival-rate",
        "200",
        "--output-file",
        str(out),
        "--junit-file",
        str(junit),
        "--html-file",
        str(html),
        env={"REDIS_URL": redis_url},
        timeout_s=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    document = _figures(out)
    figures = document["figures"]
    assert figures["verdict"] != "slower"
    a, b = figures["sides"]
    assert a["side"] == "A" and b["side"] == "B" and a["host"] != b["host"]
    assert abs(a["requests"] - b["requests"]) <= 1
    assert a["requests"] + b["requests"] >= 0.8 * 200 * 12
    assert document["collector"]["exact"] is True
    assert "A/B comparison (B against A)" in done.stdout
    assert "B not slower than A: P95" in junit.read_text()
    assert "A/B comparison" in html.read_text()
    assert "TWILIO_AUTH_TOKEN" not in out.read_text()


def test_a_slower_b_is_found_and_the_load_stops_once_it_is_clear(redis_url: str, tmp_path: Path) -> None:
    """Bot B adds 20 ms to every answer (several times A's P95), each bot with its own token: B is
    SLOWER (exit 1 or 2, the regression exit codes), found within a few seconds of load, and the
    comparison stopped the load long before its 60 s limit."""
    bot_redis = start_redis()
    bots = []
    try:
        bots.append(start_demo_bot(bot_redis.url, "token-of-a", extra_args=("--rate-limit-per-min", "0")))
        bots.append(
            start_demo_bot(
                bot_redis.url,
                "token-of-b",
                extra_args=("--rate-limit-per-min", "0", "--extra-latency-ms", "20"),
            )
        )
        out = tmp_path / "ab.json"
        started = time.monotonic()
        done = perfsuite(
            "ab",
            "--host-a",
            bots[0].url,
            "--host-b",
            bots[1].url,
            "--run-time",
            "60",
            "--arrival-rate",
            "200",
            "--output-file",
            str(out),
            env={
                "REDIS_URL": redis_url,
                "TWILIO_AUTH_TOKEN": "token-of-a",
                "TWILIO_AUTH_TOKEN_B": "token-of-b",
            },
            timeout_s=150,
        )
        elapsed = time.monotonic() - started
    finally:
        for bot in bots:
            bot.stop()
        bot_redis.stop()
    assert done.returncode in (1, 2), done.stdout[-3000:] + done.stderr[-2000:]
    figures = _figures(out)["figures"]
    assert figures["verdict"] == "slower", figures["reason"]
    p95 = next(row for row in figures["metrics"] if row["metric"] == "p95")
    assert p95["low"] > 0  # B's P95 above A's, established
    assert figures["stopped_early"] is True and figures["decided_at_s"] < 40
    assert [side["answered"] == side["requests"] > 0 for side in figures["sides"]] == [True, True]
    assert elapsed < 60, elapsed
    assert "B is SLOWER" in done.stdout
    shown = done.stdout + done.stderr + out.read_text()
    assert "token-of-a" not in shown and "token-of-b" not in shown


def test_third_party_bots_that_ack_differently_are_compared_on_latency_alone(
    zoo: Zoo, redis_url: str, tmp_path: Path
) -> None:
    """A acks with an empty 200, B with 204 No Content, each validating its own token: both answer
    as intended, and neither is judged slower for its status code."""
    a = zoo.bot("async_acker", "zoo-token-a")
    b = zoo.bot("no_content_acker", "zoo-token-b")
    out = tmp_path / "ab.json"
    done = perfsuite(
        "ab",
        "--host-a",
        a.url,
        "--host-b",
        b.url,
        "--run-time",
        "8",
        "--arrival-rate",
        "150",
        "--output-file",
        str(out),
        env={
            "REDIS_URL": redis_url,
            "TWILIO_AUTH_TOKEN": "zoo-token-a",
            "TWILIO_AUTH_TOKEN_B": "zoo-token-b",
        },
        timeout_s=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    figures = _figures(out)["figures"]
    assert figures["verdict"] != "slower"
    assert [side["answered"] == side["requests"] > 0 for side in figures["sides"]] == [True, True]
