"""Time, injected: the domain never reads the system clock itself.

Instants are stored in UTC (naive ``datetime`` in the database); calendar days are those of
Europe/Paris, where the courts are.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


class Clock(Protocol):
    """Something that tells the current instant as an aware UTC datetime."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    """A clock stopped at one instant, that tests can move."""

    def __init__(self, instant: dt.datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self.instant = instant

    def now(self) -> dt.datetime:
        return self.instant

    def advance(self, **delta: float) -> None:
        """Move the clock forward by a ``timedelta(**delta)``."""
        self.instant += dt.timedelta(**delta)


def paris_today(instant: dt.datetime) -> dt.date:
    """The calendar day in Europe/Paris at ``instant``."""
    return instant.astimezone(PARIS).date()


def to_db(instant: dt.datetime) -> dt.datetime:
    """The naive UTC datetime stored in the database for an aware ``instant``."""
    return instant.astimezone(dt.UTC).replace(tzinfo=None)


def from_db(instant: dt.datetime) -> dt.datetime:
    """The aware UTC instant of a datetime read from the database: SQLite gives back the
    naive UTC it stores, PostgreSQL an aware instant in the session's time zone."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(dt.UTC)
