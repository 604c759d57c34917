"""Domain errors; views map them to a French message or an HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """Base class; `message` is safe to show to the user (already translated by the caller)."""

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotAllowed(DomainError):
    """The actor may not do this."""


class NotFound(DomainError):
    """No such object (or not visible to this actor)."""


class Conflict(DomainError):
    """The object changed since the form was loaded (optimistic locking)."""


class InvalidInput(DomainError):
    """The values break a rule (password policy, SIRET checksum, ...)."""


class AlreadyExists(InvalidInput):
    """The object is there already (a unique key: a SIRET, an e-mail), maybe created a moment ago by
    the same request sent twice; the caller answers 409."""
