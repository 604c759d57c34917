"""`idp structure create` and `idp member add` (SPEC §10.3), through click's runner on the test app."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import mail_text, new_siret, unique_email


@pytest.fixture
def run(app: Any) -> Any:
    runner = app.test_cli_runner()

    def invoke(*args: str, ok: bool = True) -> Any:
        result = runner.invoke(args=list(args))
        assert (result.exit_code == 0) is ok, result.output
        assert "Traceback" not in result.output
        return result

    return invoke


def test_structure_create_then_member_add_gives_claims(run: Any, create_account: Any, app: Any) -> None:
    siret = new_siret()
    created = json.loads(run("structure", "create", "--siret", siret, "--name", "Organisme CLI", "--json").output)
    assert created["siret"] == siret and created["kind"] == "organisme" and created["siege"] is None
    etab = json.loads(run("structure", "create", "--siret", new_siret(siret[:9]), "--name", "Annexe",
                          "--json").output)
    assert etab["siege"] == siret

    person = create_account()
    added = json.loads(run("member", "add", "--siret", siret, "--email", person.email, "--admin",
                           "--grant", "sam:signataire", "--grant", "repernet:lecteur", "--json").output)
    assert added == {"siret": siret, "email": person.email, "role": "admin",
                     "grants": ["repernet:lecteur", "sam:signataire"]}
    from idp.extensions import db
    from idp.models import User
    from idp.oidc.claims import structure_claims

    with app.app_context():
        claims = structure_claims(db.session, db.session.get(User, person.id), "sam", None)
    assert claims["structure"]["siret"] == siret and claims["structure"]["admin"] is True
    assert claims["roles"] == ["signataire"]


def test_admin_email_of_an_existing_account_makes_the_admin(run: Any, create_account: Any, mailbox: Any) -> None:
    person = create_account()
    created = json.loads(run("structure", "create", "--siret", new_siret(), "--name", "Avec admin",
                             "--admin-email", person.email, "--json").output)
    assert created["admin_now"] is True
    told = mailbox.wait_for(person.email)
    assert "Avec admin" in mail_text(told) and f"/gestion/{created['id']}" in mail_text(told)


def test_admin_email_without_an_account_is_invited(run: Any, mailbox: Any) -> None:
    email = unique_email("futur-admin")
    created = json.loads(run("structure", "create", "--siret", new_siret(), "--name", "Sans compte encore",
                             "--admin-email", email, "--json").output)
    assert created["admin_now"] is False
    invited = mailbox.wait_for(email)
    assert "Sans compte encore" in mail_text(invited) and "/signup" in mail_text(invited)


@pytest.mark.parametrize(("args", "message"), [
    (["structure", "create", "--siret", "12345678900000", "--name", "X"], "SIRET"),
    (["structure", "create", "--siret", "abc", "--name", "X"], "SIRET"),
    (["structure", "create", "--siret", "<new>", "--name", " "], "nom"),
    (["structure", "create", "--siret", "<new>", "--name", "X", "--kind", "banque"], "banque"),
    (["structure", "create", "--siret", "<new>", "--name", "X", "--admin-email", "nope"], "e-mail"),
    (["member", "add", "--siret", "00000000000000", "--email", "a@b.test"], "SIRET"),
    (["member", "add", "--siret", "<existing>", "--email", "personne@nulle-part.test"], "aucun compte"),
    (["member", "add", "--siret", "<existing>", "--email", "<person>", "--grant", "sam:pilote"], "rôle inconnu"),
    (["member", "add", "--siret", "<existing>", "--email", "<person>", "--grant", "sam:acheteur"], "sam:acheteur"),
])
def test_bad_input_is_a_clear_error(run: Any, create_account: Any, args: list[str], message: str) -> None:
    existing = new_siret()
    run("structure", "create", "--siret", existing, "--name", "Existante")
    person = create_account()
    args = [{"<new>": new_siret(), "<existing>": existing, "<person>": person.email}.get(a, a) for a in args]
    result = run(*args, ok=False)
    assert result.exit_code == 2 and message in result.output


def test_member_add_twice_says_already_member(run: Any, create_account: Any) -> None:
    siret, person = new_siret(), create_account()
    run("structure", "create", "--siret", siret, "--name", "Deux fois")
    run("member", "add", "--siret", siret, "--email", person.email)
    assert "déjà membre" in run("member", "add", "--siret", siret, "--email", person.email, ok=False).output


def test_duplicate_siret_is_refused(run: Any) -> None:
    siret = new_siret()
    run("structure", "create", "--siret", siret, "--name", "Une")
    assert "existe déjà" in run("structure", "create", "--siret", siret, "--name", "Deux", ok=False).output


def test_member_add_refuses_an_erased_account(run: Any, create_account: Any, app: Any) -> None:
    from idp.core.accounts import delete_account
    from idp.core.security import SYSTEM
    from idp.extensions import db
    from idp.models import User

    siret, person = new_siret(), create_account()
    run("structure", "create", "--siret", siret, "--name", "Compte effacé")
    with app.app_context():
        erased = delete_account(db.session, db.session.get(User, person.id), None, SYSTEM).email
        db.session.commit()
    assert "aucun compte" in run("member", "add", "--siret", siret, "--email", erased, ok=False).output
