"""The `idp` command's groups (SPEC §10.3): database, demo data, server, clients, users, keys, mail;
`create_app` registers them, `idp.__main__` runs them."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import time
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from idp.core.security import SYSTEM


def _echo(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        for key, value in data.items():
            click.echo(f"{key}: {value}")


def register_commands(app: Flask) -> None:
    for group in (db_group, demo_group, client_group, user_group, structure_group, member_group, keys_group,
                  mail_group, legacy_group, requests_group):
        app.cli.add_command(group)
    app.cli.add_command(serve)


@click.group("db", help="Database schema.")
def db_group() -> None:
    pass


@db_group.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Apply the Alembic migrations up to the latest."""
    from idp.migrations import upgrade

    upgrade(current_app.config["DATABASE_URL"])
    click.echo("Base de données à jour.")


@click.group("demo", help="Demo data.")
def demo_group() -> None:
    pass


@demo_group.command("seed")
@click.option("--json", "as_json", is_flag=True)
@click.option("--force", is_flag=True, help="seed even though IDP_SECRET_KEY is set (not the demo)")
@with_appcontext
def demo_seed(as_json: bool, force: bool) -> None:
    """Create (idempotently) the demo accounts, clients and signing keys, and print them."""
    from idp.demo import seed

    if not (current_app.config.get("DEMO") or current_app.testing or force):
        # The demo accounts have published passwords, one of them a platform administrator.
        raise click.UsageError("IDP_SECRET_KEY est défini (hors démo) : les comptes de démonstration "
                               "ont des mots de passe publics. Ajoutez --force pour les créer quand même.")
    result = seed()
    if as_json:
        _echo(result, True)
        return
    click.echo("Comptes de démonstration :")
    for account in result["accounts"]:
        click.echo(f"  {account['email']:<32} {account['password']}   {account['note']}")
    click.echo("Clients OIDC :")
    for client in result["clients"]:
        click.echo(f"  {client['client_id']:<20} {client.get('client_secret') or ''}")
    click.echo("Structures :")
    for structure in result["structures"]:
        admins = ", ".join(structure["admins"]) or "aucun administrateur (file de modération)"
        click.echo(f"  {structure['siret']}  {structure['name']:<44} admin : {admins}")


SHM = "/dev/shm"  # noqa: S108 - a directory gunicorn writes its heartbeat files in, not a path we create


# The serving model, chosen by measurement (bench/README.md, issue 18): granian's WSGI interface
# (a Rust HTTP server; Python runs only the app) served every row faster than gunicorn's gthread and
# sync workers on the same app, database and driver. gunicorn stays available.
SERVERS = ("granian", "gunicorn")
WORKER_MAX_RSS_MIB = 300  # a worker above this is replaced gracefully (argon2id: 7 MiB per hash)
WORKER_LIFETIME_SECONDS = 6 * 3600  # and every worker is recycled, gracefully, after this long
GUNICORN_MAX_REQUESTS = 50_000  # gunicorn's recycling: after this many requests (plus jitter)


def server_argv(server: str, host: str, port: int, workers: int, threads: int) -> list[str]:
    """The command line `idp serve` runs: one process per core by default, `threads` threads each,
    graceful reload on SIGHUP (both servers), workers recycled by age and memory (granian) or by
    request count (gunicorn), the access log on stdout."""
    workers = workers or os.cpu_count() or 1
    if server == "granian":
        return [
            sys.executable, "-m", "granian", "--interface", "wsgi", "idp.wsgi:app", "--host", host, "--port", str(port),
            "--workers", str(workers), "--blocking-threads", str(threads), "--no-ws", "--access-log",
            "--respawn-failed-workers", "--workers-lifetime", str(WORKER_LIFETIME_SECONDS),
            "--workers-max-rss", str(WORKER_MAX_RSS_MIB), "--workers-kill-timeout", "30",
        ]
    argv = [
        sys.executable, "-m", "gunicorn", "idp.wsgi:app", "--bind", f"{host}:{port}",
        "--workers", str(workers), "--threads", str(threads), "--access-logfile", "-",
        "--max-requests", str(GUNICORN_MAX_REQUESTS), "--max-requests-jitter", str(GUNICORN_MAX_REQUESTS // 10),
        "--graceful-timeout", "30",
    ]
    if os.path.isdir(SHM):
        # gunicorn's worker heartbeat file: in RAM, not on a (possibly overlay) disk.
        argv += ["--worker-tmp-dir", SHM]
    return argv


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=0, type=int, help="worker processes (default: one per core)")
@click.option("--threads", default=4, show_default=True, type=int, help="threads per worker")
@click.option("--server", type=click.Choice(SERVERS), default="granian", show_default=True,
              help="granian (measured fastest) or gunicorn")
def serve(host: str, port: int, workers: int, threads: int, server: str) -> None:
    """Serve the IdP (the production server, also for the demo). SIGHUP reloads the workers
    gracefully; SIGTERM stops after the requests in flight."""
    issuer = current_app.config["ISSUER"]
    click.echo(f"Portail IdP : {issuer} (écoute sur {host}:{port}, {server})")
    if current_app.config["DEV_INBOX"]:
        click.echo(f"Courriels de démonstration : {issuer}/dev/inbox")
    sys.stdout.flush()
    argv = server_argv(server, host, port, workers, threads)
    # One malloc arena per worker: each argon2id hash takes 7 MiB, and glibc otherwise keeps one such
    # buffer per thread's arena (a worker grew to 170 MB after logins, 94 MB with one arena, with no
    # slower hash: bench/README.md). An operator's own value wins.
    os.environ.setdefault("MALLOC_ARENA_MAX", "1")
    # argon2id bounded to the cores for the whole box, not per process: with one worker per core,
    # one hash at a time per worker (its other threads keep serving: the hash releases the GIL).
    cores = os.cpu_count() or 1
    os.environ.setdefault("IDP_ARGON2_MAX_CONCURRENCY", str(max(1, cores // (workers or cores))))
    os.execv(sys.executable, argv)  # noqa: S606 - replaces this process with the server


@click.group("client", help="OpenID Connect clients.")
def client_group() -> None:
    pass


@client_group.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--app", "app_name", default=None, help="application whose roles the claims carry")
@click.option("--post-logout-redirect-uri", "post_logout_uris", multiple=True)
@click.option("--backchannel-logout-uri", default=None)
@click.option("--public", is_flag=True, help="no secret; PKCE required")
@click.option("--trusted", is_flag=True, help="first-party: no consent screen")
@click.option("--grant-type", "grant_types", multiple=True,
              type=click.Choice(["authorization_code", "refresh_token", "client_credentials"]))
@click.option("--scope", "scopes", multiple=True, help="space-separated scopes; repeatable")
@click.option("--id-token-alg", type=click.Choice(["RS256", "ES256"]), default="RS256")
@click.option("--client-id", default=None, help="choose the id (default: random)")
@click.option("--client-secret", default=None, help="choose the secret (default: random)")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def client_create(**options: Any) -> None:
    """Register a client; prints client_id and client_secret (shown once)."""
    from idp.extensions import db
    from idp.oidc.clients import ClientSpec, create_client

    as_json = options.pop("as_json")
    spec = ClientSpec(
        name=options["name"], redirect_uris=list(options["redirect_uris"]), app=options["app_name"],
        post_logout_redirect_uris=list(options["post_logout_uris"]),
        backchannel_logout_uri=options["backchannel_logout_uri"], public=options["public"],
        trusted=options["trusted"], grant_types=list(options["grant_types"]) or None,
        scope=" ".join(" ".join(options["scopes"]).split()) or None, id_token_signed_response_alg=options["id_token_alg"],
        client_id=options["client_id"], client_secret=options["client_secret"],
    )
    try:
        client, secret = create_client(db.session, spec, SYSTEM)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    db.session.commit()
    data = {"client_id": client.client_id, "client_secret": secret, "name": client.name, "app": client.app,
            "redirect_uris": client.redirect_uris, "grant_types": client.grant_types, "scope": client.scope,
            "token_endpoint_auth_method": client.token_endpoint_auth_method, "trusted": client.trusted}
    if not as_json:
        data = {k: v for k, v in data.items() if v is not None}
        if secret:
            click.echo("Conservez le secret : il ne sera plus affiché.", err=True)
    _echo(data, as_json)


@click.group("user", help="Usager accounts.")
def user_group() -> None:
    pass


@user_group.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--given-name", required=True)
@click.option("--family-name", required=True)
@click.option("--verified", is_flag=True)
@click.option("--admin", is_flag=True, help="platform administrator")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def user_create(email: str, password: str, given_name: str, family_name: str, verified: bool,
                admin: bool, as_json: bool) -> None:
    """Create an account (the password policy applies)."""
    from idp.core.accounts import create_user
    from idp.core.errors import InvalidInput
    from idp.core.passwords import password_problems
    from idp.extensions import db

    if not EMAIL_SHAPE.match(email.strip()):
        raise click.UsageError(f"adresse e-mail invalide : {email}")
    portal = current_app.config["PORTAL_NAME"]
    problems = password_problems(password, personal=[email, given_name, family_name], portal_name=portal)
    if problems:
        raise click.UsageError("mot de passe refusé : " + " ".join(
            PASSWORD_RULES.get(p, p).format(portal=portal) for p in problems))
    try:
        user = create_user(db.session, current_app.extensions["hasher"], SYSTEM, email=email,
                           password=password, given_name=given_name, family_name=family_name,
                           verified=verified, is_admin=admin)
    except InvalidInput as exc:
        raise click.UsageError("cet e-mail a déjà un compte") from exc
    db.session.commit()
    _echo({"id": str(user.id), "email": user.email, "state": user.state.value, "admin": user.is_admin}, as_json)


EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The policy of SPEC §4.1, worded for the operator (the web forms have their own translated text).
PASSWORD_RULES = {
    "too_short": "il faut au moins 12 caractères mêlant minuscules, majuscules, chiffres et "
                 "caractères spéciaux, ou au moins 15 caractères.",
    "too_long": "il est trop long.",
    "common": "il fait partie des mots de passe les plus courants.",
    "personal": "il contient le nom, le prénom ou l'adresse e-mail.",
    "portal": "il contient le nom du portail ({portal}).",
}


@click.group("structure", help="Structures (organisations identified by SIRET).")
def structure_group() -> None:
    pass


@structure_group.command("create")
@click.option("--siret", required=True, help="14 digits (Luhn-checked); spaces allowed")
@click.option("--name", required=True)
@click.option("--kind", type=click.Choice(["organisme", "lycee", "region", "autre"]), default="organisme",
              show_default=True)
@click.option("--admin-email", default=None,
              help="the account admin: admin at once if the account exists, else invited to create it (e-mail)")
@click.option("--city", default="")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def structure_create(siret: str, name: str, kind: str, admin_email: str | None, city: str, as_json: bool) -> None:
    """Create a structure with the default entitlements of its kind."""
    from idp import web
    from idp.core.errors import InvalidInput
    from idp.core.structures import StructureData, create_structure
    from idp.extensions import db
    from idp.join.jobs import designate_admin
    from idp.models import StructureKind

    if admin_email is not None and not EMAIL_SHAPE.match(admin_email.strip()):
        raise click.UsageError(f"adresse e-mail invalide : {admin_email}")
    if not name.strip():
        raise click.UsageError("le nom est obligatoire")
    try:
        structure = create_structure(db.session, StructureData(
            siret=siret, name=name, kind=StructureKind(kind), city=city, admin_email=admin_email), SYSTEM)
    except InvalidInput as exc:
        raise click.UsageError(str(exc)) from exc
    with web.offline_request(current_app._get_current_object()):  # type: ignore[attr-defined]
        admin = designate_admin(db.session, structure, SYSTEM)  # its e-mail holds absolute links
        db.session.commit()
    _echo({"id": str(structure.id), "siret": structure.siret, "name": structure.name, "kind": structure.kind.value,
           "siege": structure.parent.siret if structure.parent else None, "admin_email": structure.admin_email,
           "admin_now": admin is not None}, as_json)


@click.group("member", help="Memberships of usagers in structures.")
def member_group() -> None:
    pass


@member_group.command("add")
@click.option("--siret", required=True)
@click.option("--email", required=True, help="the usager's login e-mail")
@click.option("--admin", is_flag=True, help="administrator of the structure")
@click.option("--grant", "grants", multiple=True, metavar="APP:ROLE", help="e.g. sam:signataire (repeatable)")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def member_add(siret: str, email: str, admin: bool, grants: tuple[str, ...], as_json: bool) -> None:
    """Attach an existing usager to a structure with application roles."""
    from idp.core.accounts import find_user
    from idp.core.errors import InvalidInput, NotAllowed
    from idp.core.memberships import add_member, grants_by_key, operator_authority
    from idp.core.structures import clean_siret, find_by_siret
    from idp.extensions import db
    from idp.models import AccountState

    try:
        structure = find_by_siret(db.session, clean_siret(siret))
    except InvalidInput as exc:
        raise click.UsageError(str(exc)) from exc
    if structure is None:
        raise click.UsageError(f"aucune structure n'a le SIRET {siret}")
    user = find_user(db.session, email)
    if user is None or user.state == AccountState.DELETED:  # an erased account is nobody's any more
        raise click.UsageError(f"aucun compte n'a l'e-mail {email}")
    try:
        role_ids = grants_by_key(db.session, grants)
        membership = add_member(db.session, operator_authority(db.session, structure), user, SYSTEM,
                                role_ids=role_ids, admin=admin)
    except InvalidInput as exc:
        raise click.UsageError("déjà membre de cette structure" if str(exc) == "already_member" else str(exc)) from exc
    except NotAllowed as exc:
        raise click.UsageError("la structure n'a pas accès à ces rôles : " + ", ".join(
            k for k in grants if grants_by_key(db.session, [k]) & set(exc.details.get("refused", {})))) from exc
    db.session.commit()
    _echo({"siret": structure.siret, "email": user.email, "role": membership.role.value,
           "grants": sorted(grants)}, as_json)


@click.group("keys", help="Signing keys.")
def keys_group() -> None:
    pass


@keys_group.command("rotate")
@click.option("--now", "immediate", is_flag=True, help="sign with the new keys at once (first start, tests)")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def keys_rotate(immediate: bool, as_json: bool) -> None:
    """Publish new RS256 and ES256 keys; they sign after KEY_PUBLISH_BEFORE_USE seconds."""
    from idp.extensions import db
    from idp.oidc.keys import rotate_keys

    keys = rotate_keys(db.session, current_app.config, immediate=immediate)
    db.session.commit()
    rows = [{"kid": k.kid, "alg": k.alg, "published_at": k.published_at.isoformat(),
             "active_at": k.active_at.isoformat()} for k in keys]
    if as_json:
        _echo({"keys": rows}, True)
        return
    for row in rows:
        click.echo(f"{row['alg']}  {row['kid']}  publiée, signe à partir du {row['active_at']}")


@keys_group.command("ensure")
@with_appcontext
def keys_ensure() -> None:
    """First start: create signing keys that sign at once, only when there are none."""
    from idp.extensions import db
    from idp.models import SigningKey
    from idp.oidc.keys import ensure_keys

    had = db.session.scalar(select(SigningKey.kid).limit(1)) is not None
    ensure_keys(db.session, current_app.config)
    db.session.commit()
    click.echo("Clés de signature déjà présentes." if had else "Clés de signature créées (RS256, ES256).")


@click.group("mail", help="Mail outbox.")
def mail_group() -> None:
    pass


@mail_group.command("worker")
@click.option("--interval", default=5.0, show_default=True, help="seconds between two passes")
@click.option("--once", is_flag=True, help="one pass, then exit (cron, tests)")
@with_appcontext
def mail_worker(interval: float, once: bool) -> None:
    """Deliver the outbox over SMTP, with retries and backoff, until stopped (SIGTERM, Ctrl-C)."""
    from idp.extensions import db
    from idp.web import deliver_mail

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    target = app.config["SMTP_URL"] or "la boîte de développement (/dev/inbox)"
    stopping: list[int] = []
    if not once:
        # Finish the message in hand, then stop: a kill mid-send would leave a claim to expire.
        # Installed before the start-up line, so whoever waits for that line can stop us cleanly.
        signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
        click.echo(f"Envoi des courriels vers {target}, toutes les {interval:g} s")
        sys.stdout.flush()  # a pipe is block-buffered: supervisors and logs see the line now
    while not stopping:
        try:
            sent = deliver_mail(app)
        except SQLAlchemyError:
            if once:
                raise
            # The database restarting must not end the worker: log, reconnect at the next pass.
            logging.getLogger(__name__).exception("mail worker: database error")
            sent = 0
        finally:
            # End the session between passes: no transaction (SQLite write lock) held while idle.
            db.session.remove()
        if sent:
            click.echo(f"{sent} message(s) envoyé(s)")
        if once:
            return
        deadline = time.monotonic() + interval
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(0.2, interval))



@click.group("legacy", help="Legacy SICORRA shared accounts (LDAP directory).")
def legacy_group() -> None:
    pass


@legacy_group.command("import")
@click.option("--json", "as_json", is_flag=True, help="the summary as JSON (no progress bar)")
@with_appcontext
def legacy_import(as_json: bool) -> None:
    """Create the structures and entitlements found in the legacy directory (idempotent)."""
    from idp.core.legacy import import_directory
    from idp.directory import DirectoryUnavailable, directory_for
    from idp.extensions import db

    directory = directory_for(current_app.config)
    try:
        entries = list(directory.entries())
    except DirectoryUnavailable as exc:
        click.echo(f"Service d'annuaire indisponible : {exc}", err=True)
        sys.exit(1)
    if as_json:
        summary = import_directory(db.session, entries, SYSTEM)
    else:
        with click.progressbar(length=len(entries), label="Comptes de l'annuaire") as bar:
            summary = import_directory(db.session, entries, SYSTEM, progress=lambda _entry: bar.update(1))
    db.session.commit()
    if as_json:
        _echo(summary.as_dict(), True)
        return
    click.echo(f"{summary.entries} compte(s) lu(s) ; {summary.structures_created} structure(s) créée(s), "
               f"{summary.structures_existing} déjà présente(s) ; {summary.entitlements_added} accès ajouté(s).")
    if summary.invalid:
        click.echo("SIRET invalide, ignorés : " + ", ".join(summary.invalid))
    for legacy_id, roles in summary.unknown_roles.items():
        click.echo(f"Rôles inconnus ou réservés à la Région pour {legacy_id} : {', '.join(roles)}")


@click.group("requests", help="Join requests (demandes de rattachement).")
def requests_group() -> None:
    pass


@requests_group.command("expire")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def requests_expire(as_json: bool) -> None:
    """Expire join requests past 15 days (the requester is told) and remind admins 3 days before; run
    it from cron as often as you like: nothing is expired or reminded twice (SPEC §4.2)."""
    from idp.join.jobs import run

    report = run(current_app._get_current_object())  # type: ignore[attr-defined]
    _echo({"expired": report.expired, "reminded": report.reminded, "mails": report.mails}, as_json)

