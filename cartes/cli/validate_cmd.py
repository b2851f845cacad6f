"""``cartes valider``: validate the certificates of files, without database.

Exit codes: 0 all valid, 1 one is invalid, 2 none is invalid but one is undetermined,
3 an input cannot be read (this one wins: the work is incomplete).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cartes import messages
from cartes.cli.context import Context
from cartes.trust import validator_from_settings
from inventaire.clock import PARIS
from pki import (
    INVALID,
    UNDETERMINED,
    VALID,
    CrlStore,
    PkiError,
    Reason,
    TrustStore,
    ValidationResult,
    Validator,
    load_certificates_der,
)
from pki.parsing import MALFORMED_EXTENSION, is_ca

EXIT_CODES = {VALID: 0, INVALID: 1, UNDETERMINED: 2}
UNREADABLE = 3


def parse_instant(text: str) -> dt.datetime:
    """An ISO 8601 date or instant; without a time zone it is Paris time."""
    try:
        instant = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"date invalide : « {text} » (ISO 8601, par exemple 2026-11-26 ou "
            "2026-11-26T14:30:00+01:00)"
        ) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=PARIS)


@dataclass
class Outcome:
    """One certificate validated, or one input that could not be read."""

    source: str
    result: ValidationResult | None = None
    error: PkiError | None = None

    @property
    def code(self) -> int:
        return EXIT_CODES[self.result.status] if self.result else UNREADABLE


def build_validator(ctx: Context, args: argparse.Namespace) -> Validator:
    """The validator of ``--ancre``/``--intermediaire``/``--crl``/``--reseau``, or of the
    trust settings when no anchor is given on the command line."""
    anchors = getattr(args, "ancre", None)
    intermediates = [Path(p) for p in getattr(args, "intermediaire", None) or ()]
    crl_files = [Path(p) for p in getattr(args, "crl", None) or ()]
    network = bool(getattr(args, "reseau", False))
    if not anchors:
        # --reseau allows the network; without it, the settings decide.
        return validator_from_settings(
            ctx.settings,
            network=True if network else None,
            extra_intermediates=intermediates,
            extra_crls=crl_files,
        )
    # Anchors from the command line say nothing of the kind of credential.
    trust = TrustStore.from_paths({"": [Path(p) for p in anchors]}, intermediates)
    crls = CrlStore(fetch=network, timeout_s=5.0)
    for path in crl_files:
        crls.load_file(path)
    return Validator(trust, crls, use_ocsp=crls.fetch_allowed, ocsp_timeout_s=crls.timeout_s)


def _outcomes(validator: Validator, files: list[str], at: dt.datetime) -> Iterator[Outcome]:
    for name in files:
        try:
            certificates = load_certificates_der(Path(name).read_bytes())
        except OSError as exc:
            yield Outcome(name, error=PkiError("fichier_illisible", detail=exc.strerror))
            continue
        except PkiError as exc:
            yield Outcome(name, error=exc)
            continue
        authorities = _authorities(certificates)
        for found in validator.validate_many(_drained(certificates), at, authorities):
            if isinstance(found, PkiError):  # a name that cannot be read
                yield Outcome(name, error=found)
            else:
                yield Outcome(name, found)


def _drained(items: list[Any]) -> Iterator[Any]:
    """The items of ``items``, in order, each let go once given: a certificate holds what
    cryptography parsed of it, and 10⁴ of them kept make the garbage collector slower."""
    items.reverse()
    while items:
        yield items.pop()


def _authorities(certificates: list[tuple[Any, bytes]]) -> list[Any]:
    """The CA certificates of a bundle: the intermediates of the others.

    Only certificates whose DER holds a basicConstraints saying cA (``30 L 01 01 FF``
    right in its value; DER admits no other encoding of TRUE) have their extensions
    parsed to be sure: parsing those of every certificate of a large bundle up front
    would cost as much as describing them.
    """
    return [
        certificate
        for certificate, der in certificates
        if _SAYS_CA.search(der) is not None and _is_ca(certificate)
    ]


# basicConstraints (2.5.29.19), critical or not, whose value starts with cA TRUE.
_SAYS_CA = re.compile(rb"\x06\x03\x55\x1d\x13(?:\x01\x01\xff)?\x04.\x30.\x01\x01\xff", re.DOTALL)


def _is_ca(certificate: Any) -> bool:
    try:
        return is_ca(certificate)
    except MALFORMED_EXTENSION:
        return False  # not usable as an authority; its own validation says why


def cmd_valider(ctx: Context, args: argparse.Namespace) -> int:
    """Validate every certificate of every file."""
    try:
        validator = build_validator(ctx, args)
    except PkiError as exc:
        text = messages.pki_text(exc.code, exc.params)
        ctx.err.write(text[:1].upper() + text[1:] + "\n")
        return UNREADABLE
    at = args.date or ctx.now()
    worst = 0
    objects: list[dict[str, Any]] = []
    for outcome in _outcomes(validator, args.fichiers, at):
        worst = max(worst, outcome.code, key=_severity)
        if args.format == "texte":
            _write_text(ctx, outcome)
            continue
        if args.format == "jsonl":
            ctx.out.write(jsonl_line(outcome))
        else:
            objects.append(_object(outcome))
    if args.format == "json":
        document: Any = objects[0] if len(objects) == 1 else objects
        ctx.out.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    return worst


def _severity(code: int) -> int:
    return _SEVERITY[code]


# Exit codes from the least to the most serious: undetermined is less than invalid.
_SEVERITY = {0: 0, 2: 1, 1: 2, UNREADABLE: 3}


def _reasons(outcome: Outcome) -> list[dict[str, str]]:
    if outcome.error is not None:
        return [
            {
                "code": outcome.error.code,
                "message": messages.pki_text(outcome.error.code, outcome.error.params),
            }
        ]
    assert outcome.result is not None
    return [_reason(reason) for reason in outcome.result.reasons]


def _reason(reason: Reason) -> dict[str, str]:
    found = {"code": reason.code, "message": messages.pki_text(reason.code, reason.params)}
    if reason.code == "certificat_non_conforme":
        # Which rule, for whoever reads the JSON with a program.
        found["defaut"] = reason.params["defaut"]
        found["regle"] = f"RFC 5280 §{reason.params['regle']}"
    return found


def _object(outcome: Outcome) -> dict[str, Any]:
    if outcome.result is None:
        return {
            "fichier": outcome.source,
            "statut": "illisible",
            "motifs": _reasons(outcome),
            "certificat": None,
        }
    result = outcome.result
    info = result.info
    return {
        "fichier": outcome.source,
        "statut": result.status,
        "motifs": _reasons(outcome),
        "type": result.kind or None,
        "certificat": messages.certificate_object(info),
    }


_encode = json.JSONEncoder(ensure_ascii=False).encode
_string = json.encoder.encode_basestring  # type: ignore[attr-defined]  (C, keeps non-ASCII)


def jsonl_line(outcome: Outcome) -> str:
    """``json.dumps(_object(outcome), ensure_ascii=False)`` and a new line, written
    straight for a described certificate: a batch spends a tenth of its time here
    otherwise. A test holds the two to the same text."""
    result = outcome.result
    if result is None:
        return _encode(_object(outcome)) + "\n"
    info = result.info
    return (
        f'{{"fichier": {_string(outcome.source)}, "statut": {_string(result.status)}, '
        f'"motifs": {_encode(_reasons(outcome)) if result.reasons else "[]"}, '
        f'"type": {_string(result.kind) if result.kind else "null"}, '
        f'"certificat": {{"sujet": {_string(info.subject)}, "emetteur": {_string(info.issuer)}, '
        f'"numero_serie": {_string(info.serial_number)}, '
        f'"empreinte_sha256": "{info.fingerprint_sha256}", '
        f'"non_avant": "{info.not_before.isoformat()}", '
        f'"non_apres": "{info.not_after.isoformat()}", '
        f'"role": {_string(info.role) if info.role else "null"}}}}}\n'
    )


STATUS_LABELS = {VALID: "VALIDE", INVALID: "INVALIDE", UNDETERMINED: "INDÉTERMINÉ"}


def _write_text(ctx: Context, outcome: Outcome) -> None:
    out = ctx.out
    if outcome.result is None:
        out.write(f"{outcome.source} : ILLISIBLE\n")
    else:
        info = outcome.result.info
        who = info.holder_name or info.subject
        role = f" ({messages.certificate_role_text(info.role)})" if info.role else ""
        kind = f", {outcome.result.kind}" if outcome.result.kind else ""
        expiry = info.not_after.astimezone(PARIS)
        out.write(
            f"{outcome.source} : {STATUS_LABELS[outcome.result.status]} — {who}{role}, "
            f"expire le {expiry:%d/%m/%Y}{kind}\n"
        )
    for reason in _reasons(outcome):
        out.write(f"  - {reason['message']}\n")
