"""Organisations: the courts, bars and services of the district."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from inventaire import journal
from inventaire.errors import Conflict, InvalidValue, NotFound
from inventaire.models import Organisation, OrganisationType
from inventaire.vocabulary import fold

T = OrganisationType


@dataclass(frozen=True)
class OrganisationSpec:
    short_name: str
    full_name: str
    type: OrganisationType


# The district of the cour d'appel d'Angers, created by ``cartes init``.
ANGERS_DISTRICT: tuple[OrganisationSpec, ...] = (
    OrganisationSpec("CA Angers", "Cour d'appel d'Angers", T.COURT_OF_APPEAL),
    OrganisationSpec("TJ Angers", "Tribunal judiciaire d'Angers", T.JUDICIAL_COURT),
    OrganisationSpec("TJ Saumur", "Tribunal judiciaire de Saumur", T.JUDICIAL_COURT),
    OrganisationSpec("TJ Laval", "Tribunal judiciaire de Laval", T.JUDICIAL_COURT),
    OrganisationSpec("TJ Le Mans", "Tribunal judiciaire du Mans", T.JUDICIAL_COURT),
    OrganisationSpec("Barreau d'Angers", "Ordre des avocats du barreau d'Angers", T.BAR),
    OrganisationSpec("Barreau de Saumur", "Ordre des avocats du barreau de Saumur", T.BAR),
    OrganisationSpec("Barreau de Laval", "Ordre des avocats du barreau de Laval", T.BAR),
    OrganisationSpec("Barreau du Mans", "Ordre des avocats du barreau du Mans", T.BAR),
    OrganisationSpec(
        "Compagnie des experts d'Angers",
        "Compagnie des experts de justice près la cour d'appel d'Angers",
        T.EXPERTS,
    ),
    OrganisationSpec(
        "SAR Angers", "Service administratif régional de la cour d'appel d'Angers", T.IT_SERVICE
    ),
)


def list_all(session: Session) -> list[Organisation]:
    """All organisations, by short name."""
    return list(
        session.execute(sa.select(Organisation).order_by(Organisation.short_name)).scalars()
    )


class OrganisationIndex:
    """Finds organisations by short or full name, ignoring case, accents and blanks."""

    def __init__(self, organisations: list[Organisation]) -> None:
        self._by_key: dict[str, Organisation] = {}
        for organisation in organisations:
            self._by_key[fold(organisation.short_name)] = organisation
            self._by_key[fold(organisation.full_name)] = organisation

    @classmethod
    def load(cls, session: Session) -> OrganisationIndex:
        return cls(list_all(session))

    def get(self, name: str) -> Organisation | None:
        return self._by_key.get(fold(name))


def find(session: Session, name: str) -> Organisation:
    """The organisation named ``name`` (short or full name), or ``NotFound``."""
    organisation = OrganisationIndex.load(session).get(name)
    if organisation is None:
        raise NotFound("organisation_inconnue", nom=name)
    return organisation


def add(
    session: Session,
    *,
    short_name: str,
    full_name: str | None = None,
    type: OrganisationType,
    by: str,
    now: dt.datetime,
) -> Organisation:
    """Create an organisation (journaled). Names must be new, ignoring case and accents."""
    short_name = " ".join(short_name.split())
    full_name = " ".join((full_name or short_name).split())
    if not short_name:
        raise InvalidValue("nom_obligatoire")
    index = OrganisationIndex.load(session)
    for name in (short_name, full_name):
        if index.get(name) is not None:
            raise Conflict("organisation_existe", nom=name)
    organisation = Organisation(
        short_name=short_name, full_name=full_name, type=type, created_at=now
    )
    session.add(organisation)
    session.flush()
    journal.record(
        session,
        operator=by,
        now=now,
        action="organisation.creation",
        entity_type="organisation",
        entity_id=organisation.id,
        after={"short_name": short_name, "full_name": full_name, "type": type.value},
    )
    return organisation


def seed_district(
    session: Session, specs: tuple[OrganisationSpec, ...], *, by: str, now: dt.datetime
) -> list[Organisation]:
    """Create those of ``specs`` that do not exist yet; return the ones created."""
    index = OrganisationIndex.load(session)
    created = []
    for spec in specs:
        if index.get(spec.short_name) is None and index.get(spec.full_name) is None:
            created.append(
                add(
                    session,
                    short_name=spec.short_name,
                    full_name=spec.full_name,
                    type=spec.type,
                    by=by,
                    now=now,
                )
            )
    return created
