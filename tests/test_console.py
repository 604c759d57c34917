"""The console an operator expects (issue 16, points 9-13), through HTTP: clients disabled, deleted,
their scopes and consents; accounts created, edited, reset mail, second factor, sessions; the mail
outbox and resending; the settings with their source; the dashboard's SVG charts. Every operator
action leaves an audit record; every form needs its CSRF token; only platform admins get in."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import csrf_token, mail_link
from manage_helpers import logged, platform_admin
from test_accounts_helpers import login, user_row


@pytest.fixture(scope="module")
def operator(app: Any) -> Any:
    return platform_admin(app)


@pytest.fixture
def console(app: Any, operator: Any) -> Any:
    return logged(app, operator.email)


def audited(app: Any, event: str, **where: Any) -> list[Any]:
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import AuditEvent

    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.event == event)
        for key, value in where.items():
            query = query.where(getattr(AuditEvent, key) == value)
        return list(db.session.scalars(query))


def client_pk(app: Any, client_id: str) -> int:
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import Client

    with app.app_context():
        return db.session.scalar(select(Client.id).where(Client.client_id == client_id))


def post(client: Any, page: str, action: str, data: dict[str, Any] | None = None) -> Any:
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token, **(data or {})})


# ---------------------------------------------------------------- who gets in

@pytest.mark.parametrize("path", ["/admin/tableau-de-bord", "/admin/reglages", "/admin/courriels",
                                  "/admin/comptes/nouveau", "/admin/clients/1/console"])
def test_only_platform_admins(app: Any, create_account: Any, path: str) -> None:
    assert app.test_client().get(path).status_code == 302  # to the login page
    client = app.test_client()
    login(client, create_account().email)
    assert client.get(path).status_code == 403


# ---------------------------------------------------------------- 9. clients

def test_disable_enable_and_delete_a_client(app: Any, console: Any, operator: Any, create_client: Any) -> None:
    client_id, secret = create_client(grant_types=["client_credentials"], scope="structures:read",
                                      token_endpoint_auth_method="client_secret_basic")
    pk = client_pk(app, client_id)
    token = app.test_client().post("/oauth/token", data={"grant_type": "client_credentials"},
                                   auth=(client_id, secret))
    assert token.status_code == 200
    page = f"/admin/clients/{pk}/console"
    assert "Désactiver le client" in console.get(page).get_data(as_text=True)
    # Without its token the form does nothing.
    assert console.post(f"/admin/clients/{pk}/etat", data={"active": "0"}).status_code in (303, 400)
    assert audited(app, "client.disabled", client_id=client_id) == []
    done = post(console, page, f"/admin/clients/{pk}/etat", {"active": "0"})
    assert done.status_code == 303
    assert "Désactivé" in console.get(page).get_data(as_text=True)
    refused = app.test_client().post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    assert refused.status_code == 401
    assert audited(app, "client.disabled", client_id=client_id, actor_id=operator.id)
    post(console, page, f"/admin/clients/{pk}/etat", {"active": "1"})
    assert app.test_client().post("/oauth/token", data={"grant_type": "client_credentials"},
                                  auth=(client_id, secret)).status_code == 200
    assert audited(app, "client.enabled", client_id=client_id)
    # Deleting asks first, then the client is gone (404 on its pages), audited.
    confirm = console.get(f"/admin/clients/{pk}/supprimer")
    assert confirm.status_code == 200 and "Supprimer le client" in confirm.get_data(as_text=True)
    gone = post(console, f"/admin/clients/{pk}/supprimer", f"/admin/clients/{pk}/supprimer")
    assert gone.status_code == 303
    assert console.get(page).status_code == 404
    assert audited(app, "client.deleted", client_id=client_id, actor_id=operator.id)


def test_allowed_scopes_are_edited_and_checked(app: Any, console: Any, create_client: Any) -> None:
    client_id, _secret = create_client(scope="openid profile")
    pk = client_pk(app, client_id)
    page = f"/admin/clients/{pk}/console"
    bad = post(console, page, page, {"scope": "openid <script>"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "Portée invalide" in html and "&lt;script&gt;" in html and "<script>" not in html.split("<main")[1]
    good = post(console, page, page, {"scope": "openid profile email structures"})
    assert good.status_code == 303
    assert 'value="openid profile email structures"' in console.get(page).get_data(as_text=True)
    [event] = audited(app, "client.updated", client_id=client_id)
    assert event.details["scope"] == "openid profile email structures"


def test_revoking_a_consent(app: Any, console: Any, create_client: Any, create_account: Any) -> None:
    from idp.extensions import db
    from idp.models import Consent

    client_id, _secret = create_client(scope="openid profile")
    person = create_account(given_name="Consentie", family_name="Personne")
    with app.app_context():
        db.session.add(Consent(user_id=person.id, client_id=client_id, scope="openid profile"))
        db.session.commit()
    pk = client_pk(app, client_id)
    page = f"/admin/clients/{pk}/console"
    html = console.get(page).get_data(as_text=True)
    assert "Consentie Personne" in html
    action = re.search(r'action="(/admin/clients/\d+/consentements/\d+/retirer)"', html).group(1)
    assert post(console, page, action).status_code == 303
    assert "Consentie Personne" not in console.get(page).get_data(as_text=True)
    assert audited(app, "consent.revoked", client_id=client_id, subject_id=person.id)
    assert post(console, page, action).status_code == 404  # already gone


def lifetimes_of(html: str) -> dict[str, str]:
    """The console's table of a client's applied token lifetimes: {name: "duration · source"}."""
    return {name: " · ".join(re.sub(r"<[^>]+>", "", cell).strip() for cell in cells[1:])
            for name, cells in ((m.group(1), re.findall(r"<td>(.*?)</td>", m.group(2)))
                                for m in re.finditer(r'data-lifetime="(\w+)">(.*?)</tr>', html, re.S))}


def introspected(issuer: str, token: str, client_id: str, secret: str | None) -> dict[str, Any]:
    import requests

    response = requests.post(f"{issuer}/oauth/introspect", data={"token": token, "token_type_hint": "refresh_token"},
                             auth=(client_id, secret or ""), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_token_lifetimes_per_client(app: Any, live_server: str, browser: Any, console: Any, operator: Any,
                                    create_client: Any, create_account: Any) -> None:
    """Set in the console, checked on the form, audited, applied by the token endpoint to the access
    token (`expires_in`, `exp`), the ID token and the refresh token, on the code and refresh grants;
    empty again, the platform's settings apply."""
    from tests.oidc_helpers import code_flow, refresh, verify_jwt

    client_id, secret = create_client(scope="openid profile email")
    pk = client_pk(app, client_id)
    page, action = f"/admin/clients/{pk}/console", f"/admin/clients/{pk}/durees"
    before = lifetimes_of(console.get(page).get_data(as_text=True))
    assert before == {"access_token_lifetime": "5\xa0min · plateforme", "id_token_lifetime": "1\xa0h · plateforme",
                      "refresh_token_lifetime": "30\xa0j · plateforme"}
    # Shape and bounds, in French, the values typed kept; nothing saved.
    bad = post(console, page, action, {"access_token_lifetime": "soixante", "id_token_lifetime": "120",
                                       "refresh_token_lifetime": ""})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "Saisissez un nombre entier de secondes" in html and 'value="soixante"' in html
    short = post(console, page, action, {"access_token_lifetime": "5", "id_token_lifetime": "120"})
    assert short.status_code == 422
    html = short.get_data(as_text=True)
    assert "Entre 30 et 86400 secondes" in html and 'value="5"' in html
    assert audited(app, "client.updated", client_id=client_id) == []
    # Saved, shown, audited with the previous values.
    saved = post(console, page, action, {"access_token_lifetime": "60", "id_token_lifetime": "7200",
                                         "refresh_token_lifetime": "600"})
    assert saved.status_code == 303
    assert lifetimes_of(console.get(page).get_data(as_text=True)) == {
        "access_token_lifetime": "1\xa0min · propre au client", "id_token_lifetime": "2\xa0h · propre au client",
        "refresh_token_lifetime": "10\xa0min · propre au client"}
    [event] = audited(app, "client.updated", client_id=client_id, actor_id=operator.id)
    assert event.details["lifetimes"] == {"access_token_lifetime": 60, "id_token_lifetime": 7200,
                                          "refresh_token_lifetime": 600}
    assert event.details["previous_lifetimes"]["access_token_lifetime"] is None
    settings = console.get("/admin/reglages").get_data(as_text=True)
    assert f'data-client="{client_id}"' in settings
    # The token endpoint applies them (tokens checked with PyJWT against the JWKS).
    person = create_account()
    token = code_flow(live_server, browser, client_id, secret, person.email)
    assert token["expires_in"] == 60
    access = verify_jwt(live_server, token["access_token"], audience=client_id, typ="at+jwt")
    assert access["exp"] - access["iat"] == 60
    identity = verify_jwt(live_server, token["id_token"], audience=client_id)
    assert identity["exp"] - identity["iat"] == 7200  # longer than the platform's hour
    first = introspected(live_server, token["refresh_token"], client_id, secret)
    assert first["active"] and first["exp"] - first["iat"] == 600
    renewed = refresh(live_server, token["refresh_token"], client_id, secret)
    assert renewed.status_code == 200, renewed.text
    body = renewed.json()
    assert body["expires_in"] == 60
    access = verify_jwt(live_server, body["access_token"], audience=client_id, typ="at+jwt")
    assert access["exp"] - access["iat"] == 60
    second = introspected(live_server, body["refresh_token"], client_id, secret)
    assert second["exp"] - second["iat"] == 600
    # A retired signing key stays published past the longest-lived token it may have signed.
    from idp.extensions import db
    from idp.oidc.keys import key_retention

    with app.app_context():
        assert key_retention(db.session, app.config).total_seconds() >= 7200 + 60
    # Emptied: the platform's settings again.
    assert post(console, page, action, {"access_token_lifetime": "", "id_token_lifetime": "",
                                        "refresh_token_lifetime": ""}).status_code == 303
    assert lifetimes_of(console.get(page).get_data(as_text=True)) == before
    token = code_flow(live_server, browser, client_id, secret, person.email)
    assert token["expires_in"] == app.config["ACCESS_TOKEN_LIFETIME"]
    assert f'data-client="{client_id}"' not in console.get("/admin/reglages").get_data(as_text=True)


def test_a_revoked_consent_ends_refresh_tokens_and_is_asked_again(app: Any, live_server: str, browser: Any,
                                                                    console: Any, create_client: Any,
                                                                    create_account: Any) -> None:
    from tests.oidc_helpers import authorize_url, code_flow, pkce_pair, refresh

    client_id, secret = create_client(scope="openid profile email")
    person = create_account(given_name="Revenue", family_name="Consentante")
    token = code_flow(live_server, browser, client_id, secret, person.email)
    page = f"/admin/clients/{client_pk(app, client_id)}/console"
    html = console.get(page).get_data(as_text=True)
    action = re.search(r'action="(/admin/clients/\d+/consentements/\d+/retirer)"', html).group(1)
    assert post(console, page, action).status_code == 303
    assert audited(app, "consent.revoked", client_id=client_id, subject_id=person.id)
    again = refresh(live_server, token["refresh_token"], client_id, secret)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # Still logged in at the IdP: the consent screen shows again, no code without it.
    _verifier, challenge = pkce_pair()
    shown = browser.get(authorize_url(live_server, client_id, challenge=challenge), allow_redirects=False)
    assert shown.status_code == 200 and 'name="decision"' in shown.text


# ---------------------------------------------------------------- 10. accounts

def test_create_an_account_from_the_console(app: Any, console: Any, operator: Any, mailbox: Any) -> None:
    email = f"cree-{uuid.uuid4().hex[:8]}@example.test"
    missing = post(console, "/admin/comptes/nouveau", "/admin/comptes/nouveau",
                   {"email": email, "given_name": "", "family_name": "Console"})
    assert missing.status_code == 422
    html = missing.get_data(as_text=True)
    assert "Saisissez le prénom." in html and f'value="{email}"' in html  # input kept
    created = post(console, "/admin/comptes/nouveau", "/admin/comptes/nouveau",
                   {"email": email, "given_name": "Célia", "family_name": "Console", "civility": "mme"})
    assert created.status_code == 303
    row = user_row(app, email)
    assert row.given_name == "Célia" and row.state.value == "pending" and row.managed
    assert audited(app, "account.created", subject_id=row.id, actor_id=operator.id)
    # The owner chooses a password from the mailed link, then logs in.
    link = mail_link(mailbox.wait_for(email), "/password/reset/")
    page = app.test_client().get(link)
    assert page.status_code == 200
    again = post(console, "/admin/comptes/nouveau", "/admin/comptes/nouveau",
                 {"email": email.upper(), "given_name": "Autre", "family_name": "Personne"})
    assert again.status_code == 409 and "existe déjà" in again.get_data(as_text=True)


def test_edit_reset_mail_second_factor_and_sessions(app: Any, console: Any, operator: Any, create_account: Any,
                                                     mailbox: Any) -> None:
    from idp.extensions import db
    from idp.models import User

    person = create_account(given_name="Ancien", family_name="Nom")
    their_browser = app.test_client()
    login(their_browser, person.email)  # before the authenticator is enrolled (no code to type here)
    with app.app_context():
        user = db.session.get(User, person.id)
        user.totp_secret = "JBSWY3DPEHPK3PXP"
        from idp.models import utcnow

        user.totp_enabled_at = utcnow()
        db.session.commit()
    page = f"/admin/comptes/{person.id}"
    html = console.get(page).get_data(as_text=True)
    assert "Réinitialiser la double authentification" in html and 'id="sessions"' in html
    # Edit: names and contact e-mail; a stale version is refused with the values kept.
    version = re.search(r'name="version"[^>]*value="(\d+)"', html).group(1)
    token = csrf_token(html)
    saved = console.post(page, data={"csrf_token": token, "version": version, "given_name": "Nouveau",
                                     "family_name": "Nom", "civility": "m", "contact_email": "contact@example.test"})
    assert saved.status_code == 303
    assert user_row(app, person.email).given_name == "Nouveau"
    stale = console.post(page, data={"csrf_token": token, "version": version, "given_name": "Périmé",
                                     "family_name": "Nom", "contact_email": ""})
    assert stale.status_code == 409 and 'value="Périmé"' in stale.get_data(as_text=True)
    assert audited(app, "account.updated", subject_id=person.id, actor_id=operator.id)
    # A reset mail.
    assert post(console, page, f"{page}/reinitialisation").status_code == 303
    assert "/password/reset/" in mail_link(mailbox.wait_for(person.email, "Réinitialisation"), "/password/reset/")
    assert audited(app, "account.reset_mail_sent", subject_id=person.id, actor_id=operator.id)
    # The second factor.
    assert post(console, page, f"{page}/double-authentification").status_code == 303
    assert user_row(app, person.email).totp_secret is None
    assert audited(app, "account.totp_reset", subject_id=person.id, actor_id=operator.id)
    # One of their sessions (named by a digest on the page, never by its id: the cookie's secret).
    other_browser = app.test_client()
    login(other_browser, person.email)
    html = console.get(page).get_data(as_text=True)
    handles = re.findall(r'data-session="([0-9a-f]+)"', html)
    assert len(handles) == 2
    with app.app_context():
        from sqlalchemy import select

        from idp.extensions import db
        from idp.models import LoginSession

        ids = list(db.session.scalars(select(LoginSession.id).where(LoginSession.user_id == person.id)))
    assert not any(sid in html for sid in ids)
    assert post(console, page, f"{page}/sessions/{'0' * 24}/fermer").status_code == 303  # none such: said so
    assert "déjà fermée" in console.get(page).get_data(as_text=True)
    assert post(console, page, f"{page}/sessions/{handles[0]}/fermer").status_code == 303
    assert "La session est fermée." in console.get(page).get_data(as_text=True)
    statuses = [b.get("/account/").status_code for b in (their_browser, other_browser)]
    assert sorted(statuses) == [200, 302]  # that one only
    [one] = audited(app, "account.sessions_ended", subject_id=person.id)
    assert one.details["count"] == 1 and one.actor_id == operator.id
    still = their_browser if statuses[0] == 200 else other_browser
    # Their sessions: all ended, they are logged out.
    assert still.get("/account/").status_code == 200
    assert post(console, page, f"{page}/sessions").status_code == 303
    assert still.get("/account/").status_code == 302
    ended = audited(app, "account.sessions_ended", subject_id=person.id)
    assert len(ended) == 2 and all(e.details["count"] >= 1 for e in ended)
    assert "Aucune session ouverte." in console.get(page).get_data(as_text=True)


def test_unknown_or_malformed_ids_are_404(console: Any) -> None:
    for path in (f"/admin/comptes/{uuid.uuid4()}", "/admin/clients/999999999/console", "/admin/comptes/pas-un-id",
                 "/admin/clients/99999999999999999999999/console"):
        assert console.get(path).status_code == 404, path


# ---------------------------------------------------------------- 11. the mail outbox

def test_the_outbox_shows_failed_mail_and_resends_it(app: Any, console: Any, operator: Any) -> None:
    from idp.extensions import db
    from idp.models import OutboxMail

    recipient = f"echec-{uuid.uuid4().hex[:6]}@example.test"
    with app.app_context():
        mail = OutboxMail(recipient=recipient, subject="Sujet en échec", text_body="t", html_body="<p>t</p>",
                          status="failed", attempts=8, last_error="550 boîte inconnue")
        retried = OutboxMail(recipient=f"re-{recipient}", subject="Sujet réessayé", text_body="t",
                             html_body="<p>t</p>", status="pending", attempts=2, last_error="421 réessayez plus tard",
                             next_attempt_at=datetime(2099, 1, 2, 12, 0, tzinfo=UTC))
        db.session.add_all([mail, retried])
        db.session.commit()
        mail_id = mail.id
    html = console.get("/admin/courriels?etat=failed").get_data(as_text=True)
    assert recipient in html and "550 boîte inconnue" in html and "en échec" in html
    assert f"re-{recipient}" not in html  # the filter
    html = console.get("/admin/courriels?etat=pending").get_data(as_text=True)
    row = html[html.index(f"re-{recipient}"):]
    row = row[:row.index("</tr>")]
    # Queued again after a failure: when the next attempt is, in Paris time, with the last error.
    assert "en file" in row and "nouvel essai le 02/01 13:00" in row and "421 réessayez plus tard" in row
    assert post(console, "/admin/courriels", f"/admin/courriels/{mail_id}/renvoyer").status_code == 303
    with app.app_context():
        again = db.session.get(OutboxMail, mail_id)
        # Queued afresh (delivered at once in the embedded mode: sent, or pending with a new error).
        assert again.status in ("pending", "sent") and again.attempts <= 1
    assert audited(app, "mail.resent", actor_id=operator.id)
    assert console.post(f"/admin/courriels/{mail_id}/renvoyer").status_code in (303, 400)  # no token: nothing
    assert post(console, "/admin/courriels", "/admin/courriels/999999999/renvoyer").status_code == 404


# ---------------------------------------------------------------- 12. settings

def test_settings_with_their_source(app: Any, console: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("IDP_MAX_FAILED_LOGINS", "3")
    html = console.get("/admin/reglages").get_data(as_text=True)
    for name in ("MAX_FAILED_LOGINS", "TOTP_REQUIRED_FOR_ADMINS", "ACCESS_TOKEN_LIFETIME", "REFRESH_TOKEN_LIFETIME",
                 "PASSWORD_POLICY"):
        assert f'data-setting="{name}"' in html, name
    row = html[html.index('data-setting="MAX_FAILED_LOGINS"'):]
    assert "environnement" in row[:row.index("</tr>")]
    row = html[html.index('data-setting="ACCESS_TOKEN_LIFETIME"'):]
    row = row[:row.index("</tr>")]
    assert "défaut" in row and "300 s (5\xa0min)" in row  # in seconds as the variable takes it, and in words
    row = html[html.index('data-setting="TOTP_REQUIRED_FOR_ADMINS"'):]
    assert "configuration" in row[:row.index("</tr>")]  # the application was built with another value
    assert "SECRET_KEY" not in html
    english = console.get("/admin/reglages?ui_locales=en").get_data(as_text=True)
    row = english[english.index('data-setting="PASSWORD_POLICY"'):]
    assert "Passwords" in row[:row.index("</tr>")] and "common passwords refused" in row[:row.index("</tr>")]


# ---------------------------------------------------------------- 13. the dashboard

def test_the_dashboard_draws_svg_charts(app: Any, console: Any, create_account: Any) -> None:
    person = create_account()
    login(app.test_client(), person.email)
    login(app.test_client(), person.email, password="Mauvais-Mot-de-passe-1")
    html = console.get("/admin/tableau-de-bord").get_data(as_text=True)
    assert html.count('<svg class="chart"') == 4
    for title in ("Connexions réussies par jour", "Échecs de connexion par jour",
                  "Demandes de rattachement en attente, par ancienneté", "Courriels en échec par jour"):
        assert title in html
    first = html[html.index('id="chart-1"'):html.index('id="chart-2"')]
    assert re.search(r"total : [1-9]", first)  # today's logins are counted
    assert "<script" not in first


def test_the_dashboard_counts_open_join_requests_only(app: Any, console: Any, create_account: Any) -> None:
    from datetime import timedelta

    from test_join_helpers import make_structure

    from idp.extensions import db
    from idp.models import JoinRequest, utcnow

    def pending_total() -> int:
        html = console.get("/admin/tableau-de-bord").get_data(as_text=True)
        chart = html[html.index('id="chart-3"'):html.index('id="chart-4"')]
        return int(re.search(r"total : (\d+)", chart).group(1))

    before = pending_total()
    structure = make_structure(app)
    with app.app_context():
        now = utcnow()
        db.session.add_all([  # open, and past its days before the job marks it expired
            JoinRequest(user_id=create_account().id, structure_id=structure.id, expires_at=now + timedelta(days=3)),
            JoinRequest(user_id=create_account().id, structure_id=structure.id, expires_at=now - timedelta(minutes=1)),
        ])
        db.session.commit()
    assert pending_total() == before + 1
