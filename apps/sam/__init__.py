"""SAM, the tendering platform (SPEC §7): a relying party of the IdP built on the shell."""

from __future__ import annotations

from typing import Any

from flask import Flask

from apps.sam import config as default_config
from apps.sam.models import db
from shared import create_app as create_shell_app


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build SAM: shell and SAM defaults, then SAM_* variables, then `config`."""
    from apps.sam.views import bp

    return create_shell_app(__name__, prefix="SAM", defaults=default_config, db=db, blueprints=[bp],
                            overrides=config)


__all__ = ["create_app", "db"]
