"""Micro-benchmark: webhook messages generated and signed per second, against the twilio package.

Run: ``python bench/bench_twilio.py [--messages 20000] [--rounds 3]``

Subject and reference run in the same process, interleaved, best of ``--rounds`` each (this
machine is shared and noisy, so only the ratios mean anything):

- generate+sign: ``TrafficGenerator.next_message`` (realistic mix, 2% invalid, 2% duplicates),
  which builds the whole form, SIDs and idempotency token and signs it;
- sign only: :func:`perfsuite.twilio.sign` on the same forms;
- reference: ``twilio.request_validator.RequestValidator.compute_signature`` on the same forms.

A ratio above 1 means faster than the reference.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from twilio.request_validator import RequestValidator

from perfsuite.twilio import TrafficGenerator, WebhookMessage, sign

PUBLIC_URL = "https://bot.example.test:8443/webhook/whatsapp"
TOKEN = "f3b1c2d4e5f60718293a4b5c6d7e8f90"
MIX = {"text": 50, "document": 15, "image": 10, "location": 5, "button": 10, "command": 10}


def _generate(
    generator: TrafficGenerator, count: int, users: int = 100
) -> tuple[float, list[WebhookMessage]]:
    senders = [generator.new_sender(index) for index in range(users)]
    started = time.perf_counter()
    messages = [generator.next_message(senders[n % users]) for n in range(count)]
    return time.perf_counter() - started, messages


def _sign_ours(forms: list[dict[str, str]]) -> float:
    started = time.perf_counter()
    for form in forms:
        sign(TOKEN, PUBLIC_URL, form)
    return time.perf_counter() - started


def _sign_reference(forms: list[dict[str, str]]) -> float:
    validator = RequestValidator(TOKEN)
    started = time.perf_counter()
    for form in forms:
        validator.compute_signature(PUBLIC_URL, form)
    return time.perf_counter() - started


def main() -> None:
    """Run the rounds and print per-second rates and ratios (plus one JSON line)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="messages per round (default 20000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best of each is kept (default 3)")
    args = parser.parse_args()
    count, rounds = max(1, args.messages), max(1, args.rounds)

    generator = TrafficGenerator(
        account_sid="AC" + "1f2e3d4c" * 4,
        bot_number="+14155238886",
        public_url=PUBLIC_URL,
        auth_token=TOKEN,
        mix=MIX,
        invalid_signature_rate=0.02,
        duplicate_rate=0.02,
        rng=random.Random(1),
    )
    best = {"generate+sign": float("inf"), "sign only": float("inf"), "reference": float("inf")}
    started = time.monotonic()
    for _ in range(rounds):
        elapsed, messages = _generate(generator, count)
        best["generate+sign"] = min(best["generate+sign"], elapsed)
        forms = [message.form() for message in messages]
        best["sign only"] = min(best["sign only"], _sign_ours(forms))
        best["reference"] = min(best["reference"], _sign_reference(forms))

    rates = {name: count / seconds for name, seconds in best.items()}
    reference = rates["reference"]
    print(f"{count} messages x {rounds} rounds (best round kept), {time.monotonic() - started:.1f} s total")
    print(f"{'subject':<16}{'per second':>14}{'ratio vs twilio':>18}")
    for name, rate in rates.items():
        print(f"{name:<16}{rate:>14,.0f}{rate / reference:>18.2f}")
    print(
        json.dumps(
            {
                "bench": "twilio",
                "messages": count,
                "rounds": rounds,
                "per_second": {name: round(rate) for name, rate in rates.items()},
                "ratio_generate_sign_vs_reference_sign": round(rates["generate+sign"] / reference, 3),
                "ratio_sign_vs_reference_sign": round(rates["sign only"] / reference, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
