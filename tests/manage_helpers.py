"""Factories for the "Gérer ma structure" tests (no tests here): structures and memberships built
through the core, as a platform admin would, and a two-structure world to attack across."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from conftest import PASSWORD, forms, new_siret, unique_email
from test_accounts_helpers import login


def siret() -> str:
    return new_siret()


def make_structure(app: Any, name: str = "Organisme", kind: str = "organisme") -> uuid.UUID:
    """A structure with the default entitlements of its kind (through the core)."""
    from idp.core.security import SYSTEM
    from idp.core.structures import StructureData, create_structure
    from idp.extensions import db
    from idp.models import StructureKind

    with app.app_context():
        structure = create_structure(db.session, StructureData(siret=siret(), name=name, kind=StructureKind(kind)),
                                     SYSTEM)
        db.session.commit()
        return structure.id


def platform_admin(app: Any) -> Any:
    from idp.core.accounts import create_user
    from idp.core.security import SYSTEM
    from idp.extensions import db

    with app.app_context():
        user = create_user(db.session, app.extensions["hasher"], SYSTEM, email=unique_email("plateforme"),
                           password=PASSWORD, given_name="Plateforme", family_name="Admin", verified=True,
                           is_admin=True)
        db.session.commit()
        db.session.expunge(user)
        return user


def retire_platform_admin(app: Any, user_id: uuid.UUID) -> None:
    """Take the flag back when a module is done with its world: every platform admin receives the
    moderation notices, and the embedded mode delivers 50 mails per request (later tests would wait)."""
    from sqlalchemy import update

    from idp.extensions import db
    from idp.models import User

    with app.app_context():
        db.session.execute(update(User).where(User.id == user_id).values(is_admin=False))
        db.session.commit()


_actors: dict[int, uuid.UUID] = {}


def add(app: Any, structure_id: uuid.UUID, user_id: uuid.UUID, roles: tuple[str, ...] = (), *,
        admin: bool = False, suspended: bool = False) -> int:
    """Attach a user through core.add_member with a platform admin's authority; the membership id."""
    from sqlalchemy import select

    from idp.core.memberships import add_member, authority, grants_by_key
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import MembershipStatus, Structure, User

    with app.app_context():
        actor = db.session.get(User, _actors[id(app)]) if id(app) in _actors else None
        if actor is None:
            actor = db.session.scalar(select(User).where(User.is_admin.is_(True)).limit(1))
        assert actor is not None
        structure = db.session.get(Structure, structure_id)
        membership = add_member(db.session, authority(db.session, actor, structure), db.session.get(User, user_id),
                                SYSTEM, role_ids=grants_by_key(db.session, roles), admin=admin)
        if suspended:
            membership.status = MembershipStatus.SUSPENDED
        db.session.commit()
        return membership.id


def role_id(app: Any, key: str) -> int:
    from idp.core.catalogue import roles_by_key
    from idp.extensions import db

    with app.app_context():
        return roles_by_key(db.session)[key].id


def ask_to_join(app: Any, user_id: uuid.UUID, structure_id: uuid.UUID, profile: str | None = None,
                message: str = "") -> int:
    """A pending join request through the core; its id."""
    from sqlalchemy import select

    from idp.core.memberships import request_join
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import Profile, Structure, User

    with app.app_context():
        structure = db.session.get(Structure, structure_id)
        found = db.session.scalar(select(Profile).where(Profile.name == profile, Profile.kind == structure.kind)) \
            if profile else None
        join = request_join(db.session, db.session.get(User, user_id), structure, SYSTEM, profile=found,
                            message=message)
        db.session.commit()
        return join.id


def grants(app: Any, membership_id: int) -> set[str] | None:
    """The "app:role" keys of a membership, None when it is gone."""
    from idp.extensions import db
    from idp.models import Membership

    with app.app_context():
        membership = db.session.get(Membership, membership_id)
        return None if membership is None else {g.role.key for g in membership.grants}


def membership(app: Any, membership_id: int) -> Any:
    """The membership row as stored now (detached), or None."""
    from idp.extensions import db
    from idp.models import Membership

    with app.app_context():
        found = db.session.get(Membership, membership_id)
        if found is not None:
            db.session.expunge(found)
        return found


def logged(app: Any, email: str) -> Any:
    """A fresh test client logged in as `email`."""
    client = app.test_client()
    response = login(client, email)
    assert response.status_code == 302, response.text
    return client


def submit(client: Any, path: str, form_id: str | None = None, action: str | None = None, *,
           data: dict[str, Any] | None = None, drop: tuple[str, ...] = ()) -> Any:
    """GET `path`, take one of its forms (by id, by action, or the last), override `data`, POST it."""
    page = client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    return post_page_form(client, page.text, form_id, action, data=data, drop=drop)


def post_page_form(client: Any, html: str, form_id: str | None = None, action: str | None = None, *,
                   data: dict[str, Any] | None = None, drop: tuple[str, ...] = ()) -> Any:
    candidates = forms(html)
    if form_id is not None:
        candidates = [f for f in candidates if f["id"] == form_id]
    if action is not None:
        candidates = [f for f in candidates if f["action"].endswith(action)]
    assert candidates, (form_id, action)
    form = candidates[-1]
    disabled = disabled_names(html, form)
    fields = {k: v for k, v in form["fields"].items() if k not in drop and k not in disabled}
    # The parser keeps one value per name; ticked role boxes are read from the HTML separately.
    fields["roles"] = ticked_roles(html, form)
    fields.update(data or {})
    return client.post(form["action"], data=fields)


def _chunk(html: str, form: dict[str, Any]) -> str:
    start = html.find(f'action="{form["action"]}"')
    return html[start:html.find("</form>", start)]


def disabled_names(html: str, form: dict[str, Any]) -> set[str]:
    """Names of the disabled inputs of a form (a browser does not send them)."""
    import re

    return {re.search(r'name="([^"]+)"', tag).group(1)  # type: ignore[union-attr]
            for tag in re.findall(r"<input[^>]*name=\"[^\"]+\"[^>]*>", _chunk(html, form))
            if " disabled" in tag and 'name="roles"' not in tag}


def ticked_roles(html: str, form: dict[str, Any]) -> list[str]:
    """The `roles` values a browser would send for this form (ticked, enabled boxes + hidden ones)."""
    import re

    chunk = _chunk(html, form)
    values = []
    for tag in re.findall(r"<input[^>]*name=\"roles\"[^>]*>", chunk):
        value = re.search(r'value="([^"]*)"', tag)
        if value is None or " disabled" in tag:
            continue
        if 'type="hidden"' in tag or " checked" in tag:
            values.append(value.group(1))
    return values


@dataclass
class World:
    """Structure A (organisme) and B (région: it holds region-only roles A is not entitled to).

    - `admin_a` admin of A holding sam:redacteur, sam:signataire, repernet:lecteur (not catalogue);
    - `admin_a2` second admin of A holding every role A is entitled to;
    - `member_a` a plain member of A (sam:redacteur, catalogue:editeur);
    - `suspended_admin_a` a suspended admin of A;
    - `admin_b`, `member_b` of B.
    """

    a: uuid.UUID
    b: uuid.UUID
    admin_a: Any
    admin_a2: Any
    member_a: Any
    suspended_admin_a: Any
    admin_b: Any
    member_b: Any
    platform: Any
    m_admin_a: int
    m_admin_a2: int
    m_member_a: int
    m_admin_b: int
    m_member_b: int


A_ALL = ("sam:redacteur", "sam:signataire", "repernet:gestionnaire", "repernet:lecteur", "catalogue:editeur",
         "catalogue:lecteur")


def build_world(app: Any, create_account: Any) -> World:
    platform = platform_admin(app)
    _actors[id(app)] = platform.id
    a = make_structure(app, "Organisme Alpha")
    b = make_structure(app, "Région Bêta", kind="region")
    people = {name: create_account(email=unique_email(name), given_name=name.capitalize(), family_name="Test")
              for name in ("admina", "admina2", "membera", "suspendeda", "adminb", "memberb")}
    m_admin_a = add(app, a, people["admina"].id, ("sam:redacteur", "sam:signataire", "repernet:lecteur"), admin=True)
    m_admin_a2 = add(app, a, people["admina2"].id, A_ALL, admin=True)
    m_member_a = add(app, a, people["membera"].id, ("sam:redacteur", "catalogue:editeur"))
    add(app, a, people["suspendeda"].id, A_ALL, admin=True, suspended=True)
    m_admin_b = add(app, b, people["adminb"].id, ("sam:acheteur", "sam:redacteur"), admin=True)
    m_member_b = add(app, b, people["memberb"].id, ("sam:acheteur",))
    return World(a, b, people["admina"], people["admina2"], people["membera"], people["suspendeda"],
                 people["adminb"], people["memberb"], platform, m_admin_a, m_admin_a2, m_member_a, m_admin_b, m_member_b)



def account_factory(app: Any) -> Any:
    """create_account for module-scoped fixtures: (email, given_name, family_name) -> detached user."""

    def factory(email: str | None = None, given_name: str = "Camille", family_name: str = "Test") -> Any:
        from idp.core.accounts import create_user
        from idp.core.security import SYSTEM
        from idp.extensions import db

        with app.app_context():
            user = create_user(db.session, app.extensions["hasher"], SYSTEM, email=email or unique_email(),
                               password=PASSWORD, given_name=given_name, family_name=family_name, verified=True)
            db.session.commit()
            db.session.expunge(user)
            return user

    return factory
