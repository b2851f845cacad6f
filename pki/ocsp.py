"""OCSP: ask the responder a certificate names, and believe only a fresh answer signed by
the issuer or by a responder the issuer delegated (id-kp-OCSPSigning)."""

from __future__ import annotations

import datetime as dt
import urllib.error
import urllib.request
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from pki.crl import RevokedEntry
from pki.parsing import extended_key_usage

MAX_RESPONSE_BYTES = 1024 * 1024
# A response is believed up to this long after its next_update (clocks drift).
TOLERANCE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class OcspVerdict:
    status: str  # "bon", "revoque" or "inconnu"
    entry: RevokedEntry | None = None
    problem: str | None = None


def responder_urls(certificate: x509.Certificate) -> list[str]:
    try:
        access = certificate.extensions.get_extension_for_class(
            x509.AuthorityInformationAccess
        ).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [
        description.access_location.value
        for description in access
        if description.access_method == x509.AuthorityInformationAccessOID.OCSP
        and isinstance(description.access_location, x509.UniformResourceIdentifier)
    ]


def query(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    at: dt.datetime,
    *,
    timeout_s: float = 5.0,
) -> OcspVerdict:
    """Ask the certificate's OCSP responder(s) for its status at ``at``."""
    urls = [u for u in responder_urls(certificate) if u.lower().startswith(("http://", "https://"))]
    if not urls:
        return OcspVerdict("inconnu", problem="ocsp_absent")
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer, hashes.SHA1())
        .build()
        .public_bytes(Encoding.DER)
    )
    problem = "ocsp_injoignable"
    for url in urls:
        try:
            http_request = urllib.request.Request(
                url, data=request, headers={"Content-Type": "application/ocsp-request"}
            )
            with urllib.request.urlopen(http_request, timeout=timeout_s) as response:
                data = response.read(MAX_RESPONSE_BYTES)
        except (urllib.error.URLError, OSError):
            continue
        verdict = interpret(data, certificate, issuer, at)
        if verdict.status != "inconnu":
            return verdict
        problem = verdict.problem or problem
    return OcspVerdict("inconnu", problem=problem)


def interpret(
    data: bytes, certificate: x509.Certificate, issuer: x509.Certificate, at: dt.datetime
) -> OcspVerdict:
    """The status an OCSP response gives ``certificate``, if the response deserves belief."""
    try:
        response = ocsp.load_der_ocsp_response(data)
    except ValueError:
        return OcspVerdict("inconnu", problem="ocsp_reponse_illisible")
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return OcspVerdict("inconnu", problem="ocsp_refus")
    signer = _signer(response, issuer)
    if signer is None or not _signature_ok(response, signer):
        return OcspVerdict("inconnu", problem="ocsp_signature_invalide")
    for single in response.responses:
        if single.serial_number != certificate.serial_number:
            continue
        if single.issuer_name_hash != _name_hash(issuer, single.hash_algorithm):
            continue
        if single.this_update_utc > at + TOLERANCE or (
            single.next_update_utc is not None and single.next_update_utc + TOLERANCE < at
        ):
            return OcspVerdict("inconnu", problem="ocsp_perime")
        if single.certificate_status == ocsp.OCSPCertStatus.GOOD:
            return OcspVerdict("bon")
        if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
            reason = single.revocation_reason.name if single.revocation_reason else None
            revoked_at = single.revocation_time_utc
            assert revoked_at is not None
            if revoked_at > at:
                return OcspVerdict("bon")
            return OcspVerdict(
                "revoque", RevokedEntry(certificate.serial_number, revoked_at, reason)
            )
        return OcspVerdict("inconnu", problem="ocsp_statut_inconnu")
    return OcspVerdict("inconnu", problem="ocsp_sans_reponse")


def _name_hash(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(issuer.subject.public_bytes())
    return digest.finalize()


def _signer(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> x509.Certificate | None:
    """The issuer itself, or a delegated responder certificate it issued for OCSP."""
    if _names(response, issuer):
        return issuer
    for candidate in response.certificates:
        if not _names(response, candidate):
            continue
        try:
            candidate.verify_directly_issued_by(issuer)
        except Exception:  # InvalidSignature, or keys of another type: not delegated
            return None
        if ExtendedKeyUsageOID.OCSP_SIGNING in extended_key_usage(candidate):
            return candidate
    return None


def _names(response: ocsp.OCSPResponse, certificate: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == certificate.subject
    digest = hashes.Hash(hashes.SHA1())
    from cryptography.hazmat.primitives.serialization import PublicFormat

    public = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    from asn1crypto import keys

    digest.update(keys.PublicKeyInfo.load(public)["public_key"].contents[1:])
    return response.responder_key_hash == digest.finalize()


def _signature_ok(response: ocsp.OCSPResponse, signer: x509.Certificate) -> bool:
    key = signer.public_key()
    algorithm = response.signature_hash_algorithm
    try:
        if isinstance(key, rsa.RSAPublicKey):
            assert algorithm is not None
            key.verify(
                response.signature, response.tbs_response_bytes, padding.PKCS1v15(), algorithm
            )
        elif isinstance(key, ec.EllipticCurvePublicKey):
            assert algorithm is not None
            key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except Exception:  # InvalidSignature and malformed keys alike: not believed
        return False
    return True
