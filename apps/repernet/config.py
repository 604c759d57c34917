"""REPERNET defaults (over the shell's): they run the embedded demo; production values come from
REPERNET_* variables."""

from __future__ import annotations

DATABASE_URL = "sqlite:///var/repernet.sqlite3"
FILES_DIR = "var/repernet-files"

SSO_APP_NAME = "repernet"
SSO_APP_TITLE = "REPERNET"
HOME_PATH = "/ma-structure"  # after a structure switch: the new structure's record
OIDC_CLIENT_ID = "repernet"
OIDC_CLIENT_SECRET = "repernet-demo-secret"  # noqa: S105 - the demo client seeded by `idp demo seed`
SERVICE_SCOPE = "structures:read structures:write"  # the IdP's service API (SPEC §4.8)
API_AUDIENCE = "repernet"  # its own API: SAM reads a candidate's record (scope repernet:read, issue 13)

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
MAX_CONTENT_LENGTH = MAX_DOCUMENT_BYTES + 256 * 1024  # the form fields around the file
CHALLENGE_MIN_SECONDS = 2.0
