"""The « Urgences » screen: old-model agent cards handed out in emergency — the cards out,
to take back, overdue; issuing one; recording one returned."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Header, Static, Tab, Tabs

from cartes import messages
from cartes.ops import emergency as emergency_ops
from cartes.ops.emergency import EmergencyLine, Issued, Returned
from cartes.tui.base import CartesScreen
from cartes.tui.widgets import tables
from cartes.tui.widgets.emergency_form import EmergencyForm
from cartes.tui.widgets.forms import ReasonForm
from inventaire.enums import OperatorRole

# The views of the register: tab id, title, which lines.
VIEWS = {
    "outstanding": "En circulation",
    "to-take-back": "À récupérer",
    "overdue": "En retard",
    "all": "Toutes",
}


COLUMNS = ("n°", "titulaire", "org.", "carte", "émise le", "retour prévu", "situation")


def in_view(line: EmergencyLine, view: str) -> bool:
    if view == "outstanding":
        return line.outstanding
    if view == "to-take-back":
        return line.to_take_back
    if view == "overdue":
        return line.overdue
    return True


def request_text(line: EmergencyLine) -> str:
    if line.request_id is None:
        return "sans demande"
    state = messages.state_label(line.request_state) if line.request_state else "?"
    return f"n°{line.request_id} ({state})"


class EmergencyScreen(CartesScreen):
    TITLE = "Urgences"

    DEFAULT_CSS = """
    EmergencyScreen #actions { height: auto; padding: 0 1; }
    EmergencyScreen #actions Button { margin-right: 1; }
    EmergencyScreen #issue-refusal { height: auto; padding: 0 1; }
    EmergencyScreen DataTable { height: 1fr; }
    EmergencyScreen #detail { height: auto; min-height: 2; padding: 0 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("n", "issue", "Nouvelle émission"),
        Binding("r", "give_back", "Restituée"),
        Binding("enter", "open_record", "Fiche", key_display="Entrée"),
        Binding("f5", "reload", "Actualiser", key_display="F5"),
    ]

    class RegisterLoaded(Message):
        def __init__(self, lines: list[EmergencyLine]) -> None:
            super().__init__()
            self.lines = lines

    def __init__(self) -> None:
        super().__init__()
        self._lines: list[EmergencyLine] = []
        self._view = "outstanding"

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="actions"):
            yield Button("Nouvelle émission", id="issue", variant="primary", compact=True)
            yield Button("Restituée", id="give-back", compact=True)
        yield Static("", id="issue-refusal", classes="disabled-reason")
        yield Tabs(*(Tab(title, id=view) for view, title in VIEWS.items()), id="views")
        yield DataTable(id="register", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self._show_rights()
        self.watch(self.app, "acting", lambda _acting: self._show_rights(), init=False)
        self.query_one("#register", DataTable).focus()
        self.reload()

    def _show_rights(self) -> None:
        issue_refusal = self.refusal(OperatorRole.ISSUER)
        give_back_refusal = self.refusal(OperatorRole.MANAGER)
        self.query_one("#issue", Button).disabled = issue_refusal is not None
        self.query_one("#give-back", Button).disabled = give_back_refusal is not None
        reasons = []
        if issue_refusal is not None:
            reasons.append(f"Émission : {issue_refusal}")
        if give_back_refusal is not None and give_back_refusal != issue_refusal:
            reasons.append(f"Restitution : {give_back_refusal}")
        shown = self.query_one("#issue-refusal", Static)
        shown.update("\n".join(reasons))
        shown.display = bool(reasons)

    # -- the register

    def action_reload(self) -> None:
        self.reload()

    def action_open_record(self) -> None:
        self._open_record()

    @work(thread=True, exit_on_error=False, exclusive=True, group="register")
    def reload(self) -> None:
        lines = emergency_ops.register(self.workspace)
        self.post_message(self.RegisterLoaded(lines))

    def on_emergency_screen_register_loaded(self, message: RegisterLoaded) -> None:
        self._lines = message.lines
        self._refresh_views()

    @on(Tabs.TabActivated, "#views")
    def view_changed(self, event: Tabs.TabActivated) -> None:
        if event.tab.id is not None and event.tab.id != self._view:
            self._view = event.tab.id
            self._fill()

    def _refresh_views(self) -> None:
        tabs = self.query_one("#views", Tabs)
        for view, title in VIEWS.items():
            count = sum(1 for line in self._lines if in_view(line, view))
            tab = tabs.query_one(f"#{view}", Tab)
            tab.label = f"{title} ({count})"
        self._fill()

    def _fill(self) -> None:
        theme = self.app.theme_variables
        rows: list[tables.Row] = []
        for line in self._lines:
            if not in_view(line, self._view):
                continue
            style = ""
            if line.overdue:
                style = f"bold {theme.get('error', 'red')}"
            elif line.to_take_back:
                style = theme.get("warning", "yellow")
            elif not line.outstanding:
                style = "dim"
            cells = [
                str(line.id),
                line.holder_name,
                line.organisation,
                line.serial or "—",
                f"{line.issued_on:%d/%m/%Y}",
                f"{line.return_due_on:%d/%m/%Y}",
                messages.emergency_situation(line),
            ]
            rows.append((str(line.id), cells, style))
        table = self.query_one("#register", DataTable)
        tables.fill(table, COLUMNS, rows)
        if not table.row_count:
            self.query_one("#detail", Static).update(_EMPTY[self._view])
        else:
            self._show_detail()

    def _selected(self) -> EmergencyLine | None:
        key = tables.selected_key(self.query_one("#register", DataTable))
        return next((line for line in self._lines if str(line.id) == key), None)

    @on(DataTable.RowSelected, "#register")
    def _open_record(self) -> None:
        line = self._selected()
        if line is not None:
            self.cartes.open_record(line.credential_id)

    @on(DataTable.RowHighlighted, "#register")
    def _row_highlighted(self) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        line = self._selected()
        detail = self.query_one("#detail", Static)
        if line is None:
            detail.update("")
            return
        detail.update(
            f"Émission n°{line.id} : carte n° {line.serial or '—'} remise par "
            f"{line.issued_by} à {line.holder_email} — demande couverte : "
            f"{request_text(line)}\nMotif : {line.reason}"
        )

    # -- issuing

    @on(Button.Pressed, "#issue")
    def action_issue(self) -> None:
        if not self.allowed(OperatorRole.ISSUER):
            return
        self.app.push_screen(
            EmergencyForm(emergency_ops.default_return_due_on(self.workspace)), self._issued
        )

    def _issued(self, issued: Issued | None) -> None:
        if issued is None:
            return
        self.notify(
            f"Carte d'urgence n° {issued.serial} remise à {issued.holder_email} "
            f"(émission n°{issued.issuance_id}), retour prévu le "
            f"{issued.return_due_on:%d/%m/%Y}.",
            title="Carte d'urgence remise",
        )
        self.reload()

    # -- taking one back

    @on(Button.Pressed, "#give-back")
    def action_give_back(self) -> None:
        if not self.allowed(OperatorRole.MANAGER):
            return
        line = self._selected()
        if line is None or not line.outstanding:
            self.notify(
                "Choisissez dans la liste une carte d'urgence en circulation.",
                severity="warning",
            )
            return
        question = (
            f"La carte n° {line.serial or '—'} de {line.holder_name} (émission n°{line.id}) "
            f"est rendue aujourd'hui, le {self.workspace.today():%d/%m/%Y} ?"
        )
        self.app.push_screen(
            ReasonForm(
                "Restitution d'une carte d'urgence",
                question,
                confirm_label="Enregistrer la restitution",
                reason="carte d'urgence restituée",
            ),
            lambda reason: self._confirm_give_back(line.id, reason),
        )

    def _confirm_give_back(self, issuance_id: int, reason: str | None) -> None:
        if reason is not None:
            self.give_back(issuance_id, reason)

    @work(thread=True, exit_on_error=False, exclusive=True, group="give-back")
    def give_back(self, issuance_id: int, reason: str) -> None:
        returned = emergency_ops.give_back(self.workspace, issuance_id=issuance_id, reason=reason)
        self.app.call_from_thread(self._given_back, returned)

    def _given_back(self, returned: Returned) -> None:
        self.notify(
            f"Carte n° {returned.serial} restituée le {returned.returned_on:%d/%m/%Y} "
            f"(émission n°{returned.issuance_id}).",
            title="Restitution enregistrée",
        )
        self.reload()


_EMPTY = {
    "outstanding": "Aucune carte d'urgence en circulation.",
    "to-take-back": "Aucune carte d'urgence à récupérer.",
    "overdue": "Aucune carte d'urgence en retard.",
    "all": "Aucune carte d'urgence n'a été remise.",
}
