"""The errors of the fault layer: one base (:class:`FaultError`) under the suite's root exception."""

from __future__ import annotations

from perfsuite.errors import PerfsuiteError


class FaultError(PerfsuiteError):
    """A fault could not be injected or healed, or a fault proxy refused a request."""


class ApiError(FaultError):
    """The fault proxy's HTTP API answered with an error (Toxiproxy's ``{"error", "status"}`` body).

    The server raises it to answer a request; the client raises it when an answer is an error.
    """

    def __init__(self, message: str, status: int, context: str = "") -> None:
        super().__init__(f"{context}: {message} (HTTP {status})" if context else message)
        self.message = message
        """What went wrong, as Toxiproxy words it (``proxy not found``)."""
        self.status = status
        """HTTP status code: 400 bad request, 404 not found, 409 already exists, 500 server side."""
        self.context = context
        """Where the client met it (``POST http://127.0.0.1:8474/proxies``); empty on the server."""

    def to_json(self) -> dict[str, object]:
        """The error body Toxiproxy sends: ``{"error": message, "status": status}``."""
        return {"error": self.message, "status": self.status}


class InvalidToxic(FaultError, ValueError):
    """A toxic's type, stream, toxicity or attributes are not valid (HTTP 400 at the API)."""


__all__ = ["ApiError", "FaultError", "InvalidToxic"]
