"""``python -m tests.zoo <bot> --port N``: run one zoo bot (token from TWILIO_AUTH_TOKEN)."""

import sys

from tests.zoo.bots import BOTS
from tests.zoo.server import main

sys.exit(main(BOTS))
