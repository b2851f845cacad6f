"""The figures of the monitoring metrics (issue 11): what Prometheus reads on the metrics
port of ``cartes web`` (``cartes.web.metrics``).

Read through the bare driver (``inventaire.dbapi``) with the queries of the dashboard and
of the summary (``inventaire.dashboard``, ``inventaire.summary``), plus two of their own
through indexes: the digests by state and the latest successful daily cycle. Definitions,
relative to ``today`` (Europe/Paris):

- *expiring within N days* (N = 30, 60, 90): in service (ACTIVE or SUSPENDED) with
  ``today <= expires_on <= today + N``, as ``cartes stats`` counts them;
- *predicted gaps*: in service, not replaced, not expired, expiring sooner than the lead
  time of its kind (the dashboard's count); *orders late*: the same, but the order-by
  date only has passed;
- *emergency cards outstanding*: not given back and still in service; *overdue*: of those,
  the ones past their planned return date;
- *alerts*: the digests (one e-mail per recipient and run) by state since the database was
  created; sent and failed ones only ever grow (both states are final), waiting ones
  (PENDING or SENDING) come and go;
- *last successful daily cycle*: when the latest run of one of ``cycle_kinds`` that
  succeeded ended (the kinds are the backing service's, ``cartes.service.CYCLE_KINDS``).

Every kind (and state, and digest state) is present in the figures, zero included: a
series that exists at 0 says more to a monitoring rule than one that is absent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from inventaire import dashboard
from inventaire.browse import Renewal, Urgency
from inventaire.dbapi import ReadConnection, instant_value
from inventaire.enums import CredentialKind, CredentialState, DigestState
from inventaire.summary import summarize

EXPIRY_HORIZONS = (30, 60, 90)
"""The horizons, in days, of the *expiring within N days* figures."""

_WAITING = (DigestState.PENDING, DigestState.SENDING)


@dataclass(frozen=True)
class MonitoringFigures:
    """The figures of the monitoring metrics, read at ``computed_at``."""

    computed_at: dt.datetime
    holders: int
    by_kind_state: dict[tuple[CredentialKind, CredentialState], int]
    # Horizon in days (EXPIRY_HORIZONS) → kind → in-service credentials expiring within it.
    expiring: dict[int, dict[CredentialKind, int]]
    expired_in_service: dict[CredentialKind, int]
    predicted_gaps: dict[CredentialKind, int]
    orders_late: dict[CredentialKind, int]
    emergency_outstanding: int
    emergency_overdue: int
    digests: dict[DigestState, int]  # all time
    last_successful_cycle: dt.datetime | None  # when it ended (aware UTC); None if never

    @property
    def alerts_sent(self) -> int:
        """Digests sent since the database was created."""
        return self.digests[DigestState.SENT]

    @property
    def alerts_failed(self) -> int:
        """Digests refused for good since the database was created."""
        return self.digests[DigestState.FAILED]

    @property
    def alerts_waiting(self) -> int:
        """Digests not sent yet (waiting, or being sent)."""
        return sum(self.digests[state] for state in _WAITING)


def digest_counts(connection: ReadConnection) -> dict[DigestState, int]:
    """How many digests are in each state, since the database was created (every state
    present, zero included): a walk of ``ix_digest_state_next_attempt_at``."""
    sql = "SELECT state, count(*) FROM digest GROUP BY state"
    found = {state: int(n) for state, n in connection.rows(sql, {})}
    return {state: found.get(state.value, 0) for state in DigestState}


def last_successful_cycle(
    connection: ReadConnection, *, kinds: Iterable[str]
) -> dt.datetime | None:
    """When the latest successful run of one of ``kinds`` ended (aware UTC), or None if
    none ever succeeded. The latest by start, read backwards along the index of
    ``started_at``: runs do not overlap, the service holds a lease."""
    params: dict[str, Any] = {"ok": True}
    names = []
    for index, kind in enumerate(kinds):
        params[f"kind{index}"] = kind
        names.append(f":kind{index}")
    if not names:
        return None
    sql = f"""SELECT finished_at FROM service_run
WHERE ok = :ok AND kind IN ({", ".join(names)})
ORDER BY started_at DESC, id DESC LIMIT 1"""
    for (finished_at,) in connection.rows(sql, params):
        return instant_value(finished_at)
    return None


def figures(
    connection: ReadConnection,
    *,
    today: dt.date,
    now: dt.datetime,
    renewal: Renewal,
    cycle_kinds: Iterable[str],
) -> MonitoringFigures:
    """The figures of the monitoring metrics on ``today`` (Europe/Paris) at ``now``, in a
    few queries; ``cycle_kinds``: the kinds of run that are a daily cycle."""
    summary = summarize(connection, today=today, horizons=EXPIRY_HORIZONS)
    urgencies = dashboard.renewal_urgencies(connection, today=today, renewal=renewal)
    outstanding, overdue = dashboard.emergency_figures(connection, today=today)
    return MonitoringFigures(
        computed_at=now,
        holders=summary.holders,
        by_kind_state={
            (kind, state): summary.by_kind_state.get((kind, state), 0)
            for kind in CredentialKind
            for state in CredentialState
        },
        expiring={horizon: _every_kind(summary.expiring[horizon]) for horizon in EXPIRY_HORIZONS},
        expired_in_service=_every_kind(summary.expired_in_service),
        predicted_gaps={kind: urgencies[kind, Urgency.GAP] for kind in CredentialKind},
        orders_late={kind: urgencies[kind, Urgency.ORDER_LATE] for kind in CredentialKind},
        emergency_outstanding=outstanding,
        emergency_overdue=overdue,
        digests=digest_counts(connection),
        last_successful_cycle=last_successful_cycle(connection, kinds=cycle_kinds),
    )


def _every_kind(counts: Mapping[CredentialKind, int]) -> dict[CredentialKind, int]:
    return {kind: counts.get(kind, 0) for kind in CredentialKind}
