"""Helpers of the live metrics tests: a run recorded through the real collector writer (known values,
every kind of mark the endpoint reads), an endpoint following it, and scrapes parsed by
prometheus_client's own parser."""

from __future__ import annotations

import random
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from perfsuite.collector import CollectorWriter, create_run, finish_run
from perfsuite.config import MetricsConfig
from perfsuite.correction import Correction
from perfsuite.marks import (
    ALERT,
    STAGE,
    STEP_VERDICT,
    WORKER_HEALTH,
    WORKER_JOINED,
    WORKER_LOST,
    Stage,
)
from perfsuite.metrics.endpoint import MetricsEndpoint

PREFIX = "perfsuite"
ENDPOINTS = (
    ("POST", "webhook text"),
    ("POST", "webhook document"),
    ("POST", "webhook bad-signature:missing"),
)
OUTCOME_WEIGHTS = {"success": 80, "rejected": 10, "backpressure": 5, "failure": 5}


@dataclass
class Recorded:
    """What was recorded: every latency (us) by endpoint and outcome counts, and the writers."""

    run_id: str
    latencies_us: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    outcomes: dict[tuple[str, str, str], int] = field(default_factory=dict)
    writers: list[CollectorWriter] = field(default_factory=list)


def record_requests(
    recorded: Recorded,
    writer: CollectorWriter,
    count: int,
    start_s: float,
    spacing_s: float,
    mean_us: float,
    rng: random.Random,
) -> None:
    """``count`` requests spread from ``start_s`` (epoch), exponential latencies of ``mean_us``."""
    outcomes, weights = list(OUTCOME_WEIGHTS), list(OUTCOME_WEIGHTS.values())
    for i in range(count):
        request_type, name = ENDPOINTS[i % len(ENDPOINTS)]
        value = rng.expovariate(1 / mean_us)
        outcome = rng.choices(outcomes, weights)[0]
        writer.record(request_type, name, value, outcome=outcome, at_s=start_s + i * spacing_s)
        recorded.latencies_us.setdefault((request_type, name), []).append(value)
        key = (request_type, name, outcome)
        recorded.outcomes[key] = recorded.outcomes.get(key, 0) + 1


def record_run(redis_url: str, run_id: str, *, host: str = "http://127.0.0.1:8000") -> Recorded:
    """A two-worker run (not closed yet): 3,000 requests over the last 30 s on three endpoints, and
    marks of every kind the endpoint reads (a stage, a step verdict, an alert, worker health with a
    saturated sample, a lost worker)."""
    create_run(redis_url, PREFIX, run_id, "capacity", "smoke", host, "{}")
    now = time.time()
    rng = random.Random(7)
    recorded = Recorded(run_id)
    for index in range(2):
        writer = CollectorWriter(redis_url, run_id, f"worker-{index}", start=False)
        recorded.writers.append(writer)
        record_requests(recorded, writer, 1500, now - 30 + index * 0.005, 0.02, 20_000 * (index + 1), rng)
        writer.mark(
            WORKER_HEALTH,
            at_s=now - 5,
            source="worker",
            client_id=f"host_{index}",
            requests=1500,
            cpu_percent=95.0 if index else 40.0,  # worker 1 over the 90% CPU limit
            loop_lag_max_ms=2.0,
        )
        writer.flush(everything=True)
    master = CollectorWriter(redis_url, run_id, "master", start=False)
    recorded.writers.append(master)
    master.mark(STAGE, at_s=now - 30, name=Stage.STEP, step=2, users=15)
    master.mark(WORKER_JOINED, at_s=now - 31, client_id="host_0")
    master.mark(WORKER_JOINED, at_s=now - 31, client_id="host_1")
    master.mark(WORKER_LOST, at_s=now - 2, client_id="host_1")
    master.mark(
        STEP_VERDICT,
        at_s=now - 10,
        step=1,
        load=5,
        requests=400,
        good_rps=48.5,
        p95_ms=31.0,
        success_rate=0.995,
        meets_slo=True,
        knee_step=None,
        capacity=5,
    )
    master.mark(ALERT, at_s=now - 8, alert="p95", severity="warning", state="fired", value=1200, limit=1000)
    master.mark(ALERT, at_s=now - 6, alert="p95", severity="warning", state="cleared", value=800, limit=1000)
    master.mark(
        ALERT, at_s=now - 4, alert="machine_cpu", severity="warning", state="fired", value=93, limit=80
    )
    master.flush(everything=True)
    return recorded


def close_run(redis_url: str, recorded: Recorded) -> None:
    """Close every writer and finish the run (its data is then final)."""
    for writer in recorded.writers:
        writer.close()
    finish_run(redis_url, PREFIX, recorded.run_id, "finished")


@contextmanager
def following(
    redis_url: str, run_id: str, correction: Correction | None = None, **settings: object
) -> Iterator[MetricsEndpoint]:
    """An endpoint on a free loopback port following ``run_id``; closed at the end (no linger)."""
    config = MetricsConfig(port=0, **settings)
    endpoint = MetricsEndpoint(config, redis_url, PREFIX).start()
    endpoint.follow(run_id, correction or Correction.none())
    try:
        yield endpoint
    finally:
        endpoint.close(linger=False)


Sample = tuple[str, Mapping[str, str], float]


def scrape(url: str) -> list[Sample]:
    """Every sample of one scrape, parsed by prometheus_client's text parser."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def value(samples: list[Sample], metric: str, /, **labels: str) -> float:
    """The one sample ``metric`` whose labels include ``labels``."""
    found = [v for n, got, v in samples if n == metric and all(got.get(k) == w for k, w in labels.items())]
    assert len(found) == 1, f"{metric}{labels}: {len(found)} samples"
    return found[0]


def total(samples: list[Sample], metric: str, /, **labels: str) -> float:
    """The sum of the samples ``metric`` whose labels include ``labels``."""
    return sum(v for n, got, v in samples if n == metric and all(got.get(k) == w for k, w in labels.items()))
