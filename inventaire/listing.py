"""Listing credentials with their holder, and the inventory summary."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from inventaire.lifecycle import IN_SERVICE
from inventaire.models import (
    CardModel,
    Credential,
    CredentialKind,
    CredentialState,
    Holder,
    HolderRole,
    Organisation,
)
from inventaire.vocabulary import fold

_c = Credential.__table__  # type: ignore[attr-defined]
_h = Holder.__table__  # type: ignore[attr-defined]
_o = Organisation.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class CredentialFilter:
    """Filters of ``cartes liste``; None means no filter.

    ``expires_within`` keeps credentials whose expiry falls between today and today + N
    days (included); ``expires_before`` those that expire strictly before that date, already
    expired ones included.
    """

    kinds: tuple[CredentialKind, ...] = ()
    states: tuple[CredentialState, ...] = ()
    organisation_id: int | None = None
    text: str | None = None
    expires_within: int | None = None
    expires_before: dt.date | None = None


@dataclass(frozen=True, slots=True)
class CredentialLine:
    """One line of a listing."""

    id: int
    kind: CredentialKind
    model: CardModel | None
    state: CredentialState
    serial: str | None
    expires_on: dt.date | None
    handed_over_on: dt.date | None
    holder_id: int
    holder_role: HolderRole
    last_name: str
    first_name: str
    email: str
    organisation: str

    def days_left(self, today: dt.date) -> int | None:
        return (self.expires_on - today).days if self.expires_on else None


def listing_query(filters: CredentialFilter, today: dt.date) -> sa.Select[tuple[object, ...]]:
    """The SQL of a listing, ordered by expiry (unknown expiries last), then id."""
    query = (
        sa.select(
            _c.c.id,
            _c.c.kind,
            _c.c.model,
            _c.c.state,
            _c.c.serial,
            _c.c.expires_on,
            _c.c.handed_over_on,
            _c.c.holder_id,
            _h.c.role,
            _h.c.last_name,
            _h.c.first_name,
            _h.c.email,
            _o.c.short_name,
        )
        .join(_h, _h.c.id == _c.c.holder_id)
        .join(_o, _o.c.id == _h.c.organisation_id)
    )
    if filters.kinds:
        query = query.where(_c.c.kind.in_([kind.value for kind in filters.kinds]))
    if filters.states:
        query = query.where(_c.c.state.in_([state.value for state in filters.states]))
    if filters.organisation_id is not None:
        query = query.where(_h.c.organisation_id == filters.organisation_id)
    if filters.text:
        pattern = f"%{_escape_like(fold(filters.text))}%"
        query = query.where(
            sa.or_(
                _h.c.search_text.like(pattern, escape="\\"),
                sa.func.lower(_c.c.serial).like(pattern, escape="\\"),
            )
        )
    if filters.expires_within is not None:
        query = query.where(
            _c.c.expires_on.between(today, today + dt.timedelta(days=filters.expires_within))
        )
    if filters.expires_before is not None:
        query = query.where(_c.c.expires_on < filters.expires_before)
    return query.order_by(_c.c.expires_on.is_(None), _c.c.expires_on, _c.c.id)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_credentials(
    session: Session, filters: CredentialFilter, *, today: dt.date, limit: int | None = None
) -> Iterator[CredentialLine]:
    """The credentials matching ``filters``, streamed in expiry order."""
    query = listing_query(filters, today)
    if limit is not None:
        query = query.limit(limit)
    result = session.execute(query.execution_options(yield_per=5000))
    for row in result:
        yield CredentialLine(
            id=row.id,
            kind=CredentialKind(row.kind),
            model=CardModel(row.model) if row.model else None,
            state=CredentialState(row.state),
            serial=row.serial,
            expires_on=row.expires_on,
            handed_over_on=row.handed_over_on,
            holder_id=row.holder_id,
            holder_role=HolderRole(row.role),
            last_name=row.last_name,
            first_name=row.first_name,
            email=row.email,
            organisation=row.short_name,
        )


@dataclass(frozen=True)
class Summary:
    """Counts by kind and state, and in-service credentials expiring within each horizon."""

    by_kind_state: dict[tuple[CredentialKind, CredentialState], int]
    expiring: dict[int, dict[CredentialKind, int]]
    expired_in_service: dict[CredentialKind, int]
    holders: int


def summarize(
    session: Session, *, today: dt.date, horizons: tuple[int, ...] = (30, 60, 90)
) -> Summary:
    """The inventory at a glance (what ``cartes`` shows without arguments)."""
    counts = session.execute(
        sa.select(_c.c.kind, _c.c.state, sa.func.count()).group_by(_c.c.kind, _c.c.state)
    ).all()
    by_kind_state = {
        (CredentialKind(kind), CredentialState(state)): number for kind, state, number in counts
    }
    in_service = _c.c.state.in_([state.value for state in IN_SERVICE])
    expiring: dict[int, dict[CredentialKind, int]] = {}
    for horizon in horizons:
        rows = session.execute(
            sa.select(_c.c.kind, sa.func.count())
            .where(in_service, _c.c.expires_on.between(today, today + dt.timedelta(days=horizon)))
            .group_by(_c.c.kind)
        ).all()
        expiring[horizon] = {CredentialKind(kind): number for kind, number in rows}
    expired_rows = session.execute(
        sa.select(_c.c.kind, sa.func.count())
        .where(in_service, _c.c.expires_on < today)
        .group_by(_c.c.kind)
    ).all()
    holders = session.execute(sa.select(sa.func.count()).select_from(_h)).scalar_one()
    return Summary(
        by_kind_state=by_kind_state,
        expiring=expiring,
        expired_in_service={CredentialKind(kind): number for kind, number in expired_rows},
        holders=holders,
    )
