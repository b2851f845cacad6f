"""Pure X.509: read and describe certificates, build and check chains, revocation.

``pki`` imports nothing of the rest of cartes and does no I/O except what a caller asks
for (reading the files it names, fetching a CRL or asking an OCSP responder, with a
timeout, when the caller allows the network).
"""

from pki.crl import CrlStore, load_crl
from pki.errors import PkiError, TrustConfigurationError, UnreadableCertificate, UnreadableCrl
from pki.parsing import AUTHENTICATION, SIGNATURE, CertificateInfo, describe, load_certificates
from pki.trust import TrustStore
from pki.validation import INVALID, UNDETERMINED, VALID, Reason, ValidationResult, Validator

__all__ = [
    "AUTHENTICATION",
    "INVALID",
    "SIGNATURE",
    "UNDETERMINED",
    "VALID",
    "CertificateInfo",
    "CrlStore",
    "PkiError",
    "Reason",
    "TrustConfigurationError",
    "TrustStore",
    "UnreadableCertificate",
    "UnreadableCrl",
    "ValidationResult",
    "Validator",
    "describe",
    "load_certificates",
    "load_crl",
]
