"""A small client of Toxiproxy's REST API: drives ``perfsuite chaos-proxy`` or a real Toxiproxy.

Plain ``urllib`` with a timeout on every request; an error answer raises
:class:`~perfsuite.faults.errors.ApiError` (with the HTTP status), an unreachable server
:class:`~perfsuite.faults.errors.FaultError`. Answers come back as frozen values.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from perfsuite.faults.errors import ApiError, FaultError
from perfsuite.redact import redact_text as redact

DEFAULT_API_URL = "http://127.0.0.1:8474"
"""Toxiproxy's default API address."""


@dataclass(frozen=True, slots=True)
class ToxicState:
    """A toxic as the API reports it."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: Mapping[str, Any]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToxicState:
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            stream=str(data.get("stream", "downstream")),
            toxicity=float(data.get("toxicity", 1.0)),
            attributes=MappingProxyType(dict(data.get("attributes") or {})),
        )


@dataclass(frozen=True, slots=True)
class ProxyState:
    """A proxy as the API reports it."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[ToxicState, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProxyState:
        return cls(
            name=str(data["name"]),
            listen=str(data["listen"]),
            upstream=str(data["upstream"]),
            enabled=bool(data["enabled"]),
            toxics=tuple(ToxicState.from_json(item) for item in data.get("toxics") or ()),
        )

    @property
    def listen_port(self) -> int:
        """The port the proxy listens on."""
        return int(self.listen.rpartition(":")[2])


class ToxiproxyClient:
    """Toxiproxy's REST API at ``url`` (``http://127.0.0.1:8474``); ``timeout_s`` per request."""

    def __init__(self, url: str = DEFAULT_API_URL, timeout_s: float = 5.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FaultError(f"the fault proxy API URL must be http://HOST:PORT, got {url!r}")
        self.url = url.rstrip("/")
        """Base URL of the API."""
        self.timeout_s = timeout_s
        """Seconds each request may take."""
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        # no HTTP(S)_PROXY from the environment: the API is on this host or this compose network

    def __repr__(self) -> str:
        return f"ToxiproxyClient({redact(self.url)!r})"

    # -- server --------------------------------------------------------------------------------

    def version(self) -> str:
        """The server's version (Toxiproxy answers JSON ``{"version": ...}``, before 2.6 plain text)."""
        raw = self._send("GET", "/version", raw=True)
        try:
            data = json.loads(raw)
        except ValueError:
            return raw.strip()
        return str(data.get("version", raw)) if isinstance(data, dict) else raw.strip()

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._send("POST", "/reset", body=b"")

    # -- proxies -------------------------------------------------------------------------------

    def proxies(self) -> dict[str, ProxyState]:
        """Every proxy by name."""
        data = self._send("GET", "/proxies")
        return {name: ProxyState.from_json(item) for name, item in data.items()}

    def proxy(self, name: str) -> ProxyState:
        """The proxy called ``name`` (ApiError 404 if there is none)."""
        return ProxyState.from_json(self._send("GET", f"/proxies/{_quote(name)}"))

    def create_proxy(self, name: str, listen: str, upstream: str, enabled: bool = True) -> ProxyState:
        """Create a proxy (ApiError 409 if the name exists); ``listen`` port 0 picks a free port."""
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return ProxyState.from_json(self._send("POST", "/proxies", body))

    def populate(self, proxies: list[Mapping[str, Any]]) -> list[ProxyState]:
        """Create the proxies, replacing any of the same name whose addresses differ."""
        data = self._send("POST", "/populate", proxies)
        return [ProxyState.from_json(item) for item in data["proxies"]]

    def update_proxy(
        self,
        name: str,
        *,
        enabled: bool | None = None,
        listen: str | None = None,
        upstream: str | None = None,
    ) -> ProxyState:
        """Change a proxy's fields; a new listen or upstream restarts it."""
        body = {
            key: value
            for key, value in (("enabled", enabled), ("listen", listen), ("upstream", upstream))
            if value is not None
        }
        return ProxyState.from_json(self._send("POST", f"/proxies/{_quote(name)}", body))

    def set_enabled(self, name: str, enabled: bool) -> ProxyState:
        """Enable or disable (take down: connects refused, connections closed) a proxy."""
        return self.update_proxy(name, enabled=enabled)

    def delete_proxy(self, name: str) -> None:
        """Delete a proxy."""
        self._send("DELETE", f"/proxies/{_quote(name)}")

    # -- toxics --------------------------------------------------------------------------------

    def toxics(self, proxy: str) -> list[ToxicState]:
        """The proxy's active toxics."""
        return [ToxicState.from_json(item) for item in self._send("GET", f"/proxies/{_quote(proxy)}/toxics")]

    def toxic(self, proxy: str, name: str) -> ToxicState:
        """One active toxic (ApiError 404 if there is none)."""
        return ToxicState.from_json(self._send("GET", f"/proxies/{_quote(proxy)}/toxics/{_quote(name)}"))

    def add_toxic(
        self,
        proxy: str,
        type: str,
        attributes: Mapping[str, Any],
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> ToxicState:
        """Add a toxic (name default ``<type>_<stream>``; ApiError 409 if the name is taken)."""
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes),
        }
        if name:
            body["name"] = name
        return ToxicState.from_json(self._send("POST", f"/proxies/{_quote(proxy)}/toxics", body))

    def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        attributes: Mapping[str, Any] | None = None,
        toxicity: float | None = None,
    ) -> ToxicState:
        """Change a toxic's attributes (those given) and/or toxicity."""
        body: dict[str, Any] = {"attributes": dict(attributes or {})}
        if toxicity is not None:
            body["toxicity"] = toxicity
        path = f"/proxies/{_quote(proxy)}/toxics/{_quote(name)}"
        return ToxicState.from_json(self._send("POST", path, body))

    def remove_toxic(self, proxy: str, name: str) -> None:
        """Remove a toxic (ApiError 404 if there is none)."""
        self._send("DELETE", f"/proxies/{_quote(proxy)}/toxics/{_quote(name)}")

    # -- transport -----------------------------------------------------------------------------

    def _send(self, method: str, path: str, body: Any = None, raw: bool = False) -> Any:
        data = body if isinstance(body, bytes) else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("User-Agent", "perfsuite-faults")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        where = f"{method} {redact(self.url)}{path}"
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                text = response.read().decode("utf-8", errors="replace")
        except urllib.error.HTTPError as exc:
            raise _api_error(exc, where) from None
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FaultError(f"{where}: the fault proxy API does not answer: {reason}") from None
        if raw:
            return text
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise FaultError(f"{where}: the answer is not JSON: {text[:200]!r}") from None


def _api_error(exc: urllib.error.HTTPError, where: str) -> ApiError:
    try:
        text = exc.read().decode("utf-8", errors="replace")
    except OSError:
        text = ""
    message = text.strip()[:500] or (exc.reason if isinstance(exc.reason, str) else "")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        message = str(data.get("error") or data.get("title") or message)  # "title" before Toxiproxy 2.1
    return ApiError(message, exc.code, where)


def _quote(name: str) -> str:
    return urllib.parse.quote(name, safe="")


__all__ = ["DEFAULT_API_URL", "ProxyState", "ToxicState", "ToxiproxyClient"]
