"""Each app's own command line: `python -m apps.<app> db upgrade | serve | mail worker`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from flask import Flask

Command = Callable[[Flask, list[str]], None]


def main(name: str, prefix: str, port: int, factory: Callable[[], Flask], argv: list[str] | None = None,
         commands: dict[str, Command] | None = None) -> None:
    """Parse the command line of app `name` (its wsgi module is `apps.<name>.wsgi:app`).

    - `db upgrade`: migrate its database to the head revision (before serving);
    - `serve [--host H] [--port P] [--demo]`: gunicorn, the same server as in production;
    - `mail worker [--interval S] [--once]`: deliver its outbox;
    - the app's own `commands` ("demo seed", "catalogue worker"…), each given the app and the
      words that follow its name.
    """
    argv = sys.argv[1:] if argv is None else argv
    for words, command in (commands or {}).items():
        if argv[:len(words.split())] == words.split():
            command(factory(), argv[len(words.split()):])
            return
    own = ", ".join(commands or {})
    parser = argparse.ArgumentParser(prog=f"python -m apps.{name}",
                                     epilog=f"Commandes propres à l'application : {own}." if own else None)
    commands = parser.add_subparsers(dest="command", required=True)
    db = commands.add_parser("db", help="base de données").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="appliquer les migrations")
    serve = commands.add_parser("serve", help="servir l'application")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=port)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--demo", action="store_true", help="la démo embarquée (make run)")
    worker = commands.add_parser("mail", help="courriels").add_subparsers(dest="action", required=True)
    run = worker.add_parser("worker", help="distribuer la file d'envoi")
    run.add_argument("--interval", type=float, default=5.0)
    run.add_argument("--once", action="store_true")
    args = parser.parse_args(argv)

    if getattr(args, "demo", False):
        os.environ.setdefault(f"{prefix}_DEMO", "true")
    if args.command == "serve":
        print(f"{name} : http://{args.host}:{args.port}/", flush=True)
        command = [sys.executable, "-m", "gunicorn", f"apps.{name}.wsgi:app", "--bind", f"{args.host}:{args.port}",
                   "--workers", str(args.workers), "--threads", "4", "--access-logfile", "-"]
        os.execv(sys.executable, command)  # noqa: S606 - replaces this process with gunicorn
    app = factory()
    if args.command == "db":
        from shared.migrations import upgrade

        upgrade(app, app.extensions["shell.db"])
        print(f"{name} : base de données à jour", flush=True)
    else:
        from shared.mail import run_worker

        run_worker(app, args.interval, once=args.once)
