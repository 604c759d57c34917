"""`python -m apps.sam db upgrade | serve [--demo] | mail worker | demo seed | catalogue worker [--once]`
(make run, Procfile)."""

from __future__ import annotations

import time

from flask import Flask

from apps.sam import create_app
from shared import main


def demo_seed(app: Flask, _args: list[str]) -> None:
    """Create the demo consultations once (make run does it at the demo server's start)."""
    from apps.sam.demo import seed_app

    created = seed_app(app)
    print("sam : démo " + ("créée" if created else "déjà présente (ou base non migrée : lancez db upgrade)"))


def catalogue_worker(app: Flask, args: list[str]) -> None:
    """Send the queue of awarded offers to the Catalogue when due (apps/sam/dispatch.py)."""
    from apps.sam import db, dispatch
    from shared import utcnow

    while True:
        with app.app_context():
            sent = dispatch.send_due(db.session, app.extensions["sam.catalogue"], utcnow())
            db.session.commit()
        if "--once" in args:
            print(f"sam : {sent} offre(s) transmise(s) au Catalogue")
            return
        time.sleep(10)


if __name__ == "__main__":
    main("sam", "SAM", 8001, create_app, commands={"demo seed": demo_seed, "catalogue worker": catalogue_worker})
