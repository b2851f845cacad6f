"""Reading tabular files (CSV as French Excel exports them, and XLSX) into rows of text.

CSV: UTF-8 (with or without BOM) or Windows-1252, ``;`` or ``,`` as separator, detected
from the header line. XLSX: the first sheet (or a named one), dates as ISO text.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inventaire.errors import ImportFileUnreadable

XLSX_SUFFIXES = {".xlsx", ".xlsm"}


@dataclass
class Table:
    """A header and its rows; ``rows`` yields (line number, cells) and may be consumed once."""

    header: list[str]
    rows: Iterator[tuple[int, list[str]]]
    total: int | None
    encoding: str | None = None
    delimiter: str | None = None


def open_table(path: Path, *, sheet: str | None = None) -> Table:
    """Open ``path`` as a table, or raise ``ImportFileUnreadable`` saying why."""
    if not path.is_file():
        raise ImportFileUnreadable("fichier_absent", fichier=str(path))
    if path.suffix.lower() in XLSX_SUFFIXES:
        return _open_xlsx(path, sheet)
    return _open_csv(path)


def _detect_encoding(path: Path) -> tuple[str, int]:
    """UTF-8 if the whole file decodes as UTF-8, else Windows-1252; and the number of lines.

    Read in chunks: the file is then streamed, never held in memory whole.
    """
    utf8 = codecs.getincrementaldecoder("utf-8")()
    is_utf8 = True
    lines = 0
    with path.open("rb") as handle:
        first = handle.read(4096)
        if b"\x00" in first:
            raise ImportFileUnreadable("fichier_binaire", fichier=str(path))
        chunk = first
        while chunk:
            lines += chunk.count(b"\n")
            if is_utf8:
                try:
                    utf8.decode(chunk)
                except UnicodeDecodeError:
                    is_utf8 = False
            chunk = handle.read(1 << 20)
    if is_utf8:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            is_utf8 = False
    if is_utf8:
        return "utf-8-sig", lines
    # Windows-1252 leaves five bytes undefined; a file using them is neither encoding.
    with path.open("rb") as handle:
        decoder = codecs.getincrementaldecoder("cp1252")()
        try:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise ImportFileUnreadable("encodage_inconnu", fichier=str(path)) from exc
    return "cp1252", lines


def _open_csv(path: Path) -> Table:
    try:
        encoding, lines = _detect_encoding(path)
        handle = path.open(encoding=encoding, newline="")
    except OSError as exc:
        raise ImportFileUnreadable(
            "lecture_impossible", fichier=str(path), detail=exc.strerror
        ) from exc
    first_line = handle.readline()
    if not first_line.strip():
        handle.close()
        raise ImportFileUnreadable("fichier_vide", fichier=str(path))
    delimiter = ";" if first_line.count(";") >= first_line.count(",") else ","
    handle.seek(0)
    reader = csv.reader(handle, delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        handle.close()
        raise ImportFileUnreadable(
            "csv_invalide", fichier=str(path), ligne=1, detail=str(exc)
        ) from exc

    def rows() -> Iterator[tuple[int, list[str]]]:
        with handle:
            line = reader.line_num + 1
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    raise ImportFileUnreadable(
                        "csv_invalide", fichier=str(path), ligne=line, detail=str(exc)
                    ) from exc
                yield line, cells
                line = reader.line_num + 1

    label = "utf-8" if encoding == "utf-8-sig" else "windows-1252"
    return Table(header, rows(), lines, label, delimiter)


def _open_xlsx(path: Path, sheet: str | None) -> Table:
    import zipfile

    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileUnreadable("xlsx_illisible", fichier=str(path)) from exc
    if sheet is not None and sheet not in workbook.sheetnames:
        raise ImportFileUnreadable(
            "feuille_absente",
            fichier=str(path),
            feuille=sheet,
            feuilles=", ".join(workbook.sheetnames),
        )
    worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
    values = worksheet.iter_rows(values_only=True)
    try:
        header = [_cell(value) for value in next(values)]
    except StopIteration:
        raise ImportFileUnreadable("fichier_vide", fichier=str(path)) from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for line, cells in enumerate(values, start=2):
                yield line, [_cell(value) for value in cells]
        finally:
            workbook.close()

    return Table(header, rows(), worksheet.max_row)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
