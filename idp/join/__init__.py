"""Joining structures: my structures, join by SIRET with a profile, instant search, my requests (SPEC §4.2)."""
