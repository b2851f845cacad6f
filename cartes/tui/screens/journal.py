"""The « Journal » screen: the journal's entries with filters, a page at a time, the
newest first; and the verification of its hash chain."""

from __future__ import annotations

import datetime as dt

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Input, Label, ProgressBar, Select, Static

from cartes import journal_text, messages
from cartes.ops import journal as journal_ops
from cartes.ops.journal import ChainCheck, EntryLine, JournalFilter, JournalPage
from cartes.tui.base import CartesScreen
from cartes.tui.widgets import tables
from inventaire.vocabulary import parse_date

PAGE = 100

COLUMNS = ("n°", "date (Paris)", "opérateur", "action", "objet", "motif")


def verification_text(check: ChainCheck) -> str:
    """The outcome of a verification, in French (as ``cartes journal verifier`` says it)."""
    result = check.verification
    head = f"tête : n°{check.head_seq}, empreinte {check.head_hash[:16]}…"
    if result.intact:
        return f"Journal intact : {result.checked} entrées vérifiées ({head})."
    problem = messages.text(result.problem or "", {"seq": result.seq})
    return (
        f"Journal altéré : {problem} ({result.checked} entrées correctes avant celle-ci ; {head})."
    )


class JournalScreen(CartesScreen):
    TITLE = "Journal"

    DEFAULT_CSS = """
    JournalScreen .filters { height: 1; padding: 0 1; }
    JournalScreen .filters Label { width: auto; padding: 0 1 0 0; }
    JournalScreen .filters Input, JournalScreen .filters Select { width: 1fr; margin-right: 1; }
    JournalScreen #filter-problem { height: auto; padding: 0 1; color: $error; }
    JournalScreen #entries { height: 1fr; }
    JournalScreen #entries-more { height: auto; padding: 0 1; color: $text-muted; }
    JournalScreen #entry-detail { height: auto; max-height: 3; padding: 0 1; }
    JournalScreen #verification { height: auto; padding: 0 1; border-top: solid $primary; }
    JournalScreen #verification.intact { color: $success; }
    JournalScreen #verification.broken { color: $error; text-style: bold; }
    JournalScreen #verify-progress { height: 1; padding: 0 1; display: none; }
    JournalScreen #verify-progress.running { display: block; }
    """
    BINDINGS = [
        Binding("v", "verify", "Vérifier la chaîne"),
        Binding("enter", "open_record", "Fiche", key_display="Entrée"),
        Binding("ctrl+r", "clear_filters", "Effacer les filtres", key_display="^R"),
        Binding("f5", "reload", "Actualiser", key_display="F5"),
    ]

    class PageLoaded(Message):
        def __init__(self, page: JournalPage, filters: JournalFilter, append: bool) -> None:
            super().__init__()
            self.page, self.filters, self.append = page, filters, append

    class HeadLoaded(Message):
        def __init__(self, seq: int, hash: str) -> None:
            super().__init__()
            self.seq, self.hash = seq, hash

    class ChainChecked(Message):
        def __init__(self, check: ChainCheck) -> None:
            super().__init__()
            self.check = check

    def __init__(self) -> None:
        super().__init__()
        self._filters = JournalFilter()
        self._entries: list[EntryLine] = []
        self._more = False
        self._loading_more = False
        self._debounce: Timer | None = None
        self._verifying = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(classes="filters"):
            yield Label("Objet")
            yield Select(
                [(label, code) for code, label in journal_text.ENTITY_LABELS.items()],
                prompt="tous",
                id="entity-type",
                compact=True,
            )
            yield Label("n°")
            yield Input(placeholder="id", type="integer", id="entity-id", compact=True)
            yield Label("Opérateur")
            yield Input(placeholder="identifiant", id="operator", compact=True)
        with Horizontal(classes="filters"):
            yield Label("Action")
            yield Select(
                sorted((label, code) for code, label in journal_text.ACTION_LABELS.items()),
                prompt="toutes",
                id="action",
                compact=True,
            )
            yield Label("Du")
            yield Input(placeholder="JJ/MM/AAAA", id="since", compact=True)
            yield Label("au")
            yield Input(placeholder="JJ/MM/AAAA", id="until", compact=True)
        yield Static("", id="filter-problem")
        yield DataTable(id="entries", cursor_type="row", zebra_stripes=True)
        yield Static("", id="entries-more")
        yield Static("", id="entry-detail")
        with Horizontal(id="verify-progress"):
            yield Label("Vérification en cours… ", id="verify-label")
            yield ProgressBar(id="verify-bar", show_eta=False)
        yield Static("Chaîne non vérifiée (touche V).", id="verification")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#entries", DataTable).focus()
        self.load_page(self._filters)
        self.load_head()

    # -- filters

    def _read_filters(self) -> JournalFilter | None:
        """The filters typed, or None (and the problem shown) if one is not valid."""
        problem = self.query_one("#filter-problem", Static)
        entity_type = self.query_one("#entity-type", Select).value
        number = self.query_one("#entity-id", Input).value.strip()
        operator = self.query_one("#operator", Input).value.strip()
        action = self.query_one("#action", Select).value
        days: list[dt.date | None] = []
        for field, name in (("#since", "de début"), ("#until", "de fin")):
            text = self.query_one(field, Input).value.strip()
            try:
                days.append(parse_date(text) if text else None)
            except ValueError:
                problem.update(f"Date {name} invalide : « {text} » (JJ/MM/AAAA).")
                return None
        if number and not number.isdigit():
            problem.update(f"Numéro invalide : « {number} ».")
            return None
        since, until = journal_ops.day_range(days[0], days[1])
        problem.update("")
        return JournalFilter(
            entity_type=None if entity_type is Select.NULL else str(entity_type),
            entity_id=int(number) if number else None,
            operator=operator or None,
            action=None if action is Select.NULL else str(action),
            since=since,
            until=until,
        )

    @on(Input.Changed, ".filters Input")
    def _filters_changed(self) -> None:
        # Typed filters apply after a short pause, not at every key.
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(0.3, self._apply_filters)

    @on(Input.Submitted, ".filters Input")
    @on(Select.Changed, ".filters Select")
    def _apply_filters(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        filters = self._read_filters()
        if filters is not None:
            self._filters = filters
            self.load_page(filters)

    def action_clear_filters(self) -> None:
        for field in self.query(".filters Input").results(Input):
            field.value = ""
        for select in self.query(".filters Select").results(Select):
            select.clear()
        self._apply_filters()

    def action_reload(self) -> None:
        self.load_page(self._filters)
        self.load_head()

    # -- entries, a page at a time

    @work(thread=True, exit_on_error=False, exclusive=True, group="entries")
    def load_page(self, filters: JournalFilter, before_seq: int | None = None) -> None:
        page = journal_ops.entries_page(self.workspace, filters, before_seq=before_seq, limit=PAGE)
        self.post_message(self.PageLoaded(page, filters, append=before_seq is not None))

    def on_journal_screen_page_loaded(self, message: PageLoaded) -> None:
        self._loading_more = False
        if message.filters != self._filters:
            return  # the filters changed since: their own page is coming
        page = message.page
        self._entries = [*self._entries, *page.entries] if message.append else page.entries
        self._more = page.more
        rows: list[tables.Row] = [
            (
                str(entry.seq),
                [
                    str(entry.seq),
                    journal_text.paris_time(entry.recorded_at),
                    entry.operator,
                    journal_text.action_label(entry.action),
                    journal_text.subject(entry),  # type: ignore[arg-type]
                    (entry.reason or "").replace("\n", " "),
                ],
                "",
            )
            for entry in self._entries
        ]
        tables.fill(self.query_one("#entries", DataTable), COLUMNS, rows, max_width=50)
        more = self.query_one("#entries-more", Static)
        count = len(rows)
        if not count:
            more.update("Aucune entrée ne correspond.")
        elif self._more:
            more.update(f"{count} entrées les plus récentes ; la suite se charge en descendant.")
        else:
            more.update(f"{count} entrée{'s' if count > 1 else ''}.")
        self._show_entry()

    def action_open_record(self) -> None:
        self._open_record()

    @on(DataTable.RowSelected, "#entries")
    def _open_record(self) -> None:
        key = tables.selected_key(self.query_one("#entries", DataTable))
        entry = next((e for e in self._entries if str(e.seq) == key), None)
        if entry is not None and entry.entity_type == "credential" and entry.entity_id:
            self.cartes.open_record(entry.entity_id)

    @on(DataTable.RowHighlighted, "#entries")
    def _entry_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_entry()
        if (
            self._more
            and not self._loading_more
            and event.cursor_row >= event.data_table.row_count - 1
        ):
            self._loading_more = True
            self.load_page(self._filters, before_seq=self._entries[-1].seq)

    def _show_entry(self) -> None:
        key = tables.selected_key(self.query_one("#entries", DataTable))
        entry = next((e for e in self._entries if str(e.seq) == key), None)
        detail = self.query_one("#entry-detail", Static)
        if entry is None:
            detail.update("")
            return
        head = f"Entrée n°{entry.seq} ({entry.action}), empreinte {entry.hash[:16]}…"
        if entry.reason:
            head += f" — motif : {entry.reason}"
        changes = journal_text.changes(entry)  # type: ignore[arg-type]
        if changes:
            changes = f"Changements : {changes}"
        detail.update(f"{head}\n{changes}" if changes else head)

    # -- the chain

    @work(thread=True, exit_on_error=False, exclusive=True, group="head")
    def load_head(self) -> None:
        self.post_message(self.HeadLoaded(*journal_ops.head(self.workspace)))

    def on_journal_screen_head_loaded(self, message: HeadLoaded) -> None:
        verification = self.query_one("#verification", Static)
        checked = verification.has_class("intact") or verification.has_class("broken")
        if not self._verifying and not checked:
            verification.update(
                f"Chaîne non vérifiée (touche V) — tête : n°{message.seq}, empreinte "
                f"{message.hash[:16]}…"
            )

    def action_verify(self) -> None:
        if self._verifying:
            return
        self._verifying = True
        self.query_one("#verify-progress").add_class("running")
        self.query_one("#verify-bar", ProgressBar).update(total=None, progress=0)
        self.verify_chain()

    @work(thread=True, exit_on_error=False, exclusive=True, group="verify")
    def verify_chain(self) -> None:
        try:
            check = journal_ops.verify(
                self.workspace,
                progress=lambda checked, total: self.app.call_from_thread(
                    self._verify_progress, checked, total
                ),
            )
        finally:
            self.app.call_from_thread(self._verify_ended)
        self.post_message(self.ChainChecked(check))

    def _verify_progress(self, checked: int, total: int) -> None:
        self.query_one("#verify-label", Label).update(f"Vérification : {checked}/{total} ")
        self.query_one("#verify-bar", ProgressBar).update(total=max(total, 1), progress=checked)

    def _verify_ended(self) -> None:
        self._verifying = False
        self.query_one("#verify-progress").remove_class("running")

    def on_journal_screen_chain_checked(self, message: ChainChecked) -> None:
        check = message.check
        verification = self.query_one("#verification", Static)
        verification.set_class(check.intact, "intact")
        verification.set_class(not check.intact, "broken")
        verification.update(verification_text(check))
        if not check.intact:
            self.notify(
                verification_text(check), title="Journal altéré", severity="error", timeout=15
            )
