"""Certificate revocation lists: checked, indexed, cached on disk, fetched on request.

A CRL decides something about a certificate only when RFC 5280 §6.3 lets it: issued by
the certificate's issuer (same name), signed with that issuer's key, by an issuer entitled
to sign CRLs (cRLSign), conforming (v2 with authority key identifier and CRL number, no
critical extension we do not process), and not stale (t ≤ ``next_update``; a list issued
after t still tells what was revoked before t).
Otherwise it decides nothing, and the revocation status stays unknown.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from pki.errors import UnreadableCrl
from pki.memo import ByIdentity
from pki.parsing import MALFORMED_EXTENSION, key_usage

MAX_CRL_BYTES = 64 * 1024 * 1024
# Extensions of a CRL this module processes; any other critical one makes the CRL unusable.
_UNDERSTOOD = {ExtensionOID.AUTHORITY_KEY_IDENTIFIER, ExtensionOID.CRL_NUMBER}


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL from DER or PEM bytes."""
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise UnreadableCrl(detail=str(exc)) from None


@dataclass(frozen=True)
class RevokedEntry:
    serial_number: int
    revoked_at: dt.datetime
    reason: str | None  # name of the x509.ReasonFlags member, e.g. "key_compromise"


class IndexedCrl:
    """A CRL and a serial-number index of its entries (built once: a lookup is a dict
    access, whatever the size of the list)."""

    def __init__(self, crl: x509.CertificateRevocationList, source: str) -> None:
        self.crl = crl
        self.source = source
        self.issuer = crl.issuer
        self.this_update = crl.last_update_utc
        self.next_update = crl.next_update_utc
        self._positions = {entry.serial_number: i for i, entry in enumerate(crl)}
        self._signatures: ByIdentity[bool] = ByIdentity()
        self.defect = _defect(crl)

    def __len__(self) -> int:
        return len(self._positions)

    def lookup(self, serial_number: int) -> RevokedEntry | None:
        position = self._positions.get(serial_number)
        if position is None:
            return None
        entry = self.crl[position]
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name
        except (x509.ExtensionNotFound, *MALFORMED_EXTENSION):
            reason = None  # revoked all the same; why is not readable
        return RevokedEntry(serial_number, entry.revocation_date_utc, reason)

    def signed_by(self, issuer: x509.Certificate) -> bool:
        return self._signatures.get(issuer, lambda: self._signature_valid(issuer))

    def _signature_valid(self, issuer: x509.Certificate) -> bool:
        try:
            return self.crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False

    def current_at(self, at: dt.datetime) -> bool:
        # A list issued after ``at`` still speaks of ``at`` (entries carry their dates): it
        # serves to validate in the past. One whose next update is before ``at`` is stale.
        return self.next_update is not None and at <= self.next_update


def _defect(crl: x509.CertificateRevocationList) -> str | None:
    """Why the CRL is not a conforming one (RFC 5280 §5), or None."""
    oids = set()
    try:
        extensions = list(crl.extensions)
    except MALFORMED_EXTENSION:
        return "extensions_illisibles"
    for extension in extensions:
        oids.add(extension.oid)
        if extension.critical and extension.oid not in _UNDERSTOOD:
            return "extension_critique_inconnue"
        if extension.critical and extension.oid == ExtensionOID.CRL_NUMBER:
            return "numero_critique"  # §5.2.3: "MUST mark this extension as non-critical"
    if ExtensionOID.AUTHORITY_KEY_IDENTIFIER not in oids:
        return "identifiant_cle_absent"
    if ExtensionOID.CRL_NUMBER not in oids:
        return "numero_absent"
    if crl.next_update_utc is None:
        return "prochaine_mise_a_jour_absente"
    try:
        for entry in crl:
            for extension in entry.extensions:
                if extension.critical and extension.oid != x509.CRLEntryExtensionOID.CRL_REASON:
                    return "extension_critique_inconnue"
            break  # entries are homogeneous in practice; checking all would cost the index twice
    except MALFORMED_EXTENSION:
        return "extensions_illisibles"
    return None


@dataclass(frozen=True)
class CrlVerdict:
    """What the CRLs say of one certificate."""

    status: str  # "bon", "revoque" or "inconnu"
    entry: RevokedEntry | None = None
    problems: tuple[str, ...] = ()  # why the CRLs at hand decide nothing, when "inconnu"
    source: str | None = None


class CrlStore:
    """The CRLs at hand: loaded from files, kept in a disk cache, and fetched from
    distribution points over HTTP when ``fetch`` allows it (with a timeout)."""

    def __init__(
        self, cache_dir: Path | None = None, *, fetch: bool = False, timeout_s: float = 5.0
    ) -> None:
        self.cache_dir = cache_dir
        self.fetch_allowed = fetch
        self.timeout_s = timeout_s
        self._by_issuer: dict[bytes, list[IndexedCrl]] = {}
        self._fetched: set[str] = set()
        self._usable_cache: ByIdentity[tuple[list[IndexedCrl], tuple[str, ...]]] = ByIdentity()
        self.fetch_errors: dict[str, str] = {}
        # Changes whenever a CRL is added: what was concluded from the others may change.
        self.generation = 0
        if cache_dir is not None and cache_dir.is_dir():
            for path in sorted(cache_dir.glob("*.crl")):
                try:
                    self.add(load_crl(path.read_bytes()), str(path))
                except UnreadableCrl:
                    continue  # a damaged cache entry is refetched when needed

    def add(self, crl: x509.CertificateRevocationList, source: str) -> IndexedCrl:
        indexed = IndexedCrl(crl, source)
        self._usable_cache.clear()
        self.generation += 1
        self._by_issuer.setdefault(crl.issuer.public_bytes(), []).append(indexed)
        return indexed

    def load_file(self, path: Path) -> IndexedCrl:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UnreadableCrl(
                "lcr_fichier_illisible", fichier=str(path), detail=exc.strerror
            ) from None
        return self.add(load_crl(data), str(path))

    def candidates(self, issuer: x509.Name) -> list[IndexedCrl]:
        """The CRLs issued under the name ``issuer``."""
        return self._by_issuer.get(issuer.public_bytes(), [])

    def lists(self) -> list[IndexedCrl]:
        """Every CRL at hand, whoever issued it, usable or not (for monitoring)."""
        # The values copied in one step: a fetch in another thread may add an issuer.
        return [crl for crls in list(self._by_issuer.values()) for crl in crls]

    def fetch(self, url: str) -> IndexedCrl | None:
        """Download the CRL at ``url`` (once per store), keep it in the cache."""
        if url in self._fetched or not url.lower().startswith(("http://", "https://")):
            return None
        self._fetched.add(url)
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
                data = response.read(MAX_CRL_BYTES + 1)
            if len(data) > MAX_CRL_BYTES:
                raise UnreadableCrl("lcr_trop_grande")
            crl = load_crl(data)
        except (urllib.error.URLError, OSError, UnreadableCrl) as exc:
            self.fetch_errors[url] = getattr(exc, "code", None) or type(exc).__name__
            return None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            name = hashlib.sha256(url.encode()).hexdigest()[:32] + ".crl"
            temporary = self.cache_dir / (name + ".tmp")
            temporary.write_bytes(data)
            temporary.replace(self.cache_dir / name)
        return self.add(crl, url)

    def verdict(
        self,
        certificate: x509.Certificate,
        issuer: x509.Certificate,
        at: dt.datetime,
        *,
        serial: int | None = None,
    ) -> CrlVerdict:
        """The revocation status of ``certificate`` at ``at`` according to usable CRLs of
        ``issuer``, fetching one from the distribution points when allowed. ``serial``:
        the certificate's serial number, when the caller has read it already."""
        usable, problems = self._usable(issuer, at, None)
        if not usable and self.fetch_allowed:
            fetched = [crl for url in distribution_points(certificate) if (crl := self.fetch(url))]
            if fetched:
                usable, problems = self._usable(issuer, at, fetched)
        if not usable:
            return CrlVerdict("inconnu", problems=problems or ("lcr_absente",))
        newest = usable[0] if len(usable) == 1 else max(usable, key=lambda crl: crl.this_update)
        entry = newest.lookup(certificate.serial_number if serial is None else serial)
        if entry is None or entry.revoked_at > at or entry.reason == "remove_from_crl":
            return CrlVerdict("bon", source=newest.source)
        return CrlVerdict("revoque", entry, source=newest.source)

    def _usable(
        self,
        issuer: x509.Certificate,
        at: dt.datetime,
        fetched: list[IndexedCrl] | None,
    ) -> tuple[list[IndexedCrl], tuple[str, ...]]:
        """The CRLs of ``issuer`` that may decide at ``at``, and why the others may not.

        Remembered per (issuer, instant): validating a batch asks the same question for
        every certificate of the same CA.
        """
        if fetched is not None:
            return self._sort(fetched, issuer, at)
        return self._usable_cache.get(
            issuer, lambda: self._sort(self.candidates(issuer.subject), issuer, at), at
        )

    def _sort(
        self, crls: list[IndexedCrl], issuer: x509.Certificate, at: dt.datetime
    ) -> tuple[list[IndexedCrl], tuple[str, ...]]:
        problems: list[str] = []
        usable: list[IndexedCrl] = []
        entitled = "crl_sign" in (key_usage(issuer) or {"crl_sign"})
        for crl in crls:
            if crl.defect:
                problems.append(f"lcr_non_conforme:{crl.defect}")
            elif not crl.signed_by(issuer):
                problems.append("lcr_signature_invalide")
            elif not entitled:
                problems.append("lcr_emetteur_non_habilite")
            elif not crl.current_at(at):
                problems.append("lcr_perimee")
            else:
                usable.append(crl)
        return usable, tuple(problems)


def distribution_points(certificate: x509.Certificate) -> list[str]:
    """The URIs of the CRL distribution points named by ``certificate`` (none when the
    extension is absent or unreadable)."""
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, *MALFORMED_EXTENSION):
        return []
    return [
        name.value
        for point in points
        for name in (point.full_name or ())
        if isinstance(name, x509.UniformResourceIdentifier)
    ]
