"""After the load stops, watch the bot's backlog drain (a bot that acks fast but piles up work is not
healthy: the seed's suite reported success while the queue grew for half an hour).

The backlog is read where the bot really keeps it (``target.backlog``, :class:`BacklogConfig`), any
combination of:

- ``redis``: keys in the bot's own Redis (its URL is a secret, read from the environment variable
  that ``url_env`` names): ``list`` (LLEN), ``stream`` (XLEN), ``zset`` (ZCARD), ``set`` (SCARD),
  ``pending`` (XPENDING: delivered to a consumer group, not acknowledged) and ``lag`` (entries the
  group was not given yet); list, stream, zset and set keys may be glob patterns (bounded SCAN);
- ``prometheus``: a metric of the bot's text exposition with label matchers
  (``celery_queue_length{queue="default"}``), matching samples summed;
- ``health``: the bot's JSON health endpoint (``queue.depth``, ``queue_depth`` or ``backlog``, or a
  dotted ``path``). With no source configured the target's health URL is read this way, as before.

The depth is the sum of the sources; each one's own depth is kept. :func:`watch_backlog` reads it
when the load stops, then polls until it is 0 or the drain timeout passes, fits the drain rate and,
when the backlog did not drain, estimates how long it still needs. A source that cannot be read is
reported with its reason (secrets redacted), never dropped; with no readable source the backlog is
"unknown" (``supported=False`` and a ``reason``). When the bot runs on this machine its CPU is
sampled over the same watch (:mod:`perfsuite.activity`): a bot busy long after the run has hidden work.

Modules: ``config`` (the models under ``target.backlog``), ``sources`` (the readers),
``prometheus`` (the text format), ``watch`` (the polling), ``result`` (:class:`Backlog` and its
report lines).
"""

from __future__ import annotations

from perfsuite.activity import Activity, ProcessConfig, find_process
from perfsuite.backlog.config import BacklogConfig, HealthSource, PrometheusSource, RedisKey, RedisSource
from perfsuite.backlog.prometheus import Selector, parse_exposition, parse_selector
from perfsuite.backlog.result import UNKNOWN, Backlog, SourceDepth, describe_backlog, human_duration
from perfsuite.backlog.sources import DEFAULT_HEALTH_PATHS, json_path_value, queue_depth
from perfsuite.backlog.watch import drain_rate, preflight_backlog, watch_backlog

__all__ = [
    "DEFAULT_HEALTH_PATHS",
    "UNKNOWN",
    "Activity",
    "Backlog",
    "BacklogConfig",
    "HealthSource",
    "ProcessConfig",
    "PrometheusSource",
    "RedisKey",
    "RedisSource",
    "Selector",
    "SourceDepth",
    "describe_backlog",
    "drain_rate",
    "find_process",
    "human_duration",
    "json_path_value",
    "parse_exposition",
    "parse_selector",
    "preflight_backlog",
    "queue_depth",
    "watch_backlog",
]
