"""``python -m demo_bot``: patch the standard library for gevent first, then parse and serve."""

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import sys  # noqa: E402

from demo_bot.config import parse_config  # noqa: E402
from demo_bot.server import serve  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    config = parse_config(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
