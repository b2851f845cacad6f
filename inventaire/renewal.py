"""Renewal planning arithmetic (DESIGN §4): when to order, and the gap ahead.

Pure date arithmetic, used by the planner and by the lawyer's self-check, which has no
database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


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
