"""Tables of the inventory (DESIGN §3).

Enumerations are stored as their English names in plain strings (no native database enum),
so that a migration can add a value without a type change. The schema itself is created by
the Alembic migrations in ``inventaire/migrations``; a test checks they match these models.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from inventaire.enums import (
    AlertLevel,
    CardModel,
    CertificateRole,
    CredentialKind,
    CredentialState,
    DigestState,
    HolderRole,
    OperatorRole,
    OrganisationType,
)
from inventaire.roles import parse as parse_roles

# Constraint names that are the same on SQLite and PostgreSQL, so migrations can name them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class EnumName(sa.types.TypeDecorator[StrEnum]):
    """A StrEnum stored as its name in a VARCHAR, read back as the enum member."""

    impl = sa.String
    cache_ok = True

    def __init__(self, enum: type[StrEnum]) -> None:
        super().__init__(max(len(member.value) for member in enum))
        self.enum = enum

    def process_bind_param(self, value: object, dialect: sa.Dialect) -> str | None:
        return None if value is None else self.enum(str(value)).value

    def process_result_value(self, value: object, dialect: sa.Dialect) -> StrEnum | None:
        return None if value is None else self.enum(str(value))


def _enum(enum: type[StrEnum], **kwargs: object) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(EnumName(enum), **kwargs)  # type: ignore[arg-type]


class Organisation(SQLModel, table=True):
    """A court, a bar, the experts' association, the IT service."""

    __tablename__ = "organisation"

    id: int | None = Field(default=None, primary_key=True)
    short_name: str = Field(sa_column=sa.Column(sa.String(80), nullable=False, unique=True))
    full_name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, unique=True))
    type: OrganisationType = Field(sa_column=_enum(OrganisationType, nullable=False))
    created_at: dt.datetime


class Operator(SQLModel, table=True):
    """An IT-staff member allowed to use cartes, identified by a login."""

    __tablename__ = "operator"

    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    # Roles as a sorted, comma-separated list of OperatorRole names: four flags do not
    # deserve a link table.
    roles: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    active: bool = True
    created_at: dt.datetime

    @property
    def role_set(self) -> frozenset[OperatorRole]:
        return parse_roles(self.roles)


class Holder(SQLModel, table=True):
    """A person who holds credentials: judge, clerk, expert, lawyer, party..."""

    __tablename__ = "holder"
    # The inventory sorted by holder reads holders in this order, then each one's
    # credentials (``ix_credential_holder_id``): no sort of a million rows per page.
    __table_args__ = (sa.Index("ix_holder_name", "last_name", "first_name"),)

    id: int | None = Field(default=None, primary_key=True)
    last_name: str = Field(sa_column=sa.Column(sa.String(120), nullable=False))
    first_name: str = Field(sa_column=sa.Column(sa.String(120), nullable=False))
    # Lower-cased: the natural key of a holder.
    email: str = Field(sa_column=sa.Column(sa.String(254), nullable=False, unique=True))
    role: HolderRole = Field(sa_column=_enum(HolderRole, nullable=False))
    organisation_id: int = Field(foreign_key="organisation.id", index=True)
    active: bool = True
    # Names and e-mail folded to lower-case ASCII, for accent-insensitive search.
    search_text: str = Field(sa_column=sa.Column(sa.String(500), nullable=False))
    created_at: dt.datetime
    updated_at: dt.datetime
    # Set when the retention rule replaced the holder's personal data (never undone).
    anonymised_at: dt.datetime | None = None


class RecordAccess(SQLModel, table=True):
    """One reading of a holder's full record (``cartes titulaire voir``, the terminal UI's
    record, an export): who, when, how, and whose, by id only (no personal data here)."""

    __tablename__ = "record_access"
    # A holder's export lists who looked at their record, in order.
    __table_args__ = (sa.Index("ix_record_access_holder_id", "holder_id", "accessed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    holder_id: int = Field(foreign_key="holder.id")
    operator: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    purpose: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))  # voir, fiche...
    accessed_at: dt.datetime


_credential_version = sa.Column("version", sa.Integer, nullable=False)


class Credential(SQLModel, table=True):
    """A physical card or key (*support*), nominative: one holder only."""

    __tablename__ = "credential"
    __table_args__ = (
        sa.UniqueConstraint("serial", "kind"),
        # Covers the listing: a range of expiries is read in order from the index alone,
        # without visiting the table (id is in every SQLite index; named for PostgreSQL).
        sa.Index(
            "ix_credential_expiry",
            "expires_on",
            "id",
            "holder_id",
            "kind",
            "state",
            "model",
            "serial",
            "handed_over_on",
        ),
    )
    # Every ORM update checks and bumps the version: a concurrent change is refused.
    __mapper_args__ = {"version_id_col": _credential_version}

    id: int | None = Field(default=None, primary_key=True)
    kind: CredentialKind = Field(sa_column=_enum(CredentialKind, nullable=False))
    model: CardModel | None = Field(default=None, sa_column=_enum(CardModel, nullable=True))
    serial: str | None = Field(default=None, sa_column=sa.Column(sa.String(64), nullable=True))
    holder_id: int = Field(foreign_key="holder.id", index=True)
    state: CredentialState = Field(sa_column=_enum(CredentialState, nullable=False))
    emergency: bool = False
    # Indexed: the renewal plan looks up, for every credential, what replaces it.
    replaces_id: int | None = Field(default=None, foreign_key="credential.id", index=True)
    requested_on: dt.date | None = None
    received_on: dt.date | None = None
    handed_over_on: dt.date | None = None
    # Effective expiry: the earliest not-after of the certificates, or the date recorded at
    # import while no certificate has been read. Listings filter and sort on it: see the
    # covering index ``ix_credential_expiry`` below.
    expires_on: dt.date | None = None
    version: int | None = Field(default=None, sa_column=_credential_version)
    created_at: dt.datetime
    updated_at: dt.datetime


class Certificate(SQLModel, table=True):
    """An X.509 certificate read from a credential."""

    __tablename__ = "certificate"

    id: int | None = Field(default=None, primary_key=True)
    credential_id: int = Field(foreign_key="credential.id", index=True)
    der: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
    fingerprint_sha256: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    issuer: str = Field(sa_column=sa.Column(sa.String(500), nullable=False))
    # Indexed: the status page finds a key by its certificate's issuer and serial number.
    serial_number: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, index=True))
    subject: str = Field(sa_column=sa.Column(sa.String(500), nullable=False))
    not_before: dt.datetime
    not_after: dt.datetime
    role: CertificateRole = Field(sa_column=_enum(CertificateRole, nullable=False))
    last_status: str | None = Field(default=None, sa_column=sa.Column(sa.String(20), nullable=True))
    last_validated_at: dt.datetime | None = None


class JournalEntry(SQLModel, table=True):
    """One append-only, hash-chained record of a change.

    It names holders and credentials by id only and holds no personal data, so that a
    holder can be anonymised later without breaking the chain.
    """

    __tablename__ = "journal_entry"

    # Consecutive from 1, assigned under the journal lock: a gap means a deleted row.
    seq: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    recorded_at: dt.datetime = Field(index=True)
    operator: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    action: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    entity_type: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    entity_id: int | None = None
    reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    before: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    after: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    prev_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))

    __table_args__ = (sa.Index("ix_journal_entry_entity", "entity_type", "entity_id"),)


class JournalHead(SQLModel, table=True):
    """The last entry of the journal (one row): the lock every writer takes, and the
    anchor that reveals a truncated tail."""

    __tablename__ = "journal_head"

    id: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    seq: int
    hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))


class EmergencyIssuance(SQLModel, table=True):
    """An old-model agent card handed out in emergency (DESIGN §1, §3): to whom, by whom,
    why, which pending new-model card it bridges, and when it must come back."""

    __tablename__ = "emergency_issuance"

    id: int | None = Field(default=None, primary_key=True)
    # The emergency card itself: one record per card.
    credential_id: int = Field(foreign_key="credential.id", unique=True)
    holder_id: int = Field(foreign_key="holder.id", index=True)
    # The habilitated operator who handed it over (a login, as in the journal).
    issued_by: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # The pending new-model request it bridges (None: issued without one, said why).
    request_id: int | None = Field(default=None, foreign_key="credential.id", index=True)
    issued_on: dt.date
    return_due_on: dt.date
    # None while the card is out: the outstanding ones are found by it.
    returned_on: dt.date | None = Field(default=None, index=True)
    created_at: dt.datetime


class AlertMute(SQLModel, table=True):
    """A credential whose renewal alerts an operator has silenced, and why."""

    __tablename__ = "alert_mute"

    credential_id: int = Field(foreign_key="credential.id", primary_key=True)
    reason: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    operator: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    muted_at: dt.datetime


class Digest(SQLModel, table=True):
    """One e-mail of the outbox: every due alert of one recipient, sent together.

    Its Message-ID is fixed when it is created, so that a digest sent again after a crash
    (at-least-once delivery) carries the same one and mail clients can fold the copies.
    """

    __tablename__ = "digest"
    # The sender picks the next due digest; the planner finds a recipient's open one.
    __table_args__ = (
        sa.Index("ix_digest_state_next_attempt_at", "state", "next_attempt_at"),
        sa.Index("ix_digest_recipient_state", "recipient", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    recipient: str = Field(sa_column=sa.Column(sa.String(254), nullable=False))
    state: DigestState = Field(sa_column=_enum(DigestState, nullable=False))
    message_id: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(200), nullable=True, unique=True)
    )
    attempts: int = 0
    # A pending digest is not tried before this instant (backoff after a failure).
    next_attempt_at: dt.datetime
    # When a sender took it: a digest still "sending" long after was lost in a crash.
    claimed_at: dt.datetime | None = None
    last_error: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    created_at: dt.datetime
    # Indexed: the dashboard counts the digests sent over the last days.
    sent_at: dt.datetime | None = Field(default=None, index=True)


class Alert(SQLModel, table=True):
    """One due renewal alert for one recipient: a line of a digest.

    The unique constraint is what makes an alert go out at most once per credential,
    level, recipient and occurrence (the weekly reminders after expiry are occurrences
    0, 1, 2...), whoever plans it and however often.
    """

    __tablename__ = "alert"
    __table_args__ = (sa.UniqueConstraint("credential_id", "level", "recipient", "occurrence"),)

    id: int | None = Field(default=None, primary_key=True)
    credential_id: int = Field(foreign_key="credential.id")
    level: AlertLevel = Field(sa_column=_enum(AlertLevel, nullable=False))
    recipient: str = Field(sa_column=sa.Column(sa.String(254), nullable=False))
    occurrence: int = 0
    due_on: dt.date  # the day it was planned
    # Set in the transaction that plans the alert; its digest tells its state.
    digest_id: int | None = Field(default=None, foreign_key="digest.id", index=True)
    created_at: dt.datetime


class ServiceLease(SQLModel, table=True):
    """Who may send: one row per lease, held by one process at a time until it expires.

    A second ``cartes service``, on this machine or another one sharing the database,
    finds the lease held and waits; the holder renews it while it runs.
    """

    __tablename__ = "service_lease"

    name: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    owner: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    host: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    pid: int
    acquired_at: dt.datetime
    expires_at: dt.datetime


class ServiceRun(SQLModel, table=True):
    """One cycle of the backing service (or of ``cartes alertes envoyer``): when, what it
    did, and the journal head it saw, so that a rewritten journal can be caught later."""

    __tablename__ = "service_run"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_column=sa.Column(sa.String(20), nullable=False))
    started_at: dt.datetime = Field(index=True)
    finished_at: dt.datetime | None = None
    ok: bool = False
    # What the run did, as JSON (counts of planned, sent, failed...): for the dashboard.
    summary: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    journal_seq: int | None = None
    journal_hash: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(64), nullable=True)
    )


class CredentialTally(SQLModel, table=True):
    """How many credentials of each kind are in each state, kept by triggers (migration
    0004): the summary and the dashboard read a few dozen rows, not a million."""

    __tablename__ = "credential_tally"

    kind: CredentialKind = Field(sa_column=_enum(CredentialKind, primary_key=True))
    state: CredentialState = Field(sa_column=_enum(CredentialState, primary_key=True))
    total: int


class SearchIndexPause(SQLModel, table=True):
    """While it has a row, SQLite's trigger does not index new credentials: the import
    writes that row, inserts a batch, indexes it in one statement and deletes the row,
    all in its own transaction (see ``importing.Importer``)."""

    __tablename__ = "search_index_pause"

    id: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))


# The search index of credentials (migration 0004) is no table of these models: an FTS5
# virtual table on SQLite (with the shadow tables FTS5 makes), a plain table with a
# trigram index on PostgreSQL; triggers alone write it and ``inventaire.search`` reads it
# with plain SQL. Schema comparisons leave these tables out.
SEARCH_INDEX_TABLES = frozenset(
    {"credential_search"}
    | {f"credential_search_{part}" for part in ("data", "idx", "content", "docsize", "config")}
)


GENESIS_HASH = "0" * 64
