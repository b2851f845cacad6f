"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL, a stopped clock,
operators of each role, and a way to run the CLI in-process.

The PostgreSQL server is the throwaway one ``scripts/with-postgres`` starts (``make test``);
its URL comes in ``CARTES_TEST_POSTGRES_URL``. Without it the PostgreSQL half of the suite
is skipped, unless ``CARTES_TEST_REQUIRE_POSTGRES=1`` says it must run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import itertools
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from inventaire import db, operators, organisations
from inventaire.clock import FixedClock
from inventaire.models import Operator, OperatorRole

NOW = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.UTC)

# Operators present in every test database, by login.
OPERATORS = {
    "admin": [OperatorRole.ADMIN],
    "gestion": [OperatorRole.MANAGER],
    "remise": [OperatorRole.MANAGER, OperatorRole.ISSUER],
    "lecture": [OperatorRole.READER],
}


def _seed(engine: Engine) -> None:
    db.migrate(engine)
    with db.write_session(engine) as session:
        for login, roles in OPERATORS.items():
            operators.add(session, login=login, roles=roles, by="admin", now=NOW)
        organisations.seed_district(session, organisations.ANGERS_DISTRICT, by="admin", now=NOW)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "cartes.db"
    engine = db.make_engine(f"sqlite:///{path}")
    _seed(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    # As ``cartes init`` creates it (shutil.copy keeps the mode): else every command on a
    # copy would warn that other users can read it.
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def postgres_server() -> str | None:
    url = os.environ.get("CARTES_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CARTES_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail("CARTES_TEST_POSTGRES_URL manquant alors que PostgreSQL est requis")
        return None
    return url


def _admin_engine(server_url: str) -> Engine:
    return sa.create_engine(server_url, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str | None) -> str | None:
    if postgres_server is None:
        return None
    admin = _admin_engine(postgres_server)
    with admin.connect() as connection:
        connection.exec_driver_sql("DROP DATABASE IF EXISTS cartes_template")
        connection.exec_driver_sql("CREATE DATABASE cartes_template")
    template_url = sa.engine.make_url(postgres_server).set(database="cartes_template")
    engine = db.make_engine(template_url.render_as_string(hide_password=False))
    _seed(engine)
    engine.dispose()
    admin.dispose()
    return "cartes_template"


_counter = itertools.count()


@dataclass
class Database:
    """A fresh database for one test."""

    backend: str
    url: str
    engine: Engine


@contextlib.contextmanager
def fresh_database(
    kind: str, directory: Path, request: pytest.FixtureRequest
) -> Iterator[Database]:
    """A database of ``kind`` ("sqlite" or "postgresql") at the current schema, with the
    organisations and the administrator, dropped afterwards; SQLite's file in
    ``directory``. Skips when no PostgreSQL server is given."""
    if kind == "sqlite":
        path = directory / "cartes.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
        engine = db.make_engine(url, busy_timeout_s=2)
        yield Database("sqlite", url, engine)
        engine.dispose()
        return
    postgres_server = request.getfixturevalue("postgres_server")
    if postgres_server is None:
        pytest.skip("pas de serveur PostgreSQL de test (CARTES_TEST_POSTGRES_URL)")
    template = request.getfixturevalue("postgres_template")
    name = f"cartes_test_{os.getpid()}_{next(_counter)}"
    admin = _admin_engine(postgres_server)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name} TEMPLATE {template}")
    url = sa.engine.make_url(postgres_server).set(database=name)
    url_text = url.render_as_string(hide_password=False)
    engine = db.make_engine(url_text, busy_timeout_s=2)
    yield Database("postgresql", url_text, engine)
    engine.dispose()
    with admin.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(request.param, tmp_path, request) as database:
        yield database


@pytest.fixture
def engine(database: Database) -> Engine:
    return database.engine


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


def get_operator(engine: Engine, login: str) -> Operator:
    with db.read_session(engine) as session:
        operator = operators.find(session, login)
        assert operator is not None
        session.expunge(operator)
        return operator


@dataclass
class Result:
    code: int
    out: str
    err: str


class Cli:
    """Runs ``cartes`` in-process against the test database, with the test clock."""

    def __init__(self, database: Database, clock: FixedClock, monkeypatch: pytest.MonkeyPatch):
        self.database = database
        self.clock = clock
        monkeypatch.setenv("CARTES_DATABASE_URL", database.url)
        monkeypatch.setenv("CARTES_BUSY_TIMEOUT_S", "2")
        monkeypatch.delenv("CARTES_CONFIG", raising=False)

    def __call__(self, *argv: str, operator: str | None = "admin") -> Result:
        from cartes.cli.main import main

        out, err = io.StringIO(), io.StringIO()
        args = (["--operateur", operator] if operator else []) + list(argv)
        code = main(args, clock=self.clock, out=out, err=err)
        return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli(database: Database, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(database, clock, monkeypatch)


CARTES = str(Path(__import__("sys").executable).with_name("cartes"))


def run_cartes(
    *argv: str, database_url: str, env: dict[str, str] | None = None, input: str | None = None
) -> Result:
    """Run the installed ``cartes`` command in its own process (real exit codes, real
    streams), against ``database_url``."""
    import subprocess

    environment = {key: value for key, value in os.environ.items() if not key.startswith("CARTES_")}
    environment.update({"CARTES_DATABASE_URL": database_url, "CARTES_BUSY_TIMEOUT_S": "2"})
    environment.update(env or {})
    completed = subprocess.run(
        [CARTES, *argv],
        env=environment,
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


from tests.pki_support import pki_server, test_pki  # noqa: E402, F401  (session fixtures)
from tests.smtp_support import (  # noqa: E402, F401  (SMTP servers on loopback)
    smtp_certificates,
    smtp_implicit_tls_server,
    smtp_server,
    smtp_tls_server,
)
from tests.tui_support import (  # noqa: E402, F401  (the terminal UI on a test database)
    tui_clock,
    tui_database_url,
    tui_workspace,
)
