"""The `idp` console script (SPEC §10.3), also `python -m idp`: the factory's app with its commands
(`idp.cli`), configured by IDP_* variables."""

from __future__ import annotations

import os
import sys

import click
from flask import Flask
from flask.cli import FlaskGroup
from sqlalchemy.exc import SQLAlchemyError

from idp import create_app


def app_from_environment() -> Flask:
    """The app as the environment configures it: the embedded demo without IDP_SECRET_KEY."""
    return create_app({"DEMO": True} if not os.environ.get("IDP_SECRET_KEY") else None)


def main() -> None:
    cli = FlaskGroup(create_app=app_from_environment, add_default_commands=False, add_version_option=False,
                     load_dotenv=False, help="Portail identity provider.")
    # The app is always ours and configured by IDP_* variables: hide Flask's --app/--env-file.
    cli.params = [p for p in cli.params if p.name not in ("app", "env_file")]
    try:
        cli.main(prog_name="idp")
    except SQLAlchemyError as exc:
        # An operator gets one clear line, not a stack trace (an unmigrated or unreachable DB).
        hint = " — lancez d'abord `idp db upgrade`" if "no such table" in str(exc) or "does not exist" in str(exc) else ""
        click.echo(f"Erreur de base de données{hint} : {str(exc.orig or exc).splitlines()[0]}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
