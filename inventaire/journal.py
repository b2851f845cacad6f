"""The tamper-evident journal: append-only, hash-chained records of every change.

Each entry's hash is SHA-256 over the previous entry's hash and a canonical JSON encoding of
the entry (``canonical_bytes``). Entries are numbered from 1 without gaps, and the
``journal_head`` row remembers the last one, so that an altered, removed, reordered or
truncated entry is found by ``verify``. Entries name holders and credentials by id only.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from inventaire import db
from inventaire.models import GENESIS_HASH, JournalEntry, JournalHead

_entries = JournalEntry.__table__  # type: ignore[attr-defined]
_head = JournalHead.__table__  # type: ignore[attr-defined]


# Built once: ``json.dumps`` with options builds a new encoder at every call.
_STATE_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
)


def encode_state(state: Mapping[str, Any] | None) -> str | None:
    """The canonical JSON text of a before/after state (sorted keys, no spaces)."""
    if state is None:
        return None
    return _STATE_ENCODER.encode(state)


def canonical_bytes(
    *,
    seq: int,
    recorded_at: dt.datetime,
    operator: str,
    action: str,
    entity_type: str,
    entity_id: int | None,
    reason: str | None,
    before: str | None,
    after: str | None,
) -> bytes:
    """The bytes an entry's hash covers (besides the previous hash).

    A JSON array of the fields in this fixed order: sequence number, instant (UTC, ISO 8601
    with microseconds), operator, action, entity type, entity id, reason, then the before
    and after states embedded as the canonical JSON values they already are.
    """
    instant = _instant_text(recorded_at)
    return "".join(
        (
            "[",
            str(seq),
            ',"',
            instant,
            '",',
            _json_text(operator),
            ",",
            _json_text(action),
            ",",
            _json_text(entity_type),
            ",",
            "null" if entity_id is None else str(entity_id),
            ",",
            "null" if reason is None else _json_text(reason),
            ",",
            before or "null",
            ",",
            after or "null",
            "]",
        )
    ).encode()


@functools.lru_cache(maxsize=64)
def _instant_text(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).isoformat(timespec="microseconds")


@functools.lru_cache(maxsize=1024)
def _json_text(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    """SHA-256 of the previous hash and the canonical encoding, hex."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical).hexdigest()


class JournalWriter:
    """Appends entries for one operator within the caller's transaction.

    Entries are buffered and written in bulk by ``flush`` (an import records hundreds of
    thousands). The caller's transaction must hold the journal lock (``write_session``).
    """

    def __init__(self, session: Session, *, operator: str, now: dt.datetime) -> None:
        self.session = session
        self.operator = operator
        self.now = now
        self._seq, self._hash = head(session)
        self._pending: list[dict[str, Any]] = []

    def record(
        self,
        action: str,
        entity_type: str,
        entity_id: int | None = None,
        *,
        reason: str | None = None,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
    ) -> int:
        """Add an entry; return its sequence number."""
        self._seq += 1
        before_text, after_text = encode_state(before), encode_state(after)
        canonical = canonical_bytes(
            seq=self._seq,
            recorded_at=self.now,
            operator=self.operator,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            reason=reason,
            before=before_text,
            after=after_text,
        )
        digest = chain_hash(self._hash, canonical)
        self._pending.append(
            {
                "seq": self._seq,
                "recorded_at": self.now,
                "operator": self.operator,
                "action": action,
                "entity_type": entity_type,
                "entity_id": entity_id,
                "reason": reason,
                "before": before_text,
                "after": after_text,
                "prev_hash": self._hash,
                "hash": digest,
            }
        )
        self._hash = digest
        return self._seq

    def flush(self) -> None:
        """Write the buffered entries and move the journal head."""
        if not self._pending:
            return
        db.bulk_insert(self.session, _entries, self._pending)
        self.session.execute(
            _head.update().where(_head.c.id == 1).values(seq=self._seq, hash=self._hash)
        )
        self._pending.clear()


def record(
    session: Session,
    *,
    operator: str,
    now: dt.datetime,
    action: str,
    entity_type: str,
    entity_id: int | None = None,
    reason: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> int:
    """Append one entry in the caller's transaction; return its sequence number."""
    writer = JournalWriter(session, operator=operator, now=now)
    seq = writer.record(action, entity_type, entity_id, reason=reason, before=before, after=after)
    writer.flush()
    return seq


@dataclass(frozen=True)
class Verification:
    """Outcome of ``verify``: ``problem`` is None when the chain is intact."""

    checked: int
    problem: str | None = None
    seq: int | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify(
    session: Session, *, batch: int = 10_000, progress: Callable[[int], None] | None = None
) -> Verification:
    """Recompute the chain and report the first bad entry; ``progress(checked)`` is called
    after each ``batch`` of entries (a long verification can show how far it is).

    Problems: ``entree_manquante`` (a gap in the numbering: a row was deleted),
    ``chainage_rompu`` (the previous hash does not match: a row was removed or moved),
    ``empreinte_incorrecte`` (the content no longer matches its hash: a row was altered),
    ``fin_tronquee`` (the last entries are gone: the head names a later entry).
    """
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for row in _stream(session, batch):
        if row.seq != expected_seq:
            return Verification(checked, "entree_manquante", expected_seq)
        if row.prev_hash != expected_prev:
            return Verification(checked, "chainage_rompu", row.seq)
        recomputed = chain_hash(
            row.prev_hash,
            canonical_bytes(
                seq=row.seq,
                recorded_at=row.recorded_at,
                operator=row.operator,
                action=row.action,
                entity_type=row.entity_type,
                entity_id=row.entity_id,
                reason=row.reason,
                before=row.before,
                after=row.after,
            ),
        )
        if recomputed != row.hash:
            return Verification(checked, "empreinte_incorrecte", row.seq)
        expected_prev = row.hash
        expected_seq += 1
        checked += 1
        if progress is not None and checked % batch == 0:
            progress(checked)
    head_seq, head_hash = head(session)
    if head_seq != checked or head_hash != expected_prev:
        return Verification(checked, "fin_tronquee", checked + 1)
    return Verification(checked)


def head(session: Session) -> tuple[int, str]:
    """The sequence number and hash of the last entry (0 and the genesis hash when the
    journal is empty), as the ``journal_head`` row records them."""
    row = session.execute(sa.select(_head.c.seq, _head.c.hash).where(_head.c.id == 1)).one()
    return row.seq, row.hash


def check_anchor(session: Session, seq: int, hash: str) -> str | None:
    """Whether entry ``seq`` still has the hash noted earlier (say, by the backing service
    in its log): None if so, else a problem code.

    ``verify`` cannot see a journal rewritten from some entry on with its chain and head
    recomputed; a hash noted outside the database can. Problems: ``ancre_absente`` (entry
    ``seq`` is gone: the journal was truncated), ``ancre_modifiee`` (entry ``seq`` has
    another hash: it, or an entry before it, was rewritten). The head of an empty journal
    (0 and the genesis hash) is a valid anchor that proves nothing.
    """
    if seq == 0:
        return None if hash.lower() == GENESIS_HASH else "ancre_modifiee"
    found = session.execute(
        sa.select(_entries.c.hash).where(_entries.c.seq == seq)
    ).scalar_one_or_none()
    if found is None:
        return "ancre_absente"
    if found != hash.lower():
        return "ancre_modifiee"
    return None


def _stream(session: Session, batch: int) -> Iterator[Any]:
    # Keyset pagination: constant memory on a journal of millions of entries.
    last = 0
    while True:
        rows = session.execute(
            sa.select(_entries).where(_entries.c.seq > last).order_by(_entries.c.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


@dataclass(frozen=True)
class JournalFilter:
    """Filters for ``entries``; None means no filter."""

    entity_type: str | None = None
    entity_id: int | None = None
    operator: str | None = None
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def entries(
    session: Session,
    filters: JournalFilter,
    *,
    limit: int | None = 100,
    newest_first: bool = True,
    before_seq: int | None = None,
) -> list[JournalEntry]:
    """Journal entries matching ``filters``; with ``before_seq``, only those numbered
    below it (the next page of a newest-first listing, read through the primary key)."""
    columns = _entries.c
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.entity_type is not None:
        conditions.append(columns.entity_type == filters.entity_type)
    if filters.entity_id is not None:
        conditions.append(columns.entity_id == filters.entity_id)
    if filters.operator is not None:
        conditions.append(columns.operator == filters.operator)
    if filters.action is not None:
        conditions.append(columns.action == filters.action)
    if filters.since is not None:
        conditions.append(columns.recorded_at >= filters.since)
    if filters.until is not None:
        conditions.append(columns.recorded_at < filters.until)
    if before_seq is not None:
        conditions.append(columns.seq < before_seq)
    query = sa.select(JournalEntry).where(*conditions)
    query = query.order_by(columns.seq.desc() if newest_first else columns.seq.asc())
    if limit is not None:
        query = query.limit(limit)
    return list(session.execute(query).scalars())
