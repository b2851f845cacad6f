"""``cartes journal``: read the journal, and verify its chain."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from cartes import messages
from cartes.cli import output
from cartes.cli.context import Context
from cartes.cli.main import ENTITY_TOKENS
from inventaire import db, journal
from inventaire.clock import PARIS


def _paris_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=PARIS)


def cmd_journal(ctx: Context, args: argparse.Namespace) -> int:
    entity_type, entity_id = None, None
    if args.support is not None:
        entity_type, entity_id = "credential", args.support
    elif args.titulaire is not None:
        entity_type, entity_id = "holder", args.titulaire
    elif args.objet:
        entity_type = ENTITY_TOKENS[args.objet]
    filters = journal.JournalFilter(
        entity_type=entity_type,
        entity_id=entity_id,
        operator=args.par,
        action=args.action,
        since=_paris_midnight(args.depuis) if args.depuis else None,
        until=_paris_midnight(args.jusqua + dt.timedelta(days=1)) if args.jusqua else None,
    )
    engine = ctx.ready_engine()
    with db.read_session(engine) as session:
        entries = journal.entries(session, filters, limit=args.limite or None)
    if args.format == "json":
        output.json_array(
            ctx.out,
            (
                {
                    "seq": e.seq,
                    "date": e.recorded_at.isoformat(),
                    "operateur": e.operator,
                    "action": e.action,
                    "objet": e.entity_type,
                    "id": e.entity_id,
                    "motif": e.reason,
                    "avant": json.loads(e.before) if e.before else None,
                    "apres": json.loads(e.after) if e.after else None,
                    "empreinte": e.hash,
                }
                for e in entries
            ),
        )
        return 0
    rows = [
        [
            e.seq,
            f"{e.recorded_at.astimezone(PARIS):%d/%m/%Y %H:%M:%S}",
            e.operator,
            e.action,
            f"{e.entity_type} {e.entity_id}" if e.entity_id is not None else e.entity_type,
            e.reason or "",
        ]
        for e in entries
    ]
    output.table(ctx.out, ["n°", "date (Paris)", "opérateur", "action", "objet", "motif"], rows)
    return 0


def cmd_journal_verifier(ctx: Context, _args: argparse.Namespace) -> int:
    engine = ctx.ready_engine()
    with db.read_session(engine) as session:
        result = journal.verify(session)
    if result.intact:
        ctx.out.write(f"Journal intact : {result.checked} entrées vérifiées.\n")
        return 0
    ctx.err.write(
        "Journal altéré : "
        + messages.text(result.problem or "", {"seq": result.seq})
        + f" ({result.checked} entrées correctes avant celle-ci).\n"
    )
    return 1
