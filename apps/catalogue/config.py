"""Catalogue defaults (over the shell's): they run the embedded demo; production values come from
CATALOGUE_* variables."""

from __future__ import annotations

DATABASE_URL = "sqlite:///var/catalogue.sqlite3"

SSO_APP_NAME = "catalogue"
SSO_APP_TITLE = "Catalogue de l'offre de formation"  # shown translated (catalogue/index.html has the msgid)
OIDC_CLIENT_ID = "catalogue"
OIDC_CLIENT_SECRET = "catalogue-demo-secret"  # noqa: S105 - the demo client seeded by `idp demo seed`
# Its API receives SAM's awarded offers (SPEC §9: POST /api/v1/actions, scope catalogue:write);
# the siège/établissement link comes from the IdP's service API (structures:read).
API_AUDIENCE = "catalogue"
SERVICE_SCOPE = "structures:read"

# The Carif-Oref's mailbox: told of every save and request (seed 004: "Nos services sont également alertés").
MODERATION_EMAIL = "moderation@carif-oref.test"
# How long the siège/établissement link read from the IdP is trusted before asking again.
LINKS_TTL_SECONDS = 3600
PER_PAGE = 20
# The address in mails sent outside a request (`python -m apps.catalogue reminders`).
PUBLIC_URL = "http://127.0.0.1:8003"
