"""The WSGI entry point: `gunicorn apps.sam.wsgi:app` (settings from SAM_* variables).

In the embedded demo (`serve --demo`, run by `make run` after `db upgrade`) the demo consultations
are created once at start-up.
"""

from apps.sam import create_app

app = create_app()
if app.config["DEMO"]:
    from apps.sam.demo import seed_app

    seed_app(app)
