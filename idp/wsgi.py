"""WSGI entry point for gunicorn: `gunicorn idp.wsgi:app`."""

from idp.cli import _create_app

app = _create_app()
