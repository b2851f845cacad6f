"""The inventory at a glance: counts by kind and state, and what expires soon.

Read through the bare driver (``inventaire.dbapi``), with the dashboard's queries: the
counts come from the tally kept by triggers, the expiries are ranges of
``ix_credential_expiry``. Nothing here imports SQLAlchemy, so ``cartes`` answers without
paying for it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from inventaire import dashboard
from inventaire.dbapi import ReadConnection
from inventaire.enums import CredentialKind, CredentialState


@dataclass(frozen=True)
class Summary:
    """Counts by kind and state, and in-service credentials expiring within each horizon."""

    by_kind_state: dict[tuple[CredentialKind, CredentialState], int]
    expiring: dict[int, dict[CredentialKind, int]]
    expired_in_service: dict[CredentialKind, int]
    holders: int


def summarize(
    connection: ReadConnection, *, today: dt.date, horizons: tuple[int, ...] = (30, 60, 90)
) -> Summary:
    """The inventory at a glance (what ``cartes`` shows without arguments)."""
    by_day = dashboard.expiring_by_kind_and_day(
        connection, first=today, last=today + dt.timedelta(days=max(horizons, default=0))
    )
    expiring: dict[int, dict[CredentialKind, int]] = {}
    for horizon in horizons:
        last = today + dt.timedelta(days=horizon)
        within: dict[CredentialKind, int] = {}
        for (kind, day), n in by_day.items():
            if day <= last:
                within[kind] = within.get(kind, 0) + n
        expiring[horizon] = within
    expired = dashboard.expired_in_service(connection, today=today)
    return Summary(
        by_kind_state=dashboard.counts_by_kind_state(connection),
        expiring=expiring,
        expired_in_service={kind: n for kind, n in expired.items() if n},
        holders=dashboard.holders(connection),
    )
