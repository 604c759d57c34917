"""REPERNET, the structure registry (SPEC §8): a relying party of the IdP built on the shell."""

from __future__ import annotations

from typing import Any

from flask import Flask

from apps.repernet import config as default_config
from apps.repernet.models import db
from shared import create_app as create_shell_app


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build REPERNET: shell and REPERNET defaults, then REPERNET_* variables, then `config`."""
    from apps.repernet.api import bp as api
    from apps.repernet.views import bp

    return create_shell_app(__name__, prefix="REPERNET", defaults=default_config, db=db, blueprints=[bp, api],
                            overrides=config)


__all__ = ["create_app", "db"]
