"""Cards read at the desk: matching them with the inventory, and registering what was read.

A card is matched by the fingerprint of one of its certificates, then by the token's serial
number, then by its holder (the e-mail address of a certificate, else the name). Registering
updates the matched credential (serial number, certificates, expiry) or creates one for the
matched holder, with a journal entry; it never creates a holder from certificate data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col

from inventaire import journal
from inventaire.enums import CertificateRole, CredentialKind, CredentialState, OperatorRole
from inventaire.errors import InvalidValue, NotFound
from inventaire.lifecycle import snapshot
from inventaire.models import Certificate, Credential, Holder, Operator
from inventaire.operators import check_role
from inventaire.vocabulary import fold


@dataclass(frozen=True)
class CardCertificate:
    """A certificate read on a card, described and validated by the caller."""

    der: bytes
    fingerprint_sha256: str
    subject: str
    issuer: str
    serial_number: str
    not_before: dt.datetime
    not_after: dt.datetime
    role: CertificateRole | None
    status: str  # valide, invalide, indetermine
    email: str | None
    holder_name: str | None


@dataclass(frozen=True)
class ScannedCard:
    token_serial: str
    kind: CredentialKind | None  # from the trust anchor the chains end at
    certificates: Sequence[CardCertificate]


@dataclass(frozen=True)
class Match:
    """What the inventory knows of a card: the credential and/or the holder, and how."""

    credential_id: int | None
    holder_id: int | None
    by: str | None  # "empreinte", "numero_serie", "email", "nom" or None


def match(session: Session, card: ScannedCard) -> Match:
    """The inventory's credential or holder for ``card`` (fingerprint, serial, holder)."""
    fingerprints = [c.fingerprint_sha256 for c in card.certificates]
    if fingerprints:
        row = session.execute(
            sa.select(col(Certificate.credential_id), col(Credential.holder_id))
            .join(Credential, col(Credential.id) == col(Certificate.credential_id))
            .where(col(Certificate.fingerprint_sha256).in_(fingerprints))
        ).first()
        if row is not None:
            return Match(row[0], row[1], "empreinte")
    if card.token_serial:
        query = sa.select(col(Credential.id), col(Credential.holder_id)).where(
            col(Credential.serial) == card.token_serial.upper()
        )
        if card.kind is not None:
            query = query.where(col(Credential.kind) == card.kind)
        row = session.execute(query).first()
        if row is not None:
            return Match(row[0], row[1], "numero_serie")
    for certificate in card.certificates:
        if certificate.email:
            holder_id = session.execute(
                sa.select(col(Holder.id)).where(col(Holder.email) == certificate.email.lower())
            ).scalar_one_or_none()
            if holder_id is not None:
                return Match(_holder_credential(session, holder_id, card.kind), holder_id, "email")
    for certificate in card.certificates:
        if certificate.holder_name:
            wanted = set(fold(certificate.holder_name).split())
            candidates = session.execute(
                sa.select(col(Holder.id), col(Holder.last_name), col(Holder.first_name)).where(
                    col(Holder.search_text).like(f"%{fold(certificate.holder_name.split()[-1])}%")
                )
            ).all()
            same = [c for c in candidates if set(fold(f"{c[2]} {c[1]}").split()) == wanted]
            if len(same) == 1:
                holder_id = same[0][0]
                return Match(_holder_credential(session, holder_id, card.kind), holder_id, "nom")
    return Match(None, None, None)


def _holder_credential(session: Session, holder_id: int, kind: CredentialKind | None) -> int | None:
    """The holder's credential of that kind awaiting its card (received, or requested)."""
    if kind is None:
        return None
    return session.execute(
        sa.select(col(Credential.id))
        .where(
            col(Credential.holder_id) == holder_id,
            col(Credential.kind) == kind,
            col(Credential.serial).is_(None),
            col(Credential.state).in_([CredentialState.REQUESTED, CredentialState.RECEIVED]),
        )
        .order_by(col(Credential.id))
    ).scalar()


def register(
    session: Session,
    card: ScannedCard,
    *,
    operator: Operator,
    now: dt.datetime,
    state: CredentialState = CredentialState.ACTIVE,
) -> tuple[Credential, bool]:
    """Record ``card`` in the inventory; return the credential and whether it was created."""
    check_role(operator, OperatorRole.MANAGER)
    found = match(session, card)
    if found.holder_id is None:
        raise NotFound("titulaire_carte_inconnu")
    if found.credential_id is None:
        if card.kind is None:
            raise InvalidValue("type_carte_inconnu")
        credential = Credential(
            kind=card.kind,
            serial=card.token_serial.upper() or None,
            holder_id=found.holder_id,
            state=state,
            emergency=False,
            created_at=now,
            updated_at=now,
        )
        session.add(credential)
        session.flush()
        before = None
        created = True
    else:
        credential = session.get(Credential, found.credential_id)  # type: ignore[assignment]
        assert credential is not None
        before = snapshot(credential)
        if credential.serial is None and card.token_serial:
            credential.serial = card.token_serial.upper()
        created = False
    known = set(
        session.execute(
            sa.select(col(Certificate.fingerprint_sha256)).where(
                col(Certificate.credential_id) == credential.id
            )
        ).scalars()
    )
    added = []
    for certificate in card.certificates:
        if certificate.fingerprint_sha256 in known or certificate.role is None:
            continue
        session.add(
            Certificate(
                credential_id=credential.id,  # type: ignore[arg-type]
                der=certificate.der,
                fingerprint_sha256=certificate.fingerprint_sha256,
                issuer=certificate.issuer[:500],
                serial_number=certificate.serial_number[:64],
                subject=certificate.subject[:500],
                not_before=certificate.not_before,
                not_after=certificate.not_after,
                role=certificate.role,
                last_status=certificate.status,
                last_validated_at=now,
            )
        )
        added.append(certificate.fingerprint_sha256)
    expiries = [c.not_after.date() for c in card.certificates if c.role is not None]
    if expiries:
        credential.expires_on = min(expiries)
    credential.updated_at = now
    session.add(credential)
    session.flush()
    journal.record(
        session,
        operator=operator.login,
        now=now,
        action="support.lecture_carte",
        entity_type="credential",
        entity_id=credential.id,
        reason=f"carte lue au guichet (correspondance : {found.by or 'titulaire'})",
        before=before,
        after={**snapshot(credential), "certificats_ajoutes": added},
    )
    return credential, created
