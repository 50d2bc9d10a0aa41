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
import os
import signal
import sys
from typing import Any, NoReturn

import gevent
from locust.env import Environment
from locust.runners import WorkerRunner

from perfsuite import workers
from perfsuite.collector import locust_plugin
from perfsuite.config import SuiteConfig, load_config
from perfsuite.errors import EXIT_USAGE, ConfigError

DEFAULT_COLLECTOR_URL = "redis://127.0.0.1:6379/0"


def config_from_environment() -> SuiteConfig:
    """The suite configuration named by the PERFSUITE_* variables; exits 64 with the reason if bad."""
    try:
        overrides: dict[str, Any] = json.loads(os.environ.get("PERFSUITE_OVERRIDES") or "{}")
        if not isinstance(overrides, dict):
            raise ConfigError("PERFSUITE_OVERRIDES: must be a JSON object of key path -> value")
        return load_config(
            os.environ.get("PERFSUITE_CONFIG") or None,
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


def add_arguments(parser: Any) -> None:
    """The suite's own Locust options (the collector's, the workers' heartbeat limits); call it from
    the locustfile's ``init_command_line_parser`` listener."""
    locust_plugin.add_arguments(parser)
    workers.add_arguments(parser)


def install_collector(environment: Environment, config: SuiteConfig, test_type: str) -> None:
    """Attach the Redis collector to this Locust process (every role: local, master, worker), and the
    worker-health listeners after it (a worker's first health mark needs its writer): on a master,
    joins, losses and heartbeat gaps; on a worker or a local process, its CPU and event-loop lag,
    the generator's own saturation (``perfsuite.saturation``) that decides whether latency is
    trustworthy."""
    stop_cleanly_on_sigterm(environment)
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
    )
    workers.install_worker_health(
        environment,
        lambda: locust_plugin.current_writer(environment),
        max_cpu_percent=config.arrival.max_cpu_percent,
    )


__all__ = [
    "DEFAULT_COLLECTOR_URL",
    "add_arguments",
    "config_from_environment",
    "install_collector",
    "stop_cleanly_on_sigterm",
]
