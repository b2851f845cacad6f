"""Pure X.509: read and describe certificates, build and check chains, revocation.

``pki`` imports nothing of the rest of cartes and does no I/O except what a caller asks
for (reading the files it names, fetching a CRL or asking an OCSP responder, with a
timeout, when the caller allows the network).
"""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

from pki.crl import CrlStore, load_crl
from pki.errors import PkiError, TrustConfigurationError, UnreadableCertificate, UnreadableCrl
from pki.parsing import (
    AUTHENTICATION,
    SIGNATURE,
    UNKNOWN_ROLE,
    CertificateInfo,
    describe,
    load_certificates,
    load_certificates_der,
)
from pki.reasons import Reason
from pki.trust import TrustStore
from pki.validation import INVALID, UNDETERMINED, VALID, ValidationResult, Validator

# A serial number that is not positive is a profile defect this package reports
# (``numero_serie_non_positif``); cryptography would also warn at every read of it.
warnings.filterwarnings(
    "ignore",
    message="Parsed a serial number which wasn't positive",
    category=CryptographyDeprecationWarning,
)

__all__ = [
    "AUTHENTICATION",
    "INVALID",
    "SIGNATURE",
    "UNDETERMINED",
    "UNKNOWN_ROLE",
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
    "load_certificates_der",
    "load_crl",
]
