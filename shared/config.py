"""The shell's defaults, under each app's own; production values come from the app's prefixed
environment (SAM_*, REPERNET_*, CATALOGUE_*: SPEC §10.2)."""

from __future__ import annotations

DEMO = False
OIDC_ISSUER = "http://127.0.0.1:8000"
HOME_PATH = "/"  # where the header's structure switch lands: a page that exists in every structure

# Request size limits (SPEC §11: a 413 with a French page, never a 500).
MAX_CONTENT_LENGTH = 1024 * 1024
MAX_FORM_MEMORY_SIZE = 500 * 1024
MAX_FORM_PARTS = 1000

SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True
WTF_CSRF_TIME_LIMIT = 8 * 3600  # a form left open for a working day still saves
WTF_I18N_ENABLED = True

LANGUAGES = ["fr", "en"]
BABEL_DEFAULT_LOCALE = "fr"
BABEL_DEFAULT_TIMEZONE = "Europe/Paris"

SMTP_URL = ""
MAIL_FROM = "Portail <ne-pas-repondre@portail.localhost>"
MAIL_MAX_ATTEMPTS = 8
MAIL_DELIVER_IN_REQUEST = True  # embedded mode; production runs the app's `mail worker` and sets it off
DEV_INBOX = None  # None: on in the demo and the tests when no SMTP server is configured

SERVICE_SCOPE = ""  # client_credentials scopes this app asks for its calls to other services
API_AUDIENCE = ""  # this app's name in the `aud` of tokens its own API accepts (empty: no API)
