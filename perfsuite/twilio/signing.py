"""X-Twilio-Signature: how Twilio signs a webhook, and the headers it sends with one.

``X-Twilio-Signature = base64(HMAC-SHA1(auth token, URL + name1 + value1 + name2 + ...))`` with the
parameters sorted by name. The auth token never appears in a repr or a message.
"""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Iterable, Mapping, Sequence

SIGNATURE_HEADER = "X-Twilio-Signature"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
"""Twilio sends this on every webhook; a retry of the same webhook carries the same token."""
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
TWILIO_USER_AGENT = "TwilioProxy/1.1"
API_VERSION = "2010-04-01"


def sign(auth_token: str, url: str, params: Mapping[str, str] | Sequence[tuple[str, str]]) -> str:
    """The X-Twilio-Signature Twilio would send for a form POST of ``params`` to ``url``.

    ``url`` is used exactly as given (scheme, host, port, path and query string): it must be the
    URL the bot reconstructs, which can differ from the address the load generator connects to.
    Parameters are sorted by name (code-point order, i.e. Twilio's case-sensitive order); a name
    given several times contributes each distinct value in sorted order, as the ``twilio``
    package's ``RequestValidator`` does. Text is signed as UTF-8.
    """
    pairs = params.items() if isinstance(params, Mapping) else params
    return signature_with_key(auth_token.encode("utf-8"), url, pairs)


def signature_with_key(key: bytes, url: str, pairs: Iterable[tuple[str, str]]) -> str:
    """:func:`sign` with the token already encoded (UTF-8): the generator's hot path."""
    # set() + sort on (name, value) = sorted names, each distinct value of a name in sorted order.
    payload = url + "".join([name + value for name, value in sorted(set(pairs))])
    return base64.b64encode(hmac.digest(key, payload.encode("utf-8"), "sha1")).decode("ascii")


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two-letter prefix + 32 lowercase hex, from os.urandom (unique across processes)."""
    return prefix + os.urandom(16).hex()


__all__ = [
    "API_VERSION",
    "FORM_CONTENT_TYPE",
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "TWILIO_USER_AGENT",
    "new_sid",
    "sign",
    "signature_with_key",
]
