"""Card readers through PKCS#11 (python-pkcs11): tokens, their certificates, and proof of
possession of a private key.

Every failure is reported for its own item (module, token, certificate object) and the rest
of the scan goes on. Certificate objects are public: they are read without logging in. The
PIN, when a proof of possession is asked for, lives only in the call that uses it: it is
never logged, stored, or put in an exception or a message.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from pki import PkiError, load_certificates

# Where Debian and other systems put OpenSC's module, the default when none is configured.
OPENSC_MODULES = (
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
    "/usr/lib64/opensc-pkcs11.so",
    "/usr/local/lib/opensc-pkcs11.so",
)

_LOCK = threading.Lock()  # python-pkcs11 keeps one library object per module per process


def default_modules() -> list[str]:
    """OpenSC's module if it is installed."""
    return [path for path in OPENSC_MODULES if Path(path).exists()][:1]


class ReaderError(Exception):
    """A failure of the reader layer: a stable code and what explains it (never a PIN)."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class CertificateObject:
    """A certificate object found on a token."""

    label: str | None
    id: str | None  # CKA_ID, hexadecimal
    certificate: x509.Certificate | None
    error: str | None = None  # code: "objet_vide", "certificat_illisible", "lecture_impossible"


@dataclass(frozen=True)
class TokenRead:
    """A token as read in a slot."""

    module: str
    slot: int
    label: str
    serial: str
    manufacturer: str
    model: str
    pin_state: str | None  # None, "essais_faibles", "dernier_essai", "bloque"
    certificates: tuple[CertificateObject, ...] = ()
    error: str | None = None  # the whole token failed: "jeton_retire", "jeton_non_reconnu"…


@dataclass
class ScanReport:
    tokens: list[TokenRead] = field(default_factory=list)
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (module, code, detail)


def _library(module: str):  # type: ignore[no-untyped-def]
    """The module, initialised afresh: modules (SoftHSM among them) list the tokens
    present at initialisation only, and a card may have been inserted since."""
    import pkcs11

    if not Path(module).exists():
        raise ReaderError("module_absent", module=module)
    try:
        library = pkcs11.lib(module)
        library.reinitialize()
        return library
    except (OSError, RuntimeError, pkcs11.exceptions.PKCS11Error) as exc:
        raise ReaderError("module_illisible", module=module, detail=type(exc).__name__) from None


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value).strip().strip("\x00").strip()


def _pin_state(flags: object) -> str | None:
    from pkcs11 import TokenFlag

    if not isinstance(flags, TokenFlag):
        return None
    if flags & TokenFlag.USER_PIN_LOCKED:
        return "bloque"
    if flags & TokenFlag.USER_PIN_FINAL_TRY:
        return "dernier_essai"
    if flags & TokenFlag.USER_PIN_COUNT_LOW:
        return "essais_faibles"
    return None


def _token_error(exc: Exception) -> str:
    import pkcs11.exceptions as errors

    removed = (
        errors.TokenNotPresent,
        errors.DeviceRemoved,
        errors.SlotIDInvalid,
        errors.SessionHandleInvalid,
        errors.SessionClosed,
        errors.ObjectHandleInvalid,  # SoftHSM, for objects of a token deleted meanwhile
    )
    if isinstance(exc, removed):
        return "jeton_retire"
    if isinstance(exc, errors.TokenNotRecognised):
        return "jeton_non_reconnu"
    return "jeton_illisible"


def _read_objects(token) -> tuple[CertificateObject, ...]:  # type: ignore[no-untyped-def]
    from pkcs11 import Attribute, ObjectClass
    from pkcs11.exceptions import PKCS11Error

    found: list[CertificateObject] = []
    with token.open() as session:
        # Consumed at once: a search left open blocks the session's next operation.
        objects = list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}))
        for obj in objects:
            label = identifier = None
            try:
                label = _text(obj[Attribute.LABEL])
                identifier = bytes(obj[Attribute.ID]).hex()
                value = bytes(obj[Attribute.VALUE])
            except (PKCS11Error, KeyError, TypeError) as exc:
                if _token_error(exc) == "jeton_retire":
                    raise
                found.append(CertificateObject(label, identifier, None, "lecture_impossible"))
                continue
            if not value.strip(b"\x00"):
                found.append(CertificateObject(label, identifier, None, "objet_vide"))
                continue
            try:
                certificate = load_certificates(value)[0]
            except PkiError:
                found.append(CertificateObject(label, identifier, None, "certificat_illisible"))
                continue
            found.append(CertificateObject(label, identifier, certificate))
    # Modules list objects in no particular order: by CKA_ID, the pairs read the same.
    return tuple(sorted(found, key=lambda o: (o.id or "", o.label or "")))


def scan(modules: Iterable[str], *, slot: int | None = None) -> ScanReport:
    """Every token present in the slots of ``modules`` (or only slot ``slot``), with its
    certificate objects, read without logging in."""
    from pkcs11.exceptions import PKCS11Error

    report = ScanReport()
    for module in modules:
        with _LOCK:
            try:
                library = _library(module)
                slots = library.get_slots(token_present=True)
            except ReaderError as exc:
                report.problems.append((module, exc.code, str(exc.params.get("detail", ""))))
                continue
            except PKCS11Error as exc:
                report.problems.append((module, "module_illisible", type(exc).__name__))
                continue
            for current in slots:
                if slot is not None and current.slot_id != slot:
                    continue
                token = _read_token(module, current)
                if token is not None:
                    report.tokens.append(token)
    return report


def _read_token(module: str, slot) -> TokenRead | None:  # type: ignore[no-untyped-def]
    """The token in ``slot`` and its certificates; None for a slot whose token is not
    initialised (an empty card, or SoftHSM's spare slot)."""
    from pkcs11 import TokenFlag
    from pkcs11.exceptions import PKCS11Error

    try:
        token = slot.get_token()
        if not token.flags & TokenFlag.TOKEN_INITIALIZED:
            return None
        label, serial = _text(token.label), _text(token.serial)
        manufacturer, model = _text(token.manufacturer_id), _text(token.model)
        pin_state = _pin_state(token.flags)
    except PKCS11Error as exc:
        error = "jeton_retire" if not _present(slot) else _token_error(exc)
        return TokenRead(module, slot.slot_id, "", "", "", "", None, (), error)
    error = None
    objects: tuple[CertificateObject, ...] = ()
    try:
        objects = _read_objects(token)
    except PKCS11Error as exc:
        error = _token_error(exc)
    # A token pulled out during the read may have answered "no objects" rather than an
    # error: ask the slot again.
    if not _present(slot):
        error = "jeton_retire"
    return TokenRead(
        module, slot.slot_id, label, serial, manufacturer, model, pin_state, objects, error
    )


def _present(slot) -> bool:  # type: ignore[no-untyped-def]
    from pkcs11.exceptions import PKCS11Error

    try:
        slot.get_token()
    except PKCS11Error:
        return False
    return True


@dataclass(frozen=True)
class Proof:
    """The outcome of a proof of possession."""

    proven: bool
    mechanism: str
    error: str | None = None  # "pin_incorrect", "pin_bloque", "cle_absente", "signature_fausse"…
    pin_state: str | None = None  # what the token says of the remaining tries


def prove_possession(
    module: str,
    slot: int,
    key_id: str,
    certificate: x509.Certificate,
    pin: str,
    *,
    pss: bool = False,
) -> Proof:
    """Sign a random challenge with the private key whose CKA_ID is ``key_id`` and check
    the signature with ``certificate``'s public key. ``pin`` is used for the login only."""
    from pkcs11 import MGF, Attribute, Mechanism, ObjectClass
    from pkcs11.exceptions import PinIncorrect, PinLenRange, PinLocked, PKCS11Error

    public_key = certificate.public_key()
    challenge = secrets.token_bytes(32)
    if isinstance(public_key, rsa.RSAPublicKey):
        mechanism = Mechanism.SHA256_RSA_PKCS_PSS if pss else Mechanism.SHA256_RSA_PKCS
        to_sign = challenge
    elif isinstance(public_key, ec.EllipticCurvePublicKey):
        # Raw ECDSA over a hash made here: every module has CKM_ECDSA, not all have
        # CKM_ECDSA_SHA256 (SoftHSM has not).
        mechanism = Mechanism.ECDSA
        digest = hashes.Hash(hashes.SHA256())
        digest.update(challenge)
        to_sign = digest.finalize()
    else:
        return Proof(False, "?", "algorithme_non_pris_en_charge")
    name = mechanism.name
    with _LOCK:
        try:
            library = _library(module)
            found = [s for s in library.get_slots(token_present=True) if s.slot_id == slot]
            if not found:
                return Proof(False, name, "jeton_retire")
            token = found[0].get_token()
            state = _pin_state(token.flags)
        except ReaderError as exc:
            return Proof(False, name, exc.code)
        except PKCS11Error as exc:
            return Proof(False, name, _token_error(exc))
        if state == "bloque":
            # Not even tried: a blocked card is for the IT service to unblock.
            return Proof(False, name, "pin_bloque", state)
        try:
            with token.open(user_pin=pin) as session:
                wanted = {
                    Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                    Attribute.ID: bytes.fromhex(key_id),
                }
                keys = list(session.get_objects(wanted))
                if not keys:
                    return Proof(False, name, "cle_absente")
                parameters = (Mechanism.SHA256, MGF.SHA256, 32) if pss else None
                signature = keys[0].sign(to_sign, mechanism=mechanism, mechanism_param=parameters)
        except (PinIncorrect, PinLenRange):
            return Proof(False, name, "pin_incorrect", _pin_state(_flags(found[0])))
        except PinLocked:
            return Proof(False, name, "pin_bloque", "bloque")
        except PKCS11Error as exc:
            return Proof(False, name, _token_error(exc))
        finally:
            del pin  # the only reference this module held
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            scheme = (
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
                if pss
                else padding.PKCS1v15()
            )
            public_key.verify(signature, challenge, scheme, hashes.SHA256())
        else:
            from pkcs11.util.ec import encode_ecdsa_signature

            public_key.verify(
                encode_ecdsa_signature(signature), challenge, ec.ECDSA(hashes.SHA256())
            )
    except Exception:  # InvalidSignature: the key on the card is not the certificate's
        return Proof(False, name, "signature_fausse")
    return Proof(True, name)


def _flags(slot) -> object:  # type: ignore[no-untyped-def]
    """The token's flags read afresh (a token object keeps those of its creation)."""
    try:
        return slot.get_token().flags
    except Exception:  # the token may be gone; the remaining tries are then unknown
        return None


def module_list(configured: Iterable[str], given: Iterable[str] | None) -> list[str]:
    """The modules to use: those given on the command line, else the configured ones, else
    OpenSC's if installed."""
    modules = [m for m in (given or ()) if m] or [m for m in configured if m]
    return modules or default_modules()
