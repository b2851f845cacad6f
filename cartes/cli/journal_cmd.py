"""``cartes journal``: read the journal, and verify its chain."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from cartes import messages
from cartes.cli import output
from cartes.cli.context import Context
from cartes.cli.main import ENTITY_TOKENS
from cartes.journal_text import paris_time
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
            paris_time(e.recorded_at),
            e.operator,
            e.action,
            f"{e.entity_type} {e.entity_id}" if e.entity_id is not None else e.entity_type,
            e.reason or "",
        ]
        for e in entries
    ]
    output.table(ctx.out, ["n°", "date (Paris)", "opérateur", "action", "objet", "motif"], rows)
    return 0


def parse_head(text: str) -> tuple[int, str] | None:
    """``SEQ:EMPREINTE`` as a sequence number and a lower-case SHA-256 hex digest."""
    seq, _, digest = text.strip().partition(":")
    digest = digest.strip().lower()
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        return None
    return int(seq), digest


def cmd_journal_verifier(ctx: Context, args: argparse.Namespace) -> int:
    anchor = None
    if getattr(args, "tete", None) is not None:
        anchor = parse_head(args.tete)
        if anchor is None:
            ctx.err.write(messages.text("tete_invalide", {"valeur": args.tete}) + "\n")
            return 2
    engine = ctx.ready_engine()
    with db.read_session(engine) as session:
        result = journal.verify(session)
        anchor_problem = journal.check_anchor(session, *anchor) if anchor else None
    if not result.intact:
        ctx.err.write(
            "Journal altéré : "
            + messages.text(result.problem or "", {"seq": result.seq})
            + f" ({result.checked} entrées correctes avant celle-ci).\n"
        )
    if anchor is not None and anchor_problem is not None:
        seq, digest = anchor
        ctx.err.write(
            "Journal altéré : "
            + messages.text(anchor_problem, {"seq": seq, "empreinte": digest[:16] + "…"})
            + "\n"
        )
    if not result.intact or anchor_problem is not None:
        return 1
    ctx.out.write(f"Journal intact : {result.checked} entrées vérifiées.\n")
    if anchor is not None:
        ctx.out.write(f"Tête notée retrouvée : l'entrée n°{anchor[0]} a toujours son empreinte.\n")
    return 0
