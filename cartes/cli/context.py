"""What every command needs: settings, the database, the operator, the clock, the streams."""

from __future__ import annotations

import datetime as dt
import getpass
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from cartes import permissions
from cartes.settings import LoadedSettings, Settings, load
from inventaire.clock import Clock, paris_today

if TYPE_CHECKING:  # SQLAlchemy is imported only by the commands that use it
    from sqlalchemy.engine import Engine

    from cartes.workspace import Workspace


@dataclass
class Context:
    config_file: Path | None  # --config, if given
    operator_login: str
    clock: Clock
    out: TextIO
    err: TextIO
    _loaded: LoadedSettings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)
    # Files of personal data or passwords other users can access (``cartes.permissions``),
    # found when the settings were read; each was written on ``err``.
    at_rest_warnings: list[str] = field(default_factory=list, repr=False)

    def _load(self) -> LoadedSettings:
        # Read on first use: ``cartes valider --ancre …`` needs no settings at all.
        if self._loaded is None:
            loaded = load(self.config_file)
            self._loaded = loaded
            self._warn_at_rest(loaded)
        return self._loaded

    def _warn_at_rest(self, loaded: LoadedSettings) -> None:
        # Every command that opens the database or may use the SMTP password reads the
        # settings first, through here, once: the place to check the files they name. A
        # warning, not a refusal: the inventory stays usable while the mode is fixed. (The
        # service's stderr goes to journald; the TUI also shows them as notifications.)
        self.at_rest_warnings = permissions.warnings(loaded.settings, loaded.source)
        for warning in self.at_rest_warnings:
            self.err.write(f"attention : {warning}\n")

    @property
    def settings(self) -> Settings:
        """The settings (``SettingsError`` with a French message if they are bad)."""
        return self._load().settings

    @property
    def settings_source(self) -> Path | None:
        return self._load().source

    @property
    def engine(self) -> Engine:
        from inventaire import db

        if self._engine is None:
            self._engine = db.make_engine(
                self.settings.database_url, busy_timeout_s=self.settings.busy_timeout_s
            )
        return self._engine

    def ready_engine(self) -> Engine:
        """The engine of a database that ``cartes init`` has brought up to date."""
        from inventaire import db

        db.require_current_schema(self.engine)
        return self.engine

    def workspace(self) -> Workspace:
        """The same values as a ``Workspace``, for the functions of ``cartes.ops`` (on the
        engine of a database that ``cartes init`` has brought up to date)."""
        from cartes.workspace import Workspace

        return Workspace(
            settings=self.settings,
            clock=self.clock,
            operator_login=self.operator_login,
            _engine=self.ready_engine(),
        )

    def now(self) -> dt.datetime:
        return self.clock.now()

    def today(self) -> dt.date:
        return paris_today(self.clock.now())

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def os_login() -> str:
    """The login of the person running the command."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "inconnu"
