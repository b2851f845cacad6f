"""Small helpers that put holders and credentials in a test database."""

from __future__ import annotations

import datetime as dt
import itertools

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from inventaire import credentials, db, operators, organisations
from inventaire.models import (
    CardModel,
    Credential,
    CredentialKind,
    CredentialState,
    HolderRole,
    JournalEntry,
)
from tests.conftest import NOW

_numbers = itertools.count(1)


def add_credential(
    engine: Engine,
    now: dt.datetime,
    *,
    state: CredentialState = CredentialState.ACTIVE,
    kind: CredentialKind = CredentialKind.RPVA_KEY,
    expires_on: dt.date | None = None,
    organisation: str = "Barreau d'Angers",
) -> int:
    """A new holder with one credential; returns the credential id."""
    number = next(_numbers)
    with db.write_session(engine) as session:
        admin = operators.find(session, "admin")
        assert admin is not None
        holder = credentials.create_holder(
            session,
            last_name=f"Martin{number}",
            first_name="Claire",
            email=f"claire.martin{number}@example.fr",
            role=HolderRole.LAWYER,
            organisation_id=organisations.find(session, organisation).id,  # type: ignore[arg-type]
            operator=admin,
            now=now,
        )
        credential = credentials.create_credential(
            session,
            holder_id=holder.id,  # type: ignore[arg-type]
            kind=kind,
            state=state,
            serial=f"SER-{number:06d}",
            model=CardModel.NEW if kind is CredentialKind.AGENT_CARD else None,
            expires_on=expires_on or (now.date() + dt.timedelta(days=400)),
            operator=admin,
            now=now,
        )
        assert credential.id is not None
        return credential.id


def credential_state(engine: Engine, credential_id: int) -> tuple[CredentialState, int]:
    with db.read_session(engine) as session:
        credential = session.get(Credential, credential_id)
        assert credential is not None and credential.version is not None
        return credential.state, credential.version


def journal_count(engine: Engine) -> int:
    with db.read_session(engine) as session:
        return session.execute(sa.select(sa.func.count()).select_from(JournalEntry)).scalar_one()


def last_entry(engine: Engine) -> JournalEntry:
    with db.read_session(engine) as session:
        return session.execute(
            sa.select(JournalEntry).order_by(JournalEntry.seq.desc()).limit(1)  # type: ignore[attr-defined]
        ).scalar_one()


def add_rpva(
    engine: Engine, number: int, *, now: dt.datetime = NOW, expires_in_days: int = 400
) -> int:
    """A lawyer with an RPVA key expiring in ``expires_in_days``; same names, serials and
    e-mails whatever ran before (snapshots show them)."""
    with db.write_session(engine) as session:
        admin = operators.find(session, "admin")
        holder = credentials.create_holder(
            session,
            last_name=f"Avocat{number}",
            first_name="Claire",
            email=f"claire.avocat{number}@example.fr",
            role=HolderRole.LAWYER,
            organisation_id=organisations.find(session, "Barreau d'Angers").id,
            operator=admin,
            now=now,
        )
        credential = credentials.create_credential(
            session,
            holder_id=holder.id,
            kind=CredentialKind.RPVA_KEY,
            state=CredentialState.ACTIVE,
            serial=f"RPVA-{number:04d}",
            expires_on=now.date() + dt.timedelta(days=expires_in_days),
            operator=admin,
            now=now,
        )
        assert credential.id is not None
        return credential.id
