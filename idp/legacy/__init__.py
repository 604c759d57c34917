"""Se lier à un ancien compte: the pages of the legacy shared accounts (SPEC §4.6)."""
