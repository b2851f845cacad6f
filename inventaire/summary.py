"""The inventory at a glance: counts by kind and state, and what expires soon."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from inventaire.lifecycle import IN_SERVICE
from inventaire.models import Credential, CredentialKind, CredentialState, Holder

_c = Credential.__table__  # type: ignore[attr-defined]
_h = Holder.__table__  # type: ignore[attr-defined]


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
