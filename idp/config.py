"""Defaults that run the embedded demo; production values come from IDP_* environment variables."""

from __future__ import annotations

from datetime import timedelta

# Database: an SQLite file under var/ by default, PostgreSQL in production (SPEC §10.2).
DATABASE_URL = "sqlite:///var/idp.sqlite3"
ISSUER = "http://127.0.0.1:8000"
SECRET_KEY = "dev-only-change-me"  # noqa: S105 - refused at start-up outside debug/testing
REDIS_URL = ""  # rate limits and caches in-process when empty
SMTP_URL = ""  # empty: mail lands in the dev inbox page (/dev/inbox)
MAIL_FROM = "Portail <no-reply@portail.localhost>"

PORTAL_NAME = "Portail"

# Sessions and cookies (distinct names: the apps share the host on other ports).
SESSION_COOKIE_NAME = "portail_idp"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
LANG_COOKIE = "portail_lang"  # keeps the language chosen with the switcher (also saved on the account)
SESSION_COOKIE_SECURE = False
PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
LOGIN_SESSION_IDLE = timedelta(hours=8)
MAX_CONTENT_LENGTH = 1 * 1024 * 1024

# Babel: French first (SPEC §1).
BABEL_DEFAULT_LOCALE = "fr"
BABEL_DEFAULT_TIMEZONE = "Europe/Paris"
LANGUAGES = ("fr", "en")

# Accounts (SPEC §4.1).
VERIFY_LINK_MAX_AGE = 2 * 3600
RESET_LINK_MAX_AGE = 3600
MAX_FAILED_LOGINS = 3
TOTP_REQUIRED_FOR_ADMINS = True
# argon2id with one of OWASP's five equivalent settings (Password Storage Cheat Sheet): m=7 MiB, t=5,
# p=1. Same defence as m=19 MiB, t=2, but the least memory per hash, and 17 % less CPU here (7 MiB
# stays in the caches): 15.5 against 18.7 ms, bench/README.md. Hashes made with other parameters are
# rehashed at their next login. Tests lower them.
ARGON2_TIME_COST = 5
ARGON2_MEMORY_COST = 7 * 1024
ARGON2_PARALLELISM = 1
# At most this many argon2 hashes run at once in one process (bounded to the cores).
ARGON2_MAX_CONCURRENCY = 0  # 0: os.cpu_count()

# Rate limits (flask-limiter syntax).
RATELIMIT_LOGIN_IP = "30/minute"
RATELIMIT_LOGIN_ACCOUNT = "10/minute"
RATELIMIT_SIGNUP_IP = "10/hour"
RATELIMIT_RESET_IP = "10/hour"
RATELIMIT_TOKEN_IP = ""  # token endpoint: off by default (clients authenticate)
# Signed links (reset, verification, invitation): refused links per client address and per account.
RATELIMIT_LINK_GUESS_IP = "20/hour"
RATELIMIT_LINK_GUESS_ACCOUNT = "5/hour"
# Failed client authentications (token, introspection, revocation) per address and per client id,
# and the service API per client (or per address without a valid token); 429 with Retry-After.
RATELIMIT_CLIENT_AUTH_IP = "60/minute"
RATELIMIT_CLIENT_AUTH_CLIENT = "30/minute"
RATELIMIT_API_CLIENT = "600/minute"
RATELIMIT_ENABLED = True
# Behind a reverse proxy: trust its X-Forwarded-For/-Proto/-Host (one hop). Off, the peer address
# is the client's, whatever headers say: rate limits cannot be dodged with a forged header.
PROXY_FIX = False

# OpenID Connect (SPEC §4.7).
ACCESS_TOKEN_LIFETIME = 300
# The apps' own APIs: a client_credentials token carrying one of these scopes names that app in its
# `aud`, and the app refuses tokens that don't (SAM → Catalogue, SAM → REPERNET; SPEC §7).
API_AUDIENCES = {"catalogue": ["catalogue:write"], "repernet": ["repernet:read"]}
ID_TOKEN_LIFETIME = 3600
REFRESH_TOKEN_LIFETIME = 30 * 24 * 3600
AUTHORIZATION_CODE_LIFETIME = 60
# A rotated key is published this long before it signs, so cached JWKS pick it up first.
KEY_PUBLISH_BEFORE_USE = 3600
# How long a worker trusts its cached key set before re-reading the table.
KEY_CACHE_SECONDS = 30
# Clients are cached per worker this long; changes made in the same process apply at once.
CLIENT_CACHE_SECONDS = 5
JWKS_MAX_AGE = 300
BACKCHANNEL_LOGOUT_TIMEOUT = 5

# Mail outbox (SPEC §4.9).
MAIL_MAX_ATTEMPTS = 8
MAIL_DELIVER_IN_REQUEST = True  # the embedded mode; production runs `idp mail worker`
DEV_INBOX = None  # None: on when SMTP_URL is empty

# Legacy SICORRA accounts over LDAP (SPEC §4.6). An empty URL: ldap3's offline mock loaded from
# idp/data/legacy_demo.ldif (the embedded demo). Several URLs separated by spaces: a server pool.
LEGACY_LDAP_URL = ""
LEGACY_LDAP_BIND_DN = ""  # the read-only service account that searches ("" = anonymous)
LEGACY_LDAP_BIND_PASSWORD = ""
LEGACY_LDAP_BASE_DN = "ou=comptes,dc=sicorra,dc=fr"
LEGACY_LDAP_OBJECT_CLASS = "inetOrgPerson"
LEGACY_LDAP_ADMIN_GROUP_DN = "cn=administrateurs,ou=groupes,dc=sicorra,dc=fr"
# Our names → the directory's attributes (id, siret, mail, roles "app:role", name, kind, city,
# postal_code, code); unset names keep idp.directory.DEFAULT_ATTRIBUTES.
LEGACY_LDAP_ATTRIBUTES: dict[str, str] = {}
LEGACY_LDAP_CONNECT_TIMEOUT = 3  # seconds
LEGACY_LDAP_RECEIVE_TIMEOUT = 5
LEGACY_LDAP_POOL_SIZE = 4
LEGACY_LINK_MAX_AGE = 7 * 24 * 3600  # the signed link mailed to a legacy account's address

# "Créer la structure" hands the usager to REPERNET with the SIRET pre-filled (SPEC §4.2, §8).
REPERNET_REGISTER_URL = "http://127.0.0.1:8002/structures/nouvelle"
