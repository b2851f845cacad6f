"""Cards read at the desk: matching them with the inventory, and registering what was read.

A card is matched by the fingerprint of one of its certificates, then by the token's serial
number, then by its holder (the e-mail address of a certificate, else the name). Registering
updates the matched credential (serial number, certificates, expiry) or creates one for the
matched holder, with a journal entry; it never creates a holder from certificate data.

Handing a card over and recording a past handover are told apart here (issue 8): a card
becoming active *now* is a handover, which needs a habilitated operator (ISSUER); a card its
holder already uses, or a move read from an existing inventory, is a record of a past fact,
which a MANAGER may write and the journal keeps under its own action, ``RECORD_ACTION``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col

from inventaire import journal, lifecycle
from inventaire.clock import paris_today
from inventaire.enums import CertificateRole, CredentialKind, CredentialState, OperatorRole
from inventaire.errors import InvalidValue, NotFound, PermissionDenied
from inventaire.lifecycle import snapshot
from inventaire.models import Certificate, Credential, Holder, Operator
from inventaire.operators import check_role, effective_roles
from inventaire.vocabulary import fold

S = CredentialState

# The journal action of a handover recorded after the fact (not a handover: see above).
RECORD_ACTION = "support.enregistrement"


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


def is_handover(source: CredentialState, target: CredentialState) -> bool:
    """Whether moving from ``source`` to ``target`` gives the card to its holder: the moves
    the lifecycle reserves to habilitated operators."""
    return lifecycle.required_role(source, target) is OperatorRole.ISSUER


def required_role(
    source: CredentialState, target: CredentialState, *, record: bool
) -> OperatorRole:
    """The role moving from ``source`` to ``target`` needs.

    Done now, what the lifecycle says (a handover needs ISSUER). Recorded after the fact
    (``record``: an existing inventory imported, a card its holder already uses), MANAGER:
    writing down a past handover hands nothing over.
    """
    return OperatorRole.MANAGER if record else lifecycle.required_role(source, target)


def recorded_dates(
    source: CredentialState,
    target: CredentialState,
    *,
    received_on: dt.date | None,
    handed_over_on: dt.date | None,
    today: dt.date,
) -> dict[str, dt.date]:
    """The dates recording a past move sets: those the lifecycle implies, except the day of
    handover, which is the known one or stays unknown, never today by pretence."""
    dates = lifecycle.implied_dates(
        source, target, received_on=received_on, handed_over_on=handed_over_on, today=today
    )
    dates.pop("handed_over_on", None)
    return dates


def first_state(operator: Operator, *, already_handed_over: bool) -> CredentialState:
    """The state of a card registered for the first time when none is asked for.

    Active when its holder already uses it (a record), or when the operator is habilitated
    (the card is handed over at the desk); received otherwise, waiting for a habilitated
    operator to hand it over.
    """
    if already_handed_over or OperatorRole.ISSUER in effective_roles(operator):
        return S.ACTIVE
    return S.RECEIVED


def _check_first_state(
    operator: Operator,
    target: CredentialState,
    *,
    already_handed_over: bool,
    handed_over_on: dt.date | None,
    today: dt.date,
) -> None:
    """Refuse a new card's state the lifecycle or the operator's roles do not allow.

    A card read at the desk for the first time is there: received. It may then move where
    the lifecycle lets a received card go; a card its holder already uses is active.
    """
    if already_handed_over:
        if target is not S.ACTIVE:
            raise InvalidValue("deja_remise_etat", etat=target.value)
        if handed_over_on is not None and handed_over_on > today:
            raise InvalidValue("date_remise_future", date=handed_over_on.isoformat())
        check_role(operator, required_role(S.RECEIVED, S.ACTIVE, record=True))
        return
    if target is S.RECEIVED:
        return
    if not lifecycle.is_allowed(S.RECEIVED, target):
        raise InvalidValue("etat_enregistrement_refuse", etat=target.value)
    role = required_role(S.RECEIVED, target, record=False)
    if role not in effective_roles(operator):
        raise PermissionDenied("remise_non_habilitee", login=operator.login, role=role.value)


def register(
    session: Session,
    card: ScannedCard,
    *,
    operator: Operator,
    now: dt.datetime,
    state: CredentialState | None = None,
    already_handed_over: bool = False,
    handed_over_on: dt.date | None = None,
) -> tuple[Credential, bool]:
    """Record ``card`` in the inventory; return the credential and whether it was created.

    A matched credential is updated (serial number, certificates, expiry); its state does
    not change. A new one enters as received (the card is at the desk), then moves to
    ``state`` (by default ``first_state``) through the lifecycle: handing it over needs
    ISSUER and records today as the day of handover. With ``already_handed_over`` the card
    is recorded active, a past fact a MANAGER may write (``RECORD_ACTION``), its day of
    handover ``handed_over_on`` or unknown.

    Refused, with nothing written, when the operator lacks the role, the holder is unknown,
    or the state is one a new card cannot take.
    """
    check_role(operator, OperatorRole.MANAGER)
    if handed_over_on is not None and not already_handed_over:
        raise InvalidValue("remise_le_sans_deja_remise")
    today = paris_today(now)
    found = match(session, card)
    if found.holder_id is None:
        raise NotFound("titulaire_carte_inconnu")
    target = S.RECEIVED
    if found.credential_id is None:
        if card.kind is None:
            raise InvalidValue("type_carte_inconnu")
        target = state or first_state(operator, already_handed_over=already_handed_over)
        _check_first_state(
            operator,
            target,
            already_handed_over=already_handed_over,
            handed_over_on=handed_over_on,
            today=today,
        )
        credential = Credential(
            kind=card.kind,
            serial=card.token_serial.upper() or None,
            holder_id=found.holder_id,
            state=S.ACTIVE if already_handed_over else S.RECEIVED,
            emergency=False,
            handed_over_on=handed_over_on if already_handed_over else None,
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
    matched_by = found.by or "titulaire"
    recorded = created and already_handed_over
    journal.record(
        session,
        operator=operator.login,
        now=now,
        action=RECORD_ACTION if recorded else "support.lecture_carte",
        entity_type="credential",
        entity_id=credential.id,
        reason=(
            f"carte déjà remise à son titulaire, enregistrée au guichet "
            f"(correspondance : {matched_by})"
            if recorded
            else f"carte lue au guichet (correspondance : {matched_by})"
        ),
        before=before,
        after={**snapshot(credential), "certificats_ajoutes": added},
    )
    if created and credential.state is not target:
        # Journaled as any handover (or other move) of a received card.
        assert credential.id is not None
        lifecycle.transition(
            session,
            credential_id=credential.id,
            target=target,
            operator=operator,
            reason=(
                "remise au titulaire au guichet"
                if is_handover(S.RECEIVED, target)
                else "état choisi à l'enregistrement au guichet"
            ),
            now=now,
        )
    return credential, created
