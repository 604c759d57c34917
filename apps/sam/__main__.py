"""`python -m apps.sam db upgrade | serve [--demo] | mail worker` (make run, Procfile)."""

from apps.sam import create_app
from shared import main

if __name__ == "__main__":
    main("sam", "SAM", 8001, create_app)
