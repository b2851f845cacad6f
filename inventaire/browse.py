"""The inventory a page at a time: the query behind the TUI's inventory screen.

Plain SQL on a DB-API connection (``inventaire.dbapi``), valid on SQLite and PostgreSQL;
never more than one page of rows in memory. The text filter is ``inventaire.search``'s,
the same as ``cartes liste --recherche``.

Pages are asked for by offset. The page's ids are found first, on as few tables as the
filter and the order need (skipped rows cost an index entry, not a join), then the page's
rows are read by id; urgency and order-by date are computed for those rows only, with the
renewal rules of ``inventaire.renewal``, and the replacements of the page's credentials
read through the index on ``credential.replaces_id``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from inventaire import search
from inventaire.dbapi import ReadConnection
from inventaire.enums import AlertLevel, CardModel, CredentialKind, CredentialState
from inventaire.renewal import AlertPolicy, due_level
from inventaire.states import IN_SERVICE, REPLACEMENT


class SortKey(StrEnum):
    """Columns the inventory can be sorted by (ties broken by id)."""

    EXPIRY = "EXPIRY"  # unknown expiries last
    HOLDER = "HOLDER"  # last name, first name (then holder, then credential id)
    KIND = "KIND"
    STATE = "STATE"
    ORGANISATION = "ORGANISATION"
    ID = "ID"


class Urgency(StrEnum):
    """How urgent a credential is, for colouring a row (most urgent first)."""

    EXPIRED = "EXPIRED"  # in service and past its expiry
    GAP = "GAP"  # in service, not replaced, expiry sooner than the lead time: a gap is certain
    ORDER_LATE = "ORDER_LATE"  # in service, not replaced, order-by date passed
    NONE = "NONE"


@dataclass(frozen=True)
class InventoryQuery:
    """What the inventory screen asks for; empty means no filter.

    ``text`` is matched accent- and case-insensitively against the holder's names and
    e-mail, the credential's serial and the organisation's names; several words must all
    match. ``expires_within`` keeps expiries between today and today + N days.
    """

    text: str = ""
    kinds: tuple[CredentialKind, ...] = ()
    states: tuple[CredentialState, ...] = ()
    expires_within: int | None = None
    sort: SortKey = SortKey.EXPIRY
    descending: bool = False


class InventoryRow(NamedTuple):
    id: int
    kind: CredentialKind
    model: CardModel | None
    state: CredentialState
    serial: str | None
    expires_on: dt.date | None
    days_left: int | None
    order_by: dt.date | None  # None when not in service or expiry unknown
    urgency: Urgency
    holder_id: int
    last_name: str
    first_name: str
    email: str
    organisation: str


@dataclass(frozen=True)
class Renewal:
    """Lead time per kind and safety margin (``[renewal]``), for order-by and urgency."""

    lead_days: Mapping[CredentialKind, int]
    margin_days: int


def page(
    connection: ReadConnection,
    query: InventoryQuery,
    *,
    today: dt.date,
    renewal: Renewal,
    offset: int,
    limit: int,
) -> list[InventoryRow]:
    """Rows ``offset`` to ``offset + limit`` of the inventory under ``query``."""
    if limit <= 0:
        return []
    text = search.condition(connection, query.text)
    where, params, tables = _where(query, today, text)
    order, order_tables = _ORDER[query.sort]
    direction = " DESC" if query.descending else ""
    terms = ", ".join(term.format(dir=direction) for term in order)
    params.update({"page_limit": limit, "page_offset": max(offset, 0)})
    sql = f"""SELECT c.id AS id FROM credential c{_joins(tables | order_tables)}{where}
ORDER BY {terms}
LIMIT :page_limit OFFSET :page_offset"""
    ids = [int(row[0]) for row in connection.packed_rows(sql, params, ["id"])]
    if not ids:
        return []
    rows = _rows(connection, ids)
    replaced = _replaced(connection, [row[0] for row in rows.values() if row[3] in _IN_SERVICE])
    policy = AlertPolicy(lead_days=renewal.lead_days, margin_days=renewal.margin_days)
    return [_row(rows[id_], today, policy, id_ in replaced) for id_ in ids if id_ in rows]


def count(
    connection: ReadConnection,
    query: InventoryQuery,
    *,
    today: dt.date,
    at_most: int | None = None,
) -> int:
    """How many credentials ``query`` selects; with ``at_most``, stop counting there
    (``at_most`` then means "that many or more": a filter of one common letter selects
    most of a million credentials, and counting them all takes seconds)."""
    if not query.text.strip() and query.expires_within is None:
        # Kinds and states only: the tally kept by triggers, not a scan.
        total = sum(
            int(n)
            for kind, state, n in connection.rows(
                "SELECT kind, state, total FROM credential_tally", {}
            )
            if (not query.kinds or _KINDS[kind] in query.kinds)
            and (not query.states or _STATES[state] in query.states)
        )
        return total if at_most is None else min(total, at_most)
    if at_most is None:
        # A full count reads every match: from the index's table, short words included.
        text = search.condition(connection, query.text, probe=None, every_word=True)
        where, params, tables = _where(query, today, text)
        sql = f"SELECT count(*) FROM credential c{_joins(tables)}{where}"
        return int(next(iter(connection.rows(sql, params)))[0])
    text = search.condition(connection, query.text, probe=None, narrow=True)
    if text is None or not text.indexed:
        # Short words only: checked row by row, until ``at_most`` rows are found.
        where, params, tables = _where(query, today, text)
        sql = f"SELECT c.id FROM credential c{_joins(tables)}{where}"
    else:
        # Read from the index, joined to the credentials, until ``at_most`` are found: a
        # common word stops early instead of collecting every id first.
        rest = search.TextCondition(text.other_sql, text.params) if text.other_sql else None
        where, params, tables = _where(query, today, rest)
        params.update(text.params)
        key = "rowid" if connection.dialect == "sqlite" else "credential_id"
        # CROSS JOIN: SQLite keeps the index's table as the outer loop.
        join = "CROSS JOIN" if connection.dialect == "sqlite" else "JOIN"
        assert text.index_query is not None
        index_query = text.index_query.replace(f"SELECT s.{key} ", f"SELECT s.{key} AS id ", 1)
        sql = (
            f"SELECT c.id FROM ({index_query}) AS m {join} credential c ON c.id = m.id"
            f"{_joins(tables)}{where}"
        )
    params["at_most"] = at_most
    sql = f"SELECT count(*) FROM ({sql}\nLIMIT :at_most) AS selected"
    return int(next(iter(connection.rows(sql, params)))[0])


_KINDS = {kind.value: kind for kind in CredentialKind}
_STATES = {state.value: state for state in CredentialState}
_MODELS = {model.value: model for model in CardModel}
_IN_SERVICE = frozenset(state.value for state in IN_SERVICE)
_REPLACEMENT = ", ".join(f"'{state.value}'" for state in sorted(REPLACEMENT))

# Per sort key: the ORDER BY terms ({dir}: " DESC" or nothing) and the tables they need.
_ORDER: dict[SortKey, tuple[tuple[str, ...], frozenset[str]]] = {
    # NULLS LAST either way: both databases read it from ix_credential_expiry.
    SortKey.EXPIRY: (("c.expires_on{dir} NULLS LAST", "c.id{dir}"), frozenset()),
    # Holders in name order (ix_holder_name), then each one's credentials: h.id before
    # c.id keeps the order the indexes give, so nothing is sorted.
    SortKey.HOLDER: (
        ("h.last_name{dir}", "h.first_name{dir}", "h.id{dir}", "c.id{dir}"),
        frozenset({"h"}),
    ),
    SortKey.KIND: (("c.kind{dir}", "c.id{dir}"), frozenset()),
    SortKey.STATE: (("c.state{dir}", "c.id{dir}"), frozenset()),
    SortKey.ORGANISATION: (("o.short_name{dir}", "c.id{dir}"), frozenset({"h", "o"})),
    SortKey.ID: (("c.id{dir}",), frozenset()),
}


def _where(
    query: InventoryQuery, today: dt.date, text: search.TextCondition | None
) -> tuple[str, dict[str, Any], frozenset[str]]:
    """The WHERE clause of ``query``, its parameters, and the tables it needs beside c."""
    where: list[str] = []
    params: dict[str, Any] = {}
    tables: set[str] = set()

    def among(column: str, name: str, values: tuple[Any, ...]) -> None:
        names = [f"{name}{index}" for index in range(len(values))]
        params.update({n: v.value for n, v in zip(names, values, strict=True)})
        where.append(f"{column} IN ({', '.join(':' + n for n in names)})")

    if query.kinds:
        among("c.kind", "kind", tuple(dict.fromkeys(query.kinds)))
    if query.states:
        among("c.state", "state", tuple(dict.fromkeys(query.states)))
    if query.expires_within is not None:
        where.append("c.expires_on BETWEEN :from_day AND :to_day")
        params["from_day"] = today.isoformat()
        params["to_day"] = (today + dt.timedelta(days=query.expires_within)).isoformat()
    if text is not None:
        where.append(text.sql)
        params.update(text.params)
        if "h." in text.sql:
            tables.add("h")
    clause = ("\nWHERE " + "\n  AND ".join(where)) if where else ""
    return clause, params, frozenset(tables)


def _joins(tables: frozenset[str]) -> str:
    joins = ""
    if "h" in tables:
        joins += " JOIN holder h ON h.id = c.holder_id"
    if "o" in tables:
        joins += " JOIN organisation o ON o.id = h.organisation_id"
    return joins


def _rows(connection: ReadConnection, ids: list[int]) -> dict[int, Sequence[Any]]:
    """The columns of the page's credentials, by id."""
    marks = ", ".join(f":id{index}" for index in range(len(ids)))
    sql = f"""SELECT c.id AS id, c.kind AS kind, c.model AS model, c.state AS state,
       c.serial AS serial, c.expires_on AS expires_on, c.holder_id AS holder_id,
       h.last_name AS last_name, h.first_name AS first_name, h.email AS email,
       o.short_name AS organisation
FROM credential c
JOIN holder h ON h.id = c.holder_id
JOIN organisation o ON o.id = h.organisation_id
WHERE c.id IN ({marks})"""
    params = {f"id{index}": id_ for index, id_ in enumerate(ids)}
    columns = ["id", "kind", "model", "state", "serial", "expires_on", "holder_id"]
    columns += ["last_name", "first_name", "email", "organisation"]
    return {int(row[0]): row for row in connection.packed_rows(sql, params, columns)}


def _replaced(connection: ReadConnection, ids: list[int]) -> set[int]:
    """Those of ``ids`` that have a replacement requested, received or in service."""
    if not ids:
        return set()
    marks = ", ".join(f":id{index}" for index in range(len(ids)))
    sql = f"""SELECT DISTINCT replaces_id AS id FROM credential
WHERE replaces_id IN ({marks}) AND state IN ({_REPLACEMENT})"""
    params = {f"id{index}": id_ for index, id_ in enumerate(ids)}
    return {int(row[0]) for row in connection.packed_rows(sql, params, ["id"])}


def urgency(
    policy: AlertPolicy,
    kind: CredentialKind,
    state: CredentialState,
    expires_on: dt.date | None,
    *,
    today: dt.date,
    replaced: bool,
) -> Urgency:
    """How urgent a credential is ``today``; ``replaced`` when a replacement is requested,
    received or in service. The renewal alerts' rule (``renewal.due_level``), except that
    an expired credential stays EXPIRED after its weekly reminders end."""
    if state not in IN_SERVICE or expires_on is None:
        return Urgency.NONE
    if expires_on < today:
        return Urgency.EXPIRED
    due = due_level(policy, kind, expires_on, today=today, ordered=replaced)
    if due is None:
        return Urgency.NONE
    return _URGENCY_OF_LEVEL.get(due[0], Urgency.NONE)


_URGENCY_OF_LEVEL = {AlertLevel.GAP: Urgency.GAP, AlertLevel.ORDER_NOW: Urgency.ORDER_LATE}


def _row(row: Sequence[Any], today: dt.date, policy: AlertPolicy, replaced: bool) -> InventoryRow:
    kind, state = _KINDS[row[1]], _STATES[row[3]]
    expires_on = _day(row[5])
    order_by = None
    if state in IN_SERVICE and expires_on is not None:
        order_by = policy.order_by(kind, expires_on)
    return InventoryRow(
        id=int(row[0]),
        kind=kind,
        model=_MODELS[row[2]] if row[2] else None,
        state=state,
        serial=row[4],
        expires_on=expires_on,
        days_left=(expires_on - today).days if expires_on is not None else None,
        order_by=order_by,
        urgency=urgency(policy, kind, state, expires_on, today=today, replaced=replaced),
        holder_id=int(row[6]),
        last_name=row[7],
        first_name=row[8],
        email=row[9],
        organisation=row[10],
    )


def _day(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)  # SQLite returns dates as ISO text
