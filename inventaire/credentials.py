"""Creating holders and credentials one at a time (the import does it in bulk)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlmodel import Session, col

from inventaire import journal
from inventaire.clock import paris_today
from inventaire.errors import Conflict, InvalidValue
from inventaire.lifecycle import snapshot
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
from inventaire.operators import check_role
from inventaire.vocabulary import holder_search_text


def create_holder(
    session: Session,
    *,
    last_name: str,
    first_name: str,
    email: str,
    role: HolderRole,
    organisation_id: int,
    operator: Operator,
    now: dt.datetime,
) -> Holder:
    """Register a holder (journaled without names or e-mail)."""
    check_role(operator, OperatorRole.MANAGER)
    email = email.strip().lower()
    if "@" not in email:
        raise InvalidValue("email_invalide", valeur=email)
    if session.execute(sa.select(col(Holder.id)).where(col(Holder.email) == email)).first():
        raise Conflict("titulaire_existe", email=email)
    holder = Holder(
        last_name=last_name,
        first_name=first_name,
        email=email,
        role=role,
        organisation_id=organisation_id,
        active=True,
        search_text=holder_search_text(last_name, first_name, email),
        created_at=now,
        updated_at=now,
    )
    session.add(holder)
    session.flush()
    journal.record(
        session,
        operator=operator.login,
        now=now,
        action="titulaire.creation",
        entity_type="holder",
        entity_id=holder.id,
        after={"role": role.value, "organisation_id": organisation_id, "active": True},
    )
    return holder


def create_credential(
    session: Session,
    *,
    holder_id: int,
    kind: CredentialKind,
    state: CredentialState,
    operator: Operator,
    now: dt.datetime,
    serial: str | None = None,
    model: CardModel | None = None,
    expires_on: dt.date | None = None,
    reason: str | None = None,
) -> Credential:
    """Register a credential in ``state`` (journaled)."""
    check_role(operator, OperatorRole.MANAGER)
    if (model is not None) != (kind is CredentialKind.AGENT_CARD):
        raise InvalidValue("modele_reserve_carte_agent")
    credential = Credential(
        kind=kind,
        model=model,
        serial=serial.strip().upper() if serial else None,
        holder_id=holder_id,
        state=state,
        emergency=False,
        expires_on=expires_on,
        requested_on=paris_today(now) if state is CredentialState.REQUESTED else None,
        created_at=now,
        updated_at=now,
    )
    session.add(credential)
    session.flush()
    journal.record(
        session,
        operator=operator.login,
        now=now,
        action="support.creation",
        entity_type="credential",
        entity_id=credential.id,
        reason=reason,
        after=snapshot(credential),
    )
    return credential
