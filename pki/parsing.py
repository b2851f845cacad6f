"""Reading certificates from the files people have: PEM (one or many), DER, PKCS#7
bundles (``.p7b``) and the public part of PKCS#12 files, and describing them."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pki.errors import UnreadableCertificate

AUTHENTICATION = "authentification"
SIGNATURE = "signature"

_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
# What cryptography raises for bytes that are not a certificate: InvalidVersion (an
# unknown X.509 version number) is not a ValueError.
_NOT_A_CERTIFICATE = (ValueError, x509.InvalidVersion)
_PEM_PKCS7 = b"-----BEGIN PKCS7-----"


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in ``data``, whatever the container.

    Raises ``UnreadableCertificate`` when nothing readable is found. A PKCS#12 file is read
    without password; one protected by a password is refused with a code saying so.
    """
    if not data or not data.strip():
        raise UnreadableCertificate("fichier_vide")
    try:
        if _PEM_CERTIFICATE in data:
            return _names_readable(x509.load_pem_x509_certificates(data))
        if _PEM_PKCS7 in data:
            return _names_readable(list(pkcs7.load_pem_pkcs7_certificates(data)))
    except _NOT_A_CERTIFICATE as exc:
        raise UnreadableCertificate("pem_invalide", detail=str(exc)) from None
    for loader in (_der_certificate, _der_pkcs7, _pkcs12):
        found = loader(data)
        if found:
            return _names_readable(found)
    if data[:1] == b"\x30" and _looks_like_pkcs12(data):
        raise UnreadableCertificate("pkcs12_protege")
    raise UnreadableCertificate("format_inconnu")


def _names_readable(certificates: list[x509.Certificate]) -> list[x509.Certificate]:
    """``certificates``, once their subject and issuer names are known to parse.

    cryptography parses names on first use: a certificate whose issuer is not valid DER
    loads, then fails wherever the name is read. Such a certificate is unreadable.
    """
    for certificate in certificates:
        try:
            certificate.subject  # noqa: B018  (parsing is the point)
            certificate.issuer  # noqa: B018
        except ValueError:
            raise UnreadableCertificate("nom_illisible") from None
    return certificates


def _der_certificate(data: bytes) -> list[x509.Certificate]:
    try:
        return [x509.load_der_x509_certificate(data)]
    except _NOT_A_CERTIFICATE:
        return []


def _der_pkcs7(data: bytes) -> list[x509.Certificate]:
    try:
        return list(pkcs7.load_der_pkcs7_certificates(data))
    except _NOT_A_CERTIFICATE:
        return []


def _pkcs12(data: bytes) -> list[x509.Certificate]:
    for password in (None, b""):
        try:
            bundle = pkcs12.load_pkcs12(data, password)
        except (*_NOT_A_CERTIFICATE, TypeError):
            continue
        found = [bundle.cert.certificate] if bundle.cert else []
        return found + [extra.certificate for extra in bundle.additional_certs]
    return []


def _looks_like_pkcs12(data: bytes) -> bool:
    # PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, ... }
    return b"\x02\x01\x03\x30" in data[:16]


@dataclass(frozen=True)
class CertificateInfo:
    """What the inventory and the user need to know of a certificate."""

    subject: str
    holder_name: str | None
    email: str | None
    issuer: str
    serial_number: str  # upper-case hexadecimal
    not_before: dt.datetime
    not_after: dt.datetime
    key_usage: frozenset[str]
    extended_key_usage: tuple[str, ...]  # dotted OIDs
    policies: tuple[str, ...]
    crl_urls: tuple[str, ...]
    ocsp_urls: tuple[str, ...]
    fingerprint_sha256: str  # lower-case hexadecimal
    role: str | None  # AUTHENTICATION, SIGNATURE, or None for a CA or unclear usage
    is_ca: bool


_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


def key_usage(certificate: x509.Certificate) -> frozenset[str] | None:
    """The key usage bits set (names of ``x509.KeyUsage`` attributes), None if absent."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    found = {name for name in _KEY_USAGES if getattr(usage, name)}
    if usage.key_agreement:
        found |= {name for name in ("encipher_only", "decipher_only") if getattr(usage, name)}
    return frozenset(found)


def extended_key_usage(certificate: x509.Certificate) -> tuple[x509.ObjectIdentifier, ...]:
    try:
        return tuple(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return ()


def is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def role(certificate: x509.Certificate, usages: frozenset[str] | None = None) -> str | None:
    """The role of an end-entity certificate: signature when it commits its holder
    (non-repudiation), authentication when it signs challenges or says client
    authentication; None for a CA or a certificate that says neither. ``usages`` saves
    reading the key usage again when the caller has it."""
    if is_ca(certificate):
        return None
    if usages is None:
        usages = key_usage(certificate)
    usages = usages or frozenset()
    if "content_commitment" in usages:
        return SIGNATURE
    if "digital_signature" in usages or ExtendedKeyUsageOID.CLIENT_AUTH in extended_key_usage(
        certificate
    ):
        return AUTHENTICATION
    return None


def _urls(certificate: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    crl: list[str] = []
    ocsp: list[str] = []
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        for point in points:
            for name in point.full_name or ():
                if isinstance(name, x509.UniformResourceIdentifier):
                    crl.append(name.value)
    except x509.ExtensionNotFound:
        pass
    try:
        access = certificate.extensions.get_extension_for_class(
            x509.AuthorityInformationAccess
        ).value
        for description in access:
            location = description.access_location
            if description.access_method == x509.AuthorityInformationAccessOID.OCSP and isinstance(
                location, x509.UniformResourceIdentifier
            ):
                ocsp.append(location.value)
    except x509.ExtensionNotFound:
        pass
    return tuple(crl), tuple(ocsp)


def _email(certificate: x509.Certificate) -> str | None:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        emails = names.get_values_for_type(x509.RFC822Name)
        if emails:
            return emails[0]
    except x509.ExtensionNotFound:
        pass
    attributes = certificate.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
    return str(attributes[0].value) if attributes else None


def _policies(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(policy.policy_identifier.dotted_string for policy in policies)


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER encoding, lower-case hexadecimal."""
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


_NAME_TEXTS: dict[bytes, str] = {}


def name_text(name: x509.Name) -> str:
    """RFC 4514 text of a name, remembered: a batch repeats the same few issuers."""
    key = name.public_bytes()
    text = _NAME_TEXTS.get(key)
    if text is None:
        if len(_NAME_TEXTS) > 4096:
            _NAME_TEXTS.clear()
        text = _NAME_TEXTS[key] = name.rfc4514_string()
    return text


def describe(certificate: x509.Certificate) -> CertificateInfo:
    """Everything the inventory needs from ``certificate``.

    Raises ``UnreadableCertificate`` when an extension the description needs is malformed.
    """
    try:
        subject = certificate.subject
        names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        crl_urls, ocsp_urls = _urls(certificate)
        usages = key_usage(certificate)
        return CertificateInfo(
            subject=subject.rfc4514_string(),
            holder_name=str(names[0].value) if names else None,
            email=_email(certificate),
            issuer=name_text(certificate.issuer),
            serial_number=format(certificate.serial_number, "X"),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            key_usage=usages or frozenset(),
            extended_key_usage=tuple(oid.dotted_string for oid in extended_key_usage(certificate)),
            policies=_policies(certificate),
            crl_urls=crl_urls,
            ocsp_urls=ocsp_urls,
            fingerprint_sha256=fingerprint(certificate),
            role=role(certificate, usages),
            is_ca=is_ca(certificate),
        )
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise UnreadableCertificate("extension_invalide", detail=str(exc)) from None
