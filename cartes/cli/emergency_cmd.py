"""``cartes urgence``: old-model agent cards handed out in emergency — issue, take back,
the register."""

from __future__ import annotations

import argparse
from typing import Any

from cartes import messages
from cartes.cli import output
from cartes.cli.context import Context
from inventaire import db, emergency, operators
from inventaire.models import Credential, OperatorRole
from inventaire.vocabulary import STATE_TOKENS, token_of

# The fields of the JSON listing, in order; also the CSV header.
FIELDS = (
    "id",
    "support",
    "numero_serie",
    "titulaire",
    "email",
    "organisation",
    "emise_par",
    "motif",
    "emise_le",
    "retour_prevu_le",
    "demande",
    "demande_etat",
    "a_recuperer",
    "en_retard",
    "restituee_le",
)


def cmd_emettre(ctx: Context, args: argparse.Namespace) -> int:
    """Hand an old-model agent card over in emergency (habilitated operators only)."""
    engine = ctx.ready_engine()
    settings = ctx.settings
    with db.write_session(engine) as session:
        operator = operators.require(session, ctx.operator_login, OperatorRole.ISSUER)
        issuance = emergency.issue(
            session,
            holder_email=args.titulaire,
            serial=args.numero_serie,
            reason=args.motif,
            request_id=args.demande,
            without_request=args.sans_demande,
            return_due_on=args.retour_prevu,
            return_after_days=settings.emergency.return_after_days,
            operator=operator,
            now=ctx.now(),
        )
        card = session.get(Credential, issuance.credential_id)
        assert card is not None
        serial = card.serial
    bridge = (
        f"en attendant la demande n°{issuance.request_id}"
        if issuance.request_id is not None
        else "sans demande"
    )
    ctx.out.write(
        f"Carte d'urgence n° {serial} remise à {args.titulaire.strip().lower()} "
        f"(émission n°{issuance.id}, support n°{issuance.credential_id}, {bridge}), "
        f"retour prévu le {issuance.return_due_on:%d/%m/%Y}.\n"
    )
    return 0


def cmd_restituer(ctx: Context, args: argparse.Namespace) -> int:
    """Record that an emergency card came back."""
    engine = ctx.ready_engine()
    with db.write_session(engine) as session:
        operator = operators.require(session, ctx.operator_login, OperatorRole.MANAGER)
        issuance = emergency.give_back(
            session, issuance_id=args.id, on=args.date, operator=operator, now=ctx.now()
        )
        card = session.get(Credential, issuance.credential_id)
        assert card is not None and issuance.returned_on is not None
        serial, returned_on = card.serial, issuance.returned_on
    ctx.out.write(
        f"Émission d'urgence n°{issuance.id} : carte n° {serial} restituée le "
        f"{returned_on:%d/%m/%Y} (support n°{issuance.credential_id}, désormais restitué).\n"
    )
    return 0


def cmd_liste(ctx: Context, args: argparse.Namespace) -> int:
    """The register of emergency cards, as a table, CSV or JSON."""
    engine = ctx.ready_engine()
    today = ctx.today()
    with db.read_session(engine) as session:
        operators.require(session, ctx.operator_login, OperatorRole.READER)
        lines = emergency.list_issuances(
            session,
            today=today,
            overdue_only=args.en_retard,
            to_take_back_only=args.a_recuperer,
        )
    if args.format == "json":
        output.json_array(ctx.out, (_object(line) for line in lines))
    elif args.format == "csv":
        output.csv_rows(ctx.out, FIELDS, (_csv_row(line) for line in lines))
    else:
        count = output.table(ctx.out, _TABLE_HEADERS, (_table_row(line) for line in lines))
        ctx.out.write(f"{count} carte{'s' if count > 1 else ''} d'urgence.\n")
    return 0


def _object(line: emergency.EmergencyLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "support": line.credential_id,
        "numero_serie": line.serial,
        "titulaire": line.holder_name,
        "email": line.holder_email,
        "organisation": line.organisation,
        "emise_par": line.issued_by,
        "motif": line.reason,
        "emise_le": line.issued_on.isoformat(),
        "retour_prevu_le": line.return_due_on.isoformat(),
        "demande": line.request_id,
        "demande_etat": token_of(line.request_state, STATE_TOKENS) if line.request_state else None,
        "a_recuperer": line.to_take_back,
        "en_retard": line.overdue,
        "restituee_le": line.returned_on.isoformat() if line.returned_on else None,
    }


def _csv_row(line: emergency.EmergencyLine) -> list[Any]:
    row = _object(line)
    for field in ("a_recuperer", "en_retard"):
        row[field] = "oui" if row[field] else "non"
    return [row[field] for field in FIELDS]


_TABLE_HEADERS = (
    "id",
    "support",
    "n° de série",
    "titulaire",
    "organisation",
    "émise le",
    "par",
    "retour prévu",
    "demande",
    "situation",
)


def _situation(line: emergency.EmergencyLine) -> str:
    if line.returned_on is not None:
        return f"restituée le {line.returned_on:%d/%m/%Y}"
    if not line.outstanding:
        return messages.state_label(line.card_state)
    if line.overdue and line.to_take_back:
        return "en retard, à récupérer"
    if line.overdue:
        return "en retard"
    if line.to_take_back:
        return "à récupérer"
    return "en circulation"


def _table_row(line: emergency.EmergencyLine) -> list[Any]:
    request = "—"
    if line.request_id is not None:
        state = messages.state_label(line.request_state) if line.request_state else "?"
        request = f"n°{line.request_id} ({state})"
    return [
        line.id,
        line.credential_id,
        line.serial or "—",
        line.holder_name,
        line.organisation,
        f"{line.issued_on:%d/%m/%Y}",
        line.issued_by,
        f"{line.return_due_on:%d/%m/%Y}",
        request,
        _situation(line),
    ]
