"""``cartes stats``: statistics per organisation and kind (``inventaire.stats``) as tables,
CSV, JSON or an XLSX workbook.

Three tables: "Supports" (in service, expiring, expired, predicted gaps), "Demandes et
délais" (pending requests, measured lead times) and "Cartes d'urgence". In the table, CSV
and XLSX forms a group appears in a table only when one of its figures there is not zero;
the overall total always appears. JSON holds every group and every figure.

CSV: one file, ``;``-separated, one section per table; every row of a section, its header
included, starts with the column ``tableau`` naming the table (``supports``,
``demandes``, ``urgence``), and a blank line separates the sections. Decimal medians are
written with a comma, as French spreadsheets read them.

Like ``cartes liste`` it reads through the bare database driver and imports nothing of
SQLAlchemy. A file given with ``--sortie`` is written to a temporary file beside it, then
renamed: it is never left half-written.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from cartes import messages
from cartes.cli import output
from cartes.cli.context import Context
from inventaire import dbapi
from inventaire.dbapi import ReadConnection
from inventaire.enums import OperatorRole
from inventaire.errors import PermissionDenied, UnknownOperator
from inventaire.stats import Figures, Group, Statistics, compute
from inventaire.vocabulary import KIND_TOKENS, token_of


@dataclass(frozen=True)
class Column:
    """One figure as each output names it."""

    name: str  # attribute of ``Figures``
    key: str  # JSON key and CSV header
    short: str  # header of the terminal table
    header: str  # header of the XLSX sheet
    definition: str  # for the "Définitions" sheet


COLUMNS = {
    column.name: column
    for column in (
        Column(
            "in_service", "en_service", "en service", "En service", "supports actifs ou suspendus"
        ),
        Column(
            "expiring_30",
            "expirent_30_jours",
            "≤ 30 j",
            "Expirent sous 30 jours",
            "en service, expiration entre le jour de référence et 30 jours après",
        ),
        Column(
            "expiring_60",
            "expirent_60_jours",
            "≤ 60 j",
            "Expirent sous 60 jours",
            "en service, expiration entre le jour de référence et 60 jours après",
        ),
        Column(
            "expiring_90",
            "expirent_90_jours",
            "≤ 90 j",
            "Expirent sous 90 jours",
            "en service, expiration entre le jour de référence et 90 jours après",
        ),
        Column(
            "expired_in_service",
            "expires_en_service",
            "expirés",
            "Expirés encore en service",
            "en service alors que la date d'expiration est passée",
        ),
        Column(
            "gaps",
            "ruptures_prevues",
            "ruptures",
            "Ruptures prévues",
            "supports du plan de renouvellement (en service, non remplacés) dont le "
            "remplacement arrivera après l'expiration",
        ),
        Column(
            "gap_days_total",
            "ruptures_jours_total",
            "jours",
            "Jours de rupture (total)",
            "somme des jours de rupture prévus",
        ),
        Column(
            "gap_days_max",
            "ruptures_jours_max",
            "max (j)",
            "Rupture la plus longue (jours)",
            "plus longue rupture prévue, en jours",
        ),
        Column(
            "requests_pending",
            "demandes_en_attente",
            "en attente",
            "Demandes en attente",
            "supports demandés ou reçus au SAR, pas encore remis, avec une date de demande",
        ),
        Column(
            "request_age_median_days",
            "demandes_age_median_jours",
            "âge médian (j)",
            "Âge médian des demandes (jours)",
            "médiane des jours écoulés depuis la demande",
        ),
        Column(
            "lead_time_median_days",
            "delai_mesure_median_jours",
            "délai médian (j)",
            "Délai médian mesuré (jours)",
            "médiane des jours entre demande et réception, demandes des deux dernières années",
        ),
        Column(
            "lead_time_cases",
            "delai_mesure_cas",
            "cas mesurés",
            "Cas mesurés",
            "nombre de demandes reçues sur lesquelles le délai est mesuré",
        ),
        Column(
            "emergency_outstanding",
            "urgence_en_cours",
            "en cours",
            "En cours",
            "cartes d'urgence remises, non restituées et toujours en service (ni perdues, "
            "ni défectueuses, ni révoquées)",
        ),
        Column(
            "emergency_to_take_back",
            "urgence_a_recuperer",
            "à récupérer",
            "À récupérer",
            "en cours, et la nouvelle carte qu'elles remplacent a été remise",
        ),
        Column(
            "emergency_overdue",
            "urgence_en_retard",
            "en retard",
            "En retard",
            "en cours, date de retour prévue dépassée",
        ),
    )
}


@dataclass(frozen=True)
class Table:
    """One table of the statistics: a title (also the XLSX sheet), a CSV token, figures."""

    title: str
    token: str
    columns: tuple[Column, ...]
    legend: str


TABLES = (
    Table(
        "Supports",
        "supports",
        tuple(
            COLUMNS[name]
            for name in (
                "in_service",
                "expiring_30",
                "expiring_60",
                "expiring_90",
                "expired_in_service",
                "gaps",
                "gap_days_total",
                "gap_days_max",
            )
        ),
        "en service : actifs ou suspendus ; ≤ N j : en service, expirant d'ici N jours ;\n"
        "expirés : en service mais déjà expirés ; ruptures : supports du plan de\n"
        "renouvellement dont le remplacement arrivera après l'expiration (nombre, jours\n"
        "cumulés, la plus longue).",
    ),
    Table(
        "Demandes et délais",
        "demandes",
        tuple(
            COLUMNS[name]
            for name in (
                "requests_pending",
                "request_age_median_days",
                "lead_time_median_days",
                "lead_time_cases",
            )
        ),
        "en attente : demandés ou reçus au SAR, pas encore remis ; âge : jours depuis la\n"
        "demande ; délai : jours entre demande et réception, demandes des deux dernières\n"
        "années.",
    ),
    Table(
        "Cartes d'urgence",
        "urgence",
        tuple(
            COLUMNS[name]
            for name in (
                "emergency_outstanding",
                "emergency_to_take_back",
                "emergency_overdue",
            )
        ),
        "en cours : non restituées et toujours en service ; à récupérer : la nouvelle carte\n"
        "a été remise ; en retard : date de retour prévue dépassée.",
    ),
)

ALL_ORGANISATIONS = "Toutes organisations"
ALL_KINDS = "Tous types"


def cmd_stats(ctx: Context, args: argparse.Namespace) -> int:
    """Statistics per organisation and kind, with totals, as of ``--au`` (default today)."""
    if args.format == "xlsx" and args.sortie is None:
        ctx.err.write(messages.text("sortie_obligatoire", {"format": "xlsx"}) + "\n")
        return 2
    today = args.au or ctx.today()
    settings = ctx.settings
    with contextlib.ExitStack() as stack:
        # The output file is opened first: a path that cannot be written is reported
        # before the statistics are computed.
        temporary = stack.enter_context(_replacing(args.sortie)) if args.sortie else None
        connection = stack.enter_context(
            dbapi.connect(settings.database_url, busy_timeout_s=settings.busy_timeout_s)
        )
        require_reader(connection, ctx.operator_login)
        statistics = compute(
            connection,
            today=today,
            lead_days=settings.renewal.lead_days(),
            margin_days=settings.renewal.safety_margin_days,
        )
        if temporary is None:
            WRITERS[args.format](statistics, ctx.out)
            return 0
        try:
            if args.format == "xlsx":
                write_xlsx(statistics, temporary)
            else:
                # CSV with a BOM: French Excel then reads the accents right.
                encoding = "utf-8-sig" if args.format == "csv" else "utf-8"
                with temporary.open("w", encoding=encoding, newline="") as out:
                    WRITERS[args.format](statistics, out)
        except OSError as exc:
            raise output.unwritable(args.sortie, exc) from None
    ctx.out.write(f"Statistiques au {today:%d/%m/%Y} écrites dans {args.sortie}.\n")
    return 0


def require_reader(connection: ReadConnection, login: str) -> None:
    """Refuse an unknown or inactive operator, or one without any role.

    Every role implies READER (``inventaire.operators.IMPLIED``; a test checks it), so
    any role will do; the lookup goes through the bare driver, without SQLAlchemy.
    """
    rows = list(
        connection.rows("SELECT roles, active FROM operator WHERE login = :login", {"login": login})
    )
    if not rows or not rows[0][1]:
        raise UnknownOperator(login=login)
    if not [role for role in str(rows[0][0]).split(",") if role]:
        raise PermissionDenied(login=login, role=OperatorRole.READER.value)


# -- Output files ----------------------------------------------------------------------------


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` that replaces it when the block ends without an
    error, and is removed otherwise; ``sortie_impossible`` if either cannot be done."""
    try:
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise output.unwritable(path, exc) from None
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        try:
            # mkstemp makes the file private; the result gets the usual permissions.
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(temporary, 0o666 & ~mask)
            os.replace(temporary, path)
        except OSError as exc:
            raise output.unwritable(path, exc) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


# -- Rows shared by the table, CSV and XLSX forms ----------------------------------------------


def shown(groups: Sequence[Group], table: Table) -> list[Group]:
    """The groups that have a non-zero figure in ``table``, and the overall total."""
    return [
        group
        for group in groups
        if (group.organisation is None and group.kind is None)
        or any(getattr(group.figures, column.name) for column in table.columns)
    ]


def _values(figures: Figures, table: Table) -> list[Any]:
    return [getattr(figures, column.name) for column in table.columns]


# -- Table -----------------------------------------------------------------------------------


def _number(value: int | float | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}".replace(".", ",")
    return str(value)


def write_table(statistics: Statistics, out: TextIO) -> None:
    """The three tables for a terminal: each organisation as a heading with its kinds
    below (and its total when it has several), then all organisations together."""
    groups = list(statistics.groups())
    out.write(f"Statistiques au {statistics.today:%d/%m/%Y}\n")
    for table in TABLES:
        lines: list[tuple[str, list[str] | None]] = []
        visible = shown(groups, table)
        organisations = list(dict.fromkeys(g.organisation for g in visible if g.organisation))
        for organisation in [*organisations, None]:
            kinds = [g for g in visible if g.organisation == organisation and g.kind]
            total = next(
                (g for g in visible if g.organisation == organisation and g.kind is None), None
            )
            lines.append((organisation or ALL_ORGANISATIONS, None))
            for group in kinds:
                assert group.kind is not None
                lines.append(("  " + messages.KIND_LABELS[group.kind], _texts(group, table)))
            if total is not None and (organisation is None or len(kinds) > 1):
                lines.append(("  total", _texts(total, table)))
        out.write(f"\n{table.title}\n")
        _aligned(out, [column.short for column in table.columns], lines)
        out.write(table.legend + "\n")
    leads = ", ".join(
        f"{messages.KIND_LABELS[kind]} {days} j" for kind, days in statistics.lead_days.items()
    )
    out.write(f"\nDélais configurés : {leads} ;\nmarge de sécurité : {statistics.margin_days} j.\n")


def _texts(group: Group, table: Table) -> list[str]:
    return [_number(value) for value in _values(group.figures, table)]


def _aligned(out: TextIO, headers: list[str], lines: list[tuple[str, list[str] | None]]) -> None:
    """Labels on the left, numbers right-aligned under their headers; a line without
    values is a heading."""
    label_width = max([len(label) for label, values in lines if values is not None] + [16])
    widths = [len(header) for header in headers]
    for _, values in lines:
        for index, value in enumerate(values or ()):
            widths[index] = max(widths[index], len(value))
    out.write(
        " " * label_width
        + "".join("  " + h.rjust(w) for h, w in zip(headers, widths, strict=True))
        + "\n"
    )
    out.write("─" * (label_width + sum(w + 2 for w in widths)) + "\n")
    for label, values in lines:
        if values is None:
            out.write(label + "\n")
            continue
        cells = "".join("  " + v.rjust(w) for v, w in zip(values, widths, strict=True))
        out.write(label.ljust(label_width) + cells + "\n")


# -- CSV -------------------------------------------------------------------------------------


def _csv_number(value: int | float | None) -> Any:
    if isinstance(value, float):
        return f"{value:g}".replace(".", ",")
    return value


def write_csv(statistics: Statistics, out: TextIO) -> None:
    """One section per table: header and rows start with the column ``tableau``; a blank
    line between sections. Totals say ``toutes`` (organisation) and ``tous`` (type)."""
    groups = list(statistics.groups())
    for index, table in enumerate(TABLES):
        if index:
            out.write("\n")
        output.csv_rows(
            out,
            ["tableau", "organisation", "type", *(column.key for column in table.columns)],
            (
                [
                    table.token,
                    group.organisation or "toutes",
                    token_of(group.kind, KIND_TOKENS) if group.kind else "tous",
                    *(_csv_number(value) for value in _values(group.figures, table)),
                ]
                for group in shown(groups, table)
            ),
        )


# -- JSON ------------------------------------------------------------------------------------


def document(statistics: Statistics) -> dict[str, Any]:
    """The JSON document: the reference day, the lead times used, then every group's
    figures: ``lignes`` (organisation and type), ``par_organisation``, ``par_type``,
    ``total``. Totals carry ``null`` for the organisation or type they span."""

    def entry(group: Group) -> dict[str, Any]:
        return {
            "organisation": group.organisation,
            "type": token_of(group.kind, KIND_TOKENS) if group.kind else None,
            **{COLUMNS[name].key: getattr(group.figures, name) for name in COLUMNS},
        }

    groups = list(statistics.groups())
    return {
        "au": statistics.today.isoformat(),
        "delais_configures_jours": {
            token_of(kind, KIND_TOKENS): days for kind, days in statistics.lead_days.items()
        },
        "marge_securite_jours": statistics.margin_days,
        "lignes": [entry(g) for g in groups if g.organisation and g.kind],
        "par_organisation": [entry(g) for g in groups if g.organisation and not g.kind],
        "par_type": [entry(g) for g in groups if g.kind and not g.organisation],
        "total": entry(groups[-1]),
    }


def write_json(statistics: Statistics, out: TextIO) -> None:
    """The JSON document (``document``), indented."""
    import json

    json.dump(document(statistics), out, ensure_ascii=False, indent=2)
    out.write("\n")


# -- XLSX ------------------------------------------------------------------------------------


def write_xlsx(statistics: Statistics, path: Path) -> None:
    """One sheet per table (header row frozen with the two label columns, numbers as
    numbers, a filter), and a "Définitions" sheet with the reference day."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    workbook.properties.title = f"Statistiques au {statistics.today:%d/%m/%Y}"
    workbook.properties.creator = "cartes"
    bold = Font(bold=True)
    groups = list(statistics.groups())
    for table in TABLES:
        sheet = workbook.create_sheet(table.title)
        sheet.append(["Organisation", "Type", *(column.header for column in table.columns)])
        for group in shown(groups, table):
            sheet.append(
                [
                    group.organisation or ALL_ORGANISATIONS,
                    messages.KIND_LABELS[group.kind] if group.kind else ALL_KINDS,
                    *_values(group.figures, table),
                ]
            )
            if group.kind is None:  # a total
                for cell in sheet[sheet.max_row]:
                    cell.font = bold
        for cell in sheet[1]:
            cell.font = bold
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        sheet.freeze_panes = "C2"
        sheet.auto_filter.ref = sheet.dimensions
        sheet.column_dimensions["A"].width = 32
        sheet.column_dimensions["B"].width = 18
        for index in range(3, len(table.columns) + 3):
            sheet.column_dimensions[get_column_letter(index)].width = 16
    sheet = workbook.create_sheet("Définitions")
    sheet.append(["Colonne", "Définition"])
    sheet.append(["Jour de référence", statistics.today])
    sheet["B2"].number_format = "DD/MM/YYYY"
    sheet["B2"].alignment = Alignment(horizontal="left")
    for table in TABLES:
        for column in table.columns:
            sheet.append([f"{table.title} : {column.header}", column.definition])
    sheet.append(
        [
            "Délais configurés (jours)",
            ", ".join(
                f"{messages.KIND_LABELS[kind]} {days}"
                for kind, days in statistics.lead_days.items()
            )
            + f" ; marge de sécurité {statistics.margin_days}",
        ]
    )
    for cell in sheet[1]:
        cell.font = bold
    sheet.freeze_panes = "A2"
    sheet.column_dimensions["A"].width = 48
    sheet.column_dimensions["B"].width = 100
    workbook.save(path)


WRITERS: dict[str, Callable[[Statistics, TextIO], None]] = {
    "table": write_table,
    "csv": write_csv,
    "json": write_json,
}
