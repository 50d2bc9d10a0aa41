"""Benchmark: the demo bot's webhook ack latency at low load, against references in the same run.

Run: ``python bench/bench_demo_bot.py [--requests 500]``

It starts a private Redis, the bot in optimized and in legacy mode, and two bare gevent WSGI
"hello world" servers (with TCP_NODELAY, the floor; and with pywsgi's defaults, which show the
~40 ms delayed-ACK stall of a two-send response to a keep-alive client). Each target gets the same
client: one keep-alive ``http.client`` connection, sequential requests of the same signed body.
``wrk`` is used for an extra throughput reference when it is on PATH. Ratios are printed because
this machine is shared and noisy: absolute numbers move, ratios much less.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from perfsuite.embedded import ManagedProcess, free_port, start_demo_bot, start_redis, wait_for_http

TOKEN = "bench-token-not-a-secret"
WEBHOOK = "/webhook/whatsapp"

REFERENCE_SERVER = r"""
from gevent import monkey; monkey.patch_all()
import socket, sys
from gevent.pywsgi import WSGIServer
BODY = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
def app(environ, start_response):
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(BODY)))])
    return [BODY]
class NoDelay(WSGIServer):
    def handle(self, sock, address):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)
server_class = NoDelay if sys.argv[2] == "nodelay" else WSGIServer
server_class(("127.0.0.1", int(sys.argv[1])), app, log=None).serve_forever()
"""


def sign(url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature for ``params`` posted to ``url``."""
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(TOKEN.encode(), data.encode(), hashlib.sha1).digest()).decode()


def text_message(index: int) -> dict[str, str]:
    """A Twilio inbound WhatsApp text message (unique MessageSid, sender cycling over 50)."""
    sid = "SM" + uuid.uuid4().hex
    sender = f"whatsapp:+1555{index % 50:07d}"
    return {
        "MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid, "AccountSid": "AC" + "0" * 32,
        "From": sender, "To": "whatsapp:+14155238886",
        "Body": "Is this offer real? They ask a registration fee before the interview.",
        "NumMedia": "0", "ProfileName": "Bench", "WaId": sender.removeprefix("whatsapp:+"),
        "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01", "MessageType": "text",
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Sample:
    """Latencies of one target, milliseconds."""

    name: str
    latencies_ms: tuple[float, ...]
    statuses: tuple[int, ...]
    server_ms: tuple[float, ...] = ()
    """The bot's own ``Server-Timing`` total, when it sent one."""

    def pct(self, q: float) -> float:
        """The ``q`` quantile (0..1), nearest-rank."""
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    @property
    def p50(self) -> float:
        return self.pct(0.50)

    @property
    def p99(self) -> float:
        return self.pct(0.99)


def measure(
    name: str,
    port: int,
    requests: int,
    build: Callable[[int], tuple[bytes, dict[str, str]]],
    warmup: int = 20,
) -> Sample:
    """POST ``requests`` bodies from ``build(i)`` sequentially over one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies: list[float] = []
    statuses: list[int] = []
    server: list[float] = []
    try:
        for i in range(warmup + requests):
            body, headers = build(i)
            started = time.perf_counter()
            conn.request("POST", WEBHOOK, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            elapsed_ms = (time.perf_counter() - started) * 1000
            if i < warmup:
                continue
            latencies.append(elapsed_ms)
            statuses.append(response.status)
            timing = response.getheader("Server-Timing") or ""
            for part in timing.split(","):
                if part.strip().startswith("total;dur="):
                    server.append(float(part.strip().split("=", 1)[1]))
    finally:
        conn.close()
    return Sample(name, tuple(latencies), tuple(statuses), tuple(server))


def signed_builder(port: int) -> Callable[[int], tuple[bytes, dict[str, str]]]:
    """Builds validly signed text messages for a target on ``port``."""
    url = f"http://127.0.0.1:{port}{WEBHOOK}"

    def build(i: int) -> tuple[bytes, dict[str, str]]:
        params = text_message(i)
        return urlencode(params).encode(), {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(url, params),
        }

    return build


def invalid_builder(i: int) -> tuple[bytes, dict[str, str]]:
    """A text message with a wrong signature."""
    return urlencode(text_message(i)).encode(), {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": "aW52YWxpZC1zaWduYXR1cmU=",
    }


def start_reference(variant: str) -> tuple[subprocess.Popen[bytes], int]:
    """A bare gevent WSGI server answering the TwiML ack (``nodelay`` or ``default`` sockets)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", REFERENCE_SERVER, str(port), variant])
    if not wait_for_http(f"http://127.0.0.1:{port}/", 15):
        proc.kill()
        raise SystemExit(f"reference server ({variant}) did not start")
    return proc, port


def run_wrk(port: int, seconds: int = 5) -> str | None:
    """``wrk`` requests/s against the TwiML reference, when wrk is installed."""
    if shutil.which("wrk") is None:
        return None
    out = subprocess.run(
        ["wrk", "-t1", "-c1", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, timeout=seconds + 30,
    ).stdout  # fmt: skip
    return out


def row(sample: Sample) -> str:
    ok = sum(1 for s in sample.statuses if s in (200, 403))
    server = f"{statistics.median(sample.server_ms):7.3f}" if sample.server_ms else "      -"
    return (
        f"{sample.name:<38} {len(sample.latencies_ms):>5} {sample.p50:8.3f} {sample.p99:8.3f} "
        f"{statistics.fmean(sample.latencies_ms):8.3f} {server}   {ok}/{len(sample.statuses)}"
    )


def main() -> int:
    """Run every target, print the table and the ratios; exit 1 if a target answered wrongly."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="measured requests per target (max 5000)")
    parser.add_argument("--stall-requests", type=int, default=50, help="requests against the Nagle reference")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()
    requests = max(10, min(args.requests, 5000))
    stall_requests = max(5, min(args.stall_requests, 200))

    workdir = Path(tempfile.mkdtemp(prefix="bench-demo-bot-"))
    redis_server = start_redis()
    started: list[ManagedProcess] = []
    references: list[subprocess.Popen[bytes]] = []
    try:
        common = ["--rate-limit-per-min", "0", "--work-ms-text", "20"]
        opt_args = [*common, "--key-prefix", "bench_opt:", "--sqlite-path", str(workdir / "opt.sqlite3")]
        optimized = start_demo_bot(redis_server.url, TOKEN, "optimized", log_dir=workdir, extra_args=opt_args)
        started.append(optimized)
        leg_args = [*common, "--key-prefix", "bench_legacy:", "--sqlite-path", str(workdir / "leg.sqlite3")]
        legacy = start_demo_bot(redis_server.url, TOKEN, "legacy", log_dir=workdir, extra_args=leg_args)
        started.append(legacy)
        ref_proc, ref_port = start_reference("nodelay")
        references.append(ref_proc)
        nagle_proc, nagle_port = start_reference("default")
        references.append(nagle_proc)

        opt_port = int(optimized.extra["port"])
        leg_port = int(legacy.extra["port"])
        ref_build = signed_builder(ref_port)
        samples = [
            measure("reference gevent WSGI (TCP_NODELAY)", ref_port, requests, ref_build),
            measure("demo bot optimized: signed text", opt_port, requests, signed_builder(opt_port)),
            measure("demo bot optimized: invalid signature", opt_port, requests, invalid_builder),
            measure("demo bot legacy: signed text (20 ms)", leg_port, max(10, requests // 5),
                    signed_builder(leg_port), warmup=5),
            measure("reference gevent WSGI (default, Nagle)", nagle_port, stall_requests,
                    signed_builder(nagle_port), warmup=2),
        ]  # fmt: skip
        wrk = run_wrk(ref_port)
    finally:
        for proc in references:
            proc.terminate()
            proc.wait(timeout=5)
        for bot in started:
            bot.stop()
        redis_server.stop()

    ref, opt, invalid, leg, nagle = samples
    print(f"demo bot webhook ack latency, sequential keep-alive, {requests} requests per target (ms)")
    print(f"{'target':<38} {'n':>5} {'p50':>8} {'p99':>8} {'mean':>8} {'server':>7}   answered")
    for sample in samples:
        print(row(sample))
    ratios = {
        "optimized_p50_over_reference": opt.p50 / ref.p50,
        "optimized_p99_over_reference": opt.p99 / ref.p99,
        "invalid_sig_p50_over_reference": invalid.p50 / ref.p50,
        "invalid_sig_p99_over_reference": invalid.p99 / ref.p99,
        "legacy_p50_over_optimized": leg.p50 / opt.p50,
        "legacy_p99_over_optimized": leg.p99 / opt.p99,
        "nagle_reference_p50_over_reference": nagle.p50 / ref.p50,
    }
    print("ratios")
    for name, value in ratios.items():
        print(f"  {name:<40} {value:8.2f}")
    if wrk:
        print("wrk -t1 -c1 against the TCP_NODELAY reference (GET):")
        print(wrk)
    expected = {
        ref.name: {200},
        opt.name: {200},
        invalid.name: {403},
        leg.name: {200},
        nagle.name: {200},
    }
    wrong = [s.name for s in samples if set(s.statuses) - expected[s.name]]
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "requests": requests,
                    "targets": {
                        s.name: {"p50_ms": s.p50, "p99_ms": s.p99,
                                 "mean_ms": statistics.fmean(s.latencies_ms), "n": len(s.latencies_ms)}
                        for s in samples
                    },
                    "ratios": ratios,
                    "cpus": os.cpu_count(),
                },
                indent=2,
            )
        )  # fmt: skip
    shutil.rmtree(workdir, ignore_errors=True)
    if wrong:
        print(f"unexpected statuses from: {', '.join(wrong)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
