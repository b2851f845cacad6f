"""Errors of the ``pki`` package: a stable code and the parameters that explain it.

French sentences are produced at the edge (``cartes.messages``) from the code.
"""

from __future__ import annotations

from typing import Any


class PkiError(Exception):
    """Base class of everything ``pki`` raises on purpose."""

    code = "erreur_pki"

    def __init__(self, code: str | None = None, **params: Any) -> None:
        if code is not None:
            self.code = code
        self.params = params
        super().__init__(f"{self.code} {params}" if params else self.code)


class UnreadableCertificate(PkiError):
    """Bytes that hold no certificate this package can read."""

    code = "certificat_illisible"


class UnreadableCrl(PkiError):
    """Bytes that hold no certificate revocation list."""

    code = "lcr_illisible"


class TrustConfigurationError(PkiError):
    """Trust anchors or intermediates that cannot be loaded."""

    code = "confiance_invalide"
