"""Secrets out of everything a person or a file sees: URLs, command lines, the bot's own words.

One place for it: the run's configuration snapshot (:func:`redact_url`), fault drivers' commands
and URLs (:func:`redact_text`), and excerpts of a bot's answers in failure reasons and the
signature probe (:class:`Redactor`), which also removes anything shaped like a Twilio auth token
or an X-Twilio-Signature (a bot echoing the expected signature hands out a signing oracle).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

REDACTED = "<redacted>"
EXCERPT_CHARS = 120
"""Length of a body excerpt shown with a failure reason or a probe case."""

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@\s:]*):[^@\s/]*@")
_SECRET_OPTION = re.compile(
    r"(?P<flag>(?<!\S)(?:-a|--pass|--password|--requirepass|--token|--auth|--secret))(?P<sep>=|\s+)\S+"
)
_SECRET_ASSIGNMENT = re.compile(
    r"(?P<key>\b[A-Za-z_][A-Za-z0-9_]*(?:PASS|PASSWORD|PASSWD|TOKEN|SECRET|KEY)[A-Za-z0-9_]*)=\S+",
    re.IGNORECASE,
)
_SECRET_SHAPES = re.compile(
    r"\b[0-9a-fA-F]{32}\b"  # a bare auth token (SIDs, SM + 32 hex, do not match)
    r"|(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{27}="  # a base64 HMAC-SHA1 signature
)


def redact_url(url: str | None) -> str | None:
    """``url`` with any password replaced by ``***`` (``redis://:***@host:6379/0``)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.hostname or ""
    netloc = f"{parts.username}:***@{netloc}" if parts.username else f":***@{netloc}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` (a URL, a command line, an error message) with credentials replaced by ``***``: each
    of ``secrets``, URL passwords, the value after ``-a``/``--password``/``--token``-like flags and
    ``*PASSWORD=``/``*TOKEN=`` style assignments."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _SECRET_OPTION.sub(lambda m: f"{m['flag']}{m['sep']}***", text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m['key']}=***", text)


class Redactor:
    """Removes secrets from a bot's words: the given ones (the auth tokens in use), anything shaped
    like an auth token or a signature; whitespace collapsed; cut to ``limit`` characters."""

    def __init__(self, *secrets: str) -> None:
        self._secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def __repr__(self) -> str:
        return f"Redactor(<{len(self._secrets)} secret(s)>)"

    def __call__(self, text: str, limit: int = EXCERPT_CHARS) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        text = " ".join(_SECRET_SHAPES.sub(REDACTED, text).split())
        return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["EXCERPT_CHARS", "REDACTED", "Redactor", "redact_text", "redact_url"]
