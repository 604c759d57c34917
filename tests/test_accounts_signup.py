"""Sign-up, e-mail verification and resend, through HTTP with real mail (SPEC §4.1)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import PASSWORD, csrf_token, form_fields, mail_link, mail_text, unique_email
from itsdangerous import URLSafeTimedSerializer
from test_accounts_helpers import login

from idp.models import AccountState


def signup(testclient: Any, email: str, password: str = PASSWORD, **overrides: Any) -> Any:
    page = testclient.get("/signup")
    assert page.status_code == 200
    fields = form_fields(page.text, email=email, password=password, confirm=password, civility="mme",
                         given_name="Camille", family_name="Durand")
    fields.update(overrides)
    return testclient.post("/signup", data=fields)


def user_state(app: Any, email: str) -> AccountState | None:
    from idp.core.accounts import find_user
    from idp.extensions import db

    with app.app_context():
        user = find_user(db.session, email)
        return user.state if user else None


def test_signup_verify_then_login(app: Any, testclient: Any, mailbox: Any) -> None:
    email = unique_email()
    response = signup(testclient, email)
    assert response.status_code == 302
    sent = testclient.get(response.headers["Location"])
    assert "Vérifiez votre messagerie" in sent.text
    assert user_state(app, email) == AccountState.PENDING

    # Not active yet: the right password gets the generic answer (issue 15 finding 8); the owner
    # gets the verification link again by mail.
    refused = login(testclient, email)
    assert "Identifiant ou mot de passe incorrect." in refused.text
    assert testclient.get("/account/").status_code == 302  # not logged in

    message = mailbox.wait_for(email, "Activez votre compte")
    assert "2 heures" in mail_text(message)
    activated = testclient.get(mail_link(message, "/signup/verify/"))
    assert activated.status_code == 200
    assert "Votre compte est activé" in activated.text
    assert user_state(app, email) == AccountState.ACTIVE

    response = login(testclient, email)
    assert response.status_code == 302
    # A first login without a structure: the welcome page offers to join one or link an old account.
    assert response.headers["Location"].endswith("/bienvenue")
    home = testclient.get("/account/")
    assert home.status_code == 200 and email in home.text


def test_signup_with_taken_email_reveals_nothing(testclient: Any, mailbox: Any, create_account: Any) -> None:
    taken = create_account().email
    fresh = unique_email()
    first = signup(testclient, taken)
    second = signup(testclient, fresh)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    message = mailbox.wait_for(taken, "Vous avez déjà un compte")
    assert "/password/reset/" in mail_text(message)
    assert not [m for m in mailbox.to(taken) if "Activez" in m["Subject"]]
    mailbox.wait_for(fresh, "Activez votre compte")


def test_signup_form_keeps_typed_values_and_says_why(testclient: Any) -> None:
    email = unique_email()
    response = signup(testclient, email, password="court", confirm="autre")
    assert response.status_code == 200
    assert "Les deux mots de passe ne sont pas identiques." in response.text
    fields = form_fields(response.text)
    assert fields["email"] == email and fields["given_name"] == "Camille"
    assert fields.get("password", "") == ""  # passwords are never sent back

    weak = signup(testclient, email, password="camilledurand-2024-ok")
    assert "ni votre nom" in weak.text


def test_signup_missing_fields(testclient: Any) -> None:
    page = testclient.get("/signup")
    response = testclient.post("/signup", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 200
    assert "Saisissez votre adresse e-mail." in response.text
    assert "Choisissez une civilité." in response.text


def _token(app: Any, payload: Any, purpose: str = "verify", age: int = 0) -> str:
    serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=f"portail.{purpose}")
    real_time = time.time
    try:
        time.time = lambda: real_time() - age  # type: ignore[assignment]
        return serializer.dumps(payload)
    finally:
        time.time = real_time  # type: ignore[assignment]


def test_expired_verification_link(app: Any, testclient: Any, create_account: Any) -> None:
    user = create_account(verified=False)
    token = _token(app, {"uid": str(user.id), "email": user.email}, age=2 * 3600 + 5)
    response = testclient.get(f"/signup/verify/{token}")
    assert response.status_code == 200
    assert "Ce lien a expiré" in response.text and "/signup/resend" in response.text
    assert user_state(app, user.email) == AccountState.PENDING
    fresh = _token(app, {"uid": str(user.id), "email": user.email}, age=2 * 3600 - 60)
    assert "Votre compte est activé" in testclient.get(f"/signup/verify/{fresh}").text


@pytest.mark.parametrize("token", ["garbage", "eyJ1aWQiOiJ4In0.AAAA.BBBB", "a" * 300])
def test_tampered_verification_link(testclient: Any, token: str) -> None:
    response = testclient.get(f"/signup/verify/{token}")
    assert response.status_code == 200
    assert "Ce lien n'est pas valable" in response.text


def test_verification_link_for_another_purpose_or_payload(app: Any, testclient: Any, create_account: Any) -> None:
    user = create_account(verified=False)
    reset_token = _token(app, {"uid": str(user.id), "email": user.email}, purpose="reset")
    assert "Ce lien n'est pas valable" in testclient.get(f"/signup/verify/{reset_token}").text
    odd = _token(app, ["not", "a", "dict"])
    assert "Ce lien n'est pas valable" in testclient.get(f"/signup/verify/{odd}").text
    unknown = _token(app, {"uid": "not-a-uuid", "email": "x@example.test"})
    assert "Ce lien n'est pas valable" in testclient.get(f"/signup/verify/{unknown}").text


def test_resend_link(app: Any, testclient: Any, mailbox: Any, create_account: Any) -> None:
    pending = create_account(verified=False)
    active = create_account()
    for email in (pending.email, active.email, unique_email()):
        page = testclient.get("/signup/resend")
        response = testclient.post("/signup/resend", data=form_fields(page.text, email=email))
        assert response.status_code == 302 and response.headers["Location"].endswith("/signup/sent")
    message = mailbox.wait_for(pending.email, "Activez votre compte")
    testclient.get(mail_link(message, "/signup/verify/"))
    assert user_state(app, pending.email) == AccountState.ACTIVE
    assert not mailbox.to(active.email)


def test_signup_audit(app: Any, testclient: Any, mailbox: Any) -> None:
    from sqlalchemy import select

    from idp.core.accounts import find_user
    from idp.extensions import db
    from idp.models import AuditEvent

    email = unique_email()
    signup(testclient, email)
    testclient.get(mail_link(mailbox.wait_for(email, "Activez"), "/signup/verify/"))
    with app.app_context():
        user = find_user(db.session, email)
        events = db.session.scalars(select(AuditEvent.event).where(AuditEvent.subject_id == user.id)).all()
    assert "account.created" in events and "account.verified" in events
