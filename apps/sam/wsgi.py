"""The WSGI entry point: `gunicorn apps.sam.wsgi:app` (settings from SAM_* variables)."""

from apps.sam import create_app

app = create_app()
