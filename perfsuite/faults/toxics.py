"""Toxics: what the fault proxy does to the bytes of one direction of a connection.

The four types the suite uses, with Toxiproxy's names, attributes and defaults so that a real
Toxiproxy accepts the same JSON:

=============  ===========================  ==================================================
type           attributes                   effect while the toxic is active
=============  ===========================  ==================================================
``latency``    ``latency``, ``jitter`` (ms)  every chunk is held ``latency ± jitter`` ms after it
                                            was read
``timeout``    ``timeout`` (ms)             no data passes; with ``timeout > 0`` the connection is
                                            closed that many ms after the toxic took hold, with 0
                                            it is held open until the toxic is removed (removing
                                            it then closes the connection, as Toxiproxy does)
``reset_peer`` ``timeout`` (ms)             the first data to arrive is dropped and, ``timeout`` ms
                                            later, both ends get a TCP RST
``bandwidth``  ``rate`` (KB/s, 1 KB = 1000  the direction carries at most ``rate`` KB per second
               bytes)                       (0: unlimited)
=============  ===========================  ==================================================

Every toxic has a ``name`` (default ``<type>_<stream>``), a ``stream`` (``upstream``: client to
server, ``downstream``: server to client; default downstream) and a ``toxicity`` (the probability,
0..1, that it applies to a given connection; default 1).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from perfsuite.faults.errors import InvalidToxic

STREAMS = ("upstream", "downstream")
"""Toxiproxy's stream names: ``upstream`` is client -> server, ``downstream`` is server -> client."""

DEFAULT_STREAM = "downstream"


@dataclass(frozen=True, slots=True)
class Toxic:
    """One toxic on one stream of a proxy (a value: updating a toxic makes a new one)."""

    type: ClassVar[str] = ""
    """Toxiproxy's type name (``latency``)."""
    attribute_fields: ClassVar[Mapping[str, str]] = {}
    """JSON attribute name -> field name (``{"latency": "latency_ms"}``)."""

    name: str
    """Unique on its proxy; Toxiproxy's default is ``<type>_<stream>``."""
    stream: str = DEFAULT_STREAM
    """``upstream`` (client -> server) or ``downstream`` (server -> client)."""
    toxicity: float = 1.0
    """Probability (0..1) that the toxic applies to a connection; drawn once per connection."""

    def attributes(self) -> dict[str, int]:
        """The toxic's attributes under their JSON names."""
        return {key: getattr(self, attr) for key, attr in self.attribute_fields.items()}

    def to_json(self) -> dict[str, Any]:
        """The toxic object of Toxiproxy's API: name, type, stream, toxicity, attributes."""
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": self.attributes(),
        }

    def updated(self, body: Mapping[str, Any]) -> Toxic:
        """This toxic with the ``attributes`` and ``toxicity`` of an update request merged in.

        Attributes not named keep their value (Toxiproxy decodes the update onto the old toxic).
        """
        changes: dict[str, Any] = _attribute_values(type(self), body.get("attributes") or {})
        if "toxicity" in body:
            changes["toxicity"] = _toxicity(body["toxicity"])
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class LatencyToxic(Toxic):
    """Holds every chunk ``latency_ms`` ± ``jitter_ms`` after it was read (order is kept)."""

    type: ClassVar[str] = "latency"
    attribute_fields: ClassVar[Mapping[str, str]] = {"latency": "latency_ms", "jitter": "jitter_ms"}

    latency_ms: int = 0
    """Delay in milliseconds."""
    jitter_ms: int = 0
    """The delay varies uniformly by up to this many milliseconds either way."""

    def delay_s(self, rng: random.Random) -> float:
        """One chunk's delay in seconds (never negative)."""
        jitter = rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return max(0.0, self.latency_ms + jitter) / 1000.0


@dataclass(frozen=True, slots=True)
class TimeoutToxic(Toxic):
    """Stops all data; closes the connection after ``timeout_ms`` (0: holds it until removed)."""

    type: ClassVar[str] = "timeout"
    attribute_fields: ClassVar[Mapping[str, str]] = {"timeout": "timeout_ms"}

    timeout_ms: int = 0
    """Milliseconds after the toxic took hold of a connection until it is closed; 0 never."""


@dataclass(frozen=True, slots=True)
class ResetPeerToxic(Toxic):
    """Drops the first data to arrive and resets both ends (TCP RST) ``timeout_ms`` later."""

    type: ClassVar[str] = "reset_peer"
    attribute_fields: ClassVar[Mapping[str, str]] = {"timeout": "timeout_ms"}

    timeout_ms: int = 0
    """Milliseconds between the first data and the reset; 0 resets at once."""


@dataclass(frozen=True, slots=True)
class BandwidthToxic(Toxic):
    """Limits the stream to ``rate_kb_s`` kilobytes (1000 bytes) per second."""

    type: ClassVar[str] = "bandwidth"
    attribute_fields: ClassVar[Mapping[str, str]] = {"rate": "rate_kb_s"}

    rate_kb_s: int = 0
    """KB (1000 bytes) per second; 0 means no limit."""

    @property
    def bytes_per_s(self) -> int:
        """The rate in bytes per second (0: no limit)."""
        return self.rate_kb_s * 1000


TOXIC_TYPES: Mapping[str, type[Toxic]] = {
    cls.type: cls for cls in (LatencyToxic, TimeoutToxic, ResetPeerToxic, BandwidthToxic)
}
"""Toxic type name -> class: the toxics this proxy implements."""

_MAX_ATTRIBUTE = 24 * 3600 * 1000  # one day in ms; also far above any sensible rate in KB/s


def toxic_from_json(body: object) -> Toxic:
    """A toxic from the body of ``POST /proxies/{proxy}/toxics``, defaults filled in as Toxiproxy does.

    Unknown top-level fields are ignored (as Toxiproxy does); unknown attributes are refused, so a
    misspelt ``latancy`` cannot silently add a toxic that does nothing. Raises :class:`InvalidToxic`
    naming the field that is wrong.
    """
    if not isinstance(body, Mapping):
        raise InvalidToxic("a toxic must be a JSON object")
    kind = body.get("type")
    cls = TOXIC_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidToxic(f"invalid toxic type {kind!r}; supported: {', '.join(TOXIC_TYPES)}")
    stream = body.get("stream") or DEFAULT_STREAM
    if not isinstance(stream, str) or stream.lower() not in STREAMS:
        raise InvalidToxic(f"stream was invalid, can be either upstream or downstream (got {stream!r})")
    stream = stream.lower()
    name = body.get("name") or f"{cls.type}_{stream}"
    if not isinstance(name, str):
        raise InvalidToxic(f"toxic name must be a string, got {name!r}")
    toxicity = _toxicity(body["toxicity"]) if body.get("toxicity") is not None else 1.0
    values = _attribute_values(cls, body.get("attributes") or {})
    return cls(name=name, stream=stream, toxicity=toxicity, **values)


def validate_attributes(kind: str, attributes: Mapping[str, Any]) -> dict[str, int]:
    """``attributes`` of a toxic of type ``kind`` checked and completed with defaults (JSON names)."""
    cls = TOXIC_TYPES.get(kind)
    if cls is None:
        raise InvalidToxic(f"invalid toxic type {kind!r}; supported: {', '.join(TOXIC_TYPES)}")
    toxic: Toxic = cls(kind, DEFAULT_STREAM, 1.0, **_attribute_values(cls, attributes))
    return toxic.attributes()


def _attribute_values(cls: type[Toxic], attributes: object) -> dict[str, int]:
    if not isinstance(attributes, Mapping):
        raise InvalidToxic("attributes must be a JSON object")
    allowed = cls.attribute_fields
    unknown = sorted(set(attributes) - set(allowed))
    if unknown:
        raise InvalidToxic(
            f"unknown attribute(s) {unknown} for a {cls.type} toxic; allowed: {', '.join(allowed)}"
        )
    values: dict[str, int] = {}
    for key, value in attributes.items():
        number = _whole_number(value)
        if number is None or not 0 <= number <= _MAX_ATTRIBUTE:
            raise InvalidToxic(
                f"attribute {key} of a {cls.type} toxic must be a whole number from 0 to {_MAX_ATTRIBUTE}, "
                f"got {value!r}"
            )
        values[allowed[key]] = number
    return values


def _whole_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _toxicity(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidToxic(f"toxicity must be a number from 0 to 1, got {value!r}")
    return float(value)


__all__ = [
    "DEFAULT_STREAM",
    "STREAMS",
    "TOXIC_TYPES",
    "BandwidthToxic",
    "LatencyToxic",
    "ResetPeerToxic",
    "TimeoutToxic",
    "Toxic",
    "toxic_from_json",
    "validate_attributes",
]
