"""Trust from the settings: the validator that the CLI, the terminal UI and the backing
service share, and the refresh of the revocation lists the service does every day."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from cartes import messages
from cartes.settings import Settings
from pki import CrlStore, PkiError, TrustStore, Validator
from pki.crl import distribution_points  # read as validation reads them
from pki.trust import read_certificates

# Settings keys of trust anchors, and the credential type (token) they stand for.
KINDS = {
    "agent_card": "carte_agent",
    "expert_card": "carte_expert",
    "rpva_key": "cle_rpva",
    "temporary_card": "carte_temporaire",
}

Log = Callable[..., None]


def validator_from_settings(
    settings: Settings,
    *,
    network: bool | None = None,
    extra_intermediates: Iterable[Path] = (),
    extra_crls: Iterable[Path] = (),
) -> Validator:
    """The validator of the ``[trust]`` settings: anchors per kind, intermediates, CRL
    files and the CRL cache. ``network`` None follows ``trust.network``; true allows
    fetching CRLs and asking OCSP responders (with ``trust.timeout_s``).

    Raises ``pki.PkiError`` (``TrustConfigurationError``) when a configured file cannot
    be read.
    """
    trust = settings.trust
    store = TrustStore.from_paths(
        {KINDS[key]: getattr(trust, key) for key in KINDS},
        [*trust.intermediates, *extra_intermediates],
    )
    crls = CrlStore(
        trust.crl_cache_dir,
        fetch=trust.network if network is None else network,
        timeout_s=trust.timeout_s,
    )
    for path in [*trust.crls, *extra_crls]:
        crls.load_file(Path(path))
    return Validator(store, crls, use_ocsp=crls.fetch_allowed, ocsp_timeout_s=crls.timeout_s)


class FreshValidator:
    """The validator of the settings for a long-running face (the status page): built
    again when the files it was built from change on disk, as the service's daily refresh
    changes the CRL cache. The files are looked at no more than every ``check_s``
    seconds; between two looks the same validator serves, from any thread.

    A rebuild that fails (a file half-written, removed) keeps the previous validator and
    is tried again at the next look; the first build raises ``pki.PkiError`` as
    ``validator_from_settings`` does.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        check_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._check_s = check_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._signature = self._files()
        self._validator = validator_from_settings(settings, network=False)
        self._checked = monotonic()

    def get(self) -> Validator:
        """The validator of the files as they were at the last look."""
        now = self._monotonic()
        if now - self._checked < self._check_s:
            return self._validator
        with self._lock:
            if now - self._checked >= self._check_s:
                self._checked = now
                signature = self._files()
                if signature != self._signature:
                    try:
                        self._validator = validator_from_settings(self._settings, network=False)
                        self._signature = signature
                    except PkiError:
                        pass  # keep serving with the lists already read; look again later
        return self._validator

    def _files(self) -> frozenset[tuple[str, int, int]]:
        """Each file the validator reads, with its modification time and size."""
        trust = self._settings.trust
        named = [path for key in KINDS for path in getattr(trust, key)]
        named += [*trust.intermediates, *trust.crls]
        paths: list[Path] = []
        for path in named:
            paths.extend(sorted(Path(path).glob("*")) if Path(path).is_dir() else [Path(path)])
        if trust.crl_cache_dir.is_dir():
            paths.extend(trust.crl_cache_dir.glob("*.crl"))
        found = set()
        for path in paths:
            try:
                stat = path.stat()
            except OSError:
                continue
            found.add((str(path), stat.st_mtime_ns, stat.st_size))
        return frozenset(found)


@dataclass(frozen=True)
class CrlRefresh:
    """What a refresh of the revocation lists did."""

    fetched: int = 0  # lists downloaded and stored in the cache
    failures: dict[str, str] = field(default_factory=dict)  # URL → why (French)

    @property
    def failed(self) -> int:
        return len(self.failures)


# Why a download failed, from ``CrlStore.fetch_errors`` (error codes or exception names).
_FETCH_ERRORS = {
    "lcr_trop_grande": "liste trop volumineuse",
    "lcr_illisible": "contenu illisible (ni DER ni PEM)",
    "HTTPError": "refusée par le serveur",
    "URLError": "serveur injoignable",
    "TimeoutError": "délai dépassé",
    "timeout": "délai dépassé",
}


def crl_urls(certificates: Iterable[x509.Certificate]) -> list[str]:
    """The HTTP(S) distribution points named by ``certificates``, each once, in order."""
    urls = (url for certificate in certificates for url in distribution_points(certificate))
    return list(dict.fromkeys(u for u in urls if u.lower().startswith(("http://", "https://"))))


def configured_authorities(settings: Settings) -> list[x509.Certificate]:
    """The anchors and intermediates named by the ``[trust]`` settings."""
    trust = settings.trust
    paths = [path for key in KINDS for path in getattr(trust, key)] + list(trust.intermediates)
    return [certificate for path in paths for certificate in read_certificates(Path(path))]


def refresh_crls(
    settings: Settings,
    *,
    log: Log,
    certificates: Iterable[x509.Certificate] = (),
) -> CrlRefresh:
    """Download into ``trust.crl_cache_dir`` the CRL of every distribution point named by
    the configured anchors and intermediates (the lists that check the authorities) and
    by ``certificates`` (one stored certificate per issuer is enough: the lists that
    check holders' certificates). Never raises for a list that cannot be had: counts and
    French reasons are returned and logged. Does nothing unless ``trust.network``.

    The lists are not checked here: a list that is not its issuer's, or not current,
    decides nothing when a certificate is validated (``pki.crl``).
    """
    trust = settings.trust
    if not trust.network:
        return CrlRefresh()
    try:
        authorities = configured_authorities(settings)
    except PkiError as exc:
        # The validation that follows reports the bad file; the holders' lists can still
        # be fetched.
        log(
            "lcr.configuration",
            niveau="avertissement",
            message="Ancres ou intermédiaires illisibles : "
            + messages.pki_text(exc.code, exc.params),
            code=exc.code,
        )
        authorities = []
    # The cache is not read here (it can hold large lists): the store only downloads, and
    # writes what it got where ``validator_from_settings`` will read it.
    store = CrlStore(fetch=True, timeout_s=trust.timeout_s)
    store.cache_dir = trust.crl_cache_dir
    fetched = 0
    failures: dict[str, str] = {}
    for url in crl_urls([*authorities, *certificates]):
        try:
            crl = store.fetch(url)
        except OSError as exc:  # the cache folder cannot be written
            crl = None
            store.fetch_errors[url] = f"cache {trust.crl_cache_dir} : {exc.strerror}"
        if crl is None:
            code = store.fetch_errors.get(url, "?")
            failures[url] = _FETCH_ERRORS.get(code, code)
            log(
                "lcr.echec",
                niveau="avertissement",
                message=f"LCR non téléchargée : {url} ({failures[url]}).",
                url=url,
            )
            continue
        fetched += 1
        log(
            "lcr.telechargee",
            message=f"LCR téléchargée : {url} ({len(crl)} certificats révoqués).",
            url=url,
            entrees=len(crl),
        )
    return CrlRefresh(fetched, failures)
