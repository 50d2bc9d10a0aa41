"""Redis benchmark: breaker, pool, faults, workload, and the whole job against a private Redis."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from perfsuite.config import SuiteConfig, load_config
from perfsuite.errors import ConfigError, ServiceUnavailable
from perfsuite.jobs import RunOptions, run_job
from perfsuite.report import render
from redis_bench.breaker import BreakerState, CircuitBreaker, CircuitOpenError
from redis_bench.client import BenchClient, BoundedPool, PoolTimeoutError, resp_command
from redis_bench.faults import FaultInjector, FaultKind, FaultPlan, FaultServers
from redis_bench.job import RedisBenchTest, figures_of, resolve_bench_url
from redis_bench.runtime import BenchRuntime, OpResult
from redis_bench.workload import Operation, Workload, cleanup, count_keys, escape_glob, namespace_for, preload


class FakeClock:
    """Monotonic seconds that only move when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------- breaker


def test_breaker_opens_after_consecutive_failures_and_refuses_calls() -> None:
    """failure_threshold consecutive failures trip the breaker; it then refuses calls without sending."""
    clock = FakeClock()
    breaker = CircuitBreaker(3, reset_timeout_s=1.0, clock=clock)
    for _ in range(2):
        breaker.record_failure(breaker.before_call(), "ConnectionError")
    breaker.record_success(breaker.before_call())  # a success resets the count
    for _ in range(3):
        breaker.record_failure(breaker.before_call(), "ConnectionError")
    assert breaker.state is BreakerState.OPEN
    assert breaker.trips == 1
    with pytest.raises(CircuitOpenError) as refused:
        breaker.before_call()
    assert refused.value.retry_after_s == pytest.approx(1.0)
    assert breaker.refused == 1


def test_breaker_half_open_trial_reopens_on_failure_and_closes_on_success() -> None:
    """After reset_timeout_s one trial goes through: a failure reopens, a success closes; all timed."""
    clock = FakeClock()
    breaker = CircuitBreaker(1, reset_timeout_s=1.0, clock=clock, wall_clock=clock)
    breaker.record_failure(breaker.before_call(), "TimeoutError")
    clock.now += 1.0
    trial = breaker.before_call()
    assert trial.trial and breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # one trial at a time
    breaker.record_failure(trial, "TimeoutError")
    assert breaker.state is BreakerState.OPEN and breaker.reopens == 1
    clock.now += 1.0
    breaker.record_success(breaker.before_call())
    assert breaker.state is BreakerState.CLOSED
    path = [(t.from_state.value, t.to_state.value) for t in breaker.transitions]
    assert path == [
        ("closed", "open"),
        ("open", "half-open"),
        ("half-open", "open"),
        ("open", "half-open"),
        ("half-open", "closed"),
    ]
    assert [t.elapsed_s for t in breaker.transitions] == [0.0, 1.0, 1.0, 2.0, 2.0]
    assert breaker.trips == 1


def test_breaker_ignores_results_of_calls_admitted_before_a_state_change() -> None:
    """A slow success admitted while closed must not close a breaker that opened meanwhile."""
    clock = FakeClock()
    breaker = CircuitBreaker(1, reset_timeout_s=1.0, clock=clock)
    slow = breaker.before_call()
    breaker.record_failure(breaker.before_call(), "ConnectionError")
    breaker.record_success(slow)
    assert breaker.state is BreakerState.OPEN


# ---------------------------------------------------------------------- pool and client


def test_pool_is_bounded_counts_waits_and_times_out(redis_url: str) -> None:
    """A full pool makes callers wait (counted, timed) and gives up after wait_timeout_s."""
    pool = BoundedPool(redis_url, max_connections=2, keep_idle=1, wait_timeout_s=0.05)
    first, _ = pool.acquire()
    second, _ = pool.acquire()
    with pytest.raises(PoolTimeoutError):
        pool.acquire()
    threading.Timer(0.02, pool.release, args=(first,)).start()
    pool.wait_timeout_s = 2.0
    third, waited_s = pool.acquire()
    assert third is first and waited_s > 0
    stats = pool.stats()
    assert (stats.in_use, stats.peak_in_use, stats.max_connections) == (2, 2, 2)
    assert stats.waits == 2 and stats.timeouts == 1
    assert stats.peak_utilization == 1.0
    pool.release(second)
    pool.release(third)
    pool.close()


def test_pool_serves_waiting_callers_first_come_first_served(redis_url: str) -> None:
    """A released connection goes to the longest-waiting caller; later callers cannot jump the queue."""
    pool = BoundedPool(redis_url, max_connections=1, keep_idle=1, wait_timeout_s=5.0)
    held, _ = pool.acquire()
    served: list[str] = []

    def wait_for_connection(name: str) -> None:
        connection, _ = pool.acquire()
        served.append(name)
        pool.release(connection)

    first = threading.Thread(target=wait_for_connection, args=("first",))
    first.start()
    while pool.stats().waiting < 1:
        time.sleep(0.001)
    second = threading.Thread(target=wait_for_connection, args=("second",))
    second.start()
    while pool.stats().waiting < 2:
        time.sleep(0.001)
    pool.release(held)
    first.join(5)
    second.join(5)
    assert served == ["first", "second"]
    assert pool.stats().waits == 2
    pool.close()


def test_pool_reconnects_a_connection_dropped_after_an_error(redis_url: str) -> None:
    """A connection released as broken is reconnected by its next user, and counted as such."""
    pool = BoundedPool(redis_url, max_connections=1, keep_idle=1)
    connection, _ = pool.acquire()
    pool.release(connection, broken=True)
    again, _ = pool.acquire()
    pool.release(again)
    stats = pool.stats()
    assert (stats.connects, stats.reconnects, stats.broken) == (2, 1, 1)
    pool.close()


def test_client_counts_by_exception_not_by_reply_value(redis_url: str) -> None:
    """SET, GET and DEL succeed by not raising (SET's raw reply is b'OK'); an error reply raises."""
    client = BenchClient(BoundedPool(redis_url, max_connections=2, keep_idle=1))
    assert client.execute(resp_command("SET", "bench:k", b"v"))[0] == b"OK"
    assert client.execute(resp_command("GET", "bench:k"))[0] == b"v"
    assert client.execute(resp_command("DEL", "bench:k"))[0] == 1
    assert client.execute(resp_command("GET", "bench:k"))[0] is None
    client.execute(resp_command("RPUSH", "bench:list", "x"))
    replies, _ = client.execute_many([resp_command("GET", "bench:list"), resp_command("LLEN", "bench:list")])
    assert isinstance(replies[0], ResponseError) and replies[1] == 1
    with pytest.raises(ResponseError):
        client.execute(resp_command("GET", "bench:list"))
    client.close()


# ---------------------------------------------------------------------- workload


def test_workload_mix_keys_and_values_follow_the_configuration() -> None:
    """Operations follow read/write/delete %, keys stay in the namespace, values stay in size range."""
    settings = load_config(
        overrides={"redis_bench.key_space": 100, "redis_bench.value_size_bytes": [10, 20]}, environ={}
    ).redis_bench
    workload = Workload(settings, "ns:run:", random.Random(7))
    items = [workload.next_item() for _ in range(20_000)]
    counts = Counter(item.operation for item in items)
    assert counts[Operation.GET] / len(items) == pytest.approx(0.70, abs=0.02)
    assert counts[Operation.SET] / len(items) == pytest.approx(0.25, abs=0.02)
    assert counts[Operation.DEL] / len(items) == pytest.approx(0.05, abs=0.01)
    assert all(item.key.startswith(b"ns:run:") for item in items)
    sizes = {item.value_size for item in items if item.operation is Operation.SET}
    assert min(sizes) == 10 and max(sizes) == 20
    assert items[0].packed.count(items[0].key) == 1


def test_zipf_key_choice_concentrates_on_a_few_keys() -> None:
    """With key_distribution zipf the most popular key is drawn far more often than under uniform."""

    def top_share(distribution: str) -> float:
        settings = load_config(
            overrides={"redis_bench.key_space": 1000, "redis_bench.key_distribution": distribution},
            environ={},
        ).redis_bench
        workload = Workload(settings, "ns:", random.Random(3))
        draws = Counter(workload.next_key_index() for _ in range(20_000))
        return draws.most_common(1)[0][1] / 20_000

    assert top_share("zipf") > 0.1
    assert top_share("uniform") < 0.01


def test_cleanup_removes_only_the_namespace_even_with_glob_characters(redis_url: str) -> None:
    """A prefix full of glob metacharacters is matched literally: neighbours survive cleanup."""
    client = redis.Redis.from_url(redis_url)
    namespace = "b*[ench]?:run:"
    settings = load_config(overrides={"redis_bench.key_space": 50}, environ={}).redis_bench
    assert preload(client, Workload(settings, namespace)) == 51
    client.set("bXench:run:neighbour", "keep")
    client.set("b*[ench]?:other", "keep")
    assert escape_glob(namespace) == "b\\*\\[ench\\]\\?:run:"
    assert count_keys(client, namespace) == 51
    assert cleanup(client, namespace) == 51
    assert sorted(client.keys("*")) == [b"b*[ench]?:other", b"bXench:run:neighbour"]


# ---------------------------------------------------------------------- faults


def test_every_fault_kind_fails_for_real(redis_url: str) -> None:
    """Each injected fault produces the error a real client meets: reset, refusal, timeout, error reply."""
    pool = BoundedPool(redis_url, max_connections=2, keep_idle=1, socket_timeout_s=0.2)
    client = BenchClient(pool)
    client.execute(resp_command("RPUSH", "ns:fault:list", "x"))
    with FaultServers() as servers:
        injector = FaultInjector(FaultPlan(rate=1.0), servers, client, "ns:fault:list")
        expected = {
            FaultKind.RESET: RedisConnectionError,
            FaultKind.REFUSED: RedisConnectionError,
            FaultKind.TIMEOUT: RedisTimeoutError,
            FaultKind.ERROR: ResponseError,
        }
        for kind, error in expected.items():
            with pytest.raises(error):
                injector.inject(kind, [resp_command("GET", "ns:k")])
        assert injector.injected == dict.fromkeys(FaultKind, 1)
    pool.close()


def test_outages_are_placed_by_progress_and_alternate_kinds() -> None:
    """Outage k of n starts at (k+1)/(n+1) of the planned operations and lasts outage_duration_s."""
    clock = FakeClock()
    plan = FaultPlan(rate=0.0, outages=2, outage_duration_s=1.0)
    with FaultServers() as servers:
        injector = FaultInjector(plan, servers, None, b"x", clock=clock)  # type: ignore[arg-type]
    assert injector.choose(32, 99) is None
    assert injector.choose(33, 99) is FaultKind.REFUSED
    clock.now += 0.5
    assert injector.choose(34, 99) is FaultKind.REFUSED
    clock.now += 0.6
    assert injector.choose(40, 99) is None
    assert injector.choose(66, 99) is FaultKind.TIMEOUT
    assert [window.index for window in injector.outages] == [0, 1]


def test_runtime_counts_add_up_and_the_breaker_recovers(redis_url: str) -> None:
    """Sequentially, with scattered faults and one outage: every command is reported once, failures
    split into injected and organic, and the breaker trips in the outage and closes afterwards."""
    config = load_config(
        overrides={
            "redis_bench.key_space": 100,
            "redis_bench.outages": 1,
            "redis_bench.outage_duration_s": 0.2,
            "redis_bench.breaker.reset_timeout_s": 0.1,
            "redis_bench.socket_timeout_s": 0.2,
        },
        environ={},
    )
    marks: list[tuple[str, dict[str, object]]] = []
    runtime = BenchRuntime(
        config.redis_bench,
        redis_url,
        "ns:rt:",
        planned_ops=lambda: 1500,
        mark=lambda kind, at_s=None, **fields: marks.append((kind, fields)),
        rng=random.Random(11),
    )
    preload(redis.Redis.from_url(redis_url), runtime.workload)
    results: list[OpResult] = []
    deadline = time.monotonic() + 30
    while len(results) < 1500 and time.monotonic() < deadline:
        back_off_s = runtime.run_step(1, results.append)
        time.sleep(back_off_s)
    counters = runtime.sample(final=True)
    runtime.close()
    by_name = Counter(result.name for result in results)
    failures = [result for result in results if result.outcome == "failure"]
    injected = [result for result in failures if result.name.startswith("injected ")]
    assert len(results) == counters["attempted"] == 1500
    assert len(failures) == len(injected) + counters["organic_failure"]
    assert len(injected) == sum(counters["injected"].values()) > 0
    assert by_name["refused by breaker"] == counters["refused"] > 0
    assert counters["organic_failure"] == 0
    states = [(fields["from_state"], fields["to_state"]) for kind, fields in marks if kind == "breaker"]
    assert states[0] == ("closed", "open") and states[-1] == ("half-open", "closed")
    assert runtime.breaker.state is BreakerState.CLOSED
    assert [fields["fault"] for kind, fields in marks if kind == "fault"] == ["outage"]


# ---------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"redis_bench.read_percentage": 80},
            "read_percentage + write_percentage + delete_percentage must be 100",
        ),
        ({"redis_bench.key_distribution": "pareto"}, "redis_bench.key_distribution"),
        ({"redis_bench.pool_size": 160}, "pool_size (160) must not exceed max_connections (100)"),
        ({"redis_bench.breaker.failure_threshold": 0}, "redis_bench.breaker.failure_threshold"),
        ({"redis_bench.url": "http://x"}, "redis_bench.url"),
    ],
)
def test_a_bad_benchmark_setting_names_its_key(overrides: dict[str, object], expected: str) -> None:
    """A wrong redis_bench value fails at load with its key path and what is allowed."""
    with pytest.raises(ConfigError) as error:
        load_config(overrides=overrides, environ={})
    assert "redis_bench" in str(error.value) and expected in str(error.value)


def test_an_unreachable_benchmark_redis_is_named(redis_url: str) -> None:
    """redis_bench.url that does not answer is a ServiceUnavailable naming the key, password hidden."""
    config = load_config(
        overrides={"redis_bench.url": "redis://:s3cret@127.0.0.1:1/0", "redis_bench.connect_timeout_s": 0.2},
        environ={},
    )
    with pytest.raises(ServiceUnavailable) as error, contextlib.ExitStack() as stack:
        resolve_bench_url(config, stack)
    assert "redis_bench.url" in str(error.value) and "s3cret" not in str(error.value)
    assert "s3cret" not in config.snapshot_json()


# ---------------------------------------------------------------------- the job, end to end


def _job_config(redis_url: str, **extra: object) -> SuiteConfig:
    overrides = {
        "redis.url": redis_url,
        "redis_bench.url": redis_url,
        "redis_bench.concurrent_operations": 10,
        "redis_bench.operations_per_worker": 300,
        "redis_bench.key_space": 500,
        "redis_bench.sample_interval_s": 0.2,
        **extra,
    }
    return load_config(overrides=overrides, environ={})


def _snapshot(client: redis.Redis) -> dict[bytes, tuple[bytes | None, int]]:
    """key -> (DUMP bytes, absolute expiry in ms or -1). The expiry is the server's clock plus PTTL
    read in one transaction (PEXPIRETIME needs Redis 7), so a busy machine cannot skew it."""
    snapshot = {}
    for key in client.scan_iter(count=1000):
        pipe = client.pipeline(transaction=True)
        pipe.time()
        pipe.pttl(key)
        pipe.dump(key)
        (seconds, micros), ttl_ms, dump = pipe.execute()
        now_ms = seconds * 1000 + micros // 1000
        snapshot[key] = (dump, now_ms + ttl_ms if ttl_ms >= 0 else -1)
    return snapshot


@pytest.mark.slow
def test_job_with_injection_trips_and_recovers_and_accounts_for_every_failure(
    redis_url: str, tmp_path: Path
) -> None:
    """The job prints ops/s, per-operation latency, pool, breaker timeline and a grade; the breaker
    opens in the injected outages and closes again; injected + organic + refused = Locust's failures."""
    config = _job_config(
        redis_url,
        **{
            "redis_bench.outages": 2,
            "redis_bench.outage_duration_s": 0.3,
            "redis_bench.breaker.reset_timeout_s": 0.2,
            "redis_bench.socket_timeout_s": 0.2,
            # what is asserted is the breaker and the failure accounting: a loaded test machine must
            # not turn it into a verdict on latency (the generator saturates long before Redis does)
            "redis_bench.max_p99_latency_ms": 10_000,
        },
    )
    result = run_job(RedisBenchTest(), config, RunOptions(state_dir=tmp_path), redis_url)
    text = render(result)
    figures = figures_of(result).redis
    breaker = figures_of(result).breaker
    assert figures.operations_total == 10 * 300
    assert (figures.ops_per_s or 0) > 0 and figures.success_rate == 1.0
    assert {row.operation for row in figures.per_operation} == {"GET", "SET", "DEL"}
    assert all(row.p99_ms is not None for row in figures.per_operation)
    assert breaker.trips >= 2 and breaker.recovered_trips == breaker.trips
    assert set(breaker.final_states.values()) == {"closed"}
    assert figures.injected_failures + figures.organic_failures + figures.refused == figures.locust_failures
    assert figures.injected_failures == figures.injected_applied_total > 0
    assert (figures_of(result).pool.peak_in_use or 0) >= 1
    assert result.collector is not None and result.collector.exact
    for heading in (
        "ops/s",
        "P99",
        "connection pool",
        "peak in use",
        "waits",
        "circuit breaker",
        "closed -> open",
        "half-open -> closed",
        "GRADE:",
    ):
        assert heading in text
    assert not [check for check in result.checks if not check.met and check.critical]


@pytest.mark.slow
def test_job_leaves_other_keys_untouched_and_removes_its_own(redis_url: str, tmp_path: Path) -> None:
    """Keys that existed before (even under the benchmark's prefix) keep their bytes and TTLs; no
    benchmark key remains; without injection the breaker never trips. Runs as a Locust master and
    two workers, which share one key namespace (preloaded and removed by the master)."""
    client = redis.Redis.from_url(redis_url)
    client.set("app:user:1", b"\x00\xffbinary")
    client.set("app:session", "s", px=3_600_000)
    client.hset("app:hash", mapping={"a": "1", "b": "2"})
    client.rpush("app:list", "x", "y")
    client.set("perfsuite:bench:earlier-run:k:1", "someone else's")
    client.set("perfsuite:bench:k:1", "not ours either")
    before = _snapshot(client)
    config = _job_config(redis_url, **{"redis_bench.test_circuit_breaker": False})
    result = run_job(RedisBenchTest(), config, RunOptions(workers=2, state_dir=tmp_path), redis_url)
    after = {key: value for key, value in _snapshot(client).items() if not key.startswith(b"perfsuite:run")}
    assert {key: dump for key, (dump, _) in after.items()} == {key: dump for key, (dump, _) in before.items()}
    for key, (_, expires_at_ms) in before.items():
        if expires_at_ms < 0:
            assert after[key][1] == -1, key
        else:  # the same absolute expiry, up to PTTL's rounding to the millisecond
            assert abs(after[key][1] - expires_at_ms) <= 2, key
    assert count_keys(client, namespace_for("perfsuite:bench:", result.run_id)) == 0
    figures = figures_of(result)
    assert figures.redis.keys_left_behind == 0
    assert figures.breaker.trips == 0
    assert figures.redis.injected_failures == 0
    assert figures.redis.operations_total == 10 * 300
    assert figures.pool.processes == 2
    names = {check.name: check for check in result.checks}
    assert names["circuit breaker never tripped (no faults injected)"].met
    assert names["benchmark keys removed (none left behind)"].met
