"""The signature probe: how a webhook bot answers valid, wrong, missing, misdirected and replayed
X-Twilio-Signatures, in five requests.

``perfsuite probe --host URL`` (and the preflight of a load run) POSTs, with Twilio's real field set
and signing (:class:`perfsuite.twilio.TrafficGenerator`, :func:`perfsuite.twilio.sign`):

1. ``valid``: a message signed with TWILIO_AUTH_TOKEN for the public URL (Twilio's scheme: accept);
2. ``wrong_token``: a message signed with another auth token (refuse);
3. ``missing_signature``: a message without the X-Twilio-Signature header (refuse);
4. ``wrong_url``: a message signed for another URL, the public URL's other scheme (refuse);
5. ``replay_broken_signature``: message 1 again, same MessageSid and body, with a broken
   signature (refuse: a bot that skips validation for a MessageSid it knows accepts it).

Each answer is judged against what Twilio's scheme expects: a 2xx accepts; any 4xx but 429 refuses;
429 and 503 are backpressure (that case is inconclusive); a connection error or timeout is no
answer. :class:`ProbeReport` holds the cases and names the likely cause when something is off.

The probe's requests never count in a load run's figures: it uses neither Locust nor the collector
(a plain ``http.client`` request per case, on its own connection), and every request is marked
with the :data:`PROBE_HEADER` header (the probe's id) and a Body that says it is a probe.

This is core code: it imports only the standard library and perfsuite's twilio, config and errors.
The auth token never appears in a repr, a body excerpt or a message.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from perfsuite.config import TargetConfig
from perfsuite.errors import EXIT_OK, EXIT_POOR, EXIT_UNAVAILABLE, ConfigError
from perfsuite.redact import Redactor
from perfsuite.twilio import BACKPRESSURE_STATUSES, SignatureFault, TrafficGenerator, WebhookMessage, sign

if TYPE_CHECKING:
    from perfsuite.config import SuiteConfig

PROBE_HEADER = "X-Perfsuite-Probe"
"""Header on every probe request; its value is the probe's id (:attr:`ProbeReport.probe_id`)."""
PROBE_BODY = "perfsuite signature probe: not a real message, no reply needed"
"""The Body of the probe's messages, so a bot's logs show what they are."""
EXIT_INCONCLUSIVE = 1
"""Exit code when no case went wrong but some could not be judged (backpressure, 5xx, some no answer)."""
DEFAULT_TIMEOUT_S = 5.0
_MAX_BODY_BYTES = 64 * 1024
_TARGET_DEFAULTS = TargetConfig()


class Expectation(StrEnum):
    """What Twilio's signature scheme expects the bot to do with a request."""

    ACCEPT = "accept"
    REFUSE = "refuse"


class Answer(StrEnum):
    """How the bot answered, from the HTTP status alone."""

    ACCEPTED = "accepted"
    """2xx."""
    REFUSED = "refused"
    """4xx other than 429."""
    BACKPRESSURE = "backpressure"
    """429 or 503: the bot asks to slow down; the case cannot be judged."""
    OTHER = "other"
    """1xx, 3xx, 5xx other than 503: neither an acceptance nor a refusal."""
    NO_ANSWER = "no answer"
    """Connection error or timeout (status 0)."""


class Verdict(StrEnum):
    """One case judged against Twilio's scheme."""

    AS_EXPECTED = "as expected"
    ACCEPTS_INVALID = "accepts what Twilio's scheme rejects"
    REJECTS_VALID = "rejects what Twilio's scheme accepts"
    INCONCLUSIVE = "inconclusive"
    NO_ANSWER = "no answer"


class CaseName(StrEnum):
    """The probe's five cases, in the order they are sent."""

    VALID = "valid"
    WRONG_TOKEN = "wrong_token"
    MISSING_SIGNATURE = "missing_signature"
    WRONG_URL = "wrong_url"
    REPLAY_BROKEN_SIGNATURE = "replay_broken_signature"


_DESCRIPTIONS = {
    CaseName.VALID: "signed with TWILIO_AUTH_TOKEN for the public URL",
    CaseName.WRONG_TOKEN: "signed with another auth token",
    CaseName.MISSING_SIGNATURE: "no X-Twilio-Signature header",
    CaseName.WRONG_URL: "signed for another URL (the other scheme)",
    CaseName.REPLAY_BROKEN_SIGNATURE: "the valid message again (same MessageSid, body), signature broken",
}


def answer_of(status: int) -> Answer:
    """How a bot answered with HTTP ``status`` (0: no answer)."""
    if status == 0:
        return Answer.NO_ANSWER
    if status in BACKPRESSURE_STATUSES:
        return Answer.BACKPRESSURE
    if 200 <= status < 300:
        return Answer.ACCEPTED
    if 400 <= status < 500:
        return Answer.REFUSED
    return Answer.OTHER


@dataclass(frozen=True, slots=True)
class ProbeCase:
    """One probe request and the bot's answer."""

    name: CaseName
    expected: Expectation
    """What Twilio's scheme expects: accept the valid message, refuse the four others."""
    status: int
    """HTTP status; 0 when there was no answer."""
    elapsed_ms: float
    """From connecting to the end of the (bounded) body read, milliseconds; 0 when not sent."""
    body_excerpt: str
    """The start of the response body (whitespace collapsed, secrets redacted, <= 120 characters)."""
    message_sid: str
    """The MessageSid sent (to find the request in the bot's logs)."""
    error: str | None = None
    """Why there was no answer (connection error, timeout, not sent)."""

    @property
    def description(self) -> str:
        """What was sent, in words."""
        return _DESCRIPTIONS[self.name]

    @property
    def answer(self) -> Answer:
        """How the bot answered (from :attr:`status`)."""
        return answer_of(self.status)

    @property
    def verdict(self) -> Verdict:
        """The case judged against :attr:`expected`."""
        answer = self.answer
        if answer is Answer.NO_ANSWER:
            return Verdict.NO_ANSWER
        if answer not in (Answer.ACCEPTED, Answer.REFUSED):
            return Verdict.INCONCLUSIVE
        if (answer is Answer.ACCEPTED) == (self.expected is Expectation.ACCEPT):
            return Verdict.AS_EXPECTED
        return Verdict.ACCEPTS_INVALID if answer is Answer.ACCEPTED else Verdict.REJECTS_VALID

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, derived ones included."""
        return {
            "name": self.name.value,
            "description": self.description,
            "expected": self.expected.value,
            "status": self.status,
            "answer": self.answer.value,
            "verdict": self.verdict.value,
            "elapsed_ms": round(self.elapsed_ms, 3),
            "body_excerpt": self.body_excerpt,
            "message_sid": self.message_sid,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """Where the probe sends its requests and what it signs them for; validated on creation."""

    host: str
    """Base URL the probe connects to, e.g. ``http://127.0.0.1:8000``."""
    path: str = _TARGET_DEFAULTS.webhook_path
    public_url: str = ""
    """The URL the bot sees, which signatures are made for; empty means ``host + path``."""
    timeout_s: float = DEFAULT_TIMEOUT_S
    """Per request: connect, and each read, in seconds."""
    account_sid: str = _TARGET_DEFAULTS.account_sid
    bot_number: str = _TARGET_DEFAULTS.bot_number

    def __post_init__(self) -> None:
        _check_http_url("--host", self.host)
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ConfigError(f"--path: must start with '/', got {self.path!r}")
        if self.public_url:
            _check_http_url("--public-url", self.public_url)
        else:
            object.__setattr__(self, "public_url", self.webhook_url)
        if isinstance(self.timeout_s, bool) or not (
            isinstance(self.timeout_s, int | float)
            and math.isfinite(self.timeout_s)
            and 0 < self.timeout_s <= 600
        ):
            raise ConfigError(f"--timeout: must be a number of seconds in (0, 600], got {self.timeout_s!r}")

    @classmethod
    def from_config(cls, config: SuiteConfig, host: str, timeout_s: float | None = None) -> ProbeTarget:
        """The target of a load run: its webhook path, public URL, account and number; the request
        timeout is ``target.request_timeout_s`` unless ``timeout_s`` is given."""
        target = config.target
        return cls(
            host=host,
            path=target.webhook_path,
            public_url=config.public_url(host),
            timeout_s=target.request_timeout_s if timeout_s is None else timeout_s,
            account_sid=target.account_sid,
            bot_number=target.bot_number,
        )

    @property
    def webhook_url(self) -> str:
        """The URL the probe POSTs to: ``host`` + ``path``."""
        return self.host.rstrip("/") + self.path


def _check_http_url(flag: str, url: str) -> None:
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is not None:
            parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{flag}: must be an http(s) URL such as http://127.0.0.1:8000, got {url!r}")


def _other_scheme(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="http" if parts.scheme == "https" else "https"))


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """The five cases and what they say about the bot's signature validation."""

    webhook_url: str
    """Where the requests went."""
    public_url: str
    """What the valid signature was made for."""
    probe_id: str
    """The value of :data:`PROBE_HEADER` on every request of this probe."""
    cases: tuple[ProbeCase, ...]
    """In the order sent: the :class:`CaseName` order."""

    def case(self, name: CaseName | str) -> ProbeCase:
        """The case named ``name``."""
        for case in self.cases:
            if case.name == name:
                return case
        raise KeyError(name)

    @property
    def all_as_expected(self) -> bool:
        """Every case answered as Twilio's scheme expects."""
        return all(case.verdict is Verdict.AS_EXPECTED for case in self.cases)

    @property
    def answered(self) -> bool:
        """The host answered at least one request."""
        return any(case.answer is not Answer.NO_ANSWER for case in self.cases)

    @property
    def valid_refused(self) -> bool:
        """The validly signed message was refused (4xx)."""
        return self.case(CaseName.VALID).verdict is Verdict.REJECTS_VALID

    @property
    def invalid_accepted(self) -> tuple[CaseName, ...]:
        """The cases with a bad signature that the bot accepted (2xx)."""
        return tuple(case.name for case in self.cases if case.verdict is Verdict.ACCEPTS_INVALID)

    @property
    def findings(self) -> tuple[str, ...]:
        """What is off and its likely cause, one sentence each; empty when all is as expected."""
        if not self.cases or self.all_as_expected:
            return ()
        if not self.answered:
            error = self.case(CaseName.VALID).error or "no response"
            return (f"no answer from {self.webhook_url} ({error})",)
        findings: list[str] = []
        valid = self.case(CaseName.VALID)
        accepted = set(self.invalid_accepted)
        if valid.verdict is Verdict.REJECTS_VALID:
            if CaseName.WRONG_URL in accepted:
                accepted.discard(CaseName.WRONG_URL)
                findings.append(
                    "public_url mismatch: the bot accepts signatures made for "
                    f"{_other_scheme(self.public_url)} and refuses those for {self.public_url}; "
                    "give the URL the bot sees as the public URL"
                )
            else:
                findings.append(
                    f"every valid request refused (HTTP {valid.status}): likely a token mismatch "
                    "(TWILIO_AUTH_TOKEN is not the bot's), a public_url other than the one the bot "
                    f"validates against (signed for {self.public_url}; the bot must see exactly that URL), "
                    "or a bot that does not follow Twilio's signature scheme"
                )
        findings += _acceptance_findings(accepted, valid.verdict is Verdict.AS_EXPECTED, self.public_url)
        unjudged: dict[str, list[str]] = {}  # reason -> cases, in case order
        for case in self.cases:
            if case.verdict in (Verdict.INCONCLUSIVE, Verdict.NO_ANSWER):
                unjudged.setdefault(_unjudged(case), []).append(case.name)
        findings += [
            f"{', '.join(names)} could not be judged: {reason}" for reason, names in unjudged.items()
        ]
        return tuple(findings)

    @property
    def diagnosis(self) -> str | None:
        """The findings as one line; None when all is as expected."""
        return "; ".join(self.findings) or None

    @property
    def exit_code(self) -> int:
        """0 all as expected; 2 the valid message refused or a bad signature accepted; 69 the host
        answered nothing; 1 otherwise (some case could not be judged)."""
        if not self.answered:
            return EXIT_UNAVAILABLE
        if self.valid_refused or self.invalid_accepted:
            return EXIT_POOR
        return EXIT_OK if self.all_as_expected else EXIT_INCONCLUSIVE

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        return {
            "webhook_url": self.webhook_url,
            "public_url": self.public_url,
            "probe_id": self.probe_id,
            "all_as_expected": self.all_as_expected,
            "diagnosis": self.diagnosis,
            "findings": list(self.findings),
            "cases": [case.to_dict() for case in self.cases],
        }

    def render_lines(self) -> list[str]:
        """The report for a terminal: a heading, one line per case, then the diagnosis line."""
        lines = [f"signature probe of {self.webhook_url} (signed for {self.public_url})"]
        width = max((len(case.name) for case in self.cases), default=0)
        for case in self.cases:
            got = f"HTTP {case.status}" if case.status else "no answer"
            detail = case.error if case.error else case.body_excerpt
            lines.append(
                f"  {case.name:<{width}}  expects {case.expected:<6}  got {got:<9} {case.elapsed_ms:8.1f} ms"
                f"  {case.verdict}" + (f"  | {detail}" if detail else "")
            )
        if self.all_as_expected:
            lines.append(f"all {len(self.cases)} cases as expected")
        else:
            lines.append(f"diagnosis: {self.diagnosis}")
        return lines


def _unjudged(case: ProbeCase) -> str:
    if case.answer is Answer.NO_ANSWER:
        return f"no answer ({case.error or 'no response'})"
    if case.answer is Answer.BACKPRESSURE:
        return f"backpressure (HTTP {case.status}); probe again when the bot is idle"
    return f"HTTP {case.status} is neither an acceptance (2xx) nor a refusal (4xx)"


def _acceptance_findings(accepted: set[CaseName], valid_accepted: bool, public_url: str) -> list[str]:
    fresh = {CaseName.WRONG_TOKEN, CaseName.MISSING_SIGNATURE, CaseName.WRONG_URL}
    if fresh <= accepted:
        return [
            "the bot does not validate X-Twilio-Signature (it accepts wrong, missing and misdirected ones)"
        ]
    findings = []
    if CaseName.WRONG_TOKEN in accepted:
        findings.append("the bot accepts a signature made with another auth token")
    if CaseName.MISSING_SIGNATURE in accepted:
        findings.append(
            "the bot accepts requests without X-Twilio-Signature (it validates only when present)"
        )
    if CaseName.WRONG_URL in accepted:
        findings.append(
            f"the bot accepts a signature made for {_other_scheme(public_url)}: it ignores the scheme "
            "or tries several URLs"
        )
    if CaseName.REPLAY_BROKEN_SIGNATURE in accepted:
        findings.append(
            "validation skipped for a known MessageSid (replay accepted with a broken signature)"
            if valid_accepted
            else "the bot accepts a broken signature"
        )
    return findings


class _Messages:
    """The probe's webhook messages: real Twilio text messages with the probe's Body, signed as asked."""

    def __init__(self, target: ProbeTarget, auth_token: str, rng: random.Random | None) -> None:
        self._generator = TrafficGenerator(
            target.account_sid, target.bot_number, target.public_url, auth_token, {"text": 1.0}, 0.0, 0.0, rng
        )
        self._token = auth_token
        self._public_url = target.public_url
        self.other_token = os.urandom(16).hex()
        while self.other_token == auth_token:  # pragma: no cover - 1 in 2**128
            self.other_token = os.urandom(16).hex()

    def fresh(self) -> WebhookMessage:
        """A new validly signed message (new sender, new MessageSid)."""
        generated = self._generator.next_message(self._generator.new_sender())
        params = tuple((name, PROBE_BODY if name == "Body" else value) for name, value in generated.params)
        return replace(generated, params=params, signature=self.signed(params))

    def signed(self, params: tuple[tuple[str, str], ...], *, token: str = "", url: str = "") -> str:
        """The signature of ``params`` with ``token`` for ``url`` (default: the valid ones)."""
        return sign(token or self._token, url or self._public_url, params)


def _spoiled(message: WebhookMessage, fault: SignatureFault, signature: str) -> WebhookMessage:
    """``message`` carrying a bad ``signature`` (empty: no header), made bad in the way ``fault`` says."""
    return replace(message, signature=signature, signature_valid=False, signature_fault=fault)


def _broken(signature: str) -> str:
    """``signature`` with its first base64 character changed (a whole 6-bit group: the digest differs)."""
    return ("B" if signature[:1] == "A" else "A") + signature[1:]


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    """0: no answer."""
    elapsed_ms: float
    excerpt: str
    error: str | None = None


def _send(target: ProbeTarget, message: WebhookMessage, probe_id: str, redact: Redactor) -> _Reply:
    """POST ``message`` on a new connection and read (the start of) the answer."""
    parts = urlsplit(target.webhook_url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "", parts.port, timeout=target.timeout_s)
    headers = message.headers() | {PROBE_HEADER: probe_id}
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    started = time.perf_counter()
    try:
        connection.request("POST", path, body=message.urlencoded().encode("utf-8"), headers=headers)
        response = connection.getresponse()
        body = response.read(_MAX_BODY_BYTES)
        elapsed_ms = (time.perf_counter() - started) * 1e3
        return _Reply(response.status, elapsed_ms, redact(body.decode("utf-8", "replace")))
    except TimeoutError:
        return _Reply(0, (time.perf_counter() - started) * 1e3, "", f"timed out after {target.timeout_s:g} s")
    except (OSError, http.client.HTTPException) as exc:
        return _Reply(0, (time.perf_counter() - started) * 1e3, "", redact(f"{type(exc).__name__}: {exc}"))
    finally:
        connection.close()


def probe_signatures(target: ProbeTarget, auth_token: str, rng: random.Random | None = None) -> ProbeReport:
    """Send the five cases to ``target`` (one request each, in order) and judge the answers.

    When the valid message gets no answer the other cases are not sent (the host is down or hangs;
    waiting four more timeouts would tell nothing new). ``rng`` seeds the messages' content.
    """
    if not isinstance(auth_token, str) or not auth_token:
        raise ConfigError("TWILIO_AUTH_TOKEN: not set; the probe signs with the bot's Twilio auth token")
    messages = _Messages(target, auth_token, rng)
    redact = Redactor(auth_token, messages.other_token)
    probe_id = "probe-" + uuid.uuid4().hex
    valid = messages.fresh()
    wrong_token, missing, wrong_url = messages.fresh(), messages.fresh(), messages.fresh()
    plan = (
        (CaseName.VALID, valid),
        (
            CaseName.WRONG_TOKEN,
            _spoiled(
                wrong_token,
                SignatureFault.WRONG_TOKEN,
                messages.signed(wrong_token.params, token=messages.other_token),
            ),
        ),
        (CaseName.MISSING_SIGNATURE, _spoiled(missing, SignatureFault.MISSING, "")),
        (
            CaseName.WRONG_URL,
            _spoiled(
                wrong_url,
                SignatureFault.WRONG_URL,
                messages.signed(wrong_url.params, url=_other_scheme(target.public_url)),
            ),
        ),
        (
            CaseName.REPLAY_BROKEN_SIGNATURE,
            replace(_spoiled(valid, SignatureFault.MANGLED, _broken(valid.signature)), duplicate=True),
        ),
    )
    cases: list[ProbeCase] = []
    for name, message in plan:
        expected = Expectation.ACCEPT if message.signature_valid else Expectation.REFUSE
        if cases and cases[0].answer is Answer.NO_ANSWER:
            reply = _Reply(0, 0.0, "", "not sent: no answer to the valid message")
        else:
            reply = _send(target, message, probe_id, redact)
        cases.append(
            ProbeCase(
                name,
                expected,
                reply.status,
                reply.elapsed_ms,
                reply.excerpt,
                message.message_sid,
                reply.error,
            )
        )
    return ProbeReport(target.webhook_url, target.public_url, probe_id, tuple(cases))


# --------------------------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``perfsuite probe`` flags."""
    parser.add_argument(
        "--host", required=True, help="bot base URL the probe connects to, e.g. http://127.0.0.1:8000"
    )
    parser.add_argument(
        "--path",
        default=_TARGET_DEFAULTS.webhook_path,
        help=f"webhook path (default: {_TARGET_DEFAULTS.webhook_path})",
    )
    parser.add_argument(
        "--public-url",
        default=None,
        help="URL the bot sees and validates signatures against (default: host + path)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds to wait for each answer (default: {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> int:
    """``perfsuite probe``: probe, print the report, return the exit code (see :attr:`ProbeReport.exit_code`;
    64 for bad input, with the message on standard error). The token is TWILIO_AUTH_TOKEN of
    ``environ`` (default ``os.environ``)."""
    env = os.environ if environ is None else environ
    try:
        target = ProbeTarget(
            host=args.host, path=args.path, public_url=args.public_url or "", timeout_s=args.timeout
        )
        report = probe_signatures(target, env.get("TWILIO_AUTH_TOKEN", ""))
    except ConfigError as exc:
        print(f"perfsuite probe: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.format == "json":
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(report.render_lines()))
    return report.exit_code


__all__ = [
    "EXIT_INCONCLUSIVE",
    "PROBE_BODY",
    "PROBE_HEADER",
    "Answer",
    "CaseName",
    "Expectation",
    "ProbeCase",
    "ProbeReport",
    "ProbeTarget",
    "Verdict",
    "add_arguments",
    "answer_of",
    "probe_signatures",
    "run",
]
