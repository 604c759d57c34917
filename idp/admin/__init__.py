"""The platform administrators' console (SPEC §4.3, last paragraph)."""
