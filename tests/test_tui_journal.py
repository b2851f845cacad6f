"""The « Journal » screen: entries a page at a time, the newest first, narrowed by
filters; the verification of the chain, intact and after tampering."""

from __future__ import annotations

import sqlalchemy as sa
from textual.widgets import DataTable, Input, Select, Static

from cartes.tui.app import build_app
from cartes.tui.screens import journal as journal_screen
from cartes.tui.screens.journal import JournalScreen
from inventaire import db, lifecycle
from inventaire.models import CredentialState, JournalEntry
from tests.conftest import NOW, get_operator
from tests.factories import add_rpva
from tests.tui_support import notifications, settle


def fill(engine, count: int = 3) -> list[int]:
    """``count`` credentials, each suspended by ``gestion``: entries of two operators."""
    ids = []
    for number in range(count):
        credential_id = add_rpva(engine, number)
        with db.write_session(engine) as session:
            lifecycle.transition(
                session,
                credential_id=credential_id,
                target=CredentialState.SUSPENDED,
                operator=get_operator(engine, "gestion"),
                reason="oubliée",
                now=NOW,
            )
        ids.append(credential_id)
    return ids


def all_seqs(engine, **where) -> list[int]:
    with db.read_session(engine) as session:
        query = sa.select(JournalEntry.seq).order_by(JournalEntry.seq.desc())
        for name, value in where.items():
            query = query.where(getattr(JournalEntry, name) == value)
        return list(session.execute(query).scalars())


def shown_seqs(app) -> list[int]:
    table = app.screen.query_one("#entries", DataTable)
    return [int(str(table.get_row_at(row)[0])) for row in range(table.row_count)]


def shown_rows(app) -> list[list[str]]:
    table = app.screen.query_one("#entries", DataTable)
    return [[str(cell) for cell in table.get_row_at(row)] for row in range(table.row_count)]


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def type_filter(pilot, field: str, value: str) -> None:
    """Type a filter and press Enter (typed filters also apply after a short pause)."""
    box = pilot.app.screen.query_one(f"#{field}", Input)
    box.value = value
    box.focus()
    await pilot.press("enter")
    await settle(pilot)


async def test_entries_newest_first_and_filters_narrow_them(tui_workspace):
    workspace = tui_workspace(login="lecture")
    engine = workspace.engine
    credentials = fill(engine)
    app = build_app(workspace, start="journal")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, JournalScreen)
        assert shown_seqs(app) == all_seqs(engine)  # fewer than a page: all, newest first
        await type_filter(pilot, "operator", "gestion")
        assert shown_seqs(app) == all_seqs(engine, operator="gestion")
        assert len(shown_seqs(app)) == 3
        app.screen.query_one("#action", Select).value = "support.transition"
        await settle(pilot)
        assert shown_seqs(app) == all_seqs(engine, action="support.transition")
        app.screen.query_one("#entity-type", Select).value = "credential"
        await type_filter(pilot, "entity-id", str(credentials[1]))
        [only] = shown_seqs(app)
        assert only == all_seqs(engine, action="support.transition", entity_id=credentials[1])[0]
        detail = text_of(app, "#entry-detail")
        assert f"Entrée n°{only}" in detail and "motif : oubliée" in detail, detail
        assert "état : active → suspendue" in detail, detail
        assert "changement d'état" in [row[3] for row in shown_rows(app)]
        # A day with nothing in it; then a bad date, said and not applied.
        await type_filter(pilot, "since", "27/11/2026")
        assert shown_seqs(app) == []
        assert "Aucune entrée" in text_of(app, "#entries-more")
        await type_filter(pilot, "since", "32/13/2026")
        assert "Date de début invalide" in text_of(app, "#filter-problem")
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert shown_seqs(app) == all_seqs(engine)
        assert app.screen.query_one("#action", Select).value is Select.NULL


async def test_a_large_journal_is_read_a_page_at_a_time(tui_workspace, monkeypatch):
    monkeypatch.setattr(journal_screen, "PAGE", 5)
    workspace = tui_workspace()
    engine = workspace.engine
    fill(engine, 4)
    every = all_seqs(engine)
    assert len(every) > 10
    app = build_app(workspace, start="journal")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert shown_seqs(app) == every[:5]
        assert "la suite se charge" in text_of(app, "#entries-more")
        table = app.screen.query_one("#entries", DataTable)
        table.focus()
        for _ in range(4):
            await pilot.press("down")
        await settle(pilot)
        assert shown_seqs(app) == every[:10]  # the next page, read when reached
        for _ in range(len(every) // 5 + 1):
            await pilot.press("ctrl+end")
            await settle(pilot)
        assert shown_seqs(app) == every
        assert text_of(app, "#entries-more") == f"{len(every)} entrées."


TRIGGERS = ["DROP TRIGGER journal_entry_no_update", "DROP TRIGGER journal_entry_no_delete"]


async def test_verification_intact_then_broken_at_the_altered_entry(tui_workspace):
    workspace = tui_workspace(login="lecture")
    engine = workspace.engine
    fill(engine)
    head = all_seqs(engine)[0]
    app = build_app(workspace, start="journal")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert f"tête : n°{head}" in text_of(app, "#verification")
        await pilot.press("v")
        await settle(pilot)
        text = text_of(app, "#verification")
        assert text.startswith("Journal intact") and f"{head} entrées vérifiées" in text, text
        # An intruder with write access to the database file alters entry 7.
        with engine.begin() as connection:
            for statement in [*TRIGGERS, "UPDATE journal_entry SET reason = 'rien' WHERE seq = 7"]:
                connection.exec_driver_sql(statement)
        await pilot.press("v")
        await settle(pilot)
        text = text_of(app, "#verification")
        assert text.startswith("Journal altéré") and "entrée n°7" in text, text
        assert "6 entrées correctes" in text
        assert any("entrée n°7" in note for note in notifications(app))


async def test_a_database_gone_is_a_notification(tui_workspace, tmp_path):
    workspace = tui_workspace()
    app = build_app(workspace, start="journal")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        workspace.close()
        workspace.settings.database_url = f"sqlite:///{tmp_path}/absent/cartes.db"
        await pilot.press("v")
        await settle(pilot)
        assert app.is_running
        assert any("base" in text.lower() for text in notifications(app)), notifications(app)
        assert not app.screen.query_one("#verify-progress").has_class("running")


def test_snapshot(snap_compare, tui_workspace):
    workspace = tui_workspace(login="lecture")
    fill(workspace.engine)

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False

    assert snap_compare(
        build_app(workspace, start="journal"), terminal_size=(80, 24), run_before=run_before
    )
