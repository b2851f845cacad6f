"""The desk where cards are read: the work behind ``cartes scanner`` and ``cartes statut``,
for every face (the CLI, the terminal UI) to call.

A scan reads the tokens (``cartes.readers``), validates each certificate and tells the
kind of card from the anchor its chains end at. From there: the lawyer's renewal outlook
per certificate; the match with the inventory and, on the operator's word, the
registration (the rules are ``inventaire.cards``'); the proof of possession with the
holder's PIN, passed through to the token and never kept.

Results are frozen dataclasses with stable codes: the French is the faces' to write.
SQLAlchemy is imported only by the functions that touch the inventory, so that ``statut``
stays quick without a database.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from cartes.readers import Proof, ReaderError, TokenRead, module_list, prove_possession, scan
from cartes.settings import RenewalSettings, Settings
from inventaire.clock import PARIS, paris_today
from inventaire.enums import CertificateRole, CredentialKind, CredentialState
from inventaire.renewal import RenewalOutlook, outlook
from inventaire.vocabulary import KIND_TOKENS
from pki import (
    INVALID,
    UNDETERMINED,
    VALID,
    CertificateInfo,
    Reason,
    ValidationResult,
    Validator,
    describe,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from inventaire.cards import CardCertificate, Match, ScannedCard
    from inventaire.errors import InventaireError

# The type a lawyer's self-check assumes when no configured anchor names one: it is the
# lawyers' tool, and RPVA keys are theirs.
SELF_CHECK_KIND = "cle_rpva"

_ROLES = {
    "authentification": CertificateRole.AUTHENTICATION,
    "signature": CertificateRole.SIGNATURE,
}
_SEVERITY = {VALID: 0, UNDETERMINED: 1, INVALID: 2}


# Scanning ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScannedCertificate:
    """A certificate object of a token: described and validated, or, when it could not be
    read, the reader's code for why (``error``; ``certificate``, ``info`` and ``result``
    are then None)."""

    label: str | None
    id: str | None  # CKA_ID, hexadecimal: the private key of the pair has the same
    error: str | None = None
    certificate: x509.Certificate | None = None
    info: CertificateInfo | None = None
    result: ValidationResult | None = None


@dataclass(frozen=True)
class ScannedToken:
    """A token as read, with its certificates validated."""

    token: TokenRead
    certificates: tuple[ScannedCertificate, ...]
    kind: CredentialKind | None  # the one kind all its chains end at; None if none or several

    @property
    def readable(self) -> tuple[ScannedCertificate, ...]:
        """The certificates that were read, described and validated."""
        return tuple(c for c in self.certificates if c.result is not None)

    def inventory_card(self) -> ScannedCard:
        """The card as ``inventaire.cards`` matches and registers it."""
        from inventaire.cards import ScannedCard

        return ScannedCard(
            self.token.serial, self.kind, [_card_certificate(c) for c in self.readable]
        )


@dataclass(frozen=True)
class DeskScan:
    """What a scan found: the tokens, and the modules that could not be read
    (``(module, code, detail)``, codes of ``cartes.readers``)."""

    tokens: tuple[ScannedToken, ...]
    problems: tuple[tuple[str, str, str], ...] = ()

    @property
    def failed(self) -> bool:
        """Nothing could be read because of the modules (not merely no card present)."""
        return bool(self.problems) and not self.tokens


def reader_modules(settings: Settings, given: Iterable[str] | None = None) -> list[str]:
    """The PKCS#11 modules to read with: ``given`` (the operator's), else the configured
    ones, else OpenSC's if installed; empty when there is none. SoftHSM2 is pointed at the
    configured ``readers.softhsm2_conf`` unless the environment already names one."""
    readers = settings.readers
    if readers.softhsm2_conf is not None:
        os.environ.setdefault("SOFTHSM2_CONF", str(readers.softhsm2_conf))
    return module_list(readers.modules, given)


def validate_tokens(
    tokens: Iterable[TokenRead], *, validator: Validator, at: dt.datetime
) -> list[ScannedToken]:
    """Describe and validate at ``at`` every certificate read on ``tokens``; an object that
    could not be read keeps its reader code and the others are still validated."""
    return [_validate_token(token, validator, at) for token in tokens]


def _validate_token(token: TokenRead, validator: Validator, at: dt.datetime) -> ScannedToken:
    certificates: list[ScannedCertificate] = []
    kinds: set[str] = set()
    for found in token.certificates:
        if found.certificate is None:
            certificates.append(ScannedCertificate(found.label, found.id, found.error))
            continue
        result = validator.validate(found.certificate, at)
        if result.kind:
            kinds.add(result.kind)
        info = describe(found.certificate)
        certificates.append(
            ScannedCertificate(found.label, found.id, None, found.certificate, info, result)
        )
    kind = KIND_TOKENS.get(kinds.pop()) if len(kinds) == 1 else None
    return ScannedToken(token, tuple(certificates), kind)


def scan_cards(
    settings: Settings,
    *,
    modules: Iterable[str] | None = None,
    slot: int | None = None,
    validator: Validator,
    at: dt.datetime,
    cache: ValidationCache | None = None,
) -> DeskScan:
    """Read the tokens of ``modules`` (by default the configured ones), or only of ``slot``,
    and validate their certificates at ``at`` (through ``cache`` when given: an unchanged
    token is not validated again). A module, token or certificate object that fails is
    reported for itself and the rest of the scan goes on.

    Raises ``ReaderError("aucun_module")`` when there is no module to read with.
    """
    chosen = reader_modules(settings, modules)
    if not chosen:
        raise ReaderError("aucun_module")
    report = scan(chosen, slot=slot)
    if cache is not None:
        tokens = cache.validate(report.tokens, validator=validator, at=at)
    else:
        tokens = validate_tokens(report.tokens, validator=validator, at=at)
    return DeskScan(tuple(tokens), tuple(report.problems))


def token_key(token: TokenRead) -> tuple[object, ...]:
    """What identifies a token and its content between two reads: where it sits, its
    serial number and, per certificate object, its label, CKA_ID, error and SHA-256
    fingerprint. The same key means the same certificates to validate."""
    objects = tuple(
        (
            found.label,
            found.id,
            found.error,
            found.certificate.fingerprint(hashes.SHA256()) if found.certificate else None,
        )
        for found in token.certificates
    )
    return (token.module, token.slot, token.serial, token.label, token.error, objects)


class ValidationCache:
    """Validated tokens kept between two reads of a reader polled again and again (the
    terminal UI reads every second): a token whose key (``token_key``) is unchanged keeps
    its validation of the same Paris day, with the token's latest reading (its PIN state
    may have changed). Tokens no longer present are forgotten, so a card put back is
    validated afresh. Not thread-safe: one poller uses it at a time."""

    def __init__(self) -> None:
        self._entries: dict[tuple[object, ...], tuple[dt.date, ScannedToken]] = {}
        self.validated = 0  # tokens validated (not taken from the cache) so far

    def validate(
        self, tokens: Iterable[TokenRead], *, validator: Validator, at: dt.datetime
    ) -> list[ScannedToken]:
        """``validate_tokens``, reusing what was validated for an unchanged token."""
        day = paris_today(at)
        kept: dict[tuple[object, ...], tuple[dt.date, ScannedToken]] = {}
        result: list[ScannedToken] = []
        for token in tokens:
            key = token_key(token)
            cached = self._entries.get(key)
            if cached is not None and cached[0] == day:
                scanned = replace(cached[1], token=token)
            else:
                scanned = _validate_token(token, validator, at)
                self.validated += 1
            kept[key] = (day, scanned)
            result.append(scanned)
        self._entries = kept
        return result

    def clear(self) -> None:
        """Forget everything: the next read validates every token again."""
        self._entries = {}


def _card_certificate(scanned: ScannedCertificate) -> CardCertificate:
    from inventaire.cards import CardCertificate

    certificate, info, result = scanned.certificate, scanned.info, scanned.result
    assert certificate is not None and info is not None and result is not None
    return CardCertificate(
        der=certificate.public_bytes(Encoding.DER),
        fingerprint_sha256=info.fingerprint_sha256,
        subject=info.subject,
        issuer=info.issuer,
        serial_number=info.serial_number,
        not_before=info.not_before,
        not_after=info.not_after,
        role=_ROLES.get(info.role or ""),
        status=result.status,
        email=info.email,
        holder_name=info.holder_name,
    )


# The lawyer's self-check ------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateStatus:
    """What a holder must know of one certificate of the key plugged in."""

    token_label: str
    info: CertificateInfo
    kind: str  # the credential type's token; SELF_CHECK_KIND when no anchor names one
    status: str  # VALID, INVALID or UNDETERMINED
    reasons: tuple[Reason, ...]  # "confiance_absente" alone when no anchor is configured
    revocation: str  # "revoque", "non_revoque" or "inconnue"
    outlook: RenewalOutlook
    lead_days: int  # the renewal lead time of that kind
    margin_days: int  # the safety margin added to it


def lawyer_status(
    tokens: Iterable[ScannedToken],
    *,
    renewal: RenewalSettings,
    validator: Validator,
    at: dt.datetime,
) -> list[CertificateStatus]:
    """For each certificate read on ``tokens`` (validated by ``validator``): see
    ``certificate_status``."""
    statuses: list[CertificateStatus] = []
    for token in tokens:
        for scanned in token.readable:
            assert scanned.info is not None and scanned.result is not None
            statuses.append(
                certificate_status(
                    scanned.info,
                    scanned.result,
                    token_label=token.token.label,
                    renewal=renewal,
                    trust_empty=validator.trust.empty,
                    at=at,
                )
            )
    return statuses


def certificate_status(
    info: CertificateInfo,
    result: ValidationResult,
    *,
    token_label: str,
    renewal: RenewalSettings,
    trust_empty: bool,
    at: dt.datetime,
) -> CertificateStatus:
    """A holder's certificate (``info``, validated as ``result``): its status, what is
    known of its revocation, and by when its renewal must be ordered from the day of
    ``at`` in Paris, with the gap an order placed that day would leave. ``trust_empty``:
    no anchor is configured, so nothing could be found valid."""
    reasons: tuple[Reason, ...]
    if trust_empty:
        # Nothing can be valid without anchors: say so rather than "invalid".
        status, reasons = UNDETERMINED, (Reason("confiance_absente"),)
    else:
        status, reasons = result.status, result.reasons
    kind = result.kind or SELF_CHECK_KIND
    lead = renewal.lead_days()[KIND_TOKENS.get(kind, CredentialKind.RPVA_KEY)]
    plan = outlook(
        info.not_after.astimezone(PARIS).date(),
        today=paris_today(at),
        lead_days=lead,
        margin_days=renewal.safety_margin_days,
    )
    return CertificateStatus(
        token_label=token_label,
        info=info,
        kind=kind,
        status=status,
        reasons=reasons,
        revocation=revocation(status, reasons),
        outlook=plan,
        lead_days=lead,
        margin_days=renewal.safety_margin_days,
    )


def revocation(status: str, reasons: Iterable[Reason]) -> str:
    """What is known of revocation: "revoque", "non_revoque" or "inconnue" (a certificate
    not valid for another reason may not have been checked against its lists)."""
    if any(reason.code == "revoque" for reason in reasons):
        return "revoque"
    if status == VALID:
        return "non_revoque"
    return "inconnue"


def worst_status(statuses: Iterable[str]) -> str:
    """The worst of validation statuses: INVALID, then UNDETERMINED, then VALID (also for
    none)."""
    return max(statuses, key=_SEVERITY.__getitem__, default=VALID)


# The inventory ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    """What registering a scanned card did."""

    credential_id: int
    created: bool
    state: CredentialState
    handover: str | None  # "remise" (handed over now), "deja_remise" (a past one recorded)
    handed_over_on: dt.date | None


@dataclass(frozen=True)
class InventoryOutcome:
    """The inventory's match for a scanned card and, when it was asked for, the
    registration or why it was refused (nothing was written then)."""

    match: Match
    registration: Registration | None = None
    refused: InventaireError | None = None


def match_and_register(
    engine: Engine,
    token: ScannedToken,
    *,
    operator_login: str,
    register: bool = False,
    state: CredentialState | None = None,
    already_handed_over: bool = False,
    handed_over_on: dt.date | None = None,
    now: dt.datetime,
) -> InventoryOutcome:
    """Match ``token`` with the inventory (fingerprint, then serial number, then holder);
    with ``register``, record it as ``operator_login`` through ``inventaire.cards.register``
    (the operator's roles and the lifecycle decide; ``state`` None lets them choose). A
    token that failed or has no readable certificate is matched, never registered."""
    from inventaire import cards, db, operators
    from inventaire.enums import OperatorRole
    from inventaire.errors import InventaireError

    card = token.inventory_card()
    with db.read_session(engine) as session:
        found = cards.match(session, card)
    if not (register and token.token.error is None and card.certificates):
        return InventoryOutcome(found)
    try:
        with db.write_session(engine) as session:
            operator = operators.require(session, operator_login, OperatorRole.READER)
            credential, created = cards.register(
                session,
                card,
                operator=operator,
                now=now,
                state=state,
                already_handed_over=already_handed_over,
                handed_over_on=handed_over_on,
            )
            assert credential.id is not None
            handed_over = created and credential.state is CredentialState.ACTIVE
            registration = Registration(
                credential_id=credential.id,
                created=created,
                state=credential.state,
                handover=(
                    ("deja_remise" if already_handed_over else "remise") if handed_over else None
                ),
                handed_over_on=credential.handed_over_on,
            )
    except InventaireError as exc:
        return InventoryOutcome(found, refused=exc)
    return InventoryOutcome(found, registration)


# Proof of possession ----------------------------------------------------------------------


def prove(
    token: ScannedToken, certificate: ScannedCertificate, pin: str, *, pss: bool = False
) -> Proof | None:
    """Whether ``token`` holds the private key of ``certificate`` (a challenge signed after
    logging in with ``pin``, checked with the certificate's key); None when it cannot be
    asked: an unreadable object, or one without the CKA_ID that finds its key. ``pin`` goes
    to the token's login only: it is not kept, logged, or put in the result."""
    if certificate.certificate is None or not certificate.id:
        return None
    return prove_possession(
        token.token.module, token.token.slot, certificate.id, certificate.certificate, pin, pss=pss
    )
