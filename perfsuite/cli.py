"""The ``perfsuite`` command: run tests, list and compare stored runs, write reports.

Verbs:

  perfsuite run [--test-type webhook|redis|capacity|baseline|all] [--output-file F] [--html-file F]
                [--junit-file F] [--baseline-run ID | --baseline-file F] [--abort-on critical|warning]
                [--repeat N] [--metrics-port P] ...
  perfsuite ab [--host-a URL --host-b URL] [--arrival-rate R] [--run-time T] [--metric p95]
                [--min-effect 0.05] [--confidence 0.95] [--output-file F] [--html-file F] [--junit-file F]
  perfsuite runs list [--limit N] [--test-type T] [--format text|json]
  perfsuite runs trend --metric KEY [--test-type T] [--target T] [--scenario S] [--limit N]
                [--format text|json]
  perfsuite compare BASELINE CURRENT [--no-history] [--format text|json|html|junit] [--output-file F]
  perfsuite report RUN [--format text|json|html|junit] [--output-file F]
  perfsuite worker --master HOST [--master-port P] [--test-type T]
  perfsuite web [--test-type T] [--host URL] [--master] [--web-port P] [--metrics-port P]
  perfsuite probe --host URL [--path P] [--public-url U]
  perfsuite chaos-proxy [--listen HOST:PORT] [--proxy NAME=LISTEN=UPSTREAM]... [--config FILE]

BASELINE and CURRENT are stored run ids, group ids (the runs of one ``run --repeat N``) or result
JSON files, several joined with commas (``id1,id2,id3``); RUN is a run id or a result file;
CURRENT and RUN may also be ``latest``. A regression must stand out against the variation between
runs (repeated runs, or earlier runs of the baseline's target and scenario): with one run each
side and no such history the verdict is "inconclusive", never a regression.

``ab`` sends one message stream to two targets, interleaved arrival by arrival, and tells whether B is
slower than A (an always-valid sequential test on paired slices; it stops once the answer is clear).

``--test-type baseline`` compares the latest stored run(s) with the seed's figures (or with
--baseline-run / --baseline-file); ``all`` (the default, as in the seed's runner) runs webhook,
redis and capacity (each when this build has it) and then that comparison.

Exit codes: 0 EXCELLENT/GOOD, 1 FAIR, 2 POOR (run, compare; ab: B slower is 1 or 2), 130 interrupted
(partial results still written), 64 bad command line or configuration, 69 a required service unreachable at
preflight, 75 the collector's Redis was lost during the run (the report, grade included, is printed
from what the writers kept, with the loss in numbers; no verdict: rerun) or stopped answering
during a command. ``runs list`` and ``report`` exit 0 when they printed or wrote what was asked.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import redis
from pydantic import SecretStr

from perfsuite import registry
from perfsuite.config import AB_METRICS, SuiteConfig, load_config, parse_duration
from perfsuite.errors import EXIT_INTERRUPTED, EXIT_TEMPFAIL, EXIT_USAGE, ConfigError, PerfsuiteError
from perfsuite.history import RunHistory, with_series
from perfsuite.jobs import RunOptions, TestType, run_job
from perfsuite.result import RunResult, RunStatus, check_writable, write_json, write_text

if TYPE_CHECKING:
    from baseline.comparator import Comparison
    from baseline.job import BaselineRequest
    from perfsuite.collector import RunData
    from perfsuite.metrics.endpoint import MetricsEndpoint
    from perfsuite.report_html import ChartRun

FORMATS = ("text", "json", "html", "junit")
MAX_REPEAT = 20
"""``run --repeat N`` runs at most this many times."""


class _Parser(argparse.ArgumentParser):
    """argparse that exits 64 (EX_USAGE) on a bad command line instead of 2, which means POOR."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"perfsuite: error: {message}\n")


def _number(
    flag: str, convert: Callable[[str], Any], minimum: float, strict: bool = False
) -> Callable[[str], Any]:
    """An argparse type for ``flag``: ``convert`` the text, then require ``value >= minimum``
    (``> minimum`` when ``strict``); the message names the flag, the value and the bound."""
    kind = "a whole number" if convert is int else "a number"

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be {kind}, got {text!r}") from None
        if value < minimum or (strict and value == minimum):
            bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
            raise argparse.ArgumentTypeError(f"{flag} must be {bound}, got {text}")
        return value

    return parse


def _duration(flag: str) -> Callable[[str], float]:
    """An argparse type for a duration (``90``, ``30s``, ``5m``, ``1h30m``)."""

    def parse(text: str) -> float:
        try:
            return parse_duration(text, flag)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{flag}: ")) from None

    return parse


def _positive_int(flag: str) -> Callable[[str], int]:
    return _number(flag, int, 1)


def _non_negative_float(flag: str) -> Callable[[str], float]:
    return _number(flag, float, 0)


def _positive_float(flag: str) -> Callable[[str], float]:
    return _number(flag, float, 0, strict=True)


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=None, help="scenarios.yaml to use (default: the repository's)"
    )
    parser.add_argument(
        "--scenario", default=None, help="scenario overlay from scenarios.yaml (default: default)"
    )
    parser.add_argument("--verbose", action="store_true", help="show Locust's and the suite's logs")


def _port(flag: str) -> Callable[[str], int]:
    """An argparse type for a TCP port (0: any free one)."""
    parse_number = _number(flag, int, 0)

    def parse(text: str) -> int:
        value: int = parse_number(text)
        if value > 65535:
            raise argparse.ArgumentTypeError(f"{flag} must be a TCP port (0-65535), got {text}")
        return value

    return parse


def _add_metrics_flags(parser: argparse.ArgumentParser) -> None:
    """``--metrics-port`` and ``--metrics-host`` (defaults from PERFSUITE_METRICS_PORT/_HOST, as
    docker-compose sets them; empty: off)."""
    parser.add_argument(
        "--metrics-port",
        type=_port("--metrics-port"),
        default=os.environ.get("PERFSUITE_METRICS_PORT") or None,
        metavar="PORT",
        help="serve live OpenMetrics/Prometheus metrics on this port (metrics.port; 0: any free port; "
        "default: off)",
    )
    parser.add_argument(
        "--metrics-host",
        default=os.environ.get("PERFSUITE_METRICS_HOST") or None,
        metavar="ADDRESS",
        help="address of the metrics endpoint (metrics.host, default 127.0.0.1)",
    )


def _metrics_overrides(args: argparse.Namespace) -> dict[str, Any]:
    pairs = {"metrics.port": args.metrics_port, "metrics.host": args.metrics_host}
    return {key: value for key, value in pairs.items() if value is not None}


def _open_metrics(
    config: SuiteConfig, collector_url: str, stack: contextlib.ExitStack
) -> MetricsEndpoint | None:
    """The live metrics endpoint when ``metrics.port`` is set (closed, after its linger, by ``stack``)."""
    if config.metrics.port is None:
        return None
    from perfsuite.metrics.endpoint import open_endpoint

    return open_endpoint(
        config.metrics,
        collector_url,
        config.redis.key_prefix,
        stack,
        max_cpu_percent=config.arrival.max_cpu_percent,
        max_lag_ms=config.arrival.max_lag_ms,
        backlog=config.target.backlog,
        health_path=config.target.health_path,
    )


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="text", help="report format (default: text)")
    parser.add_argument(
        "--output-file", type=Path, default=None, help="write the report here (default: standard output)"
    )


def _add_trend_parser(runs_verbs: Any, installed: Sequence[str]) -> None:
    trend = runs_verbs.add_parser(
        "trend", help="one metric across stored runs of one target, change points marked"
    )
    trend.add_argument(
        "--config", type=Path, default=None, help="scenarios.yaml to use (default: the repository's)"
    )
    trend.add_argument("--metric", required=True, metavar="KEY", help="metric key, e.g. webhook_p95_ms")
    trend.add_argument(
        "--test-type", choices=installed, default=None, help="test type (default: the metric's)"
    )
    trend.add_argument(
        "--target", default=None, help="target (as `runs list` shows it; default: newest run's)"
    )
    trend.add_argument("--scenario", default=None, help="scenario (default: newest run's)")
    trend.add_argument(
        "--limit", type=_positive_int("--limit"), default=50, help="newest runs to show (default: 50)"
    )
    trend.add_argument("--format", choices=("text", "json"), default="text", help="output format")


def _add_ab_parser(verbs: Any) -> None:
    ab = verbs.add_parser(
        "ab", help="is B slower than A? one message stream to both, interleaved, compared slice by slice"
    )
    ab.add_argument(
        "--host-a", default=None, help="target A's base URL (target.host; token TWILIO_AUTH_TOKEN)"
    )
    ab.add_argument(
        "--host-b",
        default=None,
        help="target B's base URL (ab.host_b; token TWILIO_AUTH_TOKEN_B, else TWILIO_AUTH_TOKEN); "
        "with neither host: two embedded demo bots of this build (an A/A comparison)",
    )
    ab.add_argument(
        "--arrival-rate",
        type=_positive_float("--arrival-rate"),
        default=None,
        help="arrivals per second, both targets together (ab.rate_per_s, default 200)",
    )
    ab.add_argument(
        "--run-time",
        type=_duration("--run-time"),
        default=None,
        help="the longest the comparison runs while the answer is unclear (ab.max_run_time_s, default 120 s)",
    )
    ab.add_argument(
        "--metric", choices=AB_METRICS, default=None, help="the statistic that decides (ab.metric)"
    )
    ab.add_argument(
        "--min-effect",
        type=_non_negative_float("--min-effect"),
        default=None,
        help="sensitivity: a smaller relative difference is no difference (ab.min_effect, default 0.05)",
    )
    ab.add_argument(
        "--confidence",
        type=_positive_float("--confidence"),
        default=None,
        help="confidence of the always-valid interval (ab.confidence, default 0.95)",
    )
    ab.add_argument(
        "--workers",
        type=int,
        default=0,
        help="a master plus this many worker processes (default: one process)",
    )
    ab.add_argument("--run-id", default=None, help="run id to store the run under (default: a new one)")
    ab.add_argument("--output-file", type=Path, default=None, help="write the JSON result here")
    ab.add_argument("--html-file", type=Path, default=None, help="write the HTML report here")
    ab.add_argument("--junit-file", type=Path, default=None, help="write JUnit XML (one case per check) here")
    _add_config_flags(ab)
    _add_metrics_flags(ab)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (every verb)."""
    parser = _Parser(
        prog="perfsuite", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    run = verbs.add_parser("run", help="run a test and print the graded report")
    installed = [test_type.name for test_type in registry.test_types()]
    run.add_argument(
        "--test-type",
        default="all",
        choices=[*installed, *registry.COMPOSITE_TYPES],
        help="which test to run (default: all = every test type, then the comparison with the seed)",
    )
    _add_config_flags(run)
    run.add_argument(
        "--host",
        default=None,
        help="bot base URL, e.g. http://127.0.0.1:8000 (default: start the embedded demo bot)",
    )
    run.add_argument("--output-file", type=Path, default=None, help="write the JSON result here")
    run.add_argument("--html-file", type=Path, default=None, help="write the HTML report (with charts) here")
    run.add_argument(
        "--junit-file", type=Path, default=None, help="write JUnit XML (one case per check) here"
    )
    run.add_argument("--users", type=_positive_int("--users"), default=None, help="webhook.concurrent_users")
    run.add_argument(
        "--requests-per-user",
        type=_positive_int("--requests-per-user"),
        default=None,
        help="webhook.requests_per_user",
    )
    run.add_argument(
        "--ramp-up",
        type=_non_negative_float("--ramp-up"),
        default=None,
        help="webhook.ramp_up_time in seconds",
    )
    run.add_argument(
        "--burst-intensity",
        type=_positive_int("--burst-intensity"),
        default=None,
        help="webhook.burst_intensity",
    )
    run.add_argument("--no-burst", action="store_true", help="skip the burst phase")
    run.add_argument(
        "--arrival-rate",
        type=_positive_float("--arrival-rate"),
        default=None,
        help="open model: requests per second (arrival.rate_per_s); latency from intended start",
    )
    run.add_argument(
        "--run-time",
        type=_duration("--run-time"),
        default=None,
        help="how long the load runs, as Locust takes it (90, 30s, 5m, 1h30m): the open model's "
        "arrival.duration_s; in the closed model users send until then (webhook.run_time_s)",
    )
    run.add_argument(
        "--demo-bot-mode",
        choices=("optimized", "legacy"),
        default=None,
        help="target.demo_bot_mode of the embedded demo bot",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run Locust as a master plus this many worker processes (default: one process)",
    )
    run.add_argument(
        "--abort-on",
        choices=("critical", "warning"),
        default=None,
        help="capacity: stop the run at the first live alert this severe (capacity.abort_on)",
    )
    run.add_argument(
        "--remote-workers",
        type=_number("--remote-workers", int, 0),
        default=0,
        help="also wait for this many workers joining from other hosts (`perfsuite worker --master HOST`)",
    )
    run.add_argument(
        "--master-bind-host",
        default=None,
        help="address the master listens on for workers (default 127.0.0.1; with --remote-workers: *)",
    )
    run.add_argument(
        "--master-port",
        type=_number("--master-port", int, 1),
        default=None,
        help="the master's port for workers (default: a free one; with --remote-workers: 5557)",
    )
    run.add_argument("--run-id", default=None, help="run id to store the run under (default: a new one)")
    run.add_argument(
        "--repeat",
        type=_number("--repeat", int, 1),
        default=1,
        metavar="N",
        help="run the test N times (1-20), stored as one group that compares as one side",
    )
    run.add_argument(
        "--baseline-run",
        default=None,
        metavar="ID",
        help="baseline and all: compare with this stored run instead of the seed's figures",
    )
    run.add_argument(
        "--baseline-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="baseline and all: compare with this result JSON file instead of the seed's figures",
    )
    _add_metrics_flags(run)

    _add_ab_parser(verbs)

    runs = verbs.add_parser("runs", help="run history")
    runs_verbs = runs.add_subparsers(dest="runs_verb", required=True, parser_class=_Parser)
    listing = runs_verbs.add_parser("list", help="list stored runs, newest first")
    _add_config_flags(listing)
    listing.add_argument(
        "--limit", type=_positive_int("--limit"), default=20, help="runs to show (default: 20)"
    )
    listing.add_argument("--test-type", choices=installed, default=None, help="only runs of this test type")
    listing.add_argument(
        "--target", default=None, help="only runs of this target (as the target column shows it)"
    )
    listing.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    _add_trend_parser(runs_verbs, installed)

    compare = verbs.add_parser(
        "compare", help="compare runs (noise-aware, between runs) and grade the change"
    )
    compare.add_argument(
        "baseline",
        metavar="BASELINE",
        help="earlier run(s): run id, group id or result JSON file; several joined with commas",
    )
    compare.add_argument(
        "current", metavar="CURRENT", help="run id(s), group id, result JSON file(s), or 'latest'"
    )
    compare.add_argument(
        "--no-history",
        action="store_true",
        help="do not let earlier runs of the baseline's target and scenario join the baseline",
    )
    _add_config_flags(compare)
    _add_output_flags(compare)

    report = verbs.add_parser("report", help="write the report of a stored run or a result file")
    report.add_argument("run", metavar="RUN", help="run id, 'latest', or a result JSON file")
    _add_config_flags(report)
    _add_output_flags(report)

    worker = verbs.add_parser(
        "worker", help="a Locust worker joining a master on another host (what docker-compose's workers run)"
    )
    worker.add_argument("--master", required=True, metavar="HOST", help="the master's host name or address")
    worker.add_argument("--master-port", type=_number("--master-port", int, 1), default=5557)
    worker.add_argument("--test-type", choices=installed, default="webhook", help="the master's test type")
    _add_config_flags(worker)
    web = verbs.add_parser("web", help="Locust's web UI with the suite's locustfile of a test type")
    web.add_argument("--test-type", choices=installed, default="webhook", help="test type (default: webhook)")
    web.add_argument("--host", default=None, help="target base URL shown in the web UI")
    web.add_argument("--web-host", default="127.0.0.1", help="address of the web UI (default: 127.0.0.1)")
    web.add_argument("--web-port", type=_number("--web-port", int, 1), default=8089)
    web.add_argument("--master", action="store_true", help="be a master for workers (`perfsuite worker`)")
    web.add_argument("--master-bind-host", default="*", help="with --master: where workers connect")
    web.add_argument("--master-port", type=_number("--master-port", int, 1), default=5557)
    _add_metrics_flags(web)
    _add_config_flags(web)

    from perfsuite import probe
    from perfsuite.faults import api as chaos_api

    probing = verbs.add_parser(
        "probe", help="how the bot answers valid, wrong, missing, misdirected and replayed signatures"
    )
    probe.add_arguments(probing)
    chaos = verbs.add_parser(
        "chaos-proxy", help="TCP fault proxy with Toxiproxy's HTTP API (between the bot and Redis/PostgreSQL)"
    )
    chaos_api.add_arguments(chaos)
    return parser


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """Dotted configuration overrides from the flags the user gave."""
    pairs = {
        "webhook.concurrent_users": args.users,
        "webhook.requests_per_user": args.requests_per_user,
        "webhook.ramp_up_time": args.ramp_up,
        "webhook.burst_intensity": args.burst_intensity,
        "webhook.enable_burst_testing": False if args.no_burst else None,
        "target.demo_bot_mode": args.demo_bot_mode,
        "arrival.rate_per_s": args.arrival_rate,
        "arrival.duration_s": args.run_time,
        "webhook.run_time_s": args.run_time,
        "capacity.abort_on": args.abort_on,
    }
    return {key: value for key, value in pairs.items() if value is not None} | _metrics_overrides(args)


def _pinned(config: SuiteConfig, redis_url: str) -> SuiteConfig:
    """``config`` with the collector's Redis fixed to ``redis_url`` (so every job and the history
    use the one server this command found or started)."""
    secrets = config.secrets.model_copy(update={"redis_url": SecretStr(redis_url)})
    return config.model_copy(update={"secrets": secrets})


def _open_history(config: SuiteConfig, stack: contextlib.ExitStack) -> tuple[SuiteConfig, RunHistory, str]:
    from perfsuite.services import STATE_DIR, collector_redis

    url = collector_redis(config, stack, STATE_DIR)
    history = RunHistory(url, config.redis.key_prefix, config.baseline.max_intervals)
    return _pinned(config, url), history, url


def _charts_of(result: RunResult, comparison: Comparison | None) -> list[ChartRun]:
    from baseline.job import comparison_charts
    from perfsuite.charts import result_charts

    # a comparison's charts hold its current runs (for `all`, the parts) and its baseline runs
    return comparison_charts(comparison) if comparison is not None else result_charts(result)


def _numbered(path: Path | None, index: int | None) -> Path | None:
    """``result.json`` -> ``result-3.json`` for run 3 of a ``--repeat`` group (unchanged otherwise)."""
    if path is None or index is None:
        return path
    return path.with_name(f"{path.stem}-{index}{path.suffix}")


def _write_outputs(
    result: RunResult,
    args: argparse.Namespace,
    comparison: Comparison | None = None,
    index: int | None = None,
) -> None:
    from perfsuite.report_html import render_html
    from perfsuite.report_junit import render_junit

    output_file, html_file, junit_file = (
        _numbered(path, index) for path in (args.output_file, args.html_file, args.junit_file)
    )
    if output_file is not None:
        write_json(result.to_document(), output_file)
        print(f"\nresult written to {output_file}")
    if html_file is not None:
        write_text(render_html(result, _charts_of(result, comparison)), html_file, "--html-file")
        print(f"HTML report written to {html_file}")
    if junit_file is not None:
        write_text(render_junit(result), junit_file, "--junit-file")
        print(f"JUnit XML written to {junit_file}")


def _storer(
    history: RunHistory, spill_dir: Path, group: str | None = None
) -> Callable[[RunResult, RunData | None], RunResult]:
    """Keep each result with its run (in ``group`` when given) and return it with its intervals
    and marks; a run the collector never created only gets a warning, and so does a collector's
    Redis that does not answer (the result waits in ``spill_dir``)."""

    def store(result: RunResult, data: RunData | None) -> RunResult:
        warning = None
        try:
            if not history.store(result, spill_dir, group):
                warning = (
                    f"the collector's Redis does not answer: the result waits in {spill_dir} and is stored "
                    "with the run when it answers (the next perfsuite command writes it)"
                )
        except PerfsuiteError as exc:
            warning = f"result not stored with the run (run history will lack it): {exc}"
        if warning is not None:
            result = result.model_copy(update={"warnings": (*result.warnings, warning)})
        return with_series(result, data, history.max_intervals) if data is not None else result

    return store


def _check_run_flags(args: argparse.Namespace) -> None:
    if args.workers < 0 or args.workers > 64:
        raise ConfigError(f"--workers must be between 0 and 64, got {args.workers}")
    for flag, path in (
        ("--output-file", args.output_file),
        ("--html-file", args.html_file),
        ("--junit-file", args.junit_file),
    ):
        if path is not None:
            check_writable(path, flag)  # before the run, not after it
    composite = args.test_type in registry.COMPOSITE_TYPES
    if (args.baseline_run or args.baseline_file) and not composite:
        flag = "--baseline-run" if args.baseline_run else "--baseline-file"
        raise ConfigError(f"{flag}: only with --test-type baseline or all (got --test-type {args.test_type})")
    if args.baseline_run and args.baseline_file:
        raise ConfigError("--baseline-run and --baseline-file: give one of them, not both")
    if args.run_id and composite:
        raise ConfigError(f"--run-id names one run: not allowed with --test-type {args.test_type}")
    if args.repeat > 1:
        if args.repeat > MAX_REPEAT:
            raise ConfigError(f"--repeat must be between 1 and {MAX_REPEAT}, got {args.repeat}")
        if composite:
            raise ConfigError(
                f"--repeat runs one test type N times: not with --test-type {args.test_type} "
                "(the default is all); give --test-type webhook, redis or capacity"
            )
        if args.run_id:
            raise ConfigError("--run-id names one run: not allowed with --repeat (each run gets its own id)")


def _run(args: argparse.Namespace) -> int:
    from baseline.job import BaselineRequest, comparison_result, run_baseline
    from perfsuite.report import render

    _check_run_flags(args)
    config: SuiteConfig = load_config(
        args.config, _scenario(args), {**_environment_overrides(), **overrides_from(args)}
    )
    request = BaselineRequest(baseline_run=args.baseline_run, baseline_file=args.baseline_file)
    with contextlib.ExitStack() as stack:
        config, history, url = _open_history(config, stack)
        metrics = _open_metrics(config, url, stack)
        remote = args.remote_workers
        options = RunOptions(
            host=args.host,
            workers=args.workers,
            remote_workers=remote,
            master_bind_host=args.master_bind_host or ("*" if remote else "127.0.0.1"),
            master_port=args.master_port or (5557 if remote else None),
            verbose=args.verbose,
            run_id=args.run_id,
            metrics=metrics,
        )
        if args.test_type == "baseline":
            comparison = run_baseline(history, config.baseline, request)
            result = comparison_result(comparison, config.snapshot())
            print(render(result))
            _write_outputs(result, args, comparison)
            return result.exit_code
        if args.test_type == "all":
            return _run_all(config, options, history, url, request, args)
        if args.repeat > 1:
            return _run_repeated(registry.get(args.test_type), config, options, history, url, args)
        store = _storer(history, config.collector.spill_dir)
        result = run_job(registry.get(args.test_type), config, options, url, store=store)
        print(render(result))
        _write_outputs(result, args)
        return result.exit_code


def _ab(args: argparse.Namespace) -> int:
    """``perfsuite ab``: the interleaved comparison of two targets, as one run of test type ``ab``."""
    from perfsuite.report import render

    if args.workers < 0 or args.workers > 64:
        raise ConfigError(f"--workers must be between 0 and 64, got {args.workers}")
    for flag, path in (
        ("--output-file", args.output_file),
        ("--html-file", args.html_file),
        ("--junit-file", args.junit_file),
    ):
        if path is not None:
            check_writable(path, flag)
    pairs = {
        "ab.host_b": args.host_b,
        "ab.rate_per_s": args.arrival_rate,
        "ab.max_run_time_s": args.run_time,
        "ab.metric": args.metric,
        "ab.min_effect": args.min_effect,
        "ab.confidence": args.confidence,
    }
    overrides = {key: value for key, value in pairs.items() if value is not None} | _metrics_overrides(args)
    config = load_config(args.config, _scenario(args), {**_environment_overrides(), **overrides})
    with contextlib.ExitStack() as stack:
        config, history, url = _open_history(config, stack)
        options = RunOptions(
            host=args.host_a,
            workers=args.workers,
            verbose=args.verbose,
            run_id=args.run_id,
            metrics=_open_metrics(config, url, stack),
        )
        store = _storer(history, config.collector.spill_dir)
        result = run_job(registry.get("ab"), config, options, url, store=store)
        print(render(result))
        _write_outputs(result, args)
        return result.exit_code


def _run_repeated(
    test_type: TestType,
    config: SuiteConfig,
    options: RunOptions,
    history: RunHistory,
    url: str,
    args: argparse.Namespace,
) -> int:
    """``--repeat N``: N runs of one test type, stored as one group; each run's report, then the
    group's table (its runs side by side and their spread). Exit code: the worst run's."""
    from baseline.groups import render_group
    from perfsuite.history import new_group_id
    from perfsuite.report import render

    group = new_group_id()
    store = _storer(history, config.collector.spill_dir, group)
    results: list[RunResult] = []
    for index in range(1, args.repeat + 1):
        print(f"perfsuite run {index}/{args.repeat} of group {group}\n")
        try:
            result = run_job(test_type, config, options, url, store=store)
        except KeyboardInterrupt:
            if not results:
                raise
            print(render_group(group, results))
            return EXIT_INTERRUPTED
        print(render(result) + "\n")
        _write_outputs(result, args, index=index)
        results.append(result)
        if result.interrupted:
            break
    print(render_group(group, results))
    return max(result.exit_code for result in results)


def _run_all(
    config: SuiteConfig,
    options: RunOptions,
    history: RunHistory,
    url: str,
    request: BaselineRequest,
    args: argparse.Namespace,
) -> int:
    """``--test-type all``: every test type, then the comparison of exactly these runs."""
    from baseline.job import BaselineRequest, comparison_result, run_baseline
    from baseline.sides import run_side
    from baseline.targets import TEST_TYPES as COMPARED
    from perfsuite.report import render, render_comparison

    parts: list[RunResult] = []
    notes: list[str] = []
    interrupted = False
    installed = {test_type.name for test_type in registry.test_types()}
    for name in COMPARED:
        if name not in installed:
            notes.append(f"{name}: not available in this build; its seed targets count as not met")
            print(f"perfsuite {name} test: not available in this build\n")
    test_types: list[TestType] = [test_type for test_type in registry.test_types() if test_type.in_all]
    for test_type in test_types:
        try:
            part = run_job(
                test_type, config, options, url, store=_storer(history, config.collector.spill_dir)
            )
        except KeyboardInterrupt:
            if not parts:
                raise
            interrupted = True
            notes.append(f"interrupted during the {test_type.name} test: later tests did not run")
            break
        print(render(part) + "\n")
        parts.append(part)
        if part.interrupted:
            notes.append(f"interrupted during the {test_type.name} test: later tests did not run")
            break
    sides = [run_side(history, part.run_id) for part in parts]
    scope = None if (request.baseline_run or request.baseline_file) else COMPARED
    only_these = BaselineRequest(
        baseline_run=request.baseline_run,
        baseline_file=request.baseline_file,
        scope=scope,
        fill_from_history=False,
    )
    comparison = run_baseline(history, config.baseline, only_these, extra_current=sides)
    summary = comparison_result(comparison, config.snapshot())
    result = RunResult(
        test_type="all",
        run_id=",".join(part.run_id for part in parts),
        scenario=config.scenario,
        target=parts[0].target if parts else summary.target,
        status=RunStatus.INTERRUPTED if interrupted else RunStatus.FINISHED,
        checks=summary.checks,
        warnings=tuple(notes),
        config=config.snapshot(),
        comparison=summary.comparison,
        parts=tuple(parts),
    )
    if summary.comparison is not None:
        print(render_comparison(summary.comparison))
    for note in notes:
        print(f"note: {note}")
    grades = ", ".join(f"{part.test_type} {part.grade.value}" for part in parts)
    grades += f", comparison {comparison.grade.value}"
    print(f"\nOVERALL GRADE: {result.grade.value}  (worst of: {grades})")
    _write_outputs(result, args, comparison)
    return result.exit_code


def _emit(
    result: RunResult, args: argparse.Namespace, charts: Sequence[ChartRun], text: Callable[[], str]
) -> None:
    """Print or write ``result`` in ``args.format``."""
    if args.format == "text":
        output = text()
    elif args.format == "json":
        output = json.dumps(result.to_document(), indent=2, default=str) + "\n"
    elif args.format == "html":
        from perfsuite.report_html import render_html

        output = render_html(result, charts)
    else:
        from perfsuite.report_junit import render_junit

        output = render_junit(result)
    if args.output_file is None:
        sys.stdout.write(output if output.endswith("\n") else output + "\n")
        return
    write_text(output if output.endswith("\n") else output + "\n", args.output_file)
    if args.format != "text":
        print(text())
    print(f"\n{args.format} report written to {args.output_file}")


def _compare(args: argparse.Namespace) -> int:
    from baseline.job import compare_named, comparison_charts, comparison_result
    from perfsuite.report import render

    config = load_config(args.config, args.scenario)
    with contextlib.ExitStack() as stack:
        config, history, _ = _open_history(config, stack)
        comparison = compare_named(
            history, config.baseline, args.baseline, args.current, use_history=not args.no_history
        )
        result = comparison_result(comparison, config.snapshot())
        _emit(result, args, comparison_charts(comparison), lambda: render(result))
        return result.exit_code


def _report(args: argparse.Namespace) -> int:
    from perfsuite.charts import result_charts
    from perfsuite.report import render
    from perfsuite.result import read_json

    config = load_config(args.config, args.scenario)
    path = Path(args.run)
    if args.run.endswith(".json") or path.is_file():
        result = registry.load_result(read_json(path, "RUN"), str(path))
        _emit(result, args, result_charts(result), lambda: render(result))
        return 0
    with contextlib.ExitStack() as stack:
        config, history, _ = _open_history(config, stack)
        result = history.result(history.resolve(args.run, "RUN"))
        _emit(result, args, result_charts(result), lambda: render(result))
        return 0


def _scenario(args: argparse.Namespace) -> str | None:
    """``--scenario``, else PERFSUITE_SCENARIO (docker-compose sets it for every service). The
    configuration file is ``--config``, else PERFSUITE_CONFIG (``load_config`` reads it)."""
    return args.scenario or os.environ.get("PERFSUITE_SCENARIO") or None


def _environment_overrides() -> dict[str, Any]:
    """PERFSUITE_OVERRIDES (a JSON object of key path -> value), as Locust processes read it; the
    command line's flags win over it."""
    text = os.environ.get("PERFSUITE_OVERRIDES") or "{}"
    try:
        overrides = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"PERFSUITE_OVERRIDES: not valid JSON: {exc}") from None
    if not isinstance(overrides, dict):
        raise ConfigError("PERFSUITE_OVERRIDES: must be a JSON object of key path -> value")
    return overrides


def _locust_foreground(args: argparse.Namespace) -> int:
    """``perfsuite worker`` and ``perfsuite web``: one Locust process with the test type's locustfile
    and this configuration (passed on in PERFSUITE_* variables, as every perfsuite Locust process)."""
    from perfsuite.launcher import MASTER_HEARTBEAT_TIMEOUT_S, run_foreground, worker_command

    web = args.verb == "web"
    config = load_config(
        args.config, _scenario(args), _environment_overrides() | (_metrics_overrides(args) if web else {})
    )
    test_type = registry.get(args.test_type)
    env = {"PERFSUITE_MASTER_TIMEOUT_S": str(MASTER_HEARTBEAT_TIMEOUT_S), **config.process_env()}
    if args.verb == "worker":
        if not config.collector_redis_url:
            raise ConfigError(
                "REDIS_URL: not set; a worker writes every timing to the collector's Redis itself: give it "
                "the address the master's collector uses (reachable from this host)"
            )
        return run_foreground(worker_command(test_type.locustfile, args.master, args.master_port), env)
    argv = [sys.executable, "-m", "locust", "-f", str(test_type.locustfile)]
    argv += ["--web-host", args.web_host, "--web-port", str(args.web_port)]
    if args.host:
        argv += ["--host", args.host]
    if args.master:
        argv += [
            "--master",
            "--master-bind-host",
            args.master_bind_host,
            "--master-bind-port",
            str(args.master_port),
        ]
    print(f"perfsuite web: {test_type.title} on http://{args.web_host}:{args.web_port}", flush=True)
    with contextlib.ExitStack() as stack:
        from perfsuite.services import DEFAULT_REDIS_URL

        metrics = _open_metrics(config, config.collector_redis_url or DEFAULT_REDIS_URL, stack)
        if metrics is None:
            return run_foreground(argv, env)
        correction = test_type.latency_correction(config)
        host = args.host or config.target.host
        return run_foreground(
            argv, env, lambda process: metrics.follow_process(process.pid, correction, host)
        )


def _runs_list(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.scenario)
    with contextlib.ExitStack() as stack:
        config, history, _ = _open_history(config, stack)
        runs = history.list(limit=args.limit, test_type=args.test_type, target=args.target)
    if args.format == "json":
        print(json.dumps([run.to_dict() for run in runs], indent=2))
        return 0
    if not runs:
        print("no runs stored yet: `perfsuite run` stores one")
        return 0
    from perfsuite.sections import plain_table, table

    rows = [
        [
            run.run_id,
            run.test_type,
            run.scenario,
            run.target,
            run.demo_bot_mode,
            run.started_at[:19].replace("T", " "),
            run.status,
            f"{run.requests:,}",
            run.grade,
        ]
        for run in runs
    ]
    headers = ["run id", "test type", "scenario", "target", "demo bot", "started (UTC)", "status", "requests"]
    headers.append("grade")
    left = list(range(len(headers) - 2))
    if any(run.group != "-" for run in runs):  # runs of `run --repeat N`
        headers.append("group")
        left.append(len(headers) - 1)
        rows = [[*row, run.group] for row, run in zip(rows, runs, strict=True)]
    print("\n".join(plain_table(table(headers, rows, left=left))))
    return 0


def _runs_trend(args: argparse.Namespace) -> int:
    from baseline.trend import render_trend, trend, trend_json

    config = load_config(args.config, None)
    with contextlib.ExitStack() as stack:
        config, history, _ = _open_history(config, stack)
        found = trend(history, args.metric, args.test_type, args.target, args.scenario, args.limit)
    print(trend_json(found) if args.format == "json" else render_trend(found))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perfsuite`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # SIGTERM (CI cancelling a job) stops the run like Ctrl-C: results so far are still reported.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        if args.verb == "run":
            return _run(args)
        if args.verb == "ab":
            return _ab(args)
        if args.verb == "runs":
            return _runs_trend(args) if args.runs_verb == "trend" else _runs_list(args)
        if args.verb == "compare":
            return _compare(args)
        if args.verb == "report":
            return _report(args)
        if args.verb in ("worker", "web"):
            return _locust_foreground(args)
        if args.verb == "probe":
            from perfsuite import probe

            return probe.run(args)
        if args.verb == "chaos-proxy":
            from perfsuite.faults import api as chaos_api

            return chaos_api.run(args)
        parser.error(f"unknown verb {args.verb!r}")
    except PerfsuiteError as exc:
        print(f"perfsuite: {exc}", file=sys.stderr)
        return exc.exit_code
    except redis.RedisError as exc:  # the collector's Redis went away in the middle of a command
        print(
            f"perfsuite: the collector's Redis stopped answering ({type(exc).__name__}: {exc}); rerun when "
            "it answers",
            file=sys.stderr,
        )
        return EXIT_TEMPFAIL
    except KeyboardInterrupt as exc:
        print(f"perfsuite: interrupted{f' ({exc})' if str(exc) else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
