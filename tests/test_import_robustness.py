"""Property tests: whatever the file, the import either works or refuses with one of the
project's own errors; a refused import writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventaire import db, importing
from inventaire.errors import ImportFileUnreadable, ImportRejected
from tests.conftest import get_operator
from tests.factories import journal_count
from tests.test_import import GOOD_ROWS, HEADER

FILE = HEADER + "\n" + "\n".join(GOOD_ROWS) + "\n"
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def counts(engine) -> tuple[int, int, int]:
    with engine.connect() as connection:
        holders, credentials = (
            connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("holder", "credential")
        )
    return holders, credentials, journal_count(engine)


def attempt(engine, clock, path: Path) -> None:
    before = counts(engine)
    try:
        with db.write_session(engine) as session:
            importing.import_file(
                session, path, operator=get_operator(engine, "gestion"), now=clock.now()
            )
    except (ImportFileUnreadable, ImportRejected):
        assert counts(engine) == before


@pytest.fixture
def sqlite_engine(database):
    if database.backend != "sqlite":
        pytest.skip("propriétés vérifiées sur SQLite ; la logique ne dépend pas de la base")
    return database.engine


@PROPERTY
@given(content=st.binary(max_size=2000))
def test_random_bytes(sqlite_engine, clock, tmp_path, content):
    path = tmp_path / "hasard.csv"
    path.write_bytes(content)
    attempt(sqlite_engine, clock, path)


@PROPERTY
@given(
    position=st.integers(min_value=0, max_value=len(FILE.encode()) - 1),
    length=st.integers(min_value=0, max_value=40),
    insert=st.binary(max_size=8),
    encoding=st.sampled_from(["utf-8", "cp1252"]),
)
def test_damaged_good_file(sqlite_engine, clock, tmp_path, position, length, insert, encoding):
    data = FILE.encode(encoding)
    damaged = data[:position] + insert + data[position + length :]
    path = tmp_path / "abime.csv"
    path.write_bytes(damaged)
    attempt(sqlite_engine, clock, path)


cells = st.text(alphabet=st.sampled_from(list("aé;,\"' \n\t0123456789/-@.")), max_size=12)


@PROPERTY
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=13), max_size=6))
def test_random_rows_through_the_cli(sqlite_engine, cli, tmp_path, rows):
    path = tmp_path / "lignes.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(HEADER + "\n")
        for row in rows:
            handle.write(";".join(row) + "\n")
    before = counts(sqlite_engine)
    result = cli("importer", str(path), operator="gestion")  # an exception would fail here
    assert result.code in (0, 1)
    assert "Traceback" not in result.err
    if result.code == 1:
        assert counts(sqlite_engine) == before


def test_xlsx_garbage(sqlite_engine, cli, tmp_path):
    for content in (b"", b"PK\x03\x04", b"PK\x03\x04" + bytes(range(256)) * 4):
        path = tmp_path / "classeur.xlsx"
        path.write_bytes(content)
        result = cli("importer", str(path), operator="gestion")
        assert result.code == 1 and "XLSX" in result.err, result.err
