"""The « Urgences » screen: issuing an emergency card through the form, the register and
its views, taking a card back, and what an operator without the right sees."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from textual.widgets import Button, DataTable, Input, Select, Static, Tabs

from cartes.tui.app import build_app
from cartes.tui.screens.emergency import EmergencyScreen
from cartes.tui.widgets.emergency_form import WITHOUT_REQUEST, EmergencyForm
from inventaire import credentials, db, emergency, operators, organisations
from inventaire.enums import CardModel, CredentialKind, CredentialState, HolderRole
from inventaire.models import Credential, EmergencyIssuance, JournalEntry
from tests.conftest import NOW
from tests.tui_support import notifications, settle

S = CredentialState
JUDGE = "juliette.bernard@justice.fr"


def make_holder(engine, email: str = JUDGE, last_name: str = "Bernard") -> int:
    with db.write_session(engine) as session:
        admin = operators.find(session, "admin")
        holder = credentials.create_holder(
            session,
            last_name=last_name,
            first_name="Juliette",
            email=email,
            role=HolderRole.MAGISTRATE,
            organisation_id=organisations.find(session, "TJ Angers").id,
            operator=admin,
            now=NOW,
        )
        return holder.id


def make_request(engine, holder_id: int) -> int:
    with db.write_session(engine) as session:
        admin = operators.find(session, "admin")
        credential = credentials.create_credential(
            session,
            holder_id=holder_id,
            kind=CredentialKind.AGENT_CARD,
            state=S.REQUESTED,
            model=CardModel.NEW,
            operator=admin,
            now=NOW,
        )
        return credential.id


def issue_directly(engine, email: str, serial: str, *, due: dt.date | None = None, now=NOW):
    with db.write_session(engine) as session:
        issuer = operators.find(session, "remise")
        return emergency.issue(
            session,
            holder_email=email,
            serial=serial,
            reason="carte oubliée",
            without_request=True,
            return_due_on=due,
            return_after_days=30,
            operator=issuer,
            now=now,
        ).id


def issuances(engine) -> list[EmergencyIssuance]:
    with db.read_session(engine) as session:
        return list(session.execute(sa.select(EmergencyIssuance)).scalars())


def table_cells(app) -> list[list[str]]:
    table = app.screen.query_one("#register", DataTable)
    return [[str(cell) for cell in table.get_row_at(row)] for row in range(table.row_count)]


async def fill_form(pilot, **values: str) -> None:
    form = pilot.app.screen
    assert isinstance(form, EmergencyForm)
    for field, value in values.items():
        form.query_one(f"#{field}", Input).value = value
    await settle(pilot)


async def test_issue_through_the_form_then_give_back(tui_workspace):
    workspace = tui_workspace(login="remise")
    engine = workspace.engine
    holder = make_holder(engine)
    request = make_request(engine, holder)
    app = build_app(workspace, start="urgences")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, EmergencyScreen)
        assert "Aucune carte d'urgence en circulation" in str(
            app.screen.query_one("#detail", Static).render()
        )
        await pilot.press("n")
        await settle(pilot)
        await fill_form(pilot, holder=JUDGE)
        form = app.screen
        info = str(form.query_one("#holder-info", Static).render())
        assert "Juliette Bernard" in info and "TJ Angers" in info, info
        assert form.query_one("#request", Select).value == request  # the only pending one
        await fill_form(pilot, serial="old-0042", reason="nouvelle carte en retard")
        await pilot.click("#issue")
        await settle(pilot)
        assert isinstance(app.screen, EmergencyScreen)
        [issued] = issuances(engine)
        assert issued.request_id == request and issued.issued_by == "remise"
        assert issued.return_due_on == dt.date(2027, 2, 24)  # 90 days by default
        rows = table_cells(app)
        assert [row[0] for row in rows] == [str(issued.id)]
        assert rows[0][1] == "Juliette Bernard" and rows[0][3] == "OLD-0042"
        assert rows[0][-1] == "en circulation"
        assert any("OLD-0042" in text for text in notifications(app))
        # Enter opens the card's record; Escape comes back.
        app.screen.query_one("#register", DataTable).focus()
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "RecordScreen"
        assert app.screen.credential_id == issued.credential_id
        app.pop_screen()
        await settle(pilot)
        assert isinstance(app.screen, EmergencyScreen)

        await pilot.press("r")
        await settle(pilot)
        reason = app.screen.query_one("#reason", Input)
        reason.value = "rendue au guichet du SAR"
        await pilot.click("#confirm")
        await settle(pilot)
        assert isinstance(app.screen, EmergencyScreen)
        assert table_cells(app) == []  # no longer outstanding
        tabs = app.screen.query_one("#views", Tabs)
        assert "En circulation (0)" in str(tabs.query_one("#outstanding").label)
        assert "Toutes (1)" in str(tabs.query_one("#all").label)
    with db.read_session(engine) as session:
        card = session.get(Credential, issued.credential_id)
        assert card.state is S.RETURNED
        actions = [
            (entry.action, entry.reason)
            for entry in session.execute(
                sa.select(JournalEntry).where(JournalEntry.entity_id == card.id)
            ).scalars()
        ]
    assert ("urgence.emission", "nouvelle carte en retard") in actions
    assert ("urgence.restitution", "rendue au guichet du SAR") in actions


async def test_a_refusal_is_shown_and_nothing_is_written(tui_workspace):
    workspace = tui_workspace(login="remise")
    engine = workspace.engine
    make_holder(engine)
    issue_directly(engine, JUDGE, "OLD-1")
    app = build_app(workspace, start="urgences")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        await fill_form(pilot, holder=JUDGE, serial="OLD-2", reason="encore")
        app.screen.query_one("#request", Select).value = WITHOUT_REQUEST
        await pilot.click("#issue")
        await settle(pilot)
        assert isinstance(app.screen, EmergencyForm)  # the form stays, with the reason
        error = str(app.screen.query_one("#error", Static).render())
        assert "déjà une carte d'urgence en circulation" in error, error
        assert any("déjà une carte d'urgence" in text for text in notifications(app))
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, EmergencyScreen)
    assert len(issuances(engine)) == 1


async def test_the_form_asks_for_what_is_missing(tui_workspace):
    workspace = tui_workspace(login="remise")
    make_holder(workspace.engine)
    app = build_app(workspace, start="urgences")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        await fill_form(pilot, holder="personne@nulle.part")
        assert "Aucun titulaire" in str(app.screen.query_one("#holder-info", Static).render())
        await pilot.click("#issue")
        await settle(pilot)
        error = str(app.screen.query_one("#error", Static).render())
        assert "demande en attente" in error
    assert issuances(workspace.engine) == []


async def test_without_the_habilitation_the_form_is_disabled_with_the_reason(tui_workspace):
    app = build_app(tui_workspace(login="gestion"), start="urgences")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.query_one("#issue", Button).disabled
        assert not screen.query_one("#give-back", Button).disabled
        reason = str(screen.query_one("#issue-refusal", Static).render())
        assert "habilité" in reason, reason
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, EmergencyScreen)  # no form
        assert any("habilité" in text for text in notifications(app))


async def test_a_reader_can_neither_issue_nor_take_back(tui_workspace):
    app = build_app(tui_workspace(login="lecture"), start="urgences")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.screen.query_one("#issue", Button).disabled
        assert app.screen.query_one("#give-back", Button).disabled
        assert "gestionnaire" in str(app.screen.query_one("#issue-refusal", Static).render())


async def test_views_of_the_register(tui_workspace):
    workspace = tui_workspace(login="remise")
    engine = workspace.engine
    for number, last_name in enumerate(["Alpha", "Bravo", "Charlie"]):
        make_holder(engine, f"h{number}@justice.fr", last_name)
    long_ago = NOW - dt.timedelta(days=60)
    issue_directly(engine, "h0@justice.fr", "OLD-A", due=dt.date(2026, 11, 1), now=long_ago)
    issue_directly(engine, "h1@justice.fr", "OLD-B")
    returned = issue_directly(engine, "h2@justice.fr", "OLD-C")
    with db.write_session(engine) as session:
        emergency.give_back(
            session, issuance_id=returned, operator=operators.find(session, "remise"), now=NOW
        )
    app = build_app(workspace, start="urgences")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert [row[3] for row in table_cells(app)] == ["OLD-A", "OLD-B"]
        assert table_cells(app)[0][-1] == "en retard"
        tabs = app.screen.query_one("#views", Tabs)
        tabs.active = "overdue"
        await settle(pilot)
        assert [row[3] for row in table_cells(app)] == ["OLD-A"]
        tabs.active = "all"
        await settle(pilot)
        assert [row[-1] for row in table_cells(app)][-1] == "restituée le 26/11/2026"
        # A card already back cannot be returned again: said, nothing written.
        table = app.screen.query_one("#register", DataTable)
        table.focus()
        table.move_cursor(row=2)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, EmergencyScreen)
        assert any("en circulation" in text for text in notifications(app))
        tabs.active = "to-take-back"
        await settle(pilot)
        assert table_cells(app) == []
        assert "Aucune carte d'urgence à récupérer" in str(
            app.screen.query_one("#detail", Static).render()
        )


async def test_a_database_gone_is_a_notification(tui_workspace, tmp_path):
    workspace = tui_workspace(login="remise")
    app = build_app(workspace, start="urgences")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        workspace.close()
        workspace.settings.database_url = f"sqlite:///{tmp_path}/absent/cartes.db"
        await pilot.press("f5")
        await settle(pilot)
        assert app.is_running
        assert any("base" in text.lower() for text in notifications(app)), notifications(app)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_snapshot(snap_compare, tui_workspace, size):
    workspace = tui_workspace(login="gestion")
    engine = workspace.engine
    make_holder(engine, "h0@justice.fr", "Alpha")
    make_holder(engine, "h1@justice.fr", "Bravo")
    long_ago = NOW - dt.timedelta(days=60)
    issue_directly(engine, "h0@justice.fr", "OLD-A", due=dt.date(2026, 11, 1), now=long_ago)
    issue_directly(engine, "h1@justice.fr", "OLD-B")

    async def run_before(pilot):
        await settle(pilot)

    assert snap_compare(
        build_app(workspace, start="urgences"), terminal_size=size, run_before=run_before
    )


def test_snapshot_form(snap_compare, tui_workspace):
    workspace = tui_workspace(login="remise")
    holder = make_holder(workspace.engine)
    make_request(workspace.engine, holder)

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        pilot.app.screen.query_one("#holder", Input).value = JUDGE
        await settle(pilot)
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False

    assert snap_compare(
        build_app(workspace, start="urgences"), terminal_size=(80, 24), run_before=run_before
    )
