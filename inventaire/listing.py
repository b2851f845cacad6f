"""Listing credentials with their holder: the query behind ``cartes liste``.

Plain SQL on a DB-API connection (``inventaire.dbapi``), valid on SQLite and PostgreSQL.
An expiry filter is a range on the ``ix_credential_expiry`` index, whose order is also the
listing's order, so a window of a few weeks among a million credentials reads only its
own rows, sorted already.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from inventaire import search
from inventaire.dbapi import ReadConnection, days_between_sql
from inventaire.enums import CardModel, CredentialKind, CredentialState, HolderRole
from inventaire.search import TextCondition
from inventaire.vocabulary import KIND_TOKENS, MODEL_TOKENS, STATE_TOKENS, fold


@dataclass(frozen=True)
class CredentialFilter:
    """Filters of ``cartes liste``; empty means no filter.

    ``expires_within`` keeps credentials whose expiry falls between today and today + N
    days (both included); ``expires_before`` those that expire strictly before that date,
    already expired ones included.
    """

    kinds: tuple[CredentialKind, ...] = ()
    states: tuple[CredentialState, ...] = ()
    organisation_id: int | None = None
    text: str | None = None
    expires_within: int | None = None
    expires_before: dt.date | None = None


class CredentialLine(NamedTuple):
    """One line of a listing (a named tuple: listings have tens of thousands of lines)."""

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


_COLUMNS = """c.id, c.kind, c.model, c.state, c.serial, c.expires_on, c.handed_over_on,
       c.holder_id, h.role, h.last_name, h.first_name, h.email, o.short_name"""
_FROM = """
FROM credential c
JOIN holder h ON h.id = c.holder_id
JOIN organisation o ON o.id = h.organisation_id
"""


def listing_sql(
    filters: CredentialFilter,
    today: dt.date,
    limit: int | None = None,
    *,
    columns: str = _COLUMNS,
    text: TextCondition | None = None,
) -> tuple[str, dict[str, Any]]:
    """The SQL and parameters of a listing, ordered by expiry (unknown last), then id.

    ``text`` is the condition of ``filters.text`` (``inventaire.search.condition``, which
    reads the database); without it, the text is matched on SQLite's index and no
    organisation."""
    where: list[str] = []
    params: dict[str, Any] = {"today": today.isoformat()}

    def among(column: str, name: str, values: tuple[Any, ...]) -> None:
        names = [f"{name}{index}" for index in range(len(values))]
        params.update({n: v.value for n, v in zip(names, values, strict=True)})
        where.append(f"{column} IN ({', '.join(':' + n for n in names)})")

    if filters.kinds:
        among("c.kind", "kind", filters.kinds)
    if filters.states:
        among("c.state", "state", filters.states)
    if filters.organisation_id is not None:
        where.append("h.organisation_id = :organisation_id")
        params["organisation_id"] = filters.organisation_id
    if text is None and filters.text:
        text = search.text_condition(filters.text, dialect="sqlite", organisations=())
    if text is not None:
        where.append(text.sql)
        params.update(text.params)
    expiry_filtered = filters.expires_within is not None or filters.expires_before is not None
    if filters.expires_within is not None:
        where.append("c.expires_on BETWEEN :from_day AND :to_day")
        params["from_day"] = params["today"]
        params["to_day"] = (today + dt.timedelta(days=filters.expires_within)).isoformat()
    if filters.expires_before is not None:
        where.append("c.expires_on < :before_day")
        params["before_day"] = filters.expires_before.isoformat()
    sql = f"SELECT {columns}{_FROM}"
    if where:
        sql += "WHERE " + "\n  AND ".join(where) + "\n"
    # With an expiry filter no expiry is unknown, and the index gives this order as is.
    sql += (
        "ORDER BY c.expires_on, c.id"
        if expiry_filtered
        # NULLS LAST: both databases read it from the index as well (SQLite ≥ 3.30).
        else "ORDER BY c.expires_on NULLS LAST, c.id"
    )
    if limit is not None:
        sql += "\nLIMIT :limit"
        params["limit"] = limit
    return sql, params


def _case(column: str, tokens: dict[str, Any]) -> str:
    """SQL turning a stored enum name into its French token (NULL stays NULL)."""
    branches = " ".join(f"WHEN '{member.value}' THEN '{token}'" for token, member in tokens.items())
    return f"CASE {column} {branches} END"


def json_object_sql(dialect: str) -> str:
    """The select list of one JSON object per credential, in the documented shape of
    ``cartes liste --format json``, computed by the database.

    Encoding tens of thousands of objects is most of a listing's time in Python; SQLite's
    ``json_object`` and PostgreSQL's ``json_build_object`` do it as they read the rows.
    """
    if dialect == "sqlite":
        function, expires = "json_object", "c.expires_on"
    else:
        function, expires = "json_build_object", "to_char(c.expires_on, 'YYYY-MM-DD')"
    days = days_between_sql(dialect, "c.expires_on", ":today")
    fields = {
        "id": "c.id",
        "type": _case("c.kind", KIND_TOKENS),
        "modele": _case("c.model", MODEL_TOKENS),
        "etat": _case("c.state", STATE_TOKENS),
        "titulaire": "h.first_name || ' ' || h.last_name",
        "email": "h.email",
        "organisation": "o.short_name",
        "numero_serie": "c.serial",
        "date_expiration": expires,
        "jours_restants": days,
    }
    arguments = ", ".join(f"'{name}', {expression}" for name, expression in fields.items())
    if dialect == "sqlite":
        return f"{function}({arguments})"
    return f"CAST({function}({arguments}) AS text)"


def list_json(
    connection: ReadConnection,
    filters: CredentialFilter,
    *,
    today: dt.date,
    limit: int | None = None,
) -> Iterator[str]:
    """The credentials matching ``filters`` as JSON texts, in expiry order."""
    columns = json_object_sql(connection.dialect)
    sql, params = listing_sql(
        filters, today, limit, columns=columns, **_search_context(connection, filters, limit)
    )
    for row in connection.rows(sql, params):
        yield row[0]


def _search_context(
    connection: ReadConnection, filters: CredentialFilter, limit: int | None
) -> dict[str, Any]:
    """The text condition of ``filters`` on this database: probed when the listing stops
    at a limit (common words are then checked row by row, in the listing's order)."""
    probe = search.PROBE_LIMIT if limit is not None else None
    return {"text": search.condition(connection, filters.text, probe=probe)}


_KINDS = {kind.value: kind for kind in CredentialKind}
_STATES = {state.value: state for state in CredentialState}
_MODELS = {model.value: model for model in CardModel}
_ROLES = {role.value: role for role in HolderRole}


def _day(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)  # SQLite returns dates as ISO text


def list_credentials(
    connection: ReadConnection,
    filters: CredentialFilter,
    *,
    today: dt.date,
    limit: int | None = None,
) -> Iterator[CredentialLine]:
    """The credentials matching ``filters``, streamed in expiry order."""
    sql, params = listing_sql(filters, today, limit, **_search_context(connection, filters, limit))
    for row in connection.rows(sql, params):
        yield CredentialLine(
            row[0],
            _KINDS[row[1]],
            _MODELS[row[2]] if row[2] else None,
            _STATES[row[3]],
            row[4],
            _day(row[5]),
            _day(row[6]),
            row[7],
            _ROLES[row[8]],
            row[9],
            row[10],
            row[11],
            row[12],
        )


def find_organisation_id(connection: ReadConnection, name: str) -> int | None:
    """The id of the organisation named ``name`` (short or full name, ignoring case and
    accents), or None."""
    wanted = fold(name)
    rows = connection.rows("SELECT id, short_name, full_name FROM organisation", {})
    for organisation_id, short_name, full_name in rows:
        if wanted in (fold(short_name), fold(full_name)):
            return int(organisation_id)
    return None
