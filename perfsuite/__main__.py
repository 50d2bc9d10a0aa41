"""``python -m perfsuite`` and the ``perfsuite`` command.

The command's modules take a second or more to import (pandas, Locust); a Ctrl-C during that time
(or while the test types are looked up)
ends the command with exit 130 like a Ctrl-C later on, not with a traceback.
"""

import sys

EXIT_INTERRUPTED = 130


def entry() -> int:
    """Import the command line and run it."""
    try:
        from perfsuite.cli import main

        return main()
    except KeyboardInterrupt:  # while importing, or while main() reads the command line
        print("perfsuite: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(entry())
