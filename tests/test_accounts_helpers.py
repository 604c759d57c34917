"""Helpers shared by the accounts tests (no tests here)."""

from __future__ import annotations

from typing import Any

from conftest import PASSWORD, form_fields


def login(testclient: Any, email: str, password: str = PASSWORD, query: str = "") -> Any:
    """Post the login form (as a browser would, with its CSRF token and hidden fields)."""
    page = testclient.get(f"/login{query}")
    assert page.status_code == 200, page.status_code
    return testclient.post(f"/login{query}", data=form_fields(page.text, email=email, password=password))


def post_form(testclient: Any, path: str, index: int = -1, **values: Any) -> Any:
    """GET a page, fill its form (the last one by default) and POST it to the form's action."""
    from conftest import forms

    page = testclient.get(path)
    assert page.status_code == 200, (path, page.status_code)
    form = forms(page.text)[index]
    return testclient.post(form["action"] or path, data={**form["fields"], **values})


def user_row(app: Any, email: str) -> Any:
    """The account as stored now (detached)."""
    from idp.core.accounts import find_user
    from idp.extensions import db

    with app.app_context():
        user = find_user(db.session, email)
        if user is not None:
            db.session.expunge(user)
        return user
