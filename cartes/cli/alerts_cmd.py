"""``cartes alertes``: preview, send, test the mail server, list the outbox, mute."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cartes import messages
from cartes.cli import output
from cartes.cli.context import Context
from cartes.ops import alerts as alerts_ops
from inventaire import alerts, outbox
from inventaire.clock import PARIS, from_db
from inventaire.errors import InventaireError
from inventaire.vocabulary import (
    ALERT_LEVEL_TOKENS,
    DIGEST_STATE_TOKENS,
    KIND_TOKENS,
    parse_token,
    token_of,
)


def cmd_apercu(ctx: Context, args: argparse.Namespace) -> int:
    """What a send would mail now, computed by the planner itself and then rolled back."""
    from cartes import mail

    seen = alerts_ops.preview(ctx.workspace(), day=args.date)
    today = seen.day
    rendered = [(item.content, item.mail) for item in seen.mails]
    if args.dossier is not None:
        try:
            args.dossier.mkdir(parents=True, exist_ok=True)
            for content, message in rendered:
                mail.write_eml(message, args.dossier / f"{content.id:06d}.eml")
        except OSError as exc:
            raise InventaireError(
                "dossier_inaccessible", dossier=str(args.dossier), detail=exc.strerror
            ) from None
    if args.format == "json":
        document = [
            _digest_object(content, mail.digest_subject(content)) for content, _ in rendered
        ]
        ctx.out.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
        return 0
    out = ctx.out
    if not rendered:
        out.write(f"Aucun courriel à envoyer le {today:%d/%m/%Y}.\n")
        return 0
    items = sum(len(content.items) for content, _ in rendered)
    out.write(
        f"{len(rendered)} courriel{'s' if len(rendered) > 1 else ''} à envoyer le "
        f"{today:%d/%m/%Y} ({items} alerte{'s' if items > 1 else ''}) — aperçu, rien n'est "
        "enregistré ni envoyé.\n"
    )
    for content, _ in rendered:
        out.write(f"\nÀ : {content.recipient}\nObjet : {mail.digest_subject(content)}\n")
        for item in content.items:
            if item.emergency is not None:
                out.write(
                    f"  - {messages.LEVEL_LABELS[item.level]} : carte n° {item.serial} de "
                    f"{item.holder_name}, remise le {item.emergency.issued_on:%d/%m/%Y}, "
                    f"retour prévu le {item.emergency.return_due_on:%d/%m/%Y}\n"
                )
                continue
            expiry = "a expiré" if item.days_left < 0 else "expire"
            out.write(
                f"  - {messages.LEVEL_LABELS[item.level]} : {messages.KIND_LABELS[item.kind]} "
                f"{item.serial or '(sans numéro)'} de {item.holder_name}, {expiry} le "
                f"{item.expires_on:%d/%m/%Y}, date limite de commande {item.order_by:%d/%m/%Y}"
                + (f", rupture de {item.gap_days} jours" if item.gap_days else "")
                + "\n"
            )
    if args.dossier is not None:
        out.write(f"\nCourriels écrits dans {args.dossier} (fichiers .eml).\n")
    return 0


def _digest_object(content: outbox.DigestContent, subject: str) -> dict[str, Any]:
    return {
        "destinataire": content.recipient,
        "objet": subject,
        "message_id": content.message_id,
        "alertes": [
            {
                "alerte": item.alert_id,
                "support": item.credential_id,
                "niveau": token_of(item.level, ALERT_LEVEL_TOKENS),
                "type": token_of(item.kind, KIND_TOKENS),
                "titulaire": item.holder_name,
                "numero_serie": item.serial,
                "date_expiration": item.expires_on.isoformat(),
                "date_limite_commande": item.order_by.isoformat(),
                "rupture_previsible_jours": item.gap_days,
            }
            for item in content.items
        ],
    }


def cmd_envoyer(ctx: Context, args: argparse.Namespace) -> int:
    """Plan the due alerts and send them, unless the service is sending already."""
    report = alerts_ops.send_now(ctx.workspace(), day=args.date, face="cartes alertes envoyer")
    out = ctx.out
    out.write(
        f"Alertes planifiées : {report.planned}. Courriels envoyés : {report.sent}"
        f", refusés : {report.failed}, en attente : {report.waiting}.\n"
    )
    if report.failed:
        ctx.err.write(
            "Des courriels ont été refusés définitivement : voir « cartes alertes liste "
            "--etat echec ».\n"
        )
    if report.error:
        ctx.err.write(
            f"Envoi interrompu : {report.error}\nRien n'est perdu : les courriels en attente "
            "partiront au prochain envoi.\n"
        )
    return 0 if report.ok else 1


def cmd_tester(ctx: Context, args: argparse.Namespace) -> int:
    """Send one test mail to check the SMTP settings."""
    result = alerts_ops.send_test(ctx.workspace(), args.adresse)
    if result.sent:
        ctx.out.write(f"Courriel d'essai accepté par {result.server} pour {args.adresse}.\n")
        return 0
    ctx.err.write(
        f"Échec du courriel d'essai par {result.server} ({result.security}) : {result.error}\n"
    )
    return 1


_LIST_HEADERS = (
    "id",
    "support",
    "niveau",
    "destinataire",
    "etat",
    "prevue_le",
    "envoyee_le",
    "tentatives",
    "erreur",
    "message_id",
)


def cmd_liste(ctx: Context, args: argparse.Namespace) -> int:
    """The alerts of the outbox with the state of their e-mail, the newest first."""
    states = tuple(parse_token("--etat", e, DIGEST_STATE_TOKENS) for e in args.etat or ())
    lines = alerts_ops.alert_lines(
        ctx.workspace(), states=states, recipient=args.destinataire, limit=args.limite or None
    )
    rows = [_alert_object(line) for line in lines]
    if args.format == "json":
        output.json_array(ctx.out, rows)
    elif args.format == "csv":
        output.csv_rows(ctx.out, _LIST_HEADERS, ([row[h] for h in _LIST_HEADERS] for row in rows))
    else:
        shown = [
            [
                line.id,
                line.credential_id,
                messages.LEVEL_LABELS[line.level]
                + (f" ({line.occurrence + 1})" if line.occurrence else ""),
                line.recipient,
                messages.DIGEST_STATE_LABELS[line.state],
                f"{line.due_on:%d/%m/%Y}",
                f"{from_db(line.sent_at).astimezone(PARIS):%d/%m/%Y %H:%M}" if line.sent_at else "",
                line.attempts,
                (line.last_error or "")[:60],
            ]
            for line in lines
        ]
        headers = ["id", "support", "niveau", "destinataire", "état", "prévue le"]
        headers += ["envoyée le", "tentatives", "erreur"]
        count = output.table(ctx.out, headers, shown)
        ctx.out.write(f"{count} alerte{'s' if count > 1 else ''}.\n")
    return 0


def _alert_object(line: alerts.AlertLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "support": line.credential_id,
        "niveau": token_of(line.level, ALERT_LEVEL_TOKENS),
        "destinataire": line.recipient,
        "etat": token_of(line.state, DIGEST_STATE_TOKENS),
        "prevue_le": line.due_on.isoformat(),
        "envoyee_le": from_db(line.sent_at).isoformat() if line.sent_at else None,
        "tentatives": line.attempts,
        "erreur": line.last_error,
        "message_id": line.message_id,
    }


def cmd_silence(ctx: Context, args: argparse.Namespace) -> int:
    """Mute the alerts of one credential with a reason, or let them go again."""
    from cartes.ops import records

    if args.lever:
        records.unmute(ctx.workspace(), args.id)
    else:
        records.mute(ctx.workspace(), args.id, args.motif)
    if args.lever:
        ctx.out.write(f"Support n°{args.id} : alertes rétablies.\n")
    else:
        ctx.out.write(f"Support n°{args.id} : alertes coupées ({args.motif.strip()}).\n")
    return 0
