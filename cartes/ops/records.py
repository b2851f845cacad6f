"""The record (« fiche ») of one credential: everything known about it, and what an
operator may do with it.

``load_record`` reads it in one transaction and returns a plain ``Record``; each action
(a lifecycle transition, a step of a request, ordering a replacement, muting its alerts,
validating its certificates again) opens its own write transaction, checks the operator
and calls ``inventaire``, which holds every rule. A change is refused, with nothing
written, when the credential changed since it was read (``expected_version``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from cartes import journal_text
from cartes.ops.certificates import Revalidation
from cartes.workspace import Workspace
from inventaire.enums import (
    AlertLevel,
    CardModel,
    CertificateRole,
    CredentialKind,
    CredentialState,
    HolderRole,
    OperatorRole,
)
from inventaire.plan import Replacement, best_replacement
from inventaire.renewal import outlook

if TYPE_CHECKING:  # SQLAlchemy is imported by the first call, not at start-up
    from sqlmodel import Session

    from inventaire.models import Credential, Operator
    from inventaire.personal import EmergencyData, MuteData

S = CredentialState

# How many journal entries the record shows (the newest).
HISTORY_LIMIT = 50


class ActionKind(StrEnum):
    TRANSITION = "TRANSITION"  # a move of the lifecycle, to ``Action.target``
    RECEIVE = "RECEIVE"  # request step: arrived at the IT service (serial, day)
    HAND_OVER = "HAND_OVER"  # request step: handed over to its holder (day)
    CANCEL = "CANCEL"  # request step: cancelled
    ORDER_REPLACEMENT = "ORDER_REPLACEMENT"  # a renewal request replacing this one
    MUTE = "MUTE"
    UNMUTE = "UNMUTE"
    REVALIDATE = "REVALIDATE"


# The step of a request that makes each move of a pending request: it records what a
# bare transition would not (the serial and day of receipt, the day of handover, the
# replaced card handed back).
REQUEST_STEPS = {
    S.RECEIVED: ActionKind.RECEIVE,
    S.ACTIVE: ActionKind.HAND_OVER,
    S.CANCELLED: ActionKind.CANCEL,
}


@dataclass(frozen=True)
class Action:
    """Something the operator may ask on this record, and the role it needs."""

    kind: ActionKind
    role: OperatorRole
    target: CredentialState | None = None  # the state it leads to, if it changes state


@dataclass(frozen=True)
class HolderView:
    id: int
    first_name: str
    last_name: str
    email: str
    role: HolderRole
    organisation: str
    active: bool

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class CertificateView:
    id: int
    role: CertificateRole
    subject: str
    issuer: str
    serial_number: str
    not_before: dt.datetime
    not_after: dt.datetime
    status: str | None  # valide, invalide, indetermine, illisible; None: never validated
    validated_at: dt.datetime | None


@dataclass(frozen=True)
class LinkedCredential:
    """A credential this one replaces, or one that replaces it."""

    id: int
    kind: CredentialKind
    state: CredentialState
    serial: str | None
    requested_on: dt.date | None
    received_on: dt.date | None
    handed_over_on: dt.date | None


@dataclass(frozen=True)
class RenewalView:
    """Where the renewal of a credential in service stands (DESIGN §4), by the plan's
    rules: ``inventaire.renewal.outlook`` and ``inventaire.plan.best_replacement``."""

    expires_on: dt.date
    days_left: int  # negative once expired
    order_by: dt.date
    order_late: bool
    replacement: Replacement  # the best pending replacement, or none
    replacement_requested_on: dt.date | None
    arrival: dt.date  # predicted arrival of the replacement (ordered today if none is)
    gap_days: int  # 0: no gap
    due_level: AlertLevel | None  # the alert due today, if one is (muted or not)


@dataclass(frozen=True)
class HistoryLine:
    seq: int
    when: str  # Paris time, JJ/MM/AAAA HH:MM:SS
    operator: str
    action: str  # French
    subject: str  # « support n°12 », « titulaire n°3 »
    reason: str
    changes: str


@dataclass(frozen=True)
class Record:
    id: int
    version: int
    kind: CredentialKind
    model: CardModel | None
    serial: str | None
    state: CredentialState
    emergency: bool
    requested_on: dt.date | None
    received_on: dt.date | None
    handed_over_on: dt.date | None
    expires_on: dt.date | None
    holder: HolderView
    certificates: tuple[CertificateView, ...]
    replaces: LinkedCredential | None
    replacements: tuple[LinkedCredential, ...]  # every credential ordered to replace it
    is_request: bool
    renewal: RenewalView | None  # None when not in service, without expiry, or renewed
    renewed_by: int | None  # the replacement in service, when renewed
    mute: MuteData | None
    emergency_issuance: EmergencyData | None
    bridged_by: tuple[int, ...]  # emergency cards out that bridge this request
    history: tuple[HistoryLine, ...]
    actions: tuple[Action, ...]
    today: dt.date


def load_record(workspace: Workspace, credential_id: int) -> Record:
    """Everything the record of ``credential_id`` shows; ``NotFound`` if there is none.

    Reading it reads its holder's record: the reading is written to the register of
    consultations (purpose « fiche ») before the record is returned, and refused
    (``AccessNotRecorded``) when it cannot be."""
    import sqlalchemy as sa
    from sqlmodel import col

    from cartes.ops import personal as personal_ops
    from inventaire import db, journal, lifecycle, operators, personal
    from inventaire.errors import NotFound
    from inventaire.models import (
        AlertMute,
        Certificate,
        Credential,
        EmergencyIssuance,
        Holder,
        Organisation,
    )

    now = workspace.now()
    today = workspace.today()
    with db.read_session(workspace.engine) as session:
        operators.require(session, workspace.operator_login, OperatorRole.READER)
        credential = session.get(Credential, credential_id)
        if credential is None:
            raise NotFound("support_introuvable", id=credential_id)
        holder = session.get(Holder, credential.holder_id)
        assert holder is not None and holder.id is not None
        organisation = session.get(Organisation, holder.organisation_id)
        certificates = tuple(
            CertificateView(
                id=c.id,  # type: ignore[arg-type]
                role=c.role,
                subject=c.subject,
                issuer=c.issuer,
                serial_number=c.serial_number,
                not_before=c.not_before,
                not_after=c.not_after,
                status=c.last_status,
                validated_at=c.last_validated_at,
            )
            for c in session.execute(
                sa.select(Certificate)
                .where(col(Certificate.credential_id) == credential_id)
                .order_by(col(Certificate.role), col(Certificate.id))
            ).scalars()
        )
        replaced = (
            session.get(Credential, credential.replaces_id) if credential.replaces_id else None
        )
        replacements = tuple(
            _linked(c)
            for c in session.execute(
                sa.select(Credential)
                .where(col(Credential.replaces_id) == credential_id)
                .order_by(col(Credential.id))
            ).scalars()
        )
        mute_row = session.get(AlertMute, credential_id)
        mute = personal.mute_data(mute_row) if mute_row else None
        issuance = session.execute(
            sa.select(EmergencyIssuance).where(
                col(EmergencyIssuance.credential_id) == credential_id
            )
        ).scalar_one_or_none()
        bridged_by = tuple(
            session.execute(
                sa.select(col(EmergencyIssuance.credential_id))
                .where(
                    col(EmergencyIssuance.request_id) == credential_id,
                    col(EmergencyIssuance.returned_on).is_(None),
                )
                .order_by(col(EmergencyIssuance.id))
            ).scalars()
        )
        entries = [
            *journal.entries(
                session,
                journal.JournalFilter(entity_type="credential", entity_id=credential_id),
                limit=HISTORY_LIMIT,
            ),
            *journal.entries(
                session,
                journal.JournalFilter(entity_type="holder", entity_id=holder.id),
                limit=HISTORY_LIMIT,
            ),
        ]
        entries.sort(key=lambda entry: entry.seq, reverse=True)
        history = tuple(
            HistoryLine(
                seq=entry.seq,
                when=journal_text.paris_time(entry.recorded_at),
                operator=entry.operator,
                action=journal_text.action_label(entry.action),
                subject=journal_text.subject(entry),
                reason=entry.reason or "",
                changes=journal_text.changes(entry),
            )
            for entry in entries[:HISTORY_LIMIT]
        )

        state = credential.state
        in_service_replacement = next(
            (r for r in replacements if r.state in lifecycle.IN_SERVICE), None
        )
        pending = [r for r in replacements if r.state in lifecycle.PENDING]
        view = None
        if (
            state in lifecycle.IN_SERVICE
            and credential.expires_on is not None
            and in_service_replacement is None
        ):
            view = _renewal_view(
                workspace,
                credential.kind,
                credential.expires_on,
                pending,
                today=today,
                emergency=credential.emergency,
            )
        is_request = credential.requested_on is not None or state in lifecycle.PENDING
        actions = _actions(
            state,
            is_request=is_request,
            may_order=(
                state in lifecycle.IN_SERVICE
                and not credential.emergency
                and not pending
                and in_service_replacement is None
            ),
            muted=mute is not None,
            has_certificates=bool(certificates),
        )
        assert credential.version is not None and credential.id is not None
        record = Record(
            id=credential.id,
            version=credential.version,
            kind=credential.kind,
            model=credential.model,
            serial=credential.serial,
            state=state,
            emergency=credential.emergency,
            requested_on=credential.requested_on,
            received_on=credential.received_on,
            handed_over_on=credential.handed_over_on,
            expires_on=credential.expires_on,
            holder=HolderView(
                id=holder.id,
                first_name=holder.first_name,
                last_name=holder.last_name,
                email=holder.email,
                role=holder.role,
                organisation=organisation.short_name if organisation else "—",
                active=holder.active,
            ),
            certificates=certificates,
            replaces=_linked(replaced) if replaced is not None else None,
            replacements=replacements,
            is_request=is_request,
            renewal=view,
            renewed_by=in_service_replacement.id if in_service_replacement else None,
            mute=mute,
            emergency_issuance=(
                personal.emergency_data(issuance) if issuance is not None else None
            ),
            bridged_by=bridged_by,
            history=history,
            actions=actions,
            today=today,
        )
        # The record shows its holder in full: a reading of their record, for the register
        # (``cartes.ops.personal``), unless this operator's last look is recent enough to be
        # the same one (a refresh, the reload after an action: ``COALESCED``), which a read
        # transaction can tell without taking the write lock.
        seen = personal.already_recorded(
            session,
            holder_id=holder.id,
            operator=workspace.operator_login,
            purpose=personal.AccessPurpose.RECORD,
            now=now,
        )
    if not seen:
        # Its own transaction, after the read (a read that fails records nothing) and
        # before the record is returned: a record the register cannot hold is refused.
        personal_ops.record(
            workspace, holder_id=holder.id, purpose=personal.AccessPurpose.RECORD, now=now
        )
    return record


def _linked(credential: Credential) -> LinkedCredential:
    assert credential.id is not None
    return LinkedCredential(
        id=credential.id,
        kind=credential.kind,
        state=credential.state,
        serial=credential.serial,
        requested_on=credential.requested_on,
        received_on=credential.received_on,
        handed_over_on=credential.handed_over_on,
    )


def _renewal_view(
    workspace: Workspace,
    kind: CredentialKind,
    expires_on: dt.date,
    pending: list[LinkedCredential],
    *,
    today: dt.date,
    emergency: bool,
) -> RenewalView:
    """The plan's view of one credential in service, not renewed: the same functions as
    ``inventaire.plan.renewal_plan`` and the alert planner."""
    from cartes.dispatch import policy
    from inventaire.alerts import due_level

    lead = workspace.renewal()
    base = outlook(
        expires_on, today=today, lead_days=lead.lead_days[kind], margin_days=lead.margin_days
    )
    if pending:
        status, requested_on, arrival = best_replacement(
            [(r.state, r.requested_on) for r in pending], today=today, lead=lead.lead_days[kind]
        )
        gap_days = max(0, (arrival - expires_on).days)
    else:
        status, requested_on = Replacement.NONE, None
        arrival = today + dt.timedelta(days=lead.lead_days[kind])
        gap_days = base.predicted_gap_days
    # An emergency card is a bridge: it gets no renewal alert (the IT service is reminded
    # to take it back instead).
    due = (
        None
        if emergency
        else due_level(
            policy(workspace.settings), kind, expires_on, today=today, ordered=bool(pending)
        )
    )
    return RenewalView(
        expires_on=expires_on,
        days_left=base.days_left,
        order_by=base.order_by,
        order_late=base.order_late,
        replacement=status,
        replacement_requested_on=requested_on,
        arrival=arrival,
        gap_days=gap_days,
        due_level=due[0] if due else None,
    )


def _actions(
    state: CredentialState,
    *,
    is_request: bool,
    may_order: bool,
    muted: bool,
    has_certificates: bool,
) -> tuple[Action, ...]:
    """What may be asked from ``state``: the lifecycle's moves (a pending request's
    through its steps), ordering a replacement, muting, revalidating."""
    from inventaire.lifecycle import TRANSITIONS, required_role

    actions = []
    steps = is_request and state in (S.REQUESTED, S.RECEIVED)
    for target in sorted(TRANSITIONS[state], key=list(CredentialState).index):
        kind = REQUEST_STEPS.get(target, ActionKind.TRANSITION) if steps else None
        actions.append(Action(kind or ActionKind.TRANSITION, required_role(state, target), target))
    if may_order:
        # ``requests.create_request`` asks for a MANAGER.
        actions.append(Action(ActionKind.ORDER_REPLACEMENT, OperatorRole.MANAGER))
    # ``alerts.mute`` and ``alerts.unmute`` ask for a MANAGER.
    actions.append(Action(ActionKind.UNMUTE if muted else ActionKind.MUTE, OperatorRole.MANAGER))
    if has_certificates:
        # Recording what a validation says changes no decision: any operator may ask.
        actions.append(Action(ActionKind.REVALIDATE, OperatorRole.READER))
    return tuple(actions)


# --------------------------------------------------------------------------------------------
# Actions


@dataclass(frozen=True)
class Moved:
    """A credential moved from one state to another."""

    credential_id: int
    source: CredentialState
    target: CredentialState
    version: int
    serial: str | None = None
    day: dt.date | None = None  # the day a request step recorded (receipt, handover)
    replaces_id: int | None = None
    returned_id: int | None = None  # the replaced credential handed back with it


def _source(
    session: Session, credential_id: int, expected_version: int | None
) -> CredentialState | None:
    """The state of the credential before an action, refused (``StaleVersion``) when it
    changed since ``expected_version`` was read. A missing credential is left to the
    domain's function, which says so in its own words (« Aucune demande n°… »)."""
    from inventaire.errors import StaleVersion
    from inventaire.models import Credential

    credential = session.get(Credential, credential_id)
    if credential is None:
        return None
    if expected_version is not None and credential.version != expected_version:
        raise StaleVersion(id=credential_id, attendue=expected_version, actuelle=credential.version)
    return credential.state


@contextmanager
def _changing(
    workspace: Workspace, credential_id: int, expected_version: int | None
) -> Iterator[tuple[Session, Operator, CredentialState | None]]:
    """The write transaction of an action on the credential: the session, the acting
    operator (any active one may try: the domain checks the role the action needs) and
    the state before, refused when the credential changed since ``expected_version``."""
    from inventaire import db, operators

    with db.write_session(workspace.engine) as session:
        operator = operators.require(session, workspace.operator_login, OperatorRole.READER)
        yield session, operator, _source(session, credential_id, expected_version)


def _moved(
    credential_id: int,
    source: CredentialState | None,
    credential: Credential,
    *,
    serial: str | None = None,
    day: dt.date | None = None,
    replaces_id: int | None = None,
    returned_id: int | None = None,
) -> Moved:
    """What an action did to the credential, once its transaction has written it."""
    assert credential.version is not None and source is not None
    return Moved(
        credential_id,
        source,
        credential.state,
        credential.version,
        serial=serial,
        day=day,
        replaces_id=replaces_id,
        returned_id=returned_id,
    )


def transition(
    workspace: Workspace,
    credential_id: int,
    target: CredentialState,
    reason: str,
    *,
    expected_version: int | None = None,
) -> Moved:
    """Move the credential to ``target`` (``inventaire.lifecycle.transition``: the role
    the move needs, a mandatory reason, journaled)."""
    from inventaire import lifecycle

    with _changing(workspace, credential_id, expected_version) as (session, operator, source):
        credential = lifecycle.transition(
            session,
            credential_id=credential_id,
            target=target,
            operator=operator,
            reason=reason,
            now=workspace.now(),
            expected_version=expected_version,
        )
        return _moved(credential_id, source, credential)


def _required_reason(reason: str) -> str:
    from inventaire.errors import InvalidValue

    reason = reason.strip()
    if not reason:
        raise InvalidValue("motif_obligatoire")
    return reason


def receive(
    workspace: Workspace,
    credential_id: int,
    *,
    serial: str,
    reason: str | None = None,
    on: dt.date | None = None,
    expected_version: int | None = None,
) -> Moved:
    """The requested credential arrived at the IT service (``requests.receive``)."""
    from inventaire import requests

    with _changing(workspace, credential_id, expected_version) as (session, operator, source):
        credential = requests.receive(
            session,
            request_id=credential_id,
            serial=serial,
            on=on,
            operator=operator,
            now=workspace.now(),
            reason=reason,
        )
        return _moved(
            credential_id, source, credential, serial=credential.serial, day=credential.received_on
        )


def hand_over(
    workspace: Workspace,
    credential_id: int,
    *,
    reason: str | None = None,
    on: dt.date | None = None,
    old_returned: bool = False,
    expected_version: int | None = None,
) -> Moved:
    """Hand the received credential over to its holder (``requests.hand_over``: a
    habilitated operator), the replaced one handed back with it if ``old_returned``."""
    from inventaire import requests

    with _changing(workspace, credential_id, expected_version) as (session, operator, source):
        done = requests.hand_over(
            session,
            request_id=credential_id,
            on=on,
            old_returned=old_returned,
            operator=operator,
            now=workspace.now(),
            reason=reason,
        )
        credential = done.credential
        return _moved(
            credential_id,
            source,
            credential,
            serial=credential.serial,
            day=credential.handed_over_on,
            replaces_id=credential.replaces_id,
            returned_id=done.returned.id if done.returned is not None else None,
        )


def cancel(
    workspace: Workspace,
    credential_id: int,
    *,
    reason: str,
    expected_version: int | None = None,
) -> Moved:
    """Cancel a pending request (``requests.cancel``), with a reason."""
    from inventaire import requests

    with _changing(workspace, credential_id, expected_version) as (session, operator, source):
        credential = requests.cancel(
            session,
            request_id=credential_id,
            reason=reason,
            operator=operator,
            now=workspace.now(),
        )
        return _moved(credential_id, source, credential)


def order_replacement(
    workspace: Workspace,
    credential_id: int,
    *,
    reason: str,
    expected_version: int | None = None,
) -> int:
    """Order the renewal of the credential: a request of the same kind for the same
    holder, replacing it (``requests.create_request``); return the request's id."""
    from inventaire import requests
    from inventaire.errors import NotFound
    from inventaire.models import Credential, Holder

    reason = _required_reason(reason)
    with _changing(workspace, credential_id, expected_version) as (session, operator, _):
        credential = session.get(Credential, credential_id)
        if credential is None:
            raise NotFound("support_introuvable", id=credential_id)
        holder = session.get(Holder, credential.holder_id)
        assert holder is not None
        request = requests.create_request(
            session,
            holder_email=holder.email,
            kind=credential.kind,
            replaces_id=credential_id,
            reason=reason,
            operator=operator,
            now=workspace.now(),
        )
        assert request.id is not None
        return request.id


def mute(workspace: Workspace, credential_id: int, reason: str) -> None:
    """Silence the renewal alerts of the credential, with a reason (``alerts.mute``)."""
    from inventaire import alerts, db, operators

    with db.write_session(workspace.engine) as session:
        operator = operators.require(session, workspace.operator_login, OperatorRole.MANAGER)
        alerts.mute(
            session,
            credential_id=credential_id,
            operator=operator,
            reason=reason,
            now=workspace.now(),
        )


def unmute(workspace: Workspace, credential_id: int, reason: str | None = None) -> None:
    """Let the alerts of a muted credential go again (``alerts.unmute``)."""
    from inventaire import alerts, db, operators

    with db.write_session(workspace.engine) as session:
        operator = operators.require(session, workspace.operator_login, OperatorRole.MANAGER)
        alerts.unmute(
            session,
            credential_id=credential_id,
            operator=operator,
            now=workspace.now(),
            reason=reason,
        )


def revalidate(workspace: Workspace, credential_id: int) -> Revalidation:
    """Validate every certificate of the credential now, with the validator of the
    settings, and record their statuses (``cartes.ops.certificates.revalidate``, as the
    service does every day). Refused when no trust anchor is configured: every
    certificate would come out invalid."""
    from cartes import trust
    from cartes.ops import certificates
    from inventaire import db, operators
    from inventaire.errors import InvalidValue, NotFound
    from inventaire.models import Credential

    with db.read_session(workspace.engine) as session:
        operators.require(session, workspace.operator_login, OperatorRole.READER)
        if session.get(Credential, credential_id) is None:
            raise NotFound("support_introuvable", id=credential_id)
    validator = trust.validator_from_settings(workspace.settings)
    if validator.trust.empty:
        raise InvalidValue("revalidation_sans_ancre")
    return certificates.revalidate(
        workspace.engine,
        validator,
        now=workspace.now(),
        older_than=None,
        credential_id=credential_id,
    )
