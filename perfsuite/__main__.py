"""``python -m perfsuite`` is the ``perfsuite`` command."""

import sys

from perfsuite.cli import main

sys.exit(main())
