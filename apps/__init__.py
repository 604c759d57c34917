"""The relying parties of Portail (SPEC §7-§9), each a Flask app of its own built on `shared/`."""
