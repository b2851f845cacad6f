"""Leases: one process at a time may do a named job (the backing service sends mail).

A lease is a row of ``service_lease``: who holds it (owner, host, pid) and until when. The
holder renews it well before it expires; a process that finds it held by another, live
holder waits. A lease is free when it has expired, or when its holder ran on this host
and that process is gone (a restart after ``kill -9`` need not wait for the expiry).

Every step is one short write transaction (``db.write_session``): those are serialised
(``BEGIN IMMEDIATE`` on SQLite, the journal lock on PostgreSQL), so of two processes that
race for a free lease exactly one takes it. The writes are also conditional on the row
read, so that the guarantee does not rest on that serialisation alone.

Instants are aware UTC datetimes; like the rest of the inventory they are stored as UTC.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from inventaire import db
from inventaire.clock import from_db
from inventaire.errors import Conflict
from inventaire.models import ServiceLease

_lease = ServiceLease.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LeaseStatus:
    """The outcome of ``acquire``: whether we hold the lease, and who holds it.

    ``taken_over`` names the previous holder when we took the lease from an expired holder
    or from a dead process of this host (None otherwise).
    """

    held: bool
    owner: str
    host: str
    pid: int
    expires_at: dt.datetime
    taken_over: str | None = None


def owner_name(host: str, pid: int) -> str:
    """The owner string of the backing service's process ``pid`` on ``host``."""
    return f"cartes service {host} pid {pid}"


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (it may belong to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, it is someone else's
        return True
    return True


def _status(row: sa.Row[tuple[object, ...]], *, held: bool) -> LeaseStatus:
    return LeaseStatus(
        held=held,
        owner=row.owner,
        host=row.host,
        pid=row.pid,
        expires_at=from_db(row.expires_at),
    )


def _changed(session: Session, statement: sa.Executable) -> int:
    """Rows changed by an UPDATE or DELETE, in the session's transaction."""
    return session.connection().execute(statement).rowcount


def _is_ours(row: sa.Row[tuple[object, ...]], owner: str, host: str, pid: int) -> bool:
    return bool(row.owner == owner and row.host == host and row.pid == pid)


def _held_by(name: str, owner: str, host: str, pid: int) -> sa.ColumnElement[bool]:
    columns = _lease.c
    return sa.and_(
        columns.name == name, columns.owner == owner, columns.host == host, columns.pid == pid
    )


def acquire(
    engine: Engine,
    *,
    name: str,
    owner: str,
    host: str,
    pid: int,
    now: dt.datetime,
    duration_s: float,
) -> LeaseStatus:
    """Take the lease ``name`` until ``now + duration_s`` if it is free, expired, already
    ours, or held by a process of ``host`` that no longer exists; otherwise report who
    holds it (``held`` false). Two processes racing for it: exactly one gets it."""
    now = from_db(now)
    expires_at = now + dt.timedelta(seconds=duration_s)
    mine = {"owner": owner, "host": host, "pid": pid, "expires_at": expires_at}
    try:
        with db.write_session(engine) as session:
            row = session.execute(sa.select(_lease).where(_lease.c.name == name)).one_or_none()
            if row is None:
                session.execute(_lease.insert().values(name=name, acquired_at=now, **mine))
                return LeaseStatus(True, owner, host, pid, expires_at)
            if _is_ours(row, owner, host, pid):
                session.execute(
                    _lease.update()
                    .where(_held_by(name, owner, host, pid))
                    .values(expires_at=expires_at)
                )
                return LeaseStatus(True, owner, host, pid, expires_at)
            expired = from_db(row.expires_at) <= now
            dead = row.host == host and row.pid != pid and not process_alive(row.pid)
            if not (expired or dead):
                return _status(row, held=False)
            # Conditional on the row we read: if it changed meanwhile, we did not take it.
            taken = _changed(
                session,
                _lease.update()
                .where(_held_by(name, row.owner, row.host, row.pid))
                .values(acquired_at=now, **mine),
            )
            if taken != 1:
                return _status(row, held=False)
            return LeaseStatus(True, owner, host, pid, expires_at, taken_over=row.owner)
    except Conflict:
        # Another process inserted the row first (only possible if the write
        # transactions were not serialised): it won.
        found = current(engine, name=name)
        if found is None:
            raise
        return found


def renew(
    engine: Engine,
    *,
    name: str,
    owner: str,
    host: str,
    pid: int,
    now: dt.datetime,
    duration_s: float,
) -> bool:
    """Extend our lease to ``now + duration_s``; False if it is no longer ours (another
    process took it after it expired, or it was released)."""
    expires_at = from_db(now) + dt.timedelta(seconds=duration_s)
    with db.write_session(engine) as session:
        statement = (
            _lease.update().where(_held_by(name, owner, host, pid)).values(expires_at=expires_at)
        )
        return _changed(session, statement) == 1


def release(engine: Engine, *, name: str, owner: str, host: str, pid: int) -> bool:
    """Give the lease up if it is ours; return whether it was."""
    with db.write_session(engine) as session:
        statement = _lease.delete().where(_held_by(name, owner, host, pid))
        return _changed(session, statement) == 1


def current(engine: Engine, *, name: str) -> LeaseStatus | None:
    """Who holds the lease ``name`` (``held`` false: it is not said to be ours), or None
    when nobody does. An expired lease is still reported, with its expiry."""
    with db.read_session(engine) as session:
        row = session.execute(sa.select(_lease).where(_lease.c.name == name)).one_or_none()
    return None if row is None else _status(row, held=False)
