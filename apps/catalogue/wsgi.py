"""The WSGI entry point: `gunicorn apps.catalogue.wsgi:app` (settings from CATALOGUE_* variables)."""

from apps.catalogue import create_app

app = create_app()
