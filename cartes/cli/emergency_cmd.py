"""``cartes urgence``: old-model agent cards handed out in emergency — issue, take back,
the register."""

from __future__ import annotations

import argparse
from typing import Any

from cartes import messages
from cartes.cli import output
from cartes.cli.context import Context
from cartes.ops import emergency as emergency_ops
from inventaire import emergency
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
    issued = emergency_ops.issue(
        ctx.workspace(),
        holder_email=args.titulaire,
        serial=args.numero_serie,
        reason=args.motif,
        request_id=args.demande,
        without_request=args.sans_demande,
        return_due_on=args.retour_prevu,
    )
    bridge = (
        f"en attendant la demande n°{issued.request_id}"
        if issued.request_id is not None
        else "sans demande"
    )
    ctx.out.write(
        f"Carte d'urgence n° {issued.serial} remise à {issued.holder_email} "
        f"(émission n°{issued.issuance_id}, support n°{issued.credential_id}, {bridge}), "
        f"retour prévu le {issued.return_due_on:%d/%m/%Y}.\n"
    )
    return 0


def cmd_restituer(ctx: Context, args: argparse.Namespace) -> int:
    """Record that an emergency card came back."""
    returned = emergency_ops.give_back(ctx.workspace(), issuance_id=args.id, on=args.date)
    ctx.out.write(
        f"Émission d'urgence n°{returned.issuance_id} : carte n° {returned.serial} restituée "
        f"le {returned.returned_on:%d/%m/%Y} (support n°{returned.credential_id}, désormais "
        "restitué).\n"
    )
    return 0


def cmd_liste(ctx: Context, args: argparse.Namespace) -> int:
    """The register of emergency cards, as a table, CSV or JSON."""
    lines = emergency_ops.register(
        ctx.workspace(), overdue_only=args.en_retard, to_take_back_only=args.a_recuperer
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
        messages.emergency_situation(line),
    ]
