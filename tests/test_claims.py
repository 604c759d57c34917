"""Structure claims (SPEC §5.2), the current structure and switching (§4.2, §5.3), freshness (§5.3).

Tokens are verified with PyJWT against the published JWKS; changes are made through the domain
core, as the management screens do, and observed through the token, userinfo and back-channel.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from idp.extensions import db
from tests.conftest import PASSWORD, forms, new_siret, unique_email
from tests.oidc_helpers import (
    authorize_url,
    browse,
    code_flow,
    exchange,
    pkce_pair,
    query,
    refresh,
    verify_jwt,
)

SCOPE = "openid profile structures"






class Receiver:
    """A relying party's back-channel logout endpoint."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.event = threading.Event()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        self.tokens.append(Request(environ).form["logout_token"])
        self.event.set()
        return Response("", status=200)(environ, start_response)


@pytest.fixture
def receivers() -> Any:
    started = []

    def start() -> Receiver:
        receiver = Receiver()
        server = make_server("127.0.0.1", 0, receiver, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        receiver.url = f"http://127.0.0.1:{server.server_port}/backchannel-logout"  # type: ignore[attr-defined]
        started.append(server)
        return receiver

    yield start
    for server in started:
        server.shutdown()


@dataclass
class World:
    user: Any
    a: Any
    b: Any
    c: Any
    sam: tuple[str, str]
    repernet: tuple[str, str]
    sam_receiver: Receiver
    repernet_receiver: Receiver


@pytest.fixture
def world(app: Any, create_account: Any, create_client: Any, receivers: Any) -> World:
    """A usager in three structures: A (admin; SAM and REPERNET roles), B (a SAM role), C (only
    a Catalogue role); one SAM client and one REPERNET client, each with a back-channel receiver."""
    from idp.core.memberships import add_member, authority, grants_by_key
    from idp.core.security import SYSTEM
    from idp.core.structures import StructureData, create_structure
    from idp.extensions import db
    from idp.models import StructureKind, User

    user = create_account()
    platform = create_account(admin=True)
    with app.app_context():
        admin = db.session.get(User, platform.id)
        member = db.session.get(User, user.id)
        made = []
        for name, kind, admin_there, keys in (
            ("Organisme A", StructureKind.ORGANISME, True, ["sam:redacteur", "sam:signataire", "repernet:gestionnaire"]),
            ("Organisme B", StructureKind.ORGANISME, False, ["sam:redacteur"]),
            ("Lycée C", StructureKind.LYCEE, False, ["catalogue:lecteur"]),
        ):
            structure = create_structure(db.session, StructureData(siret=new_siret(), name=name, kind=kind),
                                         SYSTEM)
            add_member(db.session, authority(db.session, admin, structure), member, SYSTEM,
                       role_ids=grants_by_key(db.session, keys), admin=admin_there)
            made.append({"id": str(structure.id), "siret": structure.siret, "name": name})
        db.session.commit()
    sam_receiver, repernet_receiver = receivers(), receivers()
    sam = create_client(app="sam", trusted=True, scope="openid profile email structures",
                        backchannel_logout_uri=sam_receiver.url)
    repernet = create_client(app="repernet", trusted=True, scope="openid profile email structures",
                             backchannel_logout_uri=repernet_receiver.url)
    return World(user, *made, sam=sam, repernet=repernet, sam_receiver=sam_receiver,
                 repernet_receiver=repernet_receiver)


def _claims(issuer: str, token: dict[str, Any], client_id: str) -> dict[str, Any]:
    return verify_jwt(issuer, token["id_token"], audience=client_id)


def _userinfo(issuer: str, access_token: str) -> requests.Response:
    return requests.get(f"{issuer}/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10)


def _entry(structure: dict[str, str], roles: list[str]) -> dict[str, Any]:
    return {**structure, "roles": roles}


def _with_db(app: Any, action: Any) -> None:
    from idp.extensions import db

    with app.app_context():
        action(db.session)
        db.session.commit()


def _membership(session: Any, world: World, structure: dict[str, str]) -> Any:
    import uuid

    from idp.core.memberships import membership_of

    return membership_of(session, world.user.id, uuid.UUID(structure["id"]))


def _platform_authority(session: Any, structure_id: Any) -> Any:
    from sqlalchemy import select

    from idp.core.memberships import authority
    from idp.models import Structure, User

    admin = session.scalars(select(User).where(User.is_admin.is_(True))).first()
    return authority(session, admin, session.get(Structure, structure_id))


# ---------------------------------------------------------------- claims and minimisation

def test_claims_carry_only_the_requesting_applications_roles(live_server: str, browser: requests.Session,
                                                             world: World) -> None:
    token = code_flow(live_server, browser, *world.sam, world.user.email, scope=SCOPE, structure=world.a["id"])
    expected_structures = sorted([_entry(world.a, ["redacteur", "signataire"]), _entry(world.b, ["redacteur"])],
                                 key=lambda s: s["name"])
    for claims in (
        _claims(live_server, token, world.sam[0]),
        verify_jwt(live_server, token["access_token"], audience=world.sam[0], typ="at+jwt"),
        _userinfo(live_server, token["access_token"]).json(),
    ):
        assert claims["structure"] == {**world.a, "admin": True}
        assert claims["roles"] == ["redacteur", "signataire"]
        # Lycée C holds no SAM role: SAM never learns of it, nor of the REPERNET or Catalogue roles.
        assert sorted(claims["structures"], key=lambda s: s["name"]) == expected_structures
        assert claims["legacy_ids"] == []

    # The same session seen by REPERNET: its own roles only, and only structure A.
    other = code_flow(live_server, browser, *world.repernet, world.user.email, scope=SCOPE)
    claims = _claims(live_server, other, world.repernet[0])
    assert claims["structure"]["id"] == world.a["id"] and claims["roles"] == ["gestionnaire"]
    assert claims["structures"] == [_entry(world.a, ["gestionnaire"])]


def test_no_structure_claims_without_the_scope(live_server: str, browser: requests.Session, world: World) -> None:
    token = code_flow(live_server, browser, *world.sam, world.user.email, scope="openid profile")
    claims = _claims(live_server, token, world.sam[0])
    assert not {"structure", "roles", "structures", "legacy_ids"} & set(claims)
    assert not {"structure", "roles"} & set(_userinfo(live_server, token["access_token"]).json())


def test_discovery_lists_the_structure_scope_and_claims(live_server: str) -> None:
    meta = requests.get(f"{live_server}/.well-known/openid-configuration", timeout=10).json()
    assert "structures" in meta["scopes_supported"]
    assert {"structure", "roles", "structures", "legacy_ids"} <= set(meta["claims_supported"])


# ---------------------------------------------------------------- choosing and switching

def test_login_asks_for_the_structure_and_remembers_the_last_one(live_server: str, world: World) -> None:
    first = requests.Session()
    token = code_flow(live_server, first, *world.sam, world.user.email, scope=SCOPE, structure=world.b["id"])
    assert _claims(live_server, token, world.sam[0])["structure"]["id"] == world.b["id"]

    # A new login (another browser) offers the same choice, B pre-selected.
    second = requests.Session()
    page = second.get(f"{live_server}/login", timeout=10)
    login = second.post(f"{live_server}/login", data={**forms(page.text)[-1]["fields"], "email": world.user.email,
                                                      "password": PASSWORD}, allow_redirects=False)
    assert login.status_code == 302 and "/account/structure" in login.headers["Location"]
    chooser = second.get(f"{live_server}{login.headers['Location']}", timeout=10)
    assert chooser.status_code == 200
    assert forms(chooser.text)[-1]["fields"]["structure"] == world.b["id"]
    for structure in (world.a, world.b, world.c):
        assert structure["name"] in chooser.text


def test_switching_changes_what_every_client_sees(live_server: str, browser: requests.Session, world: World) -> None:
    sam_token = code_flow(live_server, browser, *world.sam, world.user.email, scope=SCOPE, structure=world.a["id"])
    page = browser.get(f"{live_server}/account/structure", timeout=10)
    fields = forms(page.text)[-1]["fields"]
    switched = browser.post(f"{live_server}/account/structure", data={**fields, "structure": world.b["id"]},
                            allow_redirects=False)
    assert switched.status_code == 302

    # The refresh and userinfo of the same session now say B (the choice belongs to the IdP session).
    renewed = refresh(live_server, sam_token["refresh_token"], *world.sam)
    assert renewed.status_code == 200, renewed.text
    claims = _claims(live_server, renewed.json(), world.sam[0])
    assert claims["structure"] == {**world.b, "admin": False} and claims["roles"] == ["redacteur"]
    assert _userinfo(live_server, sam_token["access_token"]).json()["structure"]["id"] == world.b["id"]
    repernet = code_flow(live_server, browser, *world.repernet, world.user.email, scope=SCOPE)
    # REPERNET sees B as the current structure, with no REPERNET role there.
    claims = _claims(live_server, repernet, world.repernet[0])
    assert claims["structure"]["id"] == world.b["id"] and claims["roles"] == []


def test_switching_to_a_structure_i_do_not_belong_to_is_refused(live_server: str, browser: requests.Session,
                                                                world: World, app: Any) -> None:
    import uuid

    code_flow(live_server, browser, *world.sam, world.user.email, scope=SCOPE, structure=world.a["id"])
    page = browser.get(f"{live_server}/account/structure", timeout=10)
    fields = forms(page.text)[-1]["fields"]
    for bogus in (str(uuid.uuid4()), "not-a-uuid", ""):
        response = browser.post(f"{live_server}/account/structure", data={**fields, "structure": bogus},
                                allow_redirects=False)
        assert response.status_code == 200 and 'role="alert"' in response.text


def test_siret_hint_selects_one_of_my_structures(live_server: str, browser: requests.Session, world: World) -> None:
    code_flow(live_server, browser, *world.sam, world.user.email, scope=SCOPE, structure=world.a["id"])
    token = code_flow(live_server, browser, *world.sam, world.user.email, scope=SCOPE, siret_hint=world.b["siret"])
    assert _claims(live_server, token, world.sam[0])["structure"]["id"] == world.b["id"]
    # A SIRET I don't belong to is ignored (no error, no leak).
    token = code_flow(live_server, browser, *world.sam, world.user.email, scope=SCOPE, siret_hint=new_siret())
    assert _claims(live_server, token, world.sam[0])["structure"]["id"] == world.b["id"]


def test_prompt_select_account_offers_the_structures(live_server: str, browser: requests.Session,
                                                     world: World) -> None:
    code_flow(live_server, browser, *world.sam, world.user.email, scope=SCOPE, structure=world.a["id"])
    verifier, challenge = pkce_pair()
    url = authorize_url(live_server, world.sam[0], scope=SCOPE, challenge=challenge, prompt="select_account")
    page = browser.get(url, timeout=10)
    assert page.status_code == 200 and world.c["name"] in page.text
    callback = browse(browser, url, structure=world.c["id"])
    token = exchange(live_server, query(callback)["code"], *world.sam, verifier).json()
    claims = _claims(live_server, token, world.sam[0])
    # C is current (SAM must be able to say "no SAM rights here"), but C stays out of `structures`.
    assert claims["structure"]["id"] == world.c["id"] and claims["roles"] == []
    assert world.c["id"] not in {s["id"] for s in claims["structures"]}


# ---------------------------------------------------------------- freshness (SPEC §5.3)

def test_removing_a_role_ends_that_applications_sessions_at_once(live_server: str, browser: requests.Session,
                                                                 world: World, app: Any) -> None:
    sam_token = code_flow(live_server, browser, *world.sam, world.user.email, scope=SCOPE, structure=world.a["id"])
    repernet_token = code_flow(live_server, browser, *world.repernet, world.user.email, scope=SCOPE)

    def remove_signataire(session: Any) -> None:
        from idp.core.memberships import grants_by_key, set_grants
        from idp.core.security import SYSTEM

        membership = _membership(session, world, world.a)
        keep = grants_by_key(session, ["sam:redacteur", "repernet:gestionnaire"])
        set_grants(session, _platform_authority(session, membership.structure_id), membership, keep, SYSTEM,
                   expected_version=None)

    _with_db(app, remove_signataire)
    assert world.sam_receiver.event.wait(10), "SAM was not told over the back channel"
    logout = verify_jwt(live_server, world.sam_receiver.tokens[0], audience=world.sam[0], typ="logout+jwt")
    assert logout["sub"] == str(world.user.id)
    # SAM's refresh token is revoked; userinfo already shows the role gone.
    assert refresh(live_server, sam_token["refresh_token"], *world.sam).json()["error"] == "invalid_grant"
    assert _userinfo(live_server, sam_token["access_token"]).json()["roles"] == ["redacteur"]
    # REPERNET lost nothing: it keeps its session and its refresh token.
    assert not world.repernet_receiver.tokens
    assert refresh(live_server, repernet_token["refresh_token"], *world.repernet).status_code == 200
    # The IdP session itself lives on: a new SAM login is silent and carries the new roles.
    token = code_flow(live_server, browser, *world.sam, world.user.email, scope=SCOPE)
    assert _claims(live_server, token, world.sam[0])["roles"] == ["redacteur"]


@pytest.mark.parametrize("change", ["detach", "suspend"])
def test_detach_or_suspend_removes_the_structure_everywhere(live_server: str, browser: requests.Session,
                                                           world: World, app: Any, change: str) -> None:
    sam_token = code_flow(live_server, browser, *world.sam, world.user.email, scope=SCOPE, structure=world.b["id"])

    def act(session: Any) -> None:
        from idp.core.memberships import detach, set_suspended
        from idp.core.security import SYSTEM

        membership = _membership(session, world, world.b)
        auth = _platform_authority(session, membership.structure_id)
        if change == "detach":
            detach(session, auth, membership, SYSTEM, expected_version=None)
        else:
            set_suspended(session, auth, membership, True, SYSTEM, expected_version=None)

    _with_db(app, act)
    assert world.sam_receiver.event.wait(10)
    assert refresh(live_server, sam_token["refresh_token"], *world.sam).status_code == 400
    claims = _userinfo(live_server, sam_token["access_token"]).json()
    assert world.b["id"] not in {s["id"] for s in claims["structures"]}
    # B was the current structure: the claims fall back to no structure rather than a stale one.
    assert claims["structure"] is None or claims["structure"]["id"] != world.b["id"]


def test_an_ended_grant_is_not_claimed(live_server: str, browser: requests.Session, world: World, app: Any) -> None:
    from idp.models import utcnow

    def end_yesterday(session: Any) -> None:
        membership = _membership(session, world, world.b)
        for grant in membership.grants:
            grant.ends_at = utcnow() - timedelta(days=1)

    _with_db(app, end_yesterday)
    token = code_flow(live_server, browser, *world.sam, world.user.email, scope=SCOPE, structure=world.a["id"])
    claims = _claims(live_server, token, world.sam[0])
    assert [s["id"] for s in claims["structures"]] == [world.a["id"]]


@pytest.fixture
def second_worker(app: Any) -> Any:
    """Another worker of the same IdP: its own app, its own caches (claims, clients, keys), the
    same database."""
    from idp import create_app

    keys = ("TESTING", "TOTP_REQUIRED_FOR_ADMINS", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SMTP_URL", "DEV_INBOX",
            "ISSUER", "ARGON2_TIME_COST", "ARGON2_MEMORY_COST", "ARGON2_PARALLELISM", "KEY_PUBLISH_BEFORE_USE")
    other = create_app({key: app.config[key] for key in keys})
    yield other
    other.extensions["backchannel"].pool.shutdown(wait=True)
    with other.app_context():
        db.engine.dispose()


def _userinfo_in(worker: Any, access_token: str) -> dict[str, Any]:
    response = worker.test_client().get("/oauth/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def _rename(world: World, structure: dict[str, str], name: str) -> Any:
    def act(session: Any) -> None:
        import uuid

        from idp.core.security import SYSTEM
        from idp.core.structures import update_structure
        from idp.models import Structure

        update_structure(session, session.get(Structure, uuid.UUID(structure["id"])), SYSTEM, actor=None, name=name)
    return act


@pytest.mark.parametrize("change", ["remove_role", "suspend", "detach", "end_grant", "rename"])
def test_no_worker_serves_cached_claims_after_a_change(live_server: str, browser: requests.Session, world: World,
                                                       app: Any, second_worker: Any, change: str) -> None:
    """SPEC §5.3 with several workers: each keeps the claims it computed (per user, application,
    current structure and the account's stamp), and a change committed by one process is seen at
    once by every other, whichever was asked before."""
    target = world.b if change in ("suspend", "detach") else world.a  # the user is A's only admin
    token = code_flow(live_server, browser, *world.sam, world.user.email, scope=SCOPE, structure=target["id"])
    access = token["access_token"]
    for _ in range(2):  # computed, then served from each worker's cache
        before = _userinfo_in(second_worker, access)
        assert _userinfo(live_server, access).json() == before
    assert before["structure"]["id"] == target["id"]
    assert before["roles"] == (["redacteur"] if target is world.b else ["redacteur", "signataire"])

    def act(session: Any) -> None:
        from idp.core.memberships import detach, grants_by_key, set_grants, set_suspended
        from idp.core.security import SYSTEM
        from idp.models import utcnow

        membership = _membership(session, world, target)
        auth = _platform_authority(session, membership.structure_id)
        if change == "remove_role":
            set_grants(session, auth, membership, grants_by_key(session, ["sam:redacteur", "repernet:gestionnaire"]),
                       SYSTEM, expected_version=None)
        elif change == "suspend":
            set_suspended(session, auth, membership, True, SYSTEM, expected_version=None)
        elif change == "detach":
            detach(session, auth, membership, SYSTEM, expected_version=None)
        else:  # end_grant
            for grant in membership.grants:
                grant.ends_at = utcnow() - timedelta(seconds=1)

    # The change is made by a third process's session (the CLI, the console of another worker).
    _with_db(app, _rename(world, world.a, "Organisme A renommé") if change == "rename" else act)
    for claims in (_userinfo_in(second_worker, access), _userinfo(live_server, access).json()):
        if change == "remove_role":
            assert claims["roles"] == ["redacteur"]
        elif change == "rename":
            assert claims["structure"]["name"] == "Organisme A renommé"
            assert {s["name"] for s in claims["structures"]} == {"Organisme A renommé", "Organisme B"}
        elif change == "end_grant":  # still A's member: A stays current, with no SAM role
            assert claims["structure"]["id"] == world.a["id"] and claims["roles"] == []
            assert world.a["id"] not in {s["id"] for s in claims["structures"]}
        else:  # no longer a member of B: never a stale B
            assert claims["structure"] is None or claims["structure"]["id"] != world.b["id"]
            assert world.b["id"] not in {s["id"] for s in claims["structures"]}


def test_a_grant_that_ends_by_itself_is_not_served_from_a_cache(live_server: str, browser: requests.Session,
                                                                world: World, app: Any) -> None:
    """A grant's end date passes without any write: the cached claims expire with it."""
    import time

    from idp.models import utcnow

    ends = utcnow() + timedelta(seconds=2)

    def end_soon(session: Any) -> None:
        for grant in _membership(session, world, world.a).grants:
            if grant.role.name == "signataire":
                grant.ends_at = ends

    _with_db(app, end_soon)
    token = code_flow(live_server, browser, *world.sam, world.user.email, scope=SCOPE, structure=world.a["id"])
    for _ in range(2):
        assert _userinfo(live_server, token["access_token"]).json()["roles"] == ["redacteur", "signataire"]
    time.sleep(max(0.0, (ends - utcnow()).total_seconds()) + 0.2)
    assert _userinfo(live_server, token["access_token"]).json()["roles"] == ["redacteur"]


def test_claims_cost_one_query_whatever_the_number_of_structures(app: Any, world: World) -> None:
    """The claims come from one query (SPEC §5.2, STYLE 7): counted, not timed."""
    from sqlalchemy import event

    from idp.extensions import db
    from idp.models import User
    from idp.oidc.claims import structure_claims

    with app.app_context():
        user = db.session.get(User, world.user.id)
        statements: list[str] = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            claims = structure_claims(db.session, user, "sam", None)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        assert len(statements) == 1, statements
        assert len(claims["structures"]) == 2


def test_a_new_account_has_empty_structure_claims(live_server: str, create_account: Any, world: World) -> None:
    newcomer = create_account(email=unique_email("nouveau"))
    token = code_flow(live_server, requests.Session(), *world.sam, newcomer.email, scope=SCOPE)
    claims = _claims(live_server, token, world.sam[0])
    assert claims["structure"] is None and claims["roles"] == [] and claims["structures"] == []


@pytest.mark.parametrize(("return_to", "allowed"), [
    ("http://127.0.0.1:9999/dossiers?onglet=2", True),   # the origin of a registered redirect URI
    ("https://evil.example/phish", False),
    ("http://127.0.0.1:9998/", False),                    # another port is another origin
    ("//evil.example/", False),
    ("javascript:alert(1)", False),
])
def test_an_application_can_send_the_user_to_switch_and_get_them_back(
        live_server: str, browser: requests.Session, world: World, return_to: str, allowed: bool) -> None:
    code_flow(live_server, browser, *world.sam, world.user.email, scope=SCOPE, structure=world.a["id"])
    page = browser.get(f"{live_server}/account/structure", params={"client_id": world.sam[0], "return_to": return_to},
                       timeout=10)
    fields = forms(page.text)[-1]["fields"]
    assert fields.get("return_to") == return_to
    done = browser.post(f"{live_server}/account/structure", data={**fields, "structure": world.b["id"]},
                        allow_redirects=False)
    assert done.status_code == 302
    assert (done.headers["Location"] == return_to) is allowed
    if not allowed:
        assert done.headers["Location"].endswith("/account/")
