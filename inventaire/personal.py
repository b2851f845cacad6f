"""Personal data of one holder: finding them, everything the inventory holds about them,
and the register of who read their full record (``record_access``).

``holder_data`` gathers, for one person, their identity, credentials, certificates (never
the DER), requests, emergency cards, the alerts about their credentials or sent to their
address, the mutes of their alerts, the journal entries that concern them and the readings
of their record. It reads nothing of any other person: an alert about their credential
sent to someone else keeps no address (a copy to the IT service), and an alert sent to
their address about someone else's credential keeps no credential.

Callers check the operator (READER at least) before reading, then record the reading with
``record_access`` in a transaction of its own; ``cartes.ops.personal`` does both.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session, col

from inventaire.clock import from_db
from inventaire.enums import (
    AlertLevel,
    CardModel,
    CertificateRole,
    CredentialKind,
    CredentialState,
    DigestState,
    HolderRole,
    OperatorRole,
)
from inventaire.errors import InventaireError, NotFound
from inventaire.models import (
    Alert,
    AlertMute,
    Certificate,
    Credential,
    Digest,
    EmergencyIssuance,
    Holder,
    JournalEntry,
    Operator,
    Organisation,
    RecordAccess,
)
from inventaire.operators import check_role
from inventaire.states import PENDING


class AccessPurpose(StrEnum):
    """How a holder's record was read (stored in ``record_access.purpose``)."""

    VIEW = "voir"  # cartes titulaire voir
    RECORD = "fiche"  # the record screen of one of their credentials, in the terminal UI
    EXPORT = "export"  # cartes titulaire exporter


# Readings of the same record by the same operator, for the same purpose, within this
# window are one reading: the terminal UI reads a record again after every action and on
# every refresh, and a row per refresh would bury the readings that matter. The first
# reading of the window is the one kept (who, and from when).
COALESCED: dict[AccessPurpose, dt.timedelta] = {AccessPurpose.RECORD: dt.timedelta(minutes=30)}


class AccessNotRecorded(InventaireError):
    """A reading of a holder's record could not be written to the register: the reading
    is refused (``detail``: why, in French, from the edge)."""

    code = "acces_non_enregistre"


@dataclass(frozen=True)
class Identity:
    """Who the holder is, as the inventory keeps it."""

    id: int
    last_name: str
    first_name: str
    email: str
    role: HolderRole
    organisation: str  # short name
    organisation_full_name: str
    active: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    anonymised_at: dt.datetime | None  # set once the retention rule replaced the data


@dataclass(frozen=True)
class CredentialData:
    """One of the holder's cards or keys, requests included."""

    id: int
    kind: CredentialKind
    model: CardModel | None
    serial: str | None
    state: CredentialState
    emergency: bool
    replaces_id: int | None
    requested_on: dt.date | None
    received_on: dt.date | None
    handed_over_on: dt.date | None
    expires_on: dt.date | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def is_request(self) -> bool:
        """Ordered for the holder (with a request day), or still pending: a request, as
        ``inventaire.requests`` lists them."""
        return self.requested_on is not None or self.state in PENDING


@dataclass(frozen=True)
class CertificateData:
    """A certificate read from one of the holder's credentials (its DER is left out)."""

    id: int
    credential_id: int
    role: CertificateRole
    subject: str
    issuer: str
    serial_number: str
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint_sha256: str
    last_status: str | None
    last_validated_at: dt.datetime | None


@dataclass(frozen=True)
class EmergencyData:
    """An old-model card handed to the holder in emergency: by whom, why, until when."""

    id: int
    credential_id: int
    issued_by: str
    reason: str
    request_id: int | None
    issued_on: dt.date
    return_due_on: dt.date
    returned_on: dt.date | None
    created_at: dt.datetime


@dataclass(frozen=True)
class AlertData:
    """An alert of the outbox about the holder's credential, or sent to their address.

    ``recipient`` is the holder's own address, or None for a copy sent to the IT service
    (another person's address, not theirs to receive). ``credential_id`` is None for an
    alert sent to the holder's address about a credential of someone else (the holder is
    also a copy address of the service): their address was used, the rest is not theirs.
    """

    id: int
    credential_id: int | None
    level: AlertLevel
    recipient: str | None
    occurrence: int
    due_on: dt.date
    created_at: dt.datetime
    digest_state: DigestState | None  # None: not yet in an e-mail
    sent_at: dt.datetime | None


@dataclass(frozen=True)
class MuteData:
    """The alerts of one of the holder's credentials, silenced: why, by whom, when."""

    credential_id: int
    reason: str
    operator: str
    muted_at: dt.datetime


@dataclass(frozen=True)
class AccessData:
    """One reading of the holder's record: who, how, when."""

    operator: str
    purpose: AccessPurpose
    accessed_at: dt.datetime


@dataclass(frozen=True)
class HolderData:
    """Everything the inventory holds about one holder (``holder_data``)."""

    identity: Identity
    credentials: tuple[CredentialData, ...]
    certificates: tuple[CertificateData, ...]
    emergencies: tuple[EmergencyData, ...]
    alerts: tuple[AlertData, ...]
    mutes: tuple[MuteData, ...]
    # The entries about the holder or their credentials, oldest first, as stored (they
    # hold no personal data: ids only).
    journal: tuple[JournalEntry, ...]
    accesses: tuple[AccessData, ...]  # oldest first

    @property
    def requests(self) -> tuple[CredentialData, ...]:
        """The credentials ordered for the holder (pending or not)."""
        return tuple(credential for credential in self.credentials if credential.is_request)

    def history(self, credential_id: int) -> tuple[JournalEntry, ...]:
        """The journal entries of one of the holder's credentials, oldest first."""
        return tuple(
            entry
            for entry in self.journal
            if entry.entity_type == "credential" and entry.entity_id == credential_id
        )


def find_holder(session: Session, text: str) -> int:
    """The id of the holder named by ``text``: an e-mail address (any case) or a holder
    number; ``NotFound`` (``titulaire_introuvable``) when there is none."""
    wanted = text.strip()
    if wanted.isdigit():
        query = sa.select(col(Holder.id)).where(col(Holder.id) == int(wanted))
    else:
        query = sa.select(col(Holder.id)).where(col(Holder.email) == wanted.lower())
    holder_id = session.execute(query).scalar_one_or_none()
    if holder_id is None:
        raise NotFound("titulaire_introuvable", titulaire=wanted)
    return int(holder_id)


def holder_data(session: Session, *, holder_id: int) -> HolderData:
    """Everything held about holder ``holder_id`` (``NotFound`` if there is none).

    The caller has checked that the operator may read (READER) and records the reading.
    """
    holder = session.get(Holder, holder_id)
    if holder is None:
        raise NotFound("titulaire_introuvable", titulaire=str(holder_id))
    organisation = session.get(Organisation, holder.organisation_id)
    identity = Identity(
        id=holder_id,
        last_name=holder.last_name,
        first_name=holder.first_name,
        email=holder.email,
        role=holder.role,
        organisation=organisation.short_name if organisation else "",
        organisation_full_name=organisation.full_name if organisation else "",
        active=holder.active,
        created_at=from_db(holder.created_at),
        updated_at=from_db(holder.updated_at),
        anonymised_at=_instant(holder.anonymised_at),
    )
    credentials = tuple(
        _credential(row)
        for row in session.execute(
            sa.select(Credential)
            .where(col(Credential.holder_id) == holder_id)
            .order_by(col(Credential.id))
        ).scalars()
    )
    credential_ids = [credential.id for credential in credentials]
    return HolderData(
        identity=identity,
        credentials=credentials,
        certificates=_certificates(session, holder_id),
        emergencies=_emergencies(session, holder_id),
        alerts=_alerts(session, holder_id, holder.email),
        mutes=_mutes(session, holder_id),
        journal=_journal(session, holder_id, credential_ids),
        accesses=accesses(session, holder_id=holder_id),
    )


def accesses(session: Session, *, holder_id: int) -> tuple[AccessData, ...]:
    """The readings of holder ``holder_id``'s record, oldest first."""
    rows = session.execute(
        sa.select(RecordAccess)
        .where(col(RecordAccess.holder_id) == holder_id)
        .order_by(col(RecordAccess.accessed_at), col(RecordAccess.id))
    ).scalars()
    return tuple(
        AccessData(row.operator, AccessPurpose(row.purpose), from_db(row.accessed_at))
        for row in rows
    )


def already_recorded(
    session: Session,
    *,
    holder_id: int,
    operator: str,
    purpose: AccessPurpose,
    now: dt.datetime,
) -> bool:
    """Whether a reading by ``operator`` for ``purpose`` at ``now`` is already in the
    register, as part of an earlier one (``COALESCED``): then nothing is to be written."""
    window = COALESCED.get(purpose)
    if window is None:
        return False
    now = now.astimezone(dt.UTC)
    since = now - window
    query = (
        sa.select(col(RecordAccess.id))
        .where(
            col(RecordAccess.holder_id) == holder_id,
            col(RecordAccess.operator) == operator,
            col(RecordAccess.purpose) == purpose.value,
            col(RecordAccess.accessed_at) >= since,
            col(RecordAccess.accessed_at) <= now,
        )
        .limit(1)
    )
    return session.execute(query).first() is not None


def record_access(
    session: Session,
    *,
    holder_id: int,
    operator: Operator,
    purpose: AccessPurpose,
    now: dt.datetime,
) -> AccessData:
    """Write to the register that ``operator`` (READER at least) read holder
    ``holder_id``'s full record at ``now``, for ``purpose``, in the caller's transaction;
    a reading already covered by an earlier one (``already_recorded``) writes nothing.
    Returns this reading."""
    check_role(operator, OperatorRole.READER)
    if session.get(Holder, holder_id) is None:
        raise NotFound("titulaire_introuvable", titulaire=str(holder_id))
    now = now.astimezone(dt.UTC)
    reading = AccessData(operator.login, purpose, now)
    if already_recorded(
        session, holder_id=holder_id, operator=operator.login, purpose=purpose, now=now
    ):
        return reading
    session.add(
        RecordAccess(
            holder_id=holder_id, operator=operator.login, purpose=purpose.value, accessed_at=now
        )
    )
    session.flush()
    return reading


def _instant(value: dt.datetime | None) -> dt.datetime | None:
    return from_db(value) if value is not None else None


def _credential(row: Credential) -> CredentialData:
    assert row.id is not None
    return CredentialData(
        id=row.id,
        kind=row.kind,
        model=row.model,
        serial=row.serial,
        state=row.state,
        emergency=row.emergency,
        replaces_id=row.replaces_id,
        requested_on=row.requested_on,
        received_on=row.received_on,
        handed_over_on=row.handed_over_on,
        expires_on=row.expires_on,
        created_at=from_db(row.created_at),
        updated_at=from_db(row.updated_at),
    )


def _certificates(session: Session, holder_id: int) -> tuple[CertificateData, ...]:
    # Column by column: the DER is neither exported nor worth loading.
    c = Certificate.__table__.c  # type: ignore[attr-defined]
    query = (
        sa.select(
            c.id,
            c.credential_id,
            c.role,
            c.subject,
            c.issuer,
            c.serial_number,
            c.not_before,
            c.not_after,
            c.fingerprint_sha256,
            c.last_status,
            c.last_validated_at,
        )
        .join(Credential, col(Credential.id) == c.credential_id)
        .where(col(Credential.holder_id) == holder_id)
        .order_by(c.credential_id, c.role, c.id)
    )
    return tuple(
        CertificateData(
            id=row.id,
            credential_id=row.credential_id,
            role=CertificateRole(row.role),
            subject=row.subject,
            issuer=row.issuer,
            serial_number=row.serial_number,
            not_before=from_db(row.not_before),
            not_after=from_db(row.not_after),
            fingerprint_sha256=row.fingerprint_sha256,
            last_status=row.last_status,
            last_validated_at=_instant(row.last_validated_at),
        )
        for row in session.execute(query)
    )


def _emergencies(session: Session, holder_id: int) -> tuple[EmergencyData, ...]:
    rows = session.execute(
        sa.select(EmergencyIssuance)
        .where(col(EmergencyIssuance.holder_id) == holder_id)
        .order_by(col(EmergencyIssuance.id))
    ).scalars()
    return tuple(emergency_data(row) for row in rows)


def emergency_data(row: EmergencyIssuance) -> EmergencyData:
    """An emergency issuance as the export and a credential's record show it."""
    assert row.id is not None
    return EmergencyData(
        id=row.id,
        credential_id=row.credential_id,
        issued_by=row.issued_by,
        reason=row.reason,
        request_id=row.request_id,
        issued_on=row.issued_on,
        return_due_on=row.return_due_on,
        returned_on=row.returned_on,
        created_at=from_db(row.created_at),
    )


def _alerts(session: Session, holder_id: int, email: str) -> tuple[AlertData, ...]:
    a = Alert.__table__.c  # type: ignore[attr-defined]
    d = Digest.__table__.c  # type: ignore[attr-defined]
    address = email.strip().lower()
    about = sa.or_(col(Credential.holder_id) == holder_id, sa.func.lower(a.recipient) == address)
    query = (
        sa.select(
            a.id,
            a.credential_id,
            col(Credential.holder_id),
            a.level,
            a.recipient,
            a.occurrence,
            a.due_on,
            a.created_at,
            d.state,
            d.sent_at,
        )
        .join(Credential, col(Credential.id) == a.credential_id)
        .outerjoin(Digest, d.id == a.digest_id)
        .where(about)
        .order_by(a.created_at, a.id)
    )
    lines = []
    for row in session.execute(query):
        own_address = row.recipient.strip().lower() == address
        lines.append(
            AlertData(
                id=row.id,
                credential_id=row.credential_id if row.holder_id == holder_id else None,
                level=AlertLevel(row.level),
                recipient=row.recipient if own_address else None,
                occurrence=row.occurrence,
                due_on=row.due_on,
                created_at=from_db(row.created_at),
                digest_state=DigestState(row.state) if row.state is not None else None,
                sent_at=_instant(row.sent_at),
            )
        )
    return tuple(lines)


def _mutes(session: Session, holder_id: int) -> tuple[MuteData, ...]:
    rows = session.execute(
        sa.select(AlertMute)
        .join(Credential, col(Credential.id) == col(AlertMute.credential_id))
        .where(col(Credential.holder_id) == holder_id)
        .order_by(col(AlertMute.credential_id))
    ).scalars()
    return tuple(mute_data(row) for row in rows)


def mute_data(row: AlertMute) -> MuteData:
    """A mute of a credential's alerts as the export and the credential's record show it."""
    return MuteData(row.credential_id, row.reason, row.operator, from_db(row.muted_at))


def _journal(
    session: Session, holder_id: int, credential_ids: list[int]
) -> tuple[JournalEntry, ...]:
    # Through the index on (entity_type, entity_id): the journal is the largest table.
    e = JournalEntry.__table__.c  # type: ignore[attr-defined]
    about = [sa.and_(e.entity_type == "holder", e.entity_id == holder_id)]
    if credential_ids:
        about.append(sa.and_(e.entity_type == "credential", e.entity_id.in_(credential_ids)))
    query = sa.select(JournalEntry).where(sa.or_(*about)).order_by(e.seq)
    return tuple(session.execute(query).scalars())
