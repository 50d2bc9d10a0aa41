"""What every perfsuite locustfile shares: the configuration and the collector.

Locust processes (local, master, workers, and docker-compose services) all read the same
configuration from the environment, so a worker on another machine agrees with its master:

``PERFSUITE_CONFIG``     path of scenarios.yaml (default: the repository's)
``PERFSUITE_SCENARIO``   scenario name (default: ``default``)
``PERFSUITE_OVERRIDES``  JSON object of dotted key paths -> values (what CLI flags set)
``TWILIO_AUTH_TOKEN``, ``REDIS_URL``  secrets, from the environment only
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

import gevent
from locust.env import Environment
from locust.runners import WorkerRunner

from perfsuite import workers
from perfsuite.collector import locust_plugin
from perfsuite.config import SuiteConfig, load_config
from perfsuite.errors import EXIT_USAGE, ConfigError
from perfsuite.twilio import TrafficGenerator

DEFAULT_COLLECTOR_URL = "redis://127.0.0.1:6379/0"

logger = logging.getLogger(__name__)


def config_from_environment() -> SuiteConfig:
    """The suite configuration named by the PERFSUITE_* variables; exits 64 with the reason if bad."""
    try:
        overrides: dict[str, Any] = json.loads(os.environ.get("PERFSUITE_OVERRIDES") or "{}")
        if not isinstance(overrides, dict):
            raise ConfigError("PERFSUITE_OVERRIDES: must be a JSON object of key path -> value")
        return load_config(
            None,  # PERFSUITE_CONFIG, read by load_config
            os.environ.get("PERFSUITE_SCENARIO") or None,
            overrides,
        )
    except json.JSONDecodeError as exc:
        _exit_usage(f"PERFSUITE_OVERRIDES: not valid JSON: {exc.msg}")
    except ConfigError as exc:
        _exit_usage(str(exc))


def _exit_usage(message: str) -> NoReturn:
    print(f"perfsuite: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def require_auth_token(config: SuiteConfig) -> None:
    """Exit 64 when there is no TWILIO_AUTH_TOKEN to sign webhooks with (every webhook-sending
    locustfile calls it at ``init``)."""
    if not config.auth_token:
        _exit_usage(
            "TWILIO_AUTH_TOKEN is not set; it is needed to sign webhook requests "
            "(use the bot's auth token, or let `perfsuite run` start the demo bot)"
        )


def traffic_generator(config: SuiteConfig, host: str) -> TrafficGenerator:
    """The messages of ``config``'s traffic, signed for ``host`` (its ``public_url``)."""
    return TrafficGenerator(
        account_sid=config.target.account_sid,
        bot_number=config.target.bot_number,
        public_url=config.public_url(host),
        auth_token=config.auth_token or "",
        mix=config.traffic.message_mix,
        invalid_signature_rate=config.traffic.invalid_signature_rate,
        duplicate_rate=config.traffic.duplicate_rate,
        rng=random.Random(),
    )


def stop_cleanly_on_sigterm(environment: Environment) -> None:
    """Let SIGTERM stop a headless, shape-driven run like Ctrl-C does.

    Locust installs its own SIGTERM handler only after a shape test ends, so until then SIGTERM
    (how ``perfsuite`` stops a run on Ctrl-C or a timeout, and how docker stops a container)
    would kill the process before the collector's final flush and Locust's own stats file.
    Raising KeyboardInterrupt in the main greenlet takes Locust's normal shutdown path instead.
    Workers are left alone: they stop when their master tells them to.
    """
    if isinstance(environment.runner, WorkerRunner):
        return
    main = gevent.getcurrent()
    gevent.signal_handler(signal.SIGTERM, lambda: gevent.kill(main, KeyboardInterrupt))


WEB_UI_OPTIONS: dict[str, tuple[str, str]] = {
    "perfsuite_users": ("webhook.concurrent_users", "users of the seed profile"),
    "perfsuite_requests_per_user": ("webhook.requests_per_user", "messages each user sends"),
    "perfsuite_burst_intensity": (
        "webhook.burst_intensity",
        "messages fired at once after the ramp (0: no burst)",
    ),
    "perfsuite_invalid_signature_rate": ("traffic.invalid_signature_rate", "share of bad signatures (0-1)"),
    "perfsuite_duplicate_rate": ("traffic.duplicate_rate", "share of Twilio retries (0-1)"),
    "perfsuite_message_mix": ("traffic.message_mix", "message mix, e.g. text=50,document=15,image=10"),
}
"""The web UI's perfsuite options (option dest -> configuration key path, help): empty keeps the
scenario's value."""


def add_web_ui_arguments(parser: Any, config: SuiteConfig) -> None:
    """The scenario and its main settings as fields of Locust's web UI (custom arguments), so a test
    started in the browser uses them; empty fields keep the chosen scenario's values."""
    names = sorted({*config.scenarios, "default"})
    parser.add_argument(
        "--perfsuite-scenario",
        dest="perfsuite_scenario",
        default=config.scenario,
        choices=names,
        include_in_web_ui=True,
        help="perfsuite scenario (scenarios.yaml)",
    )
    for dest, (key, text) in WEB_UI_OPTIONS.items():
        parser.add_argument(
            "--" + dest.replace("_", "-"),
            dest=dest,
            default="",
            include_in_web_ui=True,
            help=f"perfsuite: {text} ({key}; empty: the scenario's)",
        )


def _option_value(key: str, text: str) -> Any:
    if key == "traffic.message_mix":
        mix: dict[str, float] = {}
        for part in text.replace(";", ",").split(","):
            kind, _, weight = part.partition("=")
            if kind.strip():
                mix[kind.strip()] = float(weight or 1)
        return mix
    number = float(text)
    return int(number) if number.is_integer() and not key.startswith("traffic.") else number


def per_test_config(environment: Environment, config: SuiteConfig) -> SuiteConfig:
    """The configuration of the test now running: ``config`` (the environment's), with the scenario
    and settings chosen in the web UI when there are any. Built once per distinct choice; a bad
    value is logged and the field ignored (the web UI has no place to show errors)."""
    options = environment.parsed_options
    scenario = getattr(options, "perfsuite_scenario", None) or config.scenario
    chosen = {dest: str(getattr(options, dest, "") or "").strip() for dest in WEB_UI_OPTIONS}
    key = (scenario, tuple(sorted(chosen.items())))
    cache = getattr(environment, "perfsuite_configs", None)
    if cache is None:
        cache = {}
        environment.perfsuite_configs = cache  # type: ignore[attr-defined]
    if key in cache:
        return cache[key]
    if scenario == config.scenario and not any(chosen.values()):
        cache[key] = config
        return config
    overrides = dict(config.overrides)
    for dest, text in chosen.items():
        if not text:
            continue
        path = WEB_UI_OPTIONS[dest][0]
        try:
            overrides[path] = _option_value(path, text)
        except ValueError:
            logger.error("perfsuite: web UI field %s: %r is not a valid value; ignored", path, text)
    if overrides.get("webhook.burst_intensity") == 0:
        overrides.pop("webhook.burst_intensity")
        overrides["webhook.enable_burst_testing"] = False
    try:
        built = load_config(config.source if config.source != "<defaults>" else None, scenario, overrides)
    except ConfigError as exc:
        logger.error("perfsuite: the web UI's settings are not valid (%s); the scenario's are used", exc)
        built = config
    cache[key] = built
    return built


def add_arguments(parser: Any) -> None:
    """The suite's own Locust options (the collector's, the workers' heartbeat limits); call it from
    the locustfile's ``init_command_line_parser`` listener."""
    locust_plugin.add_arguments(parser)
    workers.add_arguments(parser)


def install_collector(
    environment: Environment,
    config: SuiteConfig,
    test_type: str,
    per_test: Callable[[Environment], SuiteConfig] | None = None,
) -> None:
    """Attach the Redis collector to this Locust process (every role: local, master, worker), and the
    worker-health listeners after it (a worker's first health mark needs its writer): on a master,
    joins, losses and heartbeat gaps; on a worker or a local process, its CPU and event-loop lag,
    the generator's own saturation (``perfsuite.saturation``) that decides whether latency is
    trustworthy. ``per_test`` gives the configuration of the test now running when the web UI can
    change it between tests (its scenario and snapshot are then stored with each run)."""
    stop_cleanly_on_sigterm(environment)

    def describe(env: Environment) -> tuple[str, str]:
        current = per_test(env) if per_test is not None else config
        return current.scenario, current.snapshot_json()

    locust_plugin.install(
        environment,
        redis_url=config.collector_redis_url or DEFAULT_COLLECTOR_URL,
        key_prefix=config.redis.key_prefix,
        flush_interval_s=config.collector.flush_interval_s,
        max_pending_batches=config.collector.max_pending_batches,
        spill_dir=config.collector.spill_dir,
        retention_s=int(config.redis.retention_days * 86_400),
        test_type=test_type,
        scenario=config.scenario,
        config_json=config.snapshot_json(),
        describe_test=describe,
    )
    workers.install_worker_health(
        environment,
        lambda: locust_plugin.current_writer(environment),
        max_cpu_percent=config.arrival.max_cpu_percent,
    )
    environment.events.test_stop.add_listener(
        lambda environment, **_: _grade_in_the_background(
            environment, per_test(environment) if per_test is not None else config, test_type
        )
    )


GRADE_WAIT_S = 30.0
"""How long a web UI test's grading waits for every worker's last flush."""


def _grade_in_the_background(environment: Environment, config: SuiteConfig, test_type: str) -> None:
    """A test started and stopped in the web UI is graded and stored like a headless one (``perfsuite
    runs list`` shows it with its grade); headless runs are graded by ``perfsuite run`` itself."""
    options = environment.parsed_options
    if isinstance(environment.runner, WorkerRunner) or options is None or getattr(options, "headless", True):
        return
    run_id = locust_plugin.current_run_id(environment)
    if run_id is not None:
        gevent.spawn(_grade_recorded_run, config, test_type, run_id)


def _grade_recorded_run(config: SuiteConfig, test_type: str, run_id: str) -> None:
    from perfsuite import registry
    from perfsuite.collect import Collected
    from perfsuite.collector import CollectorReader
    from perfsuite.history import RunHistory
    from perfsuite.jobs import grade_recorded

    url = config.collector_redis_url or DEFAULT_COLLECTOR_URL
    try:
        reader = CollectorReader(url, key_prefix=config.redis.key_prefix)
        deadline = time.monotonic() + GRADE_WAIT_S
        data = reader.load(run_id)
        while not (data.complete and data.matches_locust is not False) and time.monotonic() < deadline:
            gevent.sleep(0.5)
            data = reader.load(run_id)
        limits = config.arrival
        collected = Collected.of(data, limits.max_cpu_percent, limits.max_lag_ms)
        result = grade_recorded(registry.get(test_type), config, collected)
        RunHistory(url, config.redis.key_prefix).store(result)
        logger.info("perfsuite: web UI run %s graded %s and stored", run_id, result.grade.value)
    except Exception as exc:  # grading must never take the web UI down
        logger.warning("perfsuite: web UI run %s could not be graded: %s", run_id, exc)


__all__ = [
    "DEFAULT_COLLECTOR_URL",
    "WEB_UI_OPTIONS",
    "add_arguments",
    "add_web_ui_arguments",
    "config_from_environment",
    "install_collector",
    "per_test_config",
    "require_auth_token",
    "stop_cleanly_on_sigterm",
    "traffic_generator",
]
