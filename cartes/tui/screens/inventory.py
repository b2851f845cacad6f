"""The « Inventaire » screen: every credential, a page at a time, with a filter box.

The rows come from ``inventaire.browse`` through a ``PagedTable``: only the pages on
screen are read. Each change of the filters starts a new load (a new generation of the
table): its first page is painted first, then the number of rows is counted in a worker of
its own, since counting can take longer than reading one page.
"""

from __future__ import annotations

from time import monotonic
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Footer, Header, Input, Select, Static
from textual.worker import get_current_worker

from cartes import messages
from cartes.tui import formats
from cartes.tui.base import CartesScreen
from cartes.tui.failures import failure_text
from cartes.tui.widgets.paged_table import Column, PagedTable
from inventaire import browse
from inventaire.browse import InventoryQuery, InventoryRow, SortKey, Urgency
from inventaire.dbapi import ReadConnection
from inventaire.enums import CardModel, CredentialKind, CredentialState
from inventaire.errors import QueryInterrupted

# A burst of keystrokes makes one query, sent once the typing pauses this long; the first
# key after a pause is sent at once (nothing to wait for).
DEBOUNCE_S = 0.08
IN_SERVICE = "IN_SERVICE"
# Counted up to this first: past it, the screen says "more than" while the exact count runs.
COUNT_BOUND = 10_000
COUNT_AFTER_S = 0.3
SORT_ORDER = tuple(SortKey)
SORT_LABELS = {
    SortKey.EXPIRY: "expiration",
    SortKey.HOLDER: "titulaire",
    SortKey.KIND: "type",
    SortKey.STATE: "état",
    SortKey.ORGANISATION: "organisation",
    SortKey.ID: "n°",
}
URGENCY_CLASSES = {
    Urgency.EXPIRED: "expired",
    Urgency.GAP: "gap",
    Urgency.ORDER_LATE: "order-late",
}
URGENCY_LABELS = {
    Urgency.EXPIRED: "expiré",
    Urgency.GAP: "rupture certaine",
    Urgency.ORDER_LATE: "commande en retard",
}
COLUMNS = (
    Column("n°", 7, align="right", sort_key=SortKey.ID),
    Column("type", 16, sort_key=SortKey.KIND),
    Column("état", 11, sort_key=SortKey.STATE),
    Column("titulaire", 18, flex=3, sort_key=SortKey.HOLDER),
    Column("organisation", 14, flex=2, sort_key=SortKey.ORGANISATION),
    Column("n° de série", 14),
    Column("expiration", 12, sort_key=SortKey.EXPIRY),
    Column("jours", 6, align="right"),
    Column("lim. commande", 13),
)
NOTHING_MATCHES = "Aucun support ne correspond à ces critères."


def kind_text(row: InventoryRow) -> str:
    label = messages.KIND_LABELS[row.kind]
    if row.model is CardModel.OLD:
        label += " (ancien)"
    return label


def row_cells(row: InventoryRow) -> list[str]:
    return [
        str(row.id),
        kind_text(row),
        messages.STATE_LABELS[row.state],
        f"{row.last_name.upper()} {row.first_name}",
        row.organisation,
        row.serial or "",
        formats.day(row.expires_on),
        "" if row.days_left is None else formats.number(row.days_left),
        formats.day(row.order_by),
    ]


def row_class(row: InventoryRow) -> str | None:
    return URGENCY_CLASSES.get(row.urgency)


class InventoryScreen(CartesScreen):
    TITLE = "Inventaire"
    AUTO_FOCUS = "#table"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-narrow"),
        (120, "-wide"),
    ]
    DEFAULT_CSS = """
    InventoryScreen #filters { height: 3; }
    InventoryScreen #text { width: 1fr; min-width: 20; }
    InventoryScreen #kind { width: 24; }
    InventoryScreen #state { width: 26; }
    InventoryScreen #days { width: 14; }
    InventoryScreen.-narrow #kind { width: 21; }
    InventoryScreen.-narrow #state { width: 19; }
    InventoryScreen.-narrow #days { width: 11; }
    InventoryScreen.-narrow Select > SelectCurrent { padding: 0 0 0 1; }
    InventoryScreen.-narrow Input { padding: 0 1; }
    InventoryScreen #status { height: 1; padding: 0 1; color: $text-muted; }
    InventoryScreen #empty { height: auto; padding: 1 2; display: none; }
    InventoryScreen.-empty #empty { display: block; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "Rechercher", key_display="/"),
        Binding("s", "sort", "Trier"),
        Binding("i", "reverse", "Inverser"),
        Binding("S", "reverse", "Inverser", show=False),
        Binding("t", "cycle_kind", "Type"),
        Binding("e", "cycle_state", "État"),
        Binding("r", "refresh", "Actualiser"),
        Binding("f5", "refresh", "Actualiser", show=False),
        Binding("escape", "leave_filters", "Vers la liste", show=False),
    ]

    class Counted(Message):
        """The number of rows of one load (generation) of the table."""

        def __init__(self, generation: int, total: int, *, exact: bool) -> None:
            super().__init__()
            self.generation = generation
            self.total = total
            self.exact = exact  # else "at least"

    def __init__(self) -> None:
        super().__init__()
        self.query_shown: InventoryQuery | None = None
        self._sort = SortKey.EXPIRY
        self._descending = False
        self._timer: Timer | None = None
        self._last_change = 0.0
        self._away = False
        # The connection of the count under way, if any, to interrupt when the query changes.
        self._counting: ReadConnection | None = None

    def compose(self) -> ComposeResult:
        kinds = [(label, kind.value) for kind, label in messages.KIND_LABELS.items()]
        states = [("en service", IN_SERVICE)] + [
            (label, state.value) for state, label in messages.STATE_LABELS.items()
        ]
        self._choices = {"#kind": [v for _l, v in kinds], "#state": [v for _l, v in states]}
        yield Header()
        with Horizontal(id="filters"):
            yield Input(
                placeholder="/ nom, courriel, série, organisation",
                id="text",
            )
            yield Select(kinds, prompt="tous les types", id="kind")
            yield Select(states, prompt="tous les états", id="state")
            yield Input(placeholder="≤ jours", type="integer", id="days")
        yield Static("", id="status")
        yield Static(NOTHING_MATCHES, id="empty")
        yield PagedTable[InventoryRow](COLUMNS, cells=row_cells, row_class=row_class, id="table")
        yield Footer()

    @property
    def table(self) -> PagedTable[InventoryRow]:
        return self.query_one("#table", PagedTable)

    def on_screen_suspend(self) -> None:
        self._away = True

    def on_screen_resume(self) -> None:
        # The first time; or back from a record (which may have changed a row) or from
        # another screen: read again. (Textual may resume a screen twice on its first show.)
        if self.query_shown is None or self._away:
            self.apply(force=self.query_shown is not None, keep_position=True)
        self._away = False

    # -- the query ----------------------------------------------------------------------------

    def current_query(self) -> InventoryQuery:
        kind = self.query_one("#kind", Select).value
        state = self.query_one("#state", Select).value
        states: tuple[CredentialState, ...] = ()
        if state == IN_SERVICE:
            states = (CredentialState.ACTIVE, CredentialState.SUSPENDED)
        elif isinstance(state, str):
            states = (CredentialState(state),)
        days = self.query_one("#days", Input).value.strip()
        return InventoryQuery(
            text=self.query_one("#text", Input).value.strip(),
            kinds=(CredentialKind(kind),) if isinstance(kind, str) else (),
            states=states,
            expires_within=int(days) if days.lstrip("-").isdigit() else None,
            sort=self._sort,
            descending=self._descending,
        )

    def apply(self, *, force: bool = False, keep_position: bool = False) -> None:
        """Show the rows of the filters as they stand (unless already shown); with
        ``keep_position``, the same rows read again stay where they were on screen."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        query = self.current_query()
        if query == self.query_shown and not force:
            return
        self.query_shown = query
        workspace = self.workspace
        today = workspace.today()
        renewal = workspace.renewal()

        def fetch(offset: int, limit: int) -> list[InventoryRow]:
            with workspace.read() as connection:
                return browse.page(
                    connection, query, today=today, renewal=renewal, offset=offset, limit=limit
                )

        self._stop_counting()
        self.remove_class("-empty")
        self.table.set_sort(query.sort, query.descending)
        self.table.load(fetch, keep_position=keep_position)
        self._show_status()

    def _changed(self) -> None:
        now = monotonic()
        quiet = now - self._last_change >= DEBOUNCE_S
        self._last_change = now
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if quiet:
            self.apply()
        else:
            self._timer = self.set_timer(DEBOUNCE_S, self.apply)

    @on(Input.Changed)
    def _input_changed(self, _event: Input.Changed) -> None:
        self._changed()

    @on(Select.Changed)
    def _select_changed(self, _event: Select.Changed) -> None:
        self.apply()

    @on(Input.Submitted)
    def _input_submitted(self, _event: Input.Submitted) -> None:
        self.apply()
        self.table.focus()

    def show(
        self,
        *,
        text: str = "",
        kind: CredentialKind | None = None,
        in_service: bool = False,
        expires_within: int | None = None,
        sort: SortKey | None = None,
    ) -> None:
        """Set the filters (from another screen) and show their rows."""
        if sort is not None:
            self._sort, self._descending = sort, False
        with self.prevent(Input.Changed, Select.Changed):
            self.query_one("#text", Input).value = text
            kinds = self.query_one("#kind", Select)
            kinds.value = kind.value if kind is not None else Select.NULL
            states = self.query_one("#state", Select)
            states.value = IN_SERVICE if in_service else Select.NULL
            self.query_one("#days", Input).value = (
                "" if expires_within is None else str(expires_within)
            )
        self.apply()
        self.table.focus()

    # -- the count, after the first page ----------------------------------------------------

    @on(PagedTable.FirstPageShown)
    def _first_page_shown(self, event: PagedTable.FirstPageShown) -> None:
        table = self.table
        if event.generation != table.generation:
            return
        if table.total_known:  # the first page was the last: nothing to count
            self._show_status()
            return
        # Counting can take far longer than a page (a short word selects most of the
        # inventory): only once the typing has paused, so that counts for every
        # keystroke do not pile up and slow down the pages.
        generation, query = event.generation, self.query_shown
        assert query is not None

        def count_if_current() -> None:
            if self.table.generation == generation:
                self.count_rows(generation, query)

        self.set_timer(COUNT_AFTER_S, count_if_current)

    @work(thread=True, exit_on_error=False, exclusive=True, group="inventory-count")
    def count_rows(self, generation: int, query: InventoryQuery) -> None:
        # A bounded count first (quick), then the exact one, unless the rows shown have
        # changed in between; a newer query interrupts it (``_stop_counting``): an exact
        # count of a short word takes a core for a second, which the pages need.
        today = self.workspace.today()

        def wanted() -> bool:
            return not get_current_worker().is_cancelled and self.table.generation == generation

        with self.workspace.read() as connection:
            self._counting = connection
            try:
                bounded = browse.count(connection, query, today=today, at_most=COUNT_BOUND)
                if bounded < COUNT_BOUND:
                    self.post_message(self.Counted(generation, bounded, exact=True))
                    return
                self.post_message(self.Counted(generation, bounded, exact=False))
                if not wanted():
                    return
                total = browse.count(connection, query, today=today)
            except QueryInterrupted:
                return
            finally:
                self._counting = None
        self.post_message(self.Counted(generation, total, exact=True))

    def _stop_counting(self) -> None:
        counting = self._counting
        if counting is not None:
            counting.interrupt()

    def on_inventory_screen_counted(self, message: Counted) -> None:
        self.table.set_total(message.generation, message.total, exact=message.exact)
        self._show_status()

    @on(PagedTable.LoadFailed)
    def _load_failed(self, event: PagedTable.LoadFailed) -> None:
        self.notify(failure_text(event.error), title="Inventaire", severity="error", timeout=10)
        self._show_status()

    def _show_status(self) -> None:
        table = self.table
        if table.total_known:
            shown = formats.plural(table.total, "support")
            self.set_class(table.total == 0, "-empty")
        elif table.total:
            shown = f"au moins {formats.plural(table.total, 'support')} (décompte en cours)"
        else:
            shown = "chargement…"
        order = "décroissant" if self._descending else "croissant"
        self.query_one("#status", Static).update(
            f"{shown} · tri : {SORT_LABELS[self._sort]} ({order})"
        )

    # -- keys ---------------------------------------------------------------------------------

    def action_search(self) -> None:
        self.query_one("#text", Input).focus()

    def action_leave_filters(self) -> None:
        self.table.focus()

    def action_sort(self) -> None:
        self._sort = SORT_ORDER[(SORT_ORDER.index(self._sort) + 1) % len(SORT_ORDER)]
        self.apply()

    def action_reverse(self) -> None:
        self._descending = not self._descending
        self.apply()

    def action_refresh(self) -> None:
        self.apply(force=True, keep_position=True)

    def _cycle(self, select_id: str) -> None:
        select: Select[str] = self.query_one(select_id, Select)
        values: list[object] = [Select.NULL, *self._choices[select_id]]
        position = values.index(select.value) if select.value in values else 0
        select.value = values[(position + 1) % len(values)]

    def action_cycle_kind(self) -> None:
        self._cycle("#kind")

    def action_cycle_state(self) -> None:
        self._cycle("#state")

    @on(PagedTable.RowChosen)
    def _row_chosen(self, event: PagedTable.RowChosen) -> None:
        self.cartes.open_record(event.row.id)
