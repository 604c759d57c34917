"""`idp demo seed`: demo accounts, clients and keys, created once (running it again changes nothing)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from idp.core.accounts import create_user, find_user
from idp.core.security import SYSTEM
from idp.extensions import db
from idp.models import Civility, Client
from idp.oidc.clients import ClientSpec, create_client
from idp.oidc.keys import ensure_keys

DEMO_ACCOUNTS = [
    # email, password, given, family, civility, admin, note
    ("admin@portail.test", "Admin-Portail-2026!", "Alice", "Administratrice", Civility.MADAME, True,
     "administratrice de la plateforme"),
    ("marie.durand@formation.test", "Formation-Durand-2026!", "Marie", "Durand", Civility.MADAME, False,
     "usagère d'un organisme de formation"),
    ("paul.martin@lycee.test", "Lycee-Martin-2026!", "Paul", "Martin", Civility.MONSIEUR, False,
     "enseignant en lycée"),
]

DEMO_CLIENTS = [
    ClientSpec(name="Application de démonstration", client_id="demo-client", client_secret="demo-secret-change-me",
               redirect_uris=["http://127.0.0.1:9999/callback"],
               post_logout_redirect_uris=["http://127.0.0.1:9999/"], trusted=False),
]


def seed() -> dict[str, Any]:
    session = db.session
    hasher = current_app.extensions["hasher"]
    ensure_keys(session, current_app.config)
    accounts = []
    for email, password, given, family, civility, admin, note in DEMO_ACCOUNTS:
        if find_user(session, email) is None:
            create_user(session, hasher, SYSTEM, email=email, password=password, given_name=given,
                        family_name=family, civility=civility, verified=True, is_admin=admin)
        accounts.append({"email": email, "password": password, "note": note})
    clients = []
    for spec in DEMO_CLIENTS:
        if session.scalar(select(Client.id).where(Client.client_id == spec.client_id)) is None:
            create_client(session, spec, SYSTEM)
        clients.append({"client_id": spec.client_id, "client_secret": spec.client_secret})
    session.commit()
    return {"accounts": accounts, "clients": clients}
