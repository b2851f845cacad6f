"""The record (« fiche ») of one credential in the terminal UI: what it shows, its
actions through their forms, refusals, a concurrent change, revalidation with a real
test PKI, and snapshots at 80×24 and 160×50."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from textual.widgets import Button, Input, OptionList, Static

from cartes.ops import records
from cartes.settings import TrustSettings
from cartes.tui.app import build_app
from cartes.tui.screens.record import RecordScreen
from cartes.tui.widgets.forms import ReasonForm
from cartes.tui.widgets.record_forms import ReceiveForm, TransitionForm
from fixtures.pki import write_test_pki
from inventaire import credentials, db, lifecycle, organisations
from inventaire.enums import CertificateRole, CredentialKind, CredentialState, HolderRole
from inventaire.models import AlertMute, Certificate
from tests.conftest import NOW, get_operator
from tests.factories import add_credential, credential_state, journal_count
from tests.tui_support import notifications, settle

S = CredentialState


def text(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def fixed_credential(engine, *, expires_in: int = 40, certificate: bool = True) -> int:
    """Hélène Dubois's RPVA key (fixed names, for snapshots), expiring in ``expires_in``
    days, with one certificate validated at NOW."""
    with db.write_session(engine) as session:
        admin = get_operator(engine, "admin")
        holder = credentials.create_holder(
            session,
            last_name="Dubois",
            first_name="Hélène",
            email="helene.dubois@avocats-angers.fr",
            role=HolderRole.LAWYER,
            organisation_id=organisations.find(session, "Barreau d'Angers").id,  # type: ignore[arg-type]
            operator=admin,
            now=NOW,
        )
        credential = credentials.create_credential(
            session,
            holder_id=holder.id,  # type: ignore[arg-type]
            kind=CredentialKind.RPVA_KEY,
            state=S.ACTIVE,
            serial="RPVA-004217",
            model=None,
            expires_on=NOW.date() + dt.timedelta(days=expires_in),
            operator=admin,
            now=NOW,
        )
        if certificate:
            session.add(
                Certificate(
                    credential_id=credential.id,  # type: ignore[arg-type]
                    der=b"not a certificate",
                    fingerprint_sha256=hashlib.sha256(b"dubois").hexdigest(),
                    issuer="CN=AC Avocats (TEST)",
                    serial_number="1A2B",
                    subject="CN=Hélène Dubois, O=Barreau d'Angers",
                    not_before=NOW - dt.timedelta(days=1055),
                    not_after=NOW + dt.timedelta(days=expires_in),
                    role=CertificateRole.AUTHENTICATION,
                    last_status="valide",
                    last_validated_at=NOW,
                )
            )
        assert credential.id is not None
        return credential.id


async def test_the_record_shows_holder_state_expiry_and_order_by(tui_workspace):
    workspace = tui_workspace()
    credential_id = fixed_credential(workspace.engine)
    app = build_app(workspace, start="inventaire", record_id=credential_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, RecordScreen)
        assert "Hélène Dubois" in text(app, "#headline")
        assert "active" in text(app, "#headline")
        assert "helene.dubois@avocats-angers.fr" in text(app, "#holder")
        assert "Barreau d'Angers" in text(app, "#holder")
        assert "Expiration : 05/01/2027 (dans 40 jours)" in text(app, "#credential")
        # RPVA: 45 days of lead time and the margin: the order-by date is passed, and a
        # key ordered today arrives after the expiry.
        renewal = text(app, "#renewal")
        assert "Commander avant le : " in renewal and "dépassée" in renewal
        assert "Rupture prévue : 5 jours" in renewal
        assert app.screen.query_one("#renewal").has_class("urgency-gap")
        assert "Authentification : valide le 26/11/2026 10:30" in text(app, "#certificates")
        assert "titulaire créé" in text(app, "#history")
        await pilot.press("escape")
        await settle(pilot)
        assert type(app.screen).__name__ == "InventoryScreen"


async def test_an_unknown_credential_says_so(tui_workspace):
    app = build_app(tui_workspace(), start="inventaire", record_id=999_999)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "Aucun support n°999999." in text(app, "#problem")
        await pilot.press("t")  # no record, no action: nothing happens
        await settle(pilot)
        assert isinstance(app.screen, RecordScreen)
        assert app.is_running


async def open_transition_form(pilot, app) -> TransitionForm:
    await pilot.press("t")
    await settle(pilot)
    assert isinstance(app.screen, TransitionForm)
    return app.screen


async def test_a_transition_made_through_the_form(tui_workspace):
    workspace = tui_workspace(login="gestion")
    credential_id = add_credential(workspace.engine, NOW)
    app = build_app(workspace, start="inventaire", record_id=credential_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        form = await open_transition_form(pilot, app)
        targets = form.query_one("#targets", OptionList)
        offered = [targets.get_option_at_index(i).id for i in range(targets.option_count)]
        assert set(offered) == {state.value for state in lifecycle.TRANSITIONS[S.ACTIVE]}
        assert targets.get_option_at_index(targets.highlighted).id == "SUSPENDED"
        await pilot.press("enter")  # choose: on to the reason
        await pilot.press(*"perdue au palais")
        await pilot.press("enter")
        await settle(pilot)

        assert isinstance(app.screen, RecordScreen)
        assert credential_state(workspace.engine, credential_id) == (S.SUSPENDED, 2)
        assert "suspendue" in text(app, "#headline")
        history = text(app, "#history").splitlines()
        assert "changement d'état" in history[0] and "perdue au palais" in history[0]
        assert "état : active → suspendue" in history[0]
        assert any("active → suspendue" in n for n in notifications(app))


async def test_the_form_refuses_an_empty_reason(tui_workspace):
    workspace = tui_workspace()
    credential_id = add_credential(workspace.engine, NOW)
    entries = journal_count(workspace.engine)
    app = build_app(workspace, start="inventaire", record_id=credential_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        form = await open_transition_form(pilot, app)
        await pilot.press("enter")
        await pilot.press(*"   ")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is form
        assert "motif" in str(form.query_one("#error", Static).render())
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, RecordScreen)
    assert credential_state(workspace.engine, credential_id) == (S.ACTIVE, 1)
    assert journal_count(workspace.engine) == entries


async def test_a_reader_sees_the_actions_disabled_with_the_reason(tui_workspace):
    workspace = tui_workspace(login="lecture")
    credential_id = add_credential(workspace.engine, NOW)
    app = build_app(workspace, start="inventaire", record_id=credential_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        buttons = list(app.screen.query("#actions Button").results(Button))
        assert buttons and all(button.disabled for button in buttons)
        reasons = [str(s.render()) for s in app.screen.query("#actions .disabled-reason")]
        assert all("gestionnaire" in reason for reason in reasons), reasons
        await pilot.press("t")
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, RecordScreen)  # no form opened
        said = notifications(app)
        assert len(said) == 2 and all("gestionnaire" in n for n in said), said
    assert credential_state(workspace.engine, credential_id) == (S.ACTIVE, 1)


async def test_a_change_made_elsewhere_before_confirming_is_refused(tui_workspace):
    workspace = tui_workspace()
    credential_id = add_credential(workspace.engine, NOW)
    app = build_app(workspace, start="inventaire", record_id=credential_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await open_transition_form(pilot, app)
        await pilot.press("enter")
        await pilot.press(*"carte suspendue")
        # Meanwhile, another operator declares the card lost.
        with db.write_session(workspace.engine) as session:
            lifecycle.transition(
                session,
                credential_id=credential_id,
                target=S.LOST,
                operator=get_operator(workspace.engine, "gestion"),
                reason="perdue",
                now=NOW,
            )
        entries = journal_count(workspace.engine)
        await pilot.press("enter")
        await settle(pilot)

        assert any("modifié par ailleurs" in n for n in notifications(app)), notifications(app)
        assert credential_state(workspace.engine, credential_id) == (S.LOST, 2)
        assert journal_count(workspace.engine) == entries
        assert "perdue" in text(app, "#headline")  # read again: the state as it is now
        assert app.is_running


async def test_alerts_muted_with_a_reason(tui_workspace):
    workspace = tui_workspace(login="gestion")
    credential_id = add_credential(workspace.engine, NOW)
    app = build_app(workspace, start="inventaire", record_id=credential_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, ReasonForm)
        await pilot.press("enter")  # no reason: refused by the form
        assert isinstance(app.screen, ReasonForm)
        await pilot.press(*"depart en retraite")
        await pilot.press("enter")
        await settle(pilot)
        assert "Alertes coupées" in text(app, "#renewal")
        assert "depart en retraite" in text(app, "#renewal")
        assert "alertes coupées" in text(app, "#history").splitlines()[0]
    with db.read_session(workspace.engine) as session:
        mute = session.get(AlertMute, credential_id)
        assert mute is not None and mute.reason == "depart en retraite"


async def test_a_request_is_received_through_its_form(tui_workspace):
    workspace = tui_workspace(login="gestion")
    old_id = add_credential(workspace.engine, NOW)
    request_id = records.order_replacement(workspace, old_id, reason="renouvellement")
    app = build_app(workspace, start="inventaire", record_id=request_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        labels = [str(b.label) for b in app.screen.query("#actions Button").results(Button)]
        assert labels == ["Réceptionner la demande (e)", "Annuler la demande (a)", labels[2]]
        await pilot.press("e")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, ReceiveForm)
        assert form.query_one("#day", Input).value == "26/11/2026"  # today by default
        await pilot.press(*"rpva-9001")
        await pilot.press("tab", "tab")
        await pilot.press(*"colis du jour")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RecordScreen)
        assert "N° de série : RPVA-9001" in text(app, "#credential")
        assert any("n° de série RPVA-9001" in n for n in notifications(app))
    assert credential_state(workspace.engine, request_id)[0] is S.RECEIVED


@pytest.fixture(scope="module")
def pki_files(test_pki, tmp_path_factory) -> dict[str, Path]:
    return write_test_pki(test_pki, tmp_path_factory.mktemp("record-pki"))


async def test_revalidation_shows_the_new_statuses(tui_workspace, pki_files, tmp_path):
    from tests.test_service import der

    families = ("agent", "expert", "avocat")
    trust = TrustSettings(
        agent_card=[pki_files["agent-racine.pem"]],
        expert_card=[pki_files["expert-racine.pem"]],
        rpva_key=[pki_files["avocat-racine.pem"]],
        intermediates=[pki_files[f"{f}-emettrice.pem"] for f in families],
        crls=[pki_files[f"{name}.crl"] for f in families for name in (f, f"{f}_racine")],
        crl_cache_dir=tmp_path / "lcr",
    )
    workspace = tui_workspace(login="lecture", trust=trust)
    credential_id = add_credential(workspace.engine, NOW)
    with db.write_session(workspace.engine) as session:
        for role, name in (
            (CertificateRole.AUTHENTICATION, "avocat-1-auth.pem"),
            (CertificateRole.SIGNATURE, "cas-revoque.pem"),
        ):
            content = der(pki_files, name)
            session.add(
                Certificate(
                    credential_id=credential_id,
                    der=content,
                    fingerprint_sha256=hashlib.sha256(content).hexdigest(),
                    issuer="CN=test",
                    serial_number=name,
                    subject=f"CN={name}",
                    not_before=NOW - dt.timedelta(days=30),
                    not_after=NOW + dt.timedelta(days=300),
                    role=role,
                )
            )
    app = build_app(workspace, start="inventaire", record_id=credential_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert text(app, "#certificates").count("jamais validé") == 2
        await pilot.press("v")
        await settle(pilot)
        shown = text(app, "#certificates")
        assert "Authentification : valide le 26/11/2026 10:30" in shown
        assert "Signature : invalide le 26/11/2026 10:30" in shown
        assert any("valides : 1, invalides : 1" in n for n in notifications(app))


async def test_revalidation_without_trust_settings_is_a_notification(tui_workspace):
    workspace = tui_workspace()
    credential_id = fixed_credential(workspace.engine)
    app = build_app(workspace, start="inventaire", record_id=credential_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        assert any("ancre de confiance" in n for n in notifications(app)), notifications(app)
        assert "valide le 26/11/2026 10:30" in text(app, "#certificates")  # unchanged
        assert app.is_running


async def test_a_database_gone_is_a_notification(tui_workspace, tui_database_url):
    workspace = tui_workspace()
    credential_id = fixed_credential(workspace.engine)
    app = build_app(workspace, start="inventaire", record_id=credential_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        workspace.close()
        Path(tui_database_url.removeprefix("sqlite:///")).unlink()
        await pilot.press("r")
        await settle(pilot)
        assert app.is_running
        assert "base" in text(app, "#problem").lower() or any(
            "base" in n.lower() for n in notifications(app)
        )


# Snapshots -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_snapshot_of_a_record(snap_compare, tui_workspace, size):
    workspace = tui_workspace(login="gestion")
    credential_id = fixed_credential(workspace.engine)
    records.mute(workspace, credential_id, "titulaire en congé jusqu'en janvier")
    app = build_app(workspace, start="inventaire", record_id=credential_id)
    assert snap_compare(app, terminal_size=size, run_before=settle)
