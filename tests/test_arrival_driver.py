"""The open model's driver in-process (plain gevent, no Locust): what becomes of every arrival.

The sends here are stand-ins (a gevent sleep, a raise, a request that never ends); the counts are
what ``perfsuite run --arrival-rate`` reports and judges the run by.
"""

from __future__ import annotations

from typing import Any

import gevent
import pytest

from locustfiles.arrival_driver import ArrivalDriver, ArrivalSettings
from perfsuite.arrival import DROPS_MARK, ArrivalPlan


class Recorder:
    """A send that records which intended time it got, in which greenlet, then takes ``service_s``."""

    def __init__(self, service_s: float) -> None:
        self.service_s = service_s
        self.intended: list[float] = []
        self.greenlets: set[int] = set()

    def __call__(self, intended_at: float) -> None:
        self.intended.append(intended_at)
        self.greenlets.add(id(gevent.getcurrent()))
        gevent.sleep(self.service_s)


def settings(rate_per_s: float, duration_s: float, **bounds: Any) -> ArrivalSettings:
    """Uniform arrivals at ``rate_per_s`` for ``duration_s`` with the given pool bounds."""
    return ArrivalSettings(ArrivalPlan(rate_per_s, duration_s, distribution="uniform"), **bounds)


def test_every_arrival_is_sent_once_in_order_by_a_bounded_set_of_senders() -> None:
    """400/s for 0.5 s with a 5 ms service time: all 200 arrivals are sent, each once, in the order
    of their intended times, from at most as many sender greenlets as were ever busy at once (no
    greenlet per arrival); nothing waits, drops or is left over."""
    config = settings(400, 0.5)
    send = Recorder(0.005)
    driver = ArrivalDriver(config.plan.offsets(), send, config)
    counts = driver.run()
    assert counts.scheduled == counts.sent == len(send.intended) == 200
    assert (counts.waited, counts.dropped, counts.unsent, counts.abandoned, counts.errors) == (0, 0, 0, 0, 0)
    assert send.intended == sorted(send.intended) and len(set(send.intended)) == 200
    assert len(send.greenlets) == driver.senders <= counts.max_in_flight <= config.max_concurrency
    assert driver.in_flight == driver.waiting == 0
    assert counts.schedule_lag.count == 200


def test_a_full_pool_queues_in_order_then_drops_and_marks_the_drops() -> None:
    """100/s for 0.3 s at a 50 ms target through 2 slots and a queue of 3 (at most 40/s get through):
    arrivals wait (and start late), the rest are dropped, every scheduled arrival is sent, dropped or
    unsent, waiting ones start oldest first, and the drop marks add up to the drops."""
    config = settings(100, 0.3, max_concurrency=2, max_waiting=3)
    send = Recorder(0.05)
    marks: list[tuple[str, dict[str, Any]]] = []
    driver = ArrivalDriver(
        config.plan.offsets(), send, config, mark=lambda kind, **fields: marks.append((kind, fields))
    )
    counts = driver.run()
    assert counts.scheduled == 30
    assert counts.sent + counts.dropped + counts.unsent == 30 and counts.sent == len(send.intended)
    assert counts.max_in_flight == 2 and counts.max_waiting == 3 and driver.senders == 2
    assert counts.dropped > 0 and counts.waited > 0 and counts.late > 0
    assert send.intended == sorted(send.intended)
    assert all(kind == DROPS_MARK for kind, _ in marks)
    assert sum(fields["dropped"] for _, fields in marks) == counts.dropped


def test_stopping_counts_waiting_arrivals_as_unsent_and_requests_in_flight_as_abandoned() -> None:
    """Requests that never end, 2 slots: after the drain time the 2 in flight are abandoned (and their
    greenlets killed), the 3 still waiting are unsent; none was dropped."""
    config = settings(100, 0.05, max_concurrency=2, max_waiting=10, drain_timeout_s=0.2)
    send = Recorder(60.0)
    driver = ArrivalDriver(config.plan.offsets(), send, config)
    counts = driver.run()
    assert (counts.scheduled, counts.sent, counts.abandoned, counts.unsent, counts.dropped) == (5, 2, 2, 3, 0)
    assert counts.waited == 3


def test_a_raising_send_is_counted_and_the_driver_goes_on() -> None:
    """A send that raises on every other arrival: each raise counts as an error, and every arrival is
    still sent."""
    calls: list[float] = []

    def flaky(intended_at: float) -> None:
        calls.append(intended_at)
        if len(calls) % 2 == 0:
            raise RuntimeError("sender bug")

    config = settings(200, 0.1)
    counts = ArrivalDriver(config.plan.offsets(), flaky, config).run()
    assert counts.sent == counts.scheduled == len(calls) == 20
    assert counts.errors == 10


@pytest.mark.parametrize("rate_per_s", [50.0, 2000.0])
def test_senders_are_reused_at_any_rate(rate_per_s: float) -> None:
    """At a low and a high rate, with a near-instant target, the arrivals are served by a handful of
    long-lived senders, never one greenlet each."""
    config = settings(rate_per_s, 0.2)
    send = Recorder(0.0)
    driver = ArrivalDriver(config.plan.offsets(), send, config)
    counts = driver.run()
    assert counts.sent == counts.scheduled == round(rate_per_s * 0.2)
    assert driver.senders <= counts.max_in_flight
    assert driver.senders < counts.sent / 4
