"""The suite's one root exception and the exit codes it maps to.

Exit codes follow the seed document (0 EXCELLENT/GOOD, 1 FAIR, 2 POOR, 130 interrupted) and
sysexits(3) for the rest: 64 for a bad command line or configuration, 69 for a required
service that does not answer at preflight.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAIR = 1
EXIT_POOR = 2
EXIT_USAGE = 64
EXIT_UNAVAILABLE = 69
EXIT_SOFTWARE = 70
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


__all__ = [
    "EXIT_FAIR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_POOR",
    "EXIT_SOFTWARE",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "ConfigError",
    "PerfsuiteError",
    "ServiceUnavailable",
]
