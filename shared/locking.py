"""Optimistic locking for forms (SPEC §6, seed 002 §3: no more "last save wins").

A model carries an integer version (`Versioned`); the edit form sends back the version it was
shown (`version` hidden field); saving checks it first. A stale save answers 409 with a clear
message and the typed values, instead of silently overwriting a colleague's changes.

Two ways to stop two saves racing past the check, on the same column and the same error:
`Versioned` (SQLAlchemy's `version_id_col`: every UPDATE of the row checks and bumps it), for rows
that only edit forms write; `claim_version`, a conditional UPDATE of the version alone at the start
of the save, for rows that other requests write too (the IdP's accounts: each login writes its row,
and `version_id_col` would turn two concurrent logins into a conflict).

The mechanism knows nothing of Flask (the IdP's domain core uses it); what a person reads of a stale
save, `shared.forms.CONFLICT_MESSAGE`, is chosen where the refusal is answered.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, inspect, update
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column
from sqlalchemy.orm.attributes import set_committed_value

from shared.bounds import bounded_int


class StaleVersion(Exception):  # noqa: N818 - the domain word
    """The form was filled from an older version of the object.

    :param current: the version now stored.
    """

    def __init__(self, current: int) -> None:
        super().__init__(f"stale version (version {current} is stored)")
        self.current = current


class Versioned:
    """Mixin: a `version` column SQLAlchemy bumps on each UPDATE and checks in its WHERE clause,
    so two saves racing past `check_version` still cannot both win."""

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


def check_version(obj: Versioned, submitted: Any) -> None:
    """Refuse a save prepared from another version than the stored one.

    :param submitted: the form's hidden `version` value (a string or an int).
    :raises StaleVersion: the value is missing, malformed or not the stored version.
    """
    version = bounded_int(submitted, 0, 2**31 - 1) if submitted is not None else None
    if version is None or version != obj.version:
        raise StaleVersion(obj.version)


def claim_version(session: Session, obj: Any, submitted: Any) -> None:
    """Check the submitted version (`check_version`), then take the next one at once: one UPDATE of
    the version alone, guarded by the submitted value, which holds the row until the commit
    (PostgreSQL), so of two concurrent saves the second one finds the version taken.

    :param obj: a mapped object with an integer `version` column.
    :param submitted: the form's hidden `version` value (a string or an int).
    :raises StaleVersion: the value is missing, malformed, not the stored version, or was just taken.
    """
    check_version(obj, submitted)
    mapper = inspect(obj).mapper
    table = mapper.local_table
    key = zip(mapper.primary_key, mapper.primary_key_from_instance(obj), strict=True)
    claimed = session.execute(
        update(table).where(*(column == value for column, value in key), table.c.version == obj.version)
        .values(version=table.c.version + 1)
    ).rowcount
    if claimed != 1:
        raise StaleVersion(obj.version)
    set_committed_value(obj, "version", obj.version + 1)
