"""The record of the backing service's runs (``service_run``): when each cycle ran, what
it did, and the journal head it saw, so that a rewritten journal can be caught later."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from inventaire import journal
from inventaire.clock import from_db
from inventaire.models import ServiceRun

_runs = ServiceRun.__table__  # type: ignore[attr-defined]


def start(session: Session, *, kind: str, started_at: dt.datetime) -> int:
    """Record that a run of ``kind`` started (not successful until ``finish`` says so);
    return its id."""
    result = session.execute(
        _runs.insert().values(kind=kind, started_at=started_at, ok=False).returning(_runs.c.id)
    )
    return int(result.scalar_one())


def finish(
    session: Session,
    *,
    run_id: int,
    finished_at: dt.datetime,
    ok: bool,
    summary: Mapping[str, Any],
) -> tuple[int, str]:
    """Record the end of a run, what it did and the journal head; return that head
    (sequence, hash). Within a write transaction, no entry can be added between reading
    the head and recording it."""
    seq, digest = journal.head(session)
    session.execute(
        _runs.update()
        .where(_runs.c.id == run_id)
        .values(
            finished_at=finished_at,
            ok=ok,
            summary=json.dumps(summary, ensure_ascii=False),
            journal_seq=seq,
            journal_hash=digest,
        )
    )
    return seq, digest


def last_successful_start(session: Session, *, kinds: Iterable[str]) -> dt.datetime | None:
    """When the last successful run of one of ``kinds`` started (aware UTC), or None."""
    started = session.execute(
        sa.select(sa.func.max(_runs.c.started_at)).where(
            _runs.c.ok.is_(True), _runs.c.kind.in_(list(kinds))
        )
    ).scalar_one_or_none()
    return None if started is None else from_db(started)
