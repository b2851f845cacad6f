"""``cartes journal verifier --tete SEQ:EMPREINTE``: a head noted outside the database (by
``cartes service`` in its logs) catches a journal rewritten or truncated together with its
chain and its head row, which the chain alone cannot see."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from inventaire import db, journal
from inventaire.models import GENESIS_HASH, JournalEntry
from tests.factories import add_credential
from tests.test_journal import tamper


@pytest.fixture
def filled(engine, clock):
    """A database with a few more journal entries than the seed."""
    for _ in range(3):
        add_credential(engine, clock.now())
    return engine


def head(engine) -> tuple[int, str]:
    with db.read_session(engine) as session:
        return journal.head(session)


def entry_hash(engine, seq: int) -> str:
    with db.read_session(engine) as session:
        return session.execute(
            sa.select(JournalEntry.hash).where(JournalEntry.seq == seq)  # type: ignore[arg-type]
        ).scalar_one()


def rewrite_from(database, seq: int, reason: str) -> None:
    """What an intruder with write access and this source code can do: change entry
    ``seq``, then recompute the chain after it and the head row, so that the chain
    verifies again."""
    with db.read_session(database.engine) as session:
        rows = session.execute(
            sa.select(JournalEntry).where(JournalEntry.seq >= seq).order_by(JournalEntry.seq)  # type: ignore[arg-type]
        ).scalars()
        rows = list(rows)
        previous = rows[0].prev_hash
        statements = []
        for row in rows:
            new_reason = reason if row.seq == seq else row.reason
            digest = journal.chain_hash(
                previous,
                journal.canonical_bytes(
                    seq=row.seq,
                    recorded_at=row.recorded_at,
                    operator=row.operator,
                    action=row.action,
                    entity_type=row.entity_type,
                    entity_id=row.entity_id,
                    reason=new_reason,
                    before=row.before,
                    after=row.after,
                ),
            )
            quoted = "NULL" if new_reason is None else "'" + new_reason.replace("'", "''") + "'"
            statements.append(
                f"UPDATE journal_entry SET reason = {quoted}, prev_hash = '{previous}', "
                f"hash = '{digest}' WHERE seq = {row.seq}"
            )
            previous = digest
    statements.append(f"UPDATE journal_head SET hash = '{previous}' WHERE id = 1")
    tamper(database, *statements)


def test_intact_journal_with_its_head(cli, filled):
    seq, digest = head(filled)
    result = cli("journal", "verifier", "--tete", f"{seq}:{digest}")
    assert result.code == 0, result.err
    assert "Journal intact" in result.out
    assert f"l'entrée n°{seq} a toujours son empreinte" in result.out
    # An older head, noted by an earlier run, still holds too (upper case accepted).
    result = cli(
        "journal", "verifier", "--tete", f"{seq - 2}:{entry_hash(filled, seq - 2).upper()}"
    )
    assert result.code == 0, result.err


def test_rewritten_journal_passes_the_chain_but_not_the_head(cli, database, filled):
    last, _ = head(filled)
    noted = last - 2
    old_hash = entry_hash(filled, noted)
    rewrite_from(database, noted, "motif réécrit après coup")

    # The chain alone is fooled: that is the attack.
    plain = cli("journal", "verifier")
    assert plain.code == 0, plain.err
    assert "Journal intact" in plain.out

    result = cli("journal", "verifier", "--tete", f"{noted}:{old_hash}")
    assert result.code == 1
    assert result.out == ""
    assert f"l'entrée n°{noted} n'a plus l'empreinte notée ({old_hash[:16]}…)" in result.err
    assert "réécrite" in result.err
    # A head noted before the rewritten entry still holds: the damage starts later.
    earlier = cli("journal", "verifier", "--tete", f"{noted - 1}:{entry_hash(filled, noted - 1)}")
    assert earlier.code == 0, earlier.err


def test_truncated_journal_passes_the_chain_but_not_the_head(cli, database, filled):
    last, last_hash = head(filled)
    keep = last - 3
    tamper(
        database,
        f"DELETE FROM journal_entry WHERE seq > {keep}",
        f"UPDATE journal_head SET seq = {keep}, hash = '{entry_hash(filled, keep)}' WHERE id = 1",
    )
    assert cli("journal", "verifier").code == 0

    result = cli("journal", "verifier", "--tete", f"{last}:{last_hash}")
    assert result.code == 1
    assert f"l'entrée n°{last} notée comme tête n'existe plus" in result.err


def test_broken_chain_and_head_are_both_reported(cli, database, filled):
    last, last_hash = head(filled)
    tamper(database, f"UPDATE journal_entry SET reason = 'x' WHERE seq = {last}")
    result = cli("journal", "verifier", "--tete", f"{last}:{last_hash}")
    assert result.code == 1
    assert f"entrée n°{last} : contenu modifié" in result.err
    assert result.err.count("Journal altéré") == 1  # the hash column itself was not changed


@pytest.mark.parametrize(
    "head_text",
    ["12", "12:", ":" + "a" * 64, "douze:" + "a" * 64, "12:" + "a" * 63, "12:" + "g" * 64],
)
def test_malformed_head_is_a_command_line_error(cli, head_text):
    result = cli("journal", "verifier", "--tete", head_text)
    assert result.code == 2
    assert f"Tête invalide : « {head_text} »" in result.err
    assert result.out == ""


def test_check_anchor(engine):
    with db.read_session(engine) as session:
        seq, digest = journal.head(session)
        assert journal.check_anchor(session, seq, digest) is None
        assert journal.check_anchor(session, seq, "0" * 64) == "ancre_modifiee"
        assert journal.check_anchor(session, seq + 1, digest) == "ancre_absente"
        # The head of an empty journal proves nothing and is no error.
        assert journal.check_anchor(session, 0, GENESIS_HASH) is None
