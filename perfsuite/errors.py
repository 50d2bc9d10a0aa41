"""The suite's one root exception and the exit codes it maps to.

Exit codes follow the seed document (0 EXCELLENT/GOOD, 1 FAIR, 2 POOR, 130 interrupted) and
sysexits(3) for the rest: 64 for a bad command line or configuration, 69 for a required
service that does not answer at preflight, 75 (EX_TEMPFAIL) when the collector's Redis was lost
during the run: the report is printed (grade included) but is no verdict; rerun.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAIR = 1
EXIT_POOR = 2
EXIT_USAGE = 64
EXIT_UNAVAILABLE = 69
EXIT_SOFTWARE = 70
EXIT_TEMPFAIL = 75
"""The collector's Redis was lost during the run (or a command): the report is printed from what
the writers kept, with the loss in numbers, but the grade is no verdict; rerun."""
EXIT_INTERRUPTED = 130


class PerfsuiteError(Exception):
    """Root of every error the suite raises on purpose; ``exit_code`` is what the CLI exits with."""

    exit_code: int = EXIT_SOFTWARE


class ConfigError(PerfsuiteError):
    """A bad configuration file, scenario or command-line value (exit 64)."""

    exit_code = EXIT_USAGE


class ServiceUnavailable(PerfsuiteError):
    """A required service (Redis, the target host) does not answer at preflight (exit 69)."""

    exit_code = EXIT_UNAVAILABLE


class CollectorLost(PerfsuiteError):
    """The collector's Redis lost a run, or stopped answering, and no local file holds what is
    missing (exit 75: rerun)."""

    exit_code = EXIT_TEMPFAIL


class NothingMeasured(KeyboardInterrupt):
    """Ctrl-C came before the run's first results reached the collector: there is nothing to report
    (exit 130, like any interruption; callers that catch KeyboardInterrupt catch it too)."""


__all__ = [
    "EXIT_FAIR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_POOR",
    "EXIT_SOFTWARE",
    "EXIT_TEMPFAIL",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "CollectorLost",
    "ConfigError",
    "NothingMeasured",
    "PerfsuiteError",
    "ServiceUnavailable",
]
