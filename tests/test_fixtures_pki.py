"""Tests of the test-PKI generators (fixtures.pki) and of the CRL/OCSP server
(fixtures.pki_server), checked with cryptography's own APIs and, when installed, openssl."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID
from cryptography.x509.verification import (
    ClientVerifier,
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from fixtures import pki as fpki
from fixtures.pki_server import OcspResponder, PkiServer, serve_test_pki

NOW = dt.datetime(2026, 11, 26, 9, 30, 15, 123456, tzinfo=dt.UTC)
DER = serialization.Encoding.DER
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl binary not installed")


@pytest.fixture(scope="session")
def key_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("test-pki-keys")


@pytest.fixture(scope="module")
def server() -> Iterator[PkiServer]:
    with PkiServer() as running:
        yield running


@pytest.fixture(scope="module")
def built(server: PkiServer, key_cache: Path) -> fpki.TestPki:
    pki = fpki.build_test_pki(now=NOW, base_url=server.base_url, key_cache=key_cache)
    serve_test_pki(server, pki)
    return pki


@pytest.fixture(scope="module")
def files(built: fpki.TestPki, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return fpki.write_test_pki(built, tmp_path_factory.mktemp("test-pki-files"))


def verifier(roots: list[x509.Certificate], at: dt.datetime = NOW) -> ClientVerifier:
    return (
        PolicyBuilder()
        .store(Store(roots))
        .time(at)
        .extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )


def all_roots(pki: fpki.TestPki) -> list[x509.Certificate]:
    return [family.root.certificate for family in pki.families.values()]


def all_intermediates(pki: fpki.TestPki) -> list[x509.Certificate]:
    return [family.issuing.certificate for family in pki.families.values()] + [
        pki.extra_cas["sans_lcr"].certificate
    ]


def extension(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension:
    return certificate.extensions.get_extension_for_class(kind)


def matches_key(issued: fpki.Issued) -> bool:
    public = issued.key.public_key().public_bytes(
        DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    certified = issued.certificate.public_key().public_bytes(
        DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return public == certified


# --------------------------------------------------------------------------------------------
# Structure


def test_families_and_cas(built: fpki.TestPki, server: PkiServer) -> None:
    assert tuple(built.families) == fpki.FAMILIES
    assert built.now == NOW
    agent = built.families["agent"]
    assert agent.root.certificate.subject.rfc4514_string() == (
        "CN=AC Racine Justice (TEST),O=Ministère de la Justice (TEST),C=FR"
    )
    assert built.families["avocat"].issuing.certificate.subject.rfc4514_string() == (
        "CN=AC Avocats RPVA (TEST),O=Conseil national des barreaux (TEST),C=FR"
    )
    assert agent.crl_url == f"{server.base_url}/crl/agent.crl"
    assert agent.ocsp_url == f"{server.base_url}/ocsp/agent"
    day = dt.timedelta(days=1)
    for family in built.families.values():
        root, issuing = family.root.certificate, family.issuing.certificate
        assert root.subject == root.issuer
        assert issuing.issuer == root.subject
        root.verify_directly_issued_by(root)
        issuing.verify_directly_issued_by(root)
        assert matches_key(family.root) and matches_key(family.issuing)
        assert isinstance(family.root.key, rsa.RSAPrivateKey)
        assert family.root.key.key_size == 2048
        assert family.root.key.public_key().public_numbers().e == 65537
        for certificate, path_length in ((root, None), (issuing, 0)):
            constraints = extension(certificate, x509.BasicConstraints)
            assert constraints.critical
            assert constraints.value.ca and constraints.value.path_length == path_length
            usage = extension(certificate, x509.KeyUsage)
            assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
            assert not usage.value.digital_signature
            extension(certificate, x509.SubjectKeyIdentifier)
            extension(certificate, x509.AuthorityKeyIdentifier)
        assert extension(issuing, x509.AuthorityKeyIdentifier).value.key_identifier == (
            extension(root, x509.SubjectKeyIdentifier).value.digest
        )
        assert abs(root.not_valid_before_utc - (NOW - 5 * 365 * day)) < 3 * day
        assert abs(root.not_valid_after_utc - (NOW + 15 * 365 * day)) < 5 * day
        assert abs(issuing.not_valid_before_utc - (NOW - 3 * 365 * day)) < 3 * day
        assert abs(issuing.not_valid_after_utc - (NOW + 7 * 365 * day)) < 3 * day
        points = extension(issuing, x509.CRLDistributionPoints).value
        assert points[0].full_name == [x509.UniformResourceIdentifier(family.root_crl_url)]


def test_holders(built: fpki.TestPki) -> None:
    assert len(built.holders) == 2 * len(fpki.FAMILIES)
    emails = [holder.email for holder in built.holders]
    assert len(set(emails)) == len(emails)
    assert all(email.endswith(".test") for email in emails)
    assert built.holders[0].name == "Hélène Lefèvre"
    ec_holders = [
        h for h in built.holders if isinstance(h.authentication.key, ec.EllipticCurvePrivateKey)
    ]
    assert [h.family for h in ec_holders] == ["expert"]
    assert isinstance(ec_holders[0].authentication.key.curve, ec.SECP256R1)
    for holder in built.holders:
        family = built.families[holder.family]
        auth, sign = holder.authentication.certificate, holder.signature.certificate
        assert matches_key(holder.authentication) and matches_key(holder.signature)
        for certificate in (auth, sign):
            assert certificate.issuer == family.issuing.certificate.subject
            assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
                holder.name
            )
            assert certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == (
                "FR"
            )
            assert certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
            assert extension(certificate, x509.SubjectAlternativeName).value.get_values_for_type(
                x509.RFC822Name
            ) == [holder.email]
            assert extension(certificate, x509.BasicConstraints).critical
            assert not extension(certificate, x509.BasicConstraints).value.ca
            assert extension(certificate, x509.AuthorityKeyIdentifier).value.key_identifier == (
                extension(family.issuing.certificate, x509.SubjectKeyIdentifier).value.digest
            )
            extension(certificate, x509.SubjectKeyIdentifier)
            points = extension(certificate, x509.CRLDistributionPoints).value
            assert points[0].full_name == [x509.UniformResourceIdentifier(family.crl_url)]
            access = extension(certificate, x509.AuthorityInformationAccess).value
            assert access[0].access_location.value == family.ocsp_url
            assert certificate.not_valid_before_utc < NOW < certificate.not_valid_after_utc
        usage = extension(auth, x509.KeyUsage)
        assert usage.critical and usage.value.digital_signature
        assert usage.value.key_encipherment == isinstance(
            holder.authentication.key, rsa.RSAPrivateKey
        )
        assert not usage.value.content_commitment and not usage.value.key_cert_sign
        assert list(extension(auth, x509.ExtendedKeyUsage).value) == [
            ExtendedKeyUsageOID.CLIENT_AUTH,
            ExtendedKeyUsageOID.EMAIL_PROTECTION,
        ]
        usage = extension(sign, x509.KeyUsage)
        assert usage.critical and usage.value.content_commitment
        assert not usage.value.digital_signature and not usage.value.key_encipherment
        try:
            usages = list(extension(sign, x509.ExtendedKeyUsage).value)
        except x509.ExtensionNotFound:
            usages = []
        assert usages in ([], [ExtendedKeyUsageOID.EMAIL_PROTECTION])
        policies = extension(sign, x509.CertificatePolicies).value
        oids = [policy.policy_identifier for policy in policies]
        assert oids == [fpki.SIGNATURE_POLICY_OIDS[holder.family]]
        assert oids[0].dotted_string.startswith("2.999.")


def test_holders_verify_under_their_family(built: fpki.TestPki) -> None:
    for holder in built.holders:
        family = built.families[holder.family]
        for issued in (holder.authentication, holder.signature):
            chain = (
                verifier([family.root.certificate])
                .verify(issued.certificate, [family.issuing.certificate])
                .chain
            )
            assert chain == [
                issued.certificate,
                family.issuing.certificate,
                family.root.certificate,
            ]
            others = [f.root.certificate for f in built.families.values() if f is not family]
            with pytest.raises(VerificationError):
                verifier(others).verify(issued.certificate, all_intermediates(built))


def test_bad_cases(built: fpki.TestPki) -> None:
    cases = built.cases
    assert tuple(cases) == fpki.CASE_NAMES
    roots, intermediates = all_roots(built), all_intermediates(built)

    def verify(name: str, at: dt.datetime = NOW) -> list[x509.Certificate]:
        return verifier(roots, at).verify(cases[name].certificate, intermediates).chain

    expired = cases["expire"].certificate
    assert expired.not_valid_after_utc < NOW
    assert expired.issuer == built.families["agent"].issuing.certificate.subject
    with pytest.raises(VerificationError, match="not valid at validation time"):
        verify("expire")
    verify("expire", at=expired.not_valid_after_utc - dt.timedelta(days=1))

    early = cases["pas_encore_valide"].certificate
    assert early.not_valid_before_utc > NOW
    with pytest.raises(VerificationError, match="not valid at validation time"):
        verify("pas_encore_valide")
    verify("pas_encore_valide", at=early.not_valid_before_utc + dt.timedelta(days=1))

    for name, family in (("revoque", "avocat"), ("revoque_sans_motif", "agent")):
        chain = verify(name)  # revocation is not the verifier's business
        assert chain[-1] == built.families[family].root.certificate

    unknown = cases["emetteur_inconnu"].certificate
    assert unknown.issuer.rfc4514_string().startswith("CN=AC Inconnue (TEST)")
    assert unknown.issuer == built.extra_cas["inconnue_emettrice"].certificate.subject
    unknown.verify_directly_issued_by(built.extra_cas["inconnue_emettrice"].certificate)
    assert built.extra_cas["inconnue_racine"].certificate.subject not in {
        root.subject for root in roots
    }
    with pytest.raises(VerificationError):
        verify("emetteur_inconnu")

    original = built.holders[0].authentication.certificate
    tampered = cases["signature_invalide"].certificate
    assert tampered.tbs_certificate_bytes == original.tbs_certificate_bytes
    assert tampered.serial_number == original.serial_number
    assert len(tampered.signature) == len(original.signature)
    assert sum(a != b for a, b in zip(tampered.signature, original.signature, strict=True)) == 1
    with pytest.raises(VerificationError, match="signature"):
        verify("signature_invalide")
    with pytest.raises(InvalidSignature):
        tampered.verify_directly_issued_by(built.families["agent"].issuing.certificate)

    wrong_usage = cases["usage_cle_incorrect"].certificate
    usage = extension(wrong_usage, x509.KeyUsage).value
    assert usage.key_cert_sign and not usage.digital_signature and not usage.content_commitment
    assert ExtendedKeyUsageOID.CLIENT_AUTH in extension(wrong_usage, x509.ExtendedKeyUsage).value
    verify("usage_cle_incorrect")  # chain fine: checking usage is the caller's job

    no_crl = cases["sans_crl"].certificate
    sans_lcr = built.extra_cas["sans_lcr"].certificate
    assert no_crl.issuer == sans_lcr.subject
    assert sans_lcr.issuer == built.families["agent"].root.certificate.subject
    assert verify("sans_crl")[1] == sans_lcr
    points = extension(no_crl, x509.CRLDistributionPoints).value
    assert points[0].full_name[0].value.endswith("/crl/sans_lcr.crl")
    with pytest.raises(x509.ExtensionNotFound):
        extension(no_crl, x509.AuthorityInformationAccess)
    assert all(crl.issuer != sans_lcr.subject for crl in built.crls.values())

    for name, issued in cases.items():
        assert matches_key(issued), name


# --------------------------------------------------------------------------------------------
# CRLs


def test_crls(built: fpki.TestPki) -> None:
    crls = built.crls
    assert tuple(crls) == fpki.CRL_NAMES
    for name in (*fpki.FAMILIES, "agent_perimee", "agent_mauvaise_cle", "avocat_grande"):
        issuing = built.families[name.split("_")[0]].issuing
        crl = crls[name]
        assert crl.issuer == issuing.certificate.subject
        assert crl.is_signature_valid(issuing.key.public_key()) == (name != "agent_mauvaise_cle")
        crl.extensions.get_extension_for_class(x509.CRLNumber)
        assert crl.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier
        ).value.key_identifier == (
            extension(issuing.certificate, x509.SubjectKeyIdentifier).value.digest
        )
        assert crl.signature_hash_algorithm is not None
        assert crl.signature_hash_algorithm.name == "sha256"
    for name in fpki.FAMILIES:
        root = built.families[name].root
        arl = crls[f"{name}_racine"]
        assert arl.issuer == root.certificate.subject and arl.is_signature_valid(
            root.key.public_key()
        )
        assert (
            arl.get_revoked_certificate_by_serial_number(built.families[name].issuing.serial_number)
            is None
        )
        current = crls[name]
        assert current.last_update_utc == NOW.replace(microsecond=0) - dt.timedelta(hours=1)
        assert current.next_update_utc == NOW.replace(microsecond=0) + dt.timedelta(days=7)
        assert len(current) >= 5
        reasons = set()
        for entry in current:
            try:
                reasons.add(entry.extensions.get_extension_for_class(x509.CRLReason).value.reason)
            except x509.ExtensionNotFound:
                reasons.add(None)
        assert len(reasons) >= 4
        for holder in built.holders:
            for issued in (holder.authentication, holder.signature):
                assert (
                    current.get_revoked_certificate_by_serial_number(issued.serial_number) is None
                )

    serial, when, reason = built.revoked["revoque"]
    assert serial == built.cases["revoque"].serial_number
    assert reason is x509.ReasonFlags.key_compromise
    assert when == NOW.replace(microsecond=0) - dt.timedelta(days=10)
    for crl_name in ("avocat", "avocat_grande"):
        entry = crls[crl_name].get_revoked_certificate_by_serial_number(serial)
        assert entry is not None and entry.revocation_date_utc == when
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is reason

    serial, when, reason = built.revoked["revoque_sans_motif"]
    assert serial == built.cases["revoque_sans_motif"].serial_number and reason is None
    entry = crls["agent"].get_revoked_certificate_by_serial_number(serial)
    assert entry is not None and entry.revocation_date_utc == when
    assert len(entry.extensions) == 0
    assert crls["agent_perimee"].get_revoked_certificate_by_serial_number(serial) is None
    assert crls["agent_perimee"].next_update_utc < NOW
    assert crls["agent_perimee"].is_signature_valid(
        built.families["agent"].issuing.key.public_key()
    )
    forged = crls["agent_mauvaise_cle"]
    assert forged.get_revoked_certificate_by_serial_number(serial) is None
    assert forged.next_update_utc > NOW
    assert len(crls["avocat_grande"]) >= 10_000


def test_big_crl_and_issue_holders(built: fpki.TestPki) -> None:
    family = built.families["expert"]
    crl = fpki.big_crl(family.issuing, 2_000, now=NOW, include=[7, 8])
    assert len(crl) == 2_002
    assert crl.is_signature_valid(family.issuing.key.public_key())
    assert crl.get_revoked_certificate_by_serial_number(7) is not None
    assert len({entry.serial_number for entry in crl}) == 2_002

    key = built.holders[0].authentication.key
    issued = fpki.issue_holders(family, 25, now=NOW, key=key)
    assert len(issued) == 25
    assert len({i.serial_number for i in issued}) == 25
    assert len({i.certificate.subject for i in issued}) == 25
    assert all(i.key is key and matches_key(i) for i in issued)
    check = verifier([family.root.certificate])
    for one in issued[:3]:
        check.verify(one.certificate, [family.issuing.certificate])
        assert extension(one.certificate, x509.KeyUsage).value.digital_signature
        points = extension(one.certificate, x509.CRLDistributionPoints).value
        assert points[0].full_name[0].value == family.crl_url


# --------------------------------------------------------------------------------------------
# RFC 5280 profile cases

SMARTCARD_LOGON = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.2")
PROFILE_CAS = (
    "intermediaire_sans_aki",
    "intermediaire_sans_ski",
    "racine_sans_ski",
    "intermediaire_racine_sans_ski",
    "intermediaire_contraintes_non_critiques",
    "intermediaire_contraintes_critiques",
)
# The extra CA that issued a profile case; the others come from the agent issuing CA.
PROFILE_ISSUERS = {
    "sous_intermediaire_sans_aki": "intermediaire_sans_aki",
    "sous_intermediaire_sans_ski": "intermediaire_sans_ski",
    "sous_racine_sans_ski": "intermediaire_racine_sans_ski",
    "sous_contraintes_non_critiques": "intermediaire_contraintes_non_critiques",
    "sous_contraintes_critiques": "intermediaire_contraintes_critiques",
}
NON_POSITIVE_SERIALS = {"numero_serie_zero": 0, "numero_serie_negatif": -5}
AUTHENTICATION_EKU = [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]
# Extended key usages other than the agent authentication certificates' (None: no EKU).
PROFILE_EKUS: dict[str, list[x509.ObjectIdentifier] | None] = {
    "eku_sans_client_auth": [ExtendedKeyUsageOID.EMAIL_PROTECTION, SMARTCARD_LOGON],
    "eku_vide": None,  # seen once the empty extension is taken out
    "sans_key_usage": None,
    "sans_key_usage_client_auth": [ExtendedKeyUsageOID.CLIENT_AUTH],
    "carte_a_puce": [
        ExtendedKeyUsageOID.CLIENT_AUTH,
        SMARTCARD_LOGON,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
    ],
}
# Extensions that do not parse, and the one to take out (its last copy) to read the others.
MALFORMED = {
    "extension_dupliquee": x509.SubjectAlternativeName.oid,
    "eku_vide": x509.ExtendedKeyUsage.oid,
}


def profile_cases(pki: fpki.TestPki) -> dict[str, fpki.Issued]:
    return {**pki.nonconforming, **pki.conforming}


def serial_of(certificate: x509.Certificate) -> int:
    with warnings.catch_warnings():
        # cryptography warns each time it reads a serial number that is not positive.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return certificate.serial_number


def raw_extensions(certificate: x509.Certificate) -> list[tuple[str, bool, bytes]]:
    """(dotted OID, critical, extnValue) of each extension, read without cryptography's
    parser so that malformed ones show too."""
    tbs = asn1_x509.Certificate.load(certificate.public_bytes(DER))["tbs_certificate"]
    return [
        (item["extn_id"].dotted, bool(item["critical"].native), item["extn_value"].contents)
        for item in tbs["extensions"]
    ]


def without_extension(
    certificate: x509.Certificate, oid: x509.ObjectIdentifier
) -> x509.Certificate:
    """The certificate with the last extension of ``oid`` taken out (its signature no
    longer verifies): what the rest of a malformed certificate holds."""
    parsed = asn1_x509.Certificate.load(certificate.public_bytes(DER))
    tbs = parsed["tbs_certificate"]
    extensions = list(tbs["extensions"])
    [*_, last] = (
        index
        for index, item in enumerate(extensions)
        if item["extn_id"].dotted == oid.dotted_string
    )
    del extensions[last]
    tbs["extensions"] = extensions
    rebuilt = asn1_x509.Certificate(
        {
            "tbs_certificate": asn1_x509.TbsCertificate.load(tbs.dump(force=True)),
            "signature_algorithm": parsed["signature_algorithm"],
            "signature_value": parsed["signature_value"],
        }
    )
    return x509.load_der_x509_certificate(rebuilt.dump())


def key_id(certificate: x509.Certificate) -> bytes:
    """The key identifier of a CA: its SKI, or the RFC 5280 method 1 value without one."""
    try:
        return extension(certificate, x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest


def profile_verifier(pki: fpki.TestPki) -> ClientVerifier:
    """A chain verifier that knows policyConstraints (which the web PKI CA policy refuses
    when critical) and trusts the agent root and the root without SKI."""
    roots = [pki.families["agent"].root.certificate, pki.extra_cas["racine_sans_ski"].certificate]
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.PolicyConstraints, Criticality.AGNOSTIC, None
    )
    return (
        PolicyBuilder()
        .store(Store(roots))
        .time(NOW)
        .extension_policies(ca_policy=ca_policy, ee_policy=ExtensionPolicy.permit_all())
        .build_client_verifier()
    )


def test_profile_names(built: fpki.TestPki) -> None:
    assert tuple(built.nonconforming) == fpki.NONCONFORMING_NAMES
    assert tuple(built.conforming) == fpki.CONFORMING_NAMES
    assert not set(fpki.NONCONFORMING_NAMES) & set(fpki.CONFORMING_NAMES)
    assert set(PROFILE_CAS) <= set(built.extra_cas)
    assert fpki.CRL_NAMES[:9] == (
        *fpki.FAMILIES,
        "agent_racine",
        "expert_racine",
        "avocat_racine",
        "agent_perimee",
        "agent_mauvaise_cle",
        "avocat_grande",
    )
    assert set(fpki.CRL_NAMES[9:]) == {"avocat_numero_critique", *PROFILE_CAS}
    assert set(PROFILE_ISSUERS.values()) <= set(PROFILE_CAS)
    assert set(MALFORMED) | set(NON_POSITIVE_SERIALS) <= set(fpki.NONCONFORMING_NAMES)


@pytest.mark.parametrize("name", [*fpki.NONCONFORMING_NAMES, *fpki.CONFORMING_NAMES])
def test_profile_case_is_otherwise_valid(built: fpki.TestPki, server: PkiServer, name: str) -> None:
    """Everything but the one defect of a profile case is what a valid agent
    authentication certificate holds (the defect itself: test_nonconforming_defects)."""
    issued = profile_cases(built)[name]
    certificate = issued.certificate
    agent = built.families["agent"]
    under = PROFILE_ISSUERS.get(name)
    issuer = agent.issuing if under is None else built.extra_cas[under]
    anchor = built.extra_cas["racine_sans_ski"] if name == "sous_racine_sans_ski" else agent.root
    prefix = "nc" if name in built.nonconforming else "ok"

    assert matches_key(issued)
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        f"Titulaire {name} (TEST)"
    )
    assert certificate.issuer == issuer.certificate.subject
    certificate.verify_directly_issued_by(issuer.certificate)
    assert certificate.signature_algorithm_oid == SignatureAlgorithmOID.RSA_WITH_SHA256
    day = dt.timedelta(days=1)
    assert abs(certificate.not_valid_before_utc - (NOW - 365 * day)) < 2 * day
    assert abs(certificate.not_valid_after_utc - (NOW + 2 * 365 * day)) < 2 * day
    serial = serial_of(certificate)
    assert serial == NON_POSITIVE_SERIALS[name] if name in NON_POSITIVE_SERIALS else serial > 0

    raw = raw_extensions(certificate)
    oids = [oid for oid, _, _ in raw]
    if name == "extension_dupliquee":
        assert oids.count(x509.SubjectAlternativeName.oid.dotted_string) == 2
        assert len(set(oids)) == len(oids) - 1
    else:
        assert len(set(oids)) == len(oids)
    if name in MALFORMED:
        with pytest.raises((ValueError, x509.DuplicateExtension)):
            certificate.extensions  # noqa: B018 - parsing is the point
        view = without_extension(certificate, MALFORMED[name])
        view.extensions  # noqa: B018 - the other extensions parse
    else:
        view = certificate

    expected = {
        x509.BasicConstraints.oid,
        x509.KeyUsage.oid,
        x509.ExtendedKeyUsage.oid,
        x509.CertificatePolicies.oid,
        x509.SubjectAlternativeName.oid,
        x509.CRLDistributionPoints.oid,
        x509.AuthorityInformationAccess.oid,
        x509.SubjectKeyIdentifier.oid,
        x509.AuthorityKeyIdentifier.oid,
    }
    if under is not None:
        expected.discard(x509.AuthorityInformationAccess.oid)
    if name == "sans_aki":
        expected.discard(x509.AuthorityKeyIdentifier.oid)
    if name.startswith("sans_key_usage"):
        expected.discard(x509.KeyUsage.oid)
    if PROFILE_EKUS.get(name, AUTHENTICATION_EKU) is None:
        expected.discard(x509.ExtendedKeyUsage.oid)
    assert {item.oid for item in view.extensions} == expected
    critical = {x509.BasicConstraints.oid, x509.KeyUsage.oid} & expected
    if name == "aia_critique":
        critical.add(x509.AuthorityInformationAccess.oid)
    assert {item.oid for item in view.extensions if item.critical} == critical

    constraints = extension(view, x509.BasicConstraints).value
    assert not constraints.ca and constraints.path_length is None
    if x509.KeyUsage.oid in expected:
        usage = extension(view, x509.KeyUsage).value
        assert usage.digital_signature and usage.key_cert_sign == (name == "cle_signature_ac")
        assert not usage.content_commitment and not usage.crl_sign
    if x509.ExtendedKeyUsage.oid in expected:
        assert list(extension(view, x509.ExtendedKeyUsage).value) == PROFILE_EKUS.get(
            name, AUTHENTICATION_EKU
        )
    policies = extension(view, x509.CertificatePolicies).value
    assert [policy.policy_identifier for policy in policies] == [
        fpki.AUTHENTICATION_POLICY_OIDS["agent"]
    ]
    assert extension(view, x509.SubjectAlternativeName).value.get_values_for_type(
        x509.RFC822Name
    ) == [f"{prefix}.{name.replace('_', '.')}@justice.test"]
    assert extension(view, x509.SubjectKeyIdentifier).value == (
        x509.SubjectKeyIdentifier.from_public_key(issued.key.public_key())
    )
    if name not in ("sans_aki", "aki_sans_identifiant"):
        identifier = extension(view, x509.AuthorityKeyIdentifier).value
        assert identifier.key_identifier == key_id(issuer.certificate)
        assert identifier.authority_cert_issuer is None
        assert identifier.authority_cert_serial_number is None
    crl_url = agent.crl_url if under is None else f"{server.base_url}/crl/{under}.crl"
    points = extension(view, x509.CRLDistributionPoints).value
    assert [point.full_name for point in points] == [[x509.UniformResourceIdentifier(crl_url)]]
    if under is None:
        access = extension(view, x509.AuthorityInformationAccess).value
        assert [(item.access_method, item.access_location.value) for item in access] == [
            (x509.AuthorityInformationAccessOID.OCSP, agent.ocsp_url)
        ]

    # Its chain is sound (cryptography refuses to build one through a negative serial
    # number or a duplicated extension: the signatures are checked one by one instead).
    if name in ("numero_serie_negatif", "extension_dupliquee"):
        assert issuer.certificate.issuer == anchor.certificate.subject
        issuer.certificate.verify_directly_issued_by(anchor.certificate)
    else:
        chain = (
            profile_verifier(built)
            .verify(
                certificate,
                all_intermediates(built)
                + [built.extra_cas[label].certificate for label in PROFILE_CAS],
            )
            .chain
        )
        assert chain == [certificate, issuer.certificate, anchor.certificate]

    # Its revocation is decided by its issuer's current CRL, which does not list it.
    crl = built.crls[under or "agent"]
    assert crl.issuer == issuer.certificate.subject
    assert crl.is_signature_valid(issuer.certificate.public_key())
    assert crl.last_update_utc < NOW < (crl.next_update_utc or NOW)
    # (get_revoked_certificate_by_serial_number refuses a negative serial number)
    assert all(entry.serial_number != serial for entry in crl)


def test_nonconforming_defects(built: fpki.TestPki) -> None:
    cases = {name: issued.certificate for name, issued in built.nonconforming.items()}
    agent = built.families["agent"]
    cas = {label: built.extra_cas[label].certificate for label in PROFILE_CAS}

    with pytest.raises(x509.ExtensionNotFound):
        extension(cases["sans_aki"], x509.AuthorityKeyIdentifier)

    identifier = extension(cases["aki_sans_identifiant"], x509.AuthorityKeyIdentifier).value
    assert identifier.key_identifier is None
    assert identifier.authority_cert_issuer == [x509.DirectoryName(agent.root.certificate.subject)]
    assert identifier.authority_cert_serial_number == agent.issuing.serial_number

    # The intermediates: a lone defect each, on the CA rather than on the end entity.
    without_aki = cas["intermediaire_sans_aki"]
    with pytest.raises(x509.ExtensionNotFound):
        extension(without_aki, x509.AuthorityKeyIdentifier)
    extension(without_aki, x509.SubjectKeyIdentifier)
    without_ski = cas["intermediaire_sans_ski"]
    with pytest.raises(x509.ExtensionNotFound):
        extension(without_ski, x509.SubjectKeyIdentifier)
    assert extension(cases["sous_intermediaire_sans_ski"], x509.AuthorityKeyIdentifier).value == (
        x509.AuthorityKeyIdentifier.from_issuer_public_key(without_ski.public_key())
    )
    root = cas["racine_sans_ski"]
    assert root.subject == root.issuer
    root.verify_directly_issued_by(root)
    assert root.subject not in {r.subject for r in all_roots(built)}
    assert [item.oid for item in root.extensions] == [
        x509.BasicConstraints.oid,
        x509.KeyUsage.oid,
    ]
    assert extension(
        cas["intermediaire_racine_sans_ski"], x509.AuthorityKeyIdentifier
    ).value.key_identifier == (x509.SubjectKeyIdentifier.from_public_key(root.public_key()).digest)
    for label, critical in (
        ("intermediaire_contraintes_non_critiques", False),
        ("intermediaire_contraintes_critiques", True),
    ):
        constraints = extension(cas[label], x509.PolicyConstraints)
        assert constraints.critical is critical
        assert constraints.value == x509.PolicyConstraints(
            require_explicit_policy=0, inhibit_policy_mapping=None
        )

    assert extension(cases["aia_critique"], x509.AuthorityInformationAccess).critical

    for name, serial in NON_POSITIVE_SERIALS.items():
        tbs = asn1_x509.Certificate.load(cases[name].public_bytes(DER))["tbs_certificate"]
        assert tbs["serial_number"].native == serial
        assert tbs["serial_number"].dump() == {0: b"\x02\x01\x00", -5: b"\x02\x01\xfb"}[serial]
        with pytest.warns(CryptographyDeprecationWarning):
            x509.load_der_x509_certificate(cases[name].public_bytes(DER))

    usage = extension(cases["cle_signature_ac"], x509.KeyUsage).value
    assert usage.key_cert_sign and usage.digital_signature
    assert not extension(cases["cle_signature_ac"], x509.BasicConstraints).value.ca

    usages = list(extension(cases["eku_sans_client_auth"], x509.ExtendedKeyUsage).value)
    assert ExtendedKeyUsageOID.CLIENT_AUTH not in usages
    assert ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usages
    assert extension(cases["eku_sans_client_auth"], x509.KeyUsage).value.digital_signature

    duplicated = cases["extension_dupliquee"]
    names = [
        (critical, value)
        for oid, critical, value in raw_extensions(duplicated)
        if oid == x509.SubjectAlternativeName.oid.dotted_string
    ]
    assert len(names) == 2 and names[0] == names[1] == (False, names[0][1])
    with pytest.raises(x509.DuplicateExtension):
        duplicated.extensions  # noqa: B018

    empty = [
        (critical, value)
        for oid, critical, value in raw_extensions(cases["eku_vide"])
        if oid == x509.ExtendedKeyUsage.oid.dotted_string
    ]
    assert empty == [(False, b"\x30\x00")]
    with pytest.raises(ValueError):
        cases["eku_vide"].extensions  # noqa: B018


def test_conforming_cases(built: fpki.TestPki) -> None:
    cases = {name: issued.certificate for name, issued in built.conforming.items()}
    for name in ("sans_key_usage", "sans_key_usage_client_auth"):
        with pytest.raises(x509.ExtensionNotFound):
            extension(cases[name], x509.KeyUsage)
    with pytest.raises(x509.ExtensionNotFound):
        extension(cases["sans_key_usage"], x509.ExtendedKeyUsage)
    assert list(extension(cases["sans_key_usage_client_auth"], x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    usages = extension(cases["carte_a_puce"], x509.ExtendedKeyUsage).value
    assert set(usages) == {
        ExtendedKeyUsageOID.CLIENT_AUTH,
        SMARTCARD_LOGON,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
    }
    assert extension(cases["carte_a_puce"], x509.KeyUsage).value.digital_signature
    ca = built.extra_cas["intermediaire_contraintes_critiques"].certificate
    assert cases["sous_contraintes_critiques"].issuer == ca.subject
    assert extension(ca, x509.PolicyConstraints).critical


def test_profile_cas(built: fpki.TestPki, server: PkiServer) -> None:
    agent = built.families["agent"]
    day = dt.timedelta(days=1)
    for label in PROFILE_CAS:
        issued = built.extra_cas[label]
        certificate = issued.certificate
        assert matches_key(issued)
        root = label == "racine_sans_ski"
        issuer = (
            certificate
            if root
            else built.extra_cas["racine_sans_ski"].certificate
            if label == "intermediaire_racine_sans_ski"
            else agent.root.certificate
        )
        assert certificate.issuer == issuer.subject
        certificate.verify_directly_issued_by(issuer)
        assert certificate.serial_number > 0
        constraints = extension(certificate, x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca
        assert constraints.value.path_length == (None if root else 0)
        usage = extension(certificate, x509.KeyUsage)
        assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
        assert not usage.value.digital_signature
        expected = {x509.BasicConstraints.oid, x509.KeyUsage.oid}
        if not root:
            expected |= {x509.CRLDistributionPoints.oid, x509.AuthorityKeyIdentifier.oid}
            expected.add(x509.SubjectKeyIdentifier.oid)
            points = extension(certificate, x509.CRLDistributionPoints).value
            url = (
                f"{server.base_url}/crl/racine_sans_ski.crl"
                if issuer != agent.root.certificate
                else agent.root_crl_url
            )
            assert points[0].full_name == [x509.UniformResourceIdentifier(url)]
        if label == "intermediaire_sans_aki":
            expected.discard(x509.AuthorityKeyIdentifier.oid)
        if label == "intermediaire_sans_ski":
            expected.discard(x509.SubjectKeyIdentifier.oid)
        if "contraintes" in label:
            expected.add(x509.PolicyConstraints.oid)
        assert {item.oid for item in certificate.extensions} == expected
        if x509.AuthorityKeyIdentifier.oid in expected:
            assert extension(
                certificate, x509.AuthorityKeyIdentifier
            ).value.key_identifier == key_id(issuer)
        if x509.SubjectKeyIdentifier.oid in expected:
            assert extension(certificate, x509.SubjectKeyIdentifier).value == (
                x509.SubjectKeyIdentifier.from_public_key(issued.key.public_key())
            )
        years = (5, 15) if root else (3, 7)
        assert abs(certificate.not_valid_before_utc - (NOW - years[0] * 365 * day)) < 3 * day
        assert abs(certificate.not_valid_after_utc - (NOW + years[1] * 365 * day)) < 5 * day


def test_profile_crls(built: fpki.TestPki) -> None:
    crls = built.crls
    avocat = built.families["avocat"].issuing
    critical = crls["avocat_numero_critique"]
    assert critical.issuer == avocat.certificate.subject
    assert critical.is_signature_valid(avocat.key.public_key())
    number = critical.extensions.get_extension_for_class(x509.CRLNumber)
    assert number.critical
    usual = crls["avocat"]
    assert number.value == usual.extensions.get_extension_for_class(x509.CRLNumber).value
    assert critical.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier) == (
        usual.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    )
    assert (critical.last_update_utc, critical.next_update_utc) == (
        usual.last_update_utc,
        usual.next_update_utc,
    )
    # Identical lists but for the critical flag.
    tbs, usual_tbs = (
        asn1_crl.CertificateList.load(crl.public_bytes(DER))["tbs_cert_list"]
        for crl in (critical, usual)
    )
    for key in ("version", "signature", "issuer", "this_update", "next_update"):
        assert tbs[key].dump() == usual_tbs[key].dump(), key
    assert tbs["revoked_certificates"].dump() == usual_tbs["revoked_certificates"].dump()
    assert len(critical) == len(usual) >= 5
    extensions = [(e["extn_id"].dotted, e["critical"].native) for e in tbs["crl_extensions"]]
    assert extensions == [
        (x509.CRLNumber.oid.dotted_string, True),
        (x509.AuthorityKeyIdentifier.oid.dotted_string, False),
    ]
    assert [e["extn_value"].contents for e in tbs["crl_extensions"]] == [
        e["extn_value"].contents for e in usual_tbs["crl_extensions"]
    ]
    for name, crl in crls.items():
        if name != "avocat_numero_critique":
            assert not crl.extensions.get_extension_for_class(x509.CRLNumber).critical, name

    agent = built.families["agent"]
    for label in PROFILE_CAS:
        ca = built.extra_cas[label].certificate
        crl = crls[label]
        assert crl.issuer == ca.subject and crl.is_signature_valid(ca.public_key())
        assert crl.last_update_utc < NOW < (crl.next_update_utc or NOW)
        assert crl.extensions.get_extension_for_class(
            x509.AuthorityKeyIdentifier
        ).value.key_identifier == key_id(ca)
        assert len(crl) == 2
        # The roots' lists do not revoke the new CAs.
        arl = crls[
            "racine_sans_ski" if label == "intermediaire_racine_sans_ski" else "agent_racine"
        ]
        assert arl.get_revoked_certificate_by_serial_number(ca.serial_number) is None
    serials = {serial_of(issued.certificate) for issued in profile_cases(built).values()}
    assert len(serials) == len(profile_cases(built))
    for crl in (crls["agent"], *(crls[label] for label in PROFILE_CAS)):
        assert not serials & {entry.serial_number for entry in crl}
    assert crls["agent"].is_signature_valid(agent.issuing.key.public_key())


def test_aia_critique_without_base_url(built: fpki.TestPki, key_cache: Path) -> None:
    offline = fpki.build_test_pki(now=NOW, key_cache=key_cache)
    access = extension(
        offline.nonconforming["aia_critique"].certificate, x509.AuthorityInformationAccess
    )
    assert access.critical
    assert [item.access_location.value for item in access.value] == ["http://ocsp.invalid/agent"]
    for name, issued in profile_cases(offline).items():
        if name in MALFORMED or name == "aia_critique":
            continue
        for kind in (x509.CRLDistributionPoints, x509.AuthorityInformationAccess):
            with pytest.raises(x509.ExtensionNotFound):
                extension(issued.certificate, kind)


def test_written_profile_files(built: fpki.TestPki, files: dict[str, Path]) -> None:
    for prefix, cases in (("nc", built.nonconforming), ("ok", built.conforming)):
        for name, issued in cases.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                written = x509.load_pem_x509_certificate(files[f"{prefix}-{name}.pem"].read_bytes())
            assert written.public_bytes(DER) == issued.certificate.public_bytes(DER)
    for label in PROFILE_CAS:
        assert x509.load_pem_x509_certificate(files[f"ac-{label}.pem"].read_bytes()) == (
            built.extra_cas[label].certificate
        )
    for name in ("avocat_numero_critique", *PROFILE_CAS):
        assert x509.load_der_x509_crl(files[f"{name}.crl"].read_bytes()) == built.crls[name]


# --------------------------------------------------------------------------------------------
# Key cache


def test_key_cache_reuse(built: fpki.TestPki, key_cache: Path) -> None:
    assert len(list(key_cache.glob("*.pem"))) >= 25
    started = time.perf_counter()
    again = fpki.build_test_pki(
        now=NOW + dt.timedelta(days=1), base_url="http://pki.example.test", key_cache=key_cache
    )
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, elapsed

    def public(issued: fpki.Issued) -> bytes:
        return issued.key.public_key().public_bytes(
            DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    for first, second in zip(built.holders, again.holders, strict=True):
        assert public(first.authentication) == public(second.authentication)
        assert public(first.signature) == public(second.signature)
        assert first.authentication.serial_number != second.authentication.serial_number
    for name, family in built.families.items():
        assert public(family.root) == public(again.families[name].root)
    assert again.families["agent"].crl_url == "http://pki.example.test/crl/agent.crl"
    assert public(built.cases["revoque"]) == public(again.cases["revoque"])
    # A damaged cache entry is replaced, not fatal.
    damaged = key_cache / "scratch" / "agent-racine-rsa2048.pem"
    damaged.parent.mkdir()
    damaged.write_text("not a key")
    keys = fpki._Keys(damaged.parent)
    assert isinstance(keys.get("agent-racine"), rsa.RSAPrivateKey)
    assert keys.generated == 1


def test_naive_now_rejected() -> None:
    with pytest.raises(ValueError):
        fpki.build_test_pki(now=dt.datetime(2026, 1, 1))


# --------------------------------------------------------------------------------------------
# Files and openssl


def test_written_files(built: fpki.TestPki, files: dict[str, Path]) -> None:
    for name in (
        "agent-racine.pem",
        "avocat-emettrice.pem",
        "expert-2-auth.pem",
        "agent-1-sign.pem",
        "cas-revoque.pem",
        "agent.crl",
        "agent_mauvaise_cle.crl",
        "tous.pem",
        "bundle.p7b",
        "holder.p12",
    ):
        assert files[name].is_file(), name
    assert x509.load_pem_x509_certificate(files["cas-revoque.pem"].read_bytes()) == (
        built.cases["revoque"].certificate
    )
    crl = x509.load_der_x509_crl(files["avocat.crl"].read_bytes())
    assert crl == built.crls["avocat"]
    everything = x509.load_pem_x509_certificates(files["tous.pem"].read_bytes())
    assert len(everything) == 2 * len(built.holders)
    bundle = pkcs7.load_der_pkcs7_certificates(files["bundle.p7b"].read_bytes())
    assert set(everything) <= set(bundle)
    key, certificate, cas = pkcs12.load_key_and_certificates(files["holder.p12"].read_bytes(), None)
    holder = built.holders[0]
    assert certificate == holder.authentication.certificate
    assert key is not None and key.public_key() == holder.authentication.key.public_key()
    assert cas == built.families[holder.family].chain


def openssl(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, *map(str, arguments)], capture_output=True, text=True, timeout=30, check=False
    )


@needs_openssl
def test_openssl_verify(files: dict[str, Path], tmp_path: Path, built: fpki.TestPki) -> None:
    at = str(int(NOW.timestamp()))

    def verify(family: str, certificate: str, *extra: str | Path) -> subprocess.CompletedProcess:
        return openssl(
            "verify",
            "-attime",
            at,
            "-CAfile",
            files[f"{family}-racine.pem"],
            "-untrusted",
            files[f"{family}-emettrice.pem"],
            *extra,
            files[certificate],
        )

    for family in fpki.FAMILIES:
        for number in (1, 2):
            for role in ("auth", "sign"):
                result = verify(family, f"{family}-{number}-{role}.pem")
                assert result.returncode == 0, result.stdout + result.stderr
    for case, error in (
        ("expire", "expired"),
        ("pas_encore_valide", "not yet valid"),
        ("signature_invalide", "signature failure"),
        ("emetteur_inconnu", "unable to get local issuer"),
    ):
        result = verify("agent", f"cas-{case}.pem")
        assert result.returncode != 0 and error in result.stdout + result.stderr, case

    # Revocation through openssl's own CRL check (PEM CRLs of the issuing CA and the root).
    pem_crls = tmp_path / "avocat-crls.pem"
    pem_crls.write_bytes(
        built.crls["avocat"].public_bytes(serialization.Encoding.PEM)
        + built.crls["avocat_racine"].public_bytes(serialization.Encoding.PEM)
    )
    ok = verify("avocat", "avocat-1-auth.pem", "-crl_check_all", "-CRLfile", pem_crls)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    revoked = verify("avocat", "cas-revoque.pem", "-crl_check_all", "-CRLfile", pem_crls)
    assert revoked.returncode != 0 and "revoked" in revoked.stdout + revoked.stderr


@needs_openssl
def test_openssl_reads_crls(files: dict[str, Path]) -> None:
    good = openssl(
        "crl", "-inform", "DER", "-in", files["agent.crl"], "-noout",
        "-CAfile", files["agent-emettrice.pem"],
    )  # fmt: skip
    assert good.returncode == 0 and "verify OK" in good.stdout + good.stderr
    bad = openssl(
        "crl", "-inform", "DER", "-in", files["agent_mauvaise_cle.crl"], "-noout",
        "-CAfile", files["agent-emettrice.pem"],
    )  # fmt: skip
    assert "verify failure" in bad.stdout + bad.stderr
    text = openssl("crl", "-inform", "DER", "-in", files["avocat.crl"], "-noout", "-text")
    assert "Key Compromise" in text.stdout and "X509v3 CRL Number" in text.stdout


# --------------------------------------------------------------------------------------------
# Server


def fetch(url: str, data: bytes | None = None, timeout: float = 5.0) -> tuple[int, str, bytes]:
    headers = {"Content-Type": "application/ocsp-request"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def ocsp_request(issued: fpki.Issued, issuer: fpki.Issued, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        issued.certificate, issuer.certificate, hashes.SHA1()
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(DER)


def test_server_serves_crls(server: PkiServer, built: fpki.TestPki) -> None:
    status, content_type, body = fetch(built.families["agent"].crl_url or "")
    assert status == 200 and content_type == "application/pkix-crl"
    assert x509.load_der_x509_crl(body) == built.crls["agent"]
    status, _, body = fetch(f"{server.base_url}/crl/agent_racine.crl")
    assert x509.load_der_x509_crl(body) == built.crls["agent_racine"]
    no_crl_url = (
        extension(built.cases["sans_crl"].certificate, x509.CRLDistributionPoints)
        .value[0]
        .full_name[0]
        .value
    )
    assert fetch(no_crl_url)[0] == 404
    assert fetch(f"{server.base_url}/nowhere")[0] == 404
    server.set_crl("temporaire", b"0123")
    assert fetch(f"{server.base_url}/crl/temporaire.crl")[2] == b"0123"
    server.set_crl("temporaire", None)
    assert fetch(f"{server.base_url}/crl/temporaire.crl")[0] == 404
    assert "/crl/agent.crl" in server.requests
    assert server.requests.count("/crl/temporaire.crl") == 2


def test_server_answers_ocsp(server: PkiServer, built: fpki.TestPki) -> None:
    agent, avocat = built.families["agent"], built.families["avocat"]
    holder = built.holders[0]

    def ask(issued: fpki.Issued, family: fpki.Family, *, get: bool = False) -> ocsp.OCSPResponse:
        request = ocsp_request(issued, family.issuing, nonce=b"0123456789abcdef")
        url = family.ocsp_url or ""
        if get:
            encoded = urllib.parse.quote(base64.b64encode(request).decode(), safe="")
            status, content_type, body = fetch(f"{url}/{encoded}")
        else:
            status, content_type, body = fetch(url, data=request)
        assert status == 200 and content_type == "application/ocsp-response"
        response = ocsp.load_der_ocsp_response(body)
        assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        issuer = family.issuing.certificate
        public = issuer.public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        assert response.signature_hash_algorithm is not None
        public.verify(
            response.signature,
            response.tbs_response_bytes,
            padding.PKCS1v15(),
            response.signature_hash_algorithm,
        )
        assert response.serial_number == issued.serial_number
        assert response.this_update_utc < NOW < (response.next_update_utc or NOW)
        nonce = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        assert nonce == b"0123456789abcdef"
        return response

    good = ask(holder.authentication, agent)
    assert good.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert ask(holder.signature, agent, get=True).certificate_status is ocsp.OCSPCertStatus.GOOD

    revoked = ask(built.cases["revoque"], avocat, get=True)
    _serial, when, reason = built.revoked["revoque"]
    assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_time_utc == when and revoked.revocation_reason is reason
    without_reason = ask(built.cases["revoque_sans_motif"], agent)
    assert without_reason.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert without_reason.revocation_reason is None

    stranger = fpki.issue_holders(agent, 1, now=NOW, key=holder.authentication.key)[0]
    assert ask(stranger, agent).certificate_status is ocsp.OCSPCertStatus.UNKNOWN

    # Asked about another issuer's certificate: unauthorized. Garbage: malformed request.
    _, _, body = fetch(
        avocat.ocsp_url or "", data=ocsp_request(holder.authentication, agent.issuing)
    )
    assert ocsp.load_der_ocsp_response(body).response_status is (
        ocsp.OCSPResponseStatus.UNAUTHORIZED
    )
    _, _, body = fetch(agent.ocsp_url or "", data=b"\x30\x03junk")
    assert ocsp.load_der_ocsp_response(body).response_status is (
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )
    assert fetch(f"{server.base_url}/ocsp/inconnue", data=b"")[0] == 404
    assert "/ocsp/agent" in server.requests


def test_delegated_responder(built: fpki.TestPki) -> None:
    family = built.families["expert"]
    responder = fpki.issue_ocsp_responder(
        family.issuing, now=NOW, key=built.holders[0].signature.key
    )
    assert (
        ExtendedKeyUsageOID.OCSP_SIGNING
        in extension(responder.certificate, x509.ExtendedKeyUsage).value
    )
    holder = built.holders_of("expert")[-1]  # the ECDSA one
    answer = OcspResponder(
        issuer=family.issuing,
        statuses={holder.authentication.serial_number: ("good", None, None)},
        now=NOW,
        responder=responder,
    ).respond(ocsp_request(holder.authentication, family.issuing))
    response = ocsp.load_der_ocsp_response(answer)
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.certificates == [responder.certificate]
    responder.certificate.verify_directly_issued_by(family.issuing.certificate)


def test_server_delay_and_lifecycle(built: fpki.TestPki) -> None:
    with PkiServer(crls={"agent": built.crls["agent"].public_bytes(DER)}) as server:
        url = f"{server.base_url}/crl/agent.crl"
        assert fetch(url)[0] == 200
        server.delay_s = 60
        assert server.delay_s == 5.0
        server.delay_s = 0.5
        started = time.perf_counter()
        with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
            fetch(url, timeout=0.1)
        assert time.perf_counter() - started < 0.5
        server.delay_s = 0
        assert fetch(url)[0] == 200
        port = urllib.parse.urlsplit(server.base_url).port
    started = time.perf_counter()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port or 0), timeout=1):
        pass
    assert time.perf_counter() - started < 1.5
