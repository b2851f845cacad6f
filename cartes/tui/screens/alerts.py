"""The « Alertes » screen: the outbox and the state of its mails, what a send would mail
now, sending now, a test mail, muting a credential."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Label,
    ProgressBar,
    Static,
    Tab,
    TabbedContent,
    TabPane,
    Tabs,
)

from cartes import dispatch, messages
from cartes.ops import alerts as alerts_ops
from cartes.ops import records as record_ops
from cartes.ops.alerts import Outbox, Preview, ProbeResult
from cartes.tui.base import CartesScreen
from cartes.tui.widgets import tables
from cartes.tui.widgets.alert_forms import MuteForm, ProbeForm
from inventaire.clock import PARIS, from_db
from inventaire.enums import DigestState, OperatorRole
from inventaire.outbox import DigestLine

PAGE = 100

# The views of the outbox: tab id → the states shown (none: all).
STATE_VIEWS: dict[str, tuple[DigestState, ...]] = {
    "all": (),
    "pending": (DigestState.PENDING,),
    "sending": (DigestState.SENDING,),
    "sent": (DigestState.SENT,),
    "failed": (DigestState.FAILED,),
}
OUTBOX_COLUMNS = ("n°", "destinataire", "état", "alertes", "essais", "dernière erreur")
PREVIEW_COLUMNS = ("destinataire", "alertes", "objet")


def _paris(instant: object) -> str:
    return f"{from_db(instant).astimezone(PARIS):%d/%m/%Y %H:%M}"  # type: ignore[arg-type]


def when_text(line: DigestLine) -> str:
    """The instant that matters for a digest's state."""
    if line.state is DigestState.SENT and line.sent_at is not None:
        return f"envoyé le {_paris(line.sent_at)}"
    if line.state is DigestState.PENDING and line.attempts:
        return f"nouvel essai {_paris(line.next_attempt_at)}"
    return f"créé le {_paris(line.created_at)}"


class AlertsScreen(CartesScreen):
    TITLE = "Alertes"

    DEFAULT_CSS = """
    AlertsScreen #actions { height: auto; padding: 0 1; }
    AlertsScreen #actions Button { margin-right: 1; }
    AlertsScreen #refusal { height: auto; padding: 0 1; }
    AlertsScreen #progress { height: 1; padding: 0 1; display: none; }
    AlertsScreen #progress.sending { display: block; }
    AlertsScreen #progress Label { width: auto; margin-right: 2; }
    AlertsScreen TabbedContent { height: 1fr; }
    AlertsScreen TabPane { padding: 0; }
    AlertsScreen #outbox { height: 1fr; }
    AlertsScreen #outbox-more { height: auto; padding: 0 1; color: $text-muted; }
    AlertsScreen #outbox-detail { height: auto; max-height: 3; padding: 0 1; }
    AlertsScreen #preview-summary { height: auto; padding: 0 1; }
    AlertsScreen #preview-mails { height: auto; max-height: 8; }
    AlertsScreen #preview-scroll { height: 1fr; border-top: solid $primary; padding: 0 1; }
    """
    BINDINGS = [
        Binding("e", "send_now", "Envoyer maintenant"),
        Binding("t", "probe", "Courriel d'essai"),
        Binding("c", "mute", "Couper les alertes"),
        Binding("p", "preview", "Aperçu"),
        Binding("f5", "reload", "Actualiser", key_display="F5"),
    ]

    class OutboxLoaded(Message):
        def __init__(self, outbox: Outbox, view: str, append: bool) -> None:
            super().__init__()
            self.outbox, self.view, self.append = outbox, view, append

    class PreviewLoaded(Message):
        def __init__(self, preview: Preview) -> None:
            super().__init__()
            self.preview = preview

    def __init__(self) -> None:
        super().__init__()
        self._view = "all"
        self._digests: list[DigestLine] = []
        self._more = False
        self._loading_more = False
        self._preview: Preview | None = None
        self._sending = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="actions"):
            yield Button("Envoyer maintenant", id="send", variant="primary", compact=True)
            yield Button("Courriel d'essai", id="probe", compact=True)
            yield Button("Couper les alertes", id="mute", compact=True)
        yield Static("", id="refusal", classes="disabled-reason")
        with Horizontal(id="progress"):
            yield Label("", id="progress-label")
            yield ProgressBar(id="progress-bar", show_eta=False)
        with TabbedContent(id="panes"):
            with TabPane("File d'envoi", id="outbox-pane"):
                yield Tabs(*(Tab(_view_title(view), id=view) for view in STATE_VIEWS), id="states")
                yield DataTable(id="outbox", cursor_type="row", zebra_stripes=True)
                yield Static("", id="outbox-more")
                yield Static("", id="outbox-detail")
            with TabPane("Aperçu du prochain envoi", id="preview-pane"):
                yield Static("Aperçu en cours de calcul…", id="preview-summary")
                yield DataTable(id="preview-mails", cursor_type="row")
                with VerticalScroll(id="preview-scroll"):
                    yield Static("", id="preview-text")
        yield Footer()

    def on_mount(self) -> None:
        self._show_rights()
        self.watch(self.app, "acting", lambda _acting: self._show_rights(), init=False)
        self.query_one("#outbox", DataTable).focus()
        self.load_outbox(self._view)

    def _show_rights(self) -> None:
        refusal = self.refusal(OperatorRole.MANAGER)
        for button in ("#send", "#probe", "#mute"):
            self.query_one(button, Button).disabled = refusal is not None or (
                button == "#send" and self._sending
            )
        shown = self.query_one("#refusal", Static)
        shown.update(refusal or "")
        shown.display = refusal is not None

    # -- the outbox

    def action_reload(self) -> None:
        self.load_outbox(self._view)
        if self._preview is not None:
            self.load_preview()

    @work(thread=True, exit_on_error=False, exclusive=True, group="outbox")
    def load_outbox(self, view: str, before_id: int | None = None) -> None:
        outbox = alerts_ops.outbox_overview(
            self.workspace, states=STATE_VIEWS[view], limit=PAGE, before_id=before_id
        )
        self.post_message(self.OutboxLoaded(outbox, view, append=before_id is not None))

    def on_alerts_screen_outbox_loaded(self, message: OutboxLoaded) -> None:
        self._loading_more = False
        if message.view != self._view:
            return
        outbox = message.outbox
        counts = outbox.counts
        tabs = self.query_one("#states", Tabs)
        for view, states in STATE_VIEWS.items():
            count = sum(counts[state] for state in states) if states else outbox.total
            tabs.query_one(f"#{view}", Tab).label = f"{_view_title(view)} ({count})"
        self._digests = (
            [*self._digests, *outbox.digests] if message.append else list(outbox.digests)
        )
        self._more = len(outbox.digests) == PAGE
        self._fill_outbox()

    def _fill_outbox(self) -> None:
        theme = self.app.theme_variables
        styles = {
            DigestState.FAILED: f"bold {theme.get('error', 'red')}",
            DigestState.SENDING: theme.get("warning", "yellow"),
            DigestState.SENT: "dim",
        }
        rows: list[tables.Row] = [
            (
                str(line.id),
                [
                    str(line.id),
                    line.recipient,
                    messages.DIGEST_STATE_LABELS[line.state],
                    str(line.alerts),
                    str(line.attempts),
                    (line.last_error or "").replace("\n", " "),
                ],
                styles.get(line.state, ""),
            )
            for line in self._digests
        ]
        table = self.query_one("#outbox", DataTable)
        tables.fill(table, OUTBOX_COLUMNS, rows, max_width=48)
        self._show_digest()
        more = self.query_one("#outbox-more", Static)
        if not rows:
            more.update("Aucun courriel dans la file." if self._view == "all" else "Aucun.")
        elif self._more:
            more.update(f"{len(rows)} plus récents affichés ; la suite se charge en descendant.")
        else:
            more.update(f"{len(rows)} courriel{'s' if len(rows) > 1 else ''}.")

    @on(Tabs.TabActivated, "#states")
    def _state_view_changed(self, event: Tabs.TabActivated) -> None:
        if event.tab.id is not None and event.tab.id != self._view:
            self._view = event.tab.id
            self._digests = []
            self.load_outbox(self._view)

    def _show_digest(self) -> None:
        key = tables.selected_key(self.query_one("#outbox", DataTable))
        line = next((line for line in self._digests if str(line.id) == key), None)
        detail = self.query_one("#outbox-detail", Static)
        if line is None:
            detail.update("")
            return
        attempts = f"{line.attempts} essai{'s' if line.attempts > 1 else ''}"
        text = (
            f"Courriel n°{line.id} à {line.recipient} ({line.alerts} alerte"
            f"{'s' if line.alerts > 1 else ''}) : "
            f"{messages.DIGEST_STATE_LABELS[line.state]}, {attempts}, {when_text(line)}."
        )
        if line.last_error:
            text += f"\nDernière erreur : {line.last_error}"
        detail.update(text)

    @on(DataTable.RowHighlighted, "#outbox")
    def _outbox_row(self, event: DataTable.RowHighlighted) -> None:
        self._show_digest()
        table = event.data_table
        if self._more and not self._loading_more and event.cursor_row >= table.row_count - 1:
            self._loading_more = True
            self.load_outbox(self._view, before_id=self._digests[-1].id)

    # -- the preview

    @on(TabbedContent.TabActivated, "#panes")
    def _pane_changed(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "preview-pane" and self._preview is None:
            self.load_preview()

    def action_preview(self) -> None:
        # Focus follows, or the focus left in the hidden pane would bring it back.
        self.query_one("#panes", TabbedContent).active = "preview-pane"
        self.query_one("#preview-mails", DataTable).focus()
        self.load_preview()

    @work(thread=True, exit_on_error=False, exclusive=True, group="preview")
    def load_preview(self) -> None:
        self.post_message(self.PreviewLoaded(alerts_ops.preview(self.workspace)))

    def on_alerts_screen_preview_loaded(self, message: PreviewLoaded) -> None:
        preview = self._preview = message.preview
        count = len(preview.mails)
        summary = self.query_one("#preview-summary", Static)
        if not count:
            summary.update(f"Aucun courriel à envoyer le {preview.day:%d/%m/%Y}.")
        else:
            summary.update(
                f"{count} courriel{'s' if count > 1 else ''} à envoyer le "
                f"{preview.day:%d/%m/%Y} ({preview.alerts} alerte"
                f"{'s' if preview.alerts > 1 else ''}) — aperçu : rien n'est enregistré ni "
                "envoyé."
            )
        rows: list[tables.Row] = [
            (str(index), [mail.content.recipient, str(len(mail.content.items)), mail.subject], "")
            for index, mail in enumerate(preview.mails)
        ]
        tables.fill(self.query_one("#preview-mails", DataTable), PREVIEW_COLUMNS, rows)
        self._show_preview_mail()

    @on(DataTable.RowHighlighted, "#preview-mails")
    def _show_preview_mail(self) -> None:
        text = self.query_one("#preview-text", Static)
        key = tables.selected_key(self.query_one("#preview-mails", DataTable))
        if self._preview is None or key is None:
            text.update("")
            return
        mail = self._preview.mails[int(key)]
        text.update(
            f"À : {mail.content.recipient}\nObjet : {mail.subject}\n\n{mail.text.rstrip()}",
        )

    # -- sending now

    @on(Button.Pressed, "#send")
    def action_send_now(self) -> None:
        if not self.allowed(OperatorRole.MANAGER):
            return
        if self._sending:
            self.notify("Un envoi est déjà en cours.", severity="warning")
            return
        self._sending = True
        self._show_rights()
        self._show_progress(0, 0)
        self.query_one("#progress").add_class("sending")
        self.send_now()

    @work(thread=True, exit_on_error=False, exclusive=True, group="send")
    def send_now(self) -> None:
        try:
            report = alerts_ops.send_now(
                self.workspace,
                face="cartes tui",
                progress=lambda done, total: self.app.call_from_thread(
                    self._show_progress, done, total
                ),
            )
        finally:
            self.app.call_from_thread(self._sending_ended)
        self.app.call_from_thread(self._sent, report)

    def _show_progress(self, done: int, total: int) -> None:
        self.query_one("#progress-label", Label).update(
            f"Envoi en cours : {done}/{total} courriel{'s' if total > 1 else ''}"
        )
        bar = self.query_one("#progress-bar", ProgressBar)
        bar.update(total=max(total, 1), progress=done)

    def _sending_ended(self) -> None:
        self._sending = False
        self.query_one("#progress").remove_class("sending")
        self._show_rights()
        self.load_outbox(self._view)
        if self._preview is not None:
            self.load_preview()

    def _sent(self, report: dispatch.CycleReport) -> None:
        summary = (
            f"Alertes planifiées : {report.planned}. Courriels envoyés : {report.sent}, "
            f"refusés : {report.failed}, en attente : {report.waiting}."
        )
        if report.error:
            self.notify(
                f"Envoi interrompu : {report.error}\n{summary}\nRien n'est perdu : les "
                "courriels en attente partiront au prochain envoi.",
                title="Serveur de messagerie",
                severity="error",
                timeout=15,
            )
        elif report.failed:
            self.notify(
                f"{summary}\nDes courriels ont été refusés définitivement (état « échec »).",
                title="Envoi terminé",
                severity="warning",
                timeout=10,
            )
        else:
            self.notify(summary, title="Envoi terminé")

    # -- a test mail

    @on(Button.Pressed, "#probe")
    def action_probe(self) -> None:
        if not self.allowed(OperatorRole.MANAGER):
            return
        smtp = self.workspace.settings.smtp
        notify = self.workspace.settings.emergency.notify
        self.app.push_screen(
            ProbeForm(f"{smtp.host}:{smtp.port}", notify[0] if notify else ""), self._probe_to
        )

    def _probe_to(self, address: str | None) -> None:
        if address is not None:
            self.notify(f"Courriel d'essai en cours d'envoi à {address}…")
            self.send_probe(address)

    @work(thread=True, exit_on_error=False, group="probe")
    def send_probe(self, address: str) -> None:
        result = alerts_ops.send_test(self.workspace, address)
        self.app.call_from_thread(self._probed, result)

    def _probed(self, result: ProbeResult) -> None:
        if result.sent:
            self.notify(
                f"Courriel d'essai accepté par {result.server} pour {result.address}.",
                title="Courriel d'essai",
            )
        else:
            self.notify(
                f"Échec du courriel d'essai par {result.server} ({result.security}) : "
                f"{result.error}",
                title="Courriel d'essai",
                severity="error",
                timeout=15,
            )

    # -- muting a credential

    @on(Button.Pressed, "#mute")
    def action_mute(self) -> None:
        if not self.allowed(OperatorRole.MANAGER):
            return
        self.app.push_screen(MuteForm(self._credential_in_preview()), self._mute_chosen)

    def _credential_in_preview(self) -> int | None:
        """The credential of the preview mail under the cursor, when it lists one only."""
        if self.query_one("#panes", TabbedContent).active != "preview-pane":
            return None
        key = tables.selected_key(self.query_one("#preview-mails", DataTable))
        if self._preview is None or key is None:
            return None
        items = self._preview.mails[int(key)].content.items
        return items[0].credential_id if len(items) == 1 else None

    def _mute_chosen(self, chosen: tuple[int, str] | None) -> None:
        if chosen is not None:
            self.mute(*chosen)

    @work(thread=True, exit_on_error=False, group="mute")
    def mute(self, credential_id: int, reason: str) -> None:
        record_ops.mute(self.workspace, credential_id, reason)
        self.app.call_from_thread(self._muted, credential_id, reason)

    def _muted(self, credential_id: int, reason: str) -> None:
        self.notify(
            f"Support n°{credential_id} : alertes coupées ({reason}).", title="Alertes coupées"
        )
        if self._preview is not None:
            self.load_preview()


_VIEW_TITLES = {
    "all": "Tous",
    "pending": "En attente",
    "sending": "En cours d'envoi",
    "sent": "Envoyés",
    "failed": "Échec",
}


def _view_title(view: str) -> str:
    return _VIEW_TITLES[view]
