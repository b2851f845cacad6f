"""The renewal plan (DESIGN §4): what to order, by when, and the gaps ahead.

For every credential in service (active or suspended) with a known expiry and not yet
replaced, the plan gives its order-by date and predicted gap (``inventaire.renewal``), and
where its replacement stands. A replacement is a credential whose ``replaces_id`` points
to it: once one is in service, the old credential is renewed and leaves the plan.

Plain SQL on a DB-API connection (``inventaire.dbapi``), valid on SQLite and PostgreSQL,
so that ``cartes plan`` does not import SQLAlchemy. The order-by date only depends on the
expiry and the kind, so the window of the plan is a range of expiries per kind, read from
the ``ix_credential_expiry`` index; replacements are found through the index on
``credential.replaces_id``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from operator import attrgetter
from typing import Any, NamedTuple

from inventaire.dbapi import ReadConnection, days_between_sql
from inventaire.enums import CredentialKind, CredentialState
from inventaire.renewal import RenewalOutlook, outlook
from inventaire.states import IN_SERVICE

S = CredentialState

# Measured lead times look back this far (DESIGN §4: "so the plan can follow reality").
MEASURE_WINDOW_DAYS = 730


class Replacement(StrEnum):
    """Where the replacement of a credential stands."""

    NONE = "NONE"  # nothing ordered
    REQUESTED = "REQUESTED"  # a replacement is ordered (state REQUESTED)
    RECEIVED = "RECEIVED"  # a replacement has arrived at the IT service (state RECEIVED)


class PlanLine(NamedTuple):
    """One credential of the renewal plan (a named tuple: a plan can have tens of
    thousands of lines)."""

    id: int
    kind: CredentialKind
    state: CredentialState
    serial: str | None
    expires_on: dt.date
    days_left: int  # negative once expired
    order_by: dt.date  # expiry − lead time − safety margin
    order_late: bool  # the order-by date has passed
    replacement: Replacement
    requested_on: dt.date | None  # of the replacement, when one is requested
    arrival: dt.date  # predicted arrival of the replacement (ordered today if none is)
    gap_days: int  # days between expiry and arrival, when positive (0: no gap)
    first_name: str
    last_name: str
    email: str
    organisation: str


@dataclass(frozen=True, slots=True)
class MeasuredLead:
    """The lead time observed for one kind: median of request → receipt, in days."""

    median_days: float
    cases: int


def predicted_arrival(
    replacement: Replacement,
    *,
    today: dt.date,
    lead_days: int,
    requested_on: dt.date | None = None,
) -> dt.date:
    """When a replacement can be in hand: today once received; the request day plus the
    lead time once requested (not before today); today plus the lead time otherwise.

    A request without a known date counts as made today: the most cautious guess.
    """
    lead = dt.timedelta(days=lead_days)
    if replacement is Replacement.RECEIVED:
        return today
    if replacement is Replacement.REQUESTED and requested_on is not None:
        return max(today, requested_on + lead)
    return today + lead


_KINDS = {kind.value: kind for kind in CredentialKind}
_STATES = {state.value: state for state in CredentialState}
_FOLLOWING = (S.REQUESTED, S.RECEIVED, *sorted(IN_SERVICE))


def plan_sql(
    *,
    today: dt.date,
    lead_days: Mapping[CredentialKind, int],
    margin_days: int,
    within_days: int,
    kinds: Iterable[CredentialKind] = (),
    organisation_id: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters that read the candidates of the plan: credentials in
    service whose order-by date is at most ``today + within_days``, each with its
    replacements that are requested, received or in service (one row per replacement,
    or one row with NULLs when there is none)."""
    selected = tuple(dict.fromkeys(kinds)) or tuple(CredentialKind)
    missing = [kind.value for kind in selected if kind not in lead_days]
    if missing:
        raise ValueError(f"no lead time for {', '.join(missing)}")
    params: dict[str, Any] = {}
    # order_by <= today + within  <=>  expires_on <= today + within + lead + margin
    ranges: list[str] = []
    widest = today
    for index, kind in enumerate(selected):
        until = today + dt.timedelta(days=within_days + lead_days[kind] + margin_days)
        widest = max(widest, until)
        params[f"kind{index}"] = kind.value
        params[f"until{index}"] = until.isoformat()
        ranges.append(f"(c.kind = :kind{index} AND c.expires_on <= :until{index})")
    # The widest bound alone is the range read on the index; the per-kind bounds are
    # checked on its entries (kind is a column of the covering index).
    params["until"] = widest.isoformat()

    def among(name: str, values: Iterable[CredentialState]) -> str:
        names = []
        for index, value in enumerate(values):
            params[f"{name}{index}"] = value.value
            names.append(f":{name}{index}")
        return f"({', '.join(names)})"

    in_service = among("in_service", sorted(IN_SERVICE))
    following = among("following", _FOLLOWING)
    where = [
        "c.expires_on <= :until",
        f"c.state IN {in_service}",
        "(" + " OR ".join(ranges) + ")",
    ]
    if organisation_id is not None:
        where.append("h.organisation_id = :organisation_id")
        params["organisation_id"] = organisation_id
    sql = f"""SELECT c.id, c.kind, c.state, c.serial, c.expires_on,
       h.first_name, h.last_name, h.email, o.short_name,
       r.state, r.requested_on
FROM credential c
JOIN holder h ON h.id = c.holder_id
JOIN organisation o ON o.id = h.organisation_id
LEFT JOIN credential r ON r.replaces_id = c.id AND r.state IN {following}
WHERE {" AND ".join(where)}"""
    return sql, params


def renewal_plan(
    connection: ReadConnection,
    *,
    today: dt.date,
    lead_days: Mapping[CredentialKind, int],
    margin_days: int,
    within_days: int = 60,
    kinds: Iterable[CredentialKind] = (),
    organisation_id: int | None = None,
) -> list[PlanLine]:
    """The renewal plan: credentials in service, not yet replaced, whose order-by date is
    at most ``today + within_days`` (already late and expired ones included), the most
    urgent first (order-by date, then expiry, then id).

    ``lead_days`` gives the lead time of every kind planned (``kinds``, or all kinds when
    empty); ``ValueError`` if one is missing.
    """
    sql, params = plan_sql(
        today=today,
        lead_days=lead_days,
        margin_days=margin_days,
        within_days=within_days,
        kinds=kinds,
        organisation_id=organisation_id,
    )
    candidates: dict[int, Sequence[Any]] = {}
    followers: dict[int, list[tuple[CredentialState, dt.date | None]]] = defaultdict(list)
    for row in connection.rows(sql, params):
        candidates.setdefault(row[0], row)
        if row[9] is not None:  # a replacement, through the LEFT JOIN
            followers[row[0]].append((_STATES[row[9]], _day(row[10])))
    # Thousands of credentials share an expiry day: one outlook per day and kind.
    outlooks: dict[tuple[Any, CredentialKind], RenewalOutlook] = {}
    ordered_today = {
        kind: predicted_arrival(Replacement.NONE, today=today, lead_days=lead)
        for kind, lead in lead_days.items()
    }
    lines = []
    for credential_id, row in candidates.items():
        replacements = followers.get(credential_id)
        if replacements and any(state in IN_SERVICE for state, _ in replacements):
            continue  # renewed: the replacement is in service
        kind = _KINDS[row[1]]
        base = outlooks.get((row[4], kind))
        if base is None:
            expiry = _day(row[4])
            assert expiry is not None  # NULL expiries never pass the range
            base = outlook(expiry, today=today, lead_days=lead_days[kind], margin_days=margin_days)
            outlooks[row[4], kind] = base
        if replacements:
            status, requested_on, arrival = best_replacement(
                replacements, today=today, lead=lead_days[kind]
            )
            gap_days = max(0, (arrival - base.expires_on).days)
        else:
            status, requested_on, gap_days = Replacement.NONE, None, base.predicted_gap_days
            arrival = ordered_today[kind]
        lines.append(
            PlanLine(
                int(credential_id),
                kind,
                _STATES[row[2]],
                row[3],
                base.expires_on,
                base.days_left,
                base.order_by,
                base.order_late,
                status,
                requested_on,
                arrival,
                gap_days,
                row[5],
                row[6],
                row[7],
                row[8],
            )
        )
    lines.sort(key=attrgetter("order_by", "expires_on", "id"))
    return lines


def best_replacement(
    replacements: list[tuple[CredentialState, dt.date | None]], *, today: dt.date, lead: int
) -> tuple[Replacement, dt.date | None, dt.date]:
    """The status, request day and arrival of the replacement that will arrive first
    (a received one before a requested one on the same day)."""
    if not replacements:
        return Replacement.NONE, None, today + dt.timedelta(days=lead)
    candidates: list[tuple[dt.date, int, Replacement, dt.date | None]] = []
    for state, requested_on in replacements:
        if state is S.RECEIVED:
            candidates.append((today, 0, Replacement.RECEIVED, None))
        else:
            arrival = predicted_arrival(
                Replacement.REQUESTED, today=today, lead_days=lead, requested_on=requested_on
            )
            candidates.append((arrival, 1, Replacement.REQUESTED, requested_on))
    arrival, _, status, requested_on = min(candidates, key=lambda c: (c[0], c[1]))
    return status, requested_on, arrival


def measured_lead_times(
    connection: ReadConnection, *, today: dt.date
) -> dict[CredentialKind, MeasuredLead]:
    """The observed lead time of each kind: the median number of days from request to
    receipt, over the credentials requested in the last two years (730 days, today
    included) with both dates known, and the number of those cases. Kinds without any
    case are absent; a receipt dated before its request (an input error) is left out.
    """
    days = days_between_sql(connection.dialect, "received_on", "requested_on")
    # A histogram per kind, not one row per credential: a few hundred rows at most.
    sql = f"""SELECT kind, {days} AS days, COUNT(*)
FROM credential
WHERE requested_on >= :since AND requested_on <= :today
  AND received_on IS NOT NULL AND received_on >= requested_on
GROUP BY kind, {days}"""
    params = {
        "since": (today - dt.timedelta(days=MEASURE_WINDOW_DAYS)).isoformat(),
        "today": today.isoformat(),
    }
    histograms: dict[CredentialKind, dict[int, int]] = defaultdict(dict)
    for kind, value, count in connection.rows(sql, params):
        histograms[_KINDS[kind]][int(value)] = int(count)
    measured = {}
    for kind, histogram in histograms.items():
        middle = median(histogram)
        assert middle is not None  # a kind is in the histograms only with a case
        measured[kind] = MeasuredLead(median_days=middle, cases=sum(histogram.values()))
    return measured


def median(histogram: Mapping[int, int]) -> float | None:
    """The median of values given with their number of occurrences (the mean of the two
    middle ones for an even count); None when there is none."""
    total = sum(histogram.values())
    if not total:
        return None
    low_rank, high_rank = (total - 1) // 2, total // 2
    low: int | None = None
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if low is None and seen > low_rank:
            low = value
        if seen > high_rank:
            assert low is not None
            return (low + value) / 2
    raise AssertionError("unreachable: the ranks are below the total")


def _day(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)  # SQLite returns dates as ISO text
