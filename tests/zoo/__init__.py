"""A zoo of small third-party-style WhatsApp webhook bots that perfsuite's verdicts are tested against.

Each bot has ONE behaviour (see :data:`BOT_NAMES` and ``python -m tests.zoo --help``) and runs as
its own real process: ``python -m tests.zoo <bot> --port N`` with the token in TWILIO_AUTH_TOKEN.
:func:`start_bot` starts one on a free loopback port and returns once it answers. A "token
mismatch" bot is any bot started with another token than the one the suite signs with.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from perfsuite.embedded import ManagedProcess, free_port, wait_for_http
from perfsuite.errors import ConfigError, ServiceUnavailable
from tests.zoo.bots import BOTS, QUEUE_KEY, TWIML_ACK
from tests.zoo.server import DEFAULT_PATH, HEALTH_PATH

BOT_NAMES: tuple[str, ...] = tuple(BOTS)
"""Every bot of the zoo, by the name ``python -m tests.zoo`` and :func:`start_bot` take."""

_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ZooBot(ManagedProcess):
    """A running zoo bot: a :class:`ManagedProcess` that also knows its webhook URLs."""

    webhook_url: str = ""
    """Where to POST webhooks (``http://127.0.0.1:<port>/webhook/whatsapp``)."""
    public_url: str = ""
    """The URL the bot validates signatures against (what to sign for)."""


def start_bot(
    name: str,
    token: str,
    *,
    redis_url: str | None = None,
    public_url: str | None = None,
    extra_args: Sequence[str] = (),
    path: str = DEFAULT_PATH,
    log_dir: Path | None = None,
    timeout_s: float = 10.0,
) -> ZooBot:
    """Start zoo bot ``name`` as a separate process on a free loopback port; returns once it answers.

    ``token`` goes through the environment (never the command line). ``public_url`` defaults to
    ``http://127.0.0.1:<port><path>``. With ``log_dir`` the bot's output goes to a file there (shown
    in the error when it does not start). Call ``stop()`` on the result when done.
    """
    if name not in BOTS:
        raise ConfigError(f"zoo bot {name!r}: unknown; known: {', '.join(BOT_NAMES)}")
    if BOTS[name].needs_redis and not redis_url:
        raise ConfigError(f"zoo bot {name!r} needs redis_url")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    public_url = public_url or base + path
    args = [sys.executable, "-m", "tests.zoo", name, "--port", str(port), "--path", path]
    args += ["--public-url", public_url]
    if redis_url:
        args += ["--redis-url", redis_url]
    args += list(extra_args)
    env = dict(os.environ)
    env["TWILIO_AUTH_TOKEN"] = token
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
    log_path = log_dir / f"zoo-{name}-{port}.log" if log_dir is not None else None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path or os.devnull, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=_REPO_ROOT)
    bot = ZooBot(
        name=f"zoo:{name}",
        process=process,
        url=base,
        log_path=log_path,
        extra={"port": str(port), "bot": name},
        webhook_url=base + path,
        public_url=public_url,
    )
    # any answer counts (no_health answers /health with 404)
    if not wait_for_http(base + HEALTH_PATH, timeout_s) or process.poll() is not None:
        bot.stop()
        raise ServiceUnavailable(f"zoo bot {name} did not start on {base}: {bot.log_tail()}")
    return bot


__all__ = ["BOT_NAMES", "QUEUE_KEY", "TWIML_ACK", "ZooBot", "start_bot"]
