"""TOTP is required for platform and structure administrators (SPEC §4.1, TOTP_REQUIRED_FOR_ADMINS)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import form_fields
from test_accounts_helpers import login

from idp.core import totp


@pytest.fixture
def required(app: Any) -> Iterator[None]:
    app.config["TOTP_REQUIRED_FOR_ADMINS"] = True
    yield
    app.config["TOTP_REQUIRED_FOR_ADMINS"] = False


def _structure_admin(app: Any, create_account: Any) -> Any:
    from stdnum import luhn

    from idp.core.memberships import add_member, authority
    from idp.core.security import SYSTEM
    from idp.core.structures import StructureData, create_structure
    from idp.extensions import db
    from idp.models import User

    user, platform = create_account(), create_account(admin=True)
    siren = f"{int(user.id.int % 10**8):08d}"
    siren += luhn.calc_check_digit(siren)
    siret = siren + "0001" + luhn.calc_check_digit(siren + "0001")
    with app.app_context():
        structure = create_structure(db.session, StructureData(siret=siret, name="Organisme MFA"), SYSTEM)
        add_member(db.session, authority(db.session, db.session.get(User, platform.id), structure),
                   db.session.get(User, user.id), SYSTEM, admin=True)
        db.session.commit()
    return user


@pytest.mark.parametrize("kind", ["platform", "structure"])
def test_an_admin_must_enrol_before_going_on(app: Any, testclient: Any, create_account: Any, required: None,
                                             kind: str) -> None:
    user = create_account(admin=True) if kind == "platform" else _structure_admin(app, create_account)
    assert login(testclient, user.email).status_code == 302
    target = "/admin/" if kind == "platform" else "/structures/"
    blocked = testclient.get(target)
    assert blocked.status_code == 302 and blocked.headers["Location"].endswith("/account/totp/enroll")
    assert "obligatoire pour les administrateurs" in testclient.get("/account/").text  # their account stays open
    # The OIDC authorization endpoint is held back the same way.
    assert testclient.get("/oauth/authorize?client_id=x").headers["Location"].endswith("/account/totp/enroll")
    testclient.get(target)  # where they want to go, remembered for after the enrolment

    page = testclient.get("/account/totp/enroll")
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.text).group(1)
    done = testclient.post("/account/totp/enroll", data=form_fields(page.text, code=totp.current_code(secret)))
    assert done.status_code == 200 and f'href="{target}"' in done.text  # "continue" goes back where they were
    assert testclient.get(target).status_code == 200


def test_a_plain_member_is_not_asked(app: Any, testclient: Any, create_account: Any, required: None) -> None:
    user = create_account()
    login(testclient, user.email)
    assert testclient.get("/structures/").status_code == 200


def test_the_setting_off_lets_admins_through(testclient: Any, create_account: Any) -> None:
    admin = create_account(admin=True)
    login(testclient, admin.email)
    assert testclient.get("/admin/").status_code == 200


def test_a_first_login_without_structure_offers_to_join_or_link(testclient: Any, create_account: Any) -> None:
    from test_accounts_helpers import login as log_in

    user = create_account()
    first = log_in(testclient, user.email)
    assert first.status_code == 302 and first.headers["Location"].endswith("/bienvenue")
    page = testclient.get(first.headers["Location"])
    assert "/structures/rattacher" in page.text and "/ancien-compte/" in page.text and "/account/" in page.text
    testclient.post("/logout", data=form_fields(testclient.get("/logout").text))
    again = log_in(testclient, user.email)
    assert again.headers["Location"].endswith("/account/")  # only the first time


def test_a_first_login_on_the_way_somewhere_is_not_interrupted(testclient: Any, create_account: Any) -> None:
    from test_accounts_helpers import login as log_in

    user = create_account()
    assert log_in(testclient, user.email, query="?next=/account/sessions").headers["Location"].endswith(
        "/account/sessions")
