"""Redis benchmark (the seed's ``redis_benchmark.py``): the bot's Redis access pattern under load.

(Not named ``redis_bench.py``: Locust imports a locustfile under its file name, which would hide
the ``redis_bench`` package.)

``redis_bench.concurrent_operations`` users each run ``operations_per_worker`` GET/SET/DEL
operations (``read/write/delete_percentage``) on a preloaded key space under the run's own key
namespace, through one bounded connection pool and one circuit breaker per process, while
``failure_injection_rate`` of them go through real faults and outages trip the breaker (with
``test_circuit_breaker``). Every command is a Locust request (request_type ``REDIS``) recorded by
the collector; pool gauges, PING latency and breaker changes are recorded as marks.

Runs plainly too (keys are removed at the end)::

    REDIS_BENCH_URL=redis://127.0.0.1:6380/0 REDIS_URL=redis://127.0.0.1:6380/0 \\
        locust -f locustfiles/redis_benchmark.py --headless

The benchmarked Redis is ``REDIS_BENCH_URL``, else a ``redis://`` ``--host``, else
``redis_bench.url``, else the collector's ``REDIS_URL``.
"""

from __future__ import annotations

from typing import Any

from locust import events
from locust.env import Environment

from locustfiles.common import add_arguments, config_from_environment, install_collector
from redis_bench.user import RedisBenchShape, RedisUser, configure, on_test_start, on_test_stop

CONFIG = config_from_environment()
"""The validated suite configuration every process of this test shares."""

configure(CONFIG)

__all__ = ["RedisBenchShape", "RedisUser"]


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    add_arguments(parser)


# Registered at import, before the collector installs its own listeners in ``init``: the final
# pool/breaker sample must reach the collector's writer before the collector closes it.
@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    on_test_stop(environment, CONFIG)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    install_collector(environment, CONFIG, test_type="redis")

    # Added after the collector's: the run id (and so the key namespace) exists by then.
    def _on_test_start(environment: Environment, **_: Any) -> None:
        on_test_start(environment, CONFIG)

    environment.events.test_start.add_listener(_on_test_start)
