"""WSGI entry point for gunicorn: `gunicorn idp.wsgi:app`."""

from idp.__main__ import app_from_environment

app = app_from_environment()
