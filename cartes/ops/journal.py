"""The journal: its entries a page at a time, and the verification of its chain (the
« Journal » screen)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from cartes.workspace import Workspace
from inventaire import db, journal, operators
from inventaire.clock import PARIS
from inventaire.enums import OperatorRole
from inventaire.journal import JournalFilter

__all__ = ["ChainCheck", "EntryLine", "JournalFilter", "JournalPage"]


@dataclass(frozen=True)
class EntryLine:
    """One journal entry as listed."""

    seq: int
    recorded_at: dt.datetime  # UTC
    operator: str
    action: str
    entity_type: str
    entity_id: int | None
    reason: str | None
    before: str | None  # canonical JSON
    after: str | None
    hash: str


@dataclass(frozen=True)
class JournalPage:
    """A page of entries, the newest first; ``more`` when older ones match too (the next
    page starts below ``entries[-1].seq``)."""

    entries: list[EntryLine]
    more: bool


def day_range(
    since: dt.date | None, until: dt.date | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Instants bounding the Paris days from ``since`` to ``until`` included."""

    def midnight(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), tzinfo=PARIS)

    return (
        midnight(since) if since else None,
        midnight(until + dt.timedelta(days=1)) if until else None,
    )


def entries_page(
    workspace: Workspace,
    filters: JournalFilter,
    *,
    before_seq: int | None = None,
    limit: int = 100,
) -> JournalPage:
    """Up to ``limit`` entries matching ``filters``, the newest first, numbered below
    ``before_seq`` if given (READER). Reads one page, never the whole journal."""
    with db.read_session(workspace.engine) as session:
        operators.require(session, workspace.operator_login, OperatorRole.READER)
        rows = journal.entries(session, filters, limit=limit + 1, before_seq=before_seq)
    lines = [
        EntryLine(
            seq=row.seq,
            recorded_at=row.recorded_at,
            operator=row.operator,
            action=row.action,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
            reason=row.reason,
            before=row.before,
            after=row.after,
            hash=row.hash,
        )
        for row in rows
    ]
    return JournalPage(entries=lines[:limit], more=len(lines) > limit)


@dataclass(frozen=True)
class ChainCheck:
    """The verification of the chain, and the head it ended on."""

    verification: journal.Verification
    head_seq: int
    head_hash: str

    @property
    def intact(self) -> bool:
        return self.verification.intact


def head(workspace: Workspace) -> tuple[int, str]:
    """The number and hash of the last entry, as the journal head records them (READER)."""
    with db.read_session(workspace.engine) as session:
        operators.require(session, workspace.operator_login, OperatorRole.READER)
        return journal.head(session)


def verify(
    workspace: Workspace,
    *,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 10_000,
) -> ChainCheck:
    """Recompute the whole chain (READER); ``progress(checked, total)`` after each batch."""
    with db.read_session(workspace.engine) as session:
        operators.require(session, workspace.operator_login, OperatorRole.READER)
        head_seq, head_hash = journal.head(session)

        def report(checked: int) -> None:
            if progress is not None:
                progress(checked, head_seq)

        result = journal.verify(session, batch=batch, progress=report)
    return ChainCheck(verification=result, head_seq=head_seq, head_hash=head_hash)
