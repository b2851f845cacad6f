"""``cartes liste``: credentials with filters, as a table, CSV or JSON.

It reads through the bare database driver (``inventaire.dbapi``) and imports nothing of
SQLAlchemy: most of the time of a short command would go to importing it.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from cartes import messages
from cartes.cli import output
from cartes.cli.context import Context
from inventaire import dbapi
from inventaire.errors import NotFound
from inventaire.listing import (
    CredentialFilter,
    CredentialLine,
    find_organisation_id,
    list_credentials,
    list_json,
)
from inventaire.vocabulary import (
    IMPORT_COLUMNS,
    KIND_TOKENS,
    MODEL_TOKENS,
    ROLE_TOKENS,
    STATE_TOKENS,
    parse_token,
    token_of,
)

# The import columns: an exported listing can be edited and imported back.
CSV_HEADERS = ("id", *IMPORT_COLUMNS, "jours_restants")


def cmd_liste(ctx: Context, args: argparse.Namespace) -> int:
    """List credentials with filters, as a table, CSV or JSON."""
    today = ctx.today()
    settings = ctx.settings
    with dbapi.connect(settings.database_url, busy_timeout_s=settings.busy_timeout_s) as connection:
        organisation_id = None
        if args.organisation:
            organisation_id = find_organisation_id(connection, args.organisation)
            if organisation_id is None:
                raise NotFound("organisation_inconnue", nom=args.organisation)
        filters = CredentialFilter(
            kinds=tuple(parse_token("type", t, KIND_TOKENS) for t in args.type or ()),
            states=tuple(parse_token("etat", s, STATE_TOKENS) for s in args.etat or ()),
            organisation_id=organisation_id,
            text=args.recherche,
            expires_within=args.expire_dans,
            expires_before=args.expire_avant,
        )
        if args.format == "json":
            # The database encodes the objects itself (see ``list_json``).
            output.json_texts(
                ctx.out, list_json(connection, filters, today=today, limit=args.limite)
            )
            return 0
        lines = list_credentials(connection, filters, today=today, limit=args.limite)
        if args.format == "csv":
            output.csv_rows(ctx.out, CSV_HEADERS, (_csv_line(line, today) for line in lines))
        else:
            shown = (_table_line(line, today) for line in lines)
            count = output.table(ctx.out, _TABLE_HEADERS, shown)
            ctx.out.write(f"{count} support{'s' if count > 1 else ''}.\n")
    return 0


_TABLE_HEADERS = (
    "id",
    "type",
    "état",
    "titulaire",
    "organisation",
    "n° de série",
    "expiration",
    "jours",
)


def _csv_line(line: CredentialLine, today: dt.date) -> list[Any]:
    return [
        line.id,
        line.last_name,
        line.first_name,
        line.email,
        token_of(line.holder_role, ROLE_TOKENS),
        line.organisation,
        token_of(line.kind, KIND_TOKENS),
        token_of(line.model, MODEL_TOKENS) if line.model else "",
        line.serial,
        token_of(line.state, STATE_TOKENS),
        line.handed_over_on.isoformat() if line.handed_over_on else "",
        line.expires_on.isoformat() if line.expires_on else "",
        line.days_left(today),
    ]


def _table_line(line: CredentialLine, today: dt.date) -> list[Any]:
    return [
        line.id,
        messages.KIND_LABELS[line.kind],
        messages.STATE_LABELS[line.state],
        f"{line.first_name} {line.last_name}",
        line.organisation,
        line.serial or "—",
        f"{line.expires_on:%d/%m/%Y}" if line.expires_on else "—",
        line.days_left(today),
    ]
