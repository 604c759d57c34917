"""`python -m apps.catalogue db upgrade | serve [--demo] | mail worker | reminders` (make run, Procfile).

`reminders` queues the yearly "vérifiez votre fiche" mails due (a daily cron job in production);
the other commands are the shell's.
"""

from __future__ import annotations

from flask import Flask

from apps.catalogue import create_app
from shared import main


def reminders(app: Flask, _args: list[str]) -> None:
    """Queue the reminders of the records not checked for more than a year (the mail worker sends them)."""
    from apps.catalogue.models import db
    from apps.catalogue.views import remind
    from shared import utcnow

    with app.test_request_context(base_url=app.config["PUBLIC_URL"]):
        count = remind(utcnow())
        db.session.commit()
    print(f"catalogue : {count} rappel(s) mis en file d'envoi", flush=True)


if __name__ == "__main__":
    main("catalogue", "CATALOGUE", 8003, create_app, commands={"reminders": reminders})
