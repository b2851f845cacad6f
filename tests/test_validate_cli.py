"""``cartes valider``: no database, no settings when anchors are given; exit codes; the
three output formats; one process for a whole bundle."""

from __future__ import annotations

import io
import json

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from cartes.cli.main import main
from fixtures.pki import write_test_pki
from tests.pki_support import PKI_NOW

AT = PKI_NOW.isoformat()


@pytest.fixture(scope="module")
def files(test_pki, tmp_path_factory):
    return write_test_pki(test_pki, tmp_path_factory.mktemp("valider"))


@pytest.fixture
def no_settings(tmp_path, monkeypatch):
    """A settings file that would break any command reading it, and no database."""
    broken = tmp_path / "casse.toml"
    broken.write_text("ceci n'est pas du TOML [")
    monkeypatch.setenv("CARTES_CONFIG", str(broken))
    monkeypatch.setenv("CARTES_DATABASE_URL", f"sqlite:///{tmp_path / 'absente.db'}")


def valider(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["valider", *argv, "--date", AT], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def anchors(files) -> list[str]:
    args = ["--intermediaire", str(files["ac-sans_lcr.pem"])]
    for family in ("agent", "expert", "avocat"):
        args += ["--ancre", str(files[f"{family}-racine.pem"])]
        args += ["--intermediaire", str(files[f"{family}-emettrice.pem"])]
        args += ["--crl", str(files[f"{family}.crl"]), "--crl", str(files[f"{family}_racine.crl"])]
    return args


def test_valid_bundle_exit_0_and_jsonl(files, no_settings, test_pki):
    code, out, err = valider(str(files["tous.pem"]), *anchors(files), "--format", "jsonl")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 2 * len(test_pki.holders)
    first = lines[0]
    assert first["statut"] == "valide" and first["motifs"] == []
    assert set(first["certificat"]) == {
        "sujet", "emetteur", "numero_serie", "empreinte_sha256", "non_avant", "non_apres", "role",
    }  # fmt: skip
    assert {line["certificat"]["role"] for line in lines} == {"authentification", "signature"}


@pytest.mark.parametrize(
    ("case", "code", "reason"),
    [
        ("expire", 1, "expire"),
        ("revoque", 1, "revoque"),
        ("emetteur_inconnu", 1, "emetteur_inconnu"),
        ("signature_invalide", 1, "signature_invalide"),
        ("usage_cle_incorrect", 1, "usage_cle_incorrect"),
        ("sans_crl", 2, "revocation_inconnue"),
    ],
)
def test_exit_codes_and_single_json_object(files, no_settings, case, code, reason):
    exit_code, out, err = valider(
        str(files[f"cas-{case}.pem"]), *anchors(files), "--format", "json"
    )
    assert exit_code == code, err
    document = json.loads(out)
    assert isinstance(document, dict)
    assert document["statut"] == ("invalide" if code == 1 else "indetermine")
    assert reason in [m["code"] for m in document["motifs"]]
    assert all(m["message"] and m["message"][0].islower() for m in document["motifs"])


def test_array_for_several_and_worst_code(files, no_settings):
    code, out, _ = valider(
        str(files["cas-sans_crl.pem"]),
        str(files["cas-revoque.pem"]),
        *anchors(files),
        "--format",
        "json",
    )
    assert code == 1
    document = json.loads(out)
    assert [d["statut"] for d in document] == ["indetermine", "invalide"]


def test_unreadable_input_exit_3(files, no_settings, tmp_path):
    garbage = tmp_path / "n-importe-quoi.pem"
    garbage.write_bytes(b"\x00\x01 pas un certificat")
    code, out, err = valider(str(garbage), str(files["cas-revoque.pem"]), *anchors(files))
    assert code == 3
    assert "ILLISIBLE" in out and "aucun certificat reconnu" in out
    assert "Traceback" not in err
    code, _, err = valider(str(tmp_path / "absent.pem"), *anchors(files))
    assert code == 3


def test_text_output_in_french(files, no_settings, test_pki):
    code, out, _ = valider(str(files["cas-revoque.pem"]), *anchors(files))
    assert code == 1
    assert "INVALIDE" in out
    assert "révoqué le" in out and "compromission de la clé" in out


def test_trust_from_the_settings(files, tmp_path, monkeypatch):
    config = tmp_path / "cartes.toml"
    config.write_text(
        "[trust]\n"
        f'agent_card = ["{files["agent-racine.pem"]}"]\n'
        f'intermediates = ["{files["agent-emettrice.pem"]}"]\n'
        f'crls = ["{files["agent.crl"]}", "{files["agent_racine.crl"]}"]\n'
        f'crl_cache_dir = "{tmp_path / "lcr"}"\n'
    )
    monkeypatch.setenv("CARTES_CONFIG", str(config))
    code, out, err = valider(str(files["agent-1-auth.pem"]), "--format", "json")
    assert code == 0, err + out
    assert json.loads(out)["type"] == "carte_agent"


def test_unreadable_anchor(files, no_settings, tmp_path):
    bad = tmp_path / "ancre.pem"
    bad.write_text("rien")
    code, _, err = valider(str(files["agent-1-auth.pem"]), "--ancre", str(bad))
    assert code == 3
    assert err.startswith(f"Certificat illisible dans {bad} (aucun certificat reconnu")


def test_bad_date_is_a_usage_error(files, no_settings):
    out, err = io.StringIO(), io.StringIO()
    code = main(["valider", str(files["agent-1-auth.pem"]), "--date", "hier"], out=out, err=err)
    assert code == 2 and "date invalide" in err.getvalue()


def test_der_input(files, no_settings, test_pki, tmp_path):
    der = tmp_path / "carte.cer"
    der.write_bytes(test_pki.holders[0].authentication.certificate.public_bytes(Encoding.DER))
    code, out, _ = valider(str(der), *anchors(files), "--format", "json")
    assert code == 0 and json.loads(out)["statut"] == "valide"


def test_jsonl_lines_are_what_json_would_write(test_pki, files):
    """The JSON Lines writer builds its text by hand, for speed: the same text as the
    json module's, for every kind of outcome (valid, invalid with reasons, undetermined,
    no chain, unknown role, unreadable input, characters JSON escapes)."""
    from cartes.cli.validate_cmd import Outcome, _object, jsonl_line
    from pki import CrlStore, PkiError, TrustStore, Validator

    agent = test_pki.families["agent"]
    store = CrlStore()
    store.add(test_pki.crls["agent"], "agent")
    store.add(test_pki.crls["agent_racine"], "agent_racine")
    validator = Validator(
        TrustStore(
            {"carte_agent": (agent.root.certificate,)},
            (agent.issuing.certificate, test_pki.extra_cas["sans_lcr"].certificate),
        ),
        store,
    )
    certificates = [
        test_pki.holders[0].authentication.certificate,
        *(issued.certificate for issued in test_pki.cases.values()),
        *(issued.certificate for issued in test_pki.nonconforming.values()),
        *(issued.certificate for issued in test_pki.conforming.values()),
    ]
    outcomes = [
        Outcome('dossier "Été"\\lot\t1.pem', validator.validate(c, PKI_NOW)) for c in certificates
    ]
    outcomes.append(Outcome("vide.pem", error=PkiError("fichier_vide")))
    assert {o.result.status for o in outcomes if o.result} == {"valide", "invalide", "indetermine"}
    for outcome in outcomes:
        assert jsonl_line(outcome) == json.dumps(_object(outcome), ensure_ascii=False) + "\n"


def test_the_quick_look_for_authorities_misses_none(test_pki):
    """``cartes valider`` parses the extensions of a bundle's certificates up front only
    where the DER shows a basicConstraints saying cA: it must show it for every CA."""
    from cartes.cli.validate_cmd import _SAYS_CA
    from pki.parsing import is_ca

    certificates = [
        *(c for family in test_pki.families.values() for c in family.chain),
        *(issued.certificate for issued in test_pki.extra_cas.values()),
        *(h.authentication.certificate for h in test_pki.holders),
        *(h.signature.certificate for h in test_pki.holders),
        *(issued.certificate for issued in test_pki.cases.values()),
        *(issued.certificate for issued in test_pki.conforming.values()),
    ]
    verdicts = {is_ca(c) for c in certificates}
    assert verdicts == {True, False}
    for certificate in certificates:
        says = _SAYS_CA.search(certificate.public_bytes(Encoding.DER)) is not None
        assert says == is_ca(certificate), certificate.subject
