"""``perfsuite ab`` (test type ``ab``): is build B slower than build A? An interleaved comparison.

One open-model message stream at ``ab.rate_per_s`` goes to both targets at once, each pair of
arrivals split between them in random order (``locustfiles/ab.py``); the collector keeps each side's
rows apart; :mod:`abtest.comparison` pairs them second by second and decides with an always-valid
sequential test, which :mod:`abtest.watch` also runs while the load goes, ending it once the answer
is clear. Preflight: both targets must answer (``--host-a``/``target.host`` with TWILIO_AUTH_TOKEN,
``--host-b``/``ab.host_b`` with TWILIO_AUTH_TOKEN_B or the same token); with neither given, two
embedded demo bots of the same build are compared (an A/A comparison: it should find no difference).

Checks: B not slower than A on the decided statistic (critical: "slower" is the regression exit
code, 1 or 2), on the other statistics (information), both targets answering as intended, and that
the comparison reached a verdict.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, SecretStr

from abtest.comparison import INCONCLUSIVE, LABELS, SLOWER, AbFigures, compare_sides
from abtest.report import ab_sections
from abtest.watch import Watcher, watching
from perfsuite.collect import Collected
from perfsuite.config import SuiteConfig
from perfsuite.errors import ConfigError
from perfsuite.grading import Check
from perfsuite.jobs import Prepared, RunOptions, TestType
from perfsuite.launcher import LOCUSTFILES, LocustOutcome
from perfsuite.result import RunResult, Target
from perfsuite.sections import Section
from perfsuite.services import Target as BotTarget
from perfsuite.services import resolve_target

MISSED_BY_FAR = 0.5
"""A side answering under this share as intended makes the comparison POOR."""


@dataclass(slots=True)
class AbContext:
    """Preflight's two targets, and the watcher of the run."""

    a: BotTarget
    b: BotTarget
    watcher: Watcher | None = field(default=None)


def figures_of(result: RunResult) -> AbFigures:
    """The comparison figures of ``result`` (empty ones when it has none)."""
    return result.figures if isinstance(result.figures, AbFigures) else AbFigures()


def _with_token(config: SuiteConfig, token: SecretStr | None) -> SuiteConfig:
    return config.model_copy(
        update={"secrets": config.secrets.model_copy(update={"twilio_auth_token": token})}
    )


class AbTest(TestType):
    """Two targets, one interleaved message stream: B against A, slice by slice."""

    name: ClassVar[str] = "ab"
    title: ClassVar[str] = "interleaved A/B comparison (is B slower than A?)"
    order: ClassVar[int] = 90
    in_all: ClassVar[bool] = False
    locustfile = LOCUSTFILES / "ab.py"
    figures_model: ClassVar[type[BaseModel]] = AbFigures

    def prepare(self, config: SuiteConfig, stack: contextlib.ExitStack, options: RunOptions) -> Prepared:
        host_a = options.host or config.target.host
        host_b = config.ab.host_b
        if bool(host_a) != bool(host_b):
            missing = "--host-b (ab.host_b)" if host_a else "--host-a (target.host)"
            raise ConfigError(
                f"{missing}: not set; an A/B comparison needs both targets (or neither: two embedded demo "
                "bots of the same build)"
            )
        secrets = config.secrets
        a = resolve_target(config, stack, host_a, options.state_dir)
        b = resolve_target(
            _with_token(config, secrets.twilio_auth_token_b or secrets.twilio_auth_token),
            stack,
            host_b,
            options.state_dir,
        )
        overrides = {**config.overrides, "ab.host_b": b.host}
        target = Target(
            kind="http",
            host=a.host,
            path=config.target.webhook_path,
            embedded=a.embedded,
            demo_bot_mode=config.target.demo_bot_mode if a.embedded else None,
        )
        return Prepared(
            target=target,
            locust_host=a.host,
            env={
                "TWILIO_AUTH_TOKEN": a.auth_token,
                "TWILIO_AUTH_TOKEN_B": b.auth_token,
                "PERFSUITE_OVERRIDES": json.dumps(overrides, sort_keys=True),
            },
            timeout_s=config.ab.max_run_time_s + config.target.request_timeout_s + 90,
            context=AbContext(a, b),
        )

    def during(
        self, config: SuiteConfig, prepared: Prepared, run_id: str, collector_url: str
    ) -> contextlib.AbstractContextManager[Any]:
        context: AbContext = prepared.context
        return _kept(context, watching(config, collector_url, run_id, (context.a.host, context.b.host)))

    def observe(self, config: SuiteConfig, prepared: Prepared, outcome: LocustOutcome, run_id: str) -> bool:
        """Whether the watcher ended the load early."""
        context: AbContext = prepared.context
        return context.watcher is not None and context.watcher.stop_requested_at is not None

    def figures(
        self, config: SuiteConfig, prepared: Prepared, collected: Collected, observed: Any
    ) -> AbFigures:
        context = prepared.context if isinstance(prepared.context, AbContext) else None
        hosts = (context.a.host, context.b.host) if context is not None else (prepared.locust_host, "")
        figures = compare_sides(collected.data, config.ab, hosts)
        return figures.model_copy(update={"stopped_early": bool(observed)})

    def checks(self, config: SuiteConfig, result: RunResult) -> list[Check]:
        figures = figures_of(result)
        settings = config.ab
        checks = []
        for row in figures.metrics:
            decided = row.metric == figures.metric
            slower = (row.change or 0.0) if row.verdict == SLOWER else 0.0
            checks.append(
                Check(
                    f"B not slower than A: {LABELS[row.metric]}"
                    + (f" (decided at {settings.confidence:.0%} confidence)" if decided else ""),
                    slower,
                    "<=",
                    settings.min_effect,
                    "%",
                    critical=decided,
                    note=figures.reason if decided else row.verdict,
                )
            )
        checks.append(
            Check(
                "the comparison reached a verdict (not inconclusive)",
                float(figures.verdict != INCONCLUSIVE),
                ">=",
                1.0,
                note=figures.reason if figures.verdict == INCONCLUSIVE else "",
            )
        )
        threshold = config.webhook.success_threshold
        for side in figures.sides:
            checks.append(
                Check(
                    f"target {side.side} answered as intended",
                    side.success_rate,
                    ">=",
                    threshold,
                    "%",
                    critical=True,
                    far=MISSED_BY_FAR,
                    note=side.host,
                )
            )
        return checks

    def warnings(self, config: SuiteConfig, result: RunResult) -> list[str]:
        figures = figures_of(result)
        out = []
        if figures.stopped_early and figures.decided_at_s is None:
            out.append(
                "the live look ended the load on an answer that the whole run's data does not hold; "
                "the verdict is read at the last slice"
            )
        return out

    def sections(self, result: RunResult) -> list[Section]:
        return ab_sections(figures_of(result))


@contextlib.contextmanager
def _kept(context: AbContext, watch: contextlib.AbstractContextManager[Watcher]) -> Any:
    with watch as watcher:
        context.watcher = watcher
        yield watcher


__all__ = ["AbContext", "AbTest", "figures_of"]
