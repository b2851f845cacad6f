"""Renewal planning arithmetic (DESIGN §4): when to order, the gap ahead, and the alert
level due.

Pure date arithmetic, used by the planner, the alerts, the inventory's urgency colours and
the lawyer's self-check, which has no database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from inventaire.enums import AlertLevel, CredentialKind

L = AlertLevel


@dataclass(frozen=True)
class RenewalOutlook:
    """What a holder must know about one credential today."""

    expires_on: dt.date
    days_left: int
    order_by: dt.date  # expiry − lead time − safety margin
    order_late: bool  # the order-by date has passed
    predicted_gap_days: int  # days without a valid credential if ordered today (0: none)


def outlook(
    expires_on: dt.date, *, today: dt.date, lead_days: int, margin_days: int
) -> RenewalOutlook:
    """The order-by date and the gap a replacement ordered ``today`` would leave."""
    order_by = expires_on - dt.timedelta(days=lead_days + margin_days)
    arrival = today + dt.timedelta(days=lead_days)
    return RenewalOutlook(
        expires_on=expires_on,
        days_left=(expires_on - today).days,
        order_by=order_by,
        order_late=today > order_by,
        predicted_gap_days=max(0, (arrival - expires_on).days),
    )


@dataclass(frozen=True)
class AlertPolicy:
    """When alerts are due and who gets copies (from the settings)."""

    lead_days: Mapping[CredentialKind, int]
    margin_days: int
    to_plan_days: int = 30
    expired_every_days: int = 7
    expired_times: int = 8
    # Addresses that receive a copy of every alert of a kind (the SAR, the bar...).
    copies: Mapping[CredentialKind, tuple[str, ...]] = field(default_factory=dict)

    def order_by(self, kind: CredentialKind, expires_on: dt.date) -> dt.date:
        return expires_on - dt.timedelta(days=self.lead_days[kind] + self.margin_days)


def due_level(
    policy: AlertPolicy,
    kind: CredentialKind,
    expires_on: dt.date,
    *,
    today: dt.date,
    ordered: bool,
) -> tuple[AlertLevel, int] | None:
    """The level and occurrence due ``today`` for a credential in service, not replaced
    and not muted, expiring ``expires_on``; ``ordered`` when a replacement is requested or
    received. None when nothing is due."""
    days_left = (expires_on - today).days
    if days_left < 0:
        occurrence = (-days_left - 1) // policy.expired_every_days
        return (L.EXPIRED, occurrence) if occurrence < policy.expired_times else None
    if ordered:
        return None
    lead = policy.lead_days[kind]
    if days_left < lead:
        return L.GAP, 0
    order_by = policy.order_by(kind, expires_on)
    if today >= order_by:
        return L.ORDER_NOW, 0
    if today >= order_by - dt.timedelta(days=policy.to_plan_days):
        return L.TO_PLAN, 0
    return None
