"""Delegated administration, "Gérer ma structure" (SPEC §4.3, §4.4)."""
