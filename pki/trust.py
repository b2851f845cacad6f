"""Trust: the anchors (root CAs) of each kind of credential, and the intermediates that
help build chains. A certificate is classified by the anchor its chain ends at."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from pki.errors import PkiError, TrustConfigurationError
from pki.memo import ByIdentity
from pki.parsing import fingerprint, load_certificates

CERTIFICATE_SUFFIXES = {".pem", ".crt", ".cer", ".der", ".p7b", ".p7c"}


def read_certificates(path: Path) -> list[x509.Certificate]:
    """The certificates of a file, or of every certificate file in a folder."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in CERTIFICATE_SUFFIXES)
        return [c for file in files for c in read_certificates(file)]
    try:
        return load_certificates(path.read_bytes())
    except OSError as exc:
        raise TrustConfigurationError(
            "fichier_illisible", fichier=str(path), detail=exc.strerror
        ) from None
    except PkiError as exc:
        raise TrustConfigurationError(
            "certificat_illisible", fichier=str(path), motif=exc.code
        ) from None


@dataclass(frozen=True)
class TrustStore:
    """Anchors by kind (``carte_agent``, ``carte_expert``, ``cle_rpva``… or any label),
    and intermediates shared by all kinds."""

    anchors: Mapping[str, tuple[x509.Certificate, ...]]
    intermediates: tuple[x509.Certificate, ...] = ()
    _kinds: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    _by_certificate: ByIdentity[str | None] = field(
        default_factory=ByIdentity, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for kind, certificates in self.anchors.items():
            for certificate in certificates:
                self._kinds.setdefault(fingerprint(certificate), kind)

    @classmethod
    def from_paths(
        cls, anchors: Mapping[str, Iterable[Path]], intermediates: Iterable[Path] = ()
    ) -> TrustStore:
        """Load anchors (files or folders) by kind, and intermediates."""
        loaded = {
            kind: tuple(c for path in paths for c in read_certificates(Path(path)))
            for kind, paths in anchors.items()
        }
        extra = tuple(c for path in intermediates for c in read_certificates(Path(path)))
        return cls(loaded, extra)

    def all_anchors(self) -> list[x509.Certificate]:
        return [c for certificates in self.anchors.values() for c in certificates]

    def kind_of(self, anchor: x509.Certificate) -> str | None:
        """The kind whose anchor ``anchor`` is."""
        return self._by_certificate.get(anchor, lambda: self._kinds.get(fingerprint(anchor)))

    def issuers_named(self, name: x509.Name) -> list[x509.Certificate]:
        """Known CA certificates (anchors and intermediates) whose subject is ``name``."""
        return [c for c in (*self.all_anchors(), *self.intermediates) if c.subject == name]

    @property
    def empty(self) -> bool:
        return not self.all_anchors()
