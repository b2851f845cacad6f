"""Driving the terminal UI in tests: the app built by ``build_app`` as the CLI builds it,
on a fresh SQLite database, a stopped clock and a chosen operator.

The TUI runs on SQLite only: what its screens call (``cartes.ops``, ``inventaire``) is
tested on both databases by the tests of those layers.

    async def test_x(tui_workspace):
        app = build_app(tui_workspace())
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from cartes.settings import Settings
from cartes.workspace import Workspace
from inventaire.clock import FixedClock
from tests.conftest import NOW

MakeWorkspace = Callable[..., Workspace]


@pytest.fixture
def tui_database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh SQLite inventory with the test operators and the district's organisations."""
    path = tmp_path / "tui.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def tui_clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def tui_workspace(tui_database_url: str, tui_clock: FixedClock) -> MakeWorkspace:
    """Builds workspaces on the test database: ``tui_workspace(login="lecture",
    smtp={...})``; keyword arguments other than ``login`` and ``reader_modules`` are
    settings."""
    made: list[Workspace] = []

    def make(
        login: str = "admin",
        reader_modules: tuple[str, ...] | None = None,
        **settings: Any,
    ) -> Workspace:
        values: dict[str, Any] = {"database_url": tui_database_url, "busy_timeout_s": 2}
        values.update(settings)
        workspace = Workspace(
            settings=Settings(**values),
            clock=tui_clock,
            operator_login=login,
            reader_modules=reader_modules,
        )
        made.append(workspace)
        return workspace

    yield make  # type: ignore[misc]
    for workspace in made:
        workspace.close()


async def settle(pilot: Pilot[Any], rounds: int = 50) -> None:
    """Wait until no worker runs and the screen has caught up with their messages
    (bounded: a worker that never ends fails the test instead of hanging it)."""
    app = pilot.app
    for _ in range(rounds):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(worker.is_running for worker in app.workers):
            await pilot.pause()
            return
    raise AssertionError("des tâches de fond tournent encore")


def notifications(app: Any) -> list[str]:
    """The texts of the notifications shown so far (most recent last)."""
    return [notification.message for notification in app._notifications]
