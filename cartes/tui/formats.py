"""Numbers, days and instants written the French way on the screens of the TUI."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
# The narrow no-break space of French typography between groups of digits (one cell wide).
_GROUP = "\u202f"


def number(value: int) -> str:
    """``1234567`` → ``1 234 567`` (narrow no-break spaces)."""
    return f"{value:,}".replace(",", _GROUP)


def plural(value: int, singular: str, plural_form: str | None = None) -> str:
    """``3 supports``, ``1 support``, ``0 support`` (French: 0 and 1 are singular)."""
    word = singular if abs(value) < 2 else (plural_form or singular + "s")
    return f"{number(value)} {word}"


def day(value: dt.date | None) -> str:
    return "" if value is None else f"{value:%d/%m/%Y}"


def instant(value: dt.datetime) -> str:
    """A moment in Paris time: ``26/11/2026 à 10:30``."""
    if value.tzinfo is None:  # stored as naive UTC by SQLite
        value = value.replace(tzinfo=dt.UTC)
    return f"{value.astimezone(PARIS):%d/%m/%Y à %H:%M}"
