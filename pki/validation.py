"""Validating a certificate at a given instant: chain, key usage, revocation.

The chain is built and its signatures checked by ``cryptography.x509.verification``
(end-entity extension policy ``permit_all``: smart-card signature certificates have neither
a SAN nor the clientAuth usage the default client policy demands; the key usage expected
for the certificate's role is checked here instead). Then every certificate of the chain
below the anchor is checked for revocation: CRLs first, OCSP when allowed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.x509.verification import (
    ClientVerifier,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from pki import ocsp
from pki.crl import CrlStore, RevokedEntry
from pki.errors import UnreadableCertificate
from pki.parsing import AUTHENTICATION, CertificateInfo, describe, key_usage, role
from pki.trust import TrustStore

VALID = "valide"
INVALID = "invalide"
UNDETERMINED = "indetermine"
SECOND = dt.timedelta(seconds=1)


@dataclass(frozen=True)
class Reason:
    """Why a certificate is not valid (or not known to be): a stable code and details."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of ``Validator.validate``."""

    status: str  # VALID, INVALID or UNDETERMINED
    reasons: tuple[Reason, ...]
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # leaf first, anchor last; empty if none was built
    kind: str | None  # the kind of the anchor the chain ends at

    @property
    def info(self) -> CertificateInfo:
        return describe(self.certificate)


class Validator:
    """Validates certificates against a trust store and the CRLs at hand.

    Build it once and reuse it: it keeps one chain verifier per validation instant, and
    the CRL indexes and signature checks are shared by every validation.
    """

    def __init__(
        self,
        trust: TrustStore,
        crls: CrlStore | None = None,
        *,
        use_ocsp: bool = False,
        ocsp_timeout_s: float = 5.0,
    ) -> None:
        self.trust = trust
        self.crls = crls or CrlStore()
        self.use_ocsp = use_ocsp
        self.ocsp_timeout_s = ocsp_timeout_s
        self._store = Store(trust.all_anchors()) if not trust.empty else None
        self._verifiers: dict[dt.datetime, ClientVerifier] = {}

    def _verifier(self, at: dt.datetime) -> ClientVerifier:
        verifier = self._verifiers.get(at)
        if verifier is None:
            if len(self._verifiers) > 64:
                self._verifiers.clear()
            assert self._store is not None
            verifier = (
                PolicyBuilder()
                .store(self._store)
                .time(at)
                .extension_policies(
                    ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                    ee_policy=ExtensionPolicy.permit_all(),
                )
                .build_client_verifier()
            )
            self._verifiers[at] = verifier
        return verifier

    def validate(
        self,
        certificate: x509.Certificate,
        at: dt.datetime,
        intermediates: Sequence[x509.Certificate] = (),
    ) -> ValidationResult:
        """Validate ``certificate`` at the instant ``at`` (aware)."""
        reasons: list[Reason] = []
        not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
        # An expired certificate still gets its chain built, at an instant it was valid:
        # the user learns which family it belongs to and what else is wrong.
        chain_at = at
        if at > not_after:
            reasons.append(Reason("expire", {"date": not_after.isoformat()}))
            chain_at = not_after - SECOND
        elif at < not_before:
            reasons.append(Reason("pas_encore_valide", {"date": not_before.isoformat()}))
            chain_at = not_before + SECOND

        chain: tuple[x509.Certificate, ...] = ()
        extra = [*self.trust.intermediates, *intermediates]
        if self._store is None:
            reasons.append(Reason("emetteur_inconnu", {"detail": "aucune ancre de confiance"}))
        else:
            try:
                verified = self._verifier(chain_at).verify(certificate, extra)
                chain = tuple(verified.chain)
            except VerificationError as error:
                reasons.append(self._chain_failure(certificate, extra, str(error)))

        try:
            usage = _usage_problem(certificate)
        except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
            # Extensions are parsed on first use: one that does not parse makes the
            # certificate unreadable, as ``describe`` says of it.
            raise UnreadableCertificate("extension_invalide", detail=str(exc)) from None
        if usage is not None:
            reasons.append(usage)

        kind = self.trust.kind_of(chain[-1]) if chain else None
        if chain and not reasons:
            reasons.extend(self._revocation(chain, at))
        return ValidationResult(_status(reasons), tuple(reasons), certificate, chain, kind)

    def _chain_failure(
        self, certificate: x509.Certificate, extra: list[x509.Certificate], detail: str
    ) -> Reason:
        candidates = [c for c in extra if c.subject == certificate.issuer]
        candidates += self.trust.issuers_named(certificate.issuer)
        if not candidates:
            return Reason("emetteur_inconnu", {"emetteur": certificate.issuer.rfc4514_string()})
        for candidate in candidates:
            try:
                certificate.verify_directly_issued_by(candidate)
                break
            except Exception:  # InvalidSignature, or keys of another type
                continue
        else:
            return Reason("signature_invalide", {"emetteur": certificate.issuer.rfc4514_string()})
        return Reason("chaine_invalide", {"detail": detail})

    def _revocation(self, chain: tuple[x509.Certificate, ...], at: dt.datetime) -> list[Reason]:
        reasons: list[Reason] = []
        for position, current in enumerate(chain[:-1]):
            issuer = chain[position + 1]
            verdict = self.crls.verdict(current, issuer, at)
            status, entry, problems = verdict.status, verdict.entry, list(verdict.problems)
            if status == "inconnu" and self.use_ocsp:
                answer = ocsp.query(current, issuer, at, timeout_s=self.ocsp_timeout_s)
                if answer.status != "inconnu":
                    status, entry = answer.status, answer.entry
                elif answer.problem:
                    problems.append(answer.problem)
            who = "certificat" if position == 0 else "autorite"
            if status == "revoque":
                assert entry is not None
                reasons.append(_revoked(entry, who))
            elif status == "inconnu":
                reasons.append(Reason("revocation_inconnue", {"objet": who, "problemes": problems}))
        return reasons


def _revoked(entry: RevokedEntry, who: str) -> Reason:
    return Reason(
        "revoque",
        {"date": entry.revoked_at.isoformat(), "motif": entry.reason, "objet": who},
    )


def _usage_problem(certificate: x509.Certificate) -> Reason | None:
    """The key usage an end-entity certificate needs for its role."""
    usages = key_usage(certificate)
    certificate_role = role(certificate, usages)
    if certificate_role is None:
        return Reason("usage_cle_incorrect", {"role": None})
    needed = "digital_signature" if certificate_role == AUTHENTICATION else "content_commitment"
    if usages is not None and needed not in usages:
        return Reason("usage_cle_incorrect", {"role": certificate_role, "requis": needed})
    return None


def _status(reasons: list[Reason]) -> str:
    if any(reason.code != "revocation_inconnue" for reason in reasons):
        return INVALID
    if reasons:
        return UNDETERMINED
    return VALID
