"""Filling a DataTable with a page of rows, its columns sized to them.

Columns are added with their width already measured: with auto-sized columns, a table
painted between ``add_row`` and the measure that follows on idle keeps the old widths
in its render cache (cells cut short), which fixed widths avoid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

# A row: its key, its cells, and a Rich style for the whole row ("" for none).
Row = tuple[str, Sequence[str], str]


def fill(
    table: DataTable[Any],
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    max_width: int = 60,
    keep_cursor: bool = True,
) -> None:
    """Replace the columns and rows of ``table``; the cursor stays on the same key if that
    row is still there."""
    selected: str | None = None
    if keep_cursor and table.row_count:
        try:
            selected = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:
            selected = None
    widths = [cell_len(label) for label in columns]
    for _key, cells, _style in rows:
        for index, cell in enumerate(cells):
            widths[index] = max(widths[index], min(cell_len(cell), max_width))
    table.clear(columns=True)
    for label, width in zip(columns, widths, strict=True):
        table.add_column(label, width=width)
    for key, cells, style in rows:
        table.add_row(*(Text(cell, style=style) if style else cell for cell in cells), key=key)
    if selected is not None and selected in table.rows:
        table.move_cursor(row=table.get_row_index(selected), animate=False)


def selected_key(table: DataTable[Any]) -> str | None:
    """The key of the row under the cursor, if any."""
    if not table.row_count:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except Exception:
        return None
