"""Writing listings as an aligned table, CSV (French Excel: ``;``) or JSON."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO


def table(out: TextIO, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """An aligned text table; returns the number of rows."""
    cells = [["" if value is None else str(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], len(value))
    out.write("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n")
    out.write("  ".join("─" * w for w in widths) + "\n")
    for row in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    return len(cells)


def csv_rows(out: TextIO, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """CSV with ``;`` as French spreadsheets expect; returns the number of rows."""
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(headers)
    count = 0
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
        count += 1
    return count


def json_array(out: TextIO, objects: Iterable[dict[str, Any]]) -> int:
    """A JSON array written as it is produced (one object per line); returns its length."""
    count = 0
    out.write("[")
    for obj in objects:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(obj, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
