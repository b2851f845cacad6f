"""The TUI driven headless, for ``benchmarks/tui.py``, one measure per process.

    python benchmarks/_tui_probe.py premier-affichage inventaire|tableau
        builds the app as ``cartes tui --ecran …`` does, runs it headless (160×50) and
        exits once the first page of the inventory (or the dashboard's figures) is painted;
        prints the wall-clock instant of that paint (``time.time()``), so that the caller,
        who noted the instant it started the process, gets start → paint.
    python benchmarks/_tui_probe.py session MOTS…
        the inventory screen: types each word in the filter box at a typist's pace, then
        pages down through the unfiltered inventory; prints JSON with the latencies, the
        bare ``browse.page`` time of the same queries, and the process's peak memory.
    python benchmarks/_tui_probe.py datatable N
        for comparison, Textual's own DataTable loaded with N rows of the inventory (read
        through ``browse.page``), exits at its first paint; prints that instant.

The database is the one of ``CARTES_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any

SIZE = (160, 50)
# A typist's pace: about 6 characters a second.
KEYSTROKE_INTERVAL_S = 0.16


def _workspace() -> Any:
    from cartes import settings
    from cartes.cli.context import os_login
    from cartes.workspace import Workspace
    from inventaire.clock import SystemClock

    return Workspace(
        settings=settings.load().settings, clock=SystemClock(), operator_login=os_login()
    )


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def first_paint(screen: str) -> None:
    from cartes.tui.app import build_app
    from cartes.tui.screens.dashboard import DashboardScreen
    from cartes.tui.widgets.paged_table import PagedTable

    workspace = _workspace()
    app = build_app(workspace, start=screen)
    painted: list[float] = []

    def hook(message: object) -> None:
        if painted:
            return
        if screen == "inventaire" and isinstance(message, PagedTable.FirstPageShown):
            painted.append(time.time())  # posted once the page's refresh is done
            app.exit()
        elif screen == "tableau" and isinstance(message, DashboardScreen.Loaded):

            def done() -> None:
                painted.append(time.time())
                app.exit()

            app.call_after_refresh(done)

    async with app.run_test(headless=True, size=SIZE, message_hook=hook) as pilot:
        while not painted:
            await pilot.pause(0.005)
    workspace.close()
    print(json.dumps({"painted_at": painted[0], "peak_mb": _peak_mb()}))


async def session(words: list[str]) -> None:
    from textual.widgets import Input

    from cartes.tui.app import build_app
    from cartes.tui.widgets.paged_table import PagedTable
    from inventaire import browse

    workspace = _workspace()
    app = build_app(workspace, start="inventaire")
    shown: dict[int, float] = {}  # generation → instant its first page was painted

    def hook(message: object) -> None:
        if isinstance(message, PagedTable.FirstPageShown):
            shown[message.generation] = time.perf_counter()

    typing: list[dict[str, Any]] = []
    paging: list[float] = []
    async with app.run_test(headless=True, size=SIZE, message_hook=hook) as pilot:
        table = app.screen.query_one(PagedTable)
        box = app.screen.query_one("#text", Input)
        while table.generation not in shown:
            await pilot.pause(0.005)
        await app.workers.wait_for_complete()

        for word in words:
            box.focus()
            box.value = ""
            await _wait_shown(pilot, table, shown)
            await asyncio.sleep(0.3)  # a pause between two searches
            for character in word:
                before = table.generation
                started = time.perf_counter()
                _send_key(app, character, character)
                while table.generation == before or table.generation not in shown:
                    await asyncio.sleep(0.001)
                latency = shown[table.generation] - started
                typing.append({"text": box.value, "seconds": latency, "rows": table.total})
                await asyncio.sleep(max(KEYSTROKE_INTERVAL_S - latency, 0))

        # Page down through the whole inventory, from the top, sorted by expiry.
        box.value = ""
        await _wait_shown(pilot, table, shown)
        await app.workers.wait_for_complete()
        table.focus()
        await pilot.pause()
        for _ in range(30):
            top = table.scroll_y
            started = time.perf_counter()
            _send_key(app, "pagedown", None)
            while table.scroll_y == top or not _visible_loaded(table):
                await asyncio.sleep(0.0005)
            painted = asyncio.Event()
            app.call_after_refresh(painted.set)  # the refresh that paints them
            await painted.wait()
            paging.append(time.perf_counter() - started)
            await asyncio.sleep(0.1)

    # The bare query behind the same screens, for the ratios: browse.page alone.
    bare_typing: list[float] = []
    bare_paging: list[float] = []
    today, renewal = workspace.today(), workspace.renewal()
    with workspace.read() as connection:
        for entry in typing:
            query = browse.InventoryQuery(text=entry["text"])
            started = time.perf_counter()
            browse.page(connection, query, today=today, renewal=renewal, offset=0, limit=100)
            bare_typing.append(time.perf_counter() - started)
        for index in range(1, 14):
            started = time.perf_counter()
            browse.page(
                connection,
                browse.InventoryQuery(),
                today=today,
                renewal=renewal,
                offset=index * 100,
                limit=100,
            )
            bare_paging.append(time.perf_counter() - started)
    workspace.close()
    print(
        json.dumps(
            {
                "typing": typing,
                "paging": paging,
                "bare_typing": bare_typing,
                "bare_paging": bare_paging,
                "peak_mb": _peak_mb(),
            }
        )
    )


def _send_key(app: Any, key: str, character: str | None) -> None:
    """A key as the terminal driver hands it over (Pilot.press would add its own waits
    for the app to be idle, longer than what is measured here)."""
    from textual import events

    event = events.Key(key, character)
    event.set_sender(app)
    app._driver.send_message(event)


async def _wait_shown(pilot: Any, table: Any, shown: dict[int, float]) -> None:
    await pilot.pause(0.1)  # past the debounce
    while table.generation not in shown:
        await asyncio.sleep(0.001)


def _visible_loaded(table: Any) -> bool:
    top = round(table.scroll_y)
    last = min(top + table.scrollable_content_region.height - 1, table.total)
    return all(table.row_at(index) is not None for index in range(top, last))


async def datatable(rows: int) -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from cartes.tui.screens.inventory import COLUMNS, row_cells
    from inventaire import browse

    workspace = _workspace()
    today, renewal = workspace.today(), workspace.renewal()
    painted: list[float] = []

    class Stock(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns(*(column.label for column in COLUMNS))
            with workspace.read() as connection:
                for offset in range(0, rows, 1000):
                    page = browse.page(
                        connection,
                        browse.InventoryQuery(),
                        today=today,
                        renewal=renewal,
                        offset=offset,
                        limit=min(1000, rows - offset),
                    )
                    table.add_rows(row_cells(row) for row in page)
            self.call_after_refresh(self.done)

        def done(self) -> None:
            painted.append(time.time())
            self.exit()

    app = Stock()
    async with app.run_test(headless=True, size=SIZE) as pilot:
        while not painted:
            await pilot.pause(0.01)
    workspace.close()
    print(json.dumps({"painted_at": painted[0], "peak_mb": _peak_mb()}))


def main() -> None:
    command, *rest = sys.argv[1:]
    if command == "premier-affichage":
        asyncio.run(first_paint(rest[0]))
    elif command == "session":
        asyncio.run(session(rest))
    elif command == "datatable":
        asyncio.run(datatable(int(rest[0])))
    else:
        raise SystemExit(f"commande inconnue : {command}")


if __name__ == "__main__":
    main()
