"""``cartes lecteurs`` (tokens and certificates present), ``cartes statut`` (a lawyer's
check of the key plugged in: validity, revocation, and by when to order the renewal) and
``cartes scanner`` (the desk: match with the inventory, registration, proof of possession).

Parsing, the PIN prompt and rendering only: the work is ``cartes.desk``'s, which the terminal
UI calls too. Only ``scanner`` needs the inventory database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from cartes import desk, messages
from cartes.cli.context import Context
from cartes.cli.validate_cmd import build_validator
from cartes.messages import PIN_STATES, READER_MESSAGES, reader_text
from cartes.readers import CertificateObject, Proof, ScanReport, TokenRead, scan
from cartes.selfcheck import next_step
from cartes.settings import Settings
from inventaire.clock import PARIS
from inventaire.enums import CredentialKind
from inventaire.vocabulary import KIND_TOKENS
from pki import (
    INVALID,
    UNDETERMINED,
    VALID,
    PkiError,
    Reason,
    Validator,
    describe,
)


def _scan(ctx: Context, args: argparse.Namespace) -> ScanReport | None:
    modules = desk.reader_modules(ctx.settings, args.module)
    if not modules:
        text = READER_MESSAGES["aucun_module"]
        ctx.err.write(text[:1].upper() + text[1:] + ".\n")
        return None
    report = scan(modules, slot=getattr(args, "slot", None))
    for module, code, detail in report.problems:
        extra = f" ({detail})" if detail else ""
        ctx.err.write(f"{module} : {reader_text(code)}{extra}.\n")
    return report


def _scan_and_trust(ctx: Context, args: argparse.Namespace) -> tuple[ScanReport, Validator] | int:
    """The scan and the validator, or the exit code of what prevented them."""
    report = _scan(ctx, args)
    if report is None:
        return 1
    try:
        return report, build_validator(ctx, args)
    except PkiError as exc:
        ctx.err.write(messages.pki_text(exc.code, exc.params) + "\n")
        return 3


def _exit(report: ScanReport) -> int:
    return 1 if report.problems and not report.tokens else 0


# cartes lecteurs ----------------------------------------------------------------------


def cmd_lecteurs(ctx: Context, args: argparse.Namespace) -> int:
    """The tokens present and their certificates."""
    report = _scan(ctx, args)
    if report is None:
        return 1
    if args.format == "json":
        ctx.out.write(
            json.dumps([_token_object(t) for t in report.tokens], ensure_ascii=False, indent=2)
            + "\n"
        )
        return _exit(report)
    if not report.tokens:
        ctx.out.write("Aucune carte ni clé dans les lecteurs.\n")
    for token in report.tokens:
        _write_token(ctx, token)
    return _exit(report)


def _certificate_object(found: CertificateObject) -> dict[str, Any]:
    info = describe(found.certificate) if found.certificate is not None else None
    return {
        "label": found.label,
        "id": found.id,
        "empreinte_sha256": info.fingerprint_sha256 if info else None,
        "sujet": info.subject if info else None,
        "non_apres": info.not_after.isoformat() if info else None,
        "erreur": reader_text(found.error),
    }


def _token_object(token: TokenRead) -> dict[str, Any]:
    return {
        "module": token.module,
        "slot": token.slot,
        "label": token.label,
        "numero_serie": token.serial,
        "fabricant": token.manufacturer,
        "modele": token.model,
        "certificats": [_certificate_object(c) for c in token.certificates],
        "erreur": reader_text(token.error),
        "pin": PIN_STATES.get(token.pin_state or ""),
    }


def _write_token(ctx: Context, token: TokenRead) -> None:
    out = ctx.out
    out.write(
        f"Emplacement {token.slot} : « {token.label} » n° {token.serial} "
        f"({token.manufacturer}, {token.model})\n"
    )
    if token.error:
        out.write(f"  ! {reader_text(token.error)}\n")
    if token.pin_state:
        out.write(f"  ! {PIN_STATES[token.pin_state]}\n")
    if not token.certificates and not token.error:
        out.write("  aucun certificat\n")
    for found in token.certificates:
        name = f"{found.label or 'sans nom'} (id {found.id or '?'})"
        if found.certificate is None:
            out.write(f"  - {name} : {reader_text(found.error)}\n")
            continue
        info = describe(found.certificate)
        expiry = info.not_after.astimezone(PARIS)
        role = messages.certificate_role_text(info.role)
        out.write(
            f"  - {name} : {info.holder_name or info.subject}, {role}, "
            f"expire le {expiry:%d/%m/%Y}, empreinte {info.fingerprint_sha256[:16]}…\n"
        )


# cartes statut --------------------------------------------------------------------------

KIND_NAMES = {
    "cle_rpva": "clé RPVA",
    "carte_agent": "carte agent",
    "carte_expert": "carte expert",
    "carte_temporaire": "carte temporaire",
}


def cmd_statut(ctx: Context, args: argparse.Namespace) -> int:
    """Validity, revocation and the renewal order-by date of the key(s) plugged in."""
    prepared = _scan_and_trust(ctx, args)
    if isinstance(prepared, int):
        return prepared
    report, validator = prepared
    at = args.date or ctx.now()
    tokens = desk.validate_tokens(report.tokens, validator=validator, at=at)
    for token in tokens:
        label = token.token.label
        if token.token.error:
            ctx.err.write(f"« {label} » : {reader_text(token.token.error)}.\n")
        for found in token.certificates:
            if found.result is None:
                ctx.err.write(f"« {label} », {found.label} : {reader_text(found.error)}.\n")
    statuses = desk.lawyer_status(tokens, renewal=ctx.settings.renewal, validator=validator, at=at)
    steps = [_step(ctx.settings, status, at) for status in statuses]
    if args.format == "json":
        public = [
            _status_object(status, step) for status, step in zip(statuses, steps, strict=True)
        ]
        ctx.out.write(json.dumps(public, ensure_ascii=False, indent=2) + "\n")
    else:
        if not statuses:
            ctx.out.write("Aucun certificat lisible : branchez votre clé ou votre carte.\n")
        for status, step in zip(statuses, steps, strict=True):
            _write_status(ctx, status, step)
    if not statuses:
        return 1
    return {VALID: 0, INVALID: 1, UNDETERMINED: 2}[desk.worst_status(s.status for s in statuses)]


def _reason_object(reason: Reason) -> dict[str, str]:
    return {"code": reason.code, "message": messages.pki_text(reason.code, reason.params)}


def _step(settings: Settings, status: desk.CertificateStatus, at: dt.datetime) -> dict[str, Any]:
    """The next step, as the status page gives it (without the inventory)."""
    kind = KIND_TOKENS.get(status.kind, CredentialKind.RPVA_KEY)
    advice = next_step(status, known=None, kind=kind, settings=settings, at=at)
    sentence, how = messages.step_text(advice, None, settings.alerts.instructions.of(kind))
    by = advice.by.isoformat() if advice.by else None
    return {"code": advice.step.value, "avant_le": by, "message": sentence, "consigne": how}


def _status_object(status: desk.CertificateStatus, step: dict[str, Any]) -> dict[str, Any]:
    info, plan = status.info, status.outlook
    return {
        "titulaire": info.holder_name,
        "type": status.kind,
        "role": info.role,
        "jeton": status.token_label,
        "non_apres": info.not_after.isoformat(),
        "jours_restants": plan.days_left,
        "statut": status.status,
        "revocation": status.revocation,
        "motifs": [_reason_object(reason) for reason in status.reasons],
        "date_limite_commande": plan.order_by.isoformat(),
        "rupture_previsible_jours": plan.predicted_gap_days,
        "prochaine_etape": step,
    }


def _french_day(iso: str) -> str:
    return dt.date.fromisoformat(iso[:10]).strftime("%d/%m/%Y")


def _write_status(ctx: Context, status: desk.CertificateStatus, step: dict[str, Any]) -> None:
    out = ctx.out
    info, plan = status.info, status.outlook
    role = {"authentification": "d'authentification", "signature": "de signature"}.get(
        info.role or "", ""
    )
    kind = KIND_NAMES.get(status.kind, status.kind)
    out.write(
        f"{kind[:1].upper()}{kind[1:]} « {status.token_label} » — "
        f"{info.holder_name or 'titulaire inconnu'}, certificat {role}\n"
    )
    expiry = _french_day(info.not_after.isoformat())
    days = plan.days_left
    if days >= 0:
        out.write(f"  valable jusqu'au {expiry} ({days} jours restants)\n")
    else:
        out.write(f"  EXPIRÉ depuis le {expiry}\n")
    label = {VALID: "valide", INVALID: "invalide", UNDETERMINED: "indéterminé"}[status.status]
    out.write(f"  état : {label}\n")
    revocation = {
        "revoque": "RÉVOQUÉE",
        "non_revoque": "non révoquée",
        "inconnue": "inconnue (liste de révocation indisponible ou certificat invalide)",
    }[status.revocation]
    out.write(f"  révocation : {revocation}\n")
    for reason in status.reasons:
        out.write(f"    - {_reason_object(reason)['message']}\n")
    order_by = _french_day(plan.order_by.isoformat())
    out.write(
        f"  renouvellement à commander au plus tard le {order_by} "
        f"(délai {status.lead_days} jours + marge {status.margin_days} jours)\n"
    )
    out.write(f"  à faire : {step['message']}\n")
    if step["consigne"]:
        out.write(f"  {step['consigne']}\n")
    gap = plan.predicted_gap_days
    if plan.order_late and gap > 0:
        out.write(
            f"  ATTENTION : rupture prévisible de {gap} jours entre l'expiration et "
            "l'arrivée de la nouvelle clé.\n"
        )


# cartes scanner -------------------------------------------------------------------------

MATCH_LABELS = {
    "empreinte": "certificat déjà connu",
    "numero_serie": "numéro de série connu",
    "email": "titulaire reconnu par son adresse",
    "nom": "titulaire reconnu par son nom",
}
PROOF_ERRORS = {
    "pin_incorrect": "code PIN incorrect",
    "pin_bloque": "code PIN bloqué",
    "cle_absente": "aucune clé privée avec cet identifiant sur la carte",
    "signature_fausse": "la clé de la carte ne correspond pas au certificat",
    "jeton_retire": "la carte a été retirée",
    "algorithme_non_pris_en_charge": "type de clé non pris en charge",
}


def _read_pin(ctx: Context, args: argparse.Namespace) -> str | None:
    """The holder's PIN: from standard input, or typed without echo. Never kept."""
    if not args.preuve:
        return None
    if args.pin_depuis_stdin:
        import sys

        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    return getpass.getpass("Code PIN du titulaire (non affiché) : ")


def cmd_scanner(ctx: Context, args: argparse.Namespace) -> int:
    """Scan, validate, match with the inventory; register on the operator's word."""
    from inventaire.vocabulary import STATE_TOKENS, parse_token

    if (args.deja_remise or args.remise_le) and not args.enregistrer:
        ctx.err.write("--deja-remise et --remise-le s'emploient avec --enregistrer.\n")
        return 2
    if args.remise_le and not args.deja_remise:
        ctx.err.write(
            "--remise-le donne le jour d'une remise déjà faite : il s'emploie avec --deja-remise.\n"
        )
        return 2
    # Without --etat, inventaire decides from the operator's roles (cards.first_state).
    state = parse_token("etat", args.etat, STATE_TOKENS) if args.etat else None
    prepared = _scan_and_trust(ctx, args)
    if isinstance(prepared, int):
        return prepared
    report, validator = prepared
    engine = ctx.ready_engine()
    at = ctx.now()
    tokens = desk.validate_tokens(report.tokens, validator=validator, at=at)
    pin = _read_pin(ctx, args)
    results: list[dict[str, Any]] = []
    try:
        for token in tokens:
            proofs = [
                desk.prove(token, found, pin, pss=args.pss) if pin is not None else None
                for found in token.certificates
            ]
            outcome = desk.match_and_register(
                engine,
                token,
                operator_login=ctx.operator_login,
                register=args.enregistrer,
                state=state,
                already_handed_over=args.deja_remise,
                handed_over_on=args.remise_le,
                now=at,
            )
            results.append(_scan_object(token, proofs, outcome))
    finally:
        del pin  # the PIN lives no longer than the scan
    if args.format == "json":
        ctx.out.write(json.dumps(results, ensure_ascii=False, indent=2) + "\n")
    else:
        _write_scan(ctx, results)
    refused = any(
        "erreur" in entry.get("enregistrement", {})
        or any((c.get("preuve") or {}).get("prouvee") is False for c in entry["certificats"])
        for entry in results
    )
    return 1 if refused else _exit(report)


def _proof_object(proof: Proof) -> dict[str, Any]:
    return {
        "prouvee": proof.proven,
        "mecanisme": proof.mechanism,
        "erreur": PROOF_ERRORS.get(proof.error or "", proof.error),
        "pin": PIN_STATES.get(proof.pin_state or ""),
    }


def _scan_object(
    token: desk.ScannedToken, proofs: list[Proof | None], outcome: desk.InventoryOutcome
) -> dict[str, Any]:
    """The report of one token: its certificates, the inventory's match, the registration."""
    entry: dict[str, Any] = {
        "label": token.token.label,
        "numero_serie": token.token.serial,
        "erreur": reader_text(token.token.error),
        "certificats": [],
    }
    for found, proof in zip(token.certificates, proofs, strict=True):
        if found.info is None or found.result is None:
            entry["certificats"].append({"label": found.label, "erreur": reader_text(found.error)})
            continue
        entry["certificats"].append(
            {
                "label": found.label,
                "id": found.id,
                "sujet": found.info.subject,
                "titulaire": found.info.holder_name,
                "empreinte_sha256": found.info.fingerprint_sha256,
                "non_apres": found.info.not_after.isoformat(),
                "statut": found.result.status,
                "motifs": [messages.pki_text(r.code, r.params) for r in found.result.reasons],
                "preuve": _proof_object(proof) if proof is not None else None,
            }
        )
    match = outcome.match
    entry["correspondance"] = {
        "support": match.credential_id,
        "titulaire": match.holder_id,
        "par": match.by,
    }
    if outcome.refused is not None:
        entry["enregistrement"] = {"erreur": messages.error_text(outcome.refused)}
    elif outcome.registration is not None:
        entry["enregistrement"] = _registration_object(outcome.registration)
    return entry


def _registration_object(registration: desk.Registration) -> dict[str, Any]:
    """What the registration did, for the report: ``remise`` is "remise" (handed over now),
    "deja_remise" (a past handover recorded) or None."""
    from inventaire.vocabulary import STATE_TOKENS, token_of

    day = registration.handed_over_on
    return {
        "support": registration.credential_id,
        "cree": registration.created,
        "etat": token_of(registration.state, STATE_TOKENS),
        "remise": registration.handover,
        "remise_le": day.isoformat() if day else None,
    }


def _registration_text(registration: dict[str, Any]) -> str:
    from inventaire.vocabulary import STATE_TOKENS

    number = f"support n°{registration['support']}"
    state = messages.state_label(STATE_TOKENS[registration["etat"]])
    day = registration["remise_le"]
    if not registration["cree"]:
        return f"{number} mis à jour (état inchangé : {state})"
    if registration["remise"] == "remise":
        return f"{number} créé ({state}) : remis à son titulaire le {_french_day(day)}"
    if registration["remise"] == "deja_remise":
        when = f"le {_french_day(day)}" if day else "à une date inconnue"
        return f"{number} créé ({state}) : remise déjà faite {when}, enregistrée comme telle"
    if registration["etat"] == "recue":
        return f"{number} créé ({state}) : à remettre par une personne habilitée"
    return f"{number} créé ({state})"


def _write_scan(ctx: Context, results: list[dict[str, Any]]) -> None:
    out = ctx.out
    if not results:
        out.write("Aucune carte ni clé dans les lecteurs.\n")
    for entry in results:
        out.write(f"« {entry['label']} » n° {entry['numero_serie']}\n")
        if entry["erreur"]:
            out.write(f"  ! {entry['erreur']}\n")
        for certificate in entry["certificats"]:
            if "statut" not in certificate:
                out.write(f"  - {certificate['label']} : {certificate['erreur']}\n")
                continue
            label = {VALID: "valide", INVALID: "invalide", UNDETERMINED: "indéterminé"}
            expiry = _french_day(certificate["non_apres"])
            out.write(
                f"  - {certificate['label']} (id {certificate['id']}) : "
                f"{certificate['titulaire']}, {label[certificate['statut']]}, expire le {expiry}\n"
            )
            for reason in certificate["motifs"]:
                out.write(f"      {reason}\n")
            proof = certificate.get("preuve")
            if proof:
                if proof["prouvee"]:
                    out.write(f"      possession de la clé prouvée ({proof['mecanisme']})\n")
                else:
                    out.write(f"      possession NON prouvée : {proof['erreur']}\n")
                if proof["pin"]:
                    out.write(f"      {proof['pin']}\n")
        matched = entry["correspondance"]
        if matched["par"]:
            credential = matched["support"] or "—"
            out.write(
                f"  inventaire : {MATCH_LABELS[matched['par']]} (support {credential}, "
                f"titulaire {matched['titulaire']})\n"
            )
        else:
            out.write("  inventaire : carte et titulaire inconnus\n")
        registration = entry.get("enregistrement")
        if registration:
            if "erreur" in registration:
                out.write(f"  enregistrement refusé : {registration['erreur']}\n")
            else:
                out.write(f"  {_registration_text(registration)}\n")
