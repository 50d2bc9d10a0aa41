"""The capacity test's rules on plain numbers: SLO verdicts, the knee, the capacity (and when it is only
a lower bound), the early stop, live step figures from Locust's counters, alerts, the load plan, which
fault windows run, and the configuration's checks."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from capacity.alerts import AlertEvaluator, AlertSample, SlidingPercentile, aborts
from capacity.faults import DISABLED, NOT_APPLICABLE, NOT_RUN, resolve, windows_to_run
from capacity.plan import CapacityPlan
from capacity.steps import (
    StatsSnapshot,
    early_stop,
    find_capacity,
    find_knee,
    live_step,
    percentile_of_counts,
    slo_misses,
)
from perfsuite.config import AlertsConfig, CapacitySlo, KneeConfig, SuiteConfig, load_config
from perfsuite.errors import ConfigError
from perfsuite.faults import FaultWindow
from perfsuite.faults.api import start_chaos_proxy

RULE = KneeConfig()


@dataclass(frozen=True)
class S:
    """A step as the rules see it."""

    load: float
    good_rps: float
    p95_ms: float | None
    meets_slo: bool = True
    generator_saturated: bool = False


def test_a_step_meets_the_slos_only_with_answers_fast_enough_and_right_enough() -> None:
    """P95 above the limit, a success rate under it, or no answer at all each miss, with the reason."""
    slo = CapacitySlo(p95_ms=500, success_rate=0.99)
    assert slo_misses(100, 120.0, 1.0, slo) == ()
    assert slo_misses(100, 812.0, 1.0, slo) == ("P95 812 ms > 500 ms",)
    assert slo_misses(100, 120.0, 0.95, slo) == ("success 95.0% < 99%",)
    assert slo_misses(0, None, None, slo) == ("no request answered",)


def test_the_knee_is_where_throughput_stops_following_the_load_while_latency_climbs() -> None:
    """Doubling the load that only adds 20% throughput while P95 triples is the knee; a step whose
    throughput keeps up is not, nor is a latency jump at a few milliseconds (under the floor)."""
    steps = [S(10, 10, 5), S(20, 20, 6), S(40, 39, 9), S(80, 47, 30), S(160, 48, 400)]
    knee = find_knee(steps, RULE)
    assert knee is not None and knee.position == 3
    assert knee.load_growth == pytest.approx(1.0) and knee.throughput_growth == pytest.approx(47 / 39 - 1)
    assert (knee.p95_before_ms, knee.p95_after_ms) == (9, 30)
    assert find_knee([S(10, 10, 2), S(20, 11, 5)], RULE) is None  # 2 -> 5 ms: under the 10 ms floor
    assert find_knee([S(10, 10, 50), S(20, 19, 400)], RULE) is None  # throughput kept up


def test_capacity_is_the_highest_step_held_before_the_first_failure() -> None:
    """Capacity = the last step meeting the SLOs before the first one that misses them; a later
    lucky step does not count; a first step that fails gives 0."""
    steps = [S(10, 10, 5), S(25, 25, 6), S(50, 40, 700, False), S(100, 41, 80)]
    found = find_capacity(steps)
    assert (found.value, found.position, found.first_failing) == (25, 1, 2)
    assert not found.at_least and not found.limited_by_generator
    assert find_capacity([S(10, 3, 900, False)]).value == 0


def test_capacity_limited_by_our_generator_is_a_lower_bound_never_the_bot_s() -> None:
    """When the first failing step saturated our generator, the capacity is 'at least' the last step
    held and limited by the generator; when every step held, it is at least the highest."""
    limited = find_capacity([S(10, 10, 5), S(20, 12, 900, False, True)])
    assert (limited.value, limited.at_least, limited.limited_by_generator) == (10, True, True)
    held = find_capacity([S(10, 10, 5), S(20, 20, 6)])
    assert (held.value, held.at_least, held.limited_by_generator) == (20, True, False)
    busy = find_capacity([S(10, 10, 5), S(20, 20, 6, True, True)])
    assert busy.limited_by_generator and busy.at_least


def test_the_progression_stops_after_two_failing_steps_past_the_knee() -> None:
    """Two failing steps past the knee stop it (so a weak bot is not flattened for minutes); failing
    steps at or before the knee, or one failure only, do not."""
    before_knee = [S(10, 10, 5), S(20, 20, 6), S(40, 22, 600, False), S(80, 23, 900, False)]
    assert early_stop(before_knee, RULE, 2) is None  # the knee is step 3: step 3 is not past it
    past = [*before_knee, S(160, 23, 2000, False)]
    reason = early_stop(past, RULE, 2)
    assert reason is not None and "steps 4, 5" in reason and "knee (step 3)" in reason
    assert early_stop([S(10, 10, 5), S(20, 20, 700, False)], RULE, 2) is None
    no_knee = [S(10, 10, 700, False), S(20, 20, 710, False)]  # slow but scaling: past the capacity
    assert "past the capacity" in (early_stop(no_knee, RULE, 2) or "")


def test_a_live_step_is_judged_from_locust_s_counters_between_two_snapshots() -> None:
    """Requests, failures and response times between the step's snapshots give its throughput,
    success rate and P95, as the collector's figures do after the run."""
    before = StatsSnapshot(100.0, 50, 1, {10: 49, 20: 1})
    after = StatsSnapshot(110.0, 150, 3, {10: 139, 20: 1, 900: 10})
    step = live_step(2, 25, before, after, CapacitySlo(p95_ms=500, success_rate=0.99))
    assert step.requests == 100 and step.good_rps == pytest.approx(9.8)
    assert step.success_rate == pytest.approx(0.98) and step.p95_ms == 900
    assert not step.meets_slo and len(step.misses) == 2
    assert percentile_of_counts({}, 95) is None
    assert percentile_of_counts({1: 95, 100: 5}, 95) == 1 and percentile_of_counts({1: 94, 100: 6}, 95) == 100


def test_alerts_fire_once_when_a_limit_is_passed_and_clear_when_back() -> None:
    """P95 past 1 s warns, past 3 s is critical; CPU alerts use the window's mean; each rule fires
    once while it stays over its limit and clears when back; --abort-on picks what stops a run."""
    evaluator = AlertEvaluator(AlertsConfig(window_s=10, cpu_percent=80, pool_utilization=0.8))
    first = evaluator.observe(AlertSample(0, p95_ms=200, machine_cpu_percent=90))
    assert [e.rule.key for e in first] == ["machine_cpu:warning"]
    fired = evaluator.observe(AlertSample(1, p95_ms=3500, machine_cpu_percent=90, pool_utilization=0.9))
    assert sorted(e.rule.key for e in fired) == ["p95:critical", "p95:warning", "pool:warning"]
    assert all(e.fired for e in fired)
    assert evaluator.observe(AlertSample(2, p95_ms=3400, machine_cpu_percent=90, pool_utilization=0.9)) == []
    cleared = evaluator.observe(AlertSample(3, p95_ms=100, machine_cpu_percent=0, pool_utilization=0.1))
    assert {e.rule.key for e in cleared} == {
        "machine_cpu:warning",
        "p95:critical",
        "p95:warning",
        "pool:warning",
    }
    assert not any(e.fired for e in cleared) and not evaluator.active  # CPU: mean of 90, 90, 90, 0
    message = fired[0].message(42)
    assert message.startswith("ALERT") and "(+42 s)" in message
    assert (
        aborts("critical", "critical") and aborts("critical", "warning") and not aborts("warning", "critical")
    )
    assert not aborts("critical", None)


def test_the_sliding_p95_covers_only_the_last_window() -> None:
    """Locust's cumulative counters become the P95 of the requests answered in the last window_s."""
    sliding = SlidingPercentile(window_s=10)
    assert sliding.add(StatsSnapshot(0, 100, 0, {5000: 100})) == 5000
    assert sliding.add(StatsSnapshot(5, 200, 0, {5000: 100, 10: 100})) == 10
    assert sliding.add(StatsSnapshot(16, 300, 0, {5000: 100, 10: 100, 20: 100})) == 20


def _config(**overrides: object) -> SuiteConfig:
    return load_config(None, "smoke", dict(overrides))


def test_the_plan_puts_the_outage_phase_first_then_the_steps() -> None:
    """The outage phase lasts until the last window healed plus the recovery watch, at the first
    step's load; the steps follow; without a window the steps start at once."""
    config = _config()
    plan = CapacityPlan.from_config(config, config.faults)
    assert plan.outage_s == 4 + 4 + 6 and plan.outage_load == 5
    assert [(s.index, s.load, s.start_s) for s in plan.steps] == [(1, 5, 14), (2, 15, 18), (3, 40, 22)]
    assert plan.total_s == 26 and plan.load_at(3) == 5 and plan.load_at(19) == 15 and plan.load_at(30) is None
    assert CapacityPlan.from_config(config, ()).steps[0].start_s == 0
    open_model = CapacityPlan.from_config(_config(**{"capacity.rate_steps_per_s": [5, 10]}), ())
    assert open_model.model == "open" and open_model.unit == "req/s"


def test_the_seed_flags_and_the_topology_decide_which_windows_run() -> None:
    """enable_database_failure false disables database windows; a database window against a SQLite
    demo bot is not applicable; a redis window on the embedded topology runs on its proxy."""
    windows = [
        {"name": "r", "at_s": 5, "duration_s": 2, "driver": "proxy", "target": "redis"},
        {"name": "d", "at_s": 10, "duration_s": 2, "driver": "proxy", "target": "database"},
    ]
    config = _config(faults=windows)
    found = resolve(
        config, embedded_api_url="http://127.0.0.1:1", embedded_proxies=("redis",), database="sqlite"
    )
    assert [w.name for w in found.run] == ["r"] and found.run[0].api_url == "http://127.0.0.1:1"
    assert [(s.window.name, s.status) for s in found.skipped] == [("d", NOT_APPLICABLE)]
    assert "SQLite" in found.skipped[0].reason
    off = resolve(
        _config(faults=windows, **{"capacity.enable_database_failure": False}),
        embedded_api_url="http://127.0.0.1:1",
        embedded_proxies=("redis", "database"),
        database="postgresql",
    )
    assert [w.name for w in off.run] == ["r"] and off.skipped[0].status == DISABLED
    env = found.env("http://127.0.0.1:1", None)
    assert [w.name for w in windows_to_run(config, env)] == ["r"]
    assert windows_to_run(config, env)[0].api_url == "http://127.0.0.1:1"


def test_a_users_own_fault_proxy_must_hold_the_named_proxy(tmp_path: object) -> None:
    """For a user's bot, a proxy window runs only when its api_url answers and has a proxy named like
    its target; otherwise it is reported as not run, with the reason."""
    proxy = start_chaos_proxy(proxies=("redis=127.0.0.1:0=127.0.0.1:1",))
    try:
        own = {"duration_s": 2, "driver": "proxy", "api_url": proxy.url}
        windows = [
            {**own, "name": "r", "at_s": 5, "target": "redis"},
            {**own, "name": "x", "at_s": 9, "target": "kafka"},
            {**own, "name": "gone", "at_s": 12, "target": "redis", "api_url": "http://127.0.0.1:9"},
        ]
        found = resolve(_config(faults=windows), embedded_api_url=None)
    finally:
        proxy.stop()
    assert [w.name for w in found.run] == ["r"]
    reasons = {s.window.name: (s.status, s.reason) for s in found.skipped}
    assert reasons["x"][0] == NOT_RUN and "no proxy named 'kafka'" in reasons["x"][1]
    assert reasons["gone"][0] == NOT_RUN and "no fault proxy answers" in reasons["gone"][1]


def test_windows_without_api_url_use_the_environments_fault_proxy_for_a_users_bot() -> None:
    """PERFSUITE_CHAOS_API_URL (docker-compose's chaos-proxy service) is where a user's bot's proxy
    windows that name no api_url act, at preflight as in the Locust processes; a window naming its
    own api_url keeps it."""
    proxy = start_chaos_proxy(proxies=("redis=127.0.0.1:0=127.0.0.1:1",))
    try:
        windows = [
            {"name": "r", "at_s": 5, "duration_s": 2, "driver": "proxy", "target": "redis"},
            {"name": "own", "at_s": 9, "duration_s": 2, "driver": "proxy", "target": "redis"},
        ]
        windows[1]["api_url"] = "http://127.0.0.1:9"
        config = _config(faults=windows)
        found = resolve(config, embedded_api_url=None, default_api_url=proxy.url + "/")
    finally:
        proxy.stop()
    assert [w.name for w in found.run] == ["r"] and found.run[0].api_url == proxy.url
    assert [s.window.name for s in found.skipped] == ["own"]
    in_locust = windows_to_run(config, {"PERFSUITE_CHAOS_API_URL": proxy.url})
    assert [w.api_url for w in in_locust] == [proxy.url, "http://127.0.0.1:9"]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"capacity.load_ramp_steps": [10, 5]}, "capacity.load_ramp_steps"),
        ({"capacity.load_ramp_steps": [10, 600]}, "max_concurrent_requests"),
        ({"capacity.alerts.p95_critical_ms": 100}, "p95_critical_ms"),
        ({"capacity.abort_on": "sometimes"}, "capacity.abort_on"),
        ({"faults": [{"at_s": 0.5, "duration_s": 1, "driver": "proxy", "target": "redis"}]}, "faults"),
        (
            {
                "faults": [
                    {"at_s": 5, "duration_s": 10, "driver": "proxy", "target": "redis"},
                    {"at_s": 8, "duration_s": 1, "driver": "proxy", "target": "redis"},
                ]
            },
            "overlap",
        ),
    ],
)
def test_bad_capacity_settings_are_refused_with_their_key_path(
    overrides: dict[str, object], named: str
) -> None:
    """Decreasing steps, steps beyond max_concurrent_requests, a critical limit under the warning one, an
    unknown abort_on, a fault with no pre-fault reference, overlapping windows: refused at load."""
    with pytest.raises(ConfigError) as raised:
        _config(**overrides)
    assert named in str(raised.value)


def test_fault_commands_are_redacted_in_the_stored_snapshot() -> None:
    """A shell window's password never reaches the configuration snapshot stored with each run."""
    window = {
        "at_s": 5,
        "duration_s": 1,
        "driver": "shell",
        "target": "database",
        "inject": "PGPASSWORD=hunter2 pg_ctl stop",
        "heal": "pg_ctl start --password hunter2",
    }
    snapshot = _config(faults=[window]).snapshot()
    assert "hunter2" not in str(snapshot)
    assert snapshot["faults"][0]["inject"].startswith("PGPASSWORD=***")
    assert isinstance(_config(faults=[window]).faults[0], FaultWindow)


def test_a_proxy_left_broken_by_a_killed_locust_is_healed_by_the_job() -> None:
    """When Locust ends badly (timeout, crash), the job heals every proxy window itself: a user's own
    fault proxy is never left with their dependency cut off."""
    from capacity.faults import Resolution
    from capacity.job import heal_after_a_broken_run
    from perfsuite.faults import ToxiproxyClient

    proxy = start_chaos_proxy(proxies=("redis=127.0.0.1:0=127.0.0.1:1",))
    try:
        client = ToxiproxyClient(proxy.url)
        client.set_enabled("redis", False)
        window = FaultWindow(at_s=5, duration_s=1, driver="proxy", target="redis", api_url=proxy.url)
        heal_after_a_broken_run(Resolution(run=(window,), skipped=()))
        assert client.proxy("redis").enabled
    finally:
        proxy.stop()


def test_a_queue_growing_faster_than_the_bot_works_misses_when_the_slo_asks() -> None:
    """With slo.max_backlog_growth, a step whose queue grew by more than that share of its answers
    per second is not held (the bot acks faster than it works); without it, or with no queue known,
    the queue is not judged."""
    from capacity.steps import queue_growth

    growth = queue_growth([(0.0, 0), (1.0, 60), (2.0, 120), (3.0, 180)])
    assert growth == pytest.approx(60)
    strict = CapacitySlo(p95_ms=500, success_rate=0.99, max_backlog_growth=0.05)
    misses = slo_misses(1000, 40.0, 1.0, strict, good_rps=200, queue_growth_per_s=growth)
    assert len(misses) == 1 and "queue grows 60/s" in misses[0]
    assert slo_misses(1000, 40.0, 1.0, strict, good_rps=200, queue_growth_per_s=5) == ()
    assert slo_misses(1000, 40.0, 1.0, strict, good_rps=200, queue_growth_per_s=None) == ()
    assert slo_misses(1000, 40.0, 1.0, CapacitySlo(), good_rps=200, queue_growth_per_s=growth) == ()
    assert queue_growth([(0.0, 5)]) is None


def test_abort_on_on_the_command_line_sets_capacity_abort_on() -> None:
    """`perfsuite run --abort-on critical` is capacity.abort_on; `perfsuite run` alone runs all."""
    from perfsuite.cli import build_parser, overrides_from

    args = build_parser().parse_args(["run", "--abort-on", "critical"])
    assert overrides_from(args)["capacity.abort_on"] == "critical" and args.test_type == "all"
    assert "capacity.abort_on" not in overrides_from(build_parser().parse_args(["run"]))
