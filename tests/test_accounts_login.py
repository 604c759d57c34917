"""Login, lockout, forgotten password, logout, rate limits, CSRF, language (SPEC §4.1)."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from conftest import PASSWORD, form_fields, mail_link, mail_text, unique_email
from itsdangerous import URLSafeTimedSerializer
from test_accounts_helpers import login, post_form, user_row

from idp.models import AccountState

NEW_PASSWORD = "Une-Autre-Phrase-Longue-42"
GENERIC = "Identifiant ou mot de passe incorrect."


def _body(html: str) -> str:
    """The page without its per-request CSRF token, to compare two answers."""
    return re.sub(r'name="csrf_token"[^>]*value="[^"]+"', "", html)


def test_login_success_redirects_to_next_and_rotates_session(testclient: Any, create_account: Any) -> None:
    user = create_account()
    testclient.get("/login")
    before = testclient.get_cookie("portail_idp")
    response = login(testclient, user.email, query="?next=/account/sessions")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account/sessions"
    after = testclient.get_cookie("portail_idp")
    assert after is not None and (before is None or before.value != after.value)
    assert testclient.get("/account/").status_code == 200


def test_the_cookie_names_the_login_session_and_its_row_decides(app: Any, testclient: Any,
                                                                create_account: Any) -> None:
    """Flask-Login keeps the login session's id in the cookie, never a remember-me cookie; the row,
    read on every request, decides: an account blocked by another worker is signed out at once."""
    from sqlalchemy import update

    from idp.extensions import db
    from idp.models import LoginSession, User

    user = create_account()
    assert login(testclient, user.email).status_code == 302
    assert testclient.get_cookie("remember_token") is None
    with testclient.session_transaction() as session:
        sid = session["_user_id"]
    with app.app_context():
        row = db.session.get(LoginSession, sid)
        assert row is not None and row.user_id == user.id and row.revoked_at is None
        db.session.execute(update(User).where(User.id == user.id).values(state=AccountState.BLOCKED))
        db.session.commit()
    assert testclient.get("/account/").status_code == 302
    with testclient.session_transaction() as session:
        assert "_user_id" not in session  # an ended session is not looked up again


def test_login_refuses_offsite_next(testclient: Any, create_account: Any) -> None:
    user = create_account()
    response = login(testclient, user.email, query="?next=https://evil.example/steal")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/account/")


def test_logged_in_user_skips_login_unless_forced(testclient: Any, create_account: Any) -> None:
    user = create_account()
    login(testclient, user.email)
    assert testclient.get("/login?next=/account/").status_code == 302
    forced = testclient.get("/login?force=1&next=/account/password")
    assert forced.status_code == 200
    fields = form_fields(forced.text)
    assert fields["force"] == "1" and fields["next"] == "/account/password"
    again = testclient.post("/login", data={**fields, "email": user.email, "password": PASSWORD})
    assert again.status_code == 302 and again.headers["Location"] == "/account/password"


def test_wrong_password_and_unknown_email_answer_the_same(testclient: Any, create_account: Any) -> None:
    user = create_account()
    wrong = login(testclient, user.email, password="Not-The-Right-One-1")
    unknown = login(testclient, unique_email(), password="Not-The-Right-One-1")
    assert wrong.status_code == unknown.status_code == 200
    assert GENERIC in wrong.text and GENERIC in unknown.text
    # Same page but for the typed e-mail echoed back.
    assert _body(wrong.text).replace(user.email, "X") == _body(unknown.text).replace(
        form_fields(unknown.text)["email"], "X")


def test_lockout_after_three_failures_then_reset_unblocks(app: Any, testclient: Any, mailbox: Any,
                                                         create_account: Any) -> None:
    user = create_account()
    for attempt in range(3):
        response = login(testclient, user.email, password=f"Wrong-Password-{attempt}x")
        assert GENERIC in response.text
    assert user_row(app, user.email).state == AccountState.BLOCKED
    blocked_mail = mailbox.wait_for(user.email, "bloqué")
    assert "/password/reset/" in mail_text(blocked_mail)

    # A wrong password on a blocked account: still the generic answer.
    wrong = login(testclient, user.email, password="Wrong-Again-123x")
    assert GENERIC in wrong.text
    # The right password gets exactly the same page (it must not confirm the password, issue 15
    # finding 8); the owner is told by mail, with the way out.
    right = login(testclient, user.email)
    assert GENERIC in right.text and "bloqué" not in right.text
    assert _body(right.text) == _body(wrong.text)
    assert testclient.get("/account/").status_code == 302
    told = [m for m in mailbox.to(user.email) if "bloqué" in m["Subject"]]
    assert len(told) == 2 and "/password/reset/" in mail_text(told[-1])

    # Only the latest link works (issue 15 finding 10): the first mail's is dead.
    assert "déjà servi" in testclient.get(mail_link(blocked_mail, "/password/reset/")).text
    blocked_mail = told[-1]
    response = testclient.get(mail_link(blocked_mail, "/password/reset/"))
    assert response.status_code == 200
    done = testclient.post(mail_link(blocked_mail, "/password/reset/"),
                           data=form_fields(response.text, password=NEW_PASSWORD, confirm=NEW_PASSWORD))
    assert done.status_code == 302
    row = user_row(app, user.email)
    assert row.state == AccountState.ACTIVE and row.failed_logins == 0
    assert login(testclient, user.email, password=NEW_PASSWORD).status_code == 302


def test_success_resets_failure_counter(app: Any, testclient: Any, create_account: Any) -> None:
    user = create_account()
    login(testclient, user.email, password="Wrong-Password-1x")
    login(testclient, user.email, password="Wrong-Password-2x")
    assert user_row(app, user.email).failed_logins == 2
    assert login(testclient, user.email).status_code == 302
    assert user_row(app, user.email).failed_logins == 0
    testclient.post("/logout", data=form_fields(testclient.get("/logout").text))
    login(testclient, user.email, password="Wrong-Password-3x")
    assert user_row(app, user.email).state == AccountState.ACTIVE


def test_concurrent_wrong_passwords_never_500_and_block(app: Any, live_server: str, create_account: Any) -> None:
    user = create_account()

    def attempt(i: int) -> int:
        session = requests.Session()
        page = session.get(f"{live_server}/login", timeout=30)
        data = form_fields(page.text, email=user.email, password=f"Wrong-Password-{i}x")
        return session.post(f"{live_server}/login", data=data, timeout=30, allow_redirects=False).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(attempt, range(8)))
    assert codes == [200] * 8
    row = user_row(app, user.email)
    assert row.state == AccountState.BLOCKED
    assert row.failed_logins == 8  # atomic increments: none lost


@pytest.mark.parametrize("state", ["pending", "deactivated"])
def test_accounts_that_cannot_log_in(app: Any, testclient: Any, mailbox: Any, create_account: Any, state: str) -> None:
    from idp.core import accounts
    from idp.core.security import SYSTEM
    from idp.extensions import db

    user = create_account(verified=state != "pending")
    if state == "deactivated":
        with app.app_context():
            accounts.deactivate(db.session, db.session.get(type(user), user.id), None, SYSTEM)
            db.session.commit()
    wrong = login(testclient, user.email, password="Wrong-Password-1x")
    assert GENERIC in wrong.text
    # The right password: the same page as a wrong one (issue 15 finding 8); the owner learns why by mail.
    right = login(testclient, user.email)
    assert GENERIC in right.text and _body(right.text) == _body(wrong.text)
    assert testclient.get("/account/").status_code == 302
    mailbox.wait_for(user.email, "Activez votre compte" if state == "pending" else "en sommeil")


def _reset_mail(testclient: Any, mailbox: Any, email: str) -> Any:
    response = post_form(testclient, "/password/forgot", email=email)
    assert response.status_code == 200
    assert "Si un compte correspond à cette adresse" in response.text
    return mailbox.wait_for(email, "Réinitialisation")


def test_forgot_password_same_answer_and_single_use_link(app: Any, testclient: Any, mailbox: Any,
                                                         create_account: Any) -> None:
    user = create_account()
    unknown = post_form(testclient, "/password/forgot", email=unique_email())
    message = _reset_mail(testclient, mailbox, user.email)
    assert _body(unknown.text) == _body(post_form(testclient, "/password/forgot", email=user.email).text)
    # Two links were sent: only the latest works (issue 15 finding 10).
    latest = [m for m in mailbox.to(user.email) if "Réinitialisation" in m["Subject"]][-1]
    assert "déjà servi" in testclient.get(mail_link(message, "/password/reset/")).text
    link = mail_link(latest, "/password/reset/")

    # Policy applies on the reset form; what was typed is not lost, the link still works.
    weak = post_form(testclient, link, password="motdepasse123", confirm="motdepasse123")
    assert "plus courants" in weak.text

    # Logged in elsewhere: the reset ends that session.
    other = app.test_client()
    login(other, user.email)
    assert other.get("/account/").status_code == 200

    done = post_form(testclient, link, password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    mailbox.wait_for(user.email, "mot de passe a été modifié")
    assert other.get("/account/").status_code == 302

    reused = testclient.get(link)
    assert reused.status_code == 200 and "déjà servi" in reused.text
    assert login(testclient, user.email, password=NEW_PASSWORD).status_code == 302


def test_reset_link_expires_after_one_hour(app: Any, testclient: Any, mailbox: Any, create_account: Any) -> None:
    from idp.core.accounts import reset_fingerprint

    user = create_account()
    row = user_row(app, user.email)
    serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="portail.reset")
    real_time = time.time
    try:
        time.time = lambda: real_time() - 3601  # type: ignore[assignment]
        token = serializer.dumps({"uid": str(row.id), "fp": reset_fingerprint(row)})
    finally:
        time.time = real_time  # type: ignore[assignment]
    response = testclient.get(f"/password/reset/{token}")
    assert response.status_code == 200 and "Ce lien a expiré" in response.text
    fresh = serializer.dumps({"uid": str(row.id), "fp": reset_fingerprint(row)})
    assert "Choisir un nouveau mot de passe" in testclient.get(f"/password/reset/{fresh}").text


def test_reset_activates_pending_account(app: Any, testclient: Any, mailbox: Any, create_account: Any) -> None:
    user = create_account(verified=False)
    message = _reset_mail(testclient, mailbox, user.email)
    post_form(testclient, mail_link(message, "/password/reset/"), password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert user_row(app, user.email).state == AccountState.ACTIVE


def test_logout_needs_post_with_csrf(app: Any, testclient: Any, create_account: Any) -> None:
    user = create_account()
    login(testclient, user.email)
    confirm = testclient.get("/logout")
    assert confirm.status_code == 200 and "Voulez-vous vous déconnecter" in confirm.text
    assert testclient.get("/account/").status_code == 200
    missing = testclient.post("/logout", data={})
    assert missing.status_code == 400 and "Le formulaire a expiré" in missing.text
    assert testclient.get("/account/").status_code == 200
    done = testclient.post("/logout", data=form_fields(confirm.text))
    assert done.status_code == 200 and "Vous êtes déconnecté" in done.text
    assert testclient.get("/account/").status_code == 302


def test_login_without_csrf_is_a_400_page(testclient: Any, create_account: Any) -> None:
    user = create_account()
    response = testclient.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "Le formulaire a expiré" in response.text


def test_rate_limit_per_ip(app: Any, testclient: Any, create_account: Any) -> None:
    saved = app.config["RATELIMIT_LOGIN_IP"]
    app.config["RATELIMIT_LOGIN_IP"] = "2/minute"
    try:
        responses = [login(testclient, unique_email(), password="Wrong-Password-1x") for _ in range(3)]
    finally:
        app.config["RATELIMIT_LOGIN_IP"] = saved
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert "Trop de tentatives" in responses[-1].text


def test_rate_limit_per_account(app: Any, testclient: Any) -> None:
    saved = app.config["RATELIMIT_LOGIN_ACCOUNT"]
    app.config["RATELIMIT_LOGIN_ACCOUNT"] = "2/minute"
    target = unique_email()
    try:
        codes = [login(testclient, f"  {target.upper()} ", password="Wrong-Password-1x").status_code
                 for _ in range(3)]
        other = login(testclient, unique_email(), password="Wrong-Password-1x").status_code
    finally:
        app.config["RATELIMIT_LOGIN_ACCOUNT"] = saved
    assert codes == [200, 200, 429]
    assert other == 200


@pytest.mark.parametrize("how", ["query", "header"])
def test_english_interface(testclient: Any, how: str) -> None:
    if how == "query":
        response = testclient.get("/login?ui_locales=en")
    else:
        response = testclient.get("/login", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    assert "Log in" in response.text and "Se connecter" not in response.text
    french = testclient.get("/login", headers={"Accept-Language": "fr"}) if how == "header" else None
    if french is not None:
        assert "Se connecter" in french.text


def test_login_audit(app: Any, testclient: Any, create_account: Any) -> None:
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import AuditEvent

    user = create_account()
    login(testclient, user.email, password="Wrong-Password-1x")
    login(testclient, user.email)
    with app.app_context():
        rows = db.session.execute(
            select(AuditEvent.event, AuditEvent.details).where(AuditEvent.subject_id == user.id)
            .order_by(AuditEvent.id)).all()
    events = [event for event, _ in rows]
    assert events[-2:] == ["login.failure", "login.success"]
    assert rows[-2][1]["reason"] == "bad_password"
    assert PASSWORD not in str(rows) and "Wrong-Password" not in str(rows)
