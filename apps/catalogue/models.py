"""The Catalogue's own tables (its own database: it never reads the IdP's)."""

from __future__ import annotations

from shared import make_db

db = make_db()
