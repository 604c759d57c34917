"""REPERNET defaults: they run the embedded demo; production values come from REPERNET_* variables."""

from __future__ import annotations

SECRET_KEY = "dev-only-change-me"  # noqa: S105 - refused at start-up outside the demo and the tests
DATABASE_URL = "sqlite:///var/repernet.sqlite3"
FILES_DIR = "var/repernet-files"

SSO_APP_NAME = "repernet"
SSO_APP_TITLE = "REPERNET"
OIDC_ISSUER = "http://127.0.0.1:8000"
OIDC_CLIENT_ID = "repernet"
OIDC_CLIENT_SECRET = "repernet-demo-secret"  # noqa: S105 - the demo client seeded by `idp demo seed`
API_SCOPE = "structures:read structures:write"

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
MAX_CONTENT_LENGTH = MAX_DOCUMENT_BYTES + 256 * 1024  # the form fields around the file
CHALLENGE_MIN_SECONDS = 2.0
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True
WTF_I18N_ENABLED = False  # WTForms' bundled French messages (no flask-babel here)
DEMO = False
