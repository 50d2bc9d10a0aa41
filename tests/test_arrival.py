"""Arrival schedules, arrival counts, generator-saturation verdicts and the latency section, in-process
(no Locust: these are the pure parts the Locust driver and the webhook job are built on)."""

from __future__ import annotations

import math
import random
import time

import gevent
import numpy as np
import pytest

from perfsuite.arrival import ArrivalCounts, ArrivalPlan
from perfsuite.collector import LatencyHistogram
from perfsuite.config import load_config
from perfsuite.errors import ConfigError
from perfsuite.report import render_section
from perfsuite.saturation import GeneratorFigures, GeneratorSample, SaturationMonitor, assess, merge_reports
from webhook_load.figures import Generator, Latency, Percentiles
from webhook_load.report import latency_section


def test_uniform_constant_rate_is_evenly_spaced_and_exact() -> None:
    """200/s for 20 s, uniform: exactly 4,000 arrivals, 5 ms apart, the first at 0, all before 20 s."""
    offsets = list(ArrivalPlan(200, 20, distribution="uniform").offsets())
    assert len(offsets) == 4000
    assert offsets[0] == 0.0 and offsets[-1] < 20.0
    assert np.allclose(np.diff(offsets), 0.005)


def test_uniform_split_among_processes_adds_up_to_the_whole_schedule() -> None:
    """Three workers each take every third arrival: together they send exactly the planned schedule,
    none twice, and their shares differ by at most one arrival."""
    plan = ArrivalPlan(100, 10, ramp_to_rate_per_s=300, distribution="uniform")
    whole = list(plan.offsets())
    shares = [list(plan.offsets(slot, 3)) for slot in range(3)]
    assert sorted(x for share in shares for x in share) == whole
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert len(whole) == math.ceil(plan.expected_arrivals) == 2000


def test_ramp_follows_the_rate_integral() -> None:
    """A linear ramp 50/s -> 150/s over 10 s: 250 arrivals in the first half, 750 in the second."""
    plan = ArrivalPlan(50, 10, ramp_to_rate_per_s=150, distribution="uniform")
    offsets = np.asarray(list(plan.offsets()))
    assert len(offsets) == 1000
    assert abs(int((offsets < 5).sum()) - 375) <= 1  # 50*5 + 20*5²/2 = 375
    assert plan.rate_at(0) == 50 and plan.rate_at(5) == 100 and plan.rate_at(10) == 0
    for k in (1.0, 10.0, 999.0):
        assert plan.arrivals_until(plan.offset_of(k)) == pytest.approx(k)


def test_ramp_down_keeps_every_offset_inside_the_run() -> None:
    """A falling rate (300/s -> 10/s) still yields ascending offsets within [0, duration)."""
    plan = ArrivalPlan(300, 4, ramp_to_rate_per_s=10, distribution="uniform")
    offsets = list(plan.offsets())
    assert offsets == sorted(offsets) and offsets[0] >= 0 and offsets[-1] < 4
    assert len(offsets) == math.ceil(plan.expected_arrivals)


def test_poisson_has_the_planned_count_and_exponential_gaps() -> None:
    """Poisson at 1,000/s for 20 s: about 20,000 arrivals, gaps with mean and standard deviation both
    near 1 ms (exponential), and two worker shares that add up to the rate."""
    plan = ArrivalPlan(1000, 20)
    offsets = np.asarray(list(plan.offsets(rng=random.Random(7))))
    assert abs(len(offsets) - 20_000) < 5 * math.sqrt(20_000)
    gaps = np.diff(offsets)
    assert gaps.mean() == pytest.approx(0.001, rel=0.03)
    assert gaps.std() == pytest.approx(0.001, rel=0.05)
    halves = [len(list(plan.offsets(slot, 2, random.Random(slot)))) for slot in range(2)]
    assert abs(sum(halves) - 20_000) < 5 * math.sqrt(20_000)


def test_bad_plans_and_slots_are_refused_by_name() -> None:
    """Nonsense rates and slots raise ConfigError naming the key."""
    with pytest.raises(ConfigError, match=r"arrival\.rate_per_s"):
        ArrivalPlan(0, 10)
    with pytest.raises(ConfigError, match=r"arrival\.distribution"):
        ArrivalPlan(10, 10, distribution="bursty")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="slot"):
        list(ArrivalPlan(10, 10).offsets(2, 2))
    with pytest.raises(ConfigError, match=r"arrival\.rate_per_s"):
        ArrivalPlan.from_config(load_config().arrival)  # null rate: closed model


def test_plan_from_the_configuration_and_command_line_overrides() -> None:
    """--arrival-rate/--run-time (arrival.rate_per_s/duration_s) become the plan; max_waiting is validated."""
    config = load_config(overrides={"arrival.rate_per_s": 200, "arrival.duration_s": 20})
    plan = ArrivalPlan.from_config(config.arrival)
    assert (plan.rate_per_s, plan.duration_s, plan.distribution) == (200, 20, "poisson")
    with pytest.raises(ConfigError, match=r"arrival\.max_waiting"):
        load_config(overrides={"arrival.max_waiting": -1})


def test_arrival_counts_travel_through_mark_fields_and_add_up() -> None:
    """Two processes' counts, written as mark fields and read back, merge into the run's totals."""
    first = ArrivalCounts(scheduled=10, sent=9, late=2, waited=1, dropped=1, max_in_flight=4)
    first.schedule_lag.record(1500)
    second = ArrivalCounts(scheduled=5, sent=5, unsent=0, max_in_flight=3)
    second.schedule_lag.record(250)
    total = ArrivalCounts(processes=0)
    for counts in (first, second):
        fields = {k: float(v) if isinstance(v, int) else v for k, v in counts.to_fields().items()}
        total.merge(ArrivalCounts.from_fields(fields))  # pandas hands integers back as floats
    assert (total.scheduled, total.sent, total.late, total.dropped, total.processes) == (15, 14, 2, 1, 2)
    assert total.max_in_flight == 7 and total.schedule_lag.count == 2
    assert total.schedule_lag.max_us >= 1500


def test_closed_model_correction_is_hdr_expected_interval_correction() -> None:
    """The post-hoc correction of a merged histogram equals recording each value with HdrHistogram's
    expected-interval correction: a 1.05 s response with a 100 ms pacing also counts 950, 850 ... 50 ms."""
    values_us = [20_000] * 98 + [1_050_000, 450_000]
    measured = LatencyHistogram()
    measured.record_many(values_us)
    reference = LatencyHistogram()
    for value in values_us:
        reference.record_corrected(value, 100_000)
    corrected = measured.corrected_copy(100_000)
    assert corrected.count == reference.count == 100 + 10 + 4
    for percentile in (50, 90, 99, 99.9):  # the same within HDR's 3-digit precision
        assert corrected.percentile_us(percentile) == pytest.approx(
            reference.percentile_us(percentile), rel=1e-3
        )
    assert measured.percentile_us(99) < 460_000 and corrected.percentile_us(99) > 940_000


def test_monitor_sees_a_blocked_event_loop_and_busy_cpu() -> None:
    """A greenlet that blocks the loop for 80 ms shows as event-loop lag; a busy loop shows as CPU over a
    low limit (5%: a process busy on a machine whose other tests take most of both cores still gets
    more than that, an idle one far less); sampling itself never blocks (the whole check takes well
    under two seconds)."""
    samples: list[GeneratorSample] = []
    monitor = SaturationMonitor(
        max_cpu_percent=5, sample_interval_s=0.2, tick_s=0.01, on_sample=samples.append
    )
    started = time.monotonic()
    monitor.start()
    gevent.sleep(0.05)
    gevent.spawn(time.sleep, 0.08).join()  # blocks the event loop
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # CPU-bound, yielding now and then
        sum(range(10_000))
        gevent.sleep(0)
    report = monitor.stop()
    assert time.monotonic() - started < 2
    assert report.loop_lag.max_us >= 70_000
    assert report.samples >= 2 and len(samples) == report.samples
    assert report.cpu_over_samples >= 1 and report.cpu_max_percent > 5
    figures = merge_reports([report.to_fields()])
    assert figures is not None and figures.loop_lag_max_ms >= 70


def test_trust_verdict_names_every_reason() -> None:
    """CPU over the limit, loop or scheduling lag over the bound, drops and unsent arrivals each make the
    latency untrustworthy with a reason a person can act on; a calm generator is trustworthy."""
    calm = GeneratorFigures(1, 20, 35.0, 0, 0.8, 3.0)
    assert assess(calm, max_cpu_percent=90, max_lag_ms=10).trustworthy
    busy = GeneratorFigures(2, 40, 97.0, 3, 14.0, 40.0)
    verdict = assess(busy, max_cpu_percent=90, max_lag_ms=10, schedule_lag_p99_ms=12.5, dropped=7, unsent=2)
    assert not verdict.trustworthy
    text = " | ".join(verdict.reasons)
    fragments = ("CPU reached 97%", "event-loop lag P99 14.0 ms", "scheduling lag 12.5 ms")
    for fragment in (*fragments, "7 arrivals dropped", "2 arrivals were still waiting"):
        assert fragment in text
    assert not assess(None, max_cpu_percent=90, max_lag_ms=10).trustworthy


def test_latency_report_shows_corrected_uncorrected_and_the_verdict() -> None:
    """The report section prints both rows with 3-significant-digit figures and the reasons."""
    histogram = LatencyHistogram()
    histogram.record_many([1234_567] * 10 + [50_321] * 990)
    latency = Latency(
        model="open",
        correction="intended-start",
        corrected_scope="every request, from its intended start",
        corrected=Percentiles.of(histogram),
        uncorrected=Percentiles.of(histogram),
        trustworthy=False,
        untrustworthy_reasons=("generator CPU reached 97%",),
        generator=Generator(max_cpu_percent=90, max_lag_ms=10),
    )
    text = "\n".join(render_section(latency_section(latency, None)))
    assert "corrected: from the intended start" in text and "uncorrected: from the actual send" in text
    assert "50.3" in text and "1,234.9" in text  # not rounded to 50 / 1,200 as Locust's tables are
    assert "UNTRUSTWORTHY" in text and "generator CPU reached 97%" in text
