"""The Catalogue's forms: they check shape; the domain enforces the rules (STYLE §6)."""

from __future__ import annotations
