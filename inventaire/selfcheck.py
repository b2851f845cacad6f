"""A holder's own certificate, seen by the holder: what the inventory knows of the key that
carries it, and what to do next (the lawyers' status page, issue 11).

The certificate comes from its holder (a TLS client certificate), so the inventory is
asked about that credential only: matched by the certificate's fingerprint, then by its
issuer and serial number, never by name or address, which would let one key reach
another's record.

Plain SQL through the bare driver (``inventaire.dbapi``): the page answers hundreds of
requests a second and SQLAlchemy would be most of each.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from inventaire.dbapi import ReadConnection
from inventaire.enums import CredentialKind, CredentialState
from inventaire.plan import Replacement, best_replacement
from inventaire.renewal import RenewalOutlook, outlook
from inventaire.states import IN_SERVICE, REPLACEMENT

_KINDS = {kind.value: kind for kind in CredentialKind}
_STATES = {state.value: state for state in CredentialState}


@dataclass(frozen=True)
class KnownKey:
    """What the inventory holds about the credential of a presented certificate."""

    credential_id: int
    matched_by: str  # "empreinte" or "numero_serie"
    kind: CredentialKind
    state: CredentialState
    emergency: bool
    holder_name: str  # first name and last name, as the SAR recorded them
    expires_on: dt.date | None  # the credential's expiry (its earliest certificate)
    replacement: Replacement  # the pending replacement that will arrive first, or NONE
    requested_on: dt.date | None  # when that replacement was ordered
    received_on: dt.date | None  # when it reached the SAR (RECEIVED only)
    renewed: bool  # a replacement is in service already


_COLUMNS = """c.id, c.kind, c.state, c.emergency, c.expires_on, h.first_name, h.last_name
FROM certificate t JOIN credential c ON c.id = t.credential_id
JOIN holder h ON h.id = c.holder_id"""


def known_key(
    connection: ReadConnection,
    *,
    fingerprint_sha256: str,
    issuer: str,
    serial_number: str,
    today: dt.date,
    lead_days: int,
) -> KnownKey | None:
    """The credential of the certificate with ``fingerprint_sha256`` (lower-case hex), else
    of the one with that ``issuer`` (RFC 4514 text) and ``serial_number`` (upper-case hex),
    or None when the inventory knows neither. ``lead_days``: the renewal lead time of the
    key's kind, for the predicted arrival of a replacement."""
    row = _first(
        connection,
        f"SELECT {_COLUMNS} WHERE t.fingerprint_sha256 = :fingerprint",
        {"fingerprint": fingerprint_sha256.lower()},
    )
    matched_by = "empreinte"
    if row is None:
        # Serial numbers are unique per issuer only (RFC 5280 §4.1.2.2).
        row = _first(
            connection,
            f"SELECT {_COLUMNS} WHERE t.serial_number = :serial AND t.issuer = :issuer",
            {"serial": serial_number.upper(), "issuer": issuer},
        )
        matched_by = "numero_serie"
    if row is None:
        return None
    credential_id, kind, state, emergency, expires_on, first_name, last_name = row
    pending: list[tuple[CredentialState, dt.date | None]] = []
    received_on = None
    renewed = False
    for state_value, requested, received in connection.rows(
        "SELECT state, requested_on, received_on FROM credential WHERE replaces_id = :id",
        {"id": credential_id},
    ):
        replacement_state = _STATES[state_value]
        if replacement_state in IN_SERVICE:
            renewed = True
        elif replacement_state in REPLACEMENT:
            pending.append((replacement_state, _day(requested)))
            if replacement_state is CredentialState.RECEIVED:
                received_on = _day(received)
    replacement, requested_on, _arrival = best_replacement(pending, today=today, lead=lead_days)
    return KnownKey(
        credential_id=int(credential_id),
        matched_by=matched_by,
        kind=_KINDS[kind],
        state=_STATES[state],
        emergency=bool(emergency),
        holder_name=f"{first_name} {last_name}",
        expires_on=_day(expires_on),
        replacement=replacement,
        requested_on=requested_on,
        received_on=received_on if replacement is Replacement.RECEIVED else None,
        renewed=renewed,
    )


class Step(StrEnum):
    """What the holder of a presented certificate should do next (stable codes; the faces
    write the French)."""

    REVOKED = "revoquee"  # the certificate is revoked: order a new key now
    OUT_OF_SERVICE = "hors_service"  # the SAR records the key lost, returned...: ask the SAR
    RENEWED = "remplacee"  # a new key is in service: use it
    COLLECT = "a_retirer"  # the new key has reached the SAR: collect it before expiry
    AWAIT = "commande_en_cours"  # a renewal is ordered: wait for it
    EXPIRED = "expiree"  # expired, nothing ordered: order now
    INVALID = "invalide"  # refused for another reason: ask the SAR
    ORDER_NOW = "commander_maintenant"  # the order-by date has passed: order today
    ORDER_BY = "commander_avant"  # order before the order-by date


@dataclass(frozen=True)
class Advice:
    """The next step, by when, and the renewal figures it rests on."""

    step: Step
    by: dt.date | None  # the day to act by (None: nothing to do by a date)
    expires_on: dt.date  # the key's expiry as planned (the earlier of certificate and record)
    days_left: int  # negative once expired
    order_by: dt.date
    arrival: dt.date  # when a replacement can be in hand (ordered today if none is)
    gap_days: int  # days without a valid key between expiry and arrival (0: none)


def advise(
    *,
    not_after: dt.date,
    valid: bool,
    revoked: bool,
    known: KnownKey | None,
    today: dt.date,
    lead_days: int,
    margin_days: int,
) -> Advice:
    """The next step for the holder of a certificate expiring on ``not_after`` (a Paris
    day), judged ``valid`` or not and ``revoked`` or not, whose credential the inventory
    knows as ``known`` (None: unknown to the SAR): the plan's rules (DESIGN §4) applied to
    that one key."""
    expires_on = not_after
    if known is not None and known.expires_on is not None:
        expires_on = min(expires_on, known.expires_on)
    plan = outlook(expires_on, today=today, lead_days=lead_days, margin_days=margin_days)
    arrival = today + dt.timedelta(days=lead_days)
    if known is not None and known.replacement is Replacement.RECEIVED:
        arrival = today
    elif known is not None and known.replacement is Replacement.REQUESTED:
        _status, _requested, arrival = best_replacement(
            [(CredentialState.REQUESTED, known.requested_on)], today=today, lead=lead_days
        )
    gap_days = max(0, (arrival - expires_on).days)
    step, by = _step(plan, valid=valid, revoked=revoked, known=known, today=today)
    return Advice(
        step=step,
        by=by,
        expires_on=expires_on,
        days_left=plan.days_left,
        order_by=plan.order_by,
        arrival=arrival,
        gap_days=gap_days,
    )


def _step(
    plan: RenewalOutlook, *, valid: bool, revoked: bool, known: KnownKey | None, today: dt.date
) -> tuple[Step, dt.date | None]:
    # The record's facts come before the plan's: a key the SAR knows as lost or replaced
    # needs no order, and one whose successor waits at the SAR needs collecting.
    if known is not None:
        if known.renewed:
            return Step.RENEWED, None
        if known.state not in IN_SERVICE:
            return Step.OUT_OF_SERVICE, today
        if known.replacement is Replacement.RECEIVED:
            return Step.COLLECT, max(today, plan.expires_on)
        if known.replacement is Replacement.REQUESTED:
            return Step.AWAIT, None
    if revoked:
        return Step.REVOKED, today
    if plan.days_left < 0:
        return Step.EXPIRED, today
    if not valid:
        return Step.INVALID, today
    if plan.order_late:
        return Step.ORDER_NOW, today
    return Step.ORDER_BY, plan.order_by


def _first(connection: ReadConnection, sql: str, params: dict[str, Any]) -> Any:
    for row in connection.rows(sql, params):
        return row
    return None


def _day(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)  # SQLite returns dates as ISO text
