"""The outbox of renewal alerts: digests to send, and what happens to them.

A digest is one e-mail to one recipient listing all of that recipient's due alerts. Its
states are ``PENDING`` (waiting, possibly until ``next_attempt_at`` after a temporary
failure), ``SENDING`` (taken by a sender), ``SENT`` and ``FAILED`` (refused for good by
the mail server). A digest left ``SENDING`` by a crash is taken again once
``resend_after_s`` has passed, with the same Message-ID: delivery is at least once, and a
crash repeats at most the mail that was in flight.

Each step is its own short transaction, so that a crash loses nothing that was recorded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from inventaire.enums import AlertLevel, CredentialKind, DigestState
from inventaire.models import Alert, Credential, Digest, EmergencyIssuance, Holder, Organisation
from inventaire.renewal import outlook

_d = Digest.__table__  # type: ignore[attr-defined]
_a = Alert.__table__  # type: ignore[attr-defined]
_c = Credential.__table__  # type: ignore[attr-defined]
_h = Holder.__table__  # type: ignore[attr-defined]
_o = Organisation.__table__  # type: ignore[attr-defined]
_e = EmergencyIssuance.__table__  # type: ignore[attr-defined]

# Levels of the IT service's reminders about emergency cards (``inventaire.emergency``).
EMERGENCY_LEVELS = frozenset({AlertLevel.TO_RETURN, AlertLevel.OVERDUE})

# An error text stored for a digest is cut to this length (a server may answer at length).
MAX_ERROR = 500


@dataclass(frozen=True)
class EmergencyDetails:
    """What a reminder about an emergency card says besides the card and its holder."""

    issuance_id: int
    issued_on: dt.date
    issued_by: str  # the habilitated operator's login
    return_due_on: dt.date
    request_id: int | None  # the new-model request it bridges (None: issued without)
    new_card_handed_over_on: dt.date | None  # that request's handover, once done


@dataclass(frozen=True)
class DigestItem:
    """One line of a digest: one credential at one alert level.

    For the reminders about an emergency card (``TO_RETURN``, ``OVERDUE``), ``emergency``
    holds their details, and the renewal dates stand for the planned return date
    (``expires_on`` and ``order_by`` are it, ``days_left`` counts to it, no gap).
    """

    alert_id: int
    level: AlertLevel
    occurrence: int  # 0, then 1, 2... for the weekly reminders after expiry
    credential_id: int
    kind: CredentialKind
    serial: str | None
    expires_on: dt.date
    order_by: dt.date
    days_left: int  # negative once expired
    gap_days: int  # predicted gap if ordered on the digest's day (0: none)
    holder_name: str  # "Claire Martin"
    holder_email: str
    organisation: str
    emergency: EmergencyDetails | None = None


@dataclass(frozen=True)
class DigestContent:
    """Everything an e-mail needs, read from the outbox."""

    id: int
    recipient: str
    message_id: str
    day: dt.date  # the day the mail speaks of (Paris)
    items: tuple[DigestItem, ...]  # the earliest order-by date first

    @property
    def for_holder(self) -> bool:
        """Whether the recipient is the holder of every item (else: a copy to a service)."""
        return all(item.holder_email == self.recipient for item in self.items)

    @property
    def earliest_order_by(self) -> dt.date:
        return min(item.order_by for item in self.items)

    @property
    def renewal_items(self) -> tuple[DigestItem, ...]:
        """The renewal alerts (every item but the reminders about emergency cards)."""
        return tuple(item for item in self.items if item.emergency is None)

    @property
    def emergency_items(self) -> tuple[DigestItem, ...]:
        """The reminders about emergency cards to take back or overdue."""
        return tuple(item for item in self.items if item.emergency is not None)


@dataclass(frozen=True)
class LeadTimes:
    """Renewal lead time per kind and the safety margin, in days (settings)."""

    days: dict[CredentialKind, int]
    margin_days: int


def _due(now: dt.datetime, resend_after_s: float) -> sa.ColumnElement[bool]:
    """Digests a sender may take at ``now``: pending ones whose backoff is over, and ones
    left ``SENDING`` for longer than ``resend_after_s`` (their sender died)."""
    stale = now - dt.timedelta(seconds=resend_after_s)
    return sa.or_(
        sa.and_(_d.c.state == DigestState.PENDING.value, _d.c.next_attempt_at <= now),
        sa.and_(_d.c.state == DigestState.SENDING.value, _d.c.claimed_at <= stale),
    )


def claim(
    session: Session, *, now: dt.datetime, resend_after_s: float, limit: int = 50
) -> list[int]:
    """Take up to ``limit`` due digests, the oldest first, and mark them ``SENDING``;
    return their ids.

    Taking a few at once saves transactions; it costs nothing on a crash: a digest taken
    but not yet handed to the mail server is sent once, later, like the others. Only the
    one in flight may go twice (with the same Message-ID).
    """
    ids = list(
        session.execute(
            sa.select(_d.c.id).where(_due(now, resend_after_s)).order_by(_d.c.id).limit(limit)
        ).scalars()
    )
    if ids:
        session.execute(
            _d.update()
            .where(_d.c.id.in_(ids))
            .values(state=DigestState.SENDING.value, claimed_at=now, attempts=_d.c.attempts + 1)
        )
    return ids


def unclaim(session: Session, digest_ids: list[int]) -> None:
    """Put digests taken but not tried back in the queue, as if never taken (a send
    stopped before them)."""
    if digest_ids:
        session.execute(
            _d.update()
            .where(_d.c.id.in_(digest_ids), _d.c.state == DigestState.SENDING.value)
            .values(state=DigestState.PENDING.value, claimed_at=None, attempts=_d.c.attempts - 1)
        )


def load(
    session: Session, digest_ids: list[int], *, today: dt.date, leads: LeadTimes
) -> list[DigestContent]:
    """What the e-mails of the digests ``digest_ids`` say, as of ``today``, in the order
    of ``digest_ids`` (a digest without any alert is left out)."""
    if not digest_ids:
        return []
    heads = {
        row.id: row
        for row in session.execute(
            sa.select(_d.c.id, _d.c.recipient, _d.c.message_id).where(_d.c.id.in_(digest_ids))
        )
    }
    request = _c.alias("request")
    rows = session.execute(
        sa.select(
            _a.c.digest_id,
            _a.c.id,
            _a.c.level,
            _a.c.occurrence,
            _c.c.id.label("credential_id"),
            _c.c.kind,
            _c.c.serial,
            _c.c.expires_on,
            _h.c.first_name,
            _h.c.last_name,
            _h.c.email,
            _o.c.short_name,
            _e.c.id.label("issuance_id"),
            _e.c.issued_on,
            _e.c.issued_by,
            _e.c.return_due_on,
            _e.c.request_id,
            request.c.handed_over_on.label("request_handed_over_on"),
        )
        .join(_c, _c.c.id == _a.c.credential_id)
        .join(_h, _h.c.id == _c.c.holder_id)
        .join(_o, _o.c.id == _h.c.organisation_id)
        # Only the reminders about emergency cards need their issuance.
        .outerjoin(
            _e,
            sa.and_(
                _e.c.credential_id == _c.c.id,
                _a.c.level.in_([level.value for level in EMERGENCY_LEVELS]),
            ),
        )
        .outerjoin(request, request.c.id == _e.c.request_id)
        .where(_a.c.digest_id.in_(digest_ids))
    ).all()
    items: dict[int, list[DigestItem]] = {digest_id: [] for digest_id in digest_ids}
    for row in rows:
        kind = CredentialKind(row.kind)
        emergency: EmergencyDetails | None = None
        if row.issuance_id is not None:
            emergency = EmergencyDetails(
                issuance_id=row.issuance_id,
                issued_on=row.issued_on,
                issued_by=row.issued_by,
                return_due_on=row.return_due_on,
                request_id=row.request_id,
                new_card_handed_over_on=row.request_handed_over_on,
            )
            # An emergency card's expiry is often unknown: its dates are the return date.
            expires_on = order_by = row.return_due_on
            days_left, gap_days = (row.return_due_on - today).days, 0
        else:
            view = outlook(
                row.expires_on,
                today=today,
                lead_days=leads.days[kind],
                margin_days=leads.margin_days,
            )
            expires_on, order_by = row.expires_on, view.order_by
            days_left, gap_days = view.days_left, view.predicted_gap_days
        items[row.digest_id].append(
            DigestItem(
                alert_id=row.id,
                level=AlertLevel(row.level),
                occurrence=row.occurrence,
                credential_id=row.credential_id,
                kind=kind,
                serial=row.serial,
                expires_on=expires_on,
                order_by=order_by,
                days_left=days_left,
                gap_days=gap_days,
                holder_name=f"{row.first_name} {row.last_name}",
                holder_email=row.email,
                organisation=row.short_name,
                emergency=emergency,
            )
        )
    contents = []
    for digest_id in digest_ids:
        # The renewal alerts first, then the reminders about emergency cards.
        lines = sorted(
            items[digest_id],
            key=lambda i: (i.emergency is not None, i.order_by, i.expires_on, i.alert_id),
        )
        if lines:
            head = heads[digest_id]
            contents.append(
                DigestContent(
                    id=digest_id,
                    recipient=head.recipient,
                    message_id=head.message_id,
                    day=today,
                    items=tuple(lines),
                )
            )
    return contents


def pending_ids(session: Session, *, now: dt.datetime, resend_after_s: float) -> list[int]:
    """The digests a send would take now, in order (for a preview)."""
    query = sa.select(_d.c.id).where(_due(now, resend_after_s)).order_by(_d.c.id)
    return list(session.execute(query).scalars())


# Built once: it runs once per mail sent, and building a statement costs more than
# running it.
_MARK_SENT = (
    _d.update()
    .where(_d.c.id == sa.bindparam("digest_id"))
    .values(state=DigestState.SENT.value, sent_at=sa.bindparam("now"), last_error=None)
)


def mark_sent(session: Session | sa.Connection, digest_id: int, *, now: dt.datetime) -> None:
    """The mail server accepted the digest."""
    session.execute(_MARK_SENT, {"digest_id": digest_id, "now": now})


def mark_failed(
    session: Session | sa.Connection, digest_id: int, *, now: dt.datetime, error: str
) -> None:
    """The mail server refused the digest for good: it will not be tried again."""
    session.execute(
        _d.update()
        .where(_d.c.id == digest_id)
        .values(state=DigestState.FAILED.value, last_error=error[:MAX_ERROR])
    )


def mark_retry(
    session: Session | sa.Connection,
    digest_id: int,
    *,
    now: dt.datetime,
    error: str,
    first_delay_s: float,
    max_delay_s: float,
) -> dt.datetime:
    """A temporary failure: back to ``PENDING``, not tried again before a delay that
    doubles with each attempt (up to ``max_delay_s``); return when it is due again."""
    attempts = session.execute(sa.select(_d.c.attempts).where(_d.c.id == digest_id)).scalar_one()
    delay = min(first_delay_s * 2 ** max(attempts - 1, 0), max_delay_s)
    due = now + dt.timedelta(seconds=delay)
    session.execute(
        _d.update()
        .where(_d.c.id == digest_id)
        .values(
            state=DigestState.PENDING.value,
            next_attempt_at=due,
            claimed_at=None,
            last_error=error[:MAX_ERROR],
        )
    )
    return due


def waiting(session: Session) -> int:
    """How many digests are not sent yet (pending or being sent). A range of the state
    index: sent digests, which pile up over the years, are not read."""
    query = sa.select(sa.func.count()).where(
        _d.c.state.in_([DigestState.PENDING.value, DigestState.SENDING.value])
    )
    return int(session.execute(query).scalar_one())


@dataclass(frozen=True)
class DigestLine:
    """One digest of the outbox as listed (``list_digests``)."""

    id: int
    recipient: str
    state: DigestState
    alerts: int  # how many alerts the mail lists
    attempts: int
    last_error: str | None
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    sent_at: dt.datetime | None


def list_digests(
    session: Session,
    *,
    states: tuple[DigestState, ...] = (),
    limit: int = 200,
    before_id: int | None = None,
) -> list[DigestLine]:
    """Digests of the outbox, the newest first, ``limit`` at most: a page. The next page
    starts ``before_id`` (the smallest id of this one); only ``states`` if given."""
    alert_count = sa.select(sa.func.count()).where(_a.c.digest_id == _d.c.id).scalar_subquery()
    query = sa.select(
        _d.c.id,
        _d.c.recipient,
        _d.c.state,
        alert_count.label("alerts"),
        _d.c.attempts,
        _d.c.last_error,
        _d.c.created_at,
        _d.c.next_attempt_at,
        _d.c.sent_at,
    )
    if states:
        query = query.where(_d.c.state.in_([state.value for state in states]))
    if before_id is not None:
        query = query.where(_d.c.id < before_id)
    query = query.order_by(_d.c.id.desc()).limit(limit)
    return [
        DigestLine(
            id=row.id,
            recipient=row.recipient,
            state=DigestState(row.state),
            alerts=int(row.alerts),
            attempts=row.attempts,
            last_error=row.last_error,
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at,
            sent_at=row.sent_at,
        )
        for row in session.execute(query)
    ]


def count_by_state(session: Session) -> dict[DigestState, int]:
    """How many digests are in each state (every state present, zero included)."""
    counts = dict.fromkeys(DigestState, 0)
    rows = session.execute(sa.select(_d.c.state, sa.func.count()).group_by(_d.c.state))
    for state, count in rows:
        counts[DigestState(state)] = int(count)
    return counts
