"""``cartes maintenance anonymiser``: the retention rule of personal data
(``inventaire.retention``), on demand; the backing service applies it once a month.

``--simulation`` lists who would be anonymised, names included (the operator must be able
to recognise them before an irreversible change), and writes nothing at all: it reads
through a read-only connection (``inventaire.dbapi``), so a SQLite file stays byte for
byte the same, and records neither a run nor a reading. Any operator may simulate
(READER); anonymising needs an ADMIN. The run's own listing names nobody: its output may
end up in a log or a mail, which would then keep what was just removed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from cartes import messages
from cartes.cli import output
from cartes.cli.context import Context
from inventaire import dbapi, retention, roles
from inventaire.enums import OperatorRole
from inventaire.retention import Candidate
from inventaire.vocabulary import ROLE_TOKENS, token_of


def cmd_anonymiser(ctx: Context, args: argparse.Namespace) -> int:
    """Anonymise the holders whose retention period is over, or list them (simulation)."""
    settings = ctx.settings  # a bad [retention] years is refused here, before anything
    years = settings.retention.years
    today = ctx.today()
    if args.simulation:
        with dbapi.connect(
            settings.database_url, busy_timeout_s=settings.busy_timeout_s
        ) as connection:
            login = ctx.operator_login
            refusal = roles.refusal(
                roles.read_rights(connection, login), login, OperatorRole.READER
            )
            if refusal is not None:
                raise refusal
            found = retention.candidates(connection, today=today, years=years)
        _render(ctx, args.format, found, years=years, today=today, simulation=True)
        return 0

    from inventaire import db, operators

    engine = ctx.ready_engine()
    with db.read_session(engine) as session:
        operators.require(session, ctx.operator_login, OperatorRole.ADMIN)
    report = retention.run(engine, years=years, by=ctx.operator_login, now=ctx.now())
    _render(ctx, args.format, report.anonymised, years=years, today=today, simulation=False)
    return 0


def _render(
    ctx: Context,
    form: str,
    holders: Sequence[Candidate],
    *,
    years: int,
    today: dt.date,
    simulation: bool,
) -> None:
    before = retention.cutoff(today, years)
    if form == "json":
        document = {
            "simulation": simulation,
            "conservation_ans": years,
            "fin_avant_le": before.isoformat(),
            "titulaires": [_object(holder, names=simulation) for holder in holders],
        }
        ctx.out.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
        return
    rule = f"conservation de {years} ans : dernier support terminé avant le {before:%d/%m/%Y}"
    out = ctx.out
    if not holders:
        out.write(f"Aucun titulaire à anonymiser ({rule}).\n")
        return
    count = len(holders)
    plural = "s" if count > 1 else ""
    if simulation:
        out.write(
            f"Simulation : {count} titulaire{plural} serai{'en' if count > 1 else ''}t "
            f"anonymisé{plural} ({rule}). Rien n'a été modifié.\n\n"
        )
    else:
        out.write(f"{count} titulaire{plural} anonymisé{plural} ({rule}).\n\n")
    identity = ["titulaire", "adresse"] if simulation else []
    headers = ["n°", *identity, "organisation", "rôle", "supports", "fin du dernier support"]
    rows = [
        [
            h.holder_id,
            *([f"{h.first_name} {h.last_name}", h.email] if simulation else []),
            h.organisation,
            messages.HOLDER_ROLE_LABELS[h.role],
            h.credentials,
            f"{h.ended_on:%d/%m/%Y}",
        ]
        for h in holders
    ]
    output.table(out, headers, rows)


def _object(holder: Candidate, *, names: bool) -> dict[str, Any]:
    identity = (
        {"nom": holder.last_name, "prenom": holder.first_name, "email": holder.email}
        if names
        else {}
    )
    return {
        "id": holder.holder_id,
        **identity,
        "organisation": holder.organisation,
        "role": token_of(holder.role, ROLE_TOKENS),
        "supports": holder.credentials,
        "fin_dernier_support": holder.ended_on.isoformat(),
    }
