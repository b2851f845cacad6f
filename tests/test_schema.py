"""The schema: migrations match the models, ``cartes init`` creates and upgrades, and a
database that was not initialised is refused with a clear message."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from inventaire import db, migrations
from inventaire.models import SEARCH_INDEX_TABLES


def test_migrations_match_the_models(engine):
    with engine.connect() as connection:
        # The search index is no table of the models (see ``SEARCH_INDEX_TABLES``); the
        # search tests check that it exists and stays right.
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": _not_search_index}
        )
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def _not_search_index(name, type_, _parent):
    return not (type_ == "table" and name in SEARCH_INDEX_TABLES)


def test_only_the_search_index_is_left_out_of_the_comparison(engine):
    import sqlalchemy as sa

    tables = set(sa.inspect(engine).get_table_names())
    assert "credential_search" in tables
    assert tables & SEARCH_INDEX_TABLES == {
        name for name in tables if name.startswith("credential_search")
    }


def test_head_constant_is_the_scripts_head():
    assert db.head_revision() == migrations.HEAD


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(database):
    if database.backend != "sqlite":
        pytest.skip("réglages propres à SQLite")
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_init_on_an_empty_database(tmp_path, clock, monkeypatch):
    from tests.conftest import Cli, Database

    url = f"sqlite:///{tmp_path / 'sub' / 'cartes.db'}"
    cli = Cli(Database("sqlite", url, db.make_engine(url)), clock, monkeypatch)
    result = cli("liste", operator="marie")
    assert result.code == 1
    assert "lancez « cartes init »" in result.err
    result = cli("init", operator="marie")
    assert result.code == 0, result.err
    assert "Base de données créée" in result.out
    assert "Premier administrateur : marie" in result.out
    assert "Organisations créées : 11" in result.out
    # Running it again upgrades nothing and creates nothing; only an ADMIN may run it.
    result = cli("init", operator="marie")
    assert (result.code, result.out.strip()) == (
        0,
        f"Base de données déjà à jour (schéma {migrations.HEAD}).",
    )
    result = cli("init", operator="paul")
    assert result.code == 1 and "Opérateur inconnu" in result.err
    result = cli("operateur", "liste", operator="marie")
    assert "marie" in result.out and "admin" in result.out
    result = cli("journal", "verifier", operator="marie")
    assert result.code == 0 and "12 entrées" in result.out
