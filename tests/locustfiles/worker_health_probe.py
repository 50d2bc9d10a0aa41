"""Locustfile for the worker-loss tests: the collector plus perfsuite's worker-health listeners, and
one user that GETs ``/ok`` from the probe server every 10 ms.

``--master-heartbeat-timeout`` / ``--worker-heartbeat-liveness`` (from ``perfsuite.workers``) set
Locust's heartbeat limits; ``COLLECTOR_PROBE_SPILL_DIR`` is where a writer would spill.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task

from perfsuite import workers
from perfsuite.collector import locust_plugin


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    locust_plugin.add_arguments(parser)
    workers.add_arguments(parser)


@events.init.add_listener
def _install(environment: Any, **_kwargs: Any) -> None:
    locust_plugin.install(
        environment,
        test_type="probe",
        scenario="worker-loss",
        flush_interval_s=0.5,
        spill_dir=Path(os.environ["COLLECTOR_PROBE_SPILL_DIR"]),
    )
    workers.install_worker_health(environment, lambda: locust_plugin.current_writer(environment))


class Probe(FastHttpUser):
    """GET /ok, 100 times a second per user at most."""

    wait_time = constant(0.01)

    @task
    def ok(self) -> None:
        self.client.get("/ok")
