"""A tiny app on the shell, for the shell's own tests: notes that belong to a structure, an edit
form with optimistic locking, an API for other services, a page that calls the IdP's API, a mail."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template_string,
    request,
)
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm.exc import StaleDataError
from wtforms import StringField

from shared import (
    CONFLICT_MESSAGE,
    OwnedByStructure,
    ServiceClient,
    StaleVersion,
    Versioned,
    VersionedForm,
    check_version,
    create_app,
    current_identity,
    form_view,
    make_db,
    owned_or_404,
    require_bearer,
    required,
    requires_role,
    send_mail,
)

db = make_db()
bp = Blueprint("notes", __name__)
READ, EDIT = ("editeur", "lecteur"), ("editeur",)


class Note(OwnedByStructure, Versioned, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(200))


class NoteForm(VersionedForm):
    text = StringField("Texte", required(200))


EDIT_PAGE = """{% extends "shell/base.html" %}{% import "shell/_macros.html" as ui %}
{% block title %}Note{% endblock %}{% block content %}
{% if conflict %}<p class="flash flash-error">{{ conflict }}</p>{% endif %}
<form method="post" action="{{ request.path }}">{{ form.csrf_token }}{{ form.version }}{{ ui.field(form.text) }}{{ ui.button("Enregistrer") }}</form>
{% endblock %}"""


@bp.post("/notes")
@requires_role(*EDIT)
def create() -> Any:
    identity = current_identity()
    assert identity is not None and identity.structure is not None
    note = Note(text=request.form.get("text", "")[:200], structure_id=identity.structure.id,
                structure_siret=identity.structure.siret, structure_name=identity.structure.name)
    db.session.add(note)
    db.session.commit()
    return jsonify(id=note.id), 201


@bp.get("/notes/<note_id>")
@requires_role(*READ)
def show(note_id: str) -> Any:
    note = owned_or_404(db.session, Note, note_id, current_identity(), roles=READ, all_structures=("moderateur",))
    return jsonify(id=note.id, text=note.text, version=note.version)


@form_view
@bp.route("/notes/<note_id>/modifier", methods=["GET", "POST"])
@requires_role(*EDIT)
def edit(note_id: str) -> Any:
    note = owned_or_404(db.session, Note, note_id, current_identity(), roles=EDIT)
    form = NoteForm(obj=note)
    if not form.is_submitted():
        form.version.data = str(note.version)
        return render_template_string(EDIT_PAGE, form=form)
    if not form.validate():
        return render_template_string(EDIT_PAGE, form=form), 422
    try:
        check_version(note, form.version.data)
        note.text = form.text.data
        db.session.commit()
    except (StaleVersion, StaleDataError):
        db.session.rollback()
        return render_template_string(EDIT_PAGE, form=form, conflict=CONFLICT_MESSAGE), 409
    return redirect(f"/notes/{note.id}", 303)


@bp.post("/api/v1/notes")
@require_bearer("catalogue:write")
def api_create() -> Any:
    return jsonify(received=request.get_json(silent=True), caller=g.service_claims["client_id"]), 201


@bp.get("/api/v1/notes")
@require_bearer("catalogue:read")
def api_list() -> Any:
    return jsonify(notes=[])


@bp.get("/structure-at-the-idp/<siret>")
def structure_at_the_idp(siret: str) -> Any:
    client: ServiceClient = current_app.extensions["shell.service"]
    found = client.json("GET", f"/structures/{siret}", missing_ok=True)
    if found is None:
        abort(404)
    return jsonify(name=found["name"], tokens_fetched=client.tokens_fetched)


@bp.post("/mail")
@requires_role(*EDIT)
def mail() -> Any:
    send_mail("hello", request.form["to"], name="Camille")
    db.session.commit()
    return "", 204


def build(settings: dict[str, Any]) -> Flask:
    from types import SimpleNamespace

    defaults = SimpleNamespace(SSO_APP_NAME="catalogue", SSO_APP_TITLE="Notes (tests)", API_AUDIENCE="catalogue",
                               SERVICE_SCOPE="structures:read")
    app = create_app(__name__, prefix="NOTES", defaults=defaults, db=db, blueprints=[bp],  # type: ignore[arg-type]
                     overrides=settings)
    from jinja2 import ChoiceLoader, DictLoader

    app.jinja_loader = ChoiceLoader([DictLoader({
        "mails/hello.txt": "Bonjour {{ name }}\n\nUn message du Catalogue.\n",
        "mails/hello.html": "<p>Bonjour {{ name }}, un message du Catalogue.</p>",
    }), app.jinja_loader])  # type: ignore[list-item]
    return app
