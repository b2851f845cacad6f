"""Importing CSV and XLSX files: good files, every kind of bad row, encodings, separators,
idempotence, all-or-nothing, and what the journal keeps."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa

from inventaire import db, importing
from inventaire.errors import ImportFileUnreadable, ImportRejected
from inventaire.models import Credential, CredentialState, Holder, JournalEntry
from tests.conftest import get_operator
from tests.factories import journal_count

HEADER = (
    "nom;prenom;email;role;organisation;type;modele;numero_serie;etat;date_remise;date_expiration"
)
GOOD_ROWS = [
    "Lefèvre;Hélène;helene.lefevre@justice.fr;magistrat;TJ Angers;carte_agent;nouveau;"
    "JUS0001;active;01/02/2024;31/01/2027",
    "Dubois;Marc;marc.dubois@avocat-angers.fr;avocat;Barreau d'Angers;cle_rpva;;RPVA-0001;"
    "active;2024-03-15;2027-03-15",
    "Dubois;Marc;marc.dubois@avocat-angers.fr;avocat;Barreau d'Angers;cle_rpva;;;demandee;;",
    "Nguyen;Anne;anne.nguyen@experts.fr;expert;Compagnie des experts d'Angers;carte_expert;;"
    "CE-77;suspendue;;2026-12-20",
    "Roux;Paul;paul.roux@example.fr;partie;TJ Laval;carte_temporaire;;TMP-9;recue;;",
]


def write(
    path: Path,
    rows: list[str],
    *,
    header: str = HEADER,
    encoding: str = "utf-8",
    separator: str = ";",
) -> Path:
    lines = [header, *rows]
    if separator != ";":
        lines = [line.replace(";", separator) for line in lines]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def run_import(engine, clock, path: Path, *, login: str = "gestion", ignore: bool = False):
    with db.write_session(engine) as session:
        return importing.import_file(
            session,
            path,
            operator=get_operator(engine, login),
            now=clock.now(),
            ignore_errors=ignore,
        )


def count(engine, model) -> int:
    with db.read_session(engine) as session:
        return session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def credentials(engine) -> dict[str | None, Credential]:
    with db.read_session(engine) as session:
        return {c.serial: c for c in session.execute(sa.select(Credential)).scalars()}


def test_good_file(engine, clock, tmp_path):
    report = run_import(engine, clock, write(tmp_path / "a.csv", GOOD_ROWS))
    assert report.errors == []
    assert (report.holders_created, report.credentials_created) == (4, 5)
    assert (report.encoding, report.delimiter) == ("utf-8", ";")
    found = credentials(engine)
    agent = found["JUS0001"]
    assert agent.state is CredentialState.ACTIVE
    assert agent.expires_on == dt.date(2027, 1, 31)
    assert agent.handed_over_on == dt.date(2024, 2, 1)
    assert found[None].state is CredentialState.REQUESTED
    assert found["CE-77"].state is CredentialState.SUSPENDED
    with db.read_session(engine) as session:
        helene = session.execute(
            sa.select(Holder).where(Holder.email == "helene.lefevre@justice.fr")
        ).scalar_one()
    assert (helene.last_name, helene.first_name) == ("Lefèvre", "Hélène")


def test_journal_records_every_creation_without_personal_data(engine, clock, tmp_path):
    before = journal_count(engine)
    run_import(engine, clock, write(tmp_path / "a.csv", GOOD_ROWS))
    with db.read_session(engine) as session:
        entries = list(
            session.execute(sa.select(JournalEntry).where(JournalEntry.seq > before)).scalars()
        )
    actions = [entry.action for entry in entries]
    assert actions.count("titulaire.creation") == 4
    assert actions.count("support.creation") == 5
    assert actions[-1] == "import"
    text = json.dumps([[e.before, e.after, e.reason] for e in entries], ensure_ascii=False)
    for personal in ("Lefèvre", "Hélène", "helene.lefevre", "Dubois", "marc.dubois", "Nguyen"):
        assert personal not in text


def test_windows_1252_and_comma(engine, clock, tmp_path):
    path = write(tmp_path / "excel.csv", GOOD_ROWS, encoding="cp1252", separator=",")
    # The organisation name has an apostrophe but no comma: the row stays well formed.
    report = run_import(engine, clock, path)
    assert report.errors == []
    assert (report.encoding, report.delimiter) == ("windows-1252", ",")
    with db.read_session(engine) as session:
        names = set(session.execute(sa.select(Holder.first_name)).scalars())
    assert "Hélène" in names


def test_utf8_with_bom_and_header_variants(engine, clock, tmp_path):
    header = (
        "Nom;Prénom;E-mail;Rôle;Organisation;Type;Modèle;Numéro série;État;Date remise;"
        "Date expiration;Commentaire"
    )
    header = header.replace("E-mail", "email").replace("Numéro série", "numero_serie")
    header = header.replace("Date remise", "date_remise").replace(
        "Date expiration", "date_expiration"
    )
    rows = [row + ";une note" for row in GOOD_ROWS]
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join([header, *rows]).encode("utf-8"))
    report = run_import(engine, clock, path)
    assert report.errors == []
    assert report.credentials_created == 5


def write_xlsx(path: Path, rows: list[str]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(HEADER.split(";"))
    for row in rows:
        cells: list[object] = list(row.split(";"))
        for index in (9, 10):  # real date cells, as Excel stores them
            if cells[index]:
                cells[index] = dt.datetime.combine(
                    importing.parse_date(str(cells[index])), dt.time()
                )
        sheet.append(cells)
    sheet.append([])  # a trailing empty row, as spreadsheets often have
    workbook.save(path)
    return path


def test_xlsx_and_idempotence_across_formats(engine, clock, tmp_path):
    report = run_import(engine, clock, write_xlsx(tmp_path / "a.xlsx", GOOD_ROWS))
    assert report.errors == [] and report.credentials_created == 5
    assert credentials(engine)["RPVA-0001"].expires_on == dt.date(2027, 3, 15)
    entries = journal_count(engine)
    again = run_import(engine, clock, write(tmp_path / "a.csv", GOOD_ROWS))
    assert again.changes == 0 and again.unchanged == 5
    assert journal_count(engine) == entries


def test_same_file_twice_changes_nothing(engine, clock, tmp_path):
    path = write(tmp_path / "a.csv", GOOD_ROWS)
    run_import(engine, clock, path)
    snapshot = {serial: (c.state, c.version) for serial, c in credentials(engine).items()}
    entries = journal_count(engine)
    clock.advance(days=1)
    report = run_import(engine, clock, path)
    assert report.changes == 0
    assert journal_count(engine) == entries
    assert {s: (c.state, c.version) for s, c in credentials(engine).items()} == snapshot
    assert count(engine, Holder) == 4


BASE_ROW = {
    "nom": "Martin",
    "prenom": "Léa",
    "email": "lea.martin@justice.fr",
    "role": "greffier",
    "organisation": "TJ Angers",
    "type": "carte_agent",
    "modele": "nouveau",
    "numero_serie": "J1",
    "etat": "active",
    "date_remise": "",
    "date_expiration": "2027-01-01",
}


def row(**changes: str) -> str:
    """A CSV row: the base row with some fields changed."""
    return ";".join({**BASE_ROW, **changes}[name] for name in importing.COLUMNS)


BAD_ROWS = {
    "champ_obligatoire": row(prenom=""),
    "email_invalide": row(email="pas-une-adresse"),
    "valeur_inconnue": row(role="juge"),
    "organisation_inconnue": row(organisation="TJ Nantes"),
    "modele_obligatoire": row(modele=""),
    "modele_reserve_carte_agent": row(type="cle_rpva", modele="ancien"),
    "date_invalide": row(date_expiration="31/02/2027"),
    "expiration_obligatoire": row(date_expiration=""),
    "dates_incoherentes": row(date_remise="2028-01-01"),
    "numero_serie_invalide": row(numero_serie="J1<script>"),
    "nombre_de_colonnes": "Martin;Léa;a@b.fr;greffier;TJ Angers",
    "trop_long": row(nom="M" * 121),
}


@pytest.mark.parametrize("code", sorted(BAD_ROWS))
def test_each_kind_of_bad_row_rejects_the_file(engine, clock, tmp_path, code):
    entries = journal_count(engine)
    path = write(tmp_path / "bad.csv", [*GOOD_ROWS[:2], BAD_ROWS[code], *GOOD_ROWS[2:]])
    with pytest.raises(ImportRejected) as rejected:
        run_import(engine, clock, path)
    errors = rejected.value.params["report"].errors
    assert [(e.line, e.code) for e in errors] == [(4, code)]
    assert count(engine, Credential) == 0 and count(engine, Holder) == 0
    assert journal_count(engine) == entries


def test_missing_serial_only_for_requests(engine, clock, tmp_path):
    with pytest.raises(ImportRejected) as rejected:
        run_import(engine, clock, write(tmp_path / "bad.csv", [row(numero_serie="")]))
    error = rejected.value.params["report"].errors[0]
    assert (error.code, error.params) == ("champ_obligatoire", {"champ": "numero_serie"})


def test_duplicate_serial_and_inconsistent_holder(engine, clock, tmp_path):
    rows = [
        *GOOD_ROWS,
        "Autre;Nom;autre@b.fr;greffier;TJ Angers;carte_agent;nouveau;jus0001;active;;2027-01-01",
        "Dubois;Marc;marc.dubois@avocat-angers.fr;avocat;Barreau de Laval;cle_rpva;;R-2;active;;"
        "2027-01-01",
    ]
    with pytest.raises(ImportRejected) as rejected:
        run_import(engine, clock, write(tmp_path / "bad.csv", rows))
    errors = rejected.value.params["report"].errors
    assert [(e.line, e.code, e.params) for e in errors] == [
        (7, "doublon", {"ligne": 2}),
        (8, "titulaire_incoherent", {"ligne": 3}),
    ]


def test_ignore_errors_writes_the_good_rows(engine, clock, tmp_path):
    rows = [GOOD_ROWS[0], BAD_ROWS["date_invalide"], GOOD_ROWS[1]]
    report = run_import(engine, clock, write(tmp_path / "mixed.csv", rows), ignore=True)
    assert [(e.line, e.code) for e in report.errors] == [(3, "date_invalide")]
    assert set(credentials(engine)) == {"JUS0001", "RPVA-0001"}


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "fichier_vide"),
        (b"\x00\x01\x02PK binary", "fichier_binaire"),
        (b"nom;prenom;email\nA;B;c@d.fr\n", "colonnes_manquantes"),
        (b"nom;prenom;email;email;role;organisation;type\n", "colonne_en_double"),
        ((HEADER + '\nA;"B;c@d.fr;x\n').encode(), "csv_invalide"),
    ],
    ids=["vide", "binaire", "colonnes", "doublon-colonne", "guillemet"],
)
def test_unreadable_files(engine, clock, tmp_path, content, code):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    with pytest.raises(ImportFileUnreadable) as error:
        run_import(engine, clock, path)
    assert error.value.code == code


def test_corrupt_xlsx_and_missing_file(engine, clock, tmp_path):
    path = tmp_path / "f.xlsx"
    path.write_bytes(b"PK\x03\x04 this is not a workbook")
    with pytest.raises(ImportFileUnreadable) as error:
        run_import(engine, clock, path)
    assert error.value.code == "xlsx_illisible"
    with pytest.raises(ImportFileUnreadable) as error:
        run_import(engine, clock, tmp_path / "absent.csv")
    assert error.value.code == "fichier_absent"


def test_state_changes_go_through_the_lifecycle(engine, clock, tmp_path):
    run_import(engine, clock, write(tmp_path / "a.csv", GOOD_ROWS))
    suspended = [GOOD_ROWS[0].replace(";active;", ";suspendue;")]
    report = run_import(engine, clock, write(tmp_path / "b.csv", suspended))
    assert report.transitions == 1
    agent = credentials(engine)["JUS0001"]
    assert (agent.state, agent.version) == (CredentialState.SUSPENDED, 2)

    cancelled = [GOOD_ROWS[0].replace(";active;", ";annulee;")]
    with pytest.raises(ImportRejected) as rejected:
        run_import(engine, clock, write(tmp_path / "c.csv", cancelled))
    error = rejected.value.params["report"].errors[0]
    assert (error.code, error.params) == (
        "transition_refusee",
        {"depuis": "SUSPENDED", "vers": "CANCELLED"},
    )
    assert credentials(engine)["JUS0001"].state is CredentialState.SUSPENDED


def test_a_handover_in_an_import_is_a_record_a_manager_may_write(engine, clock, tmp_path):
    """An import records an existing inventory: a received card that the file says is
    active was handed over before, which is not a handover now (issue 8)."""
    run_import(engine, clock, write(tmp_path / "a.csv", GOOD_ROWS))
    handed = [GOOD_ROWS[4].replace(";recue;;", ";active;2026-11-20;2029-11-20")]
    report = run_import(engine, clock, write(tmp_path / "b.csv", handed), login="gestion")
    assert report.transitions == 1
    card = credentials(engine)["TMP-9"]
    assert (card.state, card.handed_over_on) == (CredentialState.ACTIVE, dt.date(2026, 11, 20))
    with db.read_session(engine) as session:
        actions = list(
            session.execute(
                sa.select(JournalEntry.action).where(
                    JournalEntry.entity_type == "credential", JournalEntry.entity_id == card.id
                )
            ).scalars()
        )
    assert "support.enregistrement" in actions and "support.transition" not in actions


def test_a_later_row_with_serial_completes_the_pending_request(engine, clock, tmp_path):
    run_import(engine, clock, write(tmp_path / "a.csv", GOOD_ROWS))
    pending_id = credentials(engine)[None].id
    received = GOOD_ROWS[2].replace(";;;demandee;;", ";;RPVA-0002;recue;;2029-11-01")
    report = run_import(engine, clock, write(tmp_path / "b.csv", [received]))
    assert (report.credentials_created, report.credentials_updated, report.transitions) == (
        0,
        1,
        1,
    )
    completed = credentials(engine)["RPVA-0002"]
    assert completed.id == pending_id
    assert completed.state is CredentialState.RECEIVED
    assert completed.received_on == clock.now().date()


def test_a_serial_of_another_holder_is_refused(engine, clock, tmp_path):
    run_import(engine, clock, write(tmp_path / "a.csv", GOOD_ROWS))
    stolen = [GOOD_ROWS[1].replace("marc.dubois@avocat-angers.fr", "x@avocat.fr")]
    with pytest.raises(ImportRejected) as rejected:
        run_import(engine, clock, write(tmp_path / "b.csv", stolen))
    assert rejected.value.params["report"].errors[0].code == "support_autre_titulaire"


def test_holder_changes_are_journaled_without_names(engine, clock, tmp_path):
    run_import(engine, clock, write(tmp_path / "a.csv", GOOD_ROWS))
    renamed = [GOOD_ROWS[0].replace("Lefèvre", "Lefèvre-Martin").replace("TJ Angers", "CA Angers")]
    report = run_import(engine, clock, write(tmp_path / "b.csv", renamed))
    assert report.holders_updated == 1
    with db.read_session(engine) as session:
        entry = session.execute(
            sa.select(JournalEntry).where(JournalEntry.action == "titulaire.modification")
        ).scalar_one()
    after = json.loads(entry.after)
    assert after["champs_personnels_modifies"] == ["nom"]
    assert json.loads(entry.before)["organisation_id"] != after["organisation_id"]
    assert "Lefèvre" not in entry.after


def test_progress_is_reported(engine, clock, tmp_path, monkeypatch):
    monkeypatch.setattr(importing, "BATCH", 2)
    seen: list[tuple[int, int | None]] = []
    with db.write_session(engine) as session:
        importing.import_file(
            session,
            write(tmp_path / "a.csv", GOOD_ROWS),
            operator=get_operator(engine, "gestion"),
            now=clock.now(),
            progress=lambda done, total: seen.append((done, total)),
        )
    assert [done for done, _ in seen] == [2, 4, 5]
    assert all(total is not None and total >= 5 for _, total in seen)


def test_a_reader_cannot_import(engine, clock, tmp_path):
    from inventaire.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        run_import(engine, clock, write(tmp_path / "a.csv", GOOD_ROWS), login="lecture")
    assert count(engine, Credential) == 0


def test_cli_import_messages(cli, tmp_path):
    path = write(tmp_path / "ressort.csv", [*GOOD_ROWS, BAD_ROWS["organisation_inconnue"]])
    result = cli("importer", str(path), operator="gestion")
    assert result.code == 1
    assert "ressort.csv, ligne 7 : Organisation inconnue : « TJ Nantes »" in result.err
    assert "aucune ligne n'a été enregistrée" in result.err
    result = cli("importer", str(path), "--ignorer-erreurs", operator="gestion")
    assert result.code == 1
    assert "supports créés : 5" in result.out
    assert "lignes ignorées (en erreur) : 1" in result.out
    result = cli("importer", str(path), "--ignorer-erreurs", operator="gestion")
    assert "aucun changement" in result.out
    result = cli("importer", str(tmp_path / "absent.csv"), operator="gestion")
    assert (result.code, result.err.strip()) == (
        1,
        f"Fichier introuvable : {tmp_path / 'absent.csv'}",
    )


def test_cli_import_by_unknown_operator(cli, tmp_path):
    result = cli("importer", str(write(tmp_path / "a.csv", GOOD_ROWS)), operator="inconnu")
    assert result.code == 1
    assert "Opérateur inconnu" in result.err
