"""Read-only access through the bare DB-API drivers (sqlite3, psycopg).

The listing is the command people run most and on the largest tables; importing
SQLAlchemy alone takes longer than the listing itself. Queries here are plain SQL with
``:name`` parameters, valid on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from inventaire import migrations
from inventaire.clock import from_db
from inventaire.errors import (
    DatabaseLocked,
    DatabaseUnavailable,
    QueryInterrupted,
    SchemaOutdated,
)

_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


def days_between_sql(dialect: str, later: str, earlier: str) -> str:
    """SQL for the whole number of days from ``earlier`` to ``later``, in the database's
    own date arithmetic. Each is a date column or a ``:name`` parameter holding a date
    (ISO text on SQLite)."""

    def as_date(expression: str) -> str:
        if expression.startswith(":") and dialect != "sqlite":
            return f"CAST({expression} AS date)"
        return expression

    if dialect == "sqlite":
        return f"CAST(julianday({as_date(later)}) - julianday({as_date(earlier)}) AS INTEGER)"
    return f"({as_date(later)} - {as_date(earlier)})"


def instant_param(dialect: str, instant: dt.datetime) -> Any:
    """An aware instant as a parameter compared with a stored one: SQLite stores naive
    UTC text (as SQLAlchemy writes it), PostgreSQL a timestamp with time zone."""
    if dialect == "sqlite":
        return instant.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return instant


def instant_value(value: Any) -> dt.datetime | None:
    """A stored instant read back, as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return from_db(value)


class ReadConnection:
    """A read-only connection that runs ``:name``-parameter SQL on either database."""

    def __init__(self, connection: Any, dialect: str) -> None:
        self._connection = connection
        self.dialect = dialect

    def rows(
        self, sql: str, params: Mapping[str, Any], *, batch: int = 5000
    ) -> Iterator[Sequence[Any]]:
        """The rows of ``sql``, fetched in batches."""
        if self.dialect == "postgresql":
            sql = _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))
        try:
            cursor = self._connection.cursor()
            cursor.execute(sql, params)
            while True:
                chunk = cursor.fetchmany(batch)
                if not chunk:
                    return
                yield from chunk
        except Exception as exc:
            if self.dialect == "postgresql":
                # A failed statement aborts PostgreSQL's transaction: end it, so that the
                # connection serves the next read (after an interrupted count, say).
                with contextlib.suppress(Exception):
                    self._connection.rollback()
            raise _translate(exc) from exc

    def packed_rows(
        self, sql: str, params: Mapping[str, Any], columns: Sequence[str]
    ) -> list[list[Any]]:
        """The rows of ``sql`` (its ``columns``, in its order); dates as ISO text.

        For a thread of an interactive program. sqlite3 takes Python's global lock again
        for every row it steps to, and while the UI thread is busy that waits up to a
        switch interval (5 ms) per row: 700 rows took 2 s instead of 0.1 s. On SQLite the
        database packs the rows into one JSON value, one step; it feeds the aggregate
        from the subquery as a co-routine, in the subquery's order. psycopg receives the
        whole result in one call already: PostgreSQL's rows come as they are.
        """
        if self.dialect != "sqlite":
            return [list(row) for row in self.rows(sql, params)]
        items = ", ".join(f"q.{column}" for column in columns)
        packed = f"SELECT json_group_array(json_array({items})) FROM ({sql}) AS q"
        return json.loads(next(iter(self.rows(packed, params)))[0])  # type: ignore[no-any-return]

    def interrupt(self) -> None:
        """Stop the statement running on this connection, from another thread: it then
        fails with ``QueryInterrupted``. For a count nobody waits for any more (the
        filter changed), which would otherwise keep a core busy for a second."""
        if self.dialect == "sqlite":
            self._connection.interrupt()
        else:
            self._connection.cancel_safe()

    def end(self) -> None:
        """End the read transaction PostgreSQL opened with the first query, so that a
        connection kept between requests holds no snapshot and no lock (SQLite, in
        autocommit for reads, has none to end)."""
        if self.dialect == "postgresql":
            try:
                self._connection.rollback()
            except Exception as exc:
                raise _translate(exc) from exc

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> ReadConnection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def connect(url: str, *, busy_timeout_s: float = 5.0) -> ReadConnection:
    """A read-only connection to the database of ``url`` (as in the settings), checked to
    be at the schema this code knows."""
    if url.startswith("sqlite"):
        connection = ReadConnection(_sqlite(url, busy_timeout_s), "sqlite")
    elif url.startswith(("postgresql", "postgres")):
        connection = ReadConnection(_postgresql(url, busy_timeout_s), "postgresql")
    else:
        raise DatabaseUnavailable(detail=f"type de base non pris en charge : {url.split(':')[0]}")
    try:
        revision = next(iter(connection.rows("SELECT version_num FROM alembic_version", {})))[0]
    except (SchemaOutdated, StopIteration):
        revision = None
    if revision != migrations.HEAD:
        connection.close()
        raise SchemaOutdated(current=revision)
    return connection


def _sqlite(url: str, busy_timeout_s: float) -> sqlite3.Connection:
    path = Path(url.split("///", 1)[1].split("?", 1)[0]) if "///" in url else None
    if path is None or not path.exists():
        raise SchemaOutdated(current=None)
    # quote() is what urllib.request.pathname2url does on POSIX, without importing
    # urllib.request (40 ms, much of the time to open the inventory screen).
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        return sqlite3.connect(uri, uri=True, timeout=busy_timeout_s, check_same_thread=False)
    except sqlite3.Error as exc:
        raise DatabaseUnavailable(detail=str(exc)) from exc


def _postgresql(url: str, busy_timeout_s: float) -> Any:
    import psycopg

    conninfo = "postgresql://" + url.split("://", 1)[1]
    try:
        connection = psycopg.connect(
            conninfo, connect_timeout=10, options=f"-c lock_timeout={int(busy_timeout_s * 1000)}"
        )
    except psycopg.Error as exc:
        raise DatabaseUnavailable(detail=str(exc).strip().splitlines()[0]) from exc
    connection.read_only = True
    return connection


def _translate(exc: Exception) -> Exception:
    text = str(exc).lower()
    if text == "interrupted" or type(exc).__name__ == "QueryCanceled":
        return QueryInterrupted()
    if "no such table" in text or getattr(exc, "sqlstate", None) == "42P01":
        return SchemaOutdated(current=None)
    if "locked" in text or getattr(exc, "sqlstate", None) == "55P03":
        return DatabaseLocked()
    if isinstance(exc, sqlite3.Error) or type(exc).__module__.startswith("psycopg"):
        return DatabaseUnavailable(detail=str(exc).strip().splitlines()[0])
    return exc
