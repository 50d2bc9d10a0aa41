"""Embedded defaults: with no Redis anywhere the suite starts its own and keeps run history."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import redis

from perfsuite.config import load_config
from perfsuite.embedded import free_port, wait_for_http
from perfsuite.services import collector_redis, ping_redis, resolve_target


def test_no_redis_anywhere_starts_a_private_one_that_keeps_history(tmp_path: Path) -> None:
    """Nothing configured and nothing at the default address: a private redis-server starts on a
    free port with its data under the state directory, stops with the run, and what was written
    is there again the next time."""
    config = load_config(environ={})
    dead_default = f"redis://127.0.0.1:{free_port()}/0"
    with contextlib.ExitStack() as stack:
        url = collector_redis(config, stack, Path(os.path.relpath(tmp_path)), default_url=dead_default)
        assert url != dead_default and ping_redis(url)
        redis.Redis.from_url(url).set("perfsuite:probe", "kept")
    assert not ping_redis(url, timeout_s=0.3)  # stopped with the run
    with contextlib.ExitStack() as stack:
        again = collector_redis(config, stack, Path(os.path.relpath(tmp_path)), default_url=dead_default)
        assert redis.Redis.from_url(again).get("perfsuite:probe") == b"kept"
    assert (tmp_path / "redis").is_dir()


def test_a_redis_at_the_default_address_is_used_as_is(redis_url: str, tmp_path: Path) -> None:
    """When a Redis answers at the default address, nothing is started."""
    config = load_config(environ={})
    with contextlib.ExitStack() as stack:
        assert collector_redis(config, stack, tmp_path, default_url=redis_url) == redis_url
    assert not (tmp_path / "redis").exists()


def test_embedded_demo_bot_gets_a_fresh_token_that_never_shows(tmp_path: Path) -> None:
    """No host given: the demo bot starts with a random token of its own and stops afterwards;
    the target's repr does not show the token."""
    config = load_config(environ={})
    with contextlib.ExitStack() as stack:
        target = resolve_target(config, stack, None, tmp_path)
        assert target.embedded and len(target.auth_token) >= 32
        assert target.auth_token not in repr(target)
        assert target.health_url == target.host + "/health"
    assert target.health_url is not None
    assert not wait_for_http(target.health_url, timeout_s=0.3)  # stopped with the run
