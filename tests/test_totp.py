"""TOTP enrolment, login with a code, replay refused, recovery codes, disable (SPEC §4.1)."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
from conftest import PASSWORD, form_fields
from test_accounts_helpers import login, post_form, user_row

from idp.core import totp


def enrol(app: Any, testclient: Any, email: str) -> tuple[str, list[str]]:
    """Enrol through the pages; returns the secret and the recovery codes shown."""
    page = testclient.get("/account/totp/enroll")
    assert page.status_code == 200
    assert re.search(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+"', page.text)
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.text).group(1)
    assert secret == user_row(app, email).totp_secret
    wrong = testclient.post("/account/totp/enroll", data=form_fields(page.text, code="000000"))
    assert "Code incorrect" in wrong.text
    done = testclient.post("/account/totp/enroll", data=form_fields(page.text, code=totp.current_code(secret)))
    assert done.status_code == 200
    codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", done.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    return secret, codes


def logout(testclient: Any) -> None:
    testclient.post("/logout", data=form_fields(testclient.get("/logout").text))


def test_enrol_then_login_needs_code_and_replay_is_refused(app: Any, testclient: Any, create_account: Any) -> None:
    user = create_account()
    login(testclient, user.email)
    secret, _ = enrol(app, testclient, user.email)
    assert user_row(app, user.email).totp_enabled
    logout(testclient)

    # The code used at enrolment (same 30 s step) cannot be replayed at login.
    response = login(testclient, user.email, query="?next=/account/sessions")
    assert response.status_code == 302 and "/login/totp" in response.headers["Location"]
    assert testclient.get("/account/").status_code == 302  # password alone is not enough
    step_page = testclient.get(response.headers["Location"])
    assert form_fields(step_page.text)["next"] == "/account/sessions"
    replay = testclient.post(response.headers["Location"],
                             data=form_fields(step_page.text, code=totp.current_code(secret)))
    assert replay.status_code == 200 and "Code incorrect ou déjà utilisé" in replay.text

    # The next step's code (within the window) works, once.
    next_code = pyotp.TOTP(secret).at(time.time() + 30)
    ok = testclient.post(response.headers["Location"], data=form_fields(step_page.text, code=next_code))
    assert ok.status_code == 302 and ok.headers["Location"] == "/account/sessions"
    assert "urn" not in ok.headers["Location"]
    with app.app_context():
        from sqlalchemy import select

        from idp.extensions import db
        from idp.models import LoginSession

        amr = db.session.scalars(select(LoginSession.amr).where(LoginSession.user_id == user.id)
                                 .order_by(LoginSession.created_at.desc())).first()
    assert amr == "pwd otp"

    logout(testclient)
    again = login(testclient, user.email)
    page = testclient.get(again.headers["Location"])
    reused = testclient.post(again.headers["Location"], data=form_fields(page.text, code=next_code))
    assert "Code incorrect ou déjà utilisé" in reused.text


def test_recovery_code_works_once(app: Any, testclient: Any, create_account: Any) -> None:
    user = create_account()
    login(testclient, user.email)
    _, codes = enrol(app, testclient, user.email)
    logout(testclient)
    for attempt in range(2):
        response = login(testclient, user.email)
        page = testclient.get(response.headers["Location"])
        result = testclient.post(response.headers["Location"], data=form_fields(page.text, code=codes[0].upper()))
        if attempt == 0:
            assert result.status_code == 302
            assert "Codes de secours restants : 9" in testclient.get("/account/totp").text
            logout(testclient)
        else:
            assert "Code incorrect ou déjà utilisé" in result.text


def test_regenerate_and_disable(app: Any, testclient: Any, create_account: Any) -> None:
    user = create_account()
    login(testclient, user.email)
    _, old_codes = enrol(app, testclient, user.email)
    regenerated = post_form(testclient, "/account/totp", index=2)  # after the header's logout and language forms
    new_codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", regenerated.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)

    wrong = post_form(testclient, "/account/totp", index=3, password="Not-My-Password-1")
    assert "Mot de passe incorrect." in wrong.text and user_row(app, user.email).totp_enabled
    done = post_form(testclient, "/account/totp", index=3, password=PASSWORD)
    assert done.status_code == 302
    row = user_row(app, user.email)
    assert not row.totp_enabled and row.totp_secret is None
    logout(testclient)
    assert login(testclient, user.email).headers["Location"].endswith("/account/")


def test_matching_step_window() -> None:
    secret = totp.new_secret()
    now = time.time()
    code = pyotp.TOTP(secret).at(now)
    step = int(now // 30)
    assert totp.matching_step(secret, code, None, now) == step
    assert totp.matching_step(secret, code, step, now) is None  # already used
    assert totp.matching_step(secret, pyotp.TOTP(secret).at(now - 90), None, now) is None  # too old
    assert totp.matching_step(secret, "12345", None, now) is None
    assert totp.matching_step(secret, code[:3] + " " + code[3:], None, now) == step
