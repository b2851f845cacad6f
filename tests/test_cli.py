"""The command line as a user meets it: listings, transitions, operators, organisations,
settings, the summary, demo data, and errors that are French and never a traceback."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from inventaire.models import CredentialKind, CredentialState
from tests.conftest import run_cartes
from tests.factories import add_credential, credential_state, journal_count

S = CredentialState
TODAY = dt.date(2026, 11, 26)


@pytest.fixture
def inventory(engine, clock):
    """Five credentials with known expiries (days from today) and states."""
    now = clock.now()

    def add(days, **kwargs):
        return add_credential(engine, now, expires_on=TODAY + dt.timedelta(days=days), **kwargs)

    return {
        "rpva_10": add(10),
        "rpva_45": add(45, organisation="Barreau de Laval"),
        "agent_61": add(61, kind=CredentialKind.AGENT_CARD, organisation="TJ Angers"),
        "expert_200": add(200, kind=CredentialKind.EXPERT_CARD),
        "lost_-5": add(-5, state=S.LOST),
    }


def listed(cli, *args):
    result = cli("liste", "--format", "json", *args, operator="lecture")
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_json_listing_fields(cli, inventory):
    lines = listed(cli)
    assert [line["id"] for line in lines] == [
        inventory[k] for k in ("lost_-5", "rpva_10", "rpva_45", "agent_61", "expert_200")
    ]
    first = lines[1]
    assert set(first) >= {
        "id", "type", "etat", "titulaire", "email", "organisation", "numero_serie",
        "date_expiration", "jours_restants",
    }  # fmt: skip
    assert first["type"] == "cle_rpva" and first["etat"] == "active"
    assert first["titulaire"].startswith("Claire Martin")
    assert first["organisation"] == "Barreau d'Angers"
    assert first["date_expiration"] == (TODAY + dt.timedelta(days=10)).isoformat()
    assert first["jours_restants"] == 10
    assert lines[0]["jours_restants"] == -5


def test_listing_filters(cli, inventory):
    def ids(*args):
        return {line["id"] for line in listed(cli, *args)}

    assert ids("--expire-dans", "60") == {inventory["rpva_10"], inventory["rpva_45"]}
    assert ids("--expire-dans", "61") == {
        inventory["rpva_10"], inventory["rpva_45"], inventory["agent_61"]
    }  # fmt: skip
    assert ids("--expire-avant", "2026-12-07") == {inventory["lost_-5"], inventory["rpva_10"]}
    assert ids("--expire-avant", "07/12/2026") == ids("--expire-avant", "2026-12-07")
    assert ids("--type", "carte_agent", "--type", "carte_expert") == {
        inventory["agent_61"], inventory["expert_200"]
    }  # fmt: skip
    assert ids("--etat", "perdue") == {inventory["lost_-5"]}
    assert ids("--organisation", "barreau de laval") == {inventory["rpva_45"]}
    assert ids("--organisation", "Tribunal judiciaire d'Angers") == {inventory["agent_61"]}
    serial = listed(cli, "--type", "carte_expert")[0]["numero_serie"]
    assert ids("--recherche", serial.lower()) == {inventory["expert_200"]}
    assert len(ids("--recherche", "CLAIRE")) == 5
    assert ids("--recherche", "100%_") == set()


def test_listing_csv_can_be_imported_back(cli, inventory, tmp_path):
    result = cli("liste", "--format", "csv", operator="lecture")
    rows = list(csv.DictReader(io.StringIO(result.out), delimiter=";"))
    assert len(rows) == 5
    assert rows[1]["type"] == "cle_rpva" and rows[1]["role"] == "avocat"
    path = tmp_path / "export.csv"
    path.write_text(result.out, encoding="utf-8")
    entries = cli("journal", "--limite", "0", "--format", "json")
    result = cli("importer", str(path), operator="gestion")
    assert result.code == 0, result.err
    assert "aucun changement" in result.out
    assert cli("journal", "--limite", "0", "--format", "json").out == entries.out


def test_table_listing(cli, inventory):
    result = cli("liste", "--expire-dans", "60", operator="lecture")
    assert result.code == 0
    assert "clé RPVA" in result.out and "2 supports." in result.out
    assert "Barreau de Laval" in result.out


def test_listing_errors(cli, inventory):
    result = cli("liste", "--type", "badge", operator="lecture")
    assert result.code == 1
    assert "Valeur « badge » inconnue pour type" in result.err
    result = cli("liste", "--organisation", "TJ Nantes", operator="lecture")
    assert result.code == 1 and "Organisation inconnue : « TJ Nantes »" in result.err
    result = cli("liste", "--expire-avant", "31/02/2027", operator="lecture")
    assert result.code == 2 and "date invalide" in result.err


def test_cli_transition(cli, engine, inventory):
    credential_id = inventory["rpva_10"]
    result = cli(
        "transition", str(credential_id), "suspendue", "--motif", "oubliée", operator="gestion"
    )
    assert result.code == 0, result.err
    assert result.out.strip() == f"Support n°{credential_id} : active → suspendue (version 2)."
    assert credential_state(engine, credential_id) == (S.SUSPENDED, 2)


def test_cli_refused_transition_changes_nothing(cli, engine, inventory):
    credential_id = inventory["lost_-5"]
    entries = journal_count(engine)
    result = cli(
        "transition", str(credential_id), "active", "--motif", "retrouvée", operator="gestion"
    )
    assert result.code == 1
    assert "Transition refusée" in result.err
    assert "« perdue » ne peut pas devenir « active »" in result.err
    assert "aucune (état final)" in result.err
    assert credential_state(engine, credential_id) == (S.LOST, 1)
    assert journal_count(engine) == entries


def test_cli_transition_errors(cli, engine, inventory):
    credential_id = str(inventory["rpva_10"])
    result = cli("transition", credential_id, "suspendue", operator="gestion")
    assert result.code == 2 and "--motif" in result.err
    result = cli("transition", credential_id, "suspendue", "--motif", "x", operator="lecture")
    assert result.code == 1 and "n'a pas le rôle requis : gestionnaire" in result.err
    result = cli("transition", credential_id, "suspendue", "--motif", "x", operator="qui")
    assert result.code == 1 and "Opérateur inconnu ou inactif : « qui »" in result.err
    result = cli("transition", "999999", "suspendue", "--motif", "x", operator="gestion")
    assert result.code == 1 and "Aucun support n°999999" in result.err
    result = cli(
        "transition",
        credential_id,
        "suspendue",
        "--motif",
        "x",
        "--version",
        "7",
        operator="gestion",
    )
    assert result.code == 1
    assert "modifié par ailleurs" in result.err and "version attendue 7, actuelle 1" in result.err
    assert credential_state(engine, inventory["rpva_10"]) == (S.ACTIVE, 1)


def test_operators(cli):
    result = cli("operateur", "ajouter", "jdupont", "--role", "gestionnaire", "--role", "habilite")
    assert result.code == 0, result.err
    assert "jdupont ajouté" in result.out
    result = cli("operateur", "liste", operator="jdupont")
    assert "jdupont" in result.out and "gestionnaire, habilite" in result.out
    result = cli("operateur", "ajouter", "jdupont", "--role", "lecteur")
    assert result.code == 1 and "existe déjà" in result.err
    result = cli("operateur", "ajouter", "x", "--role", "chef")
    assert result.code == 1 and "chef" in result.err and "lecteur, gestionnaire" in result.err
    result = cli("operateur", "ajouter", "mallory", "--role", "admin", operator="gestion")
    assert result.code == 1 and "administrateur" in result.err
    result = cli("operateur", "ajouter", "pas bien", "--role", "lecteur")
    assert result.code == 1 and "Identifiant d'opérateur invalide" in result.err


def test_organisations(cli):
    result = cli(
        "organisation",
        "ajouter",
        "TJ Cholet",
        "--type",
        "tribunal_judiciaire",
        "--nom-complet",
        "Tribunal judiciaire de Cholet",
    )
    assert result.code == 0, result.err
    result = cli("organisation", "liste", operator="lecture")
    assert "Tribunal judiciaire de Cholet" in result.out
    result = cli("organisation", "ajouter", "tj  cholet", "--type", "autre")
    assert result.code == 1 and "porte déjà le nom" in result.err
    result = cli("organisation", "ajouter", "X", "--type", "ministere")
    assert result.code == 1 and "ministere" in result.err


def test_summary(cli, inventory):
    result = cli(operator="lecture")
    assert result.code == 0, result.err
    assert "inventaire au 26/11/2026" in result.out
    assert "5 supports pour 5 titulaires" in result.out
    lines = {line.split("  ")[0]: line.split() for line in result.out.splitlines()}
    # clé RPVA: already expired 0, ≤30: 1, ≤60: 2, ≤90: 2
    assert lines["clé RPVA"][-4:] == ["0", "1", "2", "2"]
    assert lines["total"][-4:] == ["0", "1", "2", "3"]


def test_empty_summary(cli):
    result = cli(operator="lecture")
    assert result.code == 0 and "L'inventaire est vide" in result.out


def test_demo_data(cli, engine):
    result = cli("demo", "--titulaires", "300", "--graine", "4", operator="gestion")
    assert result.code == 0, result.err
    assert "300 titulaires" in result.out
    lines = listed(cli)
    assert len(lines) >= 300
    kinds = {line["type"] for line in lines}
    assert kinds == {"carte_agent", "carte_expert", "cle_rpva", "carte_temporaire"}
    assert cli("journal", "verifier").code == 0
    # The same seed on the same day describes the same district: nothing changes.
    result = cli("demo", "--titulaires", "300", "--graine", "4", operator="gestion")
    assert "déjà présents" in result.out


def test_config_masks_secrets(cli, tmp_path, monkeypatch):
    config = tmp_path / "cartes.toml"
    config.write_text('[smtp]\nhost = "smtp.justice.test"\npassword = "s3cr3t-smtp"\n')
    monkeypatch.setenv("CARTES_SMTP__USER", "cartes")
    result = cli("--config", str(config), "config")
    assert result.code == 0, result.err
    assert f"# fichier : {config}" in result.out
    assert 'host = "smtp.justice.test"' in result.out
    assert 'user = "cartes"' in result.out
    assert "s3cr3t-smtp" not in result.out and "**********" in result.out
    monkeypatch.setenv("CARTES_DATABASE_URL", "postgresql://cartes:motdepasse@db.test/cartes")
    result = cli("config")
    assert "motdepasse" not in result.out and "postgresql://cartes:***@db.test/cartes" in result.out


def test_config_errors(cli, tmp_path, monkeypatch):
    result = cli("--config", str(tmp_path / "absent.toml"), "config")
    assert result.code == 1 and "Fichier de configuration introuvable" in result.err
    bad = tmp_path / "bad.toml"
    bad.write_text("[smtp\nport = 25")
    result = cli("--config", str(bad), "config")
    assert result.code == 1 and "illisible" in result.err
    bad.write_text('[smtp]\nport = "vingt-cinq"\ncouleur = "bleu"\n')
    monkeypatch.setenv("CARTES_CONFIG", str(bad))
    result = cli("config")
    assert result.code == 1
    assert "smtp.port : nombre entier attendu" in result.err
    assert "smtp.couleur : paramètre inconnu" in result.err


def test_environment_overrides_the_file(cli, tmp_path, monkeypatch):
    config = tmp_path / "cartes.toml"
    config.write_text("busy_timeout_s = 9\n[renewal]\nrpva_key_days = 50\n")
    monkeypatch.setenv("CARTES_RENEWAL__RPVA_KEY_DAYS", "40")
    result = cli("--config", str(config), "config")
    assert "busy_timeout_s = 2" in result.out  # CARTES_BUSY_TIMEOUT_S set by the fixture
    assert "rpva_key_days = 40" in result.out


def test_french_usage_errors(cli):
    result = cli("liste", "--expire-dans")
    assert result.code == 2
    assert "usage : cartes liste" in result.err and "une valeur est attendue" in result.err
    result = cli("inconnue")
    assert result.code == 2 and "choix invalide" in result.err


def test_real_process_never_shows_a_traceback(database, tmp_path):
    """Exit codes and messages of the installed command, in its own process."""
    result = run_cartes(
        "--operateur", "gestion", "importer", str(tmp_path), database_url=database.url
    )
    assert result.code == 1 and "Traceback" not in result.err
    assert "Fichier introuvable" in result.err
    result = run_cartes(
        "--operateur", "gestion", "liste", "--format", "json", database_url=database.url
    )
    assert (result.code, json.loads(result.out)) == (0, [])
    missing = tmp_path / "absent" / "cartes.db"
    result = run_cartes("liste", database_url=f"sqlite:///{missing}")
    assert result.code == 1 and "lancez « cartes init »" in result.err
    assert not missing.parent.exists()  # a read creates no empty database
    (tmp_path / "fichier").write_text("")
    impossible = f"sqlite:///{tmp_path / 'fichier' / 'cartes.db'}"
    result = run_cartes("init", database_url=impossible)
    assert result.code == 1 and "Traceback" not in result.err
    assert result.err.strip().startswith("Base de données inaccessible")


def test_json_made_by_the_database_agrees_with_csv(cli):
    """The JSON objects are built in SQL, the CSV rows in Python: same facts in both."""
    assert cli("demo", "--titulaires", "150", "--graine", "9", operator="gestion").code == 0
    objects = listed(cli)
    result = cli("liste", "--format", "csv", operator="lecture")
    rows = list(csv.DictReader(io.StringIO(result.out), delimiter=";"))
    assert len(objects) == len(rows) > 150
    for obj, row in zip(objects, rows, strict=True):
        assert obj["id"] == int(row["id"])
        assert (obj["type"], obj["etat"], obj["modele"] or "") == (
            row["type"],
            row["etat"],
            row["modele"],
        )
        assert obj["titulaire"] == f"{row['prenom']} {row['nom']}"
        assert (obj["email"], obj["organisation"]) == (row["email"], row["organisation"])
        assert (obj["numero_serie"] or "") == row["numero_serie"]
        assert (obj["date_expiration"] or "") == row["date_expiration"]
        assert ("" if obj["jours_restants"] is None else str(obj["jours_restants"])) == row[
            "jours_restants"
        ]
