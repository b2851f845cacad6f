"""``cartes resume`` (and ``cartes`` away from a terminal): the inventory at a glance.

It reads through the bare database driver (``inventaire.dbapi``) and imports nothing of
SQLAlchemy, like ``cartes liste``: the counts come from the tally the database keeps.
"""

from __future__ import annotations

import argparse

from cartes import messages
from cartes.cli import output
from cartes.cli.context import Context
from inventaire import dbapi
from inventaire.enums import CredentialKind, CredentialState
from inventaire.summary import summarize


def cmd_summary(ctx: Context, _args: argparse.Namespace) -> int:
    """Counts by kind and state, and what expires within 30, 60 and 90 days."""
    today = ctx.today()
    settings = ctx.settings
    with dbapi.connect(settings.database_url, busy_timeout_s=settings.busy_timeout_s) as connection:
        summary = summarize(connection, today=today)
    out = ctx.out
    out.write(f"cartes — inventaire au {today:%d/%m/%Y}\n\n")
    total = sum(summary.by_kind_state.values())
    if not total:
        out.write(
            "L'inventaire est vide. Importez un fichier (« cartes importer FICHIER ») "
            "ou créez des données de démonstration (« cartes demo »).\n"
        )
        return 0
    out.write(f"{total} supports pour {summary.holders} titulaires.\n\n")
    states = [s for s in CredentialState if any(k[1] is s for k in summary.by_kind_state)]
    headers = ["type", *(messages.STATE_LABELS[s] for s in states), "total"]
    rows = []
    for kind in CredentialKind:
        counts = [summary.by_kind_state.get((kind, s), 0) for s in states]
        rows.append([messages.KIND_LABELS[kind], *counts, sum(counts)])
    output.table(out, headers, rows)
    out.write("\nSupports en service (actifs ou suspendus) arrivant à expiration :\n\n")
    horizons = sorted(summary.expiring)
    headers = ["type", "déjà expirés", *(f"≤ {h} jours" for h in horizons)]
    rows = [
        [
            messages.KIND_LABELS[kind],
            summary.expired_in_service.get(kind, 0),
            *(summary.expiring[h].get(kind, 0) for h in horizons),
        ]
        for kind in CredentialKind
    ]
    rows.append(
        [
            "total",
            sum(summary.expired_in_service.values()),
            *(sum(summary.expiring[h].values()) for h in horizons),
        ]
    )
    output.table(out, headers, rows)
    out.write("\nDétail : cartes liste --expire-dans 30 (ou 60, 90).\n")
    return 0
