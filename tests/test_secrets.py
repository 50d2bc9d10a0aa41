"""Secrets (Twilio auth token, Redis password) never reach output, logs, results or stored runs."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from perfsuite.embedded import start_demo_bot, start_redis

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_token_and_redis_password_appear_nowhere(tmp_path: Path) -> None:
    """A run against a bot with a known token and a password-protected collector Redis: neither
    secret shows in stdout, stderr, the JSON result, Locust's log and stats files, or anything
    stored in Redis for the run."""
    token = "tok" + secrets.token_hex(16)
    password = "pw" + secrets.token_hex(12)
    collector = start_redis(extra_args=("--requirepass", password))
    bot_redis = start_redis()
    bot = start_demo_bot(bot_redis.url, token)
    redis_url = collector.url.replace("redis://", f"redis://:{password}@")
    out = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TWILIO_AUTH_TOKEN")}
    env.update(REDIS_URL=redis_url, TWILIO_AUTH_TOKEN=token)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "perfsuite",
                "run",
                "--test-type",
                "webhook",
                "--scenario",
                "smoke",
                "--host",
                bot.url,
                "--output-file",
                str(out),
                "--verbose",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        document = json.loads(out.read_text())
        stored = redis.Redis.from_url(redis_url)
        blobs = [
            str(stored.hgetall(key)) for key in stored.scan_iter(f"perfsuite:run:{document['run_id']}:meta")
        ]
        logs = [
            path.read_text(errors="replace")
            for path in (tmp_path / ".perfsuite").rglob("*")
            if path.is_file()
        ]
    finally:
        bot.stop()
        bot_redis.stop()
        collector.stop()
    assert document["collector"]["exact"] and document["summary"]["requests"] == 35
    assert blobs, "the run's metadata was not stored"
    assert logs, "no log or stats file was written under .perfsuite"
    for text in (done.stdout, done.stderr, out.read_text(), *blobs, *logs):
        assert token not in text
        assert password not in text
