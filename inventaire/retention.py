"""Retention of personal data (issue 12): holders whose credentials all ended more than
``[retention] years`` ago are anonymised.

Who is anonymised. A holder not anonymised yet, none of whose credentials keeps them,
and whose last credential ended before the *cut-off day*, the same day ``years`` years
before today (Europe/Paris; a 29 February gives the 28th): "more than ``years`` years".

- A credential *ends* at its expiry or when it leaves service, whichever comes first. An
  expired credential gives no access any more, so one still recorded active or suspended
  (never given back) ended at its expiry: otherwise a key nobody reported returned would
  keep its holder's data for ever. The statistics still count it as "expired and still in
  service": nothing here changes a state.
- A credential in a final state (lost, damaged, returned, revoked, cancelled) left service
  at its ``updated_at``: the instant of the transition, or later when it was touched since
  (a returned card read at the desk again). That only ever postpones the anonymisation.
  The journal holds the exact date of the transition, but finding it means reading the
  JSON of every entry of the credential in SQL, in both dialects, for a difference that
  is always on the safe side.
- These keep the holder, whatever the dates: a request not handed over yet (requested or
  received), a credential in service whose expiry is unknown, an emergency card still out
  (not given back and in service: the IT service must still take it back), and an e-mail
  of the outbox addressed to them not sent yet (a digest pending or being sent, or an
  alert not yet in a digest: it needs their address; once sent or failed, the next run
  takes them).
- A holder without any credential counts from their own ``updated_at`` (their creation,
  or the last change an import made).

What is replaced, for each holder, in one transaction per batch with one journal entry
per holder (``titulaire.anonymisation``, by id, no personal data):

- the holder: last name « Anonyme », first name « n°ID », e-mail
  ``anonyme-ID@anonyme.invalid`` (unique, and ``.invalid`` can never be delivered), the
  search text recomputed from those (the triggers of migration 0004 rewrite the search
  index of their credentials), ``anonymised_at`` set; role, organisation, active flag
  and dates are kept, ``updated_at`` included: the dates of the record stay those of the
  person's history, and ``anonymised_at`` says when it was anonymised;
- their credentials' certificates: the DER emptied (``b""``: the column is NOT NULL) and
  the subject replaced; fingerprint, issuer, serial number, dates, role and the last
  validation kept;
- free text that may name the person: the reason of their emergency issuances and of the
  mutes of their credentials' alerts;
- the outbox: every alert and digest addressed to their e-mail gets the anonymous address
  (a digest's last error, which may quote the address or the mailbox, is replaced too).

Counts, states, dates, the operators' logins, the register of readings
(``record_access``) and the journal are kept: the statistics do not change and the chain
still verifies. The journal itself names holders by id only, but keeps the free-text
reasons operators typed (a transition's reason, an emergency issuance's reason, a mute's
reason): they cannot be changed without breaking the chain.

On SQLite, the old values must not stay in the file: each batch runs with ``PRAGMA
secure_delete`` (freed space is overwritten with zeros) and ends with the FTS5
``optimize`` of the search index (otherwise its older segments keep the trigrams of the
old names, from which the names can be rebuilt), in the same transaction, so that an
interrupted run leaves nothing behind; the run ends with a WAL checkpoint that truncates
the ``-wal`` file. On PostgreSQL the old row versions are left to (auto)vacuum, as for any
update.

A run is a loop of batches, each selecting (again, under the write lock) the next holders
to anonymise: it can be interrupted and run again, by several processes at once. It is
started by ``cartes maintenance anonymiser`` (an ADMIN; its ``--simulation`` only calls
``candidates`` on a read-only connection) and by the backing service once a month
(``cartes.service``, journaled as ``(service)``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from inventaire import db, journal
from inventaire.clock import PARIS, paris_today
from inventaire.dbapi import instant_param, instant_value
from inventaire.enums import CredentialState, DigestState, HolderRole
from inventaire.lifecycle import FINAL_STATES
from inventaire.states import IN_SERVICE, PENDING
from inventaire.vocabulary import holder_search_text

ACTION = "titulaire.anonymisation"
ANONYMOUS_LAST_NAME = "Anonyme"
# What replaces a certificate's subject, a free-text reason, a mail server's answer.
REDACTED = "[anonymisé]"
# Holders anonymised per transaction: the FTS5 optimize that ends each one rewrites the
# whole search index (some 2 s for a million credentials).
BATCH = 500


def anonymous_first_name(holder_id: int) -> str:
    """The first name an anonymised holder gets: « n°42 »."""
    return f"n°{holder_id}"


def anonymous_email(holder_id: int) -> str:
    """The e-mail an anonymised holder gets (unique; ``.invalid`` is never delivered)."""
    return f"anonyme-{holder_id}@anonyme.invalid"


def cutoff(today: dt.date, years: int) -> dt.date:
    """The day ``years`` years before ``today``: a holder whose last credential ended
    before it is anonymised (29 February gives the 28th)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


class Reader(Protocol):
    """What the selection reads through: ``inventaire.dbapi.ReadConnection`` (read-only,
    for a simulation) or a session (``SessionReader``, for the run)."""

    dialect: str

    def rows(self, sql: str, params: Mapping[str, Any]) -> Iterable[Sequence[Any]]: ...


class SessionReader:
    """A session as a ``Reader``: the run selects within its write transaction."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def rows(self, sql: str, params: Mapping[str, Any]) -> Iterable[Sequence[Any]]:
        """The rows of ``sql`` (``:name`` parameters), in the session's transaction."""
        return self.session.execute(sa.text(sql), dict(params)).all()


@dataclass(frozen=True)
class Candidate:
    """A holder the retention rule anonymises, as they were before it."""

    holder_id: int
    last_name: str
    first_name: str
    email: str
    role: HolderRole
    organisation: str  # short name
    credentials: int
    ended_on: dt.date  # when their last credential ended (or their record last changed)


def _states(states: Iterable[CredentialState]) -> str:
    return ", ".join(f"'{state.value}'" for state in sorted(states))


# A credential that keeps its holder: a pending request, or one not ended before the
# cut-off (ended: expired before it, or left service before it). Never NULL.
_KEEPS = f"""(c.state IN ({_states(PENDING)}) OR NOT (
    (c.expires_on IS NOT NULL AND c.expires_on < :cutoff_day)
    OR (c.state IN ({_states(FINAL_STATES)}) AND c.updated_at < :cutoff_instant)))"""

_ELIGIBLE = f"""h.anonymised_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM credential c WHERE c.holder_id = h.id AND {_KEEPS})
  AND NOT EXISTS (
    SELECT 1 FROM emergency_issuance e JOIN credential c ON c.id = e.credential_id
    WHERE e.holder_id = h.id AND e.returned_on IS NULL AND c.state IN ({_states(IN_SERVICE)}))
  AND NOT EXISTS (
    SELECT 1 FROM digest d WHERE d.recipient = h.email
    AND d.state IN ('{DigestState.PENDING.value}', '{DigestState.SENDING.value}'))
  AND NOT EXISTS (SELECT 1 FROM alert a WHERE a.digest_id IS NULL AND a.recipient = h.email)
  AND (h.updated_at < :cutoff_instant
       OR EXISTS (SELECT 1 FROM credential c WHERE c.holder_id = h.id))"""

_HOLDERS = f"""SELECT h.id, h.last_name, h.first_name, h.email, h.role, o.short_name,
       h.updated_at
FROM holder h JOIN organisation o ON o.id = h.organisation_id
WHERE {_ELIGIBLE}
ORDER BY h.id"""

# Ids are read back from the database and are integers: safe to write into the query.
_CREDENTIALS = """SELECT holder_id, state, expires_on, updated_at FROM credential
WHERE holder_id IN ({ids})"""


def candidates(
    reader: Reader, *, today: dt.date, years: int, limit: int | None = None
) -> list[Candidate]:
    """The holders to anonymise on ``today`` under a retention of ``years`` years, by id
    (the first ``limit`` of them when given). Reads only."""
    day = cutoff(today, years)
    start = dt.datetime.combine(day, dt.time(), tzinfo=PARIS).astimezone(dt.UTC)
    params: dict[str, Any] = {
        "cutoff_day": day.isoformat() if reader.dialect == "sqlite" else day,
        "cutoff_instant": instant_param(reader.dialect, start),
    }
    sql = _HOLDERS
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = limit
    holders = list(reader.rows(sql, params))
    ends: dict[int, list[dt.date]] = {}
    for index in range(0, len(holders), BATCH):
        ids = ", ".join(str(int(row[0])) for row in holders[index : index + BATCH])
        for holder_id, state, expires_on, updated_at in reader.rows(
            _CREDENTIALS.format(ids=ids), {}
        ):
            changed = instant_value(updated_at)
            assert changed is not None  # NOT NULL
            ends.setdefault(int(holder_id), []).append(
                _end(CredentialState(state), _day(expires_on), changed)
            )
    found = []
    for holder_id, last_name, first_name, email, role, organisation, updated_at in holders:
        own = ends.get(int(holder_id), [])
        changed = instant_value(updated_at)
        assert changed is not None
        found.append(
            Candidate(
                holder_id=int(holder_id),
                last_name=last_name,
                first_name=first_name,
                email=email,
                role=HolderRole(role),
                organisation=organisation,
                credentials=len(own),
                ended_on=max(own) if own else paris_today(changed),
            )
        )
    return found


def _end(state: CredentialState, expires_on: dt.date | None, updated: dt.datetime) -> dt.date:
    """When a credential ended: its expiry or, in a final state, the day it was last
    changed, whichever comes first (see the module's docstring). A credential the rule
    would keep (possible only when a simulation reads as it changes) counts from its
    last change."""
    ends = [expires_on] if expires_on is not None else []
    if state in FINAL_STATES or not ends:
        ends.append(paris_today(updated))
    return min(ends)


def _day(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))  # SQLite returns dates as ISO text


# Conditional: a concurrent run that got there first leaves nothing to do.
_HOLDER = """UPDATE holder SET last_name = :last_name, first_name = :first_name,
email = :new, search_text = :search_text, anonymised_at = :now
WHERE id = :id AND anonymised_at IS NULL"""

_REST = (
    """UPDATE certificate SET der = :empty, subject = :redacted
    WHERE credential_id IN (SELECT id FROM credential WHERE holder_id = :id)""",
    "UPDATE emergency_issuance SET reason = :redacted WHERE holder_id = :id",
    """UPDATE alert_mute SET reason = :redacted
    WHERE credential_id IN (SELECT id FROM credential WHERE holder_id = :id)""",
    # Through the digests (indexed by recipient): an alert has its digest's recipient.
    """UPDATE alert SET recipient = :new
    WHERE digest_id IN (SELECT id FROM digest WHERE recipient = :old)""",
    """UPDATE digest SET recipient = :new,
    last_error = CASE WHEN last_error IS NULL THEN NULL ELSE :redacted END
    WHERE recipient = :old""",
)


def anonymise(
    session: Session, candidate: Candidate, *, years: int, writer: journal.JournalWriter
) -> bool:
    """Replace the personal data of ``candidate`` (see the module's docstring) in the
    caller's transaction, and journal it through ``writer`` (flushed by the caller);
    False when the holder was anonymised already (nothing done)."""
    holder_id = candidate.holder_id
    email = anonymous_email(holder_id)
    first_name = anonymous_first_name(holder_id)
    values = {
        "id": holder_id,
        "old": candidate.email,
        "new": email,
        "last_name": ANONYMOUS_LAST_NAME,
        "first_name": first_name,
        "search_text": holder_search_text(ANONYMOUS_LAST_NAME, first_name, email),
        "now": instant_param(session.get_bind().dialect.name, writer.now),
        "redacted": REDACTED,
        "empty": b"",
    }
    if not session.execute(sa.text(_HOLDER), values).rowcount:  # type: ignore[attr-defined]
        return False
    for statement in _REST:
        session.execute(sa.text(statement), values)
    writer.record(
        ACTION,
        "holder",
        holder_id,
        reason=(
            f"durée de conservation écoulée : dernier support terminé le "
            f"{candidate.ended_on:%d/%m/%Y}, conservation de {years} ans"
        ),
        after={
            "anonymised": True,
            "last_end": candidate.ended_on.isoformat(),
            "retention_years": years,
        },
    )
    return True


@dataclass
class Report:
    """What a run did: the holders anonymised (as they were: a face shows what it
    chooses of them), and whether it went to the end (not stopped between two batches)."""

    anonymised: list[Candidate] = field(default_factory=list)
    finished: bool = False


def _never() -> bool:
    return False


def run(
    engine: Engine,
    *,
    years: int,
    by: str,
    now: dt.datetime,
    batch: int = BATCH,
    should_stop: Callable[[], bool] = _never,
) -> Report:
    """Anonymise every holder the rule selects on the Paris day of ``now``, journaled as
    done by ``by`` at ``now``: one transaction per ``batch`` holders; stops between two
    batches when ``should_stop()`` (what was done is kept)."""
    report = Report()
    today = paris_today(now)
    while not should_stop():
        with db.write_session(engine) as session:
            found = candidates(SessionReader(session), today=today, years=years, limit=batch)
            if not found:
                report.finished = True
                break
            with _secure_delete(session):
                writer = journal.JournalWriter(session, operator=by, now=now)
                done = [c for c in found if anonymise(session, c, years=years, writer=writer)]
                writer.flush()
                _purge_search_index(session)
        report.anonymised.extend(done)
    if report.anonymised:
        _truncate_wal(engine)
    return report


@contextlib.contextmanager
def _secure_delete(session: Session) -> Iterator[None]:
    """On SQLite, ``PRAGMA secure_delete`` for the block: what the updates free is
    overwritten with zeros (the setting belongs to the pooled connection: restored)."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    previous = int(session.execute(sa.text("PRAGMA secure_delete")).scalar() or 0)
    session.execute(sa.text("PRAGMA secure_delete = 1"))
    try:
        yield
    finally:
        session.execute(sa.text(f"PRAGMA secure_delete = {previous}"))


def _purge_search_index(session: Session) -> None:
    """On SQLite, merge the FTS5 index into one segment: the older segments still map the
    old names' trigrams to the credentials until then. (PostgreSQL's table is updated in
    place by its trigger.)"""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            sa.text("INSERT INTO credential_search (credential_search) VALUES ('optimize')")
        )


def _truncate_wal(engine: Engine) -> None:
    """On SQLite, copy the WAL into the database and empty it, so that the old pages do not
    linger in the ``-wal`` file. Best effort: a reader still on an older snapshot keeps
    it for now (the next checkpoint will reset it)."""
    if not db.is_sqlite(engine):
        return
    with db.translate_errors(), engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").all()
