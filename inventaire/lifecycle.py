"""The credential lifecycle (DESIGN §3), enforced here and nowhere else."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session

from inventaire import journal, states
from inventaire.clock import paris_today
from inventaire.errors import InvalidValue, NotFound, StaleVersion, TransitionRefused
from inventaire.models import Credential, CredentialState, Operator, OperatorRole
from inventaire.operators import check_role

S = CredentialState

TRANSITIONS: dict[CredentialState, frozenset[CredentialState]] = {
    S.REQUESTED: frozenset({S.RECEIVED, S.CANCELLED}),
    S.RECEIVED: frozenset({S.ACTIVE, S.DAMAGED, S.CANCELLED}),
    S.ACTIVE: frozenset({S.SUSPENDED, S.LOST, S.DAMAGED, S.RETURNED, S.REVOKED}),
    S.SUSPENDED: frozenset({S.ACTIVE, S.LOST, S.REVOKED}),
    S.LOST: frozenset(),
    S.DAMAGED: frozenset(),
    S.RETURNED: frozenset(),
    S.REVOKED: frozenset(),
    S.CANCELLED: frozenset(),
}

FINAL_STATES = frozenset(state for state, targets in TRANSITIONS.items() if not targets)
# Defined beside the rules that read them without SQLAlchemy; the same here.
IN_SERVICE = states.IN_SERVICE
PENDING = states.PENDING


def is_allowed(source: CredentialState, target: CredentialState) -> bool:
    """Whether the lifecycle allows going from ``source`` to ``target``."""
    return target in TRANSITIONS[source]


def required_role(source: CredentialState, target: CredentialState) -> OperatorRole:
    """Handing a card over to its holder is reserved to habilitated operators (ISSUER);
    every other change needs a MANAGER (or an ADMIN)."""
    if source is S.RECEIVED and target is S.ACTIVE:
        return OperatorRole.ISSUER
    return OperatorRole.MANAGER


def snapshot(credential: Credential) -> dict[str, Any]:
    """The journal's view of a credential: no personal data, the holder by id."""
    return {
        "kind": credential.kind.value,
        "model": credential.model.value if credential.model else None,
        "serial": credential.serial,
        "holder_id": credential.holder_id,
        "state": credential.state.value,
        "emergency": credential.emergency,
        "replaces_id": credential.replaces_id,
        "requested_on": _iso(credential.requested_on),
        "received_on": _iso(credential.received_on),
        "handed_over_on": _iso(credential.handed_over_on),
        "expires_on": _iso(credential.expires_on),
    }


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def implied_dates(
    source: CredentialState,
    target: CredentialState,
    *,
    received_on: dt.date | None,
    handed_over_on: dt.date | None,
    today: dt.date,
) -> dict[str, dt.date]:
    """The dates a move from ``source`` to ``target`` records, when not known yet: the
    day of receipt at the IT service, the day of handover to the holder."""
    dates: dict[str, dt.date] = {}
    if target is S.RECEIVED and received_on is None:
        dates["received_on"] = today
    if target is S.ACTIVE and source is S.RECEIVED and handed_over_on is None:
        dates["handed_over_on"] = today
    return dates


def apply_state(credential: Credential, target: CredentialState, today: dt.date) -> None:
    """Set the new state and the dates it implies, without any check (callers check)."""
    dates = implied_dates(
        credential.state,
        target,
        received_on=credential.received_on,
        handed_over_on=credential.handed_over_on,
        today=today,
    )
    credential.state = target
    for name, day in dates.items():
        setattr(credential, name, day)


def transition(
    session: Session,
    *,
    credential_id: int,
    target: CredentialState,
    operator: Operator,
    reason: str,
    now: dt.datetime,
    expected_version: int | None = None,
) -> Credential:
    """Move a credential to ``target``, with a journal entry, in the caller's transaction.

    Refused (and nothing changes) when the reason is empty, the operator lacks the role,
    the credential changed since ``expected_version``, or the lifecycle forbids the move.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidValue("motif_obligatoire")
    credential = session.get(Credential, credential_id)
    if credential is None:
        raise NotFound("support_introuvable", id=credential_id)
    if expected_version is not None and credential.version != expected_version:
        raise StaleVersion(id=credential_id, attendue=expected_version, actuelle=credential.version)
    source = credential.state
    if not is_allowed(source, target):
        raise TransitionRefused(id=credential_id, depuis=source.value, vers=target.value)
    check_role(operator, required_role(source, target))
    before = snapshot(credential)
    apply_state(credential, target, paris_today(now))
    credential.updated_at = now
    session.add(credential)
    session.flush()  # the version check happens here: a concurrent change raises
    journal.record(
        session,
        operator=operator.login,
        now=now,
        action="support.transition",
        entity_type="credential",
        entity_id=credential.id,
        reason=reason,
        before=before,
        after=snapshot(credential),
    )
    return credential
