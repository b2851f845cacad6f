"""``cartes plan``: the renewal plan (DESIGN §4) as a table, CSV or JSON.

Like ``cartes liste`` it reads through the bare database driver and imports nothing of
SQLAlchemy, and it needs no operator.
"""

from __future__ import annotations

import argparse
from typing import Any

from cartes import messages
from cartes.cli import output
from cartes.cli.context import Context
from inventaire import dbapi
from inventaire.enums import CredentialKind
from inventaire.errors import NotFound
from inventaire.listing import find_organisation_id
from inventaire.plan import MeasuredLead, PlanLine, Replacement, measured_lead_times, renewal_plan
from inventaire.vocabulary import KIND_TOKENS, parse_token, token_of

# The documented values of ``remplacement`` in CSV and JSON.
REPLACEMENT_TOKENS = {
    Replacement.NONE: "aucun",
    Replacement.REQUESTED: "demande",
    Replacement.RECEIVED: "recu",
}

# The fields of one JSON object, and the CSV columns, in this order.
FIELDS = (
    "support",
    "type",
    "titulaire",
    "email",
    "organisation",
    "numero_serie",
    "date_expiration",
    "jours_restants",
    "date_limite_commande",
    "rupture_previsible_jours",
    "remplacement",
)


def cmd_plan(ctx: Context, args: argparse.Namespace) -> int:
    """Show the renewal plan: what to order, by when, and the gaps ahead."""
    today = ctx.today()
    settings = ctx.settings
    leads = settings.renewal.lead_days()
    kinds = tuple(dict.fromkeys(parse_token("type", t, KIND_TOKENS) for t in args.type or ()))
    with dbapi.connect(settings.database_url, busy_timeout_s=settings.busy_timeout_s) as connection:
        organisation_id = None
        if args.organisation:
            organisation_id = find_organisation_id(connection, args.organisation)
            if organisation_id is None:
                raise NotFound("organisation_inconnue", nom=args.organisation)
        lines = renewal_plan(
            connection,
            today=today,
            lead_days=leads,
            margin_days=settings.renewal.safety_margin_days,
            within_days=args.jours,
            kinds=kinds,
            organisation_id=organisation_id,
        )
        if args.format == "json":
            output.json_array(ctx.out, (dict(zip(FIELDS, _values(line), strict=True))
                                        for line in lines))  # fmt: skip
            return 0
        if args.format == "csv":
            output.csv_rows(ctx.out, FIELDS, (_values(line) for line in lines))
            return 0
        measured = measured_lead_times(connection, today=today)
    _write_table(ctx, lines, args.jours)
    _write_leads(ctx, kinds or tuple(leads), leads, measured, settings.renewal.safety_margin_days)
    return 0


def _values(line: PlanLine) -> list[Any]:
    return [
        line.id,
        token_of(line.kind, KIND_TOKENS),
        f"{line.first_name} {line.last_name}",
        line.email,
        line.organisation,
        line.serial,
        line.expires_on.isoformat(),
        line.days_left,
        line.order_by.isoformat(),
        line.gap_days,
        REPLACEMENT_TOKENS[line.replacement],
    ]


_TABLE_HEADERS = (
    "support",
    "type",
    "titulaire",
    "organisation",
    "n° de série",
    "expiration",
    "jours",
    "commander avant",
    "rupture",
    "remplacement",
)


def _replacement_label(line: PlanLine) -> str:
    if line.replacement is Replacement.RECEIVED:
        return "reçu, à remettre"
    if line.replacement is Replacement.REQUESTED:
        return f"demandé le {line.requested_on:%d/%m/%Y}" if line.requested_on else "demandé"
    return "aucun"


def _table_line(line: PlanLine) -> list[Any]:
    late = line.order_late and line.replacement is Replacement.NONE
    return [
        line.id,
        messages.KIND_LABELS[line.kind],
        f"{line.first_name} {line.last_name}",
        line.organisation,
        line.serial or "—",
        f"{line.expires_on:%d/%m/%Y}",
        line.days_left,
        f"{line.order_by:%d/%m/%Y}" + (" (en retard)" if late else ""),
        f"{line.gap_days} j" if line.gap_days else "—",
        _replacement_label(line),
    ]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count > 1 else ''}"


def _write_table(ctx: Context, lines: list[PlanLine], within_days: int) -> None:
    out = ctx.out
    if not lines:
        out.write(
            "Rien à renouveler : aucune date limite de commande dépassée ou dans les "
            f"{within_days} jours.\n"
        )
        return
    output.table(out, _TABLE_HEADERS, (_table_line(line) for line in lines))
    to_order = [line for line in lines if line.replacement is Replacement.NONE]
    late = sum(1 for line in to_order if line.order_late)
    requested = sum(1 for line in lines if line.replacement is Replacement.REQUESTED)
    received = sum(1 for line in lines if line.replacement is Replacement.RECEIVED)
    gaps = [line.gap_days for line in lines if line.gap_days > 0]
    out.write("\n")
    out.write(
        f"À commander : {_plural(len(to_order), 'support')}"
        + (f", dont {late} en retard" if late else "")
        + ".\n"
    )
    if requested or received:
        out.write(f"Remplacements demandés : {requested} ; reçus, à remettre : {received}.\n")
    if gaps:
        out.write(
            f"Ruptures certaines : {_plural(len(gaps), 'support')}, "
            f"la plus longue de {_plural(max(gaps), 'jour')}.\n"
        )
    else:
        out.write("Aucune rupture prévisible.\n")


def _days(value: float) -> str:
    text = f"{value:g}".replace(".", ",")
    return f"{text} jour{'s' if value >= 2 else ''}"


def _write_leads(
    ctx: Context,
    kinds: tuple[CredentialKind, ...],
    leads: dict[CredentialKind, int],
    measured: dict[CredentialKind, MeasuredLead],
    margin_days: int,
) -> None:
    out = ctx.out
    out.write(f"\nDélais de renouvellement (marge de sécurité : {_days(margin_days)}) :\n")
    width = max(len(messages.KIND_LABELS[kind]) for kind in kinds)
    for kind in kinds:
        seen = measured.get(kind)
        observed = (
            f"mesuré : {_days(seen.median_days)} (médiane de {seen.cases} cas sur deux ans)"
            if seen
            else "non mesuré"
        )
        out.write(
            f"  {messages.KIND_LABELS[kind].ljust(width)}  "
            f"configuré : {_days(leads[kind])} ; {observed}\n"
        )
