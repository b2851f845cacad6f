"""Writing listings as an aligned table, CSV (French Excel: ``;``) or JSON."""

from __future__ import annotations

import csv
import errno
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from inventaire.errors import InventaireError


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


_ENCODER = json.JSONEncoder(ensure_ascii=False)


def json_array(out: TextIO, objects: Iterable[dict[str, Any]]) -> int:
    """A JSON array written as it is produced, one object per line; returns its length."""
    encode = _ENCODER.encode
    return json_texts(out, (encode(obj) for obj in objects))


def json_texts(out: TextIO, texts: Iterable[str], *, chunk: int = 2000) -> int:
    """A JSON array of objects already encoded (one per line), in chunks; returns its
    length."""
    count = 0
    pending: list[str] = []
    for text in texts:
        pending.append(text)
        if len(pending) == chunk:
            out.write(("[\n" if not count else ",\n") + ",\n".join(pending))
            count += len(pending)
            pending = []
    if pending:
        out.write(("[\n" if not count else ",\n") + ",\n".join(pending))
        count += len(pending)
    out.write("\n]\n" if count else "[]\n")
    return count


# Why a file could not be written, in French (the errors a user can do something about).
_OS_ERRORS = {
    errno.EACCES: "permission refusée",
    errno.EPERM: "permission refusée",
    errno.ENOENT: "dossier introuvable",
    errno.ENOTDIR: "un élément du chemin n'est pas un dossier",
    errno.EISDIR: "c'est un dossier",
    errno.EROFS: "système de fichiers en lecture seule",
    errno.ENOSPC: "plus de place sur le disque",
    errno.EDQUOT: "quota de disque dépassé",
    errno.ENAMETOOLONG: "nom trop long",
}


def unwritable(path: Path, exc: OSError) -> InventaireError:
    """The French refusal (``sortie_impossible``) for a file that cannot be written."""
    code = exc.errno or 0
    detail = _OS_ERRORS.get(code) or f"erreur système {errno.errorcode.get(code, code)}"
    return InventaireError("sortie_impossible", fichier=str(path), detail=detail)
