"""The ``perfsuite`` command: ``perfsuite run --test-type webhook`` and friends.

Exit codes: 0 EXCELLENT/GOOD, 1 FAIR, 2 POOR, 130 interrupted (partial results still written),
64 bad command line or configuration, 69 a required service unreachable at preflight.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from perfsuite.config import SuiteConfig, load_config
from perfsuite.errors import EXIT_INTERRUPTED, EXIT_USAGE, ConfigError, PerfsuiteError
from perfsuite.result import JobResult, write_json

TEST_TYPES = ("webhook", "redis", "capacity", "baseline", "all")


class _Parser(argparse.ArgumentParser):
    """argparse that exits 64 (EX_USAGE) on a bad command line instead of 2, which means POOR."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"perfsuite: error: {message}\n")


def _positive_int(flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be at least 1, got {value}")
        return value

    return parse


def _non_negative_float(flag: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number, got {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{flag} must be >= 0, got {value}")
        return value

    return parse


def _positive_float(flag: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _non_negative_float(flag)(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{flag} must be > 0, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (every verb)."""
    parser = _Parser(prog="perfsuite", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    run = verbs.add_parser("run", help="run a test and print the graded report")
    run.add_argument("--test-type", default="webhook", choices=TEST_TYPES,
                     help="which test to run (default: webhook)")
    run.add_argument("--config", type=Path, default=None, help="scenarios.yaml to use (default: the repository's)")
    run.add_argument("--scenario", default=None, help="scenario overlay from scenarios.yaml (default: default)")
    run.add_argument("--host", default=None,
                     help="bot base URL, e.g. http://127.0.0.1:8000 (default: start the embedded demo bot)")
    run.add_argument("--output-file", type=Path, default=None, help="write the JSON result here")
    run.add_argument("--verbose", action="store_true", help="show Locust's and the suite's logs")
    run.add_argument("--users", type=_positive_int("--users"), default=None,
                     help="webhook.concurrent_users")
    run.add_argument("--requests-per-user", type=_positive_int("--requests-per-user"), default=None,
                     help="webhook.requests_per_user")
    run.add_argument("--ramp-up", type=_non_negative_float("--ramp-up"), default=None,
                     help="webhook.ramp_up_time in seconds")
    run.add_argument("--burst-intensity", type=_positive_int("--burst-intensity"), default=None,
                     help="webhook.burst_intensity")
    run.add_argument("--no-burst", action="store_true", help="skip the burst phase")
    run.add_argument("--arrival-rate", type=_positive_float("--arrival-rate"), default=None,
                     help="open model: requests per second (arrival.rate_per_s); latency from intended start")
    run.add_argument("--run-time", type=_positive_float("--run-time"), default=None,
                     help="seconds of arrival-rate load (arrival.duration_s)")
    run.add_argument("--demo-bot-mode", choices=("optimized", "legacy"), default=None,
                     help="target.demo_bot_mode of the embedded demo bot")
    run.add_argument("--workers", type=int, default=0,
                     help="run Locust as a master plus this many worker processes (default: one process)")
    run.add_argument("--run-id", default=None, help="run id to store the run under (default: a new one)")
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
    }
    return {key: value for key, value in pairs.items() if value is not None}


def _run(args: argparse.Namespace) -> int:
    from perfsuite.report import render
    from perfsuite.webhook_job import RunOptions, run_webhook

    if args.workers < 0 or args.workers > 64:
        raise ConfigError(f"--workers must be between 0 and 64, got {args.workers}")
    config: SuiteConfig = load_config(args.config, args.scenario, overrides_from(args))
    options = RunOptions(host=args.host, workers=args.workers, verbose=args.verbose, run_id=args.run_id)
    if args.test_type != "webhook":
        raise ConfigError(f"--test-type {args.test_type}: not available in this build yet (available: webhook)")
    result: JobResult = run_webhook(config, options)
    print(render(result))
    if args.output_file is not None:
        write_json(result.to_dict(), args.output_file)
        print(f"\nresult written to {args.output_file}")
    return result.exit_code


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
        parser.error(f"unknown verb {args.verb!r}")
    except PerfsuiteError as exc:
        print(f"perfsuite: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("perfsuite: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
