"""Emergency old-model agent cards: issue one, take it back, the register (``cartes
urgence`` and the « Urgences » screen)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cartes.workspace import Workspace
from inventaire import db, emergency, operators
from inventaire.emergency import EmergencyLine, HolderForIssuance
from inventaire.enums import OperatorRole
from inventaire.models import Credential

__all__ = ["EmergencyLine", "HolderForIssuance", "Issued", "Returned"]


@dataclass(frozen=True)
class Issued:
    """An emergency card just handed over."""

    issuance_id: int
    credential_id: int
    serial: str
    holder_email: str
    request_id: int | None
    return_due_on: dt.date


@dataclass(frozen=True)
class Returned:
    """An emergency card just taken back."""

    issuance_id: int
    credential_id: int
    serial: str
    returned_on: dt.date


def issue(
    workspace: Workspace,
    *,
    holder_email: str,
    serial: str,
    reason: str,
    request_id: int | None = None,
    without_request: bool = False,
    return_due_on: dt.date | None = None,
) -> Issued:
    """Hand an old-model agent card over in emergency (habilitated operators only: ISSUER);
    refused with a domain error, and nothing written, as ``emergency.issue`` says."""
    with db.write_session(workspace.engine) as session:
        operator = operators.require(session, workspace.operator_login, OperatorRole.ISSUER)
        issuance = emergency.issue(
            session,
            holder_email=holder_email,
            serial=serial,
            reason=reason,
            request_id=request_id,
            without_request=without_request,
            return_due_on=return_due_on,
            return_after_days=workspace.settings.emergency.return_after_days,
            operator=operator,
            now=workspace.now(),
        )
        card = session.get(Credential, issuance.credential_id)
        assert card is not None and card.serial is not None and issuance.id is not None
        return Issued(
            issuance_id=issuance.id,
            credential_id=issuance.credential_id,
            serial=card.serial,
            holder_email=holder_email.strip().lower(),
            request_id=issuance.request_id,
            return_due_on=issuance.return_due_on,
        )


def give_back(
    workspace: Workspace,
    *,
    issuance_id: int,
    on: dt.date | None = None,
    reason: str | None = None,
) -> Returned:
    """Record that the card of issuance ``issuance_id`` came back on ``on`` (default:
    today), with ``reason`` in the journal if given (MANAGER)."""
    with db.write_session(workspace.engine) as session:
        operator = operators.require(session, workspace.operator_login, OperatorRole.MANAGER)
        issuance = emergency.give_back(
            session,
            issuance_id=issuance_id,
            on=on,
            reason=reason,
            operator=operator,
            now=workspace.now(),
        )
        card = session.get(Credential, issuance.credential_id)
        assert card is not None and issuance.returned_on is not None
        return Returned(
            issuance_id=issuance_id,
            credential_id=issuance.credential_id,
            serial=card.serial or "",
            returned_on=issuance.returned_on,
        )


def register(
    workspace: Workspace, *, overdue_only: bool = False, to_take_back_only: bool = False
) -> list[EmergencyLine]:
    """The register of emergency issuances as of today, the oldest first (READER)."""
    with db.read_session(workspace.engine) as session:
        operators.require(session, workspace.operator_login, OperatorRole.READER)
        return emergency.list_issuances(
            session,
            today=workspace.today(),
            overdue_only=overdue_only,
            to_take_back_only=to_take_back_only,
        )


def holder_for_issuance(workspace: Workspace, holder_email: str) -> HolderForIssuance | None:
    """The holder of an e-mail address and the pending new-model requests an emergency card
    handed to them may bridge; None if no holder has that address (READER)."""
    with db.read_session(workspace.engine) as session:
        operators.require(session, workspace.operator_login, OperatorRole.READER)
        return emergency.holder_for_issuance(session, holder_email=holder_email)


def default_return_due_on(workspace: Workspace) -> dt.date:
    """The planned return date of a card issued today, when none is given."""
    return workspace.today() + dt.timedelta(days=workspace.settings.emergency.return_after_days)
