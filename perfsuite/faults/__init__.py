"""Faults: make a dependency (Redis, PostgreSQL) really fail during a load test, then heal it.

Drivers (``inject`` / ``heal`` / ``describe``): :class:`ProxyOutage` and :class:`ProxyToxic` act
through the fault proxy's Toxiproxy-compatible API (:class:`ToxiproxyClient`), :class:`RedisPause`
through ``CLIENT PAUSE``, :class:`ShellCommand` through the user's own command lines.
:class:`FaultWindow` is one scheduled fault as scenarios.yaml holds it, :func:`driver_for` its
driver, and :class:`FaultScheduler` runs the windows and records ``fault_start``/``fault_end`` marks.

The fault proxy server itself (``perfsuite chaos-proxy``, ``python -m perfsuite.faults``) lives in
:mod:`perfsuite.faults.api` and :mod:`perfsuite.faults.proxy`; they are not imported here, so that
importing this package never loads gevent's server modules.
"""

from __future__ import annotations

from perfsuite.faults.client import DEFAULT_API_URL, ProxyState, ToxicState, ToxiproxyClient
from perfsuite.faults.drivers import FaultDriver, ProxyOutage, ProxyToxic, RedisPause, ShellCommand
from perfsuite.faults.errors import ApiError, FaultError
from perfsuite.faults.schedule import (
    FAULT_END,
    FAULT_START,
    FaultSchedule,
    FaultScheduler,
    FaultWindow,
    ToxicSpec,
    driver_for,
)

__all__ = [
    "DEFAULT_API_URL",
    "FAULT_END",
    "FAULT_START",
    "ApiError",
    "FaultDriver",
    "FaultError",
    "FaultSchedule",
    "FaultScheduler",
    "FaultWindow",
    "ProxyOutage",
    "ProxyState",
    "ProxyToxic",
    "RedisPause",
    "ShellCommand",
    "ToxicSpec",
    "ToxicState",
    "ToxiproxyClient",
    "driver_for",
]
