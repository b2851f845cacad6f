"""What the long-lived faces (the TUI, later the web page) hold for a whole session: the
settings, the clock, the operator's login, and the ways into the database.

The CLI has the same in ``cartes.cli.context.Context`` for one command; both hand the
same values to the functions of ``cartes.ops`` and ``inventaire``.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cartes.settings import Settings
from inventaire.browse import Renewal
from inventaire.clock import Clock, paris_today
from inventaire.dbapi import ReadConnection

if TYPE_CHECKING:  # SQLAlchemy is imported on first write, not at start-up
    from sqlalchemy.engine import Engine


@dataclass
class Workspace:
    settings: Settings
    clock: Clock
    operator_login: str
    # PKCS#11 modules given on the command line (else the settings', else OpenSC's).
    reader_modules: tuple[str, ...] | None = None
    _engine: Engine | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> dt.datetime:
        return self.clock.now()

    def today(self) -> dt.date:
        return paris_today(self.clock.now())

    def read(self) -> ReadConnection:
        """A new read-only connection through the bare driver; the caller closes it (a
        ``with`` block). One per worker call: sqlite3 connections stay in their thread."""
        from inventaire import dbapi

        return dbapi.connect(
            self.settings.database_url, busy_timeout_s=self.settings.busy_timeout_s
        )

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (thread-safe pool), built on first use."""
        with self._lock:
            if self._engine is None:
                from inventaire import db

                engine = db.make_engine(
                    self.settings.database_url, busy_timeout_s=self.settings.busy_timeout_s
                )
                db.require_current_schema(engine)
                self._engine = engine
            return self._engine

    def renewal(self) -> Renewal:
        """Lead time per kind and safety margin, from ``[renewal]``."""
        renewal = self.settings.renewal
        return Renewal(lead_days=renewal.lead_days(), margin_days=renewal.safety_margin_days)

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
