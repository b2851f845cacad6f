"""The « Alertes » screen: the outbox and its states, the preview, sending now to a real
SMTP server (aiosmtpd on 127.0.0.1) with the server up and down, a test mail, muting."""

from __future__ import annotations

import sqlalchemy as sa
from textual.widgets import Button, DataTable, Input, Static, Tabs

from cartes.tui.app import build_app
from cartes.tui.screens.alerts import AlertsScreen
from cartes.tui.widgets.alert_forms import MuteForm, ProbeForm
from inventaire import db
from inventaire.enums import DigestState
from inventaire.models import AlertMute, Digest, JournalEntry
from tests.conftest import NOW
from tests.factories import add_rpva
from tests.tui_support import notifications, settle

TODAY = NOW.date()
BAR = "ordre@avocats.test"


def make_workspace(tui_workspace, server, login: str = "gestion"):
    return tui_workspace(
        login=login, smtp=server.settings(), alerts={"copies": {"rpva_key": [BAR]}}
    )


def digest_states(engine) -> dict[str, DigestState]:
    with db.read_session(engine) as session:
        rows = session.execute(sa.select(Digest.recipient, Digest.state)).all()
    return {recipient: DigestState(state) for recipient, state in rows}


def cells(app, table_id: str) -> list[list[str]]:
    table = app.screen.query_one(table_id, DataTable)
    return [[str(cell) for cell in table.get_row_at(row)] for row in range(table.row_count)]


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_send_now_mails_everything_and_the_outbox_shows_it_sent(tui_workspace, smtp_server):
    workspace = make_workspace(tui_workspace, smtp_server)
    engine = workspace.engine
    first_number, second_number = 1, 2
    add_rpva(engine, first_number, expires_in_days=20)
    add_rpva(engine, second_number, expires_in_days=30)
    app = build_app(workspace, start="alertes")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
        assert cells(app, "#outbox") == []
        assert "Aucun courriel" in text_of(app, "#outbox-more")
        await pilot.press("e")
        await settle(pilot)
        received = smtp_server.wait_for(3)
        assert sorted(mail.rcpt_tos[0] for mail in received) == sorted(
            [f"claire.avocat{n}@example.fr" for n in (first_number, second_number)] + [BAR]
        )
        assert set(digest_states(engine).values()) == {DigestState.SENT}
        rows = cells(app, "#outbox")
        assert len(rows) == 3 and {row[2] for row in rows} == {"envoyée"}
        tabs = app.screen.query_one("#states", Tabs)
        assert str(tabs.query_one("#sent").label) == "Envoyés (3)"
        assert any("Courriels envoyés : 3" in text for text in notifications(app))
        # The progress line is gone once the send is over; the button is back.
        assert not app.screen.query_one("#progress").has_class("sending")
        assert not app.screen.query_one("#send", Button).disabled
        # The "pending" view narrows the list: nothing is left.
        tabs.active = "pending"
        await settle(pilot)
        assert cells(app, "#outbox") == []


async def test_smtp_server_down_is_a_notification_and_nothing_is_lost(tui_workspace, smtp_server):
    workspace = make_workspace(tui_workspace, smtp_server)
    engine = workspace.engine
    add_rpva(engine, 3, expires_in_days=20)
    smtp_server.stop()
    app = build_app(workspace, start="alertes")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        assert app.is_running
        texts = notifications(app)
        assert any("Envoi interrompu" in text and "Rien n'est perdu" in text for text in texts)
        assert set(digest_states(engine).values()) == {DigestState.PENDING}
        rows = cells(app, "#outbox")
        assert {row[2] for row in rows} == {"en attente"}
        assert any(row[5] for row in rows)  # the server's problem is shown
        # The app still answers, and a later send goes through.
        smtp_server.start()
        await pilot.press("p")
        await settle(pilot)
        assert app.screen.query_one("#panes").active == "preview-pane"
    assert smtp_server.messages == []


async def test_preview_shows_the_mails_and_records_nothing(tui_workspace, smtp_server):
    workspace = make_workspace(tui_workspace, smtp_server, login="lecture")
    engine = workspace.engine
    add_rpva(engine, 4, expires_in_days=20)
    app = build_app(workspace, start="alertes")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        summary = text_of(app, "#preview-summary")
        assert "2 courriels à envoyer le 26/11/2026 (2 alertes)" in summary, summary
        rows = cells(app, "#preview-mails")
        assert {row[0] for row in rows} >= {BAR}
        text = text_of(app, "#preview-text")
        assert text.startswith("À : ") and "Objet : " in text
        assert "clé RPVA" in text or "RPVA" in text, text
        # A reader may look but not send.
        assert app.screen.query_one("#send", Button).disabled
        assert "gestionnaire" in text_of(app, "#refusal")
        await pilot.press("e")
        await settle(pilot)
        assert any("gestionnaire" in text for text in notifications(app))
    with db.read_session(engine) as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Digest)).scalar_one() == 0
    assert smtp_server.messages == []


async def test_a_test_mail_arrives(tui_workspace, smtp_server):
    app = build_app(make_workspace(tui_workspace, smtp_server), start="alertes")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("t")
        await settle(pilot)
        assert isinstance(app.screen, ProbeForm)
        app.screen.query_one("#address", Input).value = "sar@justice.test"
        await pilot.click("#confirm")
        await settle(pilot)
        [received] = smtp_server.wait_for(1)
        assert received.rcpt_tos == ("sar@justice.test",)
        assert received.message["Subject"] == "cartes : courriel d'essai"
        assert any("Courriel d'essai accepté" in text for text in notifications(app))
        smtp_server.stop()
        await pilot.press("t")
        await settle(pilot)
        app.screen.query_one("#address", Input).value = "sar@justice.test"
        await pilot.click("#confirm")
        await settle(pilot)
        assert any("Échec du courriel d'essai" in text for text in notifications(app))
        assert app.is_running


async def test_mute_a_credential(tui_workspace, smtp_server):
    workspace = make_workspace(tui_workspace, smtp_server)
    engine = workspace.engine
    credential = add_rpva(engine, 5, expires_in_days=20)
    app = build_app(workspace, start="alertes")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, MuteForm)
        app.screen.query_one("#credential", Input).value = str(credential)
        await pilot.click("#confirm")
        await settle(pilot)
        assert "motif" in text_of(app, "#error")  # the reason is mandatory
        app.screen.query_one("#reason", Input).value = "titulaire parti à la retraite"
        await pilot.click("#confirm")
        await settle(pilot)
        assert isinstance(app.screen, AlertsScreen)
        await pilot.press("p")
        await settle(pilot)
        assert "Aucun courriel à envoyer" in text_of(app, "#preview-summary")
    with db.read_session(engine) as session:
        mute = session.get(AlertMute, credential)
        assert mute is not None and mute.reason == "titulaire parti à la retraite"
        entry = session.execute(
            sa.select(JournalEntry).order_by(JournalEntry.seq.desc()).limit(1)
        ).scalar_one()
        assert (entry.action, entry.entity_id) == ("support.alertes_coupees", credential)


async def test_mute_an_unknown_credential_is_refused(tui_workspace, smtp_server):
    app = build_app(make_workspace(tui_workspace, smtp_server), start="alertes")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        app.screen.query_one("#credential", Input).value = "999"
        app.screen.query_one("#reason", Input).value = "essai"
        await pilot.click("#confirm")
        await settle(pilot)
        assert any("Aucun support n°999" in text for text in notifications(app))


def test_snapshot(snap_compare, tui_workspace, smtp_server):
    workspace = make_workspace(tui_workspace, smtp_server)
    engine = workspace.engine
    add_rpva(engine, 1, expires_in_days=20)
    add_rpva(engine, 2, expires_in_days=30)
    from cartes import dispatch

    smtp_server.refuse(BAR, 550, "5.1.1 Boîte inconnue")
    dispatch.plan_and_send(engine, workspace.settings, now=NOW)

    async def run_before(pilot):
        await settle(pilot)

    assert snap_compare(
        build_app(workspace, start="alertes"), terminal_size=(80, 24), run_before=run_before
    )


def test_snapshot_preview(snap_compare, tui_workspace, smtp_server):
    workspace = make_workspace(tui_workspace, smtp_server, login="lecture")
    add_rpva(workspace.engine, 1, expires_in_days=20)

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)

    assert snap_compare(
        build_app(workspace, start="alertes"), terminal_size=(80, 24), run_before=run_before
    )
