"""The desk's services, called as the terminal UI will call them, on real SoftHSM2 tokens:
the scan validated item by item, the lawyer's renewal outlook, the inventory match in its
order and the registration, the proof of possession."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa

from fixtures.softhsm import softhsm_available

if softhsm_available():  # the reader tests' SoftHSM tokens, trust settings and known holder
    from tests.test_readers import PIN, hsm, inventory_holder, trust_files  # noqa: F401
else:
    pytest.skip("SoftHSM2 n'est pas installé (paquet softhsm2)", allow_module_level=True)

from cartes import desk, readers
from cartes.settings import Settings, load
from cartes.trust import validator_from_settings
from fixtures.softhsm import SOFTHSM_MODULE
from inventaire.enums import CredentialKind, CredentialState
from pki import INVALID, UNDETERMINED, VALID
from tests.factories import add_credential
from tests.pki_support import PKI_NOW


@pytest.fixture
def settings(trust_files) -> Settings:
    return load(trust_files).settings


def scanned(settings: Settings, at: dt.datetime = PKI_NOW) -> dict[str, desk.ScannedToken]:
    found = desk.scan_cards(settings, validator=validator_from_settings(settings), at=at)
    assert found.problems == ()
    return {token.token.label.split()[0] + " " + token.token.label.split()[1]: token
            for token in found.tokens}  # fmt: skip


# The scan ---------------------------------------------------------------------------------


def test_scan_validates_each_certificate_and_tells_the_kind(hsm, settings):
    tokens = scanned(settings)
    assert len(tokens) == 5
    assert tokens["Carte agent"].kind is CredentialKind.AGENT_CARD
    assert tokens["Carte expert"].kind is CredentialKind.EXPERT_CARD
    assert tokens["Cle RPVA"].kind is CredentialKind.RPVA_KEY
    assert [c.result.status for c in tokens["Cle RPVA"].certificates] == [VALID, VALID]
    (revoked,) = tokens["Carte revoquee"].certificates
    assert revoked.result.status == INVALID
    assert [reason.code for reason in revoked.result.reasons] == ["revoque"]
    card = tokens["Cle RPVA"].inventory_card()
    assert card.token_serial == hsm.serials[tokens["Cle RPVA"].token.label]
    assert [c.role.value for c in card.certificates] == ["AUTHENTICATION", "SIGNATURE"]


def test_an_unreadable_object_still_yields_the_others(hsm, settings):
    token = scanned(settings)["Objet vide"]
    empty, other = token.certificates
    assert (empty.error, empty.result, empty.info) == ("objet_vide", None, None)
    assert other.result is not None and other.result.status == VALID
    assert other.info is not None and other.info.holder_name == "Jérôme Garnier"
    assert token.readable == (other,)
    assert token.kind is CredentialKind.AGENT_CARD
    assert [c.fingerprint_sha256 for c in token.inventory_card().certificates] == [
        other.info.fingerprint_sha256
    ]


def test_a_token_mixing_families_has_no_kind(settings, test_pki):
    """The kind is the one family all chains end at: two families leave it to the operator."""
    agent, lawyer = (
        next(h for h in test_pki.holders if h.family == family).authentication.certificate
        for family in ("agent", "avocat")
    )

    def token(*certificates):
        objects = tuple(
            readers.CertificateObject(f"c{i}", f"0{i}", c) for i, c in enumerate(certificates)
        )
        return readers.TokenRead("module", 1, "jeton", "S1", "", "", None, objects)

    validator = validator_from_settings(settings)
    single, mixed = desk.validate_tokens(
        [token(agent), token(agent, lawyer)], validator=validator, at=PKI_NOW
    )
    assert single.kind is CredentialKind.AGENT_CARD
    assert mixed.kind is None and mixed.inventory_card().kind is None


def test_module_failures_are_reported_and_the_scan_goes_on(hsm, settings, tmp_path):
    validator = validator_from_settings(settings)
    absent = str(tmp_path / "absent.so")
    found = desk.scan_cards(
        settings, modules=[absent, SOFTHSM_MODULE], validator=validator, at=PKI_NOW
    )
    assert [(p[0], p[1]) for p in found.problems] == [(absent, "module_absent")]
    assert len(found.tokens) == 5 and not found.failed
    alone = desk.scan_cards(settings, modules=[absent], validator=validator, at=PKI_NOW)
    assert alone.tokens == () and alone.failed


def test_no_module_at_all_is_an_error(monkeypatch):
    monkeypatch.setattr(readers, "OPENSC_MODULES", ())
    bare = Settings()
    with pytest.raises(readers.ReaderError) as refused:
        desk.scan_cards(bare, validator=validator_from_settings(bare), at=PKI_NOW)
    assert refused.value.code == "aucun_module"


# The lawyer's self-check ------------------------------------------------------------------


def test_status_outlook_when_the_order_is_late(hsm, settings):
    expiry = scanned(settings)["Cle RPVA"].readable[0].info.not_after
    late = expiry - dt.timedelta(days=30)
    tokens = scanned(settings, late)
    validator = validator_from_settings(settings)
    statuses = desk.lawyer_status(
        [tokens["Cle RPVA"], tokens["Carte agent"]],
        renewal=settings.renewal,
        validator=validator,
        at=late,
    )
    rpva, _, agent, _ = statuses
    assert (rpva.kind, rpva.lead_days, rpva.margin_days) == ("cle_rpva", 45, 15)
    assert rpva.outlook.days_left == 30
    assert rpva.outlook.order_by == expiry.date() - dt.timedelta(days=60)
    assert rpva.outlook.order_late and rpva.outlook.predicted_gap_days == 15
    assert (agent.kind, agent.lead_days, agent.outlook.predicted_gap_days) == (
        "carte_agent",
        60,
        30,
    )
    # The lists of the test PKI are stale a month before expiry: revocation is unknown.
    assert rpva.status == UNDETERMINED and rpva.revocation == "inconnue"


def test_status_of_valid_and_revoked_certificates(hsm, settings):
    tokens = scanned(settings)
    statuses = desk.lawyer_status(
        [tokens["Cle RPVA"], tokens["Carte revoquee"]],
        renewal=settings.renewal,
        validator=validator_from_settings(settings),
        at=PKI_NOW,
    )
    assert [(s.status, s.revocation) for s in statuses] == [
        (VALID, "non_revoque"),
        (VALID, "non_revoque"),
        (INVALID, "revoque"),
    ]
    assert not statuses[0].outlook.order_late and statuses[0].outlook.predicted_gap_days == 0
    assert desk.worst_status(s.status for s in statuses) == INVALID
    assert desk.worst_status([VALID, UNDETERMINED]) == UNDETERMINED
    assert desk.worst_status([]) == VALID


def test_without_anchors_nothing_is_called_valid(hsm, trust_files):
    bare = Settings()  # no [trust] anchors
    validator = validator_from_settings(bare)
    found = desk.scan_cards(bare, modules=[SOFTHSM_MODULE], validator=validator, at=PKI_NOW)
    agent = next(t for t in found.tokens if t.token.label.startswith("Carte agent"))
    (status, _) = desk.lawyer_status([agent], renewal=bare.renewal, validator=validator, at=PKI_NOW)
    assert status.status == UNDETERMINED
    assert [r.code for r in status.reasons] == ["confiance_absente"]
    assert status.revocation == "inconnue"
    # No anchor names the kind: the self-check is the lawyers' tool, an RPVA key's lead time.
    assert (status.kind, status.lead_days) == ("cle_rpva", 45)


# The inventory ----------------------------------------------------------------------------


def _set_serial(engine, credential_id: int, serial: str | None) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE credential SET serial = :serial WHERE id = :id"),
            {"serial": serial, "id": credential_id},
        )


def test_match_by_fingerprint_then_serial_then_holder(
    database, clock, settings, inventory_holder, hsm
):
    engine, now = database.engine, clock.now()
    rpva = scanned(settings)["Cle RPVA"]
    serial = rpva.token.serial.upper()
    someone, other = add_credential(engine, now), add_credential(engine, now)

    def matched():
        return desk.match_and_register(engine, rpva, operator_login="gestion", now=now).match

    # Another holder's credential carries the token's serial number: it wins over the e-mail.
    _set_serial(engine, someone, serial)
    found = matched()
    assert (found.by, found.credential_id) == ("numero_serie", someone)
    assert found.holder_id != inventory_holder
    # Without it, the holder is known by the e-mail address of the certificate.
    _set_serial(engine, someone, "AUTRE-1")
    found = matched()
    assert (found.by, found.credential_id, found.holder_id) == ("email", None, inventory_holder)
    outcome = desk.match_and_register(
        engine, rpva, operator_login="gestion", register=True, now=now
    )
    assert outcome.refused is None and outcome.registration is not None
    registration = outcome.registration
    assert (registration.created, registration.state, registration.handover) == (
        True,
        CredentialState.RECEIVED,
        None,
    )
    # Once registered, the certificates' fingerprints win over another card's serial number.
    _set_serial(engine, registration.credential_id, None)
    _set_serial(engine, other, serial)
    found = matched()
    assert (found.by, found.credential_id) == ("empreinte", registration.credential_id)


def test_a_token_without_readable_certificates_is_never_registered(
    database, clock, settings, inventory_holder, hsm
):
    rpva = scanned(settings)["Cle RPVA"]
    bare = dataclasses.replace(rpva, certificates=())
    outcome = desk.match_and_register(
        database.engine, bare, operator_login="gestion", register=True, now=clock.now()
    )
    assert outcome.match.by is None
    assert (outcome.registration, outcome.refused) == (None, None)


def test_a_refused_registration_says_why(database, clock, settings, hsm):
    agent = scanned(settings)["Carte agent"]
    outcome = desk.match_and_register(
        database.engine, agent, operator_login="gestion", register=True, now=clock.now()
    )
    assert outcome.registration is None
    assert outcome.refused is not None and outcome.refused.code == "titulaire_carte_inconnu"


# Proof of possession ----------------------------------------------------------------------


def test_proof_of_possession(hsm, settings):
    tokens = scanned(settings)
    rpva = tokens["Cle RPVA"]
    proofs = [desk.prove(rpva, certificate, PIN) for certificate in rpva.certificates]
    assert [p.proven for p in proofs] == [True, True]
    wrong = desk.prove(rpva, rpva.certificates[0], "0000")
    assert (wrong.proven, wrong.error) == (False, "pin_incorrect")
    assert PIN not in repr(proofs) + repr(wrong)
    empty = tokens["Objet vide"]
    assert desk.prove(empty, empty.certificates[0], "1234") is None
