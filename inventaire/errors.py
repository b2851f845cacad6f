"""Errors of the inventory domain.

Each error carries a stable ``code`` and the ``params`` needed to explain it; the French
sentence a user reads is produced at the edge (``cartes.messages``) from those two.
"""

from __future__ import annotations

from typing import Any


class InventaireError(Exception):
    """Base class: a refusal or failure the user can understand and act on."""

    code = "erreur_inventaire"

    def __init__(self, code: str | None = None, **params: Any) -> None:
        if code is not None:
            self.code = code
        self.params = params
        super().__init__(f"{self.code} {params}" if params else self.code)


class NotFound(InventaireError):
    """The entity named by the user does not exist."""

    code = "introuvable"


class TransitionRefused(InventaireError):
    """The lifecycle does not allow this change of state."""

    code = "transition_refusee"


class StaleVersion(InventaireError):
    """The credential changed since it was read: the update is refused."""

    code = "version_perimee"


class UnknownOperator(InventaireError):
    """The login is not a registered, active operator."""

    code = "operateur_inconnu"


class PermissionDenied(InventaireError):
    """The operator lacks the role needed for this action."""

    code = "droit_insuffisant"


class DatabaseLocked(InventaireError):
    """Another writer held the database longer than the busy timeout."""

    code = "base_verrouillee"


class DatabaseUnavailable(InventaireError):
    """The database cannot be opened or reached."""

    code = "base_inaccessible"


class QueryInterrupted(InventaireError):
    """A read was stopped on purpose (``ReadConnection.interrupt``): its answer was no
    longer wanted."""

    code = "lecture_interrompue"


class SchemaOutdated(InventaireError):
    """The database schema is missing or older than this version of the code."""

    code = "schema_absent"


class InvalidValue(InventaireError):
    """A value given by the user is not acceptable (name, role, date...)."""

    code = "valeur_invalide"


class Conflict(InventaireError):
    """The change would break a uniqueness rule (duplicate name, serial...)."""

    code = "conflit"


class ImportRejected(InventaireError):
    """The import file has bad rows and nothing was written."""

    code = "import_rejete"


class ImportFileUnreadable(InventaireError):
    """The import file as a whole cannot be read (format, encoding, header)."""

    code = "fichier_illisible"
