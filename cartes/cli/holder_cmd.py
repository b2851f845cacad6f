"""``cartes titulaire``: everything the inventory holds about one holder, read (``voir``)
or exported to hand over (``exporter``); each is written to the register of consultations
before anything is shown (``cartes.ops.personal``)."""

from __future__ import annotations

import argparse
from typing import TextIO

from cartes.cli import output
from cartes.cli.context import Context
from cartes.journal_text import paris_time
from cartes.ops import personal
from cartes.ops.personal import AccessPurpose, Reading


def cmd_titulaire_voir(ctx: Context, args: argparse.Namespace) -> int:
    """A French summary (or the JSON document) of everything held about a holder."""
    reading = personal.read(ctx.workspace(), holder=args.titulaire, purpose=AccessPurpose.VIEW)
    if args.format == "json":
        ctx.out.write(personal.json_text(reading))
    else:
        write_summary(reading, ctx.out)
    return 0


def cmd_titulaire_exporter(ctx: Context, args: argparse.Namespace) -> int:
    """Everything held about a holder as JSON or HTML, to stdout or to a private file."""
    workspace = ctx.workspace()
    if args.sortie is None:
        reading = personal.read(workspace, holder=args.titulaire, purpose=AccessPurpose.EXPORT)
        ctx.out.write(personal.render(reading, args.format))
        return 0
    try:
        exported = personal.export_file(
            workspace, holder=args.titulaire, form=args.format, path=args.sortie
        )
    except OSError as exc:
        raise output.unwritable(args.sortie, exc) from None
    ctx.out.write(
        f"Données du titulaire n°{exported.holder_id} écrites dans {exported.path} "
        f"({exported.size} octets, lisible par vous seul) ; l'export est inscrit au registre "
        "des consultations.\n"
    )
    return 0


def write_summary(reading: Reading, out: TextIO) -> None:
    """The reading as French text: the identity, then each section as a table."""
    out.write(personal.title(reading) + "\n")
    out.write(f"Lu le {paris_time(reading.at)} (heure de Paris).\n\n")
    identity = personal.identity_fields(reading)
    width = max(len(label) for label, _ in identity)
    for label, value in identity:
        out.write(f"  {label.ljust(width)} : {value}\n")
    for section in personal.sections(reading):
        out.write(f"\n{section.title} ({len(section.rows)})\n")
        if not section.rows:
            out.write(f"  {section.empty}\n")
            continue
        shown = section.summary or tuple(range(len(section.columns)))
        output.table(
            out,
            [section.columns[index] for index in shown],
            ([row[index].replace("\n", " ; ") for index in shown] for row in section.rows),
        )
