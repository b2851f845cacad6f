"""Habilitation on every handover path (issue 8, part 3).

A handover, a card becoming active now, needs a habilitated operator (``remise``); recording
a handover made before (a card its holder already uses, an existing inventory imported) is
a MANAGER's record (``gestion``), journaled as such. A refusal writes nothing, journal
included.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from fixtures.softhsm import softhsm_available
from inventaire import cards, credentials, db, operators, organisations
from inventaire.enums import CertificateRole, CredentialKind, HolderRole
from inventaire.errors import InvalidValue, PermissionDenied
from inventaire.models import Credential, CredentialState, JournalEntry
from tests.conftest import get_operator
from tests.factories import add_credential, credential_state, journal_count

S = CredentialState
TODAY = dt.date(2026, 11, 26)  # the test clock's day in Paris

HSM = softhsm_available()
if HSM:  # the reader tests' SoftHSM tokens, trust settings and known holder
    from tests.test_readers import _token, hsm, inventory_holder, trust_files  # noqa: F401
needs_hsm = pytest.mark.skipif(not HSM, reason="SoftHSM2 n'est pas installé (paquet softhsm2)")


def credential_rows(engine) -> list[Credential]:
    with db.read_session(engine) as session:
        return list(session.execute(sa.select(Credential)).scalars())


def actions_of(engine, credential_id: int) -> list[str]:
    with db.read_session(engine) as session:
        return list(
            session.execute(
                sa.select(JournalEntry.action)
                .where(
                    JournalEntry.entity_type == "credential",
                    JournalEntry.entity_id == credential_id,
                )
                .order_by(JournalEntry.seq)
            ).scalars()
        )


def entries_of(engine, credential_id: int) -> list[JournalEntry]:
    with db.read_session(engine) as session:
        return list(
            session.execute(
                sa.select(JournalEntry)
                .where(
                    JournalEntry.entity_type == "credential",
                    JournalEntry.entity_id == credential_id,
                )
                .order_by(JournalEntry.seq)
            ).scalars()
        )


# The domain: registering a card read at the desk -------------------------------------------


@pytest.fixture
def card(engine, clock) -> cards.ScannedCard:
    """A lawyer known to the inventory and the key read at the desk (no credential yet)."""
    with db.write_session(engine) as session:
        credentials.create_holder(
            session,
            last_name="Bernard",
            first_name="Julie",
            email="julie.bernard@avocats.test",
            role=HolderRole.LAWYER,
            organisation_id=organisations.find(session, "Barreau d'Angers").id,  # type: ignore[union-attr]
            operator=operators.find(session, "admin"),  # type: ignore[arg-type]
            now=clock.now(),
        )
    certificate = cards.CardCertificate(
        der=b"0",
        fingerprint_sha256="ab" * 32,
        subject="CN=Julie Bernard",
        issuer="CN=AC Avocats",
        serial_number="1F",
        not_before=clock.now() - dt.timedelta(days=30),
        not_after=clock.now() + dt.timedelta(days=1000),
        role=CertificateRole.AUTHENTICATION,
        status="valide",
        email="julie.bernard@avocats.test",
        holder_name="Julie Bernard",
    )
    return cards.ScannedCard("rpva-0042", CredentialKind.RPVA_KEY, [certificate])


def register(engine, clock, card, login: str, **options):
    with db.write_session(engine) as session:
        return cards.register(
            session, card, operator=get_operator(engine, login), now=clock.now(), **options
        )


@pytest.mark.parametrize("login", ["gestion", "admin"])
def test_a_manager_cannot_hand_over_a_new_card(engine, clock, card, login):
    entries = journal_count(engine)
    with pytest.raises(PermissionDenied) as refused:
        register(engine, clock, card, login, state=S.ACTIVE)
    assert refused.value.code == "remise_non_habilitee"
    assert credential_rows(engine) == []
    assert journal_count(engine) == entries


def test_a_reader_cannot_register(engine, clock, card):
    entries = journal_count(engine)
    with pytest.raises(PermissionDenied):
        register(engine, clock, card, "lecture", already_handed_over=True)
    assert credential_rows(engine) == [] and journal_count(engine) == entries


@pytest.mark.parametrize(
    ("login", "state", "handed_over_on"),
    [("gestion", S.RECEIVED, None), ("admin", S.RECEIVED, None), ("remise", S.ACTIVE, TODAY)],
)
def test_without_a_state_the_card_waits_unless_the_operator_hands_it_over(
    engine, clock, card, login, state, handed_over_on
):
    credential, created = register(engine, clock, card, login)
    assert created
    assert (credential.state, credential.handed_over_on) == (state, handed_over_on)


def test_a_habilitated_operator_hands_over_like_any_handover(engine, clock, card):
    credential, _ = register(engine, clock, card, "remise", state=S.ACTIVE)
    assert (credential.state, credential.handed_over_on) == (S.ACTIVE, TODAY)
    read, handover = entries_of(engine, credential.id)
    assert (read.action, json.loads(read.after)["state"]) == ("support.lecture_carte", "RECEIVED")
    assert handover.action == "support.transition" and handover.operator == "remise"
    assert json.loads(handover.before)["state"] == "RECEIVED"
    assert json.loads(handover.after)["handed_over_on"] == TODAY.isoformat()


def test_a_card_already_in_use_is_recorded_not_handed_over(engine, clock, card):
    day = dt.date(2025, 3, 2)
    credential, created = register(
        engine, clock, card, "gestion", already_handed_over=True, handed_over_on=day
    )
    assert created
    assert (credential.state, credential.handed_over_on) == (S.ACTIVE, day)
    (entry,) = entries_of(engine, credential.id)
    assert entry.action == cards.RECORD_ACTION == "support.enregistrement"
    assert json.loads(entry.after)["handed_over_on"] == day.isoformat()
    assert "déjà remise" in (entry.reason or "")


def test_a_record_without_a_date_leaves_it_unknown(engine, clock, card):
    credential, _ = register(engine, clock, card, "gestion", already_handed_over=True)
    assert (credential.state, credential.handed_over_on) == (S.ACTIVE, None)


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"already_handed_over": True, "state": S.RECEIVED}, "deja_remise_etat"),
        (
            {"already_handed_over": True, "handed_over_on": TODAY + dt.timedelta(days=1)},
            "date_remise_future",
        ),
        ({"handed_over_on": dt.date(2025, 3, 2)}, "remise_le_sans_deja_remise"),
        ({"state": S.SUSPENDED}, "etat_enregistrement_refuse"),
        ({"state": S.REQUESTED}, "etat_enregistrement_refuse"),
    ],
    ids=["deja-remise-recue", "date-future", "date-sans-deja-remise", "suspendue", "demandee"],
)
def test_impossible_registrations_write_nothing(engine, clock, card, options, code):
    entries = journal_count(engine)
    with pytest.raises(InvalidValue) as refused:
        register(engine, clock, card, "remise", **options)
    assert refused.value.code == code
    assert credential_rows(engine) == [] and journal_count(engine) == entries


# cartes transition: the handover of a received card ---------------------------------------


@pytest.mark.parametrize("login", ["gestion", "admin"])
def test_transition_to_active_from_received_needs_habilitation(cli, engine, clock, login):
    credential_id = add_credential(engine, clock.now(), state=S.RECEIVED)
    entries = journal_count(engine)
    result = cli("transition", str(credential_id), "active", "--motif", "remise", operator=login)
    assert result.code == 1
    assert "habilité" in result.err
    assert credential_state(engine, credential_id) == (S.RECEIVED, 1)
    assert journal_count(engine) == entries
    result = cli("transition", str(credential_id), "active", "--motif", "remise", operator="remise")
    assert result.code == 0, result.err
    assert credential_state(engine, credential_id)[0] is S.ACTIVE


# cartes importer: an existing inventory is recorded -----------------------------------------

HEADER = (
    "nom;prenom;email;role;organisation;type;modele;numero_serie;etat;date_remise;date_expiration"
)
RECEIVED_ROW = "Roux;Paul;paul.roux@example.fr;partie;TJ Laval;carte_temporaire;;TMP-9;recue;;"


def csv(path: Path, *rows: str) -> Path:
    path.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("date", "handed_over_on"), [("2026-11-20", "2026-11-20"), ("", None)])
def test_import_of_a_handover_is_a_record_by_a_manager(cli, engine, tmp_path, date, handed_over_on):
    assert cli("importer", str(csv(tmp_path / "a.csv", RECEIVED_ROW)), operator="gestion").code == 0
    (received,) = credential_rows(engine)
    entries = journal_count(engine)
    active = RECEIVED_ROW.replace(";recue;;", f";active;{date};2029-11-20")
    result = cli("importer", str(csv(tmp_path / "b.csv", active)), operator="gestion")
    assert result.code == 0, result.err
    assert "changements d'état : 1" in result.out
    (card,) = credential_rows(engine)
    assert card.id == received.id
    assert card.state is S.ACTIVE
    # The import day is not the day of handover: the file's, or unknown.
    assert card.handed_over_on == (
        dt.date.fromisoformat(handed_over_on) if handed_over_on else None
    )
    new_actions = actions_of(engine, card.id)[-1:]
    assert new_actions == ["support.enregistrement"]
    assert "support.transition" not in actions_of(engine, card.id)
    assert journal_count(engine) > entries
    assert cli("journal", "verifier").code == 0


# cartes scanner --enregistrer, on real SoftHSM2 tokens ---------------------------------------


def scan(cli, login: str, *options: str):
    slot = str(_token("Cle RPVA").slot)
    return cli("scanner", "--slot", slot, "--enregistrer", *options, operator=login)


@needs_hsm
@pytest.mark.parametrize("login", ["gestion", "admin"])
def test_scanner_refuses_a_handover_by_a_manager(
    cli, engine, trust_files, monkeypatch, inventory_holder, login
):
    monkeypatch.setenv("CARTES_CONFIG", str(trust_files))
    entries = journal_count(engine)
    result = scan(cli, login, "--etat", "active")
    assert result.code == 1
    assert "enregistrement refusé" in result.out and "n'est pas habilité" in result.out
    assert credential_rows(engine) == []
    assert journal_count(engine) == entries


@needs_hsm
def test_scanner_records_a_card_already_in_use(
    cli, engine, trust_files, monkeypatch, inventory_holder
):
    monkeypatch.setenv("CARTES_CONFIG", str(trust_files))
    result = scan(cli, "gestion", "--deja-remise", "--remise-le", "02/03/2025", "--format", "json")
    assert result.code == 0, result.err
    (entry,) = json.loads(result.out)
    registration = entry["enregistrement"]
    assert registration["cree"] is True
    assert (registration["etat"], registration["remise"], registration["remise_le"]) == (
        "active",
        "deja_remise",
        "2025-03-02",
    )
    (credential,) = credential_rows(engine)
    assert (credential.state, credential.handed_over_on) == (S.ACTIVE, dt.date(2025, 3, 2))
    assert actions_of(engine, credential.id) == ["support.enregistrement"]
    assert cli("journal", "verifier").code == 0


@needs_hsm
def test_scanner_hands_over_when_the_operator_is_habilitated(
    cli, engine, trust_files, monkeypatch, inventory_holder
):
    monkeypatch.setenv("CARTES_CONFIG", str(trust_files))
    result = scan(cli, "remise")
    assert result.code == 0, result.err
    assert "remis à son titulaire le 26/11/2026" in result.out
    (credential,) = credential_rows(engine)
    assert (credential.state, credential.handed_over_on) == (S.ACTIVE, TODAY)
    assert actions_of(engine, credential.id) == ["support.lecture_carte", "support.transition"]


@needs_hsm
def test_scanner_by_a_manager_registers_received_then_waits_for_a_habilitated_operator(
    cli, engine, trust_files, monkeypatch, inventory_holder
):
    monkeypatch.setenv("CARTES_CONFIG", str(trust_files))
    result = scan(cli, "gestion")
    assert result.code == 0, result.err
    assert "à remettre par une personne habilitée" in result.out
    (credential,) = credential_rows(engine)
    assert (credential.state, credential.handed_over_on) == (S.RECEIVED, None)
    entries = journal_count(engine)
    refused = cli(
        "transition", str(credential.id), "active", "--motif", "remise", operator="gestion"
    )
    assert refused.code == 1 and journal_count(engine) == entries
    assert credential_rows(engine)[0].state is S.RECEIVED


@needs_hsm
@pytest.mark.parametrize(
    "options",
    [("--remise-le", "02/03/2025"), ("--deja-remise", "--remise-le", "02/03/2025")],
    ids=["date-sans-deja-remise", "sans-enregistrer"],
)
def test_scanner_handover_options_misused(
    cli, engine, trust_files, monkeypatch, inventory_holder, options
):
    monkeypatch.setenv("CARTES_CONFIG", str(trust_files))
    entries = journal_count(engine)
    slot = str(_token("Cle RPVA").slot)
    enregistrer = () if "--deja-remise" in options else ("--enregistrer",)
    result = cli("scanner", "--slot", slot, *enregistrer, *options, operator="gestion")
    assert result.code == 2
    assert "s'emploi" in result.err
    assert credential_rows(engine) == [] and journal_count(engine) == entries
