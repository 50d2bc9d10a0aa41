"""Which fault windows the capacity test runs, where, and why the others do not run.

scenarios.yaml's ``faults:`` list is the schedule; the seed's flags select from it
(``capacity.enable_redis_failure`` takes the windows whose target is ``redis``,
``enable_database_failure`` those on ``database``). Before the load, :func:`resolve` decides for each
selected window where it acts:

- the embedded demo bot reaches its Redis (and PostgreSQL, with ``DEMO_BOT_DB_URL``) through an
  embedded fault proxy (``perfsuite.services.FaultTopology``): a ``proxy``/``toxic`` window that
  names no ``api_url`` acts there on the proxy named like its target; a ``database`` window with a
  SQLite demo bot is **not applicable** (not run, not failed);
- otherwise the window's own ``api_url`` (a user's Toxiproxy or ``perfsuite chaos-proxy``) must
  answer and hold a proxy named like its target, else the window is **not run** (with the reason);
- ``redis_pause`` needs the bot's Redis URL (the embedded bot's own Redis, or
  ``PERFSUITE_FAULT_REDIS_URL``); ``shell`` windows always run.

The Locust process learns the outcome from its environment (:data:`SKIP_ENV`, :data:`API_URL_ENV`,
:data:`REDIS_URL_ENV`) and runs :func:`windows_to_run`: plain ``locust -f locustfiles/system_capacity.py``
without them runs every selected window as written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from perfsuite.config import SuiteConfig
from perfsuite.faults.client import ToxiproxyClient
from perfsuite.faults.errors import ApiError, FaultError
from perfsuite.faults.schedule import FaultWindow
from perfsuite.redact import redact_text

SKIP_ENV = "PERFSUITE_FAULTS_SKIP"
"""JSON object ``{window name: reason}`` of the windows preflight found could not run."""
API_URL_ENV = "PERFSUITE_CHAOS_API_URL"
"""The fault proxy API a ``proxy``/``toxic`` window without its own ``api_url`` uses (the embedded
one; in docker-compose the chaos-proxy service)."""
REDIS_URL_ENV = "PERFSUITE_FAULT_REDIS_URL"
"""The bot's Redis, for ``redis_pause`` windows (a secret: environment only)."""

PROXY_DRIVERS = ("proxy", "toxic")
NOT_APPLICABLE = "not applicable"
DISABLED = "disabled"
NOT_RUN = "not run"


@dataclass(frozen=True, slots=True)
class Skipped:
    """A selected or configured window that does not run, and why."""

    window: FaultWindow
    status: str
    """``disabled`` (a seed flag turned it off), ``not applicable`` (nothing of the kind to break:
    a SQLite demo bot has no database server) or ``not run`` (its fault proxy is missing)."""
    reason: str


@dataclass(frozen=True, slots=True)
class Resolution:
    """The windows that run (their ``api_url`` resolved) and those that do not."""

    run: tuple[FaultWindow, ...]
    skipped: tuple[Skipped, ...]

    def env(self, api_url: str | None, redis_url: str | None) -> dict[str, str]:
        """The Locust processes' environment for this resolution."""
        env = {SKIP_ENV: json.dumps({s.window.name: s.reason for s in self.skipped}, sort_keys=True)}
        if api_url:
            env[API_URL_ENV] = api_url
        if redis_url:
            env[REDIS_URL_ENV] = redis_url
        return env


def selected(config: SuiteConfig) -> tuple[list[FaultWindow], list[Skipped]]:
    """The configured windows the seed's flags select, and those they turn off."""
    settings = config.capacity
    flags = {"redis": ("enable_redis_failure", settings.enable_redis_failure)}
    flags["database"] = ("enable_database_failure", settings.enable_database_failure)
    chosen: list[FaultWindow] = []
    off: list[Skipped] = []
    for window in config.faults:
        flag, enabled = flags.get(window.target, ("", True))
        if enabled:
            chosen.append(window)
        else:
            off.append(Skipped(window, DISABLED, f"capacity.{flag} is false"))
    return chosen, off


def _explicit_api(window: FaultWindow) -> bool:
    return "api_url" in window.model_fields_set


def _on_default_api(window: FaultWindow, api_url: str | None) -> FaultWindow:
    """``window`` pointed at ``api_url`` (:data:`API_URL_ENV`, e.g. docker-compose's chaos-proxy) when
    it is a ``proxy``/``toxic`` window that names no ``api_url`` of its own."""
    if api_url and window.driver in PROXY_DRIVERS and not _explicit_api(window):
        return window.model_copy(update={"api_url": api_url.rstrip("/")})
    return window


def _check_proxy(window: FaultWindow, timeout_s: float) -> str | None:
    """None when ``window.api_url`` answers and has the proxy ``window.target``; else why not."""
    client = ToxiproxyClient(window.api_url, timeout_s)
    try:
        client.proxy(window.target)
    except ApiError as exc:
        if exc.status == 404:
            names = ", ".join(sorted(client.proxies())) or "none"
            return f"no proxy named {window.target!r} at {redact_text(window.api_url)} (it has: {names})"
        return f"the fault proxy at {redact_text(window.api_url)} refused: {exc}"
    except FaultError as exc:
        return (
            f"no fault proxy answers at {redact_text(window.api_url)} ({exc}); point faults[].api_url at one"
        )
    return None


def resolve(
    config: SuiteConfig,
    *,
    embedded_api_url: str | None,
    embedded_proxies: tuple[str, ...] = (),
    database: str | None = None,
    redis_url: str | None = None,
    default_api_url: str | None = None,
    timeout_s: float = 3.0,
) -> Resolution:
    """Decide, before the load, which selected windows run and where (see the module docstring).

    ``embedded_api_url`` and ``embedded_proxies``: the embedded fault proxy in front of the demo bot's
    dependencies (None for a user's bot); ``database``: the embedded bot's store (``sqlite`` or
    ``postgresql``); ``redis_url``: the Redis a ``redis_pause`` window pauses; ``default_api_url``:
    the fault proxy API of a user's bot's windows that name none (:data:`API_URL_ENV`).
    """
    chosen, skipped = selected(config)
    run: list[FaultWindow] = []
    for window in chosen:
        reason: str | None = None
        status = NOT_RUN
        if window.driver in PROXY_DRIVERS and embedded_api_url is not None and not _explicit_api(window):
            if window.target in embedded_proxies:
                run.append(window.model_copy(update={"api_url": embedded_api_url}))
                continue
            status = NOT_APPLICABLE
            if window.target == "database" and database == "sqlite":
                reason = (
                    "the demo bot stores its results in SQLite, a file: there is no database server to "
                    "take away (set DEMO_BOT_DB_URL=postgresql://... to run it on PostgreSQL behind the "
                    "fault proxy)"
                )
            else:
                have = ", ".join(embedded_proxies) or "none"
                reason = (
                    f"no proxy named {window.target!r} in front of the embedded demo bot (it has: {have})"
                )
        elif window.driver in PROXY_DRIVERS:
            window = _on_default_api(window, default_api_url)
            reason = _check_proxy(window, timeout_s)
        elif window.driver == "redis_pause" and not redis_url:
            reason = f"redis_pause needs the bot's Redis URL: set {REDIS_URL_ENV}"
        if reason is None:
            run.append(window)
        else:
            skipped.append(Skipped(window, status, reason))
    return Resolution(tuple(run), tuple(skipped))


def windows_to_run(config: SuiteConfig, environ: Mapping[str, str] | None = None) -> tuple[FaultWindow, ...]:
    """In a Locust process: the selected windows minus those preflight skipped (:data:`SKIP_ENV`),
    ``proxy``/``toxic`` windows without their own ``api_url`` pointed at :data:`API_URL_ENV`."""
    env = os.environ if environ is None else environ
    try:
        skip = json.loads(env.get(SKIP_ENV) or "{}")
    except ValueError:
        skip = {}
    api_url = env.get(API_URL_ENV) or None
    chosen, _ = selected(config)
    return tuple(_on_default_api(window, api_url) for window in chosen if window.name not in skip)


__all__ = [
    "API_URL_ENV",
    "DISABLED",
    "NOT_APPLICABLE",
    "NOT_RUN",
    "PROXY_DRIVERS",
    "REDIS_URL_ENV",
    "SKIP_ENV",
    "Resolution",
    "Skipped",
    "resolve",
    "selected",
    "windows_to_run",
]
