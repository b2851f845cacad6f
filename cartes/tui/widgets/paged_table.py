"""A table over more rows than memory should hold: only the pages on screen are fetched.

In the spirit of toolong's log view: the widget's virtual height is the number of rows, and
``render_line`` draws the visible ones from a small cache of pages; a page that is not
there yet is asked for in a thread worker (through the ``fetch`` callable the screen gives,
which reads the database) and shown as a placeholder until it arrives. Every ``load``
starts a new generation: pages and totals of an older generation are dropped on arrival, so
a slow answer to an old query never overwrites a newer one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Generic, Literal, TypeVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import Worker, WorkerState

Row = TypeVar("Row")
Fetch = Callable[[int, int], Sequence[Any]]

PLACEHOLDER = "… chargement"
UNREADABLE = "(lecture impossible)"
_SEPARATOR = " "


@dataclass(frozen=True)
class Column:
    """A column: its title, its width (the minimum when ``flex``), how its cells align, and
    the sort key it stands for (the header shows ▲/▼ beside the sorted one)."""

    label: str
    width: int
    flex: int = 0
    align: Literal["left", "right"] = "left"
    sort_key: object = None


class PagedTable(ScrollView, Generic[Row], can_focus=True):
    """Rows fetched a page at a time; a cursor row; Enter chooses the row."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "paged-table--header",
        "paged-table--cursor",
        "paged-table--placeholder",
        "paged-table--expired",
        "paged-table--gap",
        "paged-table--order-late",
    }
    DEFAULT_CSS = """
    PagedTable {
        height: 1fr;
        scrollbar-size-vertical: 1;
        background: $surface;
    }
    PagedTable > .paged-table--header { text-style: bold; background: $panel; }
    PagedTable > .paged-table--cursor { background: $accent 40%; }
    PagedTable:focus > .paged-table--cursor { background: $accent; }
    PagedTable > .paged-table--placeholder { color: $text-muted; text-style: italic; }
    PagedTable > .paged-table--expired { color: $error; text-style: bold; }
    PagedTable > .paged-table--gap { color: $error; }
    PagedTable > .paged-table--order-late { color: $warning; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Ligne précédente", show=False),
        Binding("down", "cursor(1)", "Ligne suivante", show=False),
        Binding("pageup", "page(-1)", "Page précédente", show=False),
        Binding("pagedown", "page(1)", "Page suivante", show=False),
        Binding("home", "first", "Début", show=False),
        Binding("end", "last", "Fin", show=False),
        Binding("enter", "choose", "Ouvrir", show=False),
    ]

    cursor_row: reactive[int] = reactive(0, init=False)

    class PageLoaded(Message):
        """A page arrived from its worker (internal)."""

        def __init__(self, generation: int, index: int, rows: Sequence[Any]) -> None:
            super().__init__()
            self.generation = generation
            self.index = index
            self.rows = rows

    class FirstPageShown(Message):
        """The first page of a load is on screen (the time to start slower work)."""

        def __init__(self, table: PagedTable[Any], generation: int) -> None:
            super().__init__()
            self.table = table
            self.generation = generation

    class LoadFailed(Message):
        """A page could not be read; ``error`` is the exception."""

        def __init__(self, table: PagedTable[Any], error: BaseException) -> None:
            super().__init__()
            self.table = table
            self.error = error

    class RowChosen(Message):
        """Enter (or a double click) on a row."""

        def __init__(self, table: PagedTable[Any], row: Any) -> None:
            super().__init__()
            self.table = table
            self.row = row

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        cells: Callable[[Row], Sequence[str]],
        row_class: Callable[[Row], str | None] = lambda _row: None,
        page_size: int = 100,
        cache_pages: int = 6,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.columns = tuple(columns)
        self._cells = cells
        self._row_class = row_class
        self.page_size = page_size
        self.cache_pages = cache_pages
        self.generation = 0
        self._fetch: Fetch | None = None
        self._pages: OrderedDict[int, Sequence[Row]] = OrderedDict()
        self._pending: set[int] = set()
        self._failed: set[int] = set()
        self._workers: dict[Worker[None], tuple[int, int]] = {}
        self._first_shown = False
        # Rows known to exist: exact once ``total_known``; until then, what the pages
        # fetched so far prove (the screen sets the exact count when it has it).
        self.total = 0
        self.total_known = False
        self._sort: tuple[object, bool] | None = None
        self._widths: list[int] = [column.width for column in self.columns]
        self._base_style: Style | None = None
        self._replacing = False
        self._keep_position = False
        # The text of each row drawn (a row does not change within a generation).
        self._texts: dict[int, str] = {}
        # (generation, offset, limit) of every page asked for: what was read, for tests.
        self.fetched: list[tuple[int, int, int]] = []

    # -- what the screen calls ----------------------------------------------------------

    def load(self, fetch: Fetch, *, keep_position: bool = False) -> int:
        """Read the rows again through ``fetch(offset, limit)`` (called in a thread);
        returns the new generation. The rows shown stay until the new first page comes
        (no flash of an empty table, and no drawing while the page is read). With
        ``keep_position`` (the same rows read again), the cursor and the scroll stay."""
        self.generation += 1
        self._keep_position = keep_position
        self.workers.cancel_group(self, "paged-table")
        self._workers.clear()
        self._fetch = fetch
        self._pending.clear()
        self._failed.clear()
        self._first_shown = False
        self._replacing = True
        self._request(0)
        return self.generation

    def _forget(self) -> None:
        """The rows of the previous generation leave the screen."""
        self._replacing = False
        self._pages.clear()
        self._texts.clear()
        self.total_known = False
        if not self._keep_position:  # else the old number stands until the new one comes
            self.total = 0
            self.cursor_row = 0
            self.scroll_to(0, 0, animate=False)

    def set_total(self, generation: int, total: int, *, exact: bool = True) -> None:
        """The number of rows of ``generation`` (ignored for an older one): exact, or a
        lower bound while the exact one is being counted."""
        if generation != self.generation or self.total_known:
            return
        if not exact:
            self.total = max(self.total, total)
            self._resize_virtual()
            self.refresh()
            return
        self.total = total
        self.total_known = True
        self.cursor_row = min(self.cursor_row, max(total - 1, 0))
        self._resize_virtual()
        self.refresh()

    def set_sort(self, key: object, descending: bool) -> None:
        self._sort = (key, descending)
        self.refresh_line(0)
        self.refresh()

    def row_at(self, index: int) -> Row | None:
        page = self._pages.get(index // self.page_size)
        if page is None:
            return None
        offset = index % self.page_size
        return page[offset] if offset < len(page) else None

    @property
    def cursor_value(self) -> Row | None:
        return self.row_at(self.cursor_row)

    @property
    def cached_pages(self) -> list[int]:
        """Indexes of the pages held in memory (never more than ``cache_pages``)."""
        return list(self._pages)

    @property
    def loading(self) -> bool:
        return bool(self._pending)

    # -- fetching -------------------------------------------------------------------------

    def _request(self, index: int) -> None:
        if self._fetch is None or index in self._pending or index in self._failed:
            return
        if self._replacing and index != 0:
            return  # the rows on screen are the previous generation's
        self._pending.add(index)
        offset = index * self.page_size
        self.fetched.append((self.generation, offset, self.page_size))
        worker = self.run_worker(
            partial(self._read_page, self._fetch, self.generation, index),
            thread=True,
            exit_on_error=False,
            group="paged-table",
            name=f"page {index}",
        )
        self._workers[worker] = (self.generation, index)

    def _read_page(self, fetch: Fetch, generation: int, index: int) -> None:
        # In a thread: read, then hand the rows over by message (never touch the widget).
        rows = fetch(index * self.page_size, self.page_size)
        self.post_message(self.PageLoaded(generation, index, rows))

    def on_paged_table_page_loaded(self, message: PageLoaded) -> None:
        message.stop()
        if message.generation != self.generation:
            return
        self._pending.discard(message.index)
        if self._replacing:
            self._forget()
        self._pages[message.index] = message.rows
        self._pages.move_to_end(message.index)
        while len(self._pages) > self.cache_pages:
            self._pages.popitem(last=False)
        end = message.index * self.page_size + len(message.rows)
        if not self.total_known:
            if len(message.rows) < self.page_size and (message.rows or message.index == 0):
                # A short page is the last one: the total is known without counting.
                self.total, self.total_known = end, True
                self.cursor_row = min(self.cursor_row, max(end - 1, 0))
            else:
                self.total = max(self.total, end)
        self._resize_virtual()
        self.refresh()
        if message.index == 0 and not self._first_shown:
            self._first_shown = True
            self.call_after_refresh(self.post_message, self.FirstPageShown(self, self.generation))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        place = self._workers.get(event.worker)
        if place is None or event.state not in (
            WorkerState.ERROR,
            WorkerState.SUCCESS,
            WorkerState.CANCELLED,
        ):
            return
        del self._workers[event.worker]
        generation, index = place
        if event.state is WorkerState.ERROR and generation == self.generation:
            if self._replacing:
                self._forget()
                self._resize_virtual()
            self._pending.discard(index)
            self._failed.add(index)  # not asked again until the next load
            self.refresh()
            if event.worker.error is not None:
                self.post_message(self.LoadFailed(self, event.worker.error))

    # -- geometry ---------------------------------------------------------------------------

    @property
    def _body_height(self) -> int:
        """Rows of data the viewport shows (the header takes a line)."""
        return max(self.scrollable_content_region.height - 1, 1)

    def _layout_widths(self, width: int) -> list[int]:
        widths = [column.width for column in self.columns]
        spare = width - sum(widths) - len(_SEPARATOR) * (len(widths) - 1) - 1
        flexes = sum(column.flex for column in self.columns)
        if spare > 0 and flexes:
            for position, column in enumerate(self.columns):
                widths[position] += spare * column.flex // flexes
        return widths

    def _resize_virtual(self) -> None:
        width = self.scrollable_content_region.width or self.size.width
        widths = self._layout_widths(width)
        if widths != self._widths:
            self._widths = widths
            self._texts.clear()
        line = sum(self._widths) + len(_SEPARATOR) * (len(self._widths) - 1) + 1
        self.virtual_size = Size(line, self.total + 1)

    def on_resize(self, _event: events.Resize) -> None:
        self._resize_virtual()
        self.refresh()

    # -- cursor -----------------------------------------------------------------------------

    def _last_row(self) -> int:
        return max(self.total - 1, 0)

    def watch_cursor_row(self, old: int, new: int) -> None:
        top = round(self.scroll_y)
        if new < top:
            self.scroll_to(y=new, animate=False)
        elif new >= top + self._body_height:
            self.scroll_to(y=new - self._body_height + 1, animate=False)
        self.refresh()

    def action_cursor(self, step: int) -> None:
        self.cursor_row = min(max(self.cursor_row + step, 0), self._last_row())

    def action_page(self, direction: int) -> None:
        step = self._body_height * direction
        target_top = min(
            max(round(self.scroll_y) + step, 0), max(self.total - self._body_height, 0)
        )
        self.scroll_to(y=target_top, animate=False)
        self.cursor_row = min(max(self.cursor_row + step, 0), self._last_row())

    def action_first(self) -> None:
        self.cursor_row = 0

    def action_last(self) -> None:
        self.cursor_row = self._last_row()

    def action_choose(self) -> None:
        row = self.cursor_value
        if row is not None:
            self.post_message(self.RowChosen(self, row))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y < 1:
            return
        index = round(self.scroll_y) + offset.y - 1
        if index < self.total:
            self.cursor_row = index
            if event.chain > 1:
                self.action_choose()

    # -- drawing ----------------------------------------------------------------------------

    def _cell(self, text: str, width: int, align: str) -> str:
        if cell_len(text) > width:
            return set_cell_size(text[: width * 2], width - 1) + "…" if width > 1 else ""
        padding = " " * (width - cell_len(text))
        return padding + text if align == "right" else text + padding

    def _line(self, texts: Sequence[str]) -> str:
        cells = (
            self._cell(text, width, column.align)
            for text, width, column in zip(texts, self._widths, self.columns, strict=True)
        )
        return " " + _SEPARATOR.join(cells)

    def _header_texts(self) -> list[str]:
        texts = []
        for column in self.columns:
            label = column.label
            if self._sort is not None and column.sort_key == self._sort[0]:
                label += " ▼" if self._sort[1] else " ▲"
            texts.append(label)
        return texts

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's own style walks its ancestors: once per render, not once per line.
        self._base_style = self.rich_style
        self._read_ahead()
        return super().render_lines(crop)

    def _read_ahead(self) -> None:
        """Ask for the next page when the bottom of the screen comes within a screenful
        of it, so that paging down seldom waits for the database."""
        if self._replacing or self._fetch is None:
            return
        bottom = round(self.scroll_y) + self._body_height
        following = bottom // self.page_size + 1
        start = following * self.page_size
        near = start - bottom < self._body_height
        if near and (not self.total_known or start < self.total) and following not in self._pages:
            self._request(following)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self._base_style or self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("paged-table--header")
            text = self._line(self._header_texts())
        else:
            index = scroll_y + y - 1
            # Past the known rows: blank, except the first row after them while their
            # number is unknown (a page on its way, or one that could not be read).
            if index > self.total or (index == self.total and self.total_known):
                return Strip.blank(width, base)
            style, text = self._row_line(index, base)
        line_width = max(self.virtual_size.width, width)
        strip = Strip([Segment(text, style)]).extend_cell_length(line_width, style)
        return strip.crop(scroll_x, scroll_x + width)

    def _row_line(self, index: int, base: Style) -> tuple[Style, str]:
        page_index = index // self.page_size
        row = self.row_at(index)
        if row is None:
            style = base + self.get_component_rich_style("paged-table--placeholder")
            if page_index in self._failed:
                text = f" {UNREADABLE}"
            else:
                self._request(page_index)
                text = f" {PLACEHOLDER}"
        else:
            self._pages.move_to_end(page_index)
            style = base
            row_class = self._row_class(row)
            if row_class:
                style += self.get_component_rich_style(f"paged-table--{row_class}", partial=True)
            text = self._texts.get(index)
            if text is None:
                if len(self._texts) >= self.cache_pages * self.page_size:
                    self._texts.clear()
                text = self._texts[index] = self._line(self._cells(row))
        if index == self.cursor_row:
            style += self.get_component_rich_style("paged-table--cursor", partial=True)
        return style, text

    def row_style(self, index: int) -> Style:
        """The style the row at ``index`` is drawn with (for tests and checks)."""
        return self._row_line(index, self.rich_style)[0]
