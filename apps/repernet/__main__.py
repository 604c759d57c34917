"""`python -m apps.repernet db upgrade | serve [--demo] | mail worker` (make run, Procfile)."""

from apps.repernet import create_app
from shared import main

if __name__ == "__main__":
    main("repernet", "REPERNET", 8002, create_app)
