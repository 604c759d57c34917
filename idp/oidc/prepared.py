"""A hot read statement run straight on psycopg, prepared on the server (issue 18, userinfo).

SQLAlchemy compiles the statement once for the dialect and lends its types' processors, so the
parameters and the row are exactly what `Connection.execute()` would send and return; what is
skipped is Core's per-execute machinery (the compiled-cache lookup, the execution context, the
result object and its column description), which was a third of userinfo's CPU. The engine's
`before_cursor_execute`/`after_cursor_execute` listeners still see the statement (the statement-
count tests count it). Any other dialect runs it through SQLAlchemy as usual.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.exc import DBAPIError


class PreparedSelect:
    """`first(conn, params)`: the statement's first row as a mapping of its column labels, or None."""

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, dict[str, Any], dict[str, Any], list[tuple[str, Any]]]] = {}

    def first(self, conn: Connection, params: dict[str, Any]) -> Mapping[str, Any] | None:
        dialect = conn.dialect
        if dialect.driver != "psycopg":
            row = conn.execute(self.statement, params).first()
            return None if row is None else row._mapping
        sql, constants, binders, columns = self._compiled.get(dialect.name) or self._compile(conn)
        values = dict(constants)
        for key, value in params.items():
            process = binders.get(key)
            values[key] = process(value) if process is not None and value is not None else value
        driver = conn.connection.driver_connection
        dispatch = conn.dispatch
        if dispatch.before_cursor_execute:
            dispatch.before_cursor_execute(conn, None, sql, values, None, False)
        try:
            cursor = driver.execute(sql, values, prepare=True)  # type: ignore[union-attr]
            found = cursor.fetchone()
        except dialect.loaded_dbapi.Error as exc:  # shown as SQLAlchemy shows it (the caller answers 503)
            lost = dialect.is_disconnect(exc, driver, None)
            if lost:
                conn.invalidate(exc)
            raise DBAPIError.instance(sql, values, exc, dialect.loaded_dbapi.Error, connection_invalidated=lost,
                                      dialect=dialect) from exc
        if dispatch.after_cursor_execute:
            dispatch.after_cursor_execute(conn, None, sql, values, None, False)
        if found is None:
            return None
        return {label: (process(value) if process is not None else value)
                for (label, process), value in zip(columns, found, strict=True)}

    def _compile(self, conn: Connection) -> tuple[str, dict[str, Any], dict[str, Any], list[tuple[str, Any]]]:
        dialect = conn.dialect
        compiled = self.statement.compile(dialect=dialect)
        binders = {name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                   for name, bind in compiled.binds.items()}
        constants = {name: (binders[name](bind.value) if binders[name] is not None else bind.value)
                     for name, bind in compiled.binds.items() if not bind.required and bind.value is not None}
        columns = [(column.key, column.type.dialect_impl(dialect).result_processor(dialect, None))
                   for column in self.statement.selected_columns]
        entry = (str(compiled), constants, binders, columns)
        self._compiled[dialect.name] = entry
        return entry
