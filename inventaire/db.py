"""Engines, sessions and schema migrations.

SQLite (the default) runs in WAL mode with a busy timeout; every write transaction starts
with ``BEGIN IMMEDIATE`` so that two writers queue instead of failing half-way. PostgreSQL
write transactions take the journal lock first, for the same effect: writes are few in a
court IT service and a single queue keeps the journal chain simple and deadlock-free.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from inventaire import migrations
from inventaire.errors import (
    Conflict,
    DatabaseLocked,
    DatabaseUnavailable,
    InventaireError,
    SchemaOutdated,
    StaleVersion,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str, *, busy_timeout_s: float = 5.0) -> Engine:
    """An engine for ``url`` configured for cartes (pragmas, timeouts, transactions)."""
    if url.startswith(("postgresql://", "postgres://")):
        # psycopg 3 is the driver cartes installs; plain URLs would ask for psycopg2.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": busy_timeout_s})
        _configure_sqlite(engine)
        return engine
    timeout_ms = int(busy_timeout_s * 1000)
    return sa.create_engine(
        url,
        connect_args={"options": f"-c lock_timeout={timeout_ms}", "connect_timeout": 10},
    )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions would defeat
        # BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # 64 MB of page cache (the default is 2 MB): imports touch several large indexes.
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get("cartes_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextlib.contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reading; database failures come out as ``InventaireError``."""
    with translate_errors(), Session(engine) as session:
        yield session


@contextlib.contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A unit of work: one transaction, committed at the end, rolled back on any error.

    The journal lock is taken first, so concurrent writers wait for each other (up to the
    busy timeout) instead of interleaving their journal entries.
    """
    with translate_errors():
        write_engine = engine.execution_options(cartes_write=True)
        with Session(write_engine, expire_on_commit=False) as session:
            try:
                _take_write_lock(session)
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise


def _take_write_lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT seq FROM journal_head WHERE id = 1 FOR UPDATE"))
    else:
        session.connection()  # BEGIN IMMEDIATE now, not at the first write


@contextlib.contextmanager
def dry_run_session(engine: Engine) -> Iterator[Session]:
    """A unit of work that is always rolled back: to see what a change would do (a
    preview) with the very code that does it, and keep nothing."""
    with translate_errors():
        write_engine = engine.execution_options(cartes_write=True)
        with Session(write_engine, expire_on_commit=False) as session:
            try:
                _take_write_lock(session)
                yield session
            finally:
                session.rollback()


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn driver errors a user can meet into the domain's errors."""
    try:
        yield
    except InventaireError:
        raise
    except StaleDataError as exc:
        raise StaleVersion() from exc
    except OperationalError as exc:
        raise _operational(exc) from exc
    except IntegrityError as exc:
        raise Conflict("contrainte_violee") from exc
    except DBAPIError as exc:
        if _pg_code(exc) == "55P03":  # lock_not_available
            raise DatabaseLocked() from exc
        raise


def _pg_code(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _operational(exc: OperationalError) -> InventaireError | OperationalError:
    text = str(exc.orig).lower()
    if "locked" in text or "busy" in text or _pg_code(exc) == "55P03":
        return DatabaseLocked()
    if "no such table" in text or _pg_code(exc) == "42P01":
        return SchemaOutdated()
    if "unable to open" in text or "connection" in text or "could not" in text:
        return DatabaseUnavailable(detail=str(exc.orig).strip().splitlines()[0])
    return exc


def bulk_insert(session: Session, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` with one ``executemany`` handed straight to the driver.

    The ORM and Core insert paths process every value of every row in Python; for the
    hundreds of thousands of rows of an import that is most of the time spent. Values must
    be plain: str, int, bool, None, date, aware datetime.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    columns = list(rows[0])
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )
    columns_values = [[row[c] for row in rows] for c in columns]
    if dialect.name == "sqlite":
        columns_values = [_sqlite_column(values) for values in columns_values]
    values = list(zip(*columns_values, strict=True))
    connection.exec_driver_sql(sql, values)  # type: ignore[arg-type]


def _sqlite_column(values: list[Any]) -> list[Any]:
    # What SQLAlchemy's SQLite types store: naive UTC text for datetimes, ISO dates. One
    # column at a time, and each distinct datetime converted once (an import stamps
    # every row with the same instant).
    sample = next((value for value in values if value is not None), None)
    if isinstance(sample, dt.datetime):
        cache: dict[dt.datetime, str] = {}

        def convert(value: dt.datetime) -> str:
            text = cache.get(value)
            if text is None:
                text = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
                cache[value] = text
            return text

        return [None if value is None else convert(value) for value in values]
    if isinstance(sample, dt.date):
        return [None if value is None else value.isoformat() for value in values]
    return values


def _alembic_config(connection: sa.Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def sqlite_path(engine: Engine) -> Path | None:
    """The file of a SQLite database (None for PostgreSQL or an in-memory database)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` with the Alembic migrations (and the
    folder of a SQLite file)."""
    from alembic import command

    path = sqlite_path(engine)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailable(detail=f"{path.parent} : {exc.strerror}") from exc

    with translate_errors(), engine.begin() as connection:
        command.upgrade(_alembic_config(connection), revision)


def schema_revision(engine: Engine) -> str | None:
    """The schema revision of the database, or None if it was never initialised."""
    path = sqlite_path(engine)
    if path is not None and not path.exists():
        return None  # and connecting would create an empty file
    with translate_errors(), engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str:
    """The newest revision the migration scripts define (loads Alembic)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def require_current_schema(engine: Engine) -> None:
    """Refuse to work on a database that ``cartes init`` has not brought up to date."""
    path = sqlite_path(engine)
    if path is not None and not path.exists():
        raise SchemaOutdated(current=None)  # and do not create an empty file by connecting
    current = schema_revision(engine)
    if current != migrations.HEAD:
        raise SchemaOutdated(current=current)
