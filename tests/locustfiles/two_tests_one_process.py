"""Runs two tests in one Locust process (as the web UI can) with the collector installed, then
prints the two run ids as JSON. Usage: two_tests_one_process.py REDIS_URL HOST REQUESTED_RUN_ID"""

from __future__ import annotations

import json
import sys

import gevent
from locust import FastHttpUser, constant, task
from locust.env import Environment

from perfsuite.collector import locust_plugin


class Probe(FastHttpUser):
    """One endpoint, fast."""

    wait_time = constant(0.01)

    @task
    def ok(self) -> None:
        self.client.get("/ok")


def main() -> None:
    """Two short tests, one runner; each gets its own run."""
    redis_url, host, requested = sys.argv[1:4]
    environment = Environment(user_classes=[Probe], host=host)
    locust_plugin.install(environment, redis_url=redis_url, run_id=requested, test_type="probe")
    runner = environment.create_local_runner()
    run_ids = []
    for _ in range(2):
        runner.start(2, spawn_rate=2)
        gevent.sleep(0.7)
        runner.stop()
        run_ids.append(
            {"run_id": locust_plugin.current_run_id(environment), "locust": runner.stats.total.num_requests}
        )
    runner.quit()
    print(json.dumps(run_ids))


if __name__ == "__main__":
    main()
