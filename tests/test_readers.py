"""Card readers against real SoftHSM2 tokens: listing, failures item by item, proof of
possession, the lawyer's self-check, and the inventory match and registration."""

from __future__ import annotations

import datetime as dt
import io
import json
import os

import pytest
import sqlalchemy as sa

from cartes import readers
from cartes.cli.main import main
from fixtures.softhsm import TokenSpec, softhsm, softhsm_available, standard_tokens
from inventaire.clock import PARIS
from tests.conftest import run_cartes
from tests.pki_support import PKI_NOW

if not softhsm_available():
    if os.environ.get("CARTES_TEST_REQUIRE_SOFTHSM") == "1":
        raise RuntimeError("SoftHSM2 est requis pour ces tests (paquet softhsm2)")
    pytest.skip("SoftHSM2 n'est pas installé (paquet softhsm2)", allow_module_level=True)

from fixtures.softhsm import SOFTHSM_MODULE

PIN = "918273"  # distinctive: the tests look for it everywhere it must not be


@pytest.fixture
def hsm(tmp_path, monkeypatch, test_pki):
    """The standard tokens in a SoftHSM2 folder of this test, the special PIN on one."""
    store = softhsm(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(store.conf))
    specs = standard_tokens(test_pki)
    rpva = next(s for s in specs if s.label.startswith("Cle RPVA"))
    specs = [TokenSpec(s.label, s.certificates, PIN) if s is rpva else s for s in specs]
    for spec in specs:
        store.add_token(spec)
    yield store
    store.close()


@pytest.fixture
def trust_files(test_pki, tmp_path):
    """A settings file naming the anchors, intermediates and CRLs of the three families by
    kind, and the SoftHSM2 module."""
    from fixtures.demo import trust_settings

    lines = trust_settings(test_pki, tmp_path / "confiance")
    lines.append(f'crl_cache_dir = "{tmp_path / "lcr"}"')
    lines.append(f'[readers]\nmodules = ["{SOFTHSM_MODULE}"]')
    config = tmp_path / "cartes.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def command(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def by_label(report) -> dict[str, readers.TokenRead]:
    return {token.label: token for token in report.tokens}


# Reading ----------------------------------------------------------------------------------


def test_scan_reads_every_token_and_its_certificates(hsm, test_pki):
    report = readers.scan([SOFTHSM_MODULE])
    tokens = by_label(report)
    assert report.problems == []
    assert len(tokens) == 5  # SoftHSM's spare uninitialised slot is not a token
    agent = next(t for label, t in tokens.items() if label.startswith("Carte agent"))
    assert (agent.manufacturer, agent.model) == ("SoftHSM project", "SoftHSM v2")
    assert agent.serial == hsm.serials[agent.label]
    assert [(c.label, c.id) for c in agent.certificates] == [
        ("Authentification", "01"),
        ("Signature", "02"),
    ]
    holder = next(h for h in test_pki.holders if h.family == "agent")
    assert agent.certificates[0].certificate == holder.authentication.certificate
    empty = tokens["Objet vide"]
    assert [c.error for c in empty.certificates] == ["objet_vide", None]


def test_missing_module_does_not_stop_the_scan(hsm, tmp_path):
    not_a_module = tmp_path / "pas-un-module.so"
    not_a_module.write_bytes(b"\x7fELF garbage")
    report = readers.scan([str(tmp_path / "absent.so"), str(not_a_module), SOFTHSM_MODULE])
    assert [(p[0], p[1]) for p in report.problems] == [
        (str(tmp_path / "absent.so"), "module_absent"),
        (str(not_a_module), "module_illisible"),
    ]
    assert len(report.tokens) == 5


def test_token_removed_between_enumeration_and_reading(hsm, monkeypatch):
    """The RPVA key is deleted (by softhsm2-util, another process) after its token was
    found and before its objects are read: that token reports it, the others are read."""
    original = readers._read_objects
    victim = next(label for label in hsm.serials if label.startswith("Cle RPVA"))

    def remove_then_read(token):  # type: ignore[no-untyped-def]
        if token.label.strip() == victim:
            hsm.delete_token(victim)
        return original(token)

    monkeypatch.setattr(readers, "_read_objects", remove_then_read)
    tokens = by_label(readers.scan([SOFTHSM_MODULE]))
    assert tokens[victim].error == "jeton_retire"
    assert all(t.error is None for label, t in tokens.items() if label != victim)
    assert all(t.certificates for label, t in tokens.items() if label != victim)


def test_lecteurs_json(hsm):
    code, out, err = command("lecteurs", "--module", SOFTHSM_MODULE, "--format", "json")
    assert code == 0, err
    tokens = json.loads(out)
    assert len(tokens) == 5
    first = tokens[0]
    assert set(first) >= {"module", "slot", "label", "numero_serie", "fabricant", "modele",
                          "certificats"}  # fmt: skip
    certificate = next(t for t in tokens if t["label"].startswith("Carte agent"))["certificats"][0]
    assert set(certificate) == {"label", "id", "empreinte_sha256", "sujet", "non_apres", "erreur"}
    assert certificate["erreur"] is None and len(certificate["empreinte_sha256"]) == 64
    empty = next(t for t in tokens if t["label"] == "Objet vide")
    assert empty["certificats"][0]["erreur"] == "objet certificat vide"


def test_lecteurs_text_and_no_module(hsm, tmp_path):
    code, out, _ = command("lecteurs", "--module", SOFTHSM_MODULE)
    assert code == 0 and "Emplacement" in out and "objet certificat vide" in out
    code, out, err = command("lecteurs", "--module", str(tmp_path / "absent.so"))
    assert code == 1 and "module PKCS#11 introuvable" in err


# Proof of possession ---------------------------------------------------------------------


def _token(label_start: str) -> readers.TokenRead:
    return next(t for t in readers.scan([SOFTHSM_MODULE]).tokens if t.label.startswith(label_start))


@pytest.mark.parametrize(("label", "pss"), [("Carte agent", False), ("Carte agent", True),
                                           ("Carte expert", False)])  # fmt: skip
def test_proof_of_possession(hsm, label, pss):
    token = _token(label)
    for found in token.certificates:
        proof = readers.prove_possession(
            token.module, token.slot, found.id, found.certificate, "1234", pss=pss
        )
        assert proof.proven, proof
    expected = (
        "ECDSA"
        if label == "Carte expert"
        else ("SHA256_RSA_PKCS_PSS" if pss else "SHA256_RSA_PKCS")
    )
    assert proof.mechanism == expected


def test_key_of_another_certificate_is_caught(hsm, test_pki):
    token = _token("Carte agent")
    stranger = next(h for h in test_pki.holders if h.family == "avocat").authentication
    proof = readers.prove_possession(token.module, token.slot, "01", stranger.certificate, "1234")
    assert (proof.proven, proof.error) == (False, "signature_fausse")


def test_wrong_pin_says_what_the_token_says(hsm):
    token = _token("Cle RPVA")
    found = token.certificates[0]
    proof = readers.prove_possession(token.module, token.slot, found.id, found.certificate, "0000")
    assert (proof.proven, proof.error, proof.pin_state) == (
        False,
        "pin_incorrect",
        "essais_faibles",
    )
    _, out, _ = command("lecteurs", "--module", SOFTHSM_MODULE)
    assert "plusieurs codes PIN faux" in out


def test_locked_pin_is_not_even_tried(hsm):
    label = next(label for label in hsm.serials if label.startswith("Cle RPVA"))
    hsm.lock_pin(label)
    token = _token("Cle RPVA")
    assert token.pin_state == "bloque"
    found = token.certificates[0]
    proof = readers.prove_possession(token.module, token.slot, found.id, found.certificate, PIN)
    assert (proof.proven, proof.error) == (False, "pin_bloque")


# The lawyer's self-check ------------------------------------------------------------------


def test_statut_json(hsm, trust_files, monkeypatch):
    monkeypatch.setenv("CARTES_CONFIG", str(trust_files))
    code, out, err = command("statut", "--slot", str(_token("Cle RPVA").slot), "--format", "json",
                             "--date", PKI_NOW.isoformat())  # fmt: skip
    assert code == 0, err
    (authentication, signature) = json.loads(out)
    assert authentication["type"] == "cle_rpva" and authentication["statut"] == "valide"
    assert authentication["revocation"] == "non_revoque"
    expiry = dt.date.fromisoformat(authentication["non_apres"][:10])
    assert authentication["jours_restants"] == (expiry - PKI_NOW.date()).days
    assert authentication["date_limite_commande"] == (expiry - dt.timedelta(days=60)).isoformat()
    assert authentication["rupture_previsible_jours"] == 0
    assert set(authentication) >= {"titulaire", "type", "non_apres", "jours_restants", "statut",
                                   "date_limite_commande", "rupture_previsible_jours"}  # fmt: skip
    assert signature["titulaire"] == authentication["titulaire"]


def test_statut_warns_when_the_order_is_late(hsm, trust_files, monkeypatch):
    monkeypatch.setenv("CARTES_CONFIG", str(trust_files))
    token = _token("Cle RPVA")
    expiry = token.certificates[0].certificate.not_valid_after_utc
    late = (expiry - dt.timedelta(days=30)).isoformat()
    code, out, _ = command("statut", "--slot", str(token.slot), "--date", late)
    assert code == 2  # by then today's CRLs are stale: revocation undetermined
    order_by = f"{(expiry - dt.timedelta(days=60)):%d/%m/%Y}"
    assert f"à faire : La date limite de commande ({order_by}) est passée" in out
    assert "auprès de votre ordre" in out  # how to renew an RPVA key
    assert "rupture prévisible de 15 jours" in out  # 45-day lead, 30 days left
    code, out, _ = command("statut", "--slot", str(token.slot), "--date", late, "--format", "json")
    entry = json.loads(out)[0]
    assert entry["rupture_previsible_jours"] == 15
    assert entry["prochaine_etape"]["code"] == "commander_maintenant"
    # Order today: the day of --date, in Paris.
    today = dt.datetime.fromisoformat(late).astimezone(PARIS).date()
    assert entry["prochaine_etape"]["avant_le"] == today.isoformat()


def test_statut_of_a_revoked_card(hsm, trust_files, monkeypatch):
    monkeypatch.setenv("CARTES_CONFIG", str(trust_files))
    token = _token("Carte revoquee")
    code, out, _ = command("statut", "--slot", str(token.slot), "--format", "json",
                           "--date", PKI_NOW.isoformat())  # fmt: skip
    assert code == 1
    entry = json.loads(out)[0]
    assert entry["statut"] == "invalide" and entry["motifs"][0]["code"] == "revoque"
    assert entry["revocation"] == "revoque"


# Scanner: match, registration, and the PIN kept secret --------------------------------------


@pytest.fixture
def inventory_holder(database, clock, test_pki, hsm):
    """The RPVA key's holder known to the inventory (by e-mail), nothing else."""
    from inventaire import credentials, db, operators, organisations
    from inventaire.enums import HolderRole

    token = _token("Cle RPVA")
    from pki import describe

    info = describe(token.certificates[0].certificate)
    with db.write_session(database.engine) as session:
        holder = credentials.create_holder(
            session,
            last_name=info.holder_name.split()[-1],
            first_name=info.holder_name.split()[0],
            email=info.email,
            role=HolderRole.LAWYER,
            organisation_id=organisations.find(session, "Barreau d'Angers").id,
            operator=operators.find(session, "admin"),
            now=clock.now(),
        )
    return holder.id


def test_scanner_registers_and_then_recognises(
    cli, database, trust_files, monkeypatch, inventory_holder, hsm
):
    monkeypatch.setenv("CARTES_CONFIG", str(trust_files))
    slot = str(_token("Cle RPVA").slot)
    result = cli("scanner", "--slot", slot, "--format", "json", operator="gestion")
    assert result.code == 0, result.err
    (entry,) = json.loads(result.out)
    assert entry["correspondance"] == {
        "support": None,
        "titulaire": inventory_holder,
        "par": "email",
    }
    result = cli("scanner", "--slot", slot, "--enregistrer", "--format", "json", operator="gestion")
    (entry,) = json.loads(result.out)
    created = entry["enregistrement"]["support"]
    assert entry["enregistrement"]["cree"] is True
    with database.engine.connect() as connection:
        kind, state, serial = connection.execute(
            sa.text("SELECT kind, state, serial FROM credential WHERE id = :id"), {"id": created}
        ).one()
        certificates = connection.execute(
            sa.text("SELECT count(*) FROM certificate WHERE credential_id = :id"), {"id": created}
        ).scalar_one()
    # A MANAGER without habilitation registers the card received, not handed over (issue 8).
    assert (kind, state, certificates) == ("RPVA_KEY", "RECEIVED", 2)
    assert serial == hsm.serials[_token("Cle RPVA").label].upper()
    result = cli("scanner", "--slot", slot, operator="gestion")
    assert "certificat déjà connu" in result.out
    assert cli("journal", "verifier").code == 0


def test_scanner_refuses_an_unknown_holder(cli, trust_files, monkeypatch, hsm):
    monkeypatch.setenv("CARTES_CONFIG", str(trust_files))
    slot = str(_token("Carte agent").slot)
    result = cli("scanner", "--slot", slot, "--enregistrer", operator="gestion")
    assert result.code == 1
    assert "carte et titulaire inconnus" in result.out
    assert "enregistrement refusé : Titulaire inconnu" in result.out


def test_pin_never_leaks(database, trust_files, hsm, inventory_holder, tmp_path):
    """Right and wrong PINs, through a real process: not in what it prints, not in the
    database, not in the journal."""
    env = {
        "CARTES_CONFIG": str(trust_files),
        "SOFTHSM2_CONF": str(hsm.conf),
        "CARTES_DEBUG": "1",  # even the debugging mode must not show it
    }
    slot = str(_token("Cle RPVA").slot)
    seen = []
    for pin in (PIN, "55" + PIN[2:]):
        result = run_cartes(
            "--operateur", "gestion", "scanner", "--slot", slot, "--preuve", "--pin-depuis-stdin",
            "--enregistrer", database_url=database.url, env=env, input=pin + "\n",
        )  # fmt: skip
        seen.append(result)
        assert "Traceback" not in result.err
        assert pin not in result.out and pin not in result.err
    assert "possession de la clé prouvée" in seen[0].out
    assert "possession NON prouvée : code PIN incorrect" in seen[1].out
    assert seen[1].code == 1
    with database.engine.connect() as connection:
        for table in ("journal_entry", "credential", "certificate", "holder"):
            rows = connection.execute(sa.text(f"SELECT * FROM {table}")).all()
            text = repr(rows)
            assert PIN not in text and ("55" + PIN[2:]) not in text
    if database.backend == "sqlite":
        path = sa.engine.make_url(database.url).database
        for suffix in ("", "-wal"):
            if os.path.exists(path + suffix):
                with open(path + suffix, "rb") as handle:
                    assert PIN.encode() not in handle.read()


def test_scanner_proof_with_pss_from_stdin(hsm, trust_files, monkeypatch, cli):
    monkeypatch.setenv("CARTES_CONFIG", str(trust_files))
    monkeypatch.setattr("sys.stdin", io.StringIO("1234\n"))
    slot = str(_token("Carte agent").slot)
    result = cli("scanner", "--slot", slot, "--preuve", "--pss", "--pin-depuis-stdin",
                 "--format", "json", operator="gestion")  # fmt: skip
    assert result.code == 0, result.err
    (entry,) = json.loads(result.out)
    proofs = [c["preuve"] for c in entry["certificats"]]
    assert [p["prouvee"] for p in proofs] == [True, True]
    assert {p["mecanisme"] for p in proofs} == {"SHA256_RSA_PKCS_PSS"}
