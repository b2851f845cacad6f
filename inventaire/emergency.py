"""Old-model agent cards handed out in emergency (DESIGN §1, §3): issuing one, taking it
back, the register, and the IT service's reminders.

While the new-model agent cards are delayed, the IT service hands out an old-model card so
that a judge or clerk is not locked out of the platform. Each issuance is a handover (it
needs a habilitated operator, ``ISSUER``) and is recorded: the card, its holder, who handed
it over, why, the pending new-model request it bridges, and when it must come back.

An issuance is *outstanding* while its card has not been given back and is still in service
(a card recorded lost, damaged or revoked is no longer out there to take back). An
outstanding card is *to take back* once the request it bridges is handed over (``ACTIVE``),
and *overdue* the day after its planned return date.

Reminders for the IT service: ``TO_RETURN`` once, when the card becomes to take back;
``OVERDUE`` the day after the return date, then every ``weekly_every_days`` days while it
stays out (occurrences 0, 1, 2...). On a given day only the more urgent level is due: an
overdue card gets ``OVERDUE`` (whose mail says the new card was handed over, when it was).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from inventaire import alerts, journal
from inventaire.clock import paris_today
from inventaire.enums import AlertLevel, CardModel, CredentialKind, CredentialState, OperatorRole
from inventaire.errors import Conflict, InvalidValue, NotFound, TransitionRefused
from inventaire.lifecycle import (
    IN_SERVICE,
    PENDING,
    apply_state,
    is_allowed,
    required_role,
    snapshot,
)
from inventaire.models import (
    Alert,
    AlertMute,
    Credential,
    EmergencyIssuance,
    Holder,
    Operator,
    Organisation,
)
from inventaire.operators import check_role
from inventaire.states import is_outstanding, is_overdue
from inventaire.vocabulary import SERIAL_PATTERN

S = CredentialState

# A new-model request an emergency card may bridge: ordered, not yet handed over.
PENDING_REQUEST = PENDING


_e = EmergencyIssuance.__table__  # type: ignore[attr-defined]
_c = Credential.__table__  # type: ignore[attr-defined]
_h = Holder.__table__  # type: ignore[attr-defined]
_o = Organisation.__table__  # type: ignore[attr-defined]
_a = Alert.__table__  # type: ignore[attr-defined]
_m = AlertMute.__table__  # type: ignore[attr-defined]


def _french(day: dt.date) -> str:
    # Dates in error parameters are read by people: JJ/MM/AAAA.
    return f"{day:%d/%m/%Y}"


@dataclass(frozen=True)
class EmergencyLine:
    """One issuance of the register, as of ``today`` (``list_issuances``)."""

    id: int
    credential_id: int
    serial: str | None
    card_state: CredentialState
    holder_id: int
    holder_name: str  # "Claire Martin"
    holder_email: str
    organisation: str  # short name
    issued_by: str
    reason: str
    issued_on: dt.date
    return_due_on: dt.date
    request_id: int | None
    request_state: CredentialState | None
    request_handed_over_on: dt.date | None
    returned_on: dt.date | None
    to_take_back: bool  # outstanding, and the request it bridges was handed over
    overdue: bool  # outstanding, and its planned return date has passed

    @property
    def outstanding(self) -> bool:
        return is_outstanding(self.returned_on, self.card_state)


def due_alert(
    line: EmergencyLine, *, today: dt.date, weekly_every_days: int = 7
) -> tuple[AlertLevel, int] | None:
    """The reminder level and occurrence due ``today`` for one issuance, or None."""
    if line.overdue:
        days_overdue = (today - line.return_due_on).days
        return AlertLevel.OVERDUE, (days_overdue - 1) // weekly_every_days
    if line.to_take_back:
        return AlertLevel.TO_RETURN, 0
    return None


def issue(
    session: Session,
    *,
    holder_email: str,
    serial: str,
    reason: str,
    request_id: int | None = None,
    without_request: bool = False,
    return_due_on: dt.date | None = None,
    return_after_days: int,
    operator: Operator,
    now: dt.datetime,
) -> EmergencyIssuance:
    """Hand an old-model agent card over in emergency, in the caller's transaction.

    Creates the card (``AGENT_CARD``, model ``OLD``, emergency flag, ``ACTIVE``, handed
    over today) and its issuance record, due back on ``return_due_on`` or
    ``return_after_days`` from today; journaled as ``urgence.emission`` on the card.

    ``request_id`` names the pending (requested or received) new-model agent card request
    of the same holder that the card bridges; it is required unless ``without_request``,
    and then ``reason`` says why. Refused, with nothing written, when the operator is not
    habilitated (``ISSUER``), the reason is empty, the holder is unknown or inactive, or
    already has an emergency card out, the serial is invalid or already an agent card's,
    the request is missing, another holder's, not a new-model agent card or not pending,
    or the return date is past.
    """
    check_role(operator, OperatorRole.ISSUER)
    today = paris_today(now)
    reason = reason.strip()
    if not reason:
        raise InvalidValue("motif_obligatoire")
    if without_request and request_id is not None:
        raise InvalidValue("urgence_demande_ou_sans_demande")
    if not without_request and request_id is None:
        raise InvalidValue("urgence_demande_obligatoire")
    serial = " ".join(serial.split()).upper()
    if not serial:
        raise InvalidValue("urgence_numero_serie_obligatoire")
    if not SERIAL_PATTERN.match(serial):
        raise InvalidValue("urgence_numero_serie_invalide", valeur=serial)
    due = return_due_on or today + dt.timedelta(days=return_after_days)
    if due < today:
        raise InvalidValue("urgence_retour_prevu_passe", date=_french(due))

    email = holder_email.strip().lower()
    holder = session.execute(sa.select(Holder).where(_h.c.email == email)).scalar_one_or_none()
    if holder is None:
        raise NotFound("titulaire_inconnu", email=email)
    if not holder.active:
        raise InvalidValue("urgence_titulaire_inactif", email=email)
    assert holder.id is not None
    _check_no_card_out(session, holder.id)
    used = session.execute(
        sa.select(_c.c.id).where(
            _c.c.serial == serial, _c.c.kind == CredentialKind.AGENT_CARD.value
        )
    ).scalar_one_or_none()
    if used is not None:
        raise Conflict("urgence_numero_serie_utilise", numero_serie=serial, id=used)
    if request_id is not None:
        _check_request(session, request_id, holder.id)

    card = Credential(
        kind=CredentialKind.AGENT_CARD,
        model=CardModel.OLD,
        serial=serial,
        holder_id=holder.id,
        state=S.ACTIVE,
        emergency=True,
        handed_over_on=today,
        created_at=now,
        updated_at=now,
    )
    session.add(card)
    session.flush()
    assert card.id is not None
    issuance = EmergencyIssuance(
        credential_id=card.id,
        holder_id=holder.id,
        issued_by=operator.login,
        reason=reason,
        request_id=request_id,
        issued_on=today,
        return_due_on=due,
        created_at=now,
    )
    session.add(issuance)
    session.flush()
    journal.record(
        session,
        operator=operator.login,
        now=now,
        action="urgence.emission",
        entity_type="credential",
        entity_id=card.id,
        reason=reason,
        after={**snapshot(card), **_record_state(issuance)},
    )
    return issuance


def _record_state(issuance: EmergencyIssuance) -> dict[str, Any]:
    """The journal's view of an issuance: ids and dates only."""
    return {
        "emergency_issuance_id": issuance.id,
        "request_id": issuance.request_id,
        "issued_on": issuance.issued_on.isoformat(),
        "return_due_on": issuance.return_due_on.isoformat(),
        "returned_on": issuance.returned_on.isoformat() if issuance.returned_on else None,
    }


def _check_no_card_out(session: Session, holder_id: int) -> None:
    """One emergency card at a time per holder: the next one waits for the return (or
    for the first to be recorded lost, damaged or revoked)."""
    out = session.execute(
        sa.select(_e.c.id)
        .join(_c, _c.c.id == _e.c.credential_id)
        .where(
            _e.c.holder_id == holder_id,
            _e.c.returned_on.is_(None),
            _c.c.state.in_([state.value for state in IN_SERVICE]),
        )
        .limit(1)
    ).scalar_one_or_none()
    if out is not None:
        raise Conflict("urgence_en_cours", id=out)


def _check_request(session: Session, request_id: int, holder_id: int) -> None:
    request = session.get(Credential, request_id)
    if request is None:
        raise NotFound("demande_introuvable", id=request_id)
    if request.holder_id != holder_id:
        raise InvalidValue("urgence_demande_autre_titulaire", id=request_id)
    if request.kind is not CredentialKind.AGENT_CARD or request.model is not CardModel.NEW:
        raise InvalidValue("urgence_demande_pas_nouveau_modele", id=request_id)
    if request.state not in PENDING_REQUEST:
        raise InvalidValue(
            "urgence_demande_pas_en_attente", id=request_id, etat=request.state.value
        )


def give_back(
    session: Session,
    *,
    issuance_id: int,
    on: dt.date | None = None,
    reason: str | None = None,
    operator: Operator,
    now: dt.datetime,
) -> EmergencyIssuance:
    """Record that an emergency card came back on ``on`` (default: today), in the caller's
    transaction: the card becomes ``RETURNED`` and its reminders stop; journaled as
    ``urgence.restitution`` on the card, with ``reason`` if given (else a standard one).

    Refused, with nothing written, when the operator is not a ``MANAGER``, the issuance is
    unknown or already given back, the date is in the future or before the issuance, or
    the card's state cannot become ``RETURNED`` (a suspended card must be found first).
    """
    check_role(operator, required_role(S.ACTIVE, S.RETURNED))
    today = paris_today(now)
    issuance = session.get(EmergencyIssuance, issuance_id)
    if issuance is None:
        raise NotFound("urgence_introuvable", id=issuance_id)
    if issuance.returned_on is not None:
        raise InvalidValue(
            "urgence_deja_restituee", id=issuance_id, date=_french(issuance.returned_on)
        )
    day = on or today
    if day > today:
        raise InvalidValue("urgence_restitution_future", date=_french(day))
    if day < issuance.issued_on:
        raise InvalidValue(
            "urgence_restitution_avant_emission",
            date=_french(day),
            emission=_french(issuance.issued_on),
        )
    card = session.get(Credential, issuance.credential_id)
    assert card is not None  # a foreign key
    if not is_allowed(card.state, S.RETURNED):
        raise TransitionRefused(id=card.id, depuis=card.state.value, vers=S.RETURNED.value)
    check_role(operator, required_role(card.state, S.RETURNED))
    before = {**snapshot(card), **_record_state(issuance)}
    apply_state(card, S.RETURNED, today)
    card.updated_at = now
    issuance.returned_on = day
    session.add(card)
    session.add(issuance)
    session.flush()  # the card's version check happens here
    journal.record(
        session,
        operator=operator.login,
        now=now,
        action="urgence.restitution",
        entity_type="credential",
        entity_id=card.id,
        reason=(reason or "").strip() or "carte d'urgence restituée",
        before=before,
        after={**snapshot(card), **_record_state(issuance)},
    )
    return issuance


@dataclass(frozen=True)
class BridgeableRequest:
    """A pending new-model agent card request an emergency card may bridge."""

    id: int
    state: CredentialState
    requested_on: dt.date | None


@dataclass(frozen=True)
class HolderForIssuance:
    """A holder as the issuance form shows it: who, and the requests a card may bridge."""

    id: int
    name: str  # "Claire Martin"
    email: str
    organisation: str  # short name
    active: bool
    requests: tuple[BridgeableRequest, ...]  # the oldest first


def holder_for_issuance(session: Session, *, holder_email: str) -> HolderForIssuance | None:
    """The holder of ``holder_email`` (None if unknown) with their pending new-model agent
    card requests: what an emergency card handed to them may bridge (``issue``)."""
    email = holder_email.strip().lower()
    row = session.execute(
        sa.select(
            _h.c.id, _h.c.first_name, _h.c.last_name, _h.c.email, _h.c.active, _o.c.short_name
        )
        .join(_o, _o.c.id == _h.c.organisation_id)
        .where(_h.c.email == email)
    ).one_or_none()
    if row is None:
        return None
    pending = session.execute(
        sa.select(_c.c.id, _c.c.state, _c.c.requested_on)
        .where(
            _c.c.holder_id == row.id,
            _c.c.kind == CredentialKind.AGENT_CARD.value,
            _c.c.model == CardModel.NEW.value,
            _c.c.state.in_([state.value for state in PENDING_REQUEST]),
        )
        .order_by(_c.c.id)
    ).all()
    return HolderForIssuance(
        id=row.id,
        name=f"{row.first_name} {row.last_name}",
        email=row.email,
        organisation=row.short_name,
        active=bool(row.active),
        requests=tuple(
            BridgeableRequest(id=r.id, state=CredentialState(r.state), requested_on=r.requested_on)
            for r in pending
        ),
    )


def list_issuances(
    session: Session,
    *,
    today: dt.date,
    overdue_only: bool = False,
    to_take_back_only: bool = False,
) -> list[EmergencyLine]:
    """The register of emergency issuances as of ``today``, the oldest first.

    ``overdue_only`` and ``to_take_back_only`` each narrow the list (both: the cards that
    are both).
    """
    request = _c.alias("request")
    query = (
        sa.select(
            _e.c.id,
            _e.c.credential_id,
            _c.c.serial,
            _c.c.state.label("card_state"),
            _e.c.holder_id,
            _h.c.first_name,
            _h.c.last_name,
            _h.c.email,
            _o.c.short_name,
            _e.c.issued_by,
            _e.c.reason,
            _e.c.issued_on,
            _e.c.return_due_on,
            _e.c.request_id,
            request.c.state.label("request_state"),
            request.c.handed_over_on.label("request_handed_over_on"),
            _e.c.returned_on,
        )
        .join(_c, _c.c.id == _e.c.credential_id)
        .join(_h, _h.c.id == _e.c.holder_id)
        .join(_o, _o.c.id == _h.c.organisation_id)
        .outerjoin(request, request.c.id == _e.c.request_id)
        .order_by(_e.c.issued_on, _e.c.id)
    )
    if overdue_only or to_take_back_only:
        query = query.where(_e.c.returned_on.is_(None))
    lines = []
    for row in session.execute(query):
        card_state = CredentialState(row.card_state)
        request_state = CredentialState(row.request_state) if row.request_state else None
        outstanding = is_outstanding(row.returned_on, card_state)
        line = EmergencyLine(
            id=row.id,
            credential_id=row.credential_id,
            serial=row.serial,
            card_state=card_state,
            holder_id=row.holder_id,
            holder_name=f"{row.first_name} {row.last_name}",
            holder_email=row.email,
            organisation=row.short_name,
            issued_by=row.issued_by,
            reason=row.reason,
            issued_on=row.issued_on,
            return_due_on=row.return_due_on,
            request_id=row.request_id,
            request_state=request_state,
            request_handed_over_on=row.request_handed_over_on,
            returned_on=row.returned_on,
            to_take_back=outstanding and request_state is S.ACTIVE,
            overdue=is_overdue(row.returned_on, card_state, row.return_due_on, today=today),
        )
        if overdue_only and not line.overdue:
            continue
        if to_take_back_only and not line.to_take_back:
            continue
        lines.append(line)
    return lines


def plan_emergency_alerts(
    session: Session,
    *,
    today: dt.date,
    now: dt.datetime,
    recipients: Sequence[str],
    message_domain: str,
    weekly_every_days: int = 7,
) -> alerts.Planned:
    """Write the IT service's reminders due ``today`` to the outbox and group them into
    digests, in the caller's transaction; return what was written.

    For each outstanding card to take back or overdue (``due_alert``), one alert per
    recipient on the card, whose credential is the emergency card. Like the renewal
    alerts, each (card, level, recipient, occurrence) is inserted at most once, however
    often this runs: the unique constraint says so and repeats are skipped. A muted card
    gets none. The register is small (the cards out at one time), so the rule is applied
    here in Python, by the very code that lists it.
    """
    addresses = sorted({address.strip().lower() for address in recipients if address.strip()})
    muted = set(session.execute(sa.select(_m.c.credential_id)).scalars())
    rows: list[dict[str, Any]] = []
    if addresses:
        for line in list_issuances(session, today=today):
            due = due_alert(line, today=today, weekly_every_days=weekly_every_days)
            if due is None or line.credential_id in muted:
                continue
            level, occurrence = due
            rows.extend(
                {
                    "credential_id": line.credential_id,
                    "level": level.value,
                    "recipient": address,
                    "occurrence": occurrence,
                    "due_on": today,
                    "created_at": now,
                }
                for address in addresses
            )
    inserted = _insert_once(session, rows)
    digests = alerts.group_into_digests(session, now=now, message_domain=message_domain)
    return alerts.Planned(alerts=inserted, digests=digests)


_CHUNK = 500


def _insert_once(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert alert rows, skipping those already planned; return how many were new."""
    if not rows:
        return 0
    connection = session.connection()
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    inserted = 0
    for start in range(0, len(rows), _CHUNK):
        # One multi-row statement: its row count is the number of rows really inserted.
        statement = (
            insert(_a)
            .values(rows[start : start + _CHUNK])
            .on_conflict_do_nothing(
                index_elements=["credential_id", "level", "recipient", "occurrence"]
            )
        )
        # Kept by request: some drivers forget the row count of an INSERT once its
        # cursor is closed (psycopg 3).
        result = connection.execute(statement.execution_options(preserve_rowcount=True))
        inserted += max(result.rowcount, 0)
    return inserted
