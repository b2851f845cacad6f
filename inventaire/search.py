"""The text filter of the inventory: what ``cartes liste --recherche`` and the terminal UI's
filter box match, as one SQL condition.

The text is folded (``vocabulary.fold``: lower-case ASCII, no accents) and split into
words; a credential matches when every word is found, as a substring, in its holder's
names or e-mail (``holder.search_text``, folded already), its serial (lower-cased), or the
short or full name of its holder's organisation.

Words of three characters or more go through the trigram index of migration 0004
(``credential_search``: FTS5 on SQLite, ``pg_trgm`` on PostgreSQL), which holds the
holder's search text and the serial of each credential. Shorter words cannot use a
trigram index: they are checked with LIKE on the rows the long words selected, or, when
every word is short, on the rows the query reads in its own order until its LIMIT is
filled. Organisation names, a few dozen, are folded and matched here in Python: a word
found in an organisation's name also selects that organisation's holders.

The condition refers to the credential as ``c`` and its holder as ``h``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from inventaire.dbapi import ReadConnection
from inventaire.vocabulary import fold

# Trigram indexes find substrings of at least three characters.
TRIGRAM = 3


@dataclass(frozen=True)
class OrganisationNames:
    """An organisation's id and names, folded (what a word is looked for in)."""

    id: int
    names: tuple[str, ...]

    @classmethod
    def of(cls, organisation_id: int, *names: str) -> OrganisationNames:
        return cls(organisation_id, tuple(fold(name) for name in names))


@dataclass(frozen=True)
class TextCondition:
    """A SQL condition on ``c`` and ``h`` with its ``:name`` parameters."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    # The query of the ids the trigram index selects, when words go through it (then
    # ``sql`` holds ``c.id IN (index_query)``); None when every word is checked row by row.
    index_query: str | None = None
    # ``sql`` without ``c.id IN (index_query)``: the words checked row by row ("" if none).
    other_sql: str = ""

    @property
    def indexed(self) -> bool:
        return self.index_query is not None


def words(text: str) -> list[str]:
    """The folded words of a filter text, each once, in order."""
    return list(dict.fromkeys(fold(text).split()))


def organisations(connection: ReadConnection) -> list[OrganisationNames]:
    """Every organisation's folded names (a few dozen rows)."""
    rows = connection.rows("SELECT id, short_name, full_name FROM organisation", {})
    return [OrganisationNames.of(int(row[0]), row[1], row[2]) for row in rows]


def text_condition(
    text: str | None,
    *,
    dialect: str,
    organisations: Iterable[OrganisationNames],
    indexed: bool = True,
    every_word: bool = False,
    narrow: bool = False,
    prefix: str = "search",
) -> TextCondition | None:
    """The condition selecting the credentials that match every word of ``text`` on
    ``dialect`` ("sqlite" or "postgresql"), or None when ``text`` has no word.

    With ``indexed`` the long words that name no organisation go through the trigram
    index; without, every word is checked with LIKE on the rows the query reads (the
    better plan when the words are common: a page is filled after a few hundred rows).
    With ``every_word``, short words too are looked for in the index's table (read
    whole, without the joins: what a count of a short word wants). With ``narrow``, short
    words that name no organisation are checked in the index's query too, on the rows
    the long words select there. ``prefix`` names the parameters."""
    found = words(text or "")
    if not found:
        return None
    organisations = list(organisations)
    params: dict[str, Any] = {}
    matches: list[str] = []  # conditions on the search index's text ``s.text``
    clauses: list[str] = []  # conditions on c and h
    for index, word in enumerate(found):
        name = f"{prefix}{index}"
        owners = sorted({o.id for o in organisations if any(word in n for n in o.names)})
        if every_word and owners:
            match = _index_match(dialect, name, word, params)
            key = _key(dialect)
            clauses.append(
                f"(c.id IN (SELECT {key} FROM credential_search s WHERE {match})"
                f" OR h.organisation_id IN ({', '.join(map(str, owners))}))"
            )
            continue
        if every_word or (indexed and not owners and (len(word) >= TRIGRAM or narrow)):
            matches.append(_index_match(dialect, name, word, params))
            continue
        # A short word, or one an organisation's name holds (the organisation's holders
        # are hundreds or thousands: the index would not narrow much): row by row.
        params[name] = f"%{_escape_like(word)}%"
        alternatives = [
            f"h.search_text LIKE :{name} ESCAPE '\\'",
            f"lower(c.serial) LIKE :{name} ESCAPE '\\'",
        ]
        if owners:
            alternatives.append(f"h.organisation_id IN ({', '.join(map(str, owners))})")
        clauses.append(f"({' OR '.join(alternatives)})")
    index_query = None
    other_sql = " AND ".join(clauses)
    if matches:
        index_query = (
            f"SELECT {_key(dialect)} FROM credential_search s WHERE {' AND '.join(matches)}"
        )
        clauses.insert(0, f"c.id IN ({index_query})")
    return TextCondition(" AND ".join(clauses), params, index_query, other_sql)


# Long words that select this many credentials or more are checked row by row (see
# ``condition``): sorting 5,000 rows takes some 50 ms, and a word that common fills a
# page of 100 within the first 20,000 rows of any order.
PROBE_LIMIT = 5000


def condition(
    connection: ReadConnection,
    text: str | None,
    *,
    probe: int | None = PROBE_LIMIT,
    every_word: bool = False,
    narrow: bool = False,
    prefix: str = "search",
) -> TextCondition | None:
    """``text_condition`` for the database of ``connection``, organisations read from it.

    With ``probe``, the index is first asked whether the long words select fewer than
    ``probe`` credentials; if not, the condition checks them row by row instead, which
    suits a query that stops at a LIMIT; or, when the short words beside them make them
    rare, checks those in the index's query too. Without ``probe``, ``every_word`` and
    ``narrow`` are ``text_condition``'s."""
    if not words(text or ""):
        return None
    names = organisations(connection)
    dialect = connection.dialect
    if probe is None:
        return text_condition(
            text,
            dialect=dialect,
            organisations=names,
            every_word=every_word,
            narrow=narrow,
            prefix=prefix,
        )
    found = text_condition(text, dialect=dialect, organisations=names, prefix=prefix)
    if found is None or not found.indexed:
        return found
    if not _selects_at_least(connection, found, probe):
        return found
    # Common long words; with the short words beside them, maybe few rows after all.
    narrowed = text_condition(
        text, dialect=dialect, organisations=names, narrow=True, prefix=prefix
    )
    assert narrowed is not None
    if narrowed.index_query != found.index_query and not _selects_at_least(
        connection, narrowed, probe
    ):
        return narrowed
    return text_condition(text, dialect=dialect, organisations=names, indexed=False, prefix=prefix)


def _selects_at_least(connection: ReadConnection, found: TextCondition, limit: int) -> bool:
    """Whether the index part of ``found`` selects ``limit`` credentials or more (it reads
    at most ``limit`` entries of the index)."""
    sql = f"SELECT count(*) FROM ({found.index_query} LIMIT :probe_limit) AS probe"
    count = next(iter(connection.rows(sql, {**found.params, "probe_limit": limit})))[0]
    return int(count) >= limit


def _index_match(dialect: str, name: str, word: str, params: dict[str, Any]) -> str:
    """A condition on the indexed text ``s.text`` that ``word`` is in it."""
    if dialect != "sqlite":
        params[name] = f"%{_escape_like(word)}%"  # backslash is PostgreSQL's LIKE escape
        return f"s.text LIKE :{name}"
    # FTS5 hands LIKE to the trigram index, but not LIKE ... ESCAPE, and SQLite 3.40
    # crashes on a LIKE whose literal runs are shorter than three characters beside
    # another LIKE: such words (short, or with a % or _) are checked with instr() on the
    # rows the index gives, or on the whole table when no word can use the index.
    if len(word) < TRIGRAM or "%" in word or "_" in word:
        params[name] = word
        return f"instr(s.text, :{name}) > 0"
    params[name] = f"%{word}%"
    return f"s.text LIKE :{name}"


def _key(dialect: str) -> str:
    """The column of the search index that holds the credential's id."""
    return "s.rowid" if dialect == "sqlite" else "s.credential_id"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
