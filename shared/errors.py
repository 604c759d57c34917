"""The base of the apps' domain errors (STYLE §3): a French message, and the form field it
concerns when there is one, so a view can put it beside that field and keep the input."""

from __future__ import annotations


class DomainError(Exception):
    """A rule refused the action.

    :param message: French, shown as it is.
    :param field: the form field at fault, or None for the whole form.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
