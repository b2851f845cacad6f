"""The « Tableau de bord » screen: the figures of a small inventory built here, refresh,
the jump to the inventory, a database that disappears, and the snapshots of both screens."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text
from textual.widgets import Static

from cartes.tui import formats
from cartes.tui.app import build_app
from cartes.tui.screens.dashboard import DashboardScreen
from cartes.tui.screens.inventory import InventoryScreen
from cartes.tui.widgets.week_chart import WeekChart
from inventaire import db, emergency, operators, runs
from inventaire.enums import CredentialState, DigestState
from inventaire.models import Digest
from tests.conftest import NOW
from tests.test_tui_inventory import SAMPLE, populate, ready, table_of
from tests.tui_support import notifications, settle


def add_activity(engine) -> None:
    """Around SAMPLE: two emergency cards out (one overdue), digests sent, failed and
    waiting (one sent too long ago to count), and a failed daily run of the service."""
    with db.write_session(engine) as session:
        issuer = operators.find(session, "remise")
        assert issuer is not None
        emergency.issue(
            session,
            holder_email="luc.moreau.4@example.fr",
            serial="URG-0001",
            reason="carte nouveau modèle en retard",
            without_request=True,
            return_after_days=30,
            operator=issuer,
            now=NOW,
        )
        emergency.issue(
            session,
            holder_email="helene.petit.5@example.fr",
            serial="URG-0002",
            reason="carte oubliée",
            without_request=True,
            return_after_days=7,
            operator=issuer,
            now=NOW - dt.timedelta(days=30),
        )
        for state, at in [
            (DigestState.SENT, NOW - dt.timedelta(days=1)),
            (DigestState.SENT, NOW - dt.timedelta(days=2)),
            (DigestState.SENT, NOW - dt.timedelta(days=10)),  # outside the 7 days
            (DigestState.FAILED, NOW - dt.timedelta(days=3)),
            (DigestState.PENDING, NOW - dt.timedelta(hours=1)),
        ]:
            session.add(
                Digest(
                    recipient="x@example.fr",
                    state=state,
                    next_attempt_at=at,
                    created_at=at,
                    claimed_at=at if state is DigestState.FAILED else None,
                    sent_at=at if state is DigestState.SENT else None,
                    message_id=f"<{state.value}-{at.timestamp()}@cartes>",
                )
            )
        run_id = runs.start(session, kind="quotidien", started_at=NOW - dt.timedelta(hours=3))
        runs.finish(
            session,
            run_id=run_id,
            finished_at=NOW - dt.timedelta(hours=3) + dt.timedelta(minutes=2),
            ok=False,
            summary={
                "alerts": {"planned": 4, "sent": 2, "failed": 1, "waiting": 1, "error": None},
                "errors": ["Envoi des alertes : serveur de messagerie injoignable"],
                "interrupted": False,
            },
        )


def panel_text(app, selector: str) -> str:
    """What a panel shows, as plain text."""
    content = app.screen.query_one(selector, Static).content
    if isinstance(content, Text):
        return content.plain
    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(content)
    return console.export_text()


def line_of(text: str, start: str) -> list[str]:
    """The words of the line of ``text`` that starts with ``start``."""
    for line in text.splitlines():
        if line.strip().startswith(start):
            return line.split()
    raise AssertionError(f"pas de ligne « {start} » dans :\n{text}")


async def test_shows_the_figures_of_the_inventory(tui_workspace):
    workspace = tui_workspace()
    populate(workspace.engine, SAMPLE)
    add_activity(workspace.engine)
    app = build_app(workspace)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)
        counts = panel_text(app, "#counts")
        # Columns: carte agent, carte expert, clé RPVA, carte temporaire, total. The two
        # emergency cards are active agent cards.
        assert line_of(counts, "active")[1:] == ["3", "1", "4", "1", "9"]
        assert line_of(counts, "demandée")[1:] == ["1", "·", "·", "·", "1"]
        assert line_of(counts, "suspendue")[1:] == ["·", "·", "1", "·", "1"]
        assert line_of(counts, "révoquée")[1:] == ["·", "·", "1", "·", "1"]
        assert line_of(counts, "total")[1:] == ["4", "1", "6", "1", "12"]
        # Lead times: RPVA 45 days, expert 30, temporary 15; margin 15. Dubois expired;
        # Martin (20 days) and Dubosc (temporary, 10 days) have a certain gap; Leroy
        # (55 days) and Garnier (expert, 30 days) are past their order-by date.
        renewal = panel_text(app, "#renewal")
        assert line_of(renewal, "clé RPVA")[2:] == ["1", "1", "1"]
        assert line_of(renewal, "carte expert")[2:] == ["0", "0", "1"]
        assert line_of(renewal, "carte temporaire")[2:] == ["0", "1", "0"]
        assert line_of(renewal, "carte agent")[2:] == ["0", "0", "0"]
        assert line_of(renewal, "total")[1:] == ["1", "2", "2"]
        # In service, expiring within 26 weeks: Dubosc (10 days), Martin (20), Garnier
        # (30), Leroy (55), Petit (120).
        chart = app.screen.query_one("#weeks", WeekChart)
        expected = [0] * 26
        for days in (10, 20, 30, 55, 120):
            expected[days // 7] += 1
        assert list(chart.values) == expected
        assert "5 supports en service expirent d'ici 26 semaines" in panel_text(
            app, "#weeks-summary"
        )
        activity = panel_text(app, "#activity")
        assert "demandées au fournisseur : 1" in activity
        assert "en circulation : 2" in activity
        assert "en retard : 1" in activity
        assert "envoyées sur 7 jours : 2" in activity
        assert "en échec sur 7 jours : 1" in activity
        assert "en attente d'envoi : 1" in activity
        assert "26/11/2026 à 07:30 (cycle quotidien) : en échec" in activity
        assert "serveur de messagerie injoignable" in activity
        updated = str(app.screen.query_one("#updated", Static).render())
        assert "12 supports pour 10 titulaires" in updated


async def test_refresh_reads_the_figures_again(tui_workspace):
    workspace = tui_workspace()
    populate(workspace.engine, SAMPLE[:2])
    app = build_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert line_of(panel_text(app, "#counts"), "total")[-1] == "2"
        populate(workspace.engine, SAMPLE[2:5], first=3)
        await pilot.press("r")
        await settle(pilot)
        assert line_of(panel_text(app, "#counts"), "total")[-1] == "5"


async def test_jumps_to_the_urgent_credentials(tui_workspace):
    workspace = tui_workspace()
    populate(workspace.engine, SAMPLE)
    app = build_app(workspace)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        assert isinstance(app.screen, InventoryScreen)
        table = table_of(app)
        rows = [table.row_at(i) for i in range(table.total)]
        assert {row.state for row in rows} == {CredentialState.ACTIVE, CredentialState.SUSPENDED}
        assert rows[0].last_name == "Dubois"  # expired first


async def test_a_vanished_database_keeps_the_figures_and_says_why(tui_workspace):
    workspace = tui_workspace()
    populate(workspace.engine, SAMPLE)
    app = build_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        os.remove(Path(workspace.settings.database_url.split("///", 1)[1]))
        await pilot.press("r")
        await settle(pilot)
        assert app.is_running
        assert any("base" in text.lower() for text in notifications(app)), notifications(app)
        updated = str(app.screen.query_one("#updated", Static).render())
        assert updated.startswith("Lecture impossible") and "chiffres précédents" in updated
        assert line_of(panel_text(app, "#counts"), "total")[-1] == "10"
        await pilot.press("2")
        await settle(pilot)
        assert isinstance(app.screen, InventoryScreen)


def test_numbers_are_written_the_french_way():
    assert formats.number(1234567) == "1\u202f234\u202f567"
    assert formats.plural(0, "support") == "0 support"
    assert formats.plural(1, "support") == "1 support"
    assert formats.plural(12345, "support") == "12\u202f345 supports"


# -- snapshots ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_snapshot(snap_compare, tui_workspace, size):
    workspace = tui_workspace()
    populate(workspace.engine, SAMPLE)
    add_activity(workspace.engine)
    assert snap_compare(build_app(workspace), terminal_size=size, run_before=ready)
