"""``cartes lecteurs`` (tokens and certificates present) and ``cartes statut`` (a lawyer's
check of the key plugged in: validity, revocation, and by when to order the renewal).

Neither needs the inventory database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from cartes import messages
from cartes.cli.context import Context
from cartes.cli.validate_cmd import build_validator
from cartes.readers import CertificateObject, ScanReport, TokenRead, module_list, scan
from inventaire.clock import PARIS, paris_today
from inventaire.enums import CredentialKind
from inventaire.renewal import outlook
from inventaire.vocabulary import KIND_TOKENS
from pki import INVALID, UNDETERMINED, VALID, PkiError, describe

_DER = Encoding.DER

READER_MESSAGES = {
    "module_absent": "module PKCS#11 introuvable",
    "module_illisible": "module PKCS#11 impossible à charger",
    "jeton_retire": "la carte ou la clé a été retirée pendant la lecture",
    "jeton_non_reconnu": "carte ou clé non reconnue par le module",
    "jeton_illisible": "carte ou clé illisible",
    "objet_vide": "objet certificat vide",
    "certificat_illisible": "objet certificat illisible (contenu non reconnu)",
    "lecture_impossible": "objet certificat impossible à lire",
}
PIN_STATES = {
    "essais_faibles": "attention : plusieurs codes PIN faux ont déjà été saisis",
    "dernier_essai": "attention : un seul essai de code PIN reste avant blocage",
    "bloque": "code PIN bloqué : faites débloquer la carte",
}


def reader_text(code: str | None) -> str | None:
    return None if code is None else READER_MESSAGES.get(code, code)


def _scan(ctx: Context, args: argparse.Namespace) -> ScanReport | None:
    readers = ctx.settings.readers
    if readers.softhsm2_conf is not None:
        os.environ.setdefault("SOFTHSM2_CONF", str(readers.softhsm2_conf))
    modules = module_list(readers.modules, args.module)
    if not modules:
        ctx.err.write(
            "Aucun module PKCS#11 : installez OpenSC (paquet opensc) ou indiquez le module du "
            "lecteur avec --module ou readers.modules dans la configuration.\n"
        )
        return None
    report = scan(modules, slot=getattr(args, "slot", None))
    for module, code, detail in report.problems:
        extra = f" ({detail})" if detail else ""
        ctx.err.write(f"{module} : {reader_text(code)}{extra}.\n")
    return report


def _scan_and_trust(ctx: Context, args: argparse.Namespace) -> tuple[ScanReport, Any] | int:
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
        out.write(
            f"  - {name} : {info.holder_name or info.subject}, {info.role or 'rôle inconnu'}, "
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
    today = paris_today(at)
    renewal = ctx.settings.renewal
    entries: list[dict[str, Any]] = []
    worst = VALID
    for token in report.tokens:
        if token.error:
            ctx.err.write(f"« {token.label} » : {reader_text(token.error)}.\n")
        for found in token.certificates:
            if found.certificate is None:
                ctx.err.write(f"« {token.label} », {found.label} : {reader_text(found.error)}.\n")
                continue
            result = validator.validate(found.certificate, at)
            if validator.trust.empty:
                status = UNDETERMINED
                reasons = [{"code": "confiance_absente",
                            "message": "aucune ancre de confiance n'est configurée."}]  # fmt: skip
            else:
                status = result.status
                reasons = [
                    {"code": r.code, "message": messages.pki_text(r.code, r.params)}
                    for r in result.reasons
                ]
            kind = result.kind or "cle_rpva"  # the self-check is the lawyers' tool
            lead = renewal.lead_days()[KIND_TOKENS.get(kind, CredentialKind.RPVA_KEY)]
            info = describe(found.certificate)
            plan = outlook(
                info.not_after.astimezone(PARIS).date(),
                today=today,
                lead_days=lead,
                margin_days=renewal.safety_margin_days,
            )
            worst = _worse(worst, status)
            entries.append(
                {
                    "titulaire": info.holder_name,
                    "type": kind,
                    "role": info.role,
                    "jeton": token.label,
                    "non_apres": info.not_after.isoformat(),
                    "jours_restants": plan.days_left,
                    "statut": status,
                    "revocation": _revocation(status, reasons),
                    "motifs": reasons,
                    "date_limite_commande": plan.order_by.isoformat(),
                    "rupture_previsible_jours": plan.predicted_gap_days,
                    "_lead": lead,
                    "_late": plan.order_late,
                }
            )
    if args.format == "json":
        public = [{k: v for k, v in e.items() if not k.startswith("_")} for e in entries]
        ctx.out.write(json.dumps(public, ensure_ascii=False, indent=2) + "\n")
    else:
        if not entries:
            ctx.out.write("Aucun certificat lisible : branchez votre clé ou votre carte.\n")
        for entry in entries:
            _write_status(ctx, entry, renewal.safety_margin_days)
    if not entries:
        return 1
    return {VALID: 0, INVALID: 1, UNDETERMINED: 2}[worst]


def _revocation(status: str, reasons: list[dict[str, Any]]) -> str:
    """What is known of revocation: "revoque", "non_revoque" or "inconnue"."""
    codes = {reason["code"] for reason in reasons}
    if "revoque" in codes:
        return "revoque"
    if status == VALID:
        return "non_revoque"
    return "inconnue"


def _worse(a: str, b: str) -> str:
    order = {VALID: 0, UNDETERMINED: 1, INVALID: 2}
    return a if order[a] >= order[b] else b


def _french_day(iso: str) -> str:
    return dt.date.fromisoformat(iso[:10]).strftime("%d/%m/%Y")


def _write_status(ctx: Context, entry: dict[str, Any], margin: int) -> None:
    out = ctx.out
    role = {"authentification": "d'authentification", "signature": "de signature"}.get(
        entry["role"] or "", ""
    )
    kind = KIND_NAMES.get(entry["type"], entry["type"])
    out.write(
        f"{kind[:1].upper()}{kind[1:]} « {entry['jeton']} » — "
        f"{entry['titulaire'] or 'titulaire inconnu'}, certificat {role}\n"
    )
    expiry = _french_day(entry["non_apres"])
    days = entry["jours_restants"]
    if days >= 0:
        out.write(f"  valable jusqu'au {expiry} ({days} jours restants)\n")
    else:
        out.write(f"  EXPIRÉ depuis le {expiry}\n")
    label = {VALID: "valide", INVALID: "invalide", UNDETERMINED: "indéterminé"}[entry["statut"]]
    out.write(f"  état : {label}\n")
    revocation = {
        "revoque": "RÉVOQUÉE",
        "non_revoque": "non révoquée",
        "inconnue": "inconnue (liste de révocation indisponible ou certificat invalide)",
    }[entry["revocation"]]
    out.write(f"  révocation : {revocation}\n")
    for reason in entry["motifs"]:
        out.write(f"    - {reason['message']}\n")
    order_by = _french_day(entry["date_limite_commande"])
    out.write(
        f"  renouvellement à commander au plus tard le {order_by} "
        f"(délai {entry['_lead']} jours + marge {margin} jours)\n"
    )
    if entry["_late"]:
        gap = entry["rupture_previsible_jours"]
        out.write("  ATTENTION : la date limite de commande est passée, commandez aujourd'hui.\n")
        if gap > 0:
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


ROLES = {"authentification": "AUTHENTICATION", "signature": "SIGNATURE"}


def _card_certificate(found: CertificateObject, status: str) -> Any:
    from inventaire.cards import CardCertificate
    from inventaire.enums import CertificateRole

    assert found.certificate is not None
    info = describe(found.certificate)
    role = ROLES.get(info.role or "")
    return CardCertificate(
        der=found.certificate.public_bytes(_DER),
        fingerprint_sha256=info.fingerprint_sha256,
        subject=info.subject,
        issuer=info.issuer,
        serial_number=info.serial_number,
        not_before=info.not_before,
        not_after=info.not_after,
        role=CertificateRole(role) if role else None,
        status=status,
        email=info.email,
        holder_name=info.holder_name,
    )


def _proof(token: TokenRead, found: CertificateObject, pin: str, *, pss: bool) -> dict[str, Any]:
    from cartes.readers import prove_possession

    assert found.certificate is not None and found.id is not None
    outcome = prove_possession(token.module, token.slot, found.id, found.certificate, pin, pss=pss)
    return {
        "prouvee": outcome.proven,
        "mecanisme": outcome.mechanism,
        "erreur": PROOF_ERRORS.get(outcome.error or "", outcome.error),
        "pin": PIN_STATES.get(outcome.pin_state or ""),
    }


def _scan_token(
    token: TokenRead, validator: Any, at: dt.datetime, pin: str | None, *, pss: bool = False
) -> tuple[dict[str, Any], Any]:
    """The report of one token, and the card as the inventory sees it."""
    from inventaire.cards import ScannedCard
    from inventaire.enums import CredentialKind
    from inventaire.vocabulary import KIND_TOKENS

    entry: dict[str, Any] = {
        "label": token.label,
        "numero_serie": token.serial,
        "erreur": reader_text(token.error),
        "certificats": [],
    }
    read = []
    kinds = set()
    for found in token.certificates:
        if found.certificate is None:
            error = reader_text(found.error)
            entry["certificats"].append({"label": found.label, "erreur": error})
            continue
        result = validator.validate(found.certificate, at)
        if result.kind:
            kinds.add(result.kind)
        card_certificate = _card_certificate(found, result.status)
        read.append(card_certificate)
        entry["certificats"].append(
            {
                "label": found.label,
                "id": found.id,
                "sujet": card_certificate.subject,
                "titulaire": card_certificate.holder_name,
                "empreinte_sha256": card_certificate.fingerprint_sha256,
                "non_apres": card_certificate.not_after.isoformat(),
                "statut": result.status,
                "motifs": [messages.pki_text(r.code, r.params) for r in result.reasons],
                "preuve": (
                    _proof(token, found, pin, pss=pss) if pin is not None and found.id else None
                ),
            }
        )
    kind = KIND_TOKENS[kinds.pop()] if len(kinds) == 1 else None
    return entry, ScannedCard(token.serial, CredentialKind(kind) if kind else None, read)


def cmd_scanner(ctx: Context, args: argparse.Namespace) -> int:
    """Scan, validate, match with the inventory; register on the operator's word."""
    from inventaire import cards, db, operators
    from inventaire.enums import OperatorRole
    from inventaire.errors import InventaireError
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
    pin = _read_pin(ctx, args)
    results: list[dict[str, Any]] = []
    try:
        for token in report.tokens:
            entry, card = _scan_token(token, validator, at, pin, pss=args.pss)
            results.append(entry)
            with db.read_session(engine) as session:
                found = cards.match(session, card)
            entry["correspondance"] = {
                "support": found.credential_id,
                "titulaire": found.holder_id,
                "par": found.by,
            }
            if not (args.enregistrer and token.error is None and card.certificates):
                continue
            try:
                with db.write_session(engine) as session:
                    # The roles a registration needs are inventaire's to decide.
                    operator = operators.require(session, ctx.operator_login, OperatorRole.READER)
                    credential, created = cards.register(
                        session,
                        card,
                        operator=operator,
                        now=at,
                        state=state,
                        already_handed_over=args.deja_remise,
                        handed_over_on=args.remise_le,
                    )
                entry["enregistrement"] = _registration(credential, created, args.deja_remise)
            except InventaireError as exc:
                entry["enregistrement"] = {"erreur": messages.error_text(exc)}
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


def _registration(credential: Any, created: bool, already_handed_over: bool) -> dict[str, Any]:
    """What the registration did, for the report: ``remise`` is "remise" (handed over now),
    "deja_remise" (a past handover recorded) or None."""
    from inventaire.enums import CredentialState
    from inventaire.vocabulary import STATE_TOKENS, token_of

    handed_over = created and credential.state is CredentialState.ACTIVE
    return {
        "support": credential.id,
        "cree": created,
        "etat": token_of(credential.state, STATE_TOKENS),
        "remise": ("deja_remise" if already_handed_over else "remise") if handed_over else None,
        "remise_le": credential.handed_over_on.isoformat() if credential.handed_over_on else None,
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
