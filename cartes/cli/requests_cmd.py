"""``cartes demande``: order a credential, record its receipt, hand it over, cancel, list.

The commands parse and print; the rules (states, roles, dates, serials) are those of
``inventaire.requests``, which checks each step's role as the lifecycle asks for it.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from cartes import messages
from cartes.cli import output
from cartes.cli.context import Context
from cartes.ops import records
from inventaire import db, operators, requests
from inventaire.models import CredentialState, Holder, OperatorRole
from inventaire.requests import RequestLine
from inventaire.vocabulary import KIND_TOKENS, MODEL_TOKENS, STATE_TOKENS, parse_token, token_of

S = CredentialState

MODEL_LABELS = {"ancien": "ancien modèle", "nouveau": "nouveau modèle"}


def cmd_creer(ctx: Context, args: argparse.Namespace) -> int:
    """Record that a credential was ordered for a holder."""
    kind = parse_token("type", args.type, KIND_TOKENS)
    model = parse_token("modele", args.modele, MODEL_TOKENS) if args.modele else None
    with db.write_session(ctx.ready_engine()) as session:
        # Any active operator may try: the service checks the role the step needs.
        operator = operators.require(session, ctx.operator_login, OperatorRole.READER)
        credential = requests.create_request(
            session,
            holder_email=args.titulaire,
            kind=kind,
            model=model,
            replaces_id=args.remplace,
            reason=args.motif,
            operator=operator,
            now=ctx.now(),
        )
        holder = session.get(Holder, credential.holder_id)
        assert holder is not None
    what = messages.KIND_LABELS[credential.kind]
    if credential.model is not None:
        what += f" {MODEL_LABELS[token_of(credential.model, MODEL_TOKENS)]}"
    replaces = (
        f", en remplacement du support n°{credential.replaces_id}" if credential.replaces_id else ""
    )
    ctx.out.write(
        f"Demande n°{credential.id} enregistrée : {what} pour {holder.first_name} "
        f"{holder.last_name} ({holder.email})"
        f"{replaces} ({messages.state_label(credential.state)} le "
        f"{_day(credential.requested_on)}).\n"
    )
    return 0


def cmd_recevoir(ctx: Context, args: argparse.Namespace) -> int:
    """Record that the requested credential arrived at the IT service."""
    # Any active operator may try: the service checks the role the step needs.
    moved = records.receive(ctx.workspace(), args.id, serial=args.numero_serie, on=args.date)
    ctx.out.write(
        f"Demande n°{moved.credential_id} : {_move(moved.source, moved.target)} le "
        f"{_day(moved.day)}, n° de série {moved.serial}.\n"
    )
    return 0


def cmd_remettre(ctx: Context, args: argparse.Namespace) -> int:
    """Hand the received credential over to its holder (habilitated operators only)."""
    moved = records.hand_over(
        ctx.workspace(), args.id, on=args.date, old_returned=args.ancien_restitue
    )
    line = (
        f"Demande n°{moved.credential_id} : {_move(moved.source, moved.target)}, remise le "
        f"{_day(moved.day)}"
    )
    if moved.returned_id is not None:
        line += f" ; support remplacé n°{moved.returned_id} : {_move(S.ACTIVE, S.RETURNED)}"
    elif moved.replaces_id is not None:
        line += f" ; le support remplacé n°{moved.replaces_id} quitte le plan de renouvellement"
        if args.ancien_restitue:
            line += " (il n'était plus en service : rien à restituer)"
    elif args.ancien_restitue:
        line += " ; la demande ne remplaçait aucun support : rien à restituer"
    ctx.out.write(line + ".\n")
    return 0


def cmd_annuler(ctx: Context, args: argparse.Namespace) -> int:
    """Cancel a request, with a reason."""
    moved = records.cancel(ctx.workspace(), args.id, reason=args.motif)
    ctx.out.write(f"Demande n°{moved.credential_id} : {_move(moved.source, moved.target)}.\n")
    return 0


# The fields of one JSON object, and the CSV columns, in this order.
FIELDS = (
    "id",
    "type",
    "modele",
    "etat",
    "titulaire",
    "email",
    "organisation",
    "numero_serie",
    "remplace",
    "demandee_le",
    "recue_le",
    "remise_le",
    "age_jours",
    "delai_jours",
)

_TABLE_HEADERS = (
    "id",
    "type",
    "modèle",
    "état",
    "titulaire",
    "organisation",
    "n° de série",
    "remplace",
    "demandée le",
    "reçue le",
    "remise le",
    "âge (j)",
    "délai (j)",
)


def cmd_liste(ctx: Context, args: argparse.Namespace) -> int:
    """List the requests with their age and the lead time so far."""
    today = ctx.today()
    with db.read_session(ctx.ready_engine()) as session:
        operators.require(session, ctx.operator_login, OperatorRole.READER)
        lines = requests.list_requests(session, today=today, pending_only=args.en_attente)
    if args.format == "json":
        output.json_array(
            ctx.out, (dict(zip(FIELDS, _values(line), strict=True)) for line in lines)
        )
        return 0
    if args.format == "csv":
        output.csv_rows(ctx.out, FIELDS, (_values(line) for line in lines))
        return 0
    if not lines:
        ctx.out.write(
            "Aucune demande en attente.\n" if args.en_attente else "Aucune demande enregistrée.\n"
        )
        return 0
    output.table(ctx.out, _TABLE_HEADERS, (_table_line(line) for line in lines))
    pending = [line for line in lines if line.state in requests.PENDING]
    received = sum(1 for line in pending if line.state is S.RECEIVED)
    ctx.out.write(
        f"\n{_plural(len(lines), 'demande')} ; en attente : {len(pending)} (demandées : "
        f"{len(pending) - received}, reçues à remettre : {received}).\n"
    )
    return 0


def _values(line: RequestLine) -> list[Any]:
    return [
        line.id,
        token_of(line.kind, KIND_TOKENS),
        token_of(line.model, MODEL_TOKENS) if line.model else None,
        token_of(line.state, STATE_TOKENS),
        line.holder_name,
        line.email,
        line.organisation,
        line.serial,
        line.replaces_id,
        _iso(line.requested_on),
        _iso(line.received_on),
        _iso(line.handed_over_on),
        line.age_days,
        line.lead_days,
    ]


def _table_line(line: RequestLine) -> list[Any]:
    return [
        line.id,
        messages.KIND_LABELS[line.kind],
        token_of(line.model, MODEL_TOKENS) if line.model else "—",
        messages.state_label(line.state),
        line.holder_name,
        line.organisation,
        line.serial or "—",
        line.replaces_id or "—",
        _day(line.requested_on),
        _day(line.received_on),
        _day(line.handed_over_on),
        "—" if line.age_days is None else line.age_days,
        "—" if line.lead_days is None else line.lead_days,
    ]


def _move(source: CredentialState, target: CredentialState) -> str:
    return f"{messages.state_label(source)} → {messages.state_label(target)}"


def _day(day: dt.date | None) -> str:
    return f"{day:%d/%m/%Y}" if day else "—"


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count > 1 else ''}"
