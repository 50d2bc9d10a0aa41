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
import sys
from typing import Any, NoReturn

from locust.env import Environment

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


def install_collector(environment: Environment, config: SuiteConfig, test_type: str) -> None:
    """Attach the Redis collector to this Locust process (every role: local, master, worker)."""
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


__all__ = ["DEFAULT_COLLECTOR_URL", "config_from_environment", "install_collector"]
