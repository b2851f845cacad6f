"""Stored certificates as the backing service sees them: which to validate again, and
recording what their validation said."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from inventaire.models import Certificate

_certificates = Certificate.__table__  # type: ignore[attr-defined]


def stale(
    session: Session,
    *,
    validated_before: dt.datetime | None,
    after_id: int,
    limit: int,
    credential_id: int | None = None,
) -> Sequence[Any]:
    """Up to ``limit`` certificates (rows of ``id``, ``der``) after ``after_id`` that were
    never validated, or last validated before ``validated_before`` (None: all of them),
    by id; only those of ``credential_id`` when given. Certificates of anonymised holders,
    whose DER is gone (``inventaire.retention``), are not validated any more."""
    columns = _certificates.c
    conditions: list[sa.ColumnElement[bool]] = [columns.id > after_id, columns.der != b""]
    if validated_before is not None:
        conditions.append(
            sa.or_(
                columns.last_validated_at.is_(None),
                columns.last_validated_at < validated_before,
            )
        )
    if credential_id is not None:
        conditions.append(columns.credential_id == credential_id)
    return session.execute(
        sa.select(columns.id, columns.der).where(*conditions).order_by(columns.id).limit(limit)
    ).all()


def record_statuses(session: Session, statuses: dict[int, str], *, at: dt.datetime) -> None:
    """Record the status of each certificate (id → status) as validated ``at``."""
    if not statuses:
        return
    columns = _certificates.c
    update = (
        _certificates.update()
        .where(columns.id == sa.bindparam("certificate_id"))
        .values(last_status=sa.bindparam("status"), last_validated_at=at)
    )
    session.execute(
        update, [{"certificate_id": key, "status": value} for key, value in statuses.items()]
    )


def latest_per_issuer(session: Session) -> list[bytes]:
    """The DER of the latest stored certificate of each issuer that still has its DER
    (anonymisation removes it)."""
    columns = _certificates.c
    latest = sa.select(sa.func.max(columns.id)).where(columns.der != b"").group_by(columns.issuer)
    return list(session.execute(sa.select(columns.der).where(columns.id.in_(latest))).scalars())
