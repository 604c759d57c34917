"""SAM defaults (over the shell's): they run the embedded demo; production values come from SAM_*
variables."""

from __future__ import annotations

DATABASE_URL = "sqlite:///var/sam.sqlite3"
FILES_DIR = "var/sam-files"

SSO_APP_NAME = "sam"
SSO_APP_TITLE = "SAM"
OIDC_CLIENT_ID = "sam"
OIDC_CLIENT_SECRET = "sam-demo-secret"  # noqa: S105 - the demo client seeded by `idp demo seed`
# SAM sends awarded offers to the Catalogue and reads a candidate's record in REPERNET (SPEC §7).
SERVICE_SCOPE = "catalogue:write repernet:read"
CATALOGUE_API_URL = "http://127.0.0.1:8003/api/v1"
REPERNET_API_URL = "http://127.0.0.1:8002/api/v1"

# Consultations (issue 12)
AMENDMENT_MIN_DAYS = 6  # an "avis rectificatif" leaves at least this many days before the response deadline
CONSULTATIONS_PER_PAGE = 10
MAX_DCE_BYTES = 20 * 1024 * 1024
MAX_CONTENT_LENGTH = MAX_DCE_BYTES + 256 * 1024  # the form fields around the file (attachments are smaller)

# Responses (issue 13)
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
SERVICE_TIMEOUT = 5.0  # seconds: a call to REPERNET or the Catalogue never holds a page long
# Signatures: in the demo and the tests (None: follow DEMO / TESTING) a demo CA issues one
# certificate per signataire; in production signataires upload their own PKCS#12 for the operation,
# and SAM_SIGNING_TRUST_ROOTS_PEM names the trusted roots (PEM text).
SIGNING_DEMO = None
SIGNING_TRUST_ROOTS_PEM = ""
