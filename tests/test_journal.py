"""The journal: append-only in the database, and a hash chain that reveals tampering."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import sqlalchemy as sa

from inventaire import db, journal
from inventaire.models import CredentialState
from tests.conftest import get_operator, run_cartes
from tests.factories import add_credential, journal_count

TRIGGERS = {
    "sqlite": ["DROP TRIGGER journal_entry_no_update", "DROP TRIGGER journal_entry_no_delete"],
    "postgresql": [
        "DROP TRIGGER journal_entry_append_only ON journal_entry",
        "DROP TRIGGER journal_entry_no_truncate ON journal_entry",
    ],
}


@pytest.fixture
def filled(engine, clock):
    """A database with a dozen more journal entries than the seed."""
    from inventaire import lifecycle

    for _ in range(3):
        credential_id = add_credential(engine, clock.now())
        with db.write_session(engine) as session:
            lifecycle.transition(
                session,
                credential_id=credential_id,
                target=CredentialState.SUSPENDED,
                operator=get_operator(engine, "gestion"),
                reason="oubliée",
                now=clock.now(),
            )
    return engine


def tamper(database, *statements: str) -> None:
    """Drop the append-only triggers and run ``statements``: what an intruder with write
    access to the database file or server could do."""
    with database.engine.begin() as connection:
        for statement in [*TRIGGERS[database.backend], *statements]:
            connection.exec_driver_sql(statement)


def verify(engine):
    with db.read_session(engine) as session:
        return journal.verify(session)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_entry SET reason = 'x' WHERE seq = 2",
        "DELETE FROM journal_entry WHERE seq = 2",
    ],
)
def test_database_refuses_update_and_delete(engine, statement):
    with pytest.raises(sa.exc.DBAPIError, match="ajout seul"), engine.begin() as connection:
        connection.exec_driver_sql(statement)
    assert verify(engine).intact


def test_postgresql_refuses_truncate(database):
    if database.backend != "postgresql":
        pytest.skip("TRUNCATE n'existe pas en SQLite")
    with pytest.raises(sa.exc.DBAPIError, match="ajout seul"), database.engine.begin() as c:
        c.exec_driver_sql("TRUNCATE journal_entry")


def test_intact_chain(filled):
    result = verify(filled)
    assert result.intact
    assert result.checked == journal_count(filled)


def test_altered_entry_is_found(database, filled):
    tamper(database, "UPDATE journal_entry SET reason = 'rien à signaler' WHERE seq = 20")
    result = verify(filled)
    assert (result.problem, result.seq) == ("empreinte_incorrecte", 20)


def test_altered_state_is_found(database, filled):
    tamper(
        database,
        "UPDATE journal_entry SET after = replace(after, 'SUSPENDED', 'ACTIVE') "
        "WHERE seq = (SELECT max(seq) FROM journal_entry)",
    )
    last = journal_count(filled)
    assert (verify(filled).problem, verify(filled).seq) == ("empreinte_incorrecte", last)


def test_deleted_entry_is_found(database, filled):
    tamper(database, "DELETE FROM journal_entry WHERE seq = 17")
    result = verify(filled)
    assert (result.problem, result.seq) == ("entree_manquante", 17)


def test_deleted_and_renumbered_entry_is_found(database, filled):
    """Deleting a row and renumbering the rest closes the gap, not the chain."""
    tamper(
        database,
        "DELETE FROM journal_entry WHERE seq = 17",
        "UPDATE journal_entry SET seq = seq + 1000 WHERE seq > 17",
        "UPDATE journal_entry SET seq = seq - 1001 WHERE seq > 1000",
    )
    result = verify(filled)
    assert (result.problem, result.seq) == ("chainage_rompu", 17)


def test_truncated_tail_is_found(database, filled):
    last = journal_count(filled)
    tamper(database, f"DELETE FROM journal_entry WHERE seq >= {last - 1}")
    result = verify(filled)
    assert (result.problem, result.seq) == ("fin_tronquee", last - 1)


def test_reordered_entries_are_found(database, filled):
    tamper(
        database,
        "UPDATE journal_entry SET seq = -1 WHERE seq = 15",
        "UPDATE journal_entry SET seq = 15 WHERE seq = 16",
        "UPDATE journal_entry SET seq = 16 WHERE seq = -1",
    )
    result = verify(filled)
    assert (result.problem, result.seq) == ("chainage_rompu", 15)


def test_cli_verifier(cli, database, filled):
    result = cli("journal", "verifier")
    assert result.code == 0, result.err
    assert "Journal intact" in result.out
    tamper(database, "UPDATE journal_entry SET operator = 'intrus' WHERE seq = 12")
    result = cli("journal", "verifier")
    assert result.code == 1
    assert "entrée n°12" in result.err and "modifié" in result.err


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="shell sqlite3 absent")
def test_tampering_with_the_sqlite_shell_is_found(database, filled):
    """The scenario of the issue: the sqlite3 shell, trigger dropped, a row altered."""
    if database.backend != "sqlite":
        pytest.skip("scénario propre à SQLite")
    path = sa.engine.make_url(database.url).database
    filled.dispose()
    script = (
        "DROP TRIGGER journal_entry_no_update;"
        "UPDATE journal_entry SET reason = 'effacé' WHERE seq = 18;"
    )
    subprocess.run(["sqlite3", path, script], check=True)
    result = run_cartes("--operateur", "admin", "journal", "verifier", database_url=database.url)
    assert result.code == 1
    assert "entrée n°18" in result.err
    assert "Traceback" not in result.err


def test_cli_journal_lists_entries_with_filters(cli, engine, clock, filled):
    result = cli("journal", "--action", "support.transition", "--format", "json")
    assert result.code == 0, result.err
    import json

    entries = json.loads(result.out)
    assert len(entries) == 3
    assert {e["operateur"] for e in entries} == {"gestion"}
    assert all(e["apres"]["state"] == "SUSPENDED" for e in entries)
    one = entries[0]["id"]
    result = cli("journal", "--support", str(one))
    assert result.code == 0
    assert "support.creation" in result.out and "support.transition" in result.out
    result = cli("journal", "--par", "personne")
    assert result.code == 0 and "support." not in result.out
