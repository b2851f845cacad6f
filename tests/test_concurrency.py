"""Two writers on one database: the second waits its turn, or gives up with a clear French
message after the busy timeout, and nothing is half-written."""

from __future__ import annotations

import subprocess
import threading

import sqlalchemy as sa

from inventaire import db
from inventaire.models import CredentialState
from tests.conftest import CARTES, get_operator
from tests.factories import add_credential, credential_state, journal_count
from tests.test_import import GOOD_ROWS, write


def hold_write_lock(database):
    """Open a transaction that holds the write lock, as another writer in progress would."""
    connection = database.engine.connect()
    if database.backend == "sqlite":
        connection.exec_driver_sql("COMMIT")  # leave SQLAlchemy's implicit transaction
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("SELECT seq FROM journal_head WHERE id = 1 FOR UPDATE")
    return connection


def test_locked_database_gives_a_clear_message_and_changes_nothing(
    database, cli, clock, monkeypatch, tmp_path
):
    credential_id = add_credential(database.engine, clock.now())
    entries = journal_count(database.engine)
    monkeypatch.setenv("CARTES_BUSY_TIMEOUT_S", "0.3")
    holder = hold_write_lock(database)
    try:
        result = cli(
            "transition", str(credential_id), "suspendue", "--motif", "x", operator="gestion"
        )
        assert result.code == 1
        assert result.err.startswith("Base de données verrouillée par une autre écriture")
        result = cli("importer", str(write(tmp_path / "a.csv", GOOD_ROWS)), operator="gestion")
        assert result.code == 1 and "verrouillée" in result.err
    finally:
        holder.rollback()
        holder.close()
    assert credential_state(database.engine, credential_id) == (CredentialState.ACTIVE, 1)
    assert journal_count(database.engine) == entries
    result = cli("transition", str(credential_id), "suspendue", "--motif", "x", operator="gestion")
    assert result.code == 0, result.err


def test_a_writer_waits_for_the_other_within_the_timeout(database, cli, clock):
    credential_id = add_credential(database.engine, clock.now())
    holder = hold_write_lock(database)
    release = threading.Timer(0.5, holder.rollback)
    release.start()
    try:
        result = cli(
            "transition", str(credential_id), "suspendue", "--motif", "x", operator="gestion"
        )  # busy timeout 2 s: it waits, then goes through
    finally:
        release.join()
        holder.close()
    assert result.code == 0, result.err
    assert credential_state(database.engine, credential_id) == (CredentialState.SUSPENDED, 2)


def test_two_processes_importing_at_once(database, tmp_path):
    """Two real ``cartes importer`` processes on one database: both land, the journal
    chain stays whole."""
    first = write(tmp_path / "a.csv", GOOD_ROWS[:2])
    second = write(tmp_path / "b.csv", GOOD_ROWS[3:])
    env = {
        "CARTES_DATABASE_URL": database.url,
        "CARTES_BUSY_TIMEOUT_S": "30",
        "PATH": "/usr/bin:/bin",
    }
    processes = [
        subprocess.Popen(
            [CARTES, "--operateur", "gestion", "importer", str(path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in (first, second)
    ]
    outcomes = [process.communicate(timeout=120) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], outcomes
    with db.read_session(database.engine) as session:
        from inventaire import journal

        assert journal.verify(session).intact
        assert session.execute(sa.text("SELECT count(*) FROM credential")).scalar_one() == 4


def test_concurrent_transitions_from_threads(database, clock):
    """Eight threads change eight credentials at once through their own sessions."""
    ids = [add_credential(database.engine, clock.now()) for _ in range(8)]
    operator = get_operator(database.engine, "gestion")
    errors: list[BaseException] = []

    def suspend(credential_id: int) -> None:
        from inventaire import lifecycle

        try:
            with db.write_session(database.engine) as session:
                lifecycle.transition(
                    session,
                    credential_id=credential_id,
                    target=CredentialState.SUSPENDED,
                    operator=operator,
                    reason="test",
                    now=clock.now(),
                )
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=suspend, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(credential_state(database.engine, i)[0] is CredentialState.SUSPENDED for i in ids)
    with db.read_session(database.engine) as session:
        from inventaire import journal

        assert journal.verify(session).intact
