"""The fault proxy's proxies by name: what the HTTP API creates, lists, updates and resets.

Every method is one API operation and raises :class:`~perfsuite.faults.errors.ApiError` with
Toxiproxy's status and words (404 proxy not found, 409 proxy already exists, 400 bad request).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gevent.lock

from perfsuite.faults.errors import ApiError, FaultError
from perfsuite.faults.proxy import Proxy, parse_address

DEFAULT_PROXY_LISTEN = "127.0.0.1:0"
"""Listen address of a proxy created without one (loopback, any free port)."""


@dataclass(frozen=True, slots=True)
class ProxySpec:
    """One proxy to create: ``name``, ``listen`` and ``upstream`` addresses, ``enabled``."""

    name: str
    listen: str
    upstream: str
    enabled: bool = True


def proxy_spec_from_json(body: object, where: str = "") -> ProxySpec:
    """A proxy from a create / populate body; ApiError 400 naming the missing or wrong field."""
    prefix = f" at proxy {where}" if where else ""
    if not isinstance(body, Mapping):
        raise ApiError(f"bad request body: a proxy must be a JSON object{prefix}", 400)
    name, listen, upstream = (
        body.get("name"),
        body.get("listen") or DEFAULT_PROXY_LISTEN,
        body.get("upstream"),
    )
    enabled = body.get("enabled", True)
    if not name:
        raise ApiError(f"missing required field: name{prefix}", 400)
    if not upstream:
        raise ApiError(f"missing required field: upstream{prefix}", 400)
    if not all(isinstance(value, str) for value in (name, listen, upstream)) or not isinstance(enabled, bool):
        raise ApiError(
            f"bad request body: name, listen and upstream must be strings, enabled a boolean{prefix}", 400
        )
    try:
        parse_address(listen, "listen", allow_port_zero=True)
        parse_address(upstream, "upstream")
    except ValueError as exc:
        raise ApiError(f"bad request body: {exc}{prefix}", 400) from None
    return ProxySpec(name, listen, upstream, enabled)


class ProxyRegistry:
    """The proxies of one server, by name; every method is one API operation.

    Mutations are serialised with a gevent lock (enabling and disabling yield to the hub).
    """

    def __init__(self, proxy_factory: Callable[[ProxySpec], Proxy] | None = None) -> None:
        self._proxies: dict[str, Proxy] = {}
        self._lock = gevent.lock.RLock()
        self._factory = proxy_factory or (lambda spec: Proxy(spec.name, spec.listen, spec.upstream))

    def all(self) -> dict[str, Proxy]:
        """Every proxy by name."""
        return dict(self._proxies)

    def get(self, name: str) -> Proxy:
        """The proxy called ``name``; ApiError 404 if there is none."""
        proxy = self._proxies.get(name)
        if proxy is None:
            raise ApiError("proxy not found", 404)
        return proxy

    def create(self, spec: ProxySpec) -> Proxy:
        """Create (and, if ``spec.enabled``, start) a proxy; ApiError 409 if the name exists."""
        with self._lock:
            if spec.name in self._proxies:
                raise ApiError("proxy already exists", 409)
            proxy = self._factory(spec)
            if spec.enabled:
                _start(proxy)
            self._proxies[spec.name] = proxy
            return proxy

    def populate(self, specs: Sequence[ProxySpec]) -> list[Proxy]:
        """Toxiproxy's populate: create each proxy, or replace one whose listen/upstream differ.

        A proxy with the same name and addresses is left as it is (toxics and all).
        """
        result = []
        with self._lock:
            for spec in specs:
                existing = self._proxies.get(spec.name)
                if existing is not None and _same_addresses(existing, spec):
                    result.append(existing)
                    continue
                if existing is not None:
                    existing.close()
                    del self._proxies[spec.name]
                result.append(self.create(spec))
        return result

    def update(self, name: str, body: Mapping[str, Any]) -> Proxy:
        """Apply an update body (``listen``, ``upstream``, ``enabled``; other keys ignored)."""
        with self._lock:
            proxy = self.get(name)
            listen, upstream, enabled = body.get("listen"), body.get("upstream"), body.get("enabled")
            if listen is not None and not isinstance(listen, str):
                raise ApiError("bad request body: listen must be a string", 400)
            if upstream is not None and not isinstance(upstream, str):
                raise ApiError("bad request body: upstream must be a string", 400)
            if enabled is not None and not isinstance(enabled, bool):
                raise ApiError("bad request body: enabled must be true or false", 400)
            if listen is not None and _same_listen(proxy, listen):
                listen = None  # the same address: no restart
            try:
                proxy.update(listen=listen or None, upstream=upstream or None, enabled=enabled)
            except ValueError as exc:
                raise ApiError(f"bad request body: {exc}", 400) from None
            except FaultError as exc:
                raise ApiError(str(exc), 500) from None
            return proxy

    def remove(self, name: str) -> None:
        """Stop and delete a proxy (its connections are closed)."""
        with self._lock:
            self.get(name).close()
            del self._proxies[name]

    def reset(self) -> None:
        """Enable every proxy and remove every toxic (``POST /reset``)."""
        with self._lock:
            for proxy in self._proxies.values():
                _start(proxy)
                proxy.reset_toxics()

    def close(self) -> None:
        """Stop every proxy (server shutdown)."""
        with self._lock:
            for proxy in self._proxies.values():
                proxy.close()


def _start(proxy: Proxy) -> None:
    try:
        proxy.enable()
    except FaultError as exc:
        raise ApiError(str(exc), 500) from None


def _same_listen(proxy: Proxy, listen: str) -> bool:
    try:
        return parse_address(listen, "listen", True) == parse_address(proxy.listen, "listen", True)
    except ValueError:
        return False


def _same_addresses(proxy: Proxy, spec: ProxySpec) -> bool:
    return proxy.upstream == spec.upstream and (
        _same_listen(proxy, spec.listen) or spec.listen == proxy.listen
    )


__all__ = ["DEFAULT_PROXY_LISTEN", "ProxyRegistry", "ProxySpec", "proxy_spec_from_json"]
