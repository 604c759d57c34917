"""The relying-party shell the three apps stand on (SPEC §6, issue "the relying-party shell").

The apps import only these names: `from shared import create_app, Model, owned_or_404, ...`.
"""

from __future__ import annotations

from shared.applications import APPLICATIONS, role_label, role_title
from shared.bounds import FIRST_DAY, LAST_DAY, DayOutOfRange, bounded_int, parse_day
from shared.cli import main
from shared.db import make_db
from shared.errors import DomainError
from shared.factory import create_app, form_view
from shared.files import (
    JPEG,
    OFFICE,
    PDF,
    PNG,
    ZIP,
    Upload,
    UploadRefused,
    accepted_label,
    read_upload,
    size_label,
    store,
)
from shared.forms import (
    EMAIL,
    REQUIRED,
    Form,
    VersionedForm,
    choices,
    day_in_range,
    optional,
    required,
    strip_control,
)
from shared.guard import (
    OwnedByStructure,
    RoleMissing,
    check_access,
    one_of_or_404,
    owned_or_404,
    parse_id,
)
from shared.i18n import N_, lazy_gettext, plural, translated
from shared.identity import Identity, StructureRef
from shared.keys import signing_keys
from shared.locking import CONFLICT_MESSAGE, StaleVersion, Versioned, check_version
from shared.mail import send_mail
from shared.migrations import run_env
from shared.paging import Page, page_number, paginate
from shared.service import (
    ApiConflict,
    ApiError,
    ApiInvalid,
    ApiUnavailable,
    ServiceClient,
    require_bearer,
)
from shared.sso import (
    access_token,
    current_identity,
    forbidden,
    login_required,
    requires_role,
    safe_next,
    switch_url,
)
from shared.timefmt import PARIS, from_paris, paris, paris_shown
from shared.types import BigId, UTCDateTime, utcnow
from shared.web import error_page, problem

__all__ = [
    "N_", "lazy_gettext", "paris_shown", "plural", "translated",
    "APPLICATIONS", "PARIS", "BigId", "DomainError", "JPEG", "OFFICE", "PDF", "PNG", "Page", "Upload", "UploadRefused", "ZIP",
    "accepted_label", "read_upload", "size_label", "store", "CONFLICT_MESSAGE", "EMAIL", "REQUIRED", "Form", "VersionedForm", "ApiConflict", "ApiError", "ApiInvalid", "ApiUnavailable", "Identity",
    "OwnedByStructure", "RoleMissing", "ServiceClient", "StaleVersion", "StructureRef", "UTCDateTime",
    "Versioned", "access_token", "check_access", "check_version", "choices", "optional", "required", "create_app", "current_identity", "error_page",
    "forbidden", "form_view", "from_paris", "login_required", "main", "make_db", "one_of_or_404", "owned_or_404", "page_number", "paginate", "paris", "parse_id", "problem",
    "require_bearer", "requires_role", "role_label", "role_title", "run_env", "safe_next", "send_mail", "signing_keys", "strip_control", "switch_url",
    "utcnow", "FIRST_DAY", "LAST_DAY", "DayOutOfRange", "bounded_int", "day_in_range", "parse_day",
]
