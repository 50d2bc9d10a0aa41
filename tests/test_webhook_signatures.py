"""Generated Twilio traffic against the real demo bot: valid messages accepted, bad ones 403."""

from __future__ import annotations

import http.client
import random
import secrets
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import pytest
from twilio.request_validator import RequestValidator

from perfsuite.embedded import ManagedProcess, start_demo_bot
from perfsuite.twilio import TrafficGenerator

TOKEN = secrets.token_hex(16)


@pytest.fixture()
def demo_bot(redis_url: str) -> Iterator[ManagedProcess]:
    """The demo bot on a free port with rate limiting off (one sender sends many here)."""
    bot = start_demo_bot(
        redis_url,
        TOKEN,
        extra_args=(
            "--rate-limit-per-min",
            "0",
            "--work-ms-text",
            "0",
            "--work-ms-document",
            "0",
            "--work-ms-image",
            "0",
            "--work-ms-other",
            "0",
        ),
    )
    yield bot
    bot.stop()


def test_thousand_messages_validate_and_invalid_ones_get_403(demo_bot: ManagedProcess) -> None:
    """Of 1,000 generated requests every valid one passes Twilio's RequestValidator and gets TwiML;
    every invalid one fails the validator and the bot answers it 403; retries are acked too."""
    public_url = demo_bot.url + "/webhook/whatsapp"
    generator = TrafficGenerator(
        account_sid="AC" + "1" * 32,
        bot_number="+14155238886",
        public_url=public_url,
        auth_token=TOKEN,
        mix={"text": 5, "document": 2, "image": 2, "location": 1, "button": 1, "command": 1},
        invalid_signature_rate=0.2,
        duplicate_rate=0.05,
        rng=random.Random(7),
    )
    validator = RequestValidator(TOKEN)
    senders = [generator.new_sender(index) for index in range(50)]
    parts = urlsplit(demo_bot.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    answers: dict[str, list[int]] = {"valid": [], "invalid": []}
    for number in range(1000):
        message = generator.next_message(senders[number % len(senders)])
        form = message.form()
        signature = message.headers().get("X-Twilio-Signature", "")
        assert validator.validate(public_url, form, signature) is message.signature_valid
        connection.request("POST", "/webhook/whatsapp", body=urlencode(form), headers=message.headers())
        response = connection.getresponse()
        body = response.read().decode()
        answers["valid" if message.signature_valid else "invalid"].append(response.status)
        if message.signature_valid:
            assert "<Response" in body
    connection.close()
    assert len(answers["invalid"]) > 100  # the 20% share really happened
    assert set(answers["invalid"]) == {403}
    assert set(answers["valid"]) == {200}
