"""Validating a certificate at a given instant: profile, chain, key usage, revocation.

The chain is built and its signatures checked by ``cryptography.x509.verification``, with
the RFC 5280 profile of ``pki.profile`` as its extension policies (not the web PKI's
end-entity policy: smart-card signature certificates have neither a SAN nor the
clientAuth usage it demands; the key usage expected for the certificate's role is
checked here instead). Then every certificate of the chain below the anchor is checked
for revocation: CRLs first, OCSP when allowed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

from cryptography import x509
from cryptography.x509.verification import ClientVerifier, PolicyBuilder, Store, VerificationError

from pki import ocsp, profile
from pki.crl import CrlStore, RevokedEntry
from pki.errors import UnreadableCertificate
from pki.memo import ByIdentity
from pki.parsing import (
    AUTHENTICATION,
    MALFORMED_EXTENSION,
    SIGNATURE,
    CertificateInfo,
    describe,
)
from pki.reasons import Reason
from pki.trust import TrustStore

VALID = "valide"
INVALID = "invalide"
UNDETERMINED = "indetermine"
SECOND = dt.timedelta(seconds=1)


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of ``Validator.validate``."""

    status: str  # VALID, INVALID or UNDETERMINED
    reasons: tuple[Reason, ...]
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # leaf first, anchor last; empty if none was built
    kind: str | None  # the kind of the anchor the chain ends at
    info: CertificateInfo  # the certificate described, once


# Certificates validated together by ``validate_many``: enough for every step's code to
# stay warm, few enough to keep the memory small.
_BATCH = 256


@dataclass
class _Pending:
    """A certificate between the steps of its validation."""

    certificate: x509.Certificate
    info: CertificateInfo
    unreadable: Reason | None  # why its extensions cannot be read
    chain_at: dt.datetime  # when to build the chain: an instant it was valid
    reasons: list[Reason] = field(default_factory=list)
    chain: tuple[x509.Certificate, ...] = ()  # leaf first, anchor last; empty if none


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
        self._end_entity_policy = profile.end_entity_policy()
        self._ca_policy = profile.ca_policy()
        self._authorities: ByIdentity[list[Reason]] = ByIdentity()
        self._authority_revocations: ByIdentity[list[Reason]] = ByIdentity()

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
                .extension_policies(ca_policy=self._ca_policy, ee_policy=self._end_entity_policy)
                .build_client_verifier()
            )
            self._verifiers[at] = verifier
        return verifier

    def validate(
        self,
        certificate: x509.Certificate,
        at: dt.datetime,
        intermediates: Sequence[x509.Certificate] = (),
        *,
        der: bytes | None = None,
    ) -> ValidationResult:
        """Validate ``certificate`` at the instant ``at`` (aware). ``der``: its encoding,
        when the caller has it (spares encoding it again).

        A certificate that breaks the profile, even with extensions that cannot be parsed,
        is invalid with a reason. Raises ``UnreadableCertificate`` (``nom_illisible``) only
        for a subject or issuer name that cannot be read, which ``load_certificates``
        refuses upfront.
        """
        pending = self._read(certificate, der, at, profile.extension_defect(certificate))
        self._verify(pending, [*self.trust.intermediates, *intermediates])
        return self._conclude(pending, at)

    def validate_many(
        self,
        certificates: Iterable[tuple[x509.Certificate, bytes | None]],
        at: dt.datetime,
        intermediates: Sequence[x509.Certificate] = (),
    ) -> Iterator[ValidationResult | UnreadableCertificate]:
        """``validate`` each (certificate, DER or None) in turn, in order: a result, or
        the ``UnreadableCertificate`` that ``validate`` would raise.

        The work is done by the hundred, a step at a time (read and describe them all,
        then verify them all, then conclude): each step's code stays in the processor's
        caches, which makes a batch a fifth faster than one ``validate`` after another.
        """
        extra = [*self.trust.intermediates, *intermediates]
        batch: list[tuple[x509.Certificate, bytes | None]] = []
        for item in certificates:
            batch.append(item)
            if len(batch) == _BATCH:
                yield from self._validate_batch(batch, at, extra)
                batch = []
        yield from self._validate_batch(batch, at, extra)

    def _validate_batch(
        self,
        batch: list[tuple[x509.Certificate, bytes | None]],
        at: dt.datetime,
        extra: list[x509.Certificate],
    ) -> Iterator[ValidationResult | UnreadableCertificate]:
        # cryptography parses the extensions on first use, and keeps them.
        unreadable = [profile.extension_defect(certificate) for certificate, _ in batch]
        read: list[_Pending | UnreadableCertificate] = []
        for (certificate, der), defect in zip(batch, unreadable, strict=True):
            try:
                read.append(self._read(certificate, der, at, defect))
            except UnreadableCertificate as error:
                read.append(error)
        for pending in read:
            if isinstance(pending, _Pending):
                self._verify(pending, extra)
        # Concluded all before any is given: the caller's own step (writing each one out)
        # then runs over the whole batch too.
        yield from [
            self._conclude(pending, at) if isinstance(pending, _Pending) else pending
            for pending in read
        ]

    def _read(
        self,
        certificate: x509.Certificate,
        der: bytes | None,
        at: dt.datetime,
        unreadable: Reason | None,
    ) -> _Pending:
        """First step: the certificate described, and what it breaks by itself
        (``unreadable``: why its extensions cannot be read, from
        ``profile.extension_defect``)."""
        info = describe(certificate, der)
        pending = _Pending(certificate, info, unreadable, at)
        if unreadable is not None:
            pending.reasons.append(unreadable)
        elif not info.is_ca:
            pending.reasons += profile.end_entity_defects(info)
        # An expired certificate still gets its chain built, at an instant it was valid:
        # the user learns which family it belongs to and what else is wrong.
        if at > info.not_after:
            pending.reasons.append(Reason("expire", {"date": info.not_after.isoformat()}))
            pending.chain_at = info.not_after - SECOND
        elif at < info.not_before:
            pending.reasons.append(
                Reason("pas_encore_valide", {"date": info.not_before.isoformat()})
            )
            pending.chain_at = info.not_before + SECOND
        return pending

    def _verify(self, pending: _Pending, extra: list[x509.Certificate]) -> None:
        """Second step: the chain, built and checked by cryptography's verifier."""
        certificate, reasons = pending.certificate, pending.reasons
        if self._store is None:
            reasons.append(Reason("emetteur_inconnu", {"detail": "aucune ancre de confiance"}))
            return
        if pending.unreadable is not None:
            # Extensions that cannot be read make the verifier raise all sorts of errors:
            # such a certificate goes no further.
            return
        try:
            pending.chain = tuple(self._verifier(pending.chain_at).verify(certificate, extra).chain)
        except VerificationError as error:
            message = str(error)
            refusal = profile.refusal_reason(message, certificate)
            reasons.append(refusal or self._chain_failure(certificate, extra, message))
        except MALFORMED_EXTENSION:
            # The leaf's extensions were read above: a CA's cannot be.
            reasons.append(profile.nonconforming("extension_illisible", "autorite"))
        else:
            reasons += self._authority_defects(pending.chain)

    def _conclude(self, pending: _Pending, at: dt.datetime) -> ValidationResult:
        """Last step: usage, revocation, status."""
        info, reasons, chain = pending.info, pending.reasons, pending.chain
        # Extensions that cannot be read tell no usage: the reason above says enough.
        usage = _usage_problem(info) if pending.unreadable is None else None
        if usage is not None:
            reasons.append(usage)
        kind = self.trust.kind_of(chain[-1]) if chain else None
        if chain and not reasons:
            reasons += self._revocation(chain, at, int(info.serial_number, 16))
        # The profile and the verifier may both see the same defect: say it once.
        unique = [r for i, r in enumerate(reasons) if r not in reasons[:i]]
        return ValidationResult(
            _status(unique), tuple(unique), pending.certificate, chain, kind, info
        )

    def _authority_defects(self, chain: tuple[x509.Certificate, ...]) -> list[Reason]:
        """What the verifier's policies leave to ``pki.profile`` of the CAs of ``chain``:
        the same few, so each is judged once."""
        found: list[Reason] = []
        for authority in chain[1:]:
            anchor = authority is chain[-1]
            judge = partial(profile.authority_defects, authority, anchor=anchor)
            found += self._authorities.get(authority, judge, anchor)
        return found

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

    def _revocation(
        self, chain: tuple[x509.Certificate, ...], at: dt.datetime, serial: int
    ) -> list[Reason]:
        """What the CRLs (and OCSP, when allowed) say of every certificate of ``chain``
        below the anchor; ``serial``: the leaf's number (read once, by ``describe``)."""
        reasons = self._revocation_of(chain[0], chain[1], at, "certificat", serial)
        for position in range(1, len(chain) - 1):
            authority, issuer = chain[position], chain[position + 1]
            # The same for every certificate the CA issued: asked once per instant and
            # set of CRLs.
            reasons += self._authority_revocations.get(
                authority,
                partial(self._revocation_of, authority, issuer, at, "autorite"),
                (at, self.crls.generation),
            )
        return reasons

    def _revocation_of(
        self,
        current: x509.Certificate,
        issuer: x509.Certificate,
        at: dt.datetime,
        who: str,
        serial: int | None = None,
    ) -> list[Reason]:
        verdict = self.crls.verdict(current, issuer, at, serial=serial)
        status, entry, problems = verdict.status, verdict.entry, list(verdict.problems)
        if status == "inconnu" and self.use_ocsp:
            answer = ocsp.query(current, issuer, at, timeout_s=self.ocsp_timeout_s)
            if answer.status != "inconnu":
                status, entry = answer.status, answer.entry
            elif answer.problem:
                problems.append(answer.problem)
        if status == "revoque":
            assert entry is not None
            return [_revoked(entry, who)]
        if status == "inconnu":
            return [Reason("revocation_inconnue", {"objet": who, "problemes": problems})]
        return []


def _revoked(entry: RevokedEntry, who: str) -> Reason:
    return Reason(
        "revoque",
        {"date": entry.revoked_at.isoformat(), "motif": entry.reason, "objet": who},
    )


def _usage_problem(info: CertificateInfo) -> Reason | None:
    """The key usage an end-entity certificate needs for its role (none is needed without
    the extension: the key may serve any purpose)."""
    if info.role is None:
        return Reason("usage_cle_incorrect", {"role": None})
    usage = info.extensions.get(x509.KeyUsage)
    if usage is None:
        return None
    if info.role == AUTHENTICATION and not usage.digital_signature:
        return Reason("usage_cle_incorrect", {"role": info.role, "requis": "digital_signature"})
    if info.role == SIGNATURE and not usage.content_commitment:
        return Reason("usage_cle_incorrect", {"role": info.role, "requis": "content_commitment"})
    return None


def _status(reasons: list[Reason]) -> str:
    if any(reason.code != "revocation_inconnue" for reason in reasons):
        return INVALID
    if reasons:
        return UNDETERMINED
    return VALID
