"""Commands on the inventory: init, summary, import, listing, transitions, demo data."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from cartes import messages, permissions
from cartes.cli.context import Context
from cartes.settings import mask_url
from inventaire import db, importing, operators, organisations
from inventaire.errors import ImportRejected
from inventaire.importing import ImportReport
from inventaire.models import OperatorRole
from inventaire.vocabulary import (
    STATE_TOKENS,
    parse_token,
)

MAX_ERRORS_SHOWN = 50


def cmd_init(ctx: Context, args: argparse.Namespace) -> int:
    """Create or upgrade the schema, the district's organisations and the first ADMIN."""
    before = db.schema_revision(ctx.engine)
    if before is not None:
        # Upgrading a schema in use is an administrator's decision.
        with db.read_session(ctx.engine) as session:
            operators.require(session, ctx.operator_login, OperatorRole.ADMIN)
    # Before SQLite creates the file with the umask's mode (0644: every local user could
    # read the personal data); an existing file is only warned about, by ``ctx``.
    private = permissions.create_private_database_file(ctx.settings.database_url)
    db.migrate(ctx.engine)
    now = ctx.now()
    with db.write_session(ctx.engine) as session:
        first_admin = None
        if operators.count(session) == 0:
            first_admin = operators.add(
                session,
                login=ctx.operator_login,
                roles=[OperatorRole.ADMIN],
                by=ctx.operator_login,
                now=now,
            )
        else:
            operators.require(session, ctx.operator_login, OperatorRole.ADMIN)
        created = organisations.seed_district(
            session, organisations.ANGERS_DISTRICT, by=ctx.operator_login, now=now
        )
    after = db.schema_revision(ctx.engine)
    url = ctx.settings.database_url
    if before is None:
        ctx.out.write(f"Base de données créée (schéma {after}) : {mask_url(url)}\n")
        if private:
            ctx.out.write("Fichier de la base réservé à votre compte (droits 600).\n")
    elif before != after:
        ctx.out.write(f"Base de données mise à jour du schéma {before} au schéma {after}.\n")
    else:
        ctx.out.write(f"Base de données déjà à jour (schéma {after}).\n")
    if first_admin is not None:
        ctx.out.write(f"Premier administrateur : {first_admin.login}\n")
    if created:
        ctx.out.write(f"Organisations créées : {len(created)}\n")
    return 0


def cmd_summary(ctx: Context, args: argparse.Namespace) -> int:
    """Counts by kind and state, and what expires within 30, 60 and 90 days."""
    # In its own module, which imports no SQLAlchemy: register "summary_cmd:cmd_summary"
    # to run it without loading this module's database layers.
    from cartes.cli.summary_cmd import cmd_summary as summary

    return summary(ctx, args)


def cmd_transition(ctx: Context, args: argparse.Namespace) -> int:
    """Move one credential to another state, with a reason."""
    from cartes.ops import records

    target = parse_token("etat", args.etat, STATE_TOKENS)
    moved = records.transition(
        ctx.workspace(), args.id, target, args.motif, expected_version=args.version
    )
    ctx.out.write(
        f"Support n°{args.id} : {messages.state_label(moved.source)} → "
        f"{messages.state_label(moved.target)} (version {moved.version}).\n"
    )
    return 0


def _progress(
    ctx: Context, label: str
) -> tuple[AbstractContextManager[Any], Callable[[int, int | None], None] | None]:
    """A progress bar on the terminal (stderr), nothing when output is redirected."""
    if not ctx.err.isatty():
        return nullcontext(), None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(file=ctx.err),
        transient=True,
    )
    task = bar.add_task(label, total=None)

    def update(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    return bar, update


def cmd_importer(ctx: Context, args: argparse.Namespace) -> int:
    """Import holders and credentials from a CSV or XLSX file."""
    engine = ctx.ready_engine()
    path = Path(args.fichier)
    bar, update = _progress(ctx, f"Import de {path.name}")
    try:
        with bar, db.write_session(engine) as session:
            operator = operators.require(session, ctx.operator_login, OperatorRole.MANAGER)
            report = importing.import_file(
                session,
                path,
                operator=operator,
                now=ctx.now(),
                ignore_errors=args.ignorer_erreurs,
                sheet=args.feuille,
                progress=update,
            )
    except ImportRejected as rejected:
        report = rejected.params["report"]
        _print_row_errors(ctx, path, report)
        ctx.err.write(
            f"Import refusé : {_lines(report)} en erreur sur {report.rows} ; "
            "aucune ligne n'a été enregistrée. Corrigez le fichier, ou relancez avec "
            "--ignorer-erreurs pour enregistrer les lignes valides.\n"
        )
        return 1
    _print_row_errors(ctx, path, report)
    _print_import_report(ctx, path, report)
    return 1 if report.errors else 0


def _lines(report: ImportReport) -> str:
    bad = len({error.line for error in report.errors})
    return f"{bad} ligne{'s' if bad > 1 else ''}"


def _print_row_errors(ctx: Context, path: Path, report: ImportReport) -> None:
    for error in report.errors[:MAX_ERRORS_SHOWN]:
        reason = messages.row_error_text(error.code, error.params)
        ctx.err.write(f"{path.name}, ligne {error.line} : {reason}\n")
    hidden = len(report.errors) - MAX_ERRORS_SHOWN
    if hidden > 0:
        ctx.err.write(f"… et {hidden} autres erreurs.\n")


def _print_import_report(ctx: Context, path: Path, report: ImportReport) -> None:
    out = ctx.out
    out.write(f"Import de {path.name} : {report.rows} lignes lues")
    if report.encoding:
        out.write(f" ({report.encoding}, séparateur « {report.delimiter} »)")
    out.write(".\n")
    if report.errors:
        out.write(f"  lignes ignorées (en erreur) : {len({e.line for e in report.errors})}\n")
    if not report.changes:
        out.write("  aucun changement : l'inventaire était déjà à jour.\n")
        return
    for label, number in (
        ("titulaires créés", report.holders_created),
        ("titulaires modifiés", report.holders_updated),
        ("supports créés", report.credentials_created),
        ("supports modifiés", report.credentials_updated),
        ("changements d'état", report.transitions),
        ("supports inchangés", report.unchanged),
    ):
        if number:
            out.write(f"  {label} : {number}\n")


def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    """Fill the configured database with a synthetic district (through the import)."""
    from fixtures.synthetic import generate_rows

    engine = ctx.ready_engine()
    today = ctx.today()
    bar, update = _progress(ctx, "Données de démonstration")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        yield from enumerate(generate_rows(args.titulaires, seed=args.graine, today=today), 2)

    with bar, db.write_session(engine) as session:
        operator = operators.require(session, ctx.operator_login, OperatorRole.MANAGER)
        importer = importing.Importer(
            session,
            operator=operator,
            now=ctx.now(),
            source=f"démonstration ({args.titulaires} titulaires, graine {args.graine})",
        )
        report = importer.run(rows(), total=None, progress=update)
    ctx.out.write(
        f"Démonstration : {report.holders_created} titulaires et "
        f"{report.credentials_created} supports créés"
        f"{'' if report.changes else ' (déjà présents)'}.\n"
    )
    return 0
