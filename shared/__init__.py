"""The relying-party shell the three apps stand on (SPEC §6, issue "the relying-party shell").

The apps import only these names: `from shared import create_app, Model, owned_or_404, ...`.

Each name is loaded from its module when first asked for (PEP 562), not here: importing one module
of the shell (`shared.locking`, `shared.outbox`...) runs this file, and must not pull Flask and the
whole shell with it (the IdP's domain core uses those modules and knows nothing of Flask).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# public name → the module of the shell that defines it (under `shared.`)
_PUBLIC: dict[str, tuple[str, ...]] = {
    "applications": ("APPLICATIONS", "role_label", "role_title"),
    "bounds": ("ascii_digits", "bounded_int", "DayOutOfRange", "FIRST_DAY", "LAST_DAY", "parse_day"),
    "cli": ("main",),
    "db": ("make_db",),
    "errors": ("DomainError",),
    "factory": ("create_app", "form_view"),
    "files": (
        "accepted_label", "download_name", "JPEG", "OFFICE", "PDF", "PNG", "read_upload", "size_label", "store",
        "Upload", "UploadRefused", "ZIP",
    ),
    "forms": (
        "choices", "CONFLICT_MESSAGE", "day_in_range", "EMAIL", "Form", "optional", "REQUIRED", "required",
        "strip_control", "VersionedForm",
    ),
    "guard": ("check_access", "one_of_or_404", "owned_or_404", "OwnedByStructure", "parse_id", "RoleMissing"),
    "i18n": ("lazy_gettext", "N_", "paris_shown", "plural", "translated"),
    "identity": ("Identity", "StructureRef"),
    "keys": ("signing_keys",),
    "locking": ("check_version", "StaleVersion", "Versioned"),
    "mail": ("send_mail",),
    "migrations": ("run_env",),
    "paging": ("Page", "page_number", "paginate"),
    "service": ("ApiConflict", "ApiError", "ApiInvalid", "ApiUnavailable", "require_bearer", "ServiceClient"),
    "sso": (
        "access_token", "current_identity", "forbidden", "login_required", "requires_role", "safe_next",
        "switch_url",
    ),
    "timefmt": ("from_paris", "PARIS", "paris"),
    "types": ("BigId", "UTCDateTime", "utcnow"),
    "web": ("error_page", "json_body", "problem"),
}
_MODULE_OF = {name: module for module, names in _PUBLIC.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'shared' has no attribute {name!r}")
    value = getattr(import_module(f"shared.{module}"), name)
    globals()[name] = value  # once loaded, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
