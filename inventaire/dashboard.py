"""The figures of the TUI's dashboard (and of the summary ``cartes`` prints).

Read through the bare driver (``inventaire.dbapi``) with queries that do not scan the
inventory: counts by kind and state come from the tally the triggers of migration 0004
keep; expiries, gaps and late orders are ranges of ``ix_credential_expiry`` (in-service
credentials expiring within the next weeks, or within the lead time), grouped by kind and
day in SQL and classified per (kind, day) in Python with the inventory's own rule
(``browse.urgency``); the outbox and the service's runs are read through their indexes.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from inventaire.browse import Renewal, Urgency, urgency
from inventaire.dbapi import ReadConnection, instant_param, instant_value
from inventaire.enums import CredentialKind, CredentialState, DigestState
from inventaire.renewal import AlertPolicy
from inventaire.states import IN_SERVICE, PENDING, REPLACEMENT, is_outstanding, is_overdue


@dataclass(frozen=True)
class LastRun:
    kind: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    ok: bool | None  # None while running
    summary: str | None  # what the run recorded (counts), as stored


@dataclass(frozen=True)
class Dashboard:
    by_kind_state: dict[tuple[CredentialKind, CredentialState], int]
    holders: int
    # In-service credentials expiring in each of the next ``weeks`` weeks (week 0 starts
    # today), all kinds together and per kind.
    week_starts: tuple[dt.date, ...]
    expiring_per_week: tuple[int, ...]
    expiring_per_week_by_kind: dict[CredentialKind, tuple[int, ...]]
    expired_in_service: dict[CredentialKind, int]
    # In service, not replaced (nothing requested/received/active), expiring sooner than
    # the lead time: a gap is certain; per kind.
    predicted_gaps: dict[CredentialKind, int]
    order_late: dict[CredentialKind, int]  # order-by passed, nothing ordered, not expired
    requests_pending: dict[CredentialState, int]  # REQUESTED, RECEIVED replacements
    emergency_outstanding: int
    emergency_overdue: int
    alerts_sent_7d: int  # digests sent over the last 7 days
    alerts_failed_7d: int
    alerts_waiting: int
    last_run: LastRun | None


# How far back "sent" and "failed" digests are counted.
ALERTS_WINDOW = dt.timedelta(days=7)

_KINDS = {kind.value: kind for kind in CredentialKind}
_STATES = {state.value: state for state in CredentialState}


def _states(states: frozenset[CredentialState]) -> str:
    return ", ".join(f"'{state.value}'" for state in sorted(states))


def _one(connection: ReadConnection, sql: str, params: dict[str, Any]) -> Any:
    return next(iter(connection.rows(sql, params)))[0]


def counts_by_kind_state(
    connection: ReadConnection,
) -> dict[tuple[CredentialKind, CredentialState], int]:
    """How many credentials of each kind are in each state (from the tally; pairs with
    none are absent)."""
    rows = connection.rows("SELECT kind, state, total FROM credential_tally WHERE total > 0", {})
    return {(_KINDS[kind], _STATES[state]): int(total) for kind, state, total in rows}


def holders(connection: ReadConnection) -> int:
    """How many holders there are."""
    return int(_one(connection, "SELECT count(*) FROM holder", {}))


def expiring_by_kind_and_day(
    connection: ReadConnection, *, first: dt.date, last: dt.date
) -> Counter[tuple[CredentialKind, dt.date]]:
    """In-service credentials expiring from ``first`` to ``last`` (both included), by kind
    and day: a range of ``ix_credential_expiry``, which holds kind and state, grouped by
    day in the index's own order (no sort) with a count per kind."""
    kinds = list(CredentialKind)
    params: dict[str, Any] = {"first": first.isoformat(), "last": last.isoformat()}
    counts = []
    for index, kind in enumerate(kinds):
        params[f"kind{index}"] = kind.value
        counts.append(f"count(*) FILTER (WHERE kind = :kind{index}) AS n{index}")
    sql = f"""SELECT expires_on AS day, {", ".join(counts)} FROM credential
WHERE expires_on BETWEEN :first AND :last AND state IN ({_states(IN_SERVICE)})
GROUP BY expires_on"""
    columns = ["day", *(f"n{index}" for index in range(len(kinds)))]
    found: Counter[tuple[CredentialKind, dt.date]] = Counter()
    for day, *numbers in connection.packed_rows(sql, params, columns):
        for kind, n in zip(kinds, numbers, strict=True):
            if n:
                found[kind, _day(day)] = int(n)
    return found


def expired_in_service(connection: ReadConnection, *, today: dt.date) -> dict[CredentialKind, int]:
    """In-service credentials whose expiry has passed, by kind (every kind)."""
    sql = f"""SELECT kind, count(*) FROM credential
WHERE expires_on < :today AND state IN ({_states(IN_SERVICE)})
GROUP BY kind"""
    found = {_KINDS[kind]: int(n) for kind, n in connection.rows(sql, {"today": today.isoformat()})}
    return {kind: found.get(kind, 0) for kind in CredentialKind}


def renewal_urgencies(
    connection: ReadConnection, *, today: dt.date, renewal: Renewal
) -> Counter[tuple[CredentialKind, Urgency]]:
    """In-service credentials not replaced, not expired, whose order-by date has passed
    (the only ones that can be late or in a certain gap), by kind and urgency: per kind a
    range of expiries up to today + lead time + margin."""
    params: dict[str, Any] = {"today": today.isoformat()}
    ranges = []
    widest = today
    for index, (kind, lead) in enumerate(sorted(renewal.lead_days.items())):
        until = today + dt.timedelta(days=lead + renewal.margin_days)
        widest = max(widest, until)
        params[f"kind{index}"], params[f"until{index}"] = kind.value, until.isoformat()
        ranges.append(f"(c.kind = :kind{index} AND c.expires_on <= :until{index})")
    if not ranges:
        return Counter()
    params["widest"] = widest.isoformat()
    sql = f"""SELECT c.kind AS kind, c.expires_on AS day, count(*) AS n FROM credential c
WHERE c.expires_on BETWEEN :today AND :widest
  AND c.state IN ({_states(IN_SERVICE)})
  AND ({" OR ".join(ranges)})
  AND NOT EXISTS (SELECT 1 FROM credential r
                  WHERE r.replaces_id = c.id AND r.state IN ({_states(REPLACEMENT)}))
GROUP BY c.kind, c.expires_on"""
    policy = AlertPolicy(lead_days=renewal.lead_days, margin_days=renewal.margin_days)
    found: Counter[tuple[CredentialKind, Urgency]] = Counter()
    for kind_value, day, n in connection.packed_rows(sql, params, ["kind", "day", "n"]):
        kind = _KINDS[kind_value]
        expires_on = _day(day)
        level = urgency(
            policy, kind, CredentialState.ACTIVE, expires_on, today=today, replaced=False
        )
        found[kind, level] += int(n)
    return found


def emergency_figures(connection: ReadConnection, *, today: dt.date) -> tuple[int, int]:
    """Emergency cards still out, and those of them past their planned return date."""
    # Through ix_emergency_issuance_returned_on: the cards given back are not read.
    sql = """SELECT c.state, e.return_due_on
FROM emergency_issuance e JOIN credential c ON c.id = e.credential_id
WHERE e.returned_on IS NULL"""
    outstanding = overdue = 0
    for state, due in connection.rows(sql, {}):
        card_state = _STATES[state]
        outstanding += is_outstanding(None, card_state)
        overdue += is_overdue(None, card_state, _day(due), today=today)
    return outstanding, overdue


def alert_figures(connection: ReadConnection, *, now: dt.datetime) -> tuple[int, int, int]:
    """Digests sent and failed over the last 7 days, and those still to send.

    A failed digest records no date of failure: the instant a sender last took it
    (``claimed_at``) is when it failed."""
    since = instant_param(connection.dialect, now - ALERTS_WINDOW)
    sent = _one(connection, "SELECT count(*) FROM digest WHERE sent_at >= :since", {"since": since})
    failed = _one(
        connection,
        "SELECT count(*) FROM digest WHERE state = :failed "
        "AND coalesce(claimed_at, created_at) >= :since",
        {"failed": DigestState.FAILED.value, "since": since},
    )
    waiting = _one(
        connection,
        "SELECT count(*) FROM digest WHERE state IN (:pending, :sending)",
        {"pending": DigestState.PENDING.value, "sending": DigestState.SENDING.value},
    )
    return int(sent), int(failed), int(waiting)


def last_run(connection: ReadConnection) -> LastRun | None:
    """The latest run of the backing service (or of a command that records runs)."""
    sql = """SELECT kind, started_at, finished_at, ok, summary FROM service_run
ORDER BY started_at DESC, id DESC LIMIT 1"""
    for kind, started_at, finished_at, ok, summary in connection.rows(sql, {}):
        started = instant_value(started_at)
        assert started is not None
        return LastRun(
            kind=kind,
            started_at=started,
            finished_at=instant_value(finished_at),
            ok=None if finished_at is None else bool(ok),
            summary=summary,
        )
    return None


def compute(
    connection: ReadConnection,
    *,
    today: dt.date,
    now: dt.datetime,
    renewal: Renewal,
    weeks: int = 26,
) -> Dashboard:
    """The dashboard's figures."""
    by_kind_state = counts_by_kind_state(connection)
    week_starts = tuple(today + dt.timedelta(weeks=week) for week in range(weeks))
    expiring = expiring_by_kind_and_day(
        connection, first=today, last=today + dt.timedelta(weeks=weeks, days=-1)
    )
    per_kind = {kind: [0] * weeks for kind in CredentialKind}
    for (kind, day), n in expiring.items():
        per_kind[kind][(day - today).days // 7] += n
    urgencies = renewal_urgencies(connection, today=today, renewal=renewal)
    outstanding, overdue = emergency_figures(connection, today=today)
    sent, failed, waiting = alert_figures(connection, now=now)
    return Dashboard(
        by_kind_state=by_kind_state,
        holders=holders(connection),
        week_starts=week_starts,
        expiring_per_week=tuple(sum(column) for column in zip(*per_kind.values(), strict=True)),
        expiring_per_week_by_kind={kind: tuple(values) for kind, values in per_kind.items()},
        expired_in_service=expired_in_service(connection, today=today),
        predicted_gaps={kind: urgencies[kind, Urgency.GAP] for kind in CredentialKind},
        order_late={kind: urgencies[kind, Urgency.ORDER_LATE] for kind in CredentialKind},
        requests_pending={
            state: sum(n for (_, s), n in by_kind_state.items() if s is state)
            for state in sorted(PENDING)
        },
        emergency_outstanding=outstanding,
        emergency_overdue=overdue,
        alerts_sent_7d=sent,
        alerts_failed_7d=failed,
        alerts_waiting=waiting,
        last_run=last_run(connection),
    )


def _day(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)  # SQLite returns dates as ISO text
