"""``python -m perfsuite.faults`` is ``perfsuite chaos-proxy``: the Toxiproxy-compatible fault proxy."""

import sys

from perfsuite.faults.api import main

sys.exit(main())
