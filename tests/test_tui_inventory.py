"""The « Inventaire » screen: paging from SQL, the filter box, filters, sorting, urgency
colours, opening a record, and a database that disappears under it."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from textual.widgets import Input, Select, Static

from cartes.tui.app import build_app
from cartes.tui.screens.inventory import NOTHING_MATCHES, InventoryScreen
from cartes.tui.widgets.paged_table import PagedTable
from inventaire import credentials, db, operators, organisations
from inventaire.browse import Urgency
from inventaire.models import CardModel, CredentialKind, CredentialState, HolderRole
from inventaire.vocabulary import fold
from tests.conftest import NOW
from tests.tui_support import notifications, settle

TODAY = dt.date(2026, 11, 26)  # Paris day of NOW


@dataclass(frozen=True)
class Card:
    last_name: str
    first_name: str
    kind: CredentialKind = CredentialKind.RPVA_KEY
    state: CredentialState = CredentialState.ACTIVE
    expires_in: int | None = 400  # days from TODAY
    organisation: str = "Barreau d'Angers"
    serial: str | None = None
    role: HolderRole = HolderRole.LAWYER


def populate(engine, cards: Iterable[Card], first: int = 1) -> list[int]:
    """One holder and one credential per card, in one transaction; the credential ids.
    Serials and e-mails are numbered from ``first``."""
    ids = []
    with db.write_session(engine) as session:
        admin = operators.find(session, "admin")
        assert admin is not None
        index = organisations.OrganisationIndex.load(session)
        for number, card in enumerate(cards, first):
            organisation = index.get(card.organisation)
            assert organisation is not None, card.organisation
            holder = credentials.create_holder(
                session,
                last_name=card.last_name,
                first_name=card.first_name,
                email=f"{fold(card.first_name)}.{fold(card.last_name)}.{number}@example.fr",
                role=card.role,
                organisation_id=organisation.id,
                operator=admin,
                now=NOW,
            )
            expires = None if card.expires_in is None else TODAY + dt.timedelta(card.expires_in)
            credential = credentials.create_credential(
                session,
                holder_id=holder.id,
                kind=card.kind,
                state=card.state,
                serial=card.serial or f"S{number:05d}",
                model=CardModel.NEW if card.kind is CredentialKind.AGENT_CARD else None,
                expires_on=expires,
                operator=admin,
                now=NOW,
            )
            ids.append(credential.id)
    return ids


# A small inventory whose every row is known: used by the tests and the snapshots.
SAMPLE = (
    Card("Dubois", "Béatrice", expires_in=-3),  # expired in service
    Card("Martin", "Jean", expires_in=20),  # RPVA lead time 45 days: gap certain
    Card("Leroy", "Anne", expires_in=55),  # order-by passed (45 + margin 15 > 55)
    Card("Moreau", "Luc", expires_in=300),
    Card(
        "Petit",
        "Hélène",
        kind=CredentialKind.AGENT_CARD,
        organisation="TJ Angers",
        role=HolderRole.MAGISTRATE,
        expires_in=120,
    ),
    Card(
        "Garnier",
        "Paul",
        kind=CredentialKind.EXPERT_CARD,
        organisation="Compagnie des experts d'Angers",
        role=HolderRole.EXPERT,
        expires_in=30,
    ),
    Card("Roux", "Émile", state=CredentialState.SUSPENDED, expires_in=700),
    Card("Faure", "Inès", state=CredentialState.REVOKED, expires_in=-40),
    Card(
        "Blanc",
        "Chloé",
        kind=CredentialKind.AGENT_CARD,
        state=CredentialState.REQUESTED,
        organisation="TJ Laval",
        role=HolderRole.CLERK,
        expires_in=None,
    ),
    Card(
        "Dubosc",
        "Marc",
        kind=CredentialKind.TEMPORARY_CARD,
        organisation="TJ Saumur",
        role=HolderRole.PARTY,
        expires_in=10,
    ),
)


def table_of(app) -> PagedTable:
    return app.screen.query_one("#table", PagedTable)


def shown_rows(app):
    """The rows loaded in the table, in order (the whole result when it fits a page)."""
    table = table_of(app)
    return [table.row_at(i) for i in range(table.total)]


def status_text(app) -> str:
    return str(app.screen.query_one("#status", Static).render())


async def counted(pilot) -> None:
    """Wait for the count, which starts once the typing has paused."""
    table = table_of(pilot.app)
    for _ in range(100):
        await settle(pilot)
        if table.total_known:
            return
        await pilot.pause(0.05)
    raise AssertionError("le décompte n'est pas venu")


async def type_in_filter(pilot, text: str) -> None:
    if not isinstance(pilot.app.focused, Input):
        await pilot.press("slash")
    for character in text:
        await pilot.press(character if character != " " else "space")
    await pilot.pause(0.1)  # past the debounce
    await settle(pilot)


async def test_lists_every_credential_with_its_columns(tui_workspace):
    workspace = tui_workspace()
    ids = populate(workspace.engine, SAMPLE)
    app = build_app(workspace, start="inventaire")
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, InventoryScreen)
        rows = shown_rows(app)
        assert sorted(row.id for row in rows) == sorted(ids)
        # Sorted by expiry, unknown expiries last.
        expiries = [row.expires_on for row in rows]
        known = [day for day in expiries if day is not None]
        assert known == sorted(known) and expiries[-1] is None
        assert "10 supports" in status_text(app)
        position = [row.last_name for row in rows].index("Dubois")
        line = table_of(app).render_line(1 + position).text
        assert "DUBOIS Béatrice" in line and "clé RPVA" in line and "active" in line
        assert (TODAY - dt.timedelta(days=3)).strftime("%d/%m/%Y") in line


async def test_find_a_holder_without_accents(tui_workspace):
    workspace = tui_workspace()
    populate(workspace.engine, SAMPLE)
    app = build_app(workspace, start="inventaire")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await type_in_filter(pilot, "beatrice")
        rows = shown_rows(app)
        assert [(row.last_name, row.first_name) for row in rows] == [("Dubois", "Béatrice")]
        assert "1 support" in status_text(app)
        # And with the accent, in capitals: the same.
        app.screen.query_one("#text", Input).value = ""
        await type_in_filter(pilot, "BÉATRICE")
        assert [row.first_name for row in shown_rows(app)] == ["Béatrice"]


async def test_enter_opens_the_record_of_the_row(tui_workspace):
    workspace = tui_workspace()
    ids = populate(workspace.engine, SAMPLE)
    app = build_app(workspace, start="inventaire")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await type_in_filter(pilot, "garnier")
        await pilot.press("enter")  # from the filter box: back to the list
        await settle(pilot)
        assert isinstance(app.screen, InventoryScreen)
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "RecordScreen"
        assert app.screen.credential_id == ids[5]


async def test_back_from_a_record_the_cursor_stays_on_its_row(tui_workspace):
    workspace = tui_workspace()
    ids = populate(workspace.engine, SAMPLE)
    app = build_app(workspace, start="inventaire")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("down", "down", "down")
        table = table_of(app)
        chosen = table.cursor_value
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.credential_id == chosen.id in ids
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, InventoryScreen)
        assert table.cursor_row == 3 and table.cursor_value.id == chosen.id
        assert len({generation for generation, _o, _l in table.fetched}) == 2  # read again


async def test_sort_keys_and_direction(tui_workspace):
    workspace = tui_workspace()
    populate(workspace.engine, SAMPLE)
    app = build_app(workspace, start="inventaire")
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await pilot.press("s")  # expiry → holder
        await settle(pilot)
        names = [row.last_name for row in shown_rows(app)]
        assert names == sorted(names)
        assert "titulaire ▲" in table_of(app).render_line(0).text
        await pilot.press("i")
        await settle(pilot)
        assert [row.last_name for row in shown_rows(app)] == sorted(names, reverse=True)
        assert "titulaire ▼" in table_of(app).render_line(0).text
        assert "décroissant" in status_text(app)


async def test_pages_are_read_as_they_come_into_view(tui_workspace):
    workspace = tui_workspace()
    cards = [Card(f"Nom{n:03d}", "Prénom", expires_in=n) for n in range(310)]
    ids = populate(workspace.engine, cards)
    app = build_app(workspace, start="inventaire")
    async with app.run_test(size=(80, 24)) as pilot:
        await counted(pilot)
        table = table_of(app)
        assert table.total == 310 and table.total_known
        assert table.cached_pages == [0]
        assert [offset for _gen, offset, _limit in table.fetched] == [0]
        await pilot.press("pagedown")
        await settle(pilot)
        assert table.cursor_row > 0 and table.cached_pages == [0]  # still in page 0
        await pilot.press("end")
        await settle(pilot)
        assert table.cursor_row == 309
        assert table.cursor_value.id == ids[-1]
        # Only the pages on screen were read: the first, then the last two (rows 294 to
        # 309 are on screen), never the one between.
        assert sorted({offset for _gen, offset, _limit in table.fetched}) == [0, 200, 300]
        visible = table.render_line(table.scrollable_content_region.height - 1).text
        assert "NOM309" in visible
        await pilot.press("home")
        await settle(pilot)
        assert table.cursor_row == 0 and len(table.cached_pages) <= table.cache_pages


async def test_filters_by_kind_state_and_expiry(tui_workspace):
    workspace = tui_workspace()
    populate(workspace.engine, SAMPLE)
    app = build_app(workspace, start="inventaire")
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        screen = app.screen
        screen.query_one("#kind", Select).value = CredentialKind.AGENT_CARD.value
        await settle(pilot)
        assert {row.last_name for row in shown_rows(app)} == {"Petit", "Blanc"}
        screen.query_one("#state", Select).value = "IN_SERVICE"
        await settle(pilot)
        assert [row.last_name for row in shown_rows(app)] == ["Petit"]
        screen.query_one("#kind", Select).value = Select.NULL
        screen.query_one("#state", Select).value = Select.NULL
        screen.query_one("#days", Input).value = "30"
        await pilot.pause(0.1)
        await settle(pilot)
        # Expiring between today and today + 30 days, whatever the state.
        assert [row.last_name for row in shown_rows(app)] == ["Dubosc", "Martin", "Garnier"]
        await pilot.press("escape", "e")  # the state key cycles to « en service »
        await settle(pilot)
        assert screen.query_one("#state", Select).value == "IN_SERVICE"
        assert [row.last_name for row in shown_rows(app)] == ["Dubosc", "Martin", "Garnier"]
        await pilot.press("t", "t")  # kind: carte agent, then carte expert
        await settle(pilot)
        assert screen.query_one("#kind", Select).value == CredentialKind.EXPERT_CARD.value
        assert [row.last_name for row in shown_rows(app)] == ["Garnier"]


async def test_nothing_matches_says_so(tui_workspace):
    workspace = tui_workspace()
    populate(workspace.engine, SAMPLE)
    app = build_app(workspace, start="inventaire")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await type_in_filter(pilot, "zzzz")
        assert table_of(app).total == 0
        empty = app.screen.query_one("#empty", Static)
        assert empty.display and str(empty.render()) == NOTHING_MATCHES
        assert "0 support" in status_text(app)


async def test_rows_are_coloured_by_urgency(tui_workspace):
    workspace = tui_workspace()
    populate(workspace.engine, SAMPLE)
    app = build_app(workspace, start="inventaire")
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        table = table_of(app)
        rows = shown_rows(app)
        urgencies = {row.last_name: row.urgency for row in rows}
        assert urgencies["Dubois"] is Urgency.EXPIRED
        assert urgencies["Martin"] is Urgency.GAP
        assert urgencies["Leroy"] is Urgency.ORDER_LATE
        assert urgencies["Moreau"] is Urgency.NONE
        assert urgencies["Faure"] is Urgency.NONE  # revoked: not in service
        # The theme's error and warning colours, as the table resolves them.
        error = table.get_component_rich_style("paged-table--expired").color.triplet.hex
        warning = table.get_component_rich_style("paged-table--order-late").color.triplet.hex
        assert error != warning
        position = {row.last_name: index for index, row in enumerate(rows)}
        await pilot.press("end")  # the cursor away from the rows looked at
        await settle(pilot)

        def colour(name: str) -> str | None:
            style = table.row_style(position[name])
            return style.color.triplet.hex if style.color else None

        assert colour("Dubois") == error and table.row_style(position["Dubois"]).bold
        assert colour("Martin") == error and not table.row_style(position["Martin"]).bold
        assert colour("Leroy") == warning
        assert colour("Moreau") not in (error, warning)
        assert colour("Faure") not in (error, warning)


async def test_a_vanished_database_is_a_notification(tui_workspace, tmp_path):
    workspace = tui_workspace()
    populate(workspace.engine, SAMPLE)
    path = Path(workspace.settings.database_url.split("///", 1)[1])
    app = build_app(workspace, start="inventaire")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        before = len(notifications(app))
        os.remove(path)
        await type_in_filter(pilot, "martin")
        assert app.is_running
        texts = notifications(app)[before:]
        assert texts and "base" in " ".join(texts).lower(), texts
        assert "lecture impossible" in table_of(app).render_line(1).text
        await pilot.press("escape", "down", "s")  # keys still answer
        await settle(pilot)
        assert app.is_running
        await pilot.press("1")
        await settle(pilot)
        assert type(app.screen).__name__ == "DashboardScreen"


# -- snapshots ----------------------------------------------------------------------------


async def ready(pilot) -> None:
    """Before a snapshot: no blinking cursor, every worker done."""
    for field in pilot.app.query(Input):
        field.cursor_blink = False
    await settle(pilot)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_snapshot(snap_compare, tui_workspace, size):
    workspace = tui_workspace()
    populate(workspace.engine, SAMPLE)
    app = build_app(workspace, start="inventaire")
    assert snap_compare(app, terminal_size=size, run_before=ready)
