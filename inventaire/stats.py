"""Statistics for the follow-up meetings (DESIGN §1, issue 8): per organisation and kind of
credential, with totals per organisation, per kind and overall.

Definitions, all relative to the reference day ``today`` (``cartes stats --au D``) over
the inventory as it is recorded now (states are the current ones; records dated after
``today`` did not exist yet on that day and are left out):

- *in service*: state ACTIVE or SUSPENDED;
- *expiring within N days* (N = 30, 60, 90): in service with
  ``today <= expires_on <= today + N``;
- *expired and still in service*: in service with ``expires_on < today``;
- *predicted gaps*: the lines of the renewal plan (``inventaire.plan.renewal_plan``: in
  service, not yet replaced) whose predicted gap is positive: their number, the sum of
  their gap days and the longest one;
- *requests pending*: credentials in state REQUESTED or RECEIVED with a request date on
  or before ``today``; the median of their age in days (``today − requested_on``);
- *measured lead time*: the median and the number of cases of ``received_on −
  requested_on`` in days, over the credentials requested in the last two years, with the
  rules of ``inventaire.plan.measured_lead_times`` (per organisation and kind here);
- *emergency cards* (``EmergencyIssuance`` issued on or before ``today``): *outstanding*
  when not returned and the card is still in service (as ``inventaire.emergency``: a card
  recorded lost, damaged or revoked is no longer out there to take back); *to take back*
  when outstanding and the request it bridges (``request_id``) is ACTIVE, i.e. the new
  card was handed over; *overdue* when outstanding and ``return_due_on < today``.

An emergency card counts under its own kind (an agent card) and the organisation of the
holder who received it. Medians of a total are computed over all its cases, not from the
medians of its parts.

Plain SQL on a DB-API connection (``inventaire.dbapi``), valid on SQLite and PostgreSQL,
so ``cartes stats`` does not import SQLAlchemy: one grouped query per family of figures
(not one per organisation), each reading the credential table once.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from inventaire.dbapi import ReadConnection, days_between_sql
from inventaire.enums import CredentialKind, CredentialState
from inventaire.plan import IN_SERVICE, MEASURE_WINDOW_DAYS, median, renewal_plan
from inventaire.vocabulary import fold

S = CredentialState

HORIZONS = (30, 60, 90)
"""The horizons of the *expiring within N days* figures."""

PENDING = (S.REQUESTED, S.RECEIVED)
"""The states of a request not yet handed over."""


@dataclass(frozen=True, slots=True)
class Figures:
    """The figures of one group (an organisation and kind, or a total).

    A median is None when there is no case to take it from.
    """

    in_service: int = 0
    expiring_30: int = 0
    expiring_60: int = 0
    expiring_90: int = 0
    expired_in_service: int = 0
    gaps: int = 0  # plan lines with a positive predicted gap
    gap_days_total: int = 0
    gap_days_max: int = 0
    requests_pending: int = 0
    request_age_median_days: float | None = None
    lead_time_median_days: float | None = None
    lead_time_cases: int = 0
    emergency_outstanding: int = 0
    emergency_to_take_back: int = 0
    emergency_overdue: int = 0

    def is_empty(self) -> bool:
        """True when every figure is zero or unknown."""
        return not any(getattr(self, name) for name in FIGURE_NAMES)


FIGURE_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Figures))
"""The names of the figures, in their documented order."""

# Figures that add up from the parts to a total.
_ADDITIVE = tuple(
    name
    for name in FIGURE_NAMES
    if name not in {"gap_days_max", "request_age_median_days", "lead_time_median_days"}
)


class Group(NamedTuple):
    """One group of the statistics: ``organisation`` or ``kind`` is None in a total over
    all organisations or all kinds (both None: the overall total)."""

    organisation: str | None
    kind: CredentialKind | None
    figures: Figures


@dataclass(frozen=True)
class Statistics:
    """The statistics of the inventory as of ``today``.

    ``cells`` holds the (organisation short name, kind) pairs with at least one non-zero
    figure; ``by_organisation`` the organisations among them; ``by_kind`` every kind.
    """

    today: dt.date
    lead_days: Mapping[CredentialKind, int]
    margin_days: int
    cells: dict[tuple[str, CredentialKind], Figures]
    by_organisation: dict[str, Figures]
    by_kind: dict[CredentialKind, Figures]
    overall: Figures

    def groups(self) -> Iterator[Group]:
        """Every group in reading order: each organisation (alphabetically) with its kinds
        then its total, then the total of each kind, then the overall total."""
        for organisation in self.by_organisation:
            for kind in CredentialKind:
                cell = self.cells.get((organisation, kind))
                if cell is not None:
                    yield Group(organisation, kind, cell)
            yield Group(organisation, None, self.by_organisation[organisation])
        for kind, figures in self.by_kind.items():
            yield Group(None, kind, figures)
        yield Group(None, None, self.overall)


@dataclass
class _Tally:
    """Figures being gathered: additive counts, the longest gap, and histograms (value →
    number of cases) from which the medians are taken."""

    counts: Counter[str] = field(default_factory=Counter)
    gap_max: int = 0
    request_ages: Counter[int] = field(default_factory=Counter)
    lead_times: Counter[int] = field(default_factory=Counter)

    def merge(self, other: _Tally) -> None:
        self.counts.update(other.counts)
        self.gap_max = max(self.gap_max, other.gap_max)
        self.request_ages.update(other.request_ages)
        self.lead_times.update(other.lead_times)

    def figures(self) -> Figures:
        counts = {name: self.counts.get(name, 0) for name in _ADDITIVE}
        counts["requests_pending"] = sum(self.request_ages.values())
        counts["lead_time_cases"] = sum(self.lead_times.values())
        return Figures(
            **counts,
            gap_days_max=self.gap_max,
            request_age_median_days=median(self.request_ages),
            lead_time_median_days=median(self.lead_times),
        )


def compute(
    connection: ReadConnection,
    *,
    today: dt.date,
    lead_days: Mapping[CredentialKind, int],
    margin_days: int,
) -> Statistics:
    """The statistics of the inventory as of ``today`` (see the module's docstring for
    what each figure counts).

    ``lead_days`` (the configured lead time of every kind) and ``margin_days`` (the safety
    margin) are those of the renewal plan, from which the predicted gaps come.
    """
    names = {
        int(organisation_id): short_name
        for organisation_id, short_name in connection.rows(
            "SELECT id, short_name FROM organisation", {}
        )
    }
    tallies: dict[tuple[str, CredentialKind], _Tally] = {}

    def tally(organisation: Any, kind: str) -> _Tally:
        key = (names[int(organisation)], _KINDS[kind])
        found = tallies.get(key)
        if found is None:
            found = tallies[key] = _Tally()
        return found

    sql, params = _in_service_sql(connection.dialect, today)
    for organisation, kind, total, *expiring, expired in connection.rows(sql, params):
        counts = tally(organisation, kind).counts
        counts["in_service"] += int(total)
        for horizon, number in zip(HORIZONS, expiring, strict=True):
            counts[f"expiring_{horizon}"] += int(number)
        counts["expired_in_service"] += int(expired)

    sql, params = _request_ages_sql(connection.dialect, today)
    for organisation, kind, age, number in connection.rows(sql, params):
        tally(organisation, kind).request_ages[int(age)] += int(number)

    sql, params = _lead_times_sql(connection.dialect, today)
    for organisation, kind, days, number in connection.rows(sql, params):
        tally(organisation, kind).lead_times[int(days)] += int(number)

    sql, params = _emergency_sql(today)
    for organisation, kind, outstanding, to_take_back, overdue in connection.rows(sql, params):
        counts = tally(organisation, kind).counts
        counts["emergency_outstanding"] += int(outstanding)
        counts["emergency_to_take_back"] += int(to_take_back)
        counts["emergency_overdue"] += int(overdue)

    # The plan's own lines, not a re-derivation, in the narrowest window that holds every
    # gap: a positive gap needs an expiry before the replacement's arrival, which is at
    # most today + lead time (for a replacement requested by today); so the expiry is at
    # most today + lead − 1 and the order-by date (expiry − lead − margin) at most
    # today − margin − 1.
    for line in renewal_plan(
        connection,
        today=today,
        lead_days=lead_days,
        margin_days=margin_days,
        within_days=-margin_days - 1,
    ):
        if line.gap_days > 0:
            key = (line.organisation, line.kind)
            gathered = tallies.get(key)
            if gathered is None:
                gathered = tallies[key] = _Tally()
            gathered.counts["gaps"] += 1
            gathered.counts["gap_days_total"] += line.gap_days
            gathered.gap_max = max(gathered.gap_max, line.gap_days)

    return _assemble(tallies, today=today, lead_days=lead_days, margin_days=margin_days)


def _assemble(
    tallies: Mapping[tuple[str, CredentialKind], _Tally],
    *,
    today: dt.date,
    lead_days: Mapping[CredentialKind, int],
    margin_days: int,
) -> Statistics:
    cells: dict[tuple[str, CredentialKind], Figures] = {}
    per_organisation: dict[str, _Tally] = {}
    per_kind = {kind: _Tally() for kind in CredentialKind}
    overall = _Tally()
    for (organisation, kind), gathered in sorted(
        tallies.items(), key=lambda item: (fold(item[0][0]), list(CredentialKind).index(item[0][1]))
    ):
        figures = gathered.figures()
        if figures.is_empty():
            continue
        cells[organisation, kind] = figures
        per_organisation.setdefault(organisation, _Tally()).merge(gathered)
        per_kind[kind].merge(gathered)
        overall.merge(gathered)
    return Statistics(
        today=today,
        lead_days=dict(lead_days),
        margin_days=margin_days,
        cells=cells,
        by_organisation={name: t.figures() for name, t in per_organisation.items()},
        by_kind={kind: t.figures() for kind, t in per_kind.items()},
        overall=overall.figures(),
    )


_KINDS = {kind.value: kind for kind in CredentialKind}


def _states(params: dict[str, Any], name: str, states: tuple[CredentialState, ...]) -> str:
    """``(:name0, :name1...)`` with the state names added to ``params``."""
    placeholders = []
    for index, state in enumerate(states):
        params[f"{name}{index}"] = state.value
        placeholders.append(f":{name}{index}")
    return f"({', '.join(placeholders)})"


def _in_service_sql(dialect: str, today: dt.date) -> tuple[str, dict[str, Any]]:
    """Credentials in service per organisation and kind: all, expiring within each
    horizon, expired."""
    params: dict[str, Any] = {"today": today.isoformat()}
    expiring = []
    for horizon in HORIZONS:
        params[f"until{horizon}"] = (today + dt.timedelta(days=horizon)).isoformat()
        expiring.append(
            f"SUM(CASE WHEN c.expires_on >= :today AND c.expires_on <= :until{horizon} "
            "THEN 1 ELSE 0 END)"
        )
    in_service = _states(params, "in_service", tuple(sorted(IN_SERVICE)))
    # SQLite would read the covering expiry index, in expiry order, and then look each
    # holder up in random order: three times slower than reading the table in id order,
    # where holders come roughly in their own order (both read every credential).
    scan = " NOT INDEXED" if dialect == "sqlite" else ""
    sql = f"""SELECT h.organisation_id, c.kind, COUNT(*),
       {", ".join(expiring)},
       SUM(CASE WHEN c.expires_on < :today THEN 1 ELSE 0 END)
FROM credential c{scan}
JOIN holder h ON h.id = c.holder_id
WHERE c.state IN {in_service}
GROUP BY h.organisation_id, c.kind"""
    return sql, params


def _request_ages_sql(dialect: str, today: dt.date) -> tuple[str, dict[str, Any]]:
    """A histogram of the age in days of pending requests, per organisation and kind."""
    params: dict[str, Any] = {"today": today.isoformat()}
    pending = _states(params, "pending", PENDING)
    age = days_between_sql(dialect, ":today", "c.requested_on")
    sql = f"""SELECT h.organisation_id, c.kind, {age}, COUNT(*)
FROM credential c
JOIN holder h ON h.id = c.holder_id
WHERE c.state IN {pending} AND c.requested_on IS NOT NULL AND c.requested_on <= :today
GROUP BY h.organisation_id, c.kind, {age}"""
    return sql, params


def _lead_times_sql(dialect: str, today: dt.date) -> tuple[str, dict[str, Any]]:
    """A histogram of request → receipt in days, per organisation and kind, with the
    window and rules of ``inventaire.plan.measured_lead_times``."""
    days = days_between_sql(dialect, "c.received_on", "c.requested_on")
    sql = f"""SELECT h.organisation_id, c.kind, {days}, COUNT(*)
FROM credential c
JOIN holder h ON h.id = c.holder_id
WHERE c.requested_on >= :since AND c.requested_on <= :today
  AND c.received_on IS NOT NULL AND c.received_on >= c.requested_on
GROUP BY h.organisation_id, c.kind, {days}"""
    params = {
        "since": (today - dt.timedelta(days=MEASURE_WINDOW_DAYS)).isoformat(),
        "today": today.isoformat(),
    }
    return sql, params


def _emergency_sql(today: dt.date) -> tuple[str, dict[str, Any]]:
    """Outstanding emergency cards per organisation (of their holder) and kind: all, to
    take back (the request they bridge is active), overdue."""
    params: dict[str, Any] = {"today": today.isoformat(), "active": S.ACTIVE.value}
    in_service = _states(params, "in_service", tuple(sorted(IN_SERVICE)))
    sql = f"""SELECT h.organisation_id, c.kind, COUNT(*),
       SUM(CASE WHEN r.state = :active THEN 1 ELSE 0 END),
       SUM(CASE WHEN e.return_due_on < :today THEN 1 ELSE 0 END)
FROM emergency_issuance e
JOIN credential c ON c.id = e.credential_id
JOIN holder h ON h.id = e.holder_id
LEFT JOIN credential r ON r.id = e.request_id
WHERE e.returned_on IS NULL AND e.issued_on <= :today AND c.state IN {in_service}
GROUP BY h.organisation_id, c.kind"""
    return sql, params
