"""The WSGI entry point: `gunicorn apps.repernet.wsgi:app` (settings from REPERNET_* variables)."""

from apps.repernet import create_app

app = create_app()
