"""Requests (*demandes*): the guided path of a credential through the lifecycle.

A request is a credential created ``REQUESTED`` by ``create_request``, usually linked by
``replaces_id`` to the credential in service it renews. It is then received at the IT
service (``receive``: ``RECEIVED``, with its serial), handed over to its holder
(``hand_over``: ``ACTIVE``, by a habilitated operator), or cancelled (``cancel``). Each
step records its day (``requested_on``, ``received_on``, ``handed_over_on``), so that lead
times can be measured (``inventaire.plan.measured_lead_times``).

The renewal plan and the alerts follow by themselves: a requested or received replacement
stops the reminders to order, an active one takes the old credential out of the plan.

Every service runs in the caller's transaction, writes one journal entry per credential it
changes, and checks everything before changing anything: a refusal (a domain error with a
stable code) leaves the session as it found it. The moves themselves are those of
``inventaire.lifecycle``, which stays the one authority on states and roles.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col

from inventaire import journal, lifecycle
from inventaire.clock import paris_today
from inventaire.errors import Conflict, InvalidValue, NotFound, TransitionRefused
from inventaire.models import (
    CardModel,
    Credential,
    CredentialKind,
    CredentialState,
    Holder,
    Operator,
    OperatorRole,
    Organisation,
)
from inventaire.operators import check_role
from inventaire.vocabulary import SERIAL_PATTERN

S = CredentialState

# A request not yet handed over nor cancelled: it stops the reminders to order.
PENDING = lifecycle.PENDING


def create_request(
    session: Session,
    *,
    holder_email: str,
    kind: CredentialKind,
    model: CardModel | None = None,
    replaces_id: int | None = None,
    reason: str | None = None,
    operator: Operator,
    now: dt.datetime,
) -> Credential:
    """Record that a credential was ordered for a holder: a ``REQUESTED`` credential
    requested today (Paris), replacing ``replaces_id`` when given. Needs MANAGER.

    An agent card is of the new model unless ``model`` says otherwise (old-model cards are
    no longer made, except for emergencies); other kinds take no model.

    Refused when the holder is unknown; the model does not fit the kind; the credential
    to replace does not exist, is another holder's or of another kind, is not in service
    (active or suspended), or already has a pending replacement; or, without
    ``replaces_id``, when the holder already has a credential of that kind in service or
    a pending request for one: a second card of a kind is only given as a renewal.
    Emergency cards do not count: they bridge a request, they are not a holder's card.
    """
    check_role(operator, OperatorRole.MANAGER)
    email = holder_email.strip().lower()
    holder = session.execute(
        sa.select(Holder).where(col(Holder.email) == email)
    ).scalar_one_or_none()
    if holder is None:
        raise NotFound("titulaire_inconnu", email=email)
    assert holder.id is not None
    if kind is CredentialKind.AGENT_CARD:
        model = model or CardModel.NEW
    elif model is not None:
        raise InvalidValue("modele_reserve_carte_agent")
    if replaces_id is not None:
        _check_replaced(session, replaces_id, holder_id=holder.id, kind=kind)
    else:
        _check_no_card_of_kind(session, holder_id=holder.id, kind=kind, email=email)
    reason = reason.strip() if reason else None
    credential = Credential(
        kind=kind,
        model=model,
        serial=None,
        holder_id=holder.id,
        state=S.REQUESTED,
        emergency=False,
        replaces_id=replaces_id,
        requested_on=paris_today(now),
        created_at=now,
        updated_at=now,
    )
    session.add(credential)
    session.flush()
    _record(session, "demande.creation", credential, operator, now, reason=reason)
    return credential


def _check_replaced(
    session: Session, replaces_id: int, *, holder_id: int, kind: CredentialKind
) -> None:
    replaced = session.get(Credential, replaces_id)
    if replaced is None:
        raise NotFound("support_introuvable", id=replaces_id)
    if replaced.holder_id != holder_id:
        raise InvalidValue("demande_remplace_autre_titulaire", id=replaces_id)
    if replaced.kind is not kind:
        raise InvalidValue("demande_remplace_autre_type", id=replaces_id)
    if replaced.state not in lifecycle.IN_SERVICE:
        raise InvalidValue(
            "demande_remplace_hors_service", id=replaces_id, etat=replaced.state.value
        )
    pending = session.execute(
        sa.select(Credential)
        .where(col(Credential.replaces_id) == replaces_id, col(Credential.state).in_(PENDING))
        .order_by(col(Credential.id))
        .limit(1)
    ).scalar_one_or_none()
    if pending is not None:
        raise Conflict(
            "demande_remplacement_en_cours",
            id=replaces_id,
            demande=pending.id,
            etat=pending.state.value,
        )


def _check_no_card_of_kind(
    session: Session, *, holder_id: int, kind: CredentialKind, email: str
) -> None:
    others = _cards_of_kind(session, holder_id=holder_id, kind=kind)
    for other in others:
        if other.state in lifecycle.IN_SERVICE:
            raise Conflict("demande_support_en_service", email=email, id=other.id)
    for other in others:
        raise Conflict(
            "demande_deja_en_cours", email=email, demande=other.id, etat=other.state.value
        )


def _cards_of_kind(session: Session, *, holder_id: int, kind: CredentialKind) -> list[Credential]:
    """The holder's credentials of ``kind`` in service or pending, emergency cards apart."""
    query = (
        sa.select(Credential)
        .where(
            col(Credential.holder_id) == holder_id,
            col(Credential.kind) == kind,
            col(Credential.emergency).is_(False),
            col(Credential.state).in_(lifecycle.IN_SERVICE | PENDING),
        )
        .order_by(col(Credential.id))
    )
    return list(session.execute(query).scalars())


def receive(
    session: Session,
    *,
    request_id: int,
    serial: str,
    on: dt.date | None = None,
    operator: Operator,
    now: dt.datetime,
    reason: str | None = None,
) -> Credential:
    """The requested credential arrived at the IT service: ``RECEIVED`` on ``on`` (today
    by default), with its serial number (in capitals); ``reason``, if any, is journaled.

    Refused when the request is unknown or not ``REQUESTED``, the operator lacks the role
    the lifecycle asks for, the serial is malformed or already another credential's of the
    same kind, or the day is before the request or after today.
    """
    today = paris_today(now)
    credential = _request(session, request_id)
    _check_move(credential, S.RECEIVED, {S.REQUESTED}, "demande_reception_impossible", operator)
    serial = serial.strip().upper()
    if not SERIAL_PATTERN.match(serial):
        raise InvalidValue("numero_serie_invalide", valeur=serial)
    taken = session.execute(
        sa.select(col(Credential.id)).where(
            col(Credential.kind) == credential.kind,
            col(Credential.serial) == serial,
            col(Credential.id) != credential.id,
        )
    ).scalar()
    if taken is not None:
        raise Conflict("demande_numero_serie_existe", numero_serie=serial, id=taken)
    received_on = on or today
    _check_day(
        received_on,
        today=today,
        not_before=credential.requested_on,
        too_early="demande_date_avant_demande",
    )
    before = lifecycle.snapshot(credential)
    credential.serial = serial
    credential.received_on = received_on
    lifecycle.apply_state(credential, S.RECEIVED, today)
    _save(session, credential, now)
    _record(session, "demande.reception", credential, operator, now, before=before, reason=reason)
    return credential


@dataclass(frozen=True)
class Handover:
    """What ``hand_over`` changed: the request, now active, and the replaced credential
    when it was handed back at the same time."""

    credential: Credential
    returned: Credential | None = None


RETURN_REASON = "rendu à la remise de son remplaçant (demande n°{id})"


def hand_over(
    session: Session,
    *,
    request_id: int,
    on: dt.date | None = None,
    old_returned: bool = False,
    operator: Operator,
    now: dt.datetime,
    reason: str | None = None,
) -> Handover:
    """Hand the received credential over to its holder: ``ACTIVE``, handed over on ``on``
    (today by default); ``reason``, if any, is journaled. Needs the role the lifecycle
    asks for (ISSUER, habilitated).

    The replaced credential, renewed, leaves the renewal plan. With ``old_returned`` it
    is also handed back now: if it is still in service it becomes ``RETURNED``, in the
    same transaction and through ``lifecycle.transition`` (journaled as a
    ``support.transition``, with the role that move asks for: MANAGER); a suspended one
    cannot be returned (the lifecycle forbids it), and the whole handover is refused.

    Refused when the request is unknown or not ``RECEIVED``, the day is before the
    receipt or after today, or the holder has another credential of the kind in service
    that this one does not replace (emergency cards apart): a second card of a kind is
    only given as a renewal.
    """
    today = paris_today(now)
    credential = _request(session, request_id)
    _check_move(credential, S.ACTIVE, {S.RECEIVED}, "demande_remise_impossible", operator)
    handed_over_on = on or today
    _check_day(
        handed_over_on,
        today=today,
        not_before=credential.received_on,
        too_early="demande_date_avant_reception",
    )
    for other in _cards_of_kind(session, holder_id=credential.holder_id, kind=credential.kind):
        if other.state in lifecycle.IN_SERVICE and other.id != credential.replaces_id:
            raise Conflict("demande_remise_second_support", id=credential.id, autre=other.id)
    replaced = None
    if old_returned and credential.replaces_id is not None:
        replaced = session.get(Credential, credential.replaces_id)
        if replaced is not None and replaced.state in lifecycle.IN_SERVICE:
            # Checked before anything changes: a refusal must leave nothing half done.
            if not lifecycle.is_allowed(replaced.state, S.RETURNED):
                raise TransitionRefused(
                    id=replaced.id, depuis=replaced.state.value, vers=S.RETURNED.value
                )
            check_role(operator, lifecycle.required_role(replaced.state, S.RETURNED))
        else:
            replaced = None
    before = lifecycle.snapshot(credential)
    credential.handed_over_on = handed_over_on
    lifecycle.apply_state(credential, S.ACTIVE, today)
    _save(session, credential, now)
    _record(session, "demande.remise", credential, operator, now, before=before, reason=reason)
    if replaced is not None:
        assert replaced.id is not None and credential.id is not None
        lifecycle.transition(
            session,
            credential_id=replaced.id,
            target=S.RETURNED,
            operator=operator,
            reason=RETURN_REASON.format(id=credential.id),
            now=now,
        )
    return Handover(credential, replaced)


def cancel(
    session: Session,
    *,
    request_id: int,
    reason: str,
    operator: Operator,
    now: dt.datetime,
) -> Credential:
    """Cancel a request that is ``REQUESTED`` or ``RECEIVED``: ``CANCELLED``, with a
    mandatory reason (journaled). Needs MANAGER."""
    reason = reason.strip()
    if not reason:
        raise InvalidValue("motif_obligatoire")
    credential = _request(session, request_id)
    _check_move(credential, S.CANCELLED, PENDING, "demande_annulation_impossible", operator)
    before = lifecycle.snapshot(credential)
    lifecycle.apply_state(credential, S.CANCELLED, paris_today(now))
    _save(session, credential, now)
    _record(session, "demande.annulation", credential, operator, now, before=before, reason=reason)
    return credential


@dataclass(frozen=True)
class RequestLine:
    """One request as ``list_requests`` shows it.

    ``age_days``: days since the request while it is pending (None once handed over or
    cancelled). ``lead_days``: the lead time so far, from request to receipt once
    received, to today while still awaited, None for a request cancelled before receipt.
    """

    id: int
    kind: CredentialKind
    model: CardModel | None
    state: CredentialState
    first_name: str
    last_name: str
    email: str
    organisation: str
    serial: str | None
    replaces_id: int | None
    requested_on: dt.date | None  # unknown for a pending request recorded by an import
    received_on: dt.date | None
    handed_over_on: dt.date | None
    age_days: int | None
    lead_days: int | None

    @property
    def holder_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


def list_requests(
    session: Session, *, today: dt.date, pending_only: bool = False
) -> list[RequestLine]:
    """Every request (a credential with a request day, or still ``REQUESTED`` or
    ``RECEIVED``: an import may record a pending request without its day), the oldest
    first, those of unknown day last; only the pending ones with ``pending_only``. Ages
    and lead times are counted in days up to ``today``, when the request day is known."""
    query = (
        sa.select(Credential, Holder, col(Organisation.short_name))
        .join(Holder, col(Holder.id) == col(Credential.holder_id))
        .join(Organisation, col(Organisation.id) == col(Holder.organisation_id))
        .where(_is_request())
        .order_by(
            col(Credential.requested_on).is_(None),
            col(Credential.requested_on),
            col(Credential.id),
        )
    )
    if pending_only:
        query = query.where(col(Credential.state).in_(PENDING))
    lines = []
    for credential, holder, organisation in session.execute(query):
        requested_on = credential.requested_on
        assert credential.id is not None
        received_on = credential.received_on
        pending = credential.state in PENDING
        lead: int | None = None
        if requested_on is not None and received_on is not None:
            lead = (received_on - requested_on).days
        elif requested_on is not None and credential.state is S.REQUESTED:
            lead = (today - requested_on).days
        lines.append(
            RequestLine(
                id=credential.id,
                kind=credential.kind,
                model=credential.model,
                state=credential.state,
                first_name=holder.first_name,
                last_name=holder.last_name,
                email=holder.email,
                organisation=organisation,
                serial=credential.serial,
                replaces_id=credential.replaces_id,
                requested_on=requested_on,
                received_on=received_on,
                handed_over_on=credential.handed_over_on,
                age_days=(today - requested_on).days if pending and requested_on else None,
                lead_days=lead,
            )
        )
    return lines


def _is_request() -> sa.ColumnElement[bool]:
    """A request: a credential requested (with its day), or one still pending."""
    return sa.or_(col(Credential.requested_on).is_not(None), col(Credential.state).in_(PENDING))


def _request(session: Session, request_id: int) -> Credential:
    """The credential of request ``request_id``; only credentials that were requested
    (with a request day) or are still pending are requests."""
    credential = session.get(Credential, request_id)
    if credential is None:
        raise NotFound("demande_introuvable", id=request_id)
    if credential.requested_on is None and credential.state not in PENDING:
        raise NotFound("demande_support_sans_demande", id=request_id, etat=credential.state.value)
    return credential


def _check_move(
    credential: Credential,
    target: CredentialState,
    sources: set[CredentialState] | frozenset[CredentialState],
    code: str,
    operator: Operator,
) -> None:
    """Refuse unless the request is in one of ``sources`` (this step's own rule), the
    lifecycle allows the move, and the operator has the role the lifecycle asks for."""
    source = credential.state
    if source not in sources:
        raise TransitionRefused(code, id=credential.id, etat=source.value)
    if not lifecycle.is_allowed(source, target):
        raise TransitionRefused(id=credential.id, depuis=source.value, vers=target.value)
    check_role(operator, lifecycle.required_role(source, target))


def _check_day(day: dt.date, *, today: dt.date, not_before: dt.date | None, too_early: str) -> None:
    """Refuse a day after today, or before the previous step (error ``too_early``)."""
    if day > today:
        raise InvalidValue("demande_date_future", date=day.isoformat())
    if not_before is not None and day < not_before:
        raise InvalidValue(too_early, date=day.isoformat(), limite=not_before.isoformat())


def _save(session: Session, credential: Credential, now: dt.datetime) -> None:
    credential.updated_at = now
    session.add(credential)
    session.flush()  # the version check happens here: a concurrent change raises


def _record(
    session: Session,
    action: str,
    credential: Credential,
    operator: Operator,
    now: dt.datetime,
    *,
    before: dict[str, object] | None = None,
    reason: str | None = None,
) -> None:
    journal.record(
        session,
        operator=operator.login,
        now=now,
        action=action,
        entity_type="credential",
        entity_id=credential.id,
        reason=(reason or "").strip() or None,
        before=before,
        after=lifecycle.snapshot(credential),
    )
