"""`python -m apps.catalogue db upgrade | serve [--demo] | mail worker` (make run, Procfile)."""

from apps.catalogue import create_app
from shared import main

if __name__ == "__main__":
    main("catalogue", "CATALOGUE", 8001, create_app)
