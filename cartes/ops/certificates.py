"""Validating the stored certificates again: the whole inventory (the backing service's
daily cycle) or one credential (its record, on demand), with the same code."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from inventaire import certificates, db
from pki import INVALID, UNDETERMINED, VALID, PkiError, Validator

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

UNREADABLE = "illisible"  # last_status of a stored certificate that cannot be parsed
REVALIDATION_BATCH = 500

Log = Callable[..., None]


@dataclass
class Revalidation:
    """What a revalidation of the stored certificates found."""

    checked: int = 0
    valid: int = 0
    invalid: int = 0
    undetermined: int = 0
    unreadable: int = 0


def status_of(validator: Validator, der: bytes, at: dt.datetime) -> str | None:
    """The status of one stored certificate at ``at``; None when it cannot be read."""
    from cryptography import x509

    try:
        return validator.validate(x509.load_der_x509_certificate(der), at).status
    except (ValueError, PkiError):
        return None


def _never() -> bool:
    return False


def _quiet(_event: str, /, **_fields: object) -> None:
    return None


def revalidate(
    engine: Engine,
    validator: Validator,
    *,
    now: dt.datetime,
    older_than: dt.timedelta | None,
    log: Log = _quiet,
    should_stop: Callable[[], bool] = _never,
    batch: int = REVALIDATION_BATCH,
    credential_id: int | None = None,
) -> Revalidation:
    """Validate again, at ``now``, every stored certificate never validated or last
    validated more than ``older_than`` ago (None: every one), only those of
    ``credential_id`` when given; record ``last_status`` and ``last_validated_at`` a batch
    at a time. A certificate that cannot be read is logged (by id) and recorded as
    ``illisible``. Stops between two certificates when ``should_stop()``; what was
    validated is kept."""
    cutoff = None if older_than is None else now - older_than
    counts = Revalidation()
    last_id = 0
    while not should_stop():
        with db.read_session(engine) as session:
            rows = certificates.stale(
                session,
                validated_before=cutoff,
                after_id=last_id,
                limit=batch,
                credential_id=credential_id,
            )
        if not rows:
            break
        statuses: dict[int, str] = {}
        for row in rows:
            if should_stop():
                break
            status = status_of(validator, row.der, now)
            if status is None:
                counts.unreadable += 1
                log(
                    "revalidation.illisible",
                    niveau="avertissement",
                    message=f"Certificat n°{row.id} illisible : il n'a pas pu être validé.",
                    certificat=row.id,
                )
            else:
                counts.valid += status == VALID
                counts.invalid += status == INVALID
                counts.undetermined += status == UNDETERMINED
            counts.checked += 1
            statuses[row.id] = status or UNREADABLE
            last_id = row.id
        with db.write_session(engine) as session:
            certificates.record_statuses(session, statuses, at=now)
    return counts
