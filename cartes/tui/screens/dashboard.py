"""The « Tableau de bord » screen: the inventory's figures at a glance.

Read by ``inventaire.dashboard.compute`` in a worker when the screen opens, on « r », and
every minute while it is shown. Panels side by side on a wide terminal, one under the other
(scrolling) on a narrow one.
"""

from __future__ import annotations

import json
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState

from cartes import messages
from cartes.tui import formats
from cartes.tui.base import CartesScreen
from cartes.tui.failures import failure_text
from cartes.tui.widgets.week_chart import WeekChart
from inventaire import dashboard
from inventaire.browse import SortKey
from inventaire.dashboard import Dashboard, LastRun
from inventaire.enums import CredentialKind, CredentialState

REFRESH_EVERY_S = 60.0
RUN_KINDS = {"quotidien": "cycle quotidien", "une_fois": "cycle unique"}
PENDING_LABELS = {
    CredentialState.REQUESTED: "demandées au fournisseur",
    CredentialState.RECEIVED: "reçues au SAR, à remettre",
}


def _table(*headers: str) -> Table:
    table = Table(box=None, pad_edge=False, padding=(0, 1), show_edge=False, expand=False)
    table.add_column(headers[0], no_wrap=True)
    for header in headers[1:]:
        table.add_column(header, justify="right", no_wrap=True)
    return table


def counts_table(board: Dashboard) -> Table | Text:
    """States down, kinds across (four columns fit 80 cells; nine states would not)."""
    if not board.by_kind_state:
        return Text("L'inventaire est vide.")
    kinds = list(CredentialKind)
    table = _table("état", *(messages.KIND_LABELS[kind] for kind in kinds), "total")
    for state in CredentialState:
        counts = [board.by_kind_state.get((kind, state), 0) for kind in kinds]
        if any(counts):
            table.add_row(
                messages.STATE_LABELS[state],
                *(formats.number(n) if n else "·" for n in counts),
                formats.number(sum(counts)),
            )
    totals = [
        sum(n for (kind, _state), n in board.by_kind_state.items() if kind is k) for k in kinds
    ]
    table.add_row(
        Text("total", style="bold"),
        *(Text(formats.number(n), style="bold") for n in totals),
        Text(formats.number(sum(totals)), style="bold"),
    )
    return table


class Palette:
    """The theme's semantic colours as Rich styles (a Rich table cannot name $error)."""

    def __init__(self, error: str, warning: str, success: str) -> None:
        self.error, self.warning, self.success = error, warning, success


def renewal_table(board: Dashboard, palette: Palette) -> Table:
    table = _table("type", "expirés", "rupture certaine", "commande en retard")
    rows = [
        (
            kind,
            board.expired_in_service.get(kind, 0),
            board.predicted_gaps.get(kind, 0),
            board.order_late.get(kind, 0),
        )
        for kind in CredentialKind
    ]
    for kind, *counts in rows:
        styles = (f"bold {palette.error}", palette.error, palette.warning)
        table.add_row(
            messages.KIND_LABELS[kind],
            *(
                Text(formats.number(n), style=style if n else "")
                for n, style in zip(counts, styles, strict=True)
            ),
        )
    table.add_row(
        Text("total", style="bold"),
        *(Text(formats.number(sum(row[i] for row in rows)), style="bold") for i in (1, 2, 3)),
    )
    return table


def run_text(run: LastRun | None, palette: Palette) -> Text:
    if run is None:
        return Text("aucun passage enregistré", style="italic")
    kind = RUN_KINDS.get(run.kind, run.kind)
    text = Text(f"{formats.instant(run.started_at)} ({kind}) : ")
    if run.ok is None:
        text.append("en cours", style="bold")
    elif run.ok:
        text.append("réussi", style=f"bold {palette.success}")
    else:
        text.append("en échec", style=f"bold {palette.error}")
    details = run_details(run.summary)
    if details:
        text.append(f"\n  {details}")
    return text


def run_details(summary: str | None) -> str:
    """The French gist of what a run recorded (a JSON object), or nothing."""
    try:
        recorded = json.loads(summary) if summary else None
    except ValueError:
        return ""
    if not isinstance(recorded, dict):
        return ""
    parts = []
    alerts = recorded.get("alerts")
    if isinstance(alerts, dict):
        parts.append(
            f"alertes planifiées : {alerts.get('planned', 0)}, courriels envoyés : "
            f"{alerts.get('sent', 0)}, refusés : {alerts.get('failed', 0)}"
        )
    errors = recorded.get("errors")
    if isinstance(errors, list):
        parts.extend(str(error) for error in errors)
    if recorded.get("interrupted"):
        parts.append("interrompu par une demande d'arrêt")
    return " ; ".join(parts)


def activity_text(board: Dashboard, palette: Palette) -> Text:
    alarm = f"bold {palette.error}"
    text = Text()
    text.append("Demandes en cours\n", style="bold")
    for state, label in PENDING_LABELS.items():
        text.append(f"  {label} : {formats.number(board.requests_pending.get(state, 0))}\n")
    text.append("Cartes d'urgence\n", style="bold")
    text.append(f"  en circulation : {formats.number(board.emergency_outstanding)}\n")
    text.append("  en retard : ")
    text.append(
        formats.number(board.emergency_overdue),
        style=alarm if board.emergency_overdue else "",
    )
    text.append("\nAlertes (courriels récapitulatifs)\n", style="bold")
    text.append(f"  envoyées sur 7 jours : {formats.number(board.alerts_sent_7d)}\n")
    text.append("  en échec sur 7 jours : ")
    text.append(
        formats.number(board.alerts_failed_7d), style=alarm if board.alerts_failed_7d else ""
    )
    text.append(f"\n  en attente d'envoi : {formats.number(board.alerts_waiting)}\n")
    text.append("Service\n", style="bold")
    text.append("  dernier passage : ")
    text.append_text(run_text(board.last_run, palette))
    return text


def weeks_summary(board: Dashboard) -> str:
    total = sum(board.expiring_per_week)
    if not total:
        return f"Aucun support en service n'expire d'ici {len(board.week_starts)} semaines."
    peak = max(range(len(board.expiring_per_week)), key=board.expiring_per_week.__getitem__)
    return (
        f"{formats.plural(total, 'support')} en service expirent d'ici "
        f"{len(board.week_starts)} semaines ; au plus "
        f"{formats.number(board.expiring_per_week[peak])} la semaine du "
        f"{board.week_starts[peak]:%d/%m/%Y}."
    )


class DashboardScreen(CartesScreen):
    TITLE = "Tableau de bord"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-narrow"),
        (120, "-wide"),
    ]
    DEFAULT_CSS = """
    DashboardScreen #panels { grid-size: 1; grid-gutter: 0 1; height: auto; }
    DashboardScreen.-wide #panels { grid-size: 2; }
    DashboardScreen #panels > * { height: auto; }
    DashboardScreen .panel { border-title-color: $text; border-title-style: bold; }
    DashboardScreen #updated { height: 1; padding: 0 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Actualiser"),
        Binding("f5", "refresh", "Actualiser", show=False),
        Binding("u", "urgent", "Urgents"),
    ]

    class Loaded(Message):
        """The figures were read."""

        def __init__(self, board: Dashboard) -> None:
            super().__init__()
            self.board = board

    def __init__(self) -> None:
        super().__init__()
        self.board: Dashboard | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="board"), Grid(id="panels"):
            yield self._panel("counts", "Supports par état et par type")
            with Vertical(id="weeks-panel", classes="panel") as weeks:
                weeks.border_title = "Expirations des supports en service, par semaine"
                yield WeekChart(id="weeks")
                yield Static("", id="weeks-summary")
            yield self._panel("renewal", "Renouvellements (supports en service)")
            yield self._panel("activity", "Suivi")
        yield Static("Lecture des chiffres…", id="updated")
        yield Footer()

    def _panel(self, id: str, title: str) -> Static:
        panel = Static("…", id=id, classes="panel")
        panel.border_title = title
        return panel

    def on_mount(self) -> None:
        self.load()
        self.set_interval(REFRESH_EVERY_S, self._tick)

    def _tick(self) -> None:
        if self.is_current:
            self.load()

    def action_refresh(self) -> None:
        self.query_one("#updated", Static).update("Lecture des chiffres…")
        self.load()

    @work(thread=True, exit_on_error=False, exclusive=True, group="dashboard")
    def load(self) -> None:
        workspace = self.workspace
        with workspace.read() as connection:
            board = dashboard.compute(
                connection,
                today=workspace.today(),
                now=workspace.now(),
                renewal=workspace.renewal(),
            )
        self.post_message(self.Loaded(board))

    def on_dashboard_screen_loaded(self, message: Loaded) -> None:
        board = self.board = message.board
        theme = self.app.current_theme
        palette = Palette(theme.error or "red", theme.warning or "yellow", theme.success or "green")
        self.query_one("#counts", Static).update(counts_table(board))
        self.query_one("#weeks", WeekChart).show(board.week_starts, board.expiring_per_week)
        self.query_one("#weeks-summary", Static).update(weeks_summary(board))
        self.query_one("#renewal", Static).update(renewal_table(board, palette))
        self.query_one("#activity", Static).update(activity_text(board, palette))
        holders = formats.plural(board.holders, "titulaire")
        total = formats.plural(sum(board.by_kind_state.values()), "support")
        self.query_one("#updated", Static).update(
            f"{total} pour {holders} · chiffres du {formats.instant(self.workspace.now())}"
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        super().on_worker_state_changed(event)
        worker = event.worker
        if worker.group == "dashboard" and event.state is WorkerState.ERROR and worker.error:
            shown = "" if self.board is None else " (chiffres précédents affichés)"
            self.query_one("#updated", Static).update(
                f"Lecture impossible : {failure_text(worker.error)}{shown}"
            )

    async def action_urgent(self) -> None:
        """The inventory of credentials in service, the most urgent first."""
        from cartes.tui.screens.inventory import InventoryScreen

        while len(self.app.screen_stack) > 1:
            self.app.pop_screen()
        await self.app.switch_mode("inventaire")
        screen = self.app.screen
        if isinstance(screen, InventoryScreen):
            screen.show(in_service=True, sort=SortKey.EXPIRY)
