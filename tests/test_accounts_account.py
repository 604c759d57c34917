"""Mon compte: information, password, contact e-mail, sessions; core account states (SPEC §4.1)."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import PASSWORD, forms, mail_link, unique_email
from test_accounts_helpers import login, post_form, user_row

from idp.core.errors import Conflict
from idp.core.security import SYSTEM
from idp.models import AccountState

NEW_PASSWORD = "Une-Autre-Phrase-Longue-42"


def test_account_requires_login(testclient: Any) -> None:
    response = testclient.get("/account/sessions")
    assert response.status_code == 302
    assert "/login?next=/account/sessions" in response.headers["Location"]


def test_edit_my_information_and_stale_form(app: Any, testclient: Any, create_account: Any) -> None:
    user = create_account()
    login(testclient, user.email)
    stale = testclient.get("/account/profile").text
    done = post_form(testclient, "/account/profile", civility="m", given_name=" Jean ", family_name="Martin")
    assert done.status_code == 302
    row = user_row(app, user.email)
    assert (row.given_name, row.family_name, row.civility.value) == ("Jean", "Martin", "m")
    assert "Jean" in testclient.get("/account/").text

    from conftest import form_fields

    conflict = testclient.post("/account/profile", data=form_fields(stale, given_name="Paul"))
    assert conflict.status_code == 409 and "modifiées entre-temps" in conflict.text
    assert form_fields(conflict.text)["given_name"] == "Paul"  # what was typed is kept
    assert user_row(app, user.email).given_name == "Jean"


def test_sessions_list_and_revoke(app: Any, testclient: Any, create_account: Any) -> None:
    user = create_account()
    other = app.test_client()
    login(other, user.email)
    login(testclient, user.email)
    page = testclient.get("/account/sessions")
    assert page.status_code == 200 and page.text.count('name="session_id"') == 2
    assert "cette session" in page.text
    # Revoke the other browser's session: the older of the two.
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import LoginSession

    with app.app_context():
        other_sid = db.session.scalar(select(LoginSession.id).where(LoginSession.user_id == user.id)
                                      .order_by(LoginSession.created_at).limit(1))
    target = next(f for f in forms(page.text) if f["fields"].get("session_id") == other_sid)
    response = testclient.post(target["action"], data=target["fields"])
    assert response.status_code == 302
    assert other.get("/account/").status_code == 302  # its cookie no longer logs in
    assert testclient.get("/account/").status_code == 200
    assert testclient.get("/account/sessions").text.count('name="session_id"') == 1


def test_revoke_all_other_sessions(app: Any, testclient: Any, create_account: Any) -> None:
    user = create_account()
    others = [app.test_client() for _ in range(2)]
    for other in others:
        login(other, user.email)
    login(testclient, user.email)
    response = post_form(testclient, "/account/sessions")
    assert response.status_code == 302
    assert all(other.get("/account/").status_code == 302 for other in others)
    assert testclient.get("/account/").status_code == 200


def test_cannot_revoke_someone_elses_session(app: Any, testclient: Any, create_account: Any) -> None:
    victim = create_account()
    other = app.test_client()
    login(other, victim.email)
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import LoginSession

    with app.app_context():
        sid = db.session.scalar(select(LoginSession.id).where(LoginSession.user_id == victim.id))
    login(testclient, create_account().email)
    page = testclient.get("/account/sessions")
    form = [f for f in forms(page.text) if "session_id" in f["fields"]][0]
    response = testclient.post(form["action"], data={**form["fields"], "session_id": sid})
    assert response.status_code == 302
    assert "Cette session n&#39;existe plus." in testclient.get("/account/sessions").text
    assert other.get("/account/").status_code == 200


def test_change_password_revokes_other_sessions(app: Any, testclient: Any, mailbox: Any,
                                                create_account: Any) -> None:
    user = create_account()
    other = app.test_client()
    login(other, user.email)
    login(testclient, user.email)
    wrong = post_form(testclient, "/account/password", current="Not-It-At-All-1", password=NEW_PASSWORD,
                      confirm=NEW_PASSWORD)
    assert "Le mot de passe actuel est incorrect." in wrong.text
    done = post_form(testclient, "/account/password", current=PASSWORD, password=NEW_PASSWORD,
                     confirm=NEW_PASSWORD)
    assert done.status_code == 302
    assert testclient.get("/account/").status_code == 200
    assert other.get("/account/").status_code == 302
    mailbox.wait_for(user.email, "mot de passe a été modifié")
    fresh = app.test_client()
    assert login(fresh, user.email, password=NEW_PASSWORD).status_code == 302


def test_change_contact_email(app: Any, testclient: Any, mailbox: Any, create_account: Any) -> None:
    user = create_account()
    login(testclient, user.email)
    contact = unique_email("contact")
    assert post_form(testclient, "/account/email", email=contact).status_code == 302
    assert user_row(app, user.email).contact_email is None
    message = mailbox.wait_for(contact, "adresse e-mail de contact")
    assert testclient.get(mail_link(message, "/account/email/confirm/")).status_code == 302
    row = user_row(app, user.email)
    assert row.contact_email == contact and row.email == user.email

    # Someone else's link does nothing to my account.
    intruder = app.test_client()
    login(intruder, create_account().email)
    response = intruder.get(mail_link(message, "/account/email/confirm/"))
    assert response.status_code == 200 and "Ce lien n'est pas valable" in response.text


# ------------------------------------------------------------------ core: states, admin way out

def _core(app: Any, email: str, action: str) -> Any:
    from idp.core import accounts
    from idp.core.accounts import find_user
    from idp.extensions import db

    with app.app_context():
        user = find_user(db.session, email)
        admin = accounts.create_user(db.session, app.extensions["hasher"], SYSTEM, email=unique_email("admin"),
                                     password=PASSWORD, given_name="A", family_name="Admin", verified=True,
                                     is_admin=True)
        getattr(accounts, action)(db.session, user, admin, SYSTEM)
        db.session.commit()
        return user.id


def test_admin_unblock(app: Any, testclient: Any, create_account: Any) -> None:
    user = create_account()
    for i in range(3):
        login(testclient, user.email, password=f"Wrong-Password-{i}x")
    assert user_row(app, user.email).state == AccountState.BLOCKED
    _core(app, user.email, "unblock")
    row = user_row(app, user.email)
    assert row.state == AccountState.ACTIVE and row.failed_logins == 0
    assert login(testclient, user.email).status_code == 302
    with pytest.raises(Conflict):
        _core(app, user.email, "unblock")


def test_deactivate_reactivate(app: Any, testclient: Any, create_account: Any) -> None:
    user = create_account()
    login(testclient, user.email)
    _core(app, user.email, "deactivate")
    assert testclient.get("/account/").status_code == 302  # sessions ended
    # The generic answer (issue 15 finding 8): the page never confirms the password.
    assert "Identifiant ou mot de passe incorrect." in login(testclient, user.email).text
    _core(app, user.email, "reactivate")
    assert login(testclient, user.email).status_code == 302


def test_delete_account_erases_personal_data(app: Any, testclient: Any, create_account: Any) -> None:
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import AuditEvent, User

    user = create_account()
    login(testclient, user.email)
    uid = _core(app, user.email, "delete_account")
    with app.app_context():
        row = db.session.get(User, uid)
        assert row.state == AccountState.DELETED
        assert row.email == f"deleted-{uid}@invalid"
        assert (row.given_name, row.family_name, row.password_hash, row.totp_secret) == ("", "", None, None)
        events = db.session.scalars(select(AuditEvent.event).where(AuditEvent.subject_id == uid)).all()
        assert "account.created" in events and "account.deleted" in events
    assert testclient.get("/account/").status_code == 302
    assert "Identifiant ou mot de passe incorrect." in login(testclient, user.email).text
