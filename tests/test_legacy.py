"""Legacy shared accounts over LDAP (SPEC §4.6, §5.2 legacy_ids), against a real OpenLDAP slapd.

Every test drives the pages as a usager would (GET the form, post it with its CSRF token, follow
the e-mailed links); the directory is the session's slapd (tests/ldap_server.py), each test with
its own legacy accounts since the test database is shared by the whole session.
"""

from __future__ import annotations

import html
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from ldap_server import LdapServer

from tests.conftest import PASSWORD, form_fields, mail_link, mail_text, unique_email, without_csrf
from tests.test_accounts_helpers import login, post_form

GENERIC = "Identifiant ou mot de passe de l'ancien compte incorrect."


@pytest.fixture
def directory(app: Any, ldap_server: LdapServer) -> Iterator[LdapServer]:
    """The app pointed at the session's slapd for this test."""
    saved = {k: app.config.get(k) for k in ldap_server.config()}
    app.config.update(ldap_server.config())
    yield ldap_server
    app.config.update(saved)


@pytest.fixture
def usager(testclient: Any, create_account: Any) -> Any:
    """A logged-in usager with no structure yet."""
    user = create_account(email=unique_email("legacy"))
    assert login(testclient, user.email).status_code == 302
    return user


def text(response: Any) -> str:
    """The page as a reader sees it (entities decoded)."""
    return html.unescape(response.text)


def link(testclient: Any, legacy_id: str, password: str) -> Any:
    return post_form(testclient, "/ancien-compte/lier", legacy_id=legacy_id, password=password)


def membership(app: Any, user_id: uuid.UUID, siret: str) -> tuple[str, set[str]] | None:
    """(role, {"app:role"}) of the usager in the structure with this SIRET, or None."""
    from idp.core.memberships import live_role_ids, membership_of, role_labels
    from idp.core.structures import find_by_siret
    from idp.extensions import db

    with app.app_context():
        structure = find_by_siret(db.session, siret)
        found = membership_of(db.session, user_id, structure.id) if structure else None
        if found is None:
            return None
        roles = role_labels(db.session, live_role_ids(found))
        return found.role.value, {r.key for r in roles.values()}


def legacy_ids_of(app: Any, user_id: uuid.UUID, siret: str) -> list[str]:
    """The ids that count for this structure: the rows the claims query reads (`counted_links`);
    the claims themselves are read from real tokens in test_legacy_ids_in_the_id_token_after_linking."""
    from idp.core.structures import find_by_siret
    from idp.extensions import db
    from idp.models.legacy import counted_links

    with app.app_context():
        structure = find_by_siret(db.session, siret)
        if structure is None:
            return []
        return sorted(legacy_id for structure_id, legacy_id in db.session.execute(counted_links(user_id))
                      if structure_id == structure.id)


def events(app: Any, name: str, user_id: uuid.UUID) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from idp.extensions import db
    from idp.models import AuditEvent

    with app.app_context():
        return [e.details for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.event == name, AuditEvent.subject_id == user_id)
            .order_by(AuditEvent.id))]


# ---------------------------------------------------------------- method 1: the password

def test_the_account_menu_offers_the_link(testclient: Any, usager: Any) -> None:
    page = testclient.get("/account/")
    assert "Se lier à un ancien compte" in text(page) and "/ancien-compte/" in text(page)
    page = testclient.get("/ancien-compte/")
    assert page.status_code == 200
    assert "Je connais l'identifiant et le mot de passe" in text(page)
    assert "oublié le mot de passe" in text(page)


def test_anonymous_visitors_log_in_first(testclient: Any) -> None:
    response = testclient.get("/ancien-compte/lier")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_link_with_the_password_makes_a_member_with_the_entry_roles(app: Any, testclient: Any, usager: Any,
                                                                    directory: LdapServer) -> None:
    account = directory.accounts["REP_3076"]
    response = link(testclient, "REP_3076", account.password)
    assert response.status_code == 302 and response.headers["Location"].endswith("/ancien-compte/")
    page = testclient.get("/ancien-compte/")
    assert "vous êtes rattaché(e) à Organisme Legacy Un" in text(page)
    assert "REP_3076" in text(page)
    assert membership(app, usager.id, account.siret) == ("member", set(account.roles))
    assert legacy_ids_of(app, usager.id, account.siret) == ["REP_3076"]
    (linked,) = events(app, "legacy.linked", usager.id)
    assert linked["legacy_id"] == "REP_3076" and linked["method"] == "password" and linked["admin"] is False
    # The password is never stored, not even in the audit trail.
    assert account.password not in str(events(app, "legacy.linked", usager.id))


def test_the_id_is_matched_whatever_its_case_and_stored_as_the_directory_has_it(
        app: Any, testclient: Any, usager: Any, directory: LdapServer) -> None:
    account = directory.accounts["REP_PARTAGE"]
    assert link(testclient, "  rep_partage ", account.password).status_code == 302
    assert legacy_ids_of(app, usager.id, account.siret) == ["REP_PARTAGE"]


def test_an_adm_account_makes_an_admin_and_adds_to_an_existing_membership(
        app: Any, testclient: Any, create_account: Any, directory: LdapServer) -> None:
    user = create_account()
    login(testclient, user.email)
    member, adm = directory.accounts["REP_3076"], directory.accounts["REP_3076_ADM"]
    assert link(testclient, member.id, member.password).status_code == 302
    assert membership(app, user.id, member.siret) == ("member", set(member.roles))
    assert link(testclient, adm.id, adm.password).status_code == 302
    assert "Vous en êtes administrateur." in text(testclient.get("/ancien-compte/"))
    # Promoted; the grants of both legacy accounts.
    assert membership(app, user.id, adm.siret) == ("admin", set(member.roles) | set(adm.roles))
    assert legacy_ids_of(app, user.id, adm.siret) == ["REP_3076", "REP_3076_ADM"]
    assert events(app, "membership.promoted", user.id)


def test_tlpu_adm_makes_an_admin_of_the_lycee(app: Any, testclient: Any, usager: Any,
                                              directory: LdapServer) -> None:
    account = directory.accounts["TLPU_ADM"]
    assert link(testclient, "TLPU_ADM", account.password).status_code == 302
    assert membership(app, usager.id, account.siret) == ("admin", set(account.roles))


def test_the_directory_admin_group_makes_an_admin(app: Any, testclient: Any, usager: Any,
                                                  directory: LdapServer) -> None:
    account = directory.accounts["REP_GROUPE"]
    assert not account.id.endswith("_ADM")
    assert link(testclient, account.id, account.password).status_code == 302
    assert membership(app, usager.id, account.siret) == ("admin", set(account.roles))


def test_several_people_link_the_same_shared_account(app: Any, testclient: Any, create_account: Any,
                                                     directory: LdapServer) -> None:
    account = directory.accounts["REP_PARTAGE"]
    people = [create_account(), create_account()]
    for person in people:
        testclient.post("/logout", data={"csrf_token": ""})
        client = testclient.application.test_client()
        login(client, person.email)
        assert link(client, account.id, account.password).status_code == 302
    for person in people:
        assert legacy_ids_of(app, person.id, account.siret) == ["REP_PARTAGE"]
        assert [e["legacy_id"] for e in events(app, "legacy.linked", person.id)] == ["REP_PARTAGE"]


def test_linking_twice_changes_nothing_but_is_audited(app: Any, testclient: Any, usager: Any,
                                                      directory: LdapServer) -> None:
    account = directory.accounts["GC0012345"]
    for _ in range(2):
        assert link(testclient, account.id, account.password).status_code == 302
    assert legacy_ids_of(app, usager.id, account.siret) == ["GC0012345"]
    assert [e["again"] for e in events(app, "legacy.linked", usager.id)] == [False, True]


# ---------------------------------------------------------------- failures say nothing

def test_wrong_password_and_unknown_id_get_the_same_answer(app: Any, testclient: Any, usager: Any,
                                                           directory: LdapServer) -> None:
    account = directory.accounts["GC0012345"]
    wrong = link(testclient, account.id, "Not-the-password-1")
    unknown = link(testclient, "REP_99999", "Not-the-password-1")
    for response, typed in ((wrong, account.id), (unknown, "REP_99999")):
        assert response.status_code == 400
        assert GENERIC in text(response)
        assert f'value="{typed}"' in text(response)  # the id typed is kept
        assert "Not-the-password-1" not in text(response)  # the password is not sent back
    assert membership(app, usager.id, account.siret) is None
    failures = events(app, "legacy.failure", usager.id)
    assert [f["legacy_id"] for f in failures] == [account.id, "REP_99999"]
    assert "Not-the-password-1" not in str(failures)


def test_the_password_is_never_logged(app: Any, testclient: Any, usager: Any, directory: LdapServer,
                                      caplog: Any) -> None:
    import logging

    account = directory.accounts["GC0012345"]
    with caplog.at_level(logging.DEBUG):
        link(testclient, account.id, "Secret-typo-Xy9")
        link(testclient, account.id, account.password)
    assert "Secret-typo-Xy9" not in caplog.text and account.password not in caplog.text


def test_a_suspended_member_is_not_reactivated_by_a_link(app: Any, testclient: Any, usager: Any,
                                                          directory: LdapServer) -> None:
    account = directory.accounts["REP_GROUPE"]
    assert link(testclient, account.id, account.password).status_code == 302
    with app.app_context():
        from idp.core.memberships import membership_of
        from idp.core.structures import find_by_siret
        from idp.extensions import db
        from idp.models import MembershipStatus

        structure = find_by_siret(db.session, account.siret)
        membership_of(db.session, usager.id, structure.id).status = MembershipStatus.SUSPENDED
        db.session.commit()
    again = link(testclient, account.id, account.password)
    assert again.status_code == 403 and "suspendu" in text(again)


def test_empty_fields_are_explained(testclient: Any, usager: Any, directory: LdapServer) -> None:
    response = link(testclient, "", "")
    assert response.status_code == 400
    assert "Saisissez l'identifiant de l'ancien compte." in text(response)
    assert "Saisissez le mot de passe de l'ancien compte." in text(response)


@pytest.mark.parametrize("legacy_id", [
    "*", ")(uid=*", "*)(|(uid=*", "REP_3076)(uid=*", "REP*", "\\00", "\x00", "REP_3076\x00", "uid=REP_3076",
    "REP_3076,ou=comptes", "A" * 300,
])
def test_injection_attempts_in_the_id_link_nothing(app: Any, testclient: Any, usager: Any, directory: LdapServer,
                                                   legacy_id: str) -> None:
    # With a real password of the directory: a filter or DN injection would bind or match REP_3076.
    response = link(testclient, legacy_id, directory.accounts["REP_3076"].password)
    assert response.status_code == 400
    # NUL is refused before any view (issue 15): the generic "invalid request" page.
    assert (GENERIC in text(response) or "au plus 64 caractères" in text(response)
            or ("\x00" in legacy_id and "La requête n'a pas pu être traitée." in text(response)))
    assert membership(app, usager.id, directory.accounts["REP_3076"].siret) is None
    forgot = post_form(testclient, "/ancien-compte/oubli", legacy_id=legacy_id)
    assert forgot.status_code in (200, 400)
    with app.app_context():
        from sqlalchemy import func, select

        from idp.extensions import db
        from idp.models import JoinRequest, LegacyLink

        assert db.session.scalar(select(func.count()).select_from(LegacyLink)
                                 .where(LegacyLink.user_id == usager.id)) == 0
        assert db.session.scalar(select(func.count()).select_from(JoinRequest)
                                 .where(JoinRequest.user_id == usager.id)) == 0


def test_failed_binds_count_against_the_login_rate_limit(app: Any, testclient: Any, usager: Any,
                                                         directory: LdapServer) -> None:
    account = directory.accounts["REP_LIMITE"]
    saved = app.config["RATELIMIT_LOGIN_ACCOUNT"]
    app.config["RATELIMIT_LOGIN_ACCOUNT"] = "3/minute"
    try:
        for _ in range(3):
            assert link(testclient, account.id, "Wrong-password-0").status_code == 400
        # Blocked now, even with the right password (and whatever the case typed).
        page = testclient.get("/ancien-compte/lier")
        blocked = testclient.post("/ancien-compte/lier", data=form_fields(
            page.text, legacy_id=account.id.lower(), password=account.password))
        assert blocked.status_code == 429
        assert "Trop de tentatives" in text(blocked)
    finally:
        app.config["RATELIMIT_LOGIN_ACCOUNT"] = saved
    assert membership(app, usager.id, account.siret) is None


def test_csrf_is_required(testclient: Any, usager: Any, directory: LdapServer) -> None:
    response = testclient.post("/ancien-compte/lier", data={"legacy_id": "REP_3076",
                                                            "password": directory.accounts["REP_3076"].password})
    assert response.status_code == 400


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nobody listens there


def test_an_unreachable_directory_is_a_clear_503(app: Any, testclient: Any, usager: Any,
                                                 directory: LdapServer) -> None:
    saved = app.config["LEGACY_LDAP_URL"]
    app.config["LEGACY_LDAP_URL"] = f"ldap://127.0.0.1:{_closed_port()}"
    try:
        for path, values in (("/ancien-compte/lier", {"legacy_id": "REP_3076", "password": "x"}),
                             ("/ancien-compte/oubli", {"legacy_id": "REP_3076"})):
            response = post_form(testclient, path, **values)
            assert response.status_code == 503
            assert "Service d'annuaire indisponible" in text(response)
    finally:
        app.config["LEGACY_LDAP_URL"] = saved


# ---------------------------------------------------------------- method 2: the password is forgotten

def test_forgotten_password_sends_a_join_request_to_the_admins(app: Any, testclient: Any, create_account: Any,
                                                               directory: LdapServer, mailbox: Any) -> None:
    account = directory.accounts["TLPU"]
    admin = create_account(email=unique_email("proviseur"))
    login(testclient, admin.email)
    assert link(testclient, "TLPU_ADM", directory.accounts["TLPU_ADM"].password).status_code == 302

    teacher = create_account(email=unique_email("enseignant"))
    client = app.test_client()
    login(client, teacher.email)
    response = post_form(client, "/ancien-compte/oubli", legacy_id="TLPU")
    assert response.status_code == 200
    assert "Demande de rattachement envoyée" in text(response)
    message = mailbox.wait_for(admin.email, "Demande de rattachement")
    assert "TLPU" in mail_text(message) and teacher.email in mail_text(message)
    # Not linked until an admin accepts.
    assert membership(app, teacher.id, account.siret) is None
    assert legacy_ids_of(app, teacher.id, account.siret) == []
    assert "demande de rattachement envoyée" in text(client.get("/ancien-compte/"))
    # Asking again says a request is already waiting, not "envoyée" (issue 16).
    again = post_form(client, "/ancien-compte/oubli", legacy_id="TLPU")
    assert again.status_code == 200
    assert "Demande déjà en attente" in text(again) and "Demande de rattachement envoyée" not in text(again)

    # The admin follows "Traiter la demande" and lands on the request.
    opened = testclient.get(mail_link(message, "/gestion/demande/"))
    assert opened.status_code == 302 and "/demandes/" in opened.headers["Location"]
    with app.app_context():
        from sqlalchemy import select

        from idp.core.memberships import accept_request, authority, grants_by_key
        from idp.core.security import SYSTEM
        from idp.extensions import db
        from idp.models import JoinRequest, JoinStatus, User

        request = db.session.scalar(select(JoinRequest).where(JoinRequest.user_id == teacher.id,
                                                              JoinRequest.status == JoinStatus.PENDING))
        assert request is not None and "TLPU" in request.message
        auth = authority(db.session, db.session.get(User, admin.id), request.structure)
        accept_request(db.session, auth, request, grants_by_key(db.session, ["sam:redacteur"]), SYSTEM)
        db.session.commit()
    assert membership(app, teacher.id, account.siret) == ("member", {"sam:redacteur"})
    assert legacy_ids_of(app, teacher.id, account.siret) == ["TLPU"]
    assert "demande de rattachement envoyée" not in text(client.get("/ancien-compte/"))


def test_a_declined_request_links_nothing_and_says_so(app: Any, testclient: Any, create_account: Any,
                                                     directory: LdapServer, mailbox: Any) -> None:
    account = directory.accounts["REP_3076"]
    admin = create_account(email=unique_email("direction"))
    login(testclient, admin.email)
    assert link(testclient, "REP_3076_ADM", directory.accounts["REP_3076_ADM"].password).status_code == 302
    stranger = create_account(email=unique_email("inconnu"))
    client = app.test_client()
    login(client, stranger.email)
    assert post_form(client, "/ancien-compte/oubli", legacy_id=account.id).status_code == 200
    mailbox.wait_for(admin.email, "Demande de rattachement")
    with app.app_context():
        from sqlalchemy import select

        from idp.core.memberships import authority, decline_request
        from idp.core.security import SYSTEM
        from idp.extensions import db
        from idp.models import JoinRequest, JoinStatus, User

        request = db.session.scalar(select(JoinRequest).where(JoinRequest.user_id == stranger.id,
                                                              JoinRequest.status == JoinStatus.PENDING))
        decline_request(db.session, authority(db.session, db.session.get(User, admin.id), request.structure),
                        request, SYSTEM, reason="Inconnu de nos services")
        db.session.commit()
    assert membership(app, stranger.id, account.siret) is None
    assert legacy_ids_of(app, stranger.id, account.siret) == []
    page = text(client.get("/ancien-compte/"))
    assert "REP_3076" in page and "demande refusée" in page


def test_forgotten_password_without_admin_mails_the_legacy_address(app: Any, testclient: Any, usager: Any,
                                                                   create_account: Any, directory: LdapServer,
                                                                   mailbox: Any) -> None:
    account = directory.accounts["GC_SANSADMIN"]
    response = post_form(testclient, "/ancien-compte/oubli", legacy_id=account.id)
    assert response.status_code == 200
    message = mailbox.wait_for(account.mail, account.id)
    path = mail_link(message, "/ancien-compte/confirmer/")
    assert usager.email in mail_text(message)
    assert membership(app, usager.id, account.siret) is None

    # Someone else, logged in, cannot use it.
    other = create_account()
    client = app.test_client()
    login(client, other.email)
    refused = client.get(path)
    assert refused.status_code == 403 and "autre compte" in text(refused)

    # The usager who asked follows it and confirms: linked with the entry's roles, as the password
    # would have done (the entry's mailbox vouched for them).
    page = testclient.get(path)
    assert page.status_code == 200 and account.id in text(page)
    done = testclient.post(path, data=form_fields(page.text))
    assert done.status_code == 302
    assert membership(app, usager.id, account.siret) == ("member", set(account.roles))
    assert legacy_ids_of(app, usager.id, account.siret) == [account.id]
    assert events(app, "legacy.linked", usager.id)[-1]["method"] == "mail"
    # A tampered link is refused.
    assert testclient.get(path[:-3] + "abc").status_code == 400


def test_forgotten_password_of_an_unknown_id_answers_the_same(app: Any, testclient: Any, usager: Any,
                                                               directory: LdapServer, mailbox: Any) -> None:
    known = post_form(testclient, "/ancien-compte/oubli", legacy_id="GC_SANSADMIN")
    unknown = post_form(testclient, "/ancien-compte/oubli", legacy_id="GC_INCONNU")
    assert known.status_code == unknown.status_code == 200
    # The CSRF tokens carry their second of issue: not part of what must be the same.
    def same(page: Any, legacy_id: str) -> str:
        return without_csrf(text(page).replace(legacy_id, "X"))

    assert same(known, "GC_SANSADMIN") == same(unknown, "GC_INCONNU")


# ---------------------------------------------------------------- migration

def test_import_creates_structures_and_entitlements_idempotently(app: Any, directory: LdapServer) -> None:
    import json

    runner = app.test_cli_runner()
    first = runner.invoke(args=["legacy", "import", "--json"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output)
    assert summary["entries"] == len(directory.accounts)
    assert summary["invalid"] == []
    from idp.core.catalogue import roles_by_key
    from idp.core.memberships import entitled_role_ids
    from idp.core.structures import find_by_siret
    from idp.extensions import db

    with app.app_context():
        keys = {r.id: k for k, r in roles_by_key(db.session).items()}
        for account in directory.accounts.values():
            structure = find_by_siret(db.session, account.siret)
            assert structure is not None and structure.name == account.name
            assert set(account.roles) <= {keys[r] for r in entitled_role_ids(db.session, structure.id)}
    again = runner.invoke(args=["legacy", "import", "--json"])
    assert again.exit_code == 0, again.output
    second = json.loads(again.output)
    assert second["structures_created"] == 0 and second["entitlements_added"] == 0
    assert second["structures_existing"] == len({a.siret for a in directory.accounts.values()})
    # Without --json: a progress bar and a French summary.
    human = runner.invoke(args=["legacy", "import"])
    assert human.exit_code == 0 and "0 structure(s) créée(s)" in human.output


def test_import_reports_an_unreachable_directory(app: Any, directory: LdapServer) -> None:
    saved = app.config["LEGACY_LDAP_URL"]
    app.config["LEGACY_LDAP_URL"] = f"ldap://127.0.0.1:{_closed_port()}"
    try:
        result = app.test_cli_runner().invoke(args=["legacy", "import"])
    finally:
        app.config["LEGACY_LDAP_URL"] = saved
    assert result.exit_code == 1 and "Service d'annuaire indisponible" in result.output


# ---------------------------------------------------------------- claims

def test_legacy_ids_in_the_id_token_after_linking(app: Any, live_server: str, browser: Any, create_client: Any,
                                                  create_account: Any, directory: LdapServer) -> None:
    from tests.oidc_helpers import code_flow, verify_jwt

    user = create_account()
    client = app.test_client()
    login(client, user.email)
    account = directory.accounts["REP_CLAIMS"]
    assert link(client, account.id, account.password).status_code == 302
    sam = create_client(app="sam", trusted=True, scope="openid profile email structures")
    token = code_flow(live_server, browser, *sam, user.email, scope="openid profile structures")
    claims = verify_jwt(live_server, token["id_token"], audience=sam[0])
    assert claims["structure"]["siret"] == account.siret
    assert claims["roles"] == ["redacteur"]
    assert claims["legacy_ids"] == ["REP_CLAIMS"]
    access = verify_jwt(live_server, token["access_token"], audience=sam[0], typ="at+jwt")
    assert access["legacy_ids"] == ["REP_CLAIMS"]


def test_offline_mock_links_the_demo_accounts(app: Any, testclient: Any, usager: Any) -> None:
    """No LEGACY_LDAP_URL: the bundled LDIF through ldap3's mock (the embedded demo)."""
    assert app.config["LEGACY_LDAP_URL"] == ""
    assert link(testclient, "TLPU", PASSWORD).status_code == 400
    assert link(testclient, "TLPU", "Tlpu-demo-2021").status_code == 302
    assert membership(app, usager.id, "19690001300018") == ("member", {"sam:redacteur", "repernet:lecteur"})
