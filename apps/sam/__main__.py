"""`python -m apps.sam db upgrade | serve [--demo] | mail worker | demo seed | catalogue worker [--once]`
(make run, Procfile)."""

import sys
import time

from apps.sam import create_app
from shared import main

if __name__ == "__main__":
    if sys.argv[1:] == ["demo", "seed"]:
        from apps.sam.demo import seed_app

        created = seed_app(create_app())
        print("sam : démo " + ("créée" if created else "déjà présente (ou base non migrée : lancez db upgrade)"))
    elif sys.argv[1:2] == ["catalogue"] and sys.argv[2:3] == ["worker"]:
        # The queue of awarded offers for the Catalogue (apps/sam/dispatch.py), sent when due.
        from apps.sam import db, dispatch
        from shared import utcnow

        app = create_app()
        while True:
            with app.app_context():
                sent = dispatch.send_due(db.session, app.extensions["sam.catalogue"], utcnow())
                db.session.commit()
            if "--once" in sys.argv:
                print(f"sam : {sent} offre(s) transmise(s) au Catalogue")
                break
            time.sleep(10)
    else:
        main("sam", "SAM", 8001, create_app)
