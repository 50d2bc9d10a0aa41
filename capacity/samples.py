"""The samples a capacity run recorded, read back: resources (``resources`` marks: the bot's
process, each generator process, the machine) and the bot's health (``sample`` marks from
``bot_health``: connection pool, queue, breaker), summed up over any stretch of the run."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from capacity.figures import GeneratorUsage, Resources
from perfsuite.collect import records
from perfsuite.collector import RunData
from perfsuite.marks import RESOURCES, SAMPLE

BOT_HEALTH = "bot_health"
"""``source`` of the ``sample`` marks holding the bot's /health figures."""
ROLES = ("bot", "generator", "machine")


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


class RunSamples:
    """A run's resource and health samples, for :meth:`resources` over a stretch."""

    def __init__(self, data: RunData) -> None:
        self._resources = [row for row in records(data.marks(RESOURCES)) if row.get("role") in ROLES]
        marks = data.marks(SAMPLE)
        self._health = (
            [row for row in records(marks) if row.get("source") == BOT_HEALTH] if len(marks) else []
        )

    def _rows(self, rows: list[dict[str, Any]], start_s: float, end_s: float) -> list[dict[str, Any]]:
        return [row for row in rows if start_s <= float(row["at"]) < end_s]

    def health(self, start_s: float = -math.inf, end_s: float = math.inf) -> list[dict[str, Any]]:
        """Health samples in ``[start_s, end_s)``, oldest first."""
        return self._rows(self._health, start_s, end_s)

    def queue_depths(self, start_s: float = -math.inf, end_s: float = math.inf) -> list[tuple[float, int]]:
        """``(epoch s, depth)`` of the bot's queue in ``[start_s, end_s)``."""
        out = []
        for row in self.health(start_s, end_s):
            depth = _number(row.get("queue_depth"))
            if depth is not None:
                out.append((float(row["at"]), int(depth)))
        return out

    def pool_peak(self) -> tuple[int | None, int | None]:
        """The pool's bound and the most connections in use: the bot's own peak when it reports one,
        else the highest sample (None, None without pool samples)."""
        bound = peak = None
        for row in self._health:
            bound = _number(row.get("pool_max")) or bound
            for key in ("pool_peak_in_use", "pool_in_use"):
                value = _number(row.get(key))
                if value is not None:
                    peak = value if peak is None else max(peak, value)
        return (None if bound is None else int(bound)), (None if peak is None else int(peak))

    def resources(self, start_s: float = -math.inf, end_s: float = math.inf) -> Resources:
        """Resources over ``[start_s, end_s)``."""
        rows = self._rows(self._resources, start_s, end_s)
        frame = pd.DataFrame(rows)

        def values(role: str, column: str) -> list[float]:
            if not len(frame) or column not in frame.columns:
                return []
            picked = frame.loc[frame["role"] == role, column]
            return [v for v in (_number(x) for x in picked) if v is not None]

        def mean(items: list[float]) -> float | None:
            return sum(items) / len(items) if items else None

        bot_cpu, machine_cpu = values("bot", "cpu_percent"), values("machine", "cpu_percent")
        generators = frame.loc[frame["role"] == "generator", "process"].nunique() if len(frame) else 0
        pool_in_use = [
            v for v in (_number(r.get("pool_in_use")) for r in self.health(start_s, end_s)) if v is not None
        ]
        pool_max = [
            v for v in (_number(r.get("pool_max")) for r in self.health(start_s, end_s)) if v is not None
        ]
        depths = [depth for _, depth in self.queue_depths(start_s, end_s)]
        return Resources(
            bot_cpu_mean_percent=_round(mean(bot_cpu)),
            bot_cpu_max_percent=_round(max(bot_cpu, default=None)),
            bot_rss_max_mb=_round(max(values("bot", "rss_mb"), default=None)),
            generator_processes=int(generators),
            generator_cpu_max_percent=_round(max(values("generator", "cpu_percent"), default=None)),
            generator_lag_max_ms=_round(max(values("generator", "loop_lag_max_ms"), default=None)),
            generator_rss_max_mb=_round(max(values("generator", "rss_mb"), default=None)),
            machine_cpu_mean_percent=_round(mean(machine_cpu)),
            machine_cpu_max_percent=_round(max(machine_cpu, default=None)),
            machine_memory_max_percent=_round(max(values("machine", "memory_percent"), default=None)),
            pool_in_use_max=int(max(pool_in_use)) if pool_in_use else None,
            pool_max=int(max(pool_max)) if pool_max else None,
            queue_depth_max=max(depths) if depths else None,
        )

    def generators(self) -> tuple[GeneratorUsage, ...]:
        """Each generator process over the whole run."""
        by_process: dict[str, list[dict[str, Any]]] = {}
        for row in self._resources:
            if row.get("role") == "generator":
                by_process.setdefault(str(row.get("process")), []).append(row)
        usage = []
        for process, rows in sorted(by_process.items()):
            cpu = [v for v in (_number(row.get("cpu_percent")) for row in rows) if v is not None]
            lag = [v for v in (_number(row.get("loop_lag_max_ms")) for row in rows) if v is not None]
            rss = [v for v in (_number(row.get("rss_mb")) for row in rows) if v is not None]
            usage.append(
                GeneratorUsage(
                    process=process,
                    samples=len(rows),
                    cpu_mean_percent=_round(sum(cpu) / len(cpu)) if cpu else None,
                    cpu_max_percent=_round(max(cpu, default=None)),
                    lag_max_ms=_round(max(lag, default=None)),
                    rss_max_mb=_round(max(rss, default=None)),
                )
            )
        return tuple(usage)

    def generator_saturation(
        self, start_s: float, end_s: float, max_cpu_percent: float, max_lag_ms: float
    ) -> str | None:
        """Why a generator process was saturated over ``[start_s, end_s)`` (in at least half of its
        samples: CPU past ``max_cpu_percent`` or event-loop lag past ``max_lag_ms``); None if none was."""
        by_process: dict[str, list[dict[str, Any]]] = {}
        for row in self._rows(self._resources, start_s, end_s):
            if row.get("role") == "generator":
                by_process.setdefault(str(row.get("process")), []).append(row)
        for process, rows in sorted(by_process.items()):
            cpu = [_number(row.get("cpu_percent")) or 0.0 for row in rows]
            lag = [_number(row.get("loop_lag_max_ms")) or 0.0 for row in rows]
            busy = sum(1 for c, g in zip(cpu, lag, strict=True) if c > max_cpu_percent or g > max_lag_ms)
            if busy * 2 >= len(rows):
                return (
                    f"generator {process}: CPU up to {max(cpu):.0f}% (limit {max_cpu_percent:g}%), "
                    f"event-loop lag up to {max(lag):.0f} ms (limit {max_lag_ms:g} ms) in {busy} of "
                    f"{len(rows)} samples"
                )
        return None


__all__ = ["BOT_HEALTH", "RunSamples"]
