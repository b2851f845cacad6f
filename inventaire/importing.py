"""Importing holders and credentials from a table (CSV or XLSX export of a spreadsheet).

Every row is checked; a bad row is reported with its line number and a stable code. By
default nothing is written when any row is bad (the caller's transaction is rolled back by
``ImportRejected``); with ``ignore_errors`` the good rows are written and the others reported.

Natural keys, which make a second import of the same file change nothing:

- a holder is its e-mail address (case-insensitive);
- a credential is its (``type``, ``numero_serie``), the serial number in capitals; a
  ``demandee`` row without serial number (a card ordered but not made yet) is the holder's
  pending request of that type, and a later row with the serial for the same holder and
  type completes that request.

A row that changes the state of a known credential goes through the lifecycle like any
transition: a move the lifecycle forbids is a bad row. An import records an existing
inventory, past facts: a row saying a received card is now active records a handover made
before, which a MANAGER may write (``cards.required_role``), journaled as a record
(``cards.RECORD_ACTION``), its day of handover the file's or unknown.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from inventaire import cards, db, lifecycle
from inventaire.clock import paris_today
from inventaire.errors import ImportFileUnreadable, ImportRejected, InvalidValue, StaleVersion
from inventaire.journal import JournalWriter
from inventaire.models import (
    CardModel,
    Credential,
    CredentialKind,
    CredentialState,
    Holder,
    HolderRole,
    Operator,
    OperatorRole,
)
from inventaire.operators import check_role, effective_roles
from inventaire.organisations import OrganisationIndex
from inventaire.tabular import Table, open_table
from inventaire.vocabulary import (
    IMPORT_COLUMNS,
    KIND_TOKENS,
    MODEL_TOKENS,
    ROLE_TOKENS,
    SERIAL_PATTERN,
    STATE_TOKENS,
    holder_search_text,
    parse_date,
    parse_token,
    token_key,
)

COLUMNS = IMPORT_COLUMNS
REQUIRED_COLUMNS = ("nom", "prenom", "email", "role", "organisation", "type")
NEEDS_EXPIRY = frozenset({CredentialState.ACTIVE, CredentialState.SUSPENDED})
BATCH = 5000
# Key of the marker ``table_rows`` puts in a row whose cells do not match the header.
CELL_COUNT = "__cellules__"

_EMAIL = re.compile(r"^[^@\s;,<>]+@[^@\s;,<>]+\.[^@\s;,<>]+$")

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class RowError:
    """A bad row: its line in the file, a stable code and what explains it."""

    line: int
    code: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ImportRow:
    """A checked row, ready to be matched against the inventory."""

    line: int
    last_name: str
    first_name: str
    email: str
    role: HolderRole
    organisation_id: int
    kind: CredentialKind
    model: CardModel | None
    serial: str | None
    state: CredentialState
    handed_over_on: dt.date | None
    expires_on: dt.date | None
    # The natural key of the credential: ("serial", kind, SERIAL) or ("request", email, kind).
    key: tuple[Any, ...]

    @property
    def holder_fields(self) -> tuple[str, str, HolderRole, int]:
        return (self.last_name, self.first_name, self.role, self.organisation_id)


@dataclass
class ImportReport:
    """What an import did (or would have done) and the rows it refused."""

    rows: int = 0
    holders_created: int = 0
    holders_updated: int = 0
    credentials_created: int = 0
    credentials_updated: int = 0
    transitions: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    written: bool = False
    encoding: str | None = None
    delimiter: str | None = None

    @property
    def changes(self) -> int:
        return (
            self.holders_created
            + self.holders_updated
            + self.credentials_created
            + self.credentials_updated
            + self.transitions
        )


def map_header(header: list[str]) -> dict[str, int]:
    """Column name → position, for the documented columns; extra columns are ignored.

    Names are matched ignoring case, accents and blanks (``Prénom`` is ``prenom``).
    """
    positions: dict[str, int] = {}
    for position, name in enumerate(header):
        key = token_key(name)
        if key in COLUMNS:
            if key in positions:
                raise ImportFileUnreadable("colonne_en_double", colonne=key)
            positions[key] = position
    missing = [name for name in REQUIRED_COLUMNS if name not in positions]
    if missing:
        raise ImportFileUnreadable("colonnes_manquantes", colonnes=", ".join(missing))
    return positions


_UNSEEN = object()


class RowChecker:
    """Checks one row at a time, and the rows against each other (duplicates, a holder
    described two ways).

    Columns such as role, organisation, type, state and dates repeat a few values over
    hundreds of thousands of rows: each distinct text is parsed once and remembered.
    """

    def __init__(self, organisations: OrganisationIndex, today: dt.date) -> None:
        self.organisations = organisations
        self.today = today
        self._credential_lines: dict[tuple[Any, ...], int] = {}
        self._holder_lines: dict[str, tuple[int, tuple[str, str, HolderRole, int]]] = {}
        self._tokens: dict[tuple[str, str], Any] = {}
        self._dates: dict[str, dt.date | None] = {}
        self._organisations: dict[str, Any] = {}

    def _token(self, name: str, raw: str, tokens: dict[str, Any]) -> Any:
        """The domain value of ``raw``, or the ``InvalidValue`` that refuses it."""
        found = self._tokens.get((name, raw), _UNSEEN)
        if found is _UNSEEN:
            try:
                found = parse_token(name, raw, tokens)
            except InvalidValue as exc:
                found = exc
            self._tokens[(name, raw)] = found
        return found

    def _date(self, raw: str) -> dt.date | None:
        """The date written ``raw``, or None when it is not a date."""
        found = self._dates.get(raw, _UNSEEN)
        if found is _UNSEEN:
            try:
                found = parse_date(raw)
            except ValueError:
                found = None
            self._dates[raw] = found
        return found  # type: ignore[return-value]

    def _organisation(self, raw: str) -> Any:
        found = self._organisations.get(raw, _UNSEEN)
        if found is _UNSEEN:
            found = self._organisations[raw] = self.organisations.get(raw)
        return found

    def check(self, line: int, cells: dict[str, str]) -> ImportRow | list[RowError]:
        if CELL_COUNT in cells:
            return [RowError(line, "nombre_de_colonnes", {"compte": cells[CELL_COUNT]})]
        errors: list[RowError] = []
        raw = {name: cells.get(name, "").strip() for name in COLUMNS}
        for name in REQUIRED_COLUMNS:
            if not raw[name]:
                errors.append(RowError(line, "champ_obligatoire", {"champ": name}))

        def token(name: str, tokens: dict[str, Any], default: str = "") -> Any:
            text = raw[name] or default
            if not text:
                return None
            value = self._token(name, text, tokens)
            if isinstance(value, InvalidValue):
                errors.append(RowError(line, "valeur_inconnue", value.params))
                return None
            return value

        def date(name: str) -> dt.date | None:
            text = raw[name]
            if not text:
                return None
            value = self._date(text)
            if value is None:
                errors.append(RowError(line, "date_invalide", {"champ": name, "valeur": text}))
            return value

        last_name = " ".join(raw["nom"].split())
        first_name = " ".join(raw["prenom"].split())
        for name, value in (("nom", last_name), ("prenom", first_name)):
            if len(value) > 120:
                errors.append(RowError(line, "trop_long", {"champ": name, "maximum": 120}))
        email = raw["email"].lower()
        if email and not _EMAIL.match(email):
            errors.append(RowError(line, "email_invalide", {"valeur": email}))
        role = token("role", ROLE_TOKENS)
        organisation = self._organisation(raw["organisation"]) if raw["organisation"] else None
        if raw["organisation"] and organisation is None:
            errors.append(RowError(line, "organisation_inconnue", {"nom": raw["organisation"]}))
        kind = token("type", KIND_TOKENS)
        model = token("modele", MODEL_TOKENS)
        state = token("etat", STATE_TOKENS, default="active")
        # Serial numbers are compared and stored in capitals: "jus0001" is card JUS0001.
        serial = raw["numero_serie"].upper() or None
        handed_over_on = date("date_remise")
        expires_on = date("date_expiration")

        if kind is CredentialKind.AGENT_CARD and not raw["modele"]:
            errors.append(RowError(line, "modele_obligatoire", {}))
        if kind is not None and kind is not CredentialKind.AGENT_CARD and model is not None:
            errors.append(RowError(line, "modele_reserve_carte_agent", {}))
        if serial is None and state is not None and state is not CredentialState.REQUESTED:
            errors.append(RowError(line, "champ_obligatoire", {"champ": "numero_serie"}))
        if serial is not None and not SERIAL_PATTERN.match(serial):
            errors.append(RowError(line, "numero_serie_invalide", {"valeur": serial}))
        if state in NEEDS_EXPIRY and not raw["date_expiration"]:
            errors.append(RowError(line, "expiration_obligatoire", {"etat": raw["etat"]}))
        if handed_over_on and expires_on and handed_over_on > expires_on:
            errors.append(RowError(line, "dates_incoherentes", {}))
        if errors:
            return errors
        assert role is not None and organisation is not None and organisation.id is not None
        assert kind is not None and state is not None
        row = ImportRow(
            line=line,
            last_name=last_name,
            first_name=first_name,
            email=email,
            role=role,
            organisation_id=organisation.id,
            kind=kind,
            model=model,
            serial=serial,
            state=state,
            handed_over_on=handed_over_on,
            expires_on=expires_on,
            key=("serial", kind, serial) if serial else ("request", email, kind),
        )
        return self._cross_check(row)

    def _cross_check(self, row: ImportRow) -> ImportRow | list[RowError]:
        key = row.key
        first = self._credential_lines.get(key)
        if first is not None:
            return [RowError(row.line, "doublon", {"ligne": first})]
        known = self._holder_lines.get(row.email)
        if known is not None and known[1] != row.holder_fields:
            return [RowError(row.line, "titulaire_incoherent", {"ligne": known[0]})]
        self._credential_lines[key] = row.line
        if known is None:
            self._holder_lines[row.email] = (row.line, row.holder_fields)
        return row


def holder_snapshot(holder: dict[str, Any]) -> dict[str, Any]:
    """The journal's view of a holder: no name, no e-mail."""
    return {
        "role": _value(holder["role"]),
        "organisation_id": holder["organisation_id"],
        "active": holder["active"],
    }


def _value(value: Any) -> Any:
    return getattr(value, "value", value)


def _credential_state(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": _value(row["kind"]),
        "model": _value(row["model"]),
        "serial": row["serial"],
        "holder_id": row["holder_id"],
        "state": _value(row["state"]),
        "emergency": row["emergency"],
        "replaces_id": row["replaces_id"],
        "requested_on": _iso(row["requested_on"]),
        "received_on": _iso(row["received_on"]),
        "handed_over_on": _iso(row["handed_over_on"]),
        "expires_on": _iso(row["expires_on"]),
    }


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


_holders = Holder.__table__  # type: ignore[attr-defined]
_credentials = Credential.__table__  # type: ignore[attr-defined]


class Importer:
    """Writes checked rows in the caller's transaction, batch by batch, with journal
    entries, and counts what it did."""

    def __init__(
        self,
        session: Session,
        *,
        operator: Operator,
        now: dt.datetime,
        source: str,
        ignore_errors: bool = False,
    ) -> None:
        check_role(operator, OperatorRole.MANAGER)
        self.session = session
        self.operator = operator
        self.now = now
        self.today = paris_today(now)
        self.source = source
        self.ignore_errors = ignore_errors
        self.report = ImportReport()
        self.journal = JournalWriter(session, operator=operator.login, now=now)
        self._roles = effective_roles(operator)
        # Credentials created by this run: never taken for an earlier pending request.
        self._created: set[int] = set()

    def run(
        self,
        rows: Iterable[tuple[int, dict[str, str]]],
        *,
        total: int | None = None,
        progress: Progress | None = None,
        fingerprint: str | None = None,
    ) -> ImportReport:
        """Check and write ``rows``; raise ``ImportRejected`` (nothing written) when a row
        is bad and errors are not ignored."""
        checker = RowChecker(OrganisationIndex.load(self.session), self.today)
        batch: list[ImportRow] = []
        for line, cells in rows:
            self.report.rows += 1
            outcome = checker.check(line, cells)
            if isinstance(outcome, list):
                self.report.errors.extend(outcome)
            else:
                batch.append(outcome)
            if len(batch) >= BATCH:
                self._write(batch)
                batch = []
                if progress:
                    progress(self.report.rows, total)
        self._write(batch)
        if progress:
            progress(self.report.rows, total)
        if self.report.errors and not self.ignore_errors:
            self.report.written = False
            raise ImportRejected(report=self.report)
        if self.report.changes:
            self.journal.record(
                "import",
                "import",
                reason=f"import de {self.source}",
                after={
                    "fichier": self.source,
                    "sha256": fingerprint,
                    "lignes": self.report.rows,
                    "lignes_refusees": len({error.line for error in self.report.errors}),
                    "titulaires_crees": self.report.holders_created,
                    "titulaires_modifies": self.report.holders_updated,
                    "supports_crees": self.report.credentials_created,
                    "supports_modifies": self.report.credentials_updated,
                    "transitions": self.report.transitions,
                },
            )
        self.journal.flush()
        self.report.written = True
        return self.report

    # Writing -------------------------------------------------------------------------

    def _write(self, batch: list[ImportRow]) -> None:
        if not batch:
            return
        holders = self._existing_holders({row.email for row in batch})
        credentials, requests = self._existing_credentials(batch, holders)
        plans: list[tuple[ImportRow, dict[str, Any] | None]] = []
        for row in batch:
            existing = self._match(row, holders, credentials, requests)
            error = self._refusal(row, existing, holders)
            if error is not None:
                self.report.errors.append(error)
            else:
                plans.append((row, existing))
        if self.report.errors and not self.ignore_errors:
            # The import will be rejected: keep checking the next rows, write nothing.
            return
        holder_ids = self._write_holders([row for row, _ in plans], holders)
        self._create_credentials(
            [(row, holder_ids[row.email]) for row, existing in plans if existing is None]
        )
        for row, existing in plans:
            if existing is not None:
                self._update_credential(row, existing)
        self.journal.flush()

    def _existing_holders(self, emails: set[str]) -> dict[str, dict[str, Any]]:
        query = sa.select(_holders).where(_holders.c.email.in_(sorted(emails)))
        return {row.email: dict(row._mapping) for row in self.session.execute(query)}

    def _existing_credentials(
        self, batch: list[ImportRow], holders: dict[str, dict[str, Any]]
    ) -> tuple[dict[tuple[Any, ...], dict[str, Any]], dict[tuple[int, Any], dict[str, Any]]]:
        serials = sorted({row.serial for row in batch if row.serial is not None})
        by_serial: dict[tuple[Any, ...], dict[str, Any]] = {}
        if serials:
            query = sa.select(_credentials).where(_credentials.c.serial.in_(serials))
            for found in self.session.execute(query):
                # The natural key, as ``RowChecker`` builds it.
                by_serial[("serial", found.kind, found.serial)] = dict(found._mapping)
        holder_ids = sorted({holder["id"] for holder in holders.values()})
        requests: dict[tuple[int, Any], dict[str, Any]] = {}
        if holder_ids:
            query = sa.select(_credentials).where(
                _credentials.c.holder_id.in_(holder_ids),
                _credentials.c.serial.is_(None),
                _credentials.c.state == CredentialState.REQUESTED.value,
            )
            for found in self.session.execute(query):
                if found.id not in self._created:
                    requests[(found.holder_id, CredentialKind(found.kind))] = dict(found._mapping)
        return by_serial, requests

    def _match(
        self,
        row: ImportRow,
        holders: dict[str, dict[str, Any]],
        credentials: dict[tuple[Any, ...], dict[str, Any]],
        requests: dict[tuple[int, Any], dict[str, Any]],
    ) -> dict[str, Any] | None:
        if row.serial is not None:
            found = credentials.get(row.key)
            if found is not None:
                return found
        holder = holders.get(row.email)
        if holder is None:
            return None
        # A pending request without serial, from an earlier import: the same row again, or
        # (with a serial now) the card it asked for.
        return requests.get((holder["id"], row.kind))

    def _refusal(
        self,
        row: ImportRow,
        existing: dict[str, Any] | None,
        holders: dict[str, dict[str, Any]],
    ) -> RowError | None:
        if existing is None:
            return None
        holder = holders.get(row.email)
        if holder is None or holder["id"] != existing["holder_id"]:
            return RowError(row.line, "support_autre_titulaire", {"numero_serie": row.serial})
        source = CredentialState(existing["state"])
        if source is row.state:
            return None
        if not lifecycle.is_allowed(source, row.state):
            return RowError(
                row.line,
                "transition_refusee",
                {"depuis": source.value, "vers": row.state.value},
            )
        required = cards.required_role(source, row.state, record=True)
        if required not in self._roles:
            return RowError(row.line, "droit_insuffisant", {"role": required.value})
        return None

    def _write_holders(
        self, rows: list[ImportRow], holders: dict[str, dict[str, Any]]
    ) -> dict[str, int]:
        ids = {email: holder["id"] for email, holder in holders.items()}
        new: dict[str, ImportRow] = {}
        changed: dict[str, tuple[ImportRow, dict[str, Any]]] = {}
        for row in rows:
            holder = holders.get(row.email)
            if holder is None:
                new.setdefault(row.email, row)
            elif (
                row.email not in changed
                and (
                    holder["last_name"],
                    holder["first_name"],
                    HolderRole(holder["role"]),
                    holder["organisation_id"],
                )
                != row.holder_fields
            ):
                changed[row.email] = (row, holder)
        if new:
            values = [self._holder_values(row) | {"created_at": self.now} for row in new.values()]
            new_ids = self._insert(_holders, values, key="email")
            for email, value in zip(new, values, strict=True):
                ids[email] = new_ids[email]
                self.journal.record(
                    "titulaire.creation", "holder", new_ids[email], after=holder_snapshot(value)
                )
            self.report.holders_created += len(new)
        for row, holder in changed.values():
            update = self._holder_values(row)
            self.session.execute(
                _holders.update().where(_holders.c.id == holder["id"]).values(**update)
            )
            personal = [
                name
                for name, column in (("nom", "last_name"), ("prenom", "first_name"))
                if holder[column] != update[column]
            ]
            self.journal.record(
                "titulaire.modification",
                "holder",
                holder["id"],
                reason=f"import de {self.source}",
                before=holder_snapshot(holder),
                after=holder_snapshot({**holder, **update})
                | {"champs_personnels_modifies": personal},
            )
            self.report.holders_updated += 1
        return ids

    def _insert(
        self, table: sa.Table, values: list[dict[str, Any]], key: str | None = None
    ) -> dict[Any, int]:
        """Bulk-insert ``values`` and return their new ids, by ``key`` (or by position).

        The import holds the database's write lock (``write_session``), so the rows above
        the previous highest id are exactly these, in insertion order.
        """
        before = self.session.execute(sa.select(sa.func.max(table.c.id))).scalar_one() or 0
        db.bulk_insert(self.session, table, values)
        column = table.c[key] if key else table.c.id
        inserted = self.session.execute(
            sa.select(table.c.id, column).where(table.c.id > before).order_by(table.c.id)
        ).all()
        if len(inserted) != len(values) or (
            key and any(r[1] != v[key] for r, v in zip(inserted, values, strict=True))
        ):
            raise RuntimeError(f"concurrent insertion into {table.name} during an import")
        if key:
            return {r[1]: r[0] for r in inserted}
        return {index: r[0] for index, r in enumerate(inserted)}

    def _holder_values(self, row: ImportRow) -> dict[str, Any]:
        return {
            "last_name": row.last_name,
            "first_name": row.first_name,
            "email": row.email,
            "role": row.role.value,
            "organisation_id": row.organisation_id,
            "active": True,
            "search_text": holder_search_text(row.last_name, row.first_name, row.email),
            "updated_at": self.now,
        }

    def _create_credentials(self, rows: list[tuple[ImportRow, int]]) -> None:
        if not rows:
            return
        values = [
            {
                "kind": row.kind.value,
                "model": row.model.value if row.model else None,
                "serial": row.serial,
                "holder_id": holder_id,
                "state": row.state.value,
                "emergency": False,
                "replaces_id": None,
                "requested_on": None,
                "received_on": None,
                "handed_over_on": row.handed_over_on,
                "expires_on": row.expires_on,
                "version": 1,
                "created_at": self.now,
                "updated_at": self.now,
            }
            for row, holder_id in rows
        ]
        new_ids = self._insert_indexed(values)
        for new_id, created in zip(new_ids.values(), values, strict=True):
            self._created.add(new_id)
            self.journal.record(
                "support.creation",
                "credential",
                new_id,
                reason=f"import de {self.source}",
                after=_credential_state(created),
            )
        self.report.credentials_created += len(values)

    def _insert_indexed(self, values: list[dict[str, Any]]) -> dict[Any, int]:
        """Insert credentials; on SQLite, with the row triggers of the search index and the
        tally paused, and the batch indexed and counted in one statement each (four times
        faster: see migration 0004). PostgreSQL's triggers work per statement already."""
        if self.session.get_bind().dialect.name != "sqlite":
            return self._insert(_credentials, values)
        self.session.execute(sa.text("INSERT INTO search_index_pause (id) VALUES (1)"))
        try:
            new_ids = self._insert(_credentials, values)
            span = {"first": min(new_ids.values()), "last": max(new_ids.values())}
            # What migration 0004's triggers would have written: the document, the count.
            self.session.execute(
                sa.text(
                    "INSERT INTO credential_search (rowid, text) "
                    "SELECT c.id, h.search_text || ' ' || coalesce(lower(c.serial), '') "
                    "FROM credential c JOIN holder h ON h.id = c.holder_id "
                    "WHERE c.id BETWEEN :first AND :last"
                ),
                span,
            )
            self.session.execute(
                sa.text(
                    "INSERT INTO credential_tally (kind, state, total) "
                    "SELECT kind, state, count(*) FROM credential "
                    "WHERE id BETWEEN :first AND :last GROUP BY kind, state "
                    "ON CONFLICT (kind, state) DO UPDATE SET total = total + excluded.total"
                ),
                span,
            )
        finally:
            self.session.execute(sa.text("DELETE FROM search_index_pause"))
        return new_ids

    def _update_credential(self, row: ImportRow, existing: dict[str, Any]) -> None:
        changes: dict[str, Any] = {}
        if row.serial is not None and existing["serial"] is None:
            changes["serial"] = row.serial
        if row.model is not None and existing["model"] != row.model.value:
            changes["model"] = row.model.value
        # An empty date in the file never erases a known one.
        for name in ("handed_over_on", "expires_on"):
            value = getattr(row, name)
            if value is not None and existing[name] != value:
                changes[name] = value
        source = CredentialState(existing["state"])
        transition = source is not row.state
        if not changes and not transition:
            self.report.unchanged += 1
            return
        before = _credential_state(existing)
        after_fields = {**existing, **changes}
        if changes:
            self._apply(existing, changes)
            self.journal.record(
                "support.modification",
                "credential",
                existing["id"],
                reason=f"import de {self.source}",
                before=before,
                after=_credential_state(after_fields),
            )
            self.report.credentials_updated += 1
        if transition:
            target = row.state
            state_changes: dict[str, Any] = {
                "state": target.value,
                **cards.recorded_dates(
                    source,
                    target,
                    received_on=after_fields["received_on"],
                    handed_over_on=after_fields["handed_over_on"],
                    today=self.today,
                ),
            }
            current = {**after_fields, "version": existing["version"] + bool(changes)}
            self._apply(current, state_changes)
            handover = cards.is_handover(source, target)
            self.journal.record(
                cards.RECORD_ACTION if handover else "support.transition",
                "credential",
                existing["id"],
                reason=(
                    f"import de {self.source} : remise déjà faite, enregistrée comme telle"
                    if handover
                    else f"import de {self.source}"
                ),
                before=_credential_state(after_fields),
                after=_credential_state({**after_fields, **state_changes}),
            )
            self.report.transitions += 1

    def _apply(self, existing: dict[str, Any], changes: dict[str, Any]) -> None:
        # Same rule as the ORM's version column: bump it, and refuse a concurrent change.
        result = self.session.execute(
            _credentials.update()
            .where(_credentials.c.id == existing["id"])
            .where(_credentials.c.version == existing["version"])
            .values(**changes, version=existing["version"] + 1, updated_at=self.now)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise StaleVersion(id=existing["id"])


def table_rows(table: Table) -> Iterator[tuple[int, dict[str, str]]]:
    """The rows of ``table`` as dictionaries keyed by documented column names.

    A row with fewer cells than the header, or with values beyond it, is returned as a
    ``CELL_COUNT`` marker so that the checker reports it; empty rows are skipped.
    """
    positions = map_header(table.header)
    width = len(table.header)
    for line, cells in table.rows:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) < width or any(cell.strip() for cell in cells[width:]):
            yield line, {CELL_COUNT: f"{len(cells)}/{width}"}
            continue
        yield line, {name: cells[position] for name, position in positions.items()}


def file_fingerprint(path: Path) -> str:
    """SHA-256 of a file, for the journal's record of an import."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def import_file(
    session: Session,
    path: Path,
    *,
    operator: Operator,
    now: dt.datetime,
    ignore_errors: bool = False,
    sheet: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import ``path`` (CSV or XLSX) in the caller's transaction."""
    table = open_table(path, sheet=sheet)
    importer = Importer(
        session, operator=operator, now=now, source=path.name, ignore_errors=ignore_errors
    )
    importer.report.encoding = table.encoding
    importer.report.delimiter = table.delimiter
    return importer.run(
        table_rows(table),
        total=table.total,
        progress=progress,
        fingerprint=file_fingerprint(path),
    )
