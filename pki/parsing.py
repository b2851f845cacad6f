"""Reading certificates from the files people have: PEM (one or many), DER, PKCS#7
bundles (``.p7b``) and the public part of PKCS#12 files, and describing them."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pki.der import name_text as der_name_text
from pki.der import pem_certificate_blocks, read_name, tbs_names
from pki.errors import UnreadableCertificate

AUTHENTICATION = "authentification"
SIGNATURE = "signature"
# An end-entity certificate without key usage may serve any purpose (RFC 5280 §4.2.1.3):
# nothing tells whether it is the card's authentication or signature certificate.
UNKNOWN_ROLE = "inconnu"

_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
# What cryptography raises for bytes that are not a certificate: InvalidVersion (an
# unknown X.509 version number) is not a ValueError.
_NOT_A_CERTIFICATE = (ValueError, x509.InvalidVersion)
_PEM_PKCS7 = b"-----BEGIN PKCS7-----"
# What cryptography raises when it parses extensions it finds malformed: ValueError for
# most, TypeError and KeyError from the constructors of a few (an empty or unknown TLS
# feature, an address where name constraints want a network).
MALFORMED_EXTENSION = (
    ValueError,
    TypeError,
    KeyError,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in ``data``, whatever the container, each known to have a
    readable subject and issuer.

    Raises ``UnreadableCertificate`` when nothing readable is found. A PKCS#12 file is read
    without password; one protected by a password is refused with a code saying so.
    """
    return [certificate for certificate, _ in _names_readable(load_certificates_der(data))]


def load_certificates_der(data: bytes) -> list[tuple[x509.Certificate, bytes]]:
    """Every certificate in ``data`` with its DER encoding, as they come: their names are
    read by ``describe`` (and ``Validator.validate``), which raise ``UnreadableCertificate``
    (``nom_illisible``) for one that cannot be read.

    Keeping the bytes read spares ``describe`` encoding the certificate again, and leaving
    the names to it spares reading them twice: for a batch, each costs as much as loading.
    """
    if not data or not data.strip():
        raise UnreadableCertificate("fichier_vide")
    # DER first when it may be DER: a DER certificate may hold a PEM marker in a value.
    if data[:1] == b"\x30":
        for loader in (_der_certificate, _der_pkcs7, _pkcs12):
            found = loader(data)
            if found:
                return found
    try:
        if _PEM_CERTIFICATE in data:
            blocks = pem_certificate_blocks(data)
            if blocks is not None:
                return [(x509.load_der_x509_certificate(block), block) for block in blocks]
            return _with_der(x509.load_pem_x509_certificates(data))
        if _PEM_PKCS7 in data:
            return _with_der(pkcs7.load_pem_pkcs7_certificates(data))
    except _NOT_A_CERTIFICATE as exc:
        raise UnreadableCertificate("pem_invalide", detail=str(exc)) from None
    if data[:1] == b"\x30" and _looks_like_pkcs12(data):
        raise UnreadableCertificate("pkcs12_protege")
    raise UnreadableCertificate("format_inconnu")


def _with_der(certificates: Iterable[x509.Certificate]) -> list[tuple[x509.Certificate, bytes]]:
    return [(c, c.public_bytes(Encoding.DER)) for c in certificates]


def _names_readable(
    certificates: list[tuple[x509.Certificate, bytes]],
) -> list[tuple[x509.Certificate, bytes]]:
    """``certificates``, once their subject and issuer names are known to parse.

    cryptography parses names on first use: a certificate whose issuer is not valid DER
    loads, then fails wherever the name is read. Such a certificate is unreadable. Names
    that ``pki.der`` renders are known to parse without building cryptography's Name
    objects (the common case, and the fast one); cryptography judges the others.
    """
    for certificate, der in certificates:
        names = tbs_names(der)
        if (
            names is not None
            and (names[0] in _NAME_TEXTS or der_name_text(names[0]) is not None)
            and der_name_text(names[1]) is not None
        ):
            continue
        try:
            certificate.subject  # noqa: B018  (parsing is the point)
            certificate.issuer  # noqa: B018
        except ValueError:
            raise UnreadableCertificate("nom_illisible") from None
    return certificates


def _der_certificate(data: bytes) -> list[tuple[x509.Certificate, bytes]]:
    try:
        return [(x509.load_der_x509_certificate(data), data)]
    except _NOT_A_CERTIFICATE:
        return []


def _der_pkcs7(data: bytes) -> list[tuple[x509.Certificate, bytes]]:
    try:
        return _with_der(pkcs7.load_der_pkcs7_certificates(data))
    except _NOT_A_CERTIFICATE:
        return []


def _pkcs12(data: bytes) -> list[tuple[x509.Certificate, bytes]]:
    for password in (None, b""):
        try:
            bundle = pkcs12.load_pkcs12(data, password)
        except (*_NOT_A_CERTIFICATE, TypeError):
            continue
        found = [bundle.cert.certificate] if bundle.cert else []
        return _with_der(found + [extra.certificate for extra in bundle.additional_certs])
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
    fingerprint_sha256: str  # lower-case hexadecimal
    # AUTHENTICATION, SIGNATURE, UNKNOWN_ROLE (no key usage: any purpose), or None for a
    # CA, a key usage fit for neither, or extensions that cannot be read
    role: str | None
    is_ca: bool
    # Each extension's value by its type, as cryptography parsed it; empty when they
    # cannot be read (``pki.profile.extension_defect`` says why).
    extensions: Mapping[type, Any] = field(default_factory=dict, repr=False, compare=False)

    # Read on demand: a batch of validations seldom needs them.

    @cached_property
    def key_usage(self) -> frozenset[str]:
        """The key usage bits set (names of ``x509.KeyUsage`` attributes); empty when the
        extension is absent (see ``role``)."""
        usage = self.extensions.get(x509.KeyUsage)
        return _usage_bits(usage) if usage is not None else frozenset()

    @cached_property
    def extended_key_usage(self) -> tuple[str, ...]:
        """Dotted OIDs."""
        return tuple(oid.dotted_string for oid in self.extensions.get(x509.ExtendedKeyUsage) or ())

    @cached_property
    def policies(self) -> tuple[str, ...]:
        return tuple(
            policy.policy_identifier.dotted_string
            for policy in self.extensions.get(x509.CertificatePolicies) or ()
        )

    @cached_property
    def crl_urls(self) -> tuple[str, ...]:
        return tuple(
            name.value
            for point in self.extensions.get(x509.CRLDistributionPoints) or ()
            for name in point.full_name or ()
            if isinstance(name, x509.UniformResourceIdentifier)
        )

    @cached_property
    def ocsp_urls(self) -> tuple[str, ...]:
        return tuple(
            description.access_location.value
            for description in self.extensions.get(x509.AuthorityInformationAccess) or ()
            if description.access_method == x509.AuthorityInformationAccessOID.OCSP
            and isinstance(description.access_location, x509.UniformResourceIdentifier)
        )


_KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


def _usage_bits(usage: x509.KeyUsage) -> frozenset[str]:
    found = {name for name in _KEY_USAGES if getattr(usage, name)}
    if usage.key_agreement:
        found |= {name for name in ("encipher_only", "decipher_only") if getattr(usage, name)}
    return frozenset(found)


def key_usage(certificate: x509.Certificate) -> frozenset[str] | None:
    """The key usage bits set (names of ``x509.KeyUsage`` attributes), None if absent."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return _usage_bits(usage)


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


def _role(values: Mapping[type, Any] | None) -> str | None:
    """Signature when the key commits its holder (non-repudiation), authentication when
    it signs challenges or says client authentication; any purpose without key usage."""
    if values is None:
        return None
    constraints = values.get(x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        return None
    usage = values.get(x509.KeyUsage)
    client = ExtendedKeyUsageOID.CLIENT_AUTH in (values.get(x509.ExtendedKeyUsage) or ())
    if usage is None:
        return AUTHENTICATION if client else UNKNOWN_ROLE
    if usage.content_commitment:
        return SIGNATURE
    if usage.digital_signature or client:
        return AUTHENTICATION
    return None


def _extension_values(certificate: x509.Certificate) -> dict[type, Any] | None:
    """Each extension's value by its type, in one pass; None when they cannot be read
    (``pki.profile.extension_defect`` says why)."""
    try:
        return {type(extension.value): extension.value for extension in certificate.extensions}
    except MALFORMED_EXTENSION:
        return None


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER encoding, lower-case hexadecimal."""
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


_NAME_TEXTS: dict[bytes, str] = {}


def name_text(name: x509.Name) -> str:
    """RFC 4514 text of a name, remembered: a batch repeats the same few issuers."""
    return _remembered_name(name.public_bytes(), lambda: name)


def _remembered_name(encoded: bytes, parsed: Any) -> str:
    text = _NAME_TEXTS.get(encoded)
    if text is None:
        if len(_NAME_TEXTS) > 4096:
            _NAME_TEXTS.clear()
        text = der_name_text(encoded) or parsed().rfc4514_string()
        _NAME_TEXTS[encoded] = text
    return text


def describe(certificate: x509.Certificate, der: bytes | None = None) -> CertificateInfo:
    """Everything the inventory needs from ``certificate`` (``der``: its encoding, when
    the caller has it).

    Extensions that cannot be read are left out of the description, and
    ``pki.profile.extension_defect`` says why. Raises ``UnreadableCertificate``
    (``nom_illisible``) only for a subject or issuer name that cannot be read, which
    ``load_certificates`` refuses upfront.
    """
    if der is None:
        der = certificate.public_bytes(Encoding.DER)
    names = tbs_names(der)
    read = read_name(names[1]) if names else None
    try:
        if read is not None:
            subject_text, values = read
        else:
            subject = certificate.subject
            subject_text = subject.rfc4514_string()
            values = {
                oid.dotted_string: str(attributes[0].value)
                for oid in (NameOID.COMMON_NAME, NameOID.EMAIL_ADDRESS)
                if (attributes := subject.get_attributes_for_oid(oid))
            }
        if names is not None:
            issuer = _remembered_name(names[0], lambda: certificate.issuer)
        else:
            issuer = name_text(certificate.issuer)
    except ValueError:
        raise UnreadableCertificate("nom_illisible") from None
    extensions = _extension_values(certificate)
    readable = extensions or {}
    constraints = readable.get(x509.BasicConstraints)
    emails = [
        name.value
        for name in readable.get(x509.SubjectAlternativeName) or ()
        if isinstance(name, x509.RFC822Name)
    ]
    return CertificateInfo(
        subject=subject_text,
        holder_name=values.get(_COMMON_NAME),
        email=emails[0] if emails else values.get(_EMAIL_ADDRESS),
        issuer=issuer,
        serial_number=format(certificate.serial_number, "X"),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        role=_role(extensions),
        is_ca=bool(constraints is not None and constraints.ca),
        extensions=readable,
    )


_COMMON_NAME = NameOID.COMMON_NAME.dotted_string
_EMAIL_ADDRESS = NameOID.EMAIL_ADDRESS.dotted_string
