"""The base of the apps' domain errors (STYLE §3): a French message, and the form field it
concerns when there is one, so a view can put it beside that field and keep the input."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext


class DomainError(Exception):
    """A rule refused the action.

    :param message: French, marked for translation where it is written (`N_("… %(name)s …")`),
        its `%(name)s` filled from `params`.
    :param field: the form field at fault, or None for the whole form.
    """

    def __init__(self, message: str, field: str | None = None, **params: Any) -> None:
        super().__init__(message % params if params else message)
        self.template = message
        self.params = params
        self.field = field

    @property
    def message(self) -> str:
        """The message in the page's language (French outside a request, or with no translation)."""
        return gettext(self.template, **self.params)
