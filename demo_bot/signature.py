"""Twilio request validation: ``X-Twilio-Signature`` computed exactly as Twilio does.

signature = base64(HMAC-SHA1(auth token, URL + name1 + value1 + name2 + value2 ...)) with the POST
parameters sorted by name (and, for a repeated name, its distinct values sorted), as Twilio's
own ``RequestValidator`` does. The URL is the public one Twilio called, port and query included.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import defaultdict
from collections.abc import Iterable
from urllib.parse import quote


def compute_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for a POST of ``params`` to ``url``."""
    grouped: dict[str, set[str]] = defaultdict(set)
    for name, value in params:
        grouped[name].add(value)
    parts = [url]
    for name in sorted(grouped):
        for value in sorted(grouped[name]):
            parts.append(name)
            parts.append(value)
    digest = hmac.new(auth_token.encode("utf-8"), "".join(parts).encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def is_valid_signature(
    auth_token: str, url: str, params: Iterable[tuple[str, str]], signature: str | None
) -> bool:
    """True when ``signature`` (the header value, None when absent) matches; constant-time compare."""
    if not signature:
        return False
    expected = compute_signature(auth_token, url, params)
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("ascii", "replace"))


def request_url(public_url: str | None, host_header: str, path: str, query: str) -> str:
    """The URL Twilio signed: ``public_url`` when configured, else ``http://{Host}{path}{?query}``.

    ``path`` is the decoded WSGI ``PATH_INFO``; it is quoted back as it appears on the wire.
    """
    if public_url:
        return public_url
    url = "http://" + host_header + quote(path, safe="/:@!$&'()*+,;=-._~")
    if query:
        url += "?" + query
    return url


__all__ = ["compute_signature", "is_valid_signature", "request_url"]
