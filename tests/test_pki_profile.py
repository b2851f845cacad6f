"""pki: the RFC 5280 profile. Every rule has a fixture certificate (``fixtures.pki``:
``nonconforming`` breaks exactly one rule and is otherwise valid, ``conforming`` is what
the RFC allows and a strict reading might refuse), validated offline with the CRLs of
the whole test PKI; ``cartes valider`` says the same, with the rule named."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtensionOID

from cartes import messages
from cartes.cli.main import main
from fixtures.pki import _resigned, write_test_pki
from pki import (
    AUTHENTICATION,
    INVALID,
    UNDETERMINED,
    UNKNOWN_ROLE,
    VALID,
    CrlStore,
    TrustStore,
    Validator,
)
from pki.profile import RULES
from tests.pki_support import KINDS, PKI_NOW

# Fixture name → (defect, object at fault). Each breaks one rule of RFC 5280.
NONCONFORMING = {
    "sans_aki": ("identifiant_cle_autorite_absent", "certificat"),
    "aki_sans_identifiant": ("identifiant_cle_autorite_incomplet", "certificat"),
    "sous_intermediaire_sans_aki": ("identifiant_cle_autorite_absent", "autorite"),
    "sous_intermediaire_sans_ski": ("identifiant_cle_sujet_absent", "autorite"),
    "sous_racine_sans_ski": ("identifiant_cle_sujet_absent", "autorite"),
    "sous_contraintes_non_critiques": ("contraintes_politique_non_critiques", "autorite"),
    "aia_critique": ("acces_autorite_critique", "certificat"),
    "numero_serie_zero": ("numero_serie_non_positif", "certificat"),
    "numero_serie_negatif": ("numero_serie_non_positif", "certificat"),
    "cle_signature_ac": ("signature_certificats_hors_ac", "certificat"),
    "eku_sans_client_auth": ("usage_etendu_sans_authentification_client", "certificat"),
    "extension_dupliquee": ("extension_dupliquee", "certificat"),
    "eku_vide": ("extension_illisible", "certificat"),
}
EXPECTED_SECTIONS = {
    "identifiant_cle_autorite_absent": "4.2.1.1",
    "identifiant_cle_autorite_incomplet": "4.2.1.1",
    "identifiant_cle_sujet_absent": "4.2.1.2",
    "contraintes_politique_non_critiques": "4.2.1.11",
    "acces_autorite_critique": "4.2.2.1",
    "numero_serie_non_positif": "4.1.2.2",
    "signature_certificats_hors_ac": "4.2.1.3",
    "usage_etendu_sans_authentification_client": "4.2.1.12",
    "extension_dupliquee": "4.2",
    "extension_illisible": "4.2",
}
UNUSABLE_CRLS = {"agent_perimee", "agent_mauvaise_cle", "avocat_grande", "avocat_numero_critique"}


def full_trust(pki) -> TrustStore:
    """The three families, the root without SKI, and every intermediate of the PKI."""
    anchors = {KINDS[name]: (family.root.certificate,) for name, family in pki.families.items()}
    anchors["racine_sans_ski"] = (pki.extra_cas["racine_sans_ski"].certificate,)
    roots = {"racine_sans_ski", "inconnue_racine"}
    intermediates = [family.issuing.certificate for family in pki.families.values()]
    intermediates += [ca.certificate for name, ca in pki.extra_cas.items() if name not in roots]
    return TrustStore(anchors, tuple(intermediates))


def every_crl(pki) -> CrlStore:
    store = CrlStore()
    for name, crl in pki.crls.items():
        if name not in UNUSABLE_CRLS:
            store.add(crl, name)
    return store


@pytest.fixture(scope="module")
def validator(test_pki) -> Validator:
    return Validator(full_trust(test_pki), every_crl(test_pki))


def profile_reasons(result) -> list[tuple[str, str, str]]:
    return [
        (r.params["defaut"], r.params["regle"], r.params["objet"])
        for r in result.reasons
        if r.code == "certificat_non_conforme"
    ]


@pytest.mark.parametrize("name", sorted(NONCONFORMING))
def test_each_rule_makes_its_certificate_invalid(test_pki, validator, name):
    defect, objet = NONCONFORMING[name]
    result = validator.validate(test_pki.nonconforming[name].certificate, PKI_NOW)
    assert result.status == INVALID
    # The one rule broken, and nothing else: the certificate is otherwise valid.
    assert [r.code for r in result.reasons] == ["certificat_non_conforme"]
    assert profile_reasons(result) == [(defect, EXPECTED_SECTIONS[defect], objet)]


@pytest.mark.parametrize("name", ["sans_key_usage", "sans_key_usage_client_auth", "carte_a_puce"])
def test_what_rfc_5280_allows_stays_valid(test_pki, validator, name):
    result = validator.validate(test_pki.conforming[name].certificate, PKI_NOW)
    assert result.status == VALID, result.reasons
    expected_role = UNKNOWN_ROLE if name == "sans_key_usage" else AUTHENTICATION
    assert result.info.role == expected_role


def test_a_critical_policy_constraints_extension_is_understood(test_pki, validator):
    result = validator.validate(
        test_pki.conforming["sous_contraintes_critiques"].certificate, PKI_NOW
    )
    assert result.status == VALID, result.reasons
    assert len(result.chain) == 3


def test_the_real_families_conform(test_pki, validator):
    for holder in test_pki.holders:
        for issued in (holder.authentication, holder.signature):
            assert validator.validate(issued.certificate, PKI_NOW).status == VALID


def test_a_ca_with_serial_zero_breaks_the_chain(test_pki):
    """The issuing CA again, same name and key, with serial number 0: what it issued now
    chains through a CA the profile refuses."""
    agent = test_pki.families["agent"]

    def zero(tbs) -> None:
        tbs["serial_number"] = 0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zero_ca = _resigned(agent.issuing.certificate, agent.root.key, zero)
    trust = TrustStore({"carte_agent": (agent.root.certificate,)}, (zero_ca,))
    holder = test_pki.holders_of("agent")[0].authentication.certificate
    result = Validator(trust, every_crl(test_pki)).validate(holder, PKI_NOW)
    assert result.status == INVALID
    assert profile_reasons(result) == [("numero_serie_non_positif", "4.1.2.2", "autorite")]
    # The genuine issuing CA, serial untouched, chains as before.
    trust = TrustStore({"carte_agent": (agent.root.certificate,)}, (agent.issuing.certificate,))
    assert Validator(trust, every_crl(test_pki)).validate(holder, PKI_NOW).status == VALID


def test_a_batch_says_what_one_by_one_says(test_pki, validator):
    """``validate_many`` works by steps over batches: the results are those of
    ``validate``, in order, across batch boundaries (more than 256 certificates)."""
    certificates = [
        *(issued.certificate for issued in test_pki.nonconforming.values()),
        *(issued.certificate for issued in test_pki.conforming.values()),
        *(issued.certificate for issued in test_pki.cases.values()),
        *(h.authentication.certificate for h in test_pki.holders),
    ]
    certificates = (certificates * (300 // len(certificates) + 1))[:300]
    one_by_one = [validator.validate(c, PKI_NOW) for c in certificates]
    batch = list(validator.validate_many(((c, None) for c in certificates), PKI_NOW))
    assert len(batch) == len(one_by_one) == 300
    for alone, together in zip(one_by_one, batch, strict=True):
        assert (together.status, together.reasons, together.chain, together.kind) == (
            alone.status,
            alone.reasons,
            alone.chain,
            alone.kind,
        )
        assert together.info.fingerprint_sha256 == alone.info.fingerprint_sha256
    assert {r.status for r in batch} == {VALID, INVALID, UNDETERMINED}


def test_a_ca_extension_the_verifier_does_not_read_is_still_judged(test_pki):
    """The issuing CA again (same name and key), with a certificatePolicies that is no
    SEQUENCE, which the verifier's CA policy never parses: the profile still finds it
    unreadable, instead of failing on it."""
    agent = test_pki.families["agent"]
    issuing = agent.issuing.certificate
    builder = (
        x509.CertificateBuilder()
        .subject_name(issuing.subject)
        .issuer_name(issuing.issuer)
        .public_key(issuing.public_key())
        .serial_number(issuing.serial_number + 1)
        .not_valid_before(issuing.not_valid_before_utc)
        .not_valid_after(issuing.not_valid_after_utc)
    )
    for extension in issuing.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    builder = builder.add_extension(
        x509.UnrecognizedExtension(ExtensionOID.CERTIFICATE_POLICIES, b"\x04\x00"), critical=False
    )
    broken = builder.sign(agent.root.key, hashes.SHA256())
    trust = TrustStore({"carte_agent": (agent.root.certificate,)}, (broken,))
    holder = test_pki.holders_of("agent")[0].authentication.certificate
    result = Validator(trust, every_crl(test_pki)).validate(holder, PKI_NOW)
    assert result.status == INVALID
    assert profile_reasons(result) == [("extension_illisible", "4.2", "autorite")]
    assert result.reasons[0].params["autorite"] == issuing.subject.rfc4514_string()


def test_unreadable_extensions_are_described_without_them(test_pki, validator):
    result = validator.validate(test_pki.nonconforming["eku_vide"].certificate, PKI_NOW)
    info = result.info
    assert info.subject and info.issuer and info.fingerprint_sha256
    assert info.role is None and info.extended_key_usage == ()
    (reason,) = result.reasons
    assert reason.params["extension"] == "2.5.29.37"


def test_a_crl_with_a_critical_number_decides_nothing(test_pki):
    """§5.2.3: a CRL whose cRLNumber is critical is not a conforming one; a revoked
    certificate is then of unknown status, never valid."""
    avocat = test_pki.families["avocat"]
    store = CrlStore()
    store.add(test_pki.crls["avocat_numero_critique"], "avocat_numero_critique")
    store.add(test_pki.crls["avocat_racine"], "avocat_racine")
    trust = TrustStore({"cle_rpva": (avocat.root.certificate,)}, (avocat.issuing.certificate,))
    validator = Validator(trust, store)
    for certificate in (
        test_pki.holders_of("avocat")[0].authentication.certificate,
        test_pki.cases["revoque"].certificate,
    ):
        result = validator.validate(certificate, PKI_NOW)
        assert result.status == UNDETERMINED
        (reason,) = result.reasons
        assert reason.code == "revocation_inconnue"
        assert reason.params["problemes"] == ["lcr_non_conforme:numero_critique"]
    text = messages.pki_text(reason.code, reason.params)
    assert "numéro de liste marqué critique" in text and "§5.2.3" in text
    # The same list with its number non-critical decides.
    store.add(test_pki.crls["avocat"], "avocat")
    validator = Validator(trust, store)
    result = validator.validate(test_pki.cases["revoque"].certificate, PKI_NOW)
    assert [r.code for r in result.reasons] == ["revoque"]


def test_every_defect_has_a_french_sentence():
    for defect, section in RULES.items():
        for objet in ("certificat", "autorite"):
            params = {"defaut": defect, "regle": section, "objet": objet, "extension": "2.5.29.37"}
            text = messages.pki_text("certificat_non_conforme", params)
            assert f"RFC 5280 (§{section})" in text
            assert defect not in text and "{" not in text
            assert text.startswith("autorité" if objet == "autorite" else "certificat")
    named = messages.pki_text(
        "certificat_non_conforme",
        {
            "defaut": "extension_dupliquee",
            "regle": "4.2",
            "objet": "certificat",
            "extension": "2.5.29.17",
        },
    )
    assert "subjectAltName (2.5.29.17) figure plusieurs fois" in named


# cartes valider -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(test_pki, tmp_path_factory):
    return write_test_pki(test_pki, tmp_path_factory.mktemp("profil"))


def valider(files, name: str, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    argv = [
        "valider", str(files[name]),
        "--ancre", str(files["agent-racine.pem"]),
        "--intermediaire", str(files["agent-emettrice.pem"]),
        "--crl", str(files["agent.crl"]), "--crl", str(files["agent_racine.crl"]),
        "--date", PKI_NOW.isoformat(), *extra,
    ]  # fmt: skip
    code = main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", ["extension_dupliquee", "eku_vide"])
def test_cli_malformed_extensions_are_invalid_not_a_crash(files, name):
    """Found by a user with certificates made outside the project: these two used to end
    in « Erreur inattendue » with no JSON."""
    code, out, err = valider(files, f"nc-{name}.pem", "--format", "json")
    assert code == 1 and err == ""
    document = json.loads(out)
    assert document["statut"] == INVALID
    (reason,) = document["motifs"]
    assert reason["code"] == "certificat_non_conforme"
    assert reason["regle"] == "RFC 5280 §4.2"
    assert reason["defaut"] == NONCONFORMING[name][0]
    assert reason["message"].startswith("certificat non conforme au RFC 5280 (§4.2) : l'extension")
    assert document["certificat"]["empreinte_sha256"]
    code, out, err = valider(files, f"nc-{name}.pem")
    assert code == 1 and "INVALIDE" in out and "Erreur" not in out + err


def test_cli_says_nothing_of_cryptography_s_warning(files):
    """cryptography warns at every read of a serial number that is not positive; the
    reason says it already, in French (a real process: pytest resets warning filters)."""
    argv = [
        str(Path(sys.executable).with_name("cartes")),
        "valider", str(files["nc-numero_serie_zero.pem"]),
        "--ancre", str(files["agent-racine.pem"]),
        "--intermediaire", str(files["agent-emettrice.pem"]),
        "--date", PKI_NOW.isoformat(),
    ]  # fmt: skip
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert completed.returncode == 1
    assert "numéro de série nul ou négatif" in completed.stdout
    assert completed.stderr == ""


def test_cli_names_the_rule(files):
    code, out, _ = valider(files, "nc-sans_aki.pem")
    assert code == 1
    assert (
        "certificat non conforme au RFC 5280 (§4.2.1.1) : identifiant de la clé de l'autorité "
        "(authorityKeyIdentifier) absent." in out
    )


def test_cli_a_certificate_without_key_usage_is_valid_with_an_unknown_role(files):
    code, out, _ = valider(files, "ok-sans_key_usage.pem", "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["statut"] == VALID and document["certificat"]["role"] == UNKNOWN_ROLE
    code, out, _ = valider(files, "ok-sans_key_usage.pem")
    assert "VALIDE" in out and "(rôle inconnu)" in out


def test_cli_jsonl_keeps_one_line_per_certificate(files, tmp_path):
    """A bundle mixing conforming and broken certificates: one line each, in order."""
    names = ["ok-carte_a_puce.pem", "nc-extension_dupliquee.pem", "nc-aia_critique.pem"]
    bundle = tmp_path / "lot.pem"
    bundle.write_bytes(b"".join(files[name].read_bytes() for name in names))
    files = {**files, "lot": bundle}
    code, out, err = valider(files, "lot", "--format", "jsonl")
    assert code == 1 and err == ""
    statuses = [json.loads(line)["statut"] for line in out.splitlines()]
    assert statuses == [VALID, INVALID, INVALID]


def test_every_nonconforming_fixture_is_tested(test_pki):
    assert set(NONCONFORMING) == set(test_pki.nonconforming)
