"""pki: reading certificates, classifying them, validating chains and revocation, against
the test PKIs of ``fixtures.pki`` (three families, every bad case) and a real HTTP server
on 127.0.0.1 for CRL and OCSP fetches."""

from __future__ import annotations

import datetime as dt
import hashlib
import time

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from fixtures.pki import write_test_pki
from pki import (
    AUTHENTICATION,
    INVALID,
    SIGNATURE,
    UNDETERMINED,
    VALID,
    CrlStore,
    TrustStore,
    UnreadableCertificate,
    Validator,
    describe,
    load_certificates,
)
from tests.pki_support import KINDS, PKI_NOW

AT = PKI_NOW


@pytest.fixture(scope="module")
def files(test_pki, tmp_path_factory):
    return write_test_pki(test_pki, tmp_path_factory.mktemp("pki"))


def trust_of(pki) -> TrustStore:
    intermediates = [family.issuing.certificate for family in pki.families.values()]
    intermediates.append(pki.extra_cas["sans_lcr"].certificate)
    return TrustStore(
        {KINDS[name]: (family.root.certificate,) for name, family in pki.families.items()},
        tuple(intermediates),
    )


ROOT_CRLS = ("agent_racine", "expert_racine", "avocat_racine")


def offline_store(pki, *names: str) -> CrlStore:
    """The CRLs of the roots (for the issuing CAs), and those named (or the three current
    CRLs of the issuing CAs)."""
    store = CrlStore()
    for name in (*ROOT_CRLS, *(names or ("agent", "expert", "avocat"))):
        store.add(pki.crls[name], name)
    return store


@pytest.fixture(scope="module")
def validator(test_pki) -> Validator:
    return Validator(trust_of(test_pki), offline_store(test_pki))


def codes(result) -> list[str]:
    return [reason.code for reason in result.reasons]


# Reading -----------------------------------------------------------------------------


def test_every_container(test_pki, files):
    holder = test_pki.holders[0].authentication.certificate
    pem = holder.public_bytes(Encoding.PEM)
    assert load_certificates(pem) == [holder]
    assert load_certificates(holder.public_bytes(Encoding.DER)) == [holder]
    bundle = load_certificates(files["tous.pem"].read_bytes())
    assert len(bundle) == 2 * len(test_pki.holders)
    assert load_certificates(files["bundle.p7b"].read_bytes())
    from_p12 = load_certificates(files["holder.p12"].read_bytes())
    assert from_p12 and all(c.subject.rfc4514_string() for c in from_p12)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "fichier_vide"),
        (b"   \n", "fichier_vide"),
        (b"not a certificate at all", "format_inconnu"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "pem_invalide"),
        (b"\x30\x03\x02\x01\x03", "format_inconnu"),
    ],
)
def test_unreadable_inputs(data, code):
    with pytest.raises(UnreadableCertificate) as error:
        load_certificates(data)
    assert error.value.code == code


def test_description(test_pki):
    holder = test_pki.holders[0]
    certificate = holder.authentication.certificate
    info = describe(certificate)
    assert info.holder_name == holder.name
    assert info.email == holder.email
    assert info.serial_number == format(certificate.serial_number, "X")
    assert (
        info.fingerprint_sha256
        == hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()
    )
    assert info.role == AUTHENTICATION
    assert "digital_signature" in info.key_usage
    assert "1.3.6.1.5.5.7.3.2" in info.extended_key_usage  # clientAuth
    assert info.crl_urls and info.crl_urls[0].endswith(f"/crl/{holder.family}.crl")
    assert info.ocsp_urls and f"/ocsp/{holder.family}" in info.ocsp_urls[0]
    assert info.not_before < AT < info.not_after
    signing = describe(holder.signature.certificate)
    assert signing.role == SIGNATURE
    assert signing.policies
    assert describe(test_pki.families["agent"].issuing.certificate).role is None


# Validation ---------------------------------------------------------------------------


def test_every_holder_is_valid_and_classified(test_pki, validator):
    assert len({h.family for h in test_pki.holders}) == 3
    for holder in test_pki.holders:
        for issued in (holder.authentication, holder.signature):
            result = validator.validate(issued.certificate, AT)
            assert (result.status, result.reasons) == (VALID, ()), holder.name
            assert result.kind == KINDS[holder.family]
            assert len(result.chain) == 3


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("expire", INVALID, "expire"),
        ("pas_encore_valide", INVALID, "pas_encore_valide"),
        ("revoque", INVALID, "revoque"),
        ("revoque_sans_motif", INVALID, "revoque"),
        ("emetteur_inconnu", INVALID, "emetteur_inconnu"),
        ("signature_invalide", INVALID, "signature_invalide"),
        ("usage_cle_incorrect", INVALID, "usage_cle_incorrect"),
        ("sans_crl", UNDETERMINED, "revocation_inconnue"),
    ],
)
def test_bad_cases(test_pki, validator, case, status, code):
    result = validator.validate(test_pki.cases[case].certificate, AT)
    assert result.status == status
    assert code in codes(result)


def test_revocation_details(test_pki, validator):
    serial, revoked_at, reason = test_pki.revoked["revoque"]
    assert serial == test_pki.cases["revoque"].certificate.serial_number
    result = validator.validate(test_pki.cases["revoque"].certificate, AT)
    (reason_found,) = result.reasons
    assert reason_found.params["motif"] == "key_compromise" == reason.name
    assert dt.datetime.fromisoformat(reason_found.params["date"]) == revoked_at
    assert reason_found.params["objet"] == "certificat"
    without = validator.validate(test_pki.cases["revoque_sans_motif"].certificate, AT)
    assert without.reasons[0].params["motif"] is None
    # Before its revocation date the certificate was good.
    earlier = validator.validate(
        test_pki.cases["revoque"].certificate, revoked_at - dt.timedelta(days=1)
    )
    assert earlier.status == VALID


def test_expired_certificate_still_says_its_family(test_pki, validator):
    result = validator.validate(test_pki.cases["expire"].certificate, AT)
    assert codes(result) == ["expire"]
    assert result.kind == "carte_agent"


def test_stale_crl_decides_nothing(test_pki):
    validator = Validator(trust_of(test_pki), offline_store(test_pki, "agent_perimee"))
    result = validator.validate(test_pki.cases["revoque_sans_motif"].certificate, AT)
    assert result.status == UNDETERMINED
    assert result.reasons[0].params["problemes"] == ["lcr_perimee"]
    holder = next(h for h in test_pki.holders if h.family == "agent")
    assert validator.validate(holder.authentication.certificate, AT).status == UNDETERMINED


def test_crl_signed_by_the_wrong_key_decides_nothing(test_pki):
    validator = Validator(trust_of(test_pki), offline_store(test_pki, "agent_mauvaise_cle"))
    holder = next(h for h in test_pki.holders if h.family == "agent")
    result = validator.validate(holder.authentication.certificate, AT)
    assert result.status == UNDETERMINED
    assert result.reasons[0].params["problemes"] == ["lcr_signature_invalide"]


def test_no_crl_is_never_valid(test_pki):
    validator = Validator(trust_of(test_pki), offline_store(test_pki, *ROOT_CRLS))
    for holder in test_pki.holders:
        result = validator.validate(holder.authentication.certificate, AT)
        assert result.status == UNDETERMINED
        assert result.reasons[0].params["problemes"] == ["lcr_absente"]


def test_no_anchor(test_pki):
    result = Validator(TrustStore({})).validate(test_pki.holders[0].authentication.certificate, AT)
    assert (result.status, codes(result)) == (INVALID, ["emetteur_inconnu"])


# Network: CRL distribution points and OCSP, on 127.0.0.1 ---------------------------------


def test_crl_fetched_cached_and_used_offline(test_pki, pki_server, tmp_path):
    holder = next(h for h in test_pki.holders if h.family == "expert")
    online = Validator(trust_of(test_pki), CrlStore(tmp_path, fetch=True, timeout_s=2))
    before = len(pki_server.requests)
    assert online.validate(holder.authentication.certificate, AT).status == VALID
    assert "/crl/expert.crl" in pki_server.requests[before:]
    assert list(tmp_path.glob("*.crl"))
    offline = Validator(trust_of(test_pki), CrlStore(tmp_path, fetch=False))
    requests = len(pki_server.requests)
    assert offline.validate(holder.authentication.certificate, AT).status == VALID
    assert len(pki_server.requests) == requests


def test_fetched_crl_finds_a_revocation(test_pki, tmp_path):
    online = Validator(trust_of(test_pki), CrlStore(tmp_path, fetch=True, timeout_s=2))
    assert codes(online.validate(test_pki.cases["revoque"].certificate, AT)) == ["revoque"]


def test_ocsp(test_pki):
    # The roots' CRLs decide for the issuing CAs; OCSP answers for the holders.
    crls = offline_store(test_pki, *ROOT_CRLS)
    validator = Validator(trust_of(test_pki), crls, use_ocsp=True, ocsp_timeout_s=2)
    holder = next(h for h in test_pki.holders if h.family == "avocat")
    assert validator.validate(holder.authentication.certificate, AT).status == VALID
    revoked = validator.validate(test_pki.cases["revoque"].certificate, AT)
    assert codes(revoked) == ["revoque"]
    assert revoked.reasons[0].params["motif"] == "key_compromise"


def test_unreachable_network_is_bounded_and_undetermined(test_pki, pki_server):
    holder = next(h for h in test_pki.holders if h.family == "avocat")
    pki_server.delay_s = 2.0
    try:
        validator = Validator(
            trust_of(test_pki),
            CrlStore(fetch=True, timeout_s=0.3),
            use_ocsp=True,
            ocsp_timeout_s=0.3,
        )
        start = time.monotonic()
        result = validator.validate(holder.authentication.certificate, AT)
        elapsed = time.monotonic() - start
    finally:
        pki_server.delay_s = 0.0
    assert result.status == UNDETERMINED
    assert elapsed < 1.9  # both timeouts, not the server's delay


# OCSP responses, judged directly --------------------------------------------------------


def _ocsp_answer(test_pki, responder_issued):
    """The answer of the lawyers' CA responder, signed by ``responder_issued``, about a
    lawyer's certificate."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509 import ocsp as x509_ocsp

    from fixtures.pki_server import OcspResponder

    family = test_pki.families["avocat"]
    holder = next(h for h in test_pki.holders if h.family == "avocat").authentication.certificate
    responder = OcspResponder(
        issuer=family.issuing,
        statuses={holder.serial_number: ("good", None, None)},
        now=AT,
        responder=responder_issued,
    )
    request = (
        x509_ocsp.OCSPRequestBuilder()
        .add_certificate(holder, family.issuing.certificate, hashes.SHA1())
        .build()
        .public_bytes(Encoding.DER)
    )
    return responder.respond(request), holder, family.issuing.certificate


def test_ocsp_delegated_responder_is_believed(test_pki):
    from fixtures.pki import issue_ocsp_responder
    from pki import ocsp

    family = test_pki.families["avocat"]
    delegated = issue_ocsp_responder(family.issuing, now=AT)
    data, holder, issuer = _ocsp_answer(test_pki, delegated)
    assert ocsp.interpret(data, holder, issuer, AT).status == "bon"
    # The same answer is stale a week later.
    stale = ocsp.interpret(data, holder, issuer, AT + dt.timedelta(days=7))
    assert (stale.status, stale.problem) == ("inconnu", "ocsp_perime")


def test_ocsp_answer_signed_by_a_stranger_is_not_believed(test_pki):
    from fixtures.pki import issue_ocsp_responder
    from pki import ocsp

    stranger = issue_ocsp_responder(test_pki.families["agent"].issuing, now=AT)
    data, holder, issuer = _ocsp_answer(test_pki, stranger)
    verdict = ocsp.interpret(data, holder, issuer, AT)
    assert (verdict.status, verdict.problem) == ("inconnu", "ocsp_signature_invalide")
    assert ocsp.interpret(b"garbage", holder, issuer, AT).problem == "ocsp_reponse_illisible"


def test_trust_from_folders(test_pki, files, tmp_path):
    anchors = tmp_path / "ancres"
    anchors.mkdir()
    for family in ("agent", "avocat"):
        (anchors / f"{family}.pem").write_bytes(files[f"{family}-racine.pem"].read_bytes())
    (anchors / "lisez-moi.txt").write_text("ignored: not a certificate file")
    trust = TrustStore.from_paths({"toutes": [anchors]}, [files["agent-emettrice.pem"]])
    assert len(trust.all_anchors()) == 2
    holder = next(h for h in test_pki.holders if h.family == "agent")
    result = Validator(trust, offline_store(test_pki)).validate(holder.signature.certificate, AT)
    assert (result.status, result.kind) == (VALID, "toutes")
