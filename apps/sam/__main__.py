"""`python -m apps.sam db upgrade | serve [--demo] | mail worker | demo seed` (make run, Procfile)."""

import sys

from apps.sam import create_app
from shared import main

if __name__ == "__main__":
    if sys.argv[1:] == ["demo", "seed"]:
        from apps.sam.demo import seed_app

        created = seed_app(create_app())
        print("sam : démo " + ("créée" if created else "déjà présente (ou base non migrée : lancez db upgrade)"))
    else:
        main("sam", "SAM", 8001, create_app)
