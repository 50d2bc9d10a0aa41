"""Locustfile for the collector's integration tests: a few endpoints, every outcome, and every
response time also appended to ``$COLLECTOR_PROBE_LATENCY_DIR/<pid>.txt`` so the test knows the
exact latencies Locust saw."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task

from perfsuite.collector import locust_plugin

_LATENCY_DIR = Path(os.environ["COLLECTOR_PROBE_LATENCY_DIR"])
_SPILL_DIR = Path(os.environ["COLLECTOR_PROBE_SPILL_DIR"])
_latency_file = None
_environment: Any = None


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    locust_plugin.add_arguments(parser)


@events.init.add_listener
def _install(environment: Any, **_kwargs: Any) -> None:
    global _environment
    _environment = environment
    locust_plugin.install(
        environment,
        test_type="probe",
        scenario="collector-test",
        config_json='{"users": 5}',
        flush_interval_s=0.5,
        spill_dir=_SPILL_DIR,
    )


@events.spawning_complete.add_listener
def _mark_stage(user_count: int, **_kwargs: Any) -> None:
    plugin = locust_plugin.plugin_of(_environment)
    if plugin is not None and plugin.writer is not None:
        plugin.writer.mark("stage", users=user_count, role=plugin.role)


@events.request.add_listener
def _remember_latency(response_time: float, **_kwargs: Any) -> None:
    global _latency_file
    if _latency_file is None:
        _LATENCY_DIR.mkdir(parents=True, exist_ok=True)
        _latency_file = open(_LATENCY_DIR / f"{os.getpid()}.txt", "a", buffering=1)  # noqa: SIM115
    _latency_file.write(f"{response_time!r}\n")


class Probe(FastHttpUser):
    """Hits the probe server: successes, server errors, expected rejections, backpressure."""

    wait_time = constant(0.005)

    @task(6)
    def ok(self) -> None:
        self.client.get("/ok", context={"timings_us": {"server.work": 250}})

    @task(1)
    def server_error(self) -> None:
        self.client.get("/status/500")

    @task(1)
    def rejected(self) -> None:
        with self.client.get("/status/403", catch_response=True, context={"outcome": "rejected"}) as response:
            response.success()

    @task(1)
    def backpressure(self) -> None:
        with self.client.get(
            "/status/503", catch_response=True, context={"outcome": "backpressure"}
        ) as response:
            response.failure("busy")
