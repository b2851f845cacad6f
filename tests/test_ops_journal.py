"""``cartes.ops.journal`` on both databases: pages of entries with filters, and the
verification of the chain with its progress."""

from __future__ import annotations

import pytest

from cartes.ops import journal as journal_ops
from cartes.settings import Settings
from cartes.workspace import Workspace
from inventaire import db, lifecycle
from inventaire.errors import UnknownOperator
from inventaire.journal import JournalFilter
from inventaire.models import CredentialState
from tests.conftest import NOW, get_operator
from tests.factories import add_credential, journal_count

TRIGGERS = {
    "sqlite": ["DROP TRIGGER journal_entry_no_update", "DROP TRIGGER journal_entry_no_delete"],
    "postgresql": [
        "DROP TRIGGER journal_entry_append_only ON journal_entry",
        "DROP TRIGGER journal_entry_no_truncate ON journal_entry",
    ],
}


@pytest.fixture
def workspace(database, clock):
    workspace = Workspace(
        settings=Settings(database_url=database.url, busy_timeout_s=2),
        clock=clock,
        operator_login="lecture",
    )
    yield workspace
    workspace.close()


@pytest.fixture
def filled(engine):
    for _ in range(3):
        credential_id = add_credential(engine, NOW)
        with db.write_session(engine) as session:
            lifecycle.transition(
                session,
                credential_id=credential_id,
                target=CredentialState.SUSPENDED,
                operator=get_operator(engine, "gestion"),
                reason="oubliée",
                now=NOW,
            )
    return journal_count(engine)


def test_pages_newest_first(workspace, filled):
    seen = []
    before = None
    while True:
        page = journal_ops.entries_page(workspace, JournalFilter(), before_seq=before, limit=7)
        seen += [entry.seq for entry in page.entries]
        if not page.more:
            break
        assert len(page.entries) == 7
        before = page.entries[-1].seq
    assert seen == list(range(filled, 0, -1))


def test_filters(workspace, filled):
    page = journal_ops.entries_page(workspace, JournalFilter(operator="gestion"))
    assert len(page.entries) == 3 and not page.more
    assert {entry.action for entry in page.entries} == {"support.transition"}
    assert {entry.reason for entry in page.entries} == {"oubliée"}
    since, until = journal_ops.day_range(NOW.date(), NOW.date())
    assert (
        len(journal_ops.entries_page(workspace, JournalFilter(since=since, until=until)).entries)
        == filled
    )
    since, _ = journal_ops.day_range(NOW.date().replace(day=27), None)
    assert journal_ops.entries_page(workspace, JournalFilter(since=since)).entries == []


def test_verify_with_progress_then_tampered(database, workspace, filled):
    calls = []
    check = journal_ops.verify(
        workspace, batch=5, progress=lambda n, total: calls.append((n, total))
    )
    assert check.intact and check.verification.checked == filled == check.head_seq
    assert calls == [(n, filled) for n in range(5, filled + 1, 5)]
    assert journal_ops.head(workspace) == (check.head_seq, check.head_hash)
    with database.engine.begin() as connection:
        for statement in [
            *TRIGGERS[database.backend],
            "UPDATE journal_entry SET reason = 'rien' WHERE seq = 9",
        ]:
            connection.exec_driver_sql(statement)
    check = journal_ops.verify(workspace)
    assert not check.intact
    assert (check.verification.problem, check.verification.seq) == ("empreinte_incorrecte", 9)


def test_an_unknown_operator_reads_nothing(database, clock):
    workspace = Workspace(
        settings=Settings(database_url=database.url, busy_timeout_s=2),
        clock=clock,
        operator_login="inconnu",
    )
    with pytest.raises(UnknownOperator):
        journal_ops.entries_page(workspace, JournalFilter())
    with pytest.raises(UnknownOperator):
        journal_ops.verify(workspace)
    workspace.close()
