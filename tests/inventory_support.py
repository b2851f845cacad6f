"""Inventories for the search, browse and dashboard tests: generated rows written by the
import (the bulk path), holders and credentials made by the domain services (the ORM
path), and a bare read connection."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable

from sqlalchemy.engine import Engine

from fixtures.synthetic import generate_rows
from inventaire import credentials, db, dbapi, importing, operators, organisations
from inventaire.models import CardModel, CredentialKind, CredentialState, HolderRole

TODAY = dt.date(2026, 11, 26)  # the Paris day of the test clock


def read(engine: Engine) -> dbapi.ReadConnection:
    return dbapi.connect(engine.url.render_as_string(hide_password=False))


def import_rows(engine: Engine, rows: Iterable[dict[str, str]], now: dt.datetime) -> None:
    with db.write_session(engine) as session:
        admin = operators.find(session, "admin")
        assert admin is not None
        importer = importing.Importer(session, operator=admin, now=now, source="test.csv")
        importer.run(enumerate(rows, 2))


def generated(engine: Engine, holders: int, now: dt.datetime, *, seed: int = 7) -> None:
    """A synthetic district of ``holders`` holders (about 1.08 credentials each)."""
    import_rows(engine, itertools.islice(generate_rows(holders, seed=seed, today=TODAY), None), now)


def holder_with(
    engine: Engine,
    now: dt.datetime,
    *,
    last_name: str,
    first_name: str,
    email: str,
    organisation: str = "Barreau d'Angers",
    cards: Iterable[tuple[CredentialKind, CredentialState, str | None, dt.date | None]] = (),
) -> tuple[int, list[int]]:
    """A holder made by the domain services, with credentials (kind, state, serial,
    expiry); returns the holder's id and the credentials' ids."""
    with db.write_session(engine) as session:
        admin = operators.find(session, "admin")
        assert admin is not None
        holder = credentials.create_holder(
            session,
            last_name=last_name,
            first_name=first_name,
            email=email,
            role=HolderRole.LAWYER,
            organisation_id=organisations.find(session, organisation).id,  # type: ignore[arg-type]
            operator=admin,
            now=now,
        )
        ids = []
        for kind, state, serial, expires_on in cards:
            credential = credentials.create_credential(
                session,
                holder_id=holder.id,  # type: ignore[arg-type]
                kind=kind,
                state=state,
                serial=serial,
                model=CardModel.NEW if kind is CredentialKind.AGENT_CARD else None,
                expires_on=expires_on,
                operator=admin,
                now=now,
            )
            assert credential.id is not None
            ids.append(credential.id)
        assert holder.id is not None
        return holder.id, ids
