"""Credentials out of text shown to people: URLs and command lines in logs, marks and reports."""

from __future__ import annotations

import re

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@\s:]*):[^@\s/]*@")
_SECRET_OPTION = re.compile(
    r"(?P<flag>(?<!\S)(?:-a|--pass|--password|--requirepass|--token|--auth|--secret))(?P<sep>=|\s+)\S+"
)
_SECRET_ASSIGNMENT = re.compile(
    r"(?P<key>\b[A-Za-z_][A-Za-z0-9_]*(?:PASS|PASSWORD|PASSWD|TOKEN|SECRET|KEY)[A-Za-z0-9_]*)=\S+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` (a URL or a command line) with credentials replaced by ``***``: URL passwords,
    the value after ``-a``/``--password``/``--token``-like flags and ``*PASSWORD=``/``*TOKEN=``
    style assignments."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _SECRET_OPTION.sub(lambda m: f"{m['flag']}{m['sep']}***", text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m['key']}=***", text)


__all__ = ["redact"]
