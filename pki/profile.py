"""The RFC 5280 profile: what a conforming CA puts in the certificates it issues.

The rules on which extensions must, may or must not be present, and with which
criticality, are handed to ``cryptography``'s verifier as extension policies: it checks
them in Rust while it builds the chain, and its refusals are read back here. The rules on
an extension's value are checked here, on the extensions ``describe`` has parsed anyway
(as validator callbacks inside the verifier they cost 35 µs a chain, 15 % of a
validation), once per CA and once per end-entity certificate. So is what the verifier
cannot say at all: that every extension parses and appears once, and that serial
numbers are positive.

A certificate that breaks a rule is invalid, with the reason ``certificat_non_conforme``:
``defaut`` (a stable code), ``regle`` (the section of RFC 5280 it breaks), ``objet``
(``certificat`` or ``autorite``), and where known ``extension`` (dotted OID) and
``autorite`` (the subject of the CA at fault).
"""

from __future__ import annotations

import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID
from cryptography.x509.verification import Criticality, ExtensionPolicy

from pki.parsing import AUTHENTICATION, MALFORMED_EXTENSION, CertificateInfo
from pki.reasons import Reason

NONCONFORMING = "certificat_non_conforme"

# Defect → the section of RFC 5280 that forbids it.
RULES: dict[str, str] = {
    "extension_dupliquee": "4.2",
    "extension_illisible": "4.2",
    "extension_critique_inconnue": "4.2",
    "extension_absente": "4.2",
    "extension_interdite": "4.2",
    "criticite_incorrecte": "4.2",
    "numero_serie_non_positif": "4.1.2.2",
    "identifiant_cle_autorite_absent": "4.2.1.1",
    "identifiant_cle_autorite_incomplet": "4.2.1.1",
    "identifiant_cle_autorite_critique": "4.2.1.1",
    "identifiant_cle_sujet_absent": "4.2.1.2",
    "identifiant_cle_sujet_critique": "4.2.1.2",
    "signature_certificats_hors_ac": "4.2.1.3",
    "contraintes_politique_non_critiques": "4.2.1.11",
    "usage_etendu_sans_authentification_client": "4.2.1.12",
    "acces_autorite_critique": "4.2.2.1",
}

_CLIENT_USAGES = {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}


def nonconforming(defect: str, objet: str = "certificat", **params: Any) -> Reason:
    """The reason for a certificate (or the CA above it) that breaks ``defect``'s rule."""
    details = {key: value for key, value in params.items() if value is not None}
    return Reason(
        NONCONFORMING,
        {"defaut": defect, "regle": RULES.get(defect, "4.2"), "objet": objet, **details},
    )


# Rules handed to the verifier -------------------------------------------------------------


def end_entity_policy() -> ExtensionPolicy:
    """The profile of end-entity certificates: an authorityKeyIdentifier, non-critical
    (§4.2.1.1); a non-critical authorityInformationAccess when there is one (§4.2.2.1).

    Built on ``permit_all`` rather than ``webpki_defaults_ee``: smart-card signature
    certificates have neither the SAN nor the clientAuth usage the web profile demands.
    """
    return (
        ExtensionPolicy.permit_all()
        .require_present(x509.AuthorityKeyIdentifier, Criticality.NON_CRITICAL, None)
        .may_be_present(x509.AuthorityInformationAccess, Criticality.NON_CRITICAL, None)
    )


def ca_policy() -> ExtensionPolicy:
    """The profile of CA certificates, roots included: the web PKI defaults (basic
    constraints, key usage, a non-critical AIA…), plus what RFC 5280 asks and those
    defaults leave alone: a non-critical subjectKeyIdentifier (§4.2.1.2), a non-critical
    authorityKeyIdentifier when there is one (§4.2.1.1; whether there must be one depends
    on the CA's place in the chain, see ``authority_defects``), a critical
    policyConstraints when there is one (§4.2.1.11)."""
    return (
        ExtensionPolicy.webpki_defaults_ca()
        .require_present(x509.SubjectKeyIdentifier, Criticality.NON_CRITICAL, None)
        .may_be_present(x509.AuthorityKeyIdentifier, Criticality.NON_CRITICAL, None)
        .may_be_present(x509.PolicyConstraints, Criticality.CRITICAL, None)
    )


# Rules on values ------------------------------------------------------------------------


def end_entity_defects(info: CertificateInfo) -> list[Reason]:
    """The value rules the end-entity certificate ``info`` describes breaks."""
    found = []
    extensions = info.extensions
    if info.serial_number == "0" or info.serial_number.startswith("-"):
        found.append(nonconforming("numero_serie_non_positif"))
    identifier = extensions.get(x509.AuthorityKeyIdentifier)
    if identifier is not None and identifier.key_identifier is None:
        found.append(nonconforming("identifiant_cle_autorite_incomplet"))
    # §4.2.1.3: keyCertSign only where basicConstraints says cA.
    usage = extensions.get(x509.KeyUsage)
    if usage is not None and usage.key_cert_sign:
        found.append(nonconforming("signature_certificats_hors_ac"))
    # §4.2.1.12: present, the EKU limits the key to the usages it lists. An authentication
    # certificate must then allow client authentication; smart-card logon and e-mail
    # protection may stand beside it.
    purposes = extensions.get(x509.ExtendedKeyUsage)
    if info.role == AUTHENTICATION and purposes is not None and _CLIENT_USAGES.isdisjoint(purposes):
        found.append(nonconforming("usage_etendu_sans_authentification_client"))
    return found


def authority_defects(authority: x509.Certificate, anchor: bool) -> list[Reason]:
    """The value rules a CA certificate of a chain breaks; ``anchor``: whether it is the
    trust anchor the chain ends at."""
    found = []
    if authority.serial_number <= 0:
        found.append("numero_serie_non_positif")
    try:
        identifier = authority.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        if identifier.value.key_identifier is None:
            found.append("identifiant_cle_autorite_incomplet")
    except x509.ExtensionNotFound:
        # §4.2.1.1: a root may go without; a CA below it may not.
        if not anchor:
            found.append("identifiant_cle_autorite_absent")
    except MALFORMED_EXTENSION:
        # The verifier read those it checks; one it does not check cannot be read.
        found.append("extension_illisible")
    if not found:
        return []
    try:
        name = authority.subject.rfc4514_string()
    except ValueError:
        name = None
    return [nonconforming(defect, "autorite", autorite=name) for defect in found]


# Reading the verifier's refusals -------------------------------------------------------

_EXTENSION = re.compile(r"invalid extension: (?P<oid>[0-9.]+): (?P<what>[^(]*?)\s*(?:\(|$)")
_PROCESSING = re.compile(
    r"encountered processing <Certificate\(subject=<Name\((?P<name>.*)\)>, \.\.\.\)>"
)

_MISSING = {
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string: "identifiant_cle_autorite_absent",
    ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string: "identifiant_cle_sujet_absent",
}
_CRITICALITY = {
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS.dotted_string: "acces_autorite_critique",
    ExtensionOID.POLICY_CONSTRAINTS.dotted_string: "contraintes_politique_non_critiques",
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER.dotted_string: "identifiant_cle_autorite_critique",
    ExtensionOID.SUBJECT_KEY_IDENTIFIER.dotted_string: "identifiant_cle_sujet_critique",
}


def refusal_reason(message: str, certificate: x509.Certificate) -> Reason | None:
    """The profile rule behind a ``VerificationError`` of the verifier built with these
    policies for ``certificate``, or None when the refusal is about something else (the
    chain itself)."""
    # The verifier names the certificate at fault when it is the leaf; a CA's defect
    # comes out as no candidate issuer being acceptable.
    found = _PROCESSING.search(message)
    objet, authority = "certificat", None
    if found and repr(certificate.subject) != f"<Name({found['name']})>":
        objet, authority = "autorite", found["name"]
    elif found is None and "candidates exhausted" in message:
        objet = "autorite"
    if "duplicate extension" in message:
        extension = _EXTENSION.search(message)
        return nonconforming(
            "extension_dupliquee",
            objet,
            extension=extension and extension["oid"],
            autorite=authority,
        )
    if "serial number cannot be negative" in message:
        return nonconforming("numero_serie_non_positif", objet, autorite=authority)
    extension = _EXTENSION.search(message)
    if extension is None:
        return None
    oid, what = extension["oid"], extension["what"].lower()
    if "missing required extension" in what:
        defect = _MISSING.get(oid, "extension_absente")
    elif "incorrect criticality" in what:
        defect = _CRITICALITY.get(oid, "criticite_incorrecte")
    elif "unaccounted-for critical" in what:
        defect = "extension_critique_inconnue"
    elif "prohibited extension" in what:
        defect = "extension_interdite"
    else:
        return None
    return nonconforming(defect, objet, extension=oid, autorite=authority)


# What the verifier cannot say -----------------------------------------------------------


def extension_defect(certificate: x509.Certificate) -> Reason | None:
    """Why the extensions of ``certificate`` cannot all be read, or None.

    ``cryptography`` parses extensions on first use and caches them: after this call,
    reading them again costs nothing.
    """
    try:
        certificate.extensions  # noqa: B018  (parsing is the point)
    except x509.DuplicateExtension as exc:
        return nonconforming("extension_dupliquee", extension=exc.oid.dotted_string)
    except MALFORMED_EXTENSION:
        return nonconforming("extension_illisible", extension=_unreadable_extension(certificate))
    return None


def _unreadable_extension(certificate: x509.Certificate) -> str | None:
    """The OID of the first extension ``cryptography`` refuses to parse.

    Each extension is tried alone, in a copy of the certificate that holds only it: the
    copy's signature is not valid, which does not matter to parsing.
    """
    from asn1crypto import x509 as asn1_x509

    try:
        parsed = asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))
        extensions = list(parsed["tbs_certificate"]["extensions"])
    except Exception:  # asn1crypto raises several types on bytes it cannot follow
        return None
    for extension in extensions:
        copy = parsed.copy()
        copy["tbs_certificate"]["extensions"] = asn1_x509.Extensions([extension])
        try:
            x509.load_der_x509_certificate(copy.dump(force=True)).extensions  # noqa: B018
        except MALFORMED_EXTENSION:
            return str(extension["extn_id"].dotted)
        except Exception:
            continue
    return None
