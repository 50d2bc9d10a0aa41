"""The collector: every Locust process records every request into Redis; readers load runs back.

Writing: ``CollectorWriter`` (one per process; ``perfsuite.collector.locust_plugin.install`` wires it
to Locust's events). Runs: ``new_run_id``, ``create_run``, ``finish_run``. Reading:
``CollectorReader`` -> ``RunData`` (pandas frames); ``load_spilled`` reads a run from the files its
writers left while Redis was away, ``replay_spill`` writes them to Redis. Key layout:
``perfsuite.collector.keys``.

The Locust plugin is not imported here (importing locust monkey-patches the process): use
``from perfsuite.collector import locust_plugin``.
"""

from __future__ import annotations

from perfsuite.collector.batch import OUTCOMES
from perfsuite.collector.histogram import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS, LatencyHistogram
from perfsuite.collector.histogram_table import GroupStats, HistogramTable
from perfsuite.collector.keys import DEFAULT_PREFIX, DEFAULT_RETENTION_S
from perfsuite.collector.reader import (
    FROM_REDIS,
    FROM_SPILL,
    TOTAL_NAME,
    CollectorReader,
    RunData,
    load_spilled,
    unclosed_writer_problem,
)
from perfsuite.collector.runs import (
    RUN_STATUSES,
    create_run,
    finish_run,
    new_run_id,
    update_run,
    update_run_or_spill,
)
from perfsuite.collector.spill import ReplayResult, replay_spill
from perfsuite.collector.writer import DEFAULT_SPILL_DIR, CollectorWriter, default_writer_id

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_RETENTION_S",
    "DEFAULT_SPILL_DIR",
    "FROM_REDIS",
    "FROM_SPILL",
    "HIGHEST_US",
    "LOWEST_US",
    "OUTCOMES",
    "RUN_STATUSES",
    "SIGNIFICANT_DIGITS",
    "TOTAL_NAME",
    "CollectorReader",
    "CollectorWriter",
    "GroupStats",
    "HistogramTable",
    "LatencyHistogram",
    "ReplayResult",
    "RunData",
    "create_run",
    "default_writer_id",
    "finish_run",
    "load_spilled",
    "new_run_id",
    "replay_spill",
    "unclosed_writer_problem",
    "update_run",
    "update_run_or_spill",
]
