"""A holder's own certificate, checked by its holder: the work behind the lawyers' status
page (``cartes web``), for any face to call.

The certificate is the one the holder presented (a TLS client certificate that nginx
verified), validated here with the cached revocation lists, then looked up in the
inventory by fingerprint, then by issuer and serial number (``inventaire.selfcheck``). The
answer concerns that certificate and its key only. French is the faces' to write.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cartes.desk import CertificateStatus, certificate_status
from cartes.settings import Settings
from inventaire.clock import PARIS, paris_today
from inventaire.dbapi import ReadConnection
from inventaire.enums import CredentialKind
from inventaire.selfcheck import Advice, KnownKey, advise, known_key
from inventaire.vocabulary import KIND_TOKENS
from pki import INVALID, Validator, load_certificates_der


class UntrustedCertificate(Exception):
    """The presented certificate chains to no configured anchor: nothing is said of it.

    nginx verifies the chain first, but it lets a certificate through when only its dates
    fail, and OpenSSL then reports the last error it met: an expired certificate of an
    unknown issuer arrives as merely "expired". Without this check, such a certificate,
    made up with a real issuer's name and a real holder's serial number, would be matched
    to that holder's key.
    """


@dataclass(frozen=True)
class KeyReport:
    """Everything the holder of one certificate is told."""

    certificate: CertificateStatus
    known: KnownKey | None  # None: the SAR does not know this key
    advice: Advice
    kind: CredentialKind  # the inventory's, else the one of the anchor, else RPVA key
    holder_name: str | None  # the inventory's, else the certificate's
    at: dt.datetime

    @property
    def today(self) -> dt.date:
        return paris_today(self.at)


def key_report(
    pem_or_der: bytes,
    *,
    validator: Validator,
    settings: Settings,
    connection: ReadConnection | None,
    at: dt.datetime,
) -> KeyReport:
    """What to tell the holder of the certificate ``pem_or_der`` at the instant ``at``:
    its validation (chain and revocation by ``validator``), what the inventory read through
    ``connection`` knows of its key (None: no inventory), and the next step.

    Raises ``UntrustedCertificate`` when no chain leads from the certificate to a
    configured anchor, ``pki.UnreadableCertificate`` for bytes that hold no readable
    certificate, and ``inventaire.errors.InventaireError`` when the inventory cannot be
    read.
    """
    [(certificate, der), *_] = load_certificates_der(pem_or_der)
    result = validator.validate(certificate, at, der=der)
    if not result.chain:
        raise UntrustedCertificate()
    info = result.info
    assert info is not None  # validate describes every certificate it reads
    status = certificate_status(
        info,
        result,
        token_label="",
        renewal=settings.renewal,
        trust_empty=validator.trust.empty,
        at=at,
    )
    today = paris_today(at)
    kind = KIND_TOKENS.get(status.kind, CredentialKind.RPVA_KEY)
    known = None
    if connection is not None:
        known = known_key(
            connection,
            fingerprint_sha256=info.fingerprint_sha256,
            issuer=info.issuer,
            serial_number=info.serial_number,
            today=today,
            lead_days=settings.renewal.lead_days()[kind],
        )
    if known is not None:
        kind = known.kind
    advice = next_step(status, known=known, kind=kind, settings=settings, at=at)
    return KeyReport(
        certificate=status,
        known=known,
        advice=advice,
        kind=kind,
        holder_name=known.holder_name if known is not None else info.holder_name,
        at=at,
    )


def next_step(
    status: CertificateStatus,
    *,
    known: KnownKey | None,
    kind: CredentialKind,
    settings: Settings,
    at: dt.datetime,
) -> Advice:
    """The next step for the holder of the certificate of ``status``, whose key is of
    ``kind`` and known to the inventory as ``known`` (None: unknown, or no inventory, as
    for ``cartes statut``), on the day of ``at`` in Paris."""
    return advise(
        not_after=status.info.not_after.astimezone(PARIS).date(),
        # Revocation unknown is not a refusal: the faces say it apart.
        valid=status.status != INVALID,
        revoked=status.revocation == "revoque",
        known=known,
        today=paris_today(at),
        lead_days=settings.renewal.lead_days()[kind],
        margin_days=settings.renewal.safety_margin_days,
    )
