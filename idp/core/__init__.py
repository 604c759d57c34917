"""The domain core: plain functions on models; they flush but never commit and know nothing of Flask."""
