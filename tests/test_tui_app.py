"""The app's frame: opening screens, keys, help, themes, the operator and its roles, and
a database that cannot be reached."""

from __future__ import annotations

import argparse

import pytest

from cartes.cli.tui_cmd import parse_screen
from cartes.tui.app import DARK, LIGHT, build_app
from cartes.tui.screens.help import HelpScreen
from inventaire.enums import OperatorRole
from tests.tui_support import notifications, settle

SCREEN_CLASSES = {
    "tableau": "DashboardScreen",
    "inventaire": "InventoryScreen",
    "lecteurs": "ReadersScreen",
    "urgences": "EmergencyScreen",
    "alertes": "AlertsScreen",
    "journal": "JournalScreen",
}


@pytest.mark.parametrize("name", list(SCREEN_CLASSES))
async def test_opens_on_the_screen_asked_for(tui_workspace, name):
    app = build_app(tui_workspace(), start=name)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert type(app.screen).__name__ == SCREEN_CLASSES[name]


async def test_number_keys_go_from_screen_to_screen(tui_workspace):
    app = build_app(tui_workspace())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for key, name in zip(
            "213456", ["inventaire", "tableau", *list(SCREEN_CLASSES)[2:]], strict=True
        ):
            await pilot.press(key)
            await settle(pilot)
            assert type(app.screen).__name__ == SCREEN_CLASSES[name], key


async def test_record_opens_over_the_inventory(tui_workspace):
    app = build_app(tui_workspace(), start="inventaire", record_id=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert type(app.screen).__name__ == "RecordScreen"
        assert app.screen.credential_id == 1
        await pilot.press("2")  # a main screen's key leaves the record
        await settle(pilot)
        assert type(app.screen).__name__ == "InventoryScreen"


async def test_help_lists_the_keys_and_closes(tui_workspace):
    app = build_app(tui_workspace())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, HelpScreen)


async def test_light_and_dark_themes(tui_workspace):
    app = build_app(tui_workspace(), theme=LIGHT)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.theme == LIGHT
        await pilot.press("ctrl+t")
        assert app.theme == DARK


async def test_the_operator_is_resolved_with_its_roles(tui_workspace):
    app = build_app(tui_workspace(login="lecture"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.acting is not None and app.acting.known
        assert app.refusal(OperatorRole.READER) is None
        refused = app.refusal(OperatorRole.MANAGER)
        assert refused is not None and "gestionnaire" in refused
        assert "lecteur" in app.sub_title


async def test_an_unknown_operator_can_look_but_not_act(tui_workspace):
    app = build_app(tui_workspace(login="inconnu"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        refused = app.refusal(OperatorRole.READER)
        assert refused is not None and "inconnu" in refused


async def test_an_unreachable_database_is_a_notification_not_a_crash(tui_workspace, tmp_path):
    url = f"sqlite:///{tmp_path}/absent/cartes.db"
    app = build_app(tui_workspace(database_url=url))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.is_running
        assert any("base" in text.lower() for text in notifications(app)), notifications(app)
        assert app.refusal(OperatorRole.READER) is not None
        await pilot.press("2")  # still answers to keys
        await settle(pilot)
        assert type(app.screen).__name__ == "InventoryScreen"


def test_screen_option():
    assert parse_screen(None) == ("tableau", None)
    assert parse_screen(["alertes"]) == ("alertes", None)
    assert parse_screen(["fiche", "42"]) == ("inventaire", 42)
    for bad in (["nulle"], ["fiche"], ["fiche", "x"], ["tableau", "3"]):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_screen(bad)


def test_cli_refuses_an_unknown_screen(cli):
    result = cli("tui", "--ecran", "nulle")
    assert result.code == 2
    assert "écran inconnu" in result.err


def test_resume_and_cartes_outside_a_terminal_print_the_summary(cli):
    for argv in (("resume",), ()):
        result = cli(*argv)
        assert result.code == 0, result.err
        assert "inventaire au" in result.out


@pytest.mark.slow
def test_cartes_alone_in_a_terminal_opens_the_ui(tui_database_url):
    """``cartes`` with a terminal on both ends opens the full-screen UI (the alternate
    screen), which ``q`` closes; the exit code is 0."""
    import os
    import pty
    import select
    import subprocess
    import time

    from tests.conftest import CARTES

    environment = {key: value for key, value in os.environ.items() if not key.startswith("CARTES")}
    environment.update(
        {"CARTES_DATABASE_URL": tui_database_url, "TERM": "xterm-256color", "COLUMNS": "100"}
    )
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [CARTES, "--operateur", "admin"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=environment,
        close_fds=True,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and b"Tableau de bord" not in seen:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                seen += os.read(leader, 65536)
        assert b"\x1b[?1049h" in seen, seen[-500:]  # the alternate screen: a full-screen app
        assert b"Tableau de bord" in seen
        # A person presses q once the screen is drawn; a key typed while the app is still
        # starting may be read before its bindings exist, so press again if need be.
        for _attempt in range(10):
            os.write(leader, b"q")
            try:
                assert process.wait(timeout=3) == 0
                break
            except subprocess.TimeoutExpired:
                while select.select([leader], [], [], 0)[0]:
                    os.read(leader, 65536)
        else:
            raise AssertionError("q n'a pas fermé l'interface")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)


async def test_the_command_palette_speaks_french_and_goes_to_a_screen(tui_workspace):
    from textual.command import CommandPalette

    app = build_app(tui_workspace())
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await settle(pilot)
        assert CommandPalette.is_open(app)
        await pilot.press(*"journal")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "JournalScreen"
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Aller à : Inventaire" in titles and "Quitter" in titles
