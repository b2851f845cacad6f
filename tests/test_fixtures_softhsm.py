"""Tests of the SoftHSM2 token fixtures (fixtures.softhsm) against the real SoftHSM2 module,
and of the SoftHSM / python-pkcs11 behaviours the card reader depends on: what is read
without a login, which mechanisms sign, what a wrong PIN, a "locked" PIN and a token removed
between enumeration and reading look like.

Each test has its own SoftHSM folder under ``tmp_path``. python-pkcs11 keeps one library
per process, but ``reinitialize()`` makes SoftHSM read ``SOFTHSM2_CONF`` again, so the
checks run in this process (the fixtures reinitialise the library on their folder)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from fixtures.pki import TestPki, build_test_pki
from fixtures.softhsm import (
    SO_PIN,
    USER_PIN,
    SoftHsm,
    TokenSpec,
    demo_tokens,
    softhsm,
    softhsm_available,
    standard_tokens,
)
from tests.pki_support import KEY_CACHE, PKI_NOW

pytestmark = pytest.mark.skipif(
    not softhsm_available(),
    reason="SoftHSM2 n'est pas installé (paquet Debian softhsm2 : libsofthsm2.so et softhsm2-util)",
)

pkcs11 = pytest.importorskip("pkcs11", reason="python-pkcs11 n'est pas installé")
from pkcs11 import (  # noqa: E402
    MGF,
    Attribute,
    KeyType,
    Mechanism,
    ObjectClass,
    TokenFlag,
)
from pkcs11 import exceptions as p11errors  # noqa: E402
from pkcs11._pkcs11 import lib as Library  # noqa: E402
from pkcs11.types import Session, SignMixin, Token  # noqa: E402
from pkcs11.util.ec import encode_ecdsa_signature, encode_named_curve_parameters  # noqa: E402

DER = serialization.Encoding.DER
PIN_FLAGS = TokenFlag.USER_PIN_COUNT_LOW | TokenFlag.USER_PIN_FINAL_TRY | TokenFlag.USER_PIN_LOCKED


@pytest.fixture(scope="module")
def softhsm_pki() -> TestPki:
    return build_test_pki(now=PKI_NOW, key_cache=KEY_CACHE)


@pytest.fixture
def hsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHsm]:
    folder = softhsm(tmp_path / "softhsm")
    monkeypatch.setenv("SOFTHSM2_CONF", str(folder.conf))
    yield folder
    folder.close()


@pytest.fixture
def standard(hsm: SoftHsm, softhsm_pki: TestPki) -> dict[str, TokenSpec]:
    """The standard tokens, added to ``hsm``, by label."""
    specs = standard_tokens(softhsm_pki)
    for spec in specs:
        hsm.add_token(spec)
    return {spec.label: spec for spec in specs}


def _tokens(lib: Library) -> dict[str, Token]:
    """The initialised tokens of ``lib``, by label."""
    found: dict[str, Token] = {}
    for slot in lib.get_slots(token_present=True):
        token = slot.get_token()
        if token.flags & TokenFlag.TOKEN_INITIALIZED:
            found[token.label] = token
    return found


def _lib() -> Library:
    from fixtures.softhsm import SOFTHSM_MODULE

    return pkcs11.lib(SOFTHSM_MODULE)


def _flags(label: str) -> TokenFlag:
    """The token's flags as the library reports them now (Token objects keep a snapshot)."""
    return _lib().get_token(token_label=label).flags


# --------------------------------------------------------------------------------------------
# Building tokens


def test_standard_tokens_are_listed_with_their_labels_and_serials(
    hsm: SoftHsm, softhsm_pki: TestPki
) -> None:
    specs = standard_tokens(softhsm_pki)
    started = time.perf_counter()
    serials = {spec.label: hsm.add_token(spec) for spec in specs}
    elapsed = time.perf_counter() - started
    assert elapsed < 5, f"{len(specs)} tokens took {elapsed:.2f}s"

    agent = softhsm_pki.holders_of("agent")[0]
    avocat = softhsm_pki.holders_of("avocat")[0]
    expert = next(
        holder
        for holder in softhsm_pki.holders_of("expert")
        if isinstance(holder.authentication.key, ec.EllipticCurvePrivateKey)
    )
    assert list(serials) == [
        f"Carte agent {agent.name}",
        f"Cle RPVA {avocat.name}",
        f"Carte expert {expert.name}",
        "Objet vide",
        "Carte revoquee",
    ]
    assert hsm.serials == serials

    lib = _lib()
    tokens = _tokens(lib)
    assert set(tokens) == set(serials)
    for label, token in tokens.items():
        assert isinstance(token.serial, bytes)  # python-pkcs11 0.10: bytes, not str
        assert token.serial.decode("ascii") == serials[label]
        assert token.manufacturer_id == "SoftHSM project"
        assert token.model == "SoftHSM v2"
        assert token.flags & TokenFlag.LOGIN_REQUIRED
        assert token.flags & TokenFlag.USER_PIN_INITIALIZED
        assert not token.flags & PIN_FLAGS

    # SoftHSM always offers one more slot, whose token is present but not initialised.
    spare = [
        slot.get_token()
        for slot in lib.get_slots(token_present=True)
        if not slot.get_token().flags & TokenFlag.TOKEN_INITIALIZED
    ]
    assert [(token.label, token.serial) for token in spare] == [("", b"")]

    with pytest.raises(p11errors.NoSuchToken):
        lib.get_token(token_label="Carte absente")


def test_certificates_read_back_without_login(hsm: SoftHsm, standard: dict[str, TokenSpec]) -> None:
    tokens = _tokens(_lib())
    for label, spec in standard.items():
        with tokens[label].open() as session:  # no PIN: public objects only
            objects = list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}))
            read = {
                bytes(obj[Attribute.ID]): (obj[Attribute.LABEL], bytes(obj[Attribute.VALUE]))
                for obj in objects
            }
            assert not list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
            public_keys = list(session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY}))
        expected = {
            cka_id: (object_label, b"" if cert is None else cert.public_bytes(DER))
            for object_label, cka_id, cert, _key in spec.certificates
        }
        assert read == expected, label
        assert len(public_keys) == sum(key is not None for *_, key in spec.certificates)
        for _object_label, _cka_id, cert, _key in spec.certificates:
            if cert is not None:
                assert x509.load_der_x509_certificate(expected[_cka_id][1]) == cert

    # The empty certificate object: CKA_VALUE of zero bytes, next to a valid certificate.
    with tokens["Objet vide"].open() as session:
        (empty,) = session.get_objects(
            {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: b"\x01"}
        )
        assert empty[Attribute.VALUE] == b""
        assert empty[Attribute.LABEL] == "Objet vide"


def test_certificate_attributes_and_public_keys_match(
    hsm: SoftHsm, standard: dict[str, TokenSpec]
) -> None:
    tokens = _tokens(_lib())
    for label, spec in standard.items():
        with tokens[label].open() as session:
            for _object_label, cka_id, cert, key in spec.certificates:
                if cert is None or key is None:
                    continue
                (obj,) = session.get_objects(
                    {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.ID: cka_id}
                )
                assert obj[Attribute.SUBJECT] == cert.subject.public_bytes()
                assert obj[Attribute.ISSUER] == cert.issuer.public_bytes()
                serial = obj[Attribute.SERIAL_NUMBER]
                assert serial[0] == 0x02 and int.from_bytes(serial[2:]) == cert.serial_number
                public = session.get_key(object_class=ObjectClass.PUBLIC_KEY, id=cka_id)
                expected = cert.public_key()
                if isinstance(expected, rsa.RSAPublicKey):
                    assert public.key_type == KeyType.RSA
                    numbers = expected.public_numbers()
                    assert int.from_bytes(public[Attribute.MODULUS]) == numbers.n
                    assert int.from_bytes(public[Attribute.PUBLIC_EXPONENT]) == numbers.e
                else:
                    assert isinstance(expected, ec.EllipticCurvePublicKey)
                    assert public.key_type == KeyType.EC
                    point = expected.public_bytes(
                        serialization.Encoding.X962,
                        serialization.PublicFormat.UncompressedPoint,
                    )
                    assert public[Attribute.EC_POINT] == b"\x04" + bytes([len(point)]) + point
                    assert public[Attribute.EC_PARAMS] == encode_named_curve_parameters(
                        "1.2.840.10045.3.1.7"
                    )


# --------------------------------------------------------------------------------------------
# Signing


def _sign_and_verify(session: Session, cert: x509.Certificate, cka_id: bytes) -> list[str]:
    """Sign with the private key of CKA_ID ``cka_id`` by every mechanism that applies and
    check each signature with the certificate's public key; the mechanisms used."""
    key = cast(SignMixin, session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=cka_id))
    public = cert.public_key()
    challenge = b"preuve de possession " + cka_id
    if isinstance(public, rsa.RSAPublicKey):
        signature = key.sign(challenge, mechanism=Mechanism.SHA256_RSA_PKCS)
        public.verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())
        signature = key.sign(
            challenge,
            mechanism=Mechanism.SHA256_RSA_PKCS_PSS,
            mechanism_param=(Mechanism.SHA256, MGF.SHA256, 32),
        )
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        public.verify(signature, challenge, pss, hashes.SHA256())
        return ["SHA256_RSA_PKCS", "SHA256_RSA_PKCS_PSS"]
    assert isinstance(public, ec.EllipticCurvePublicKey)
    # SoftHSM 2.6 has no CKM_ECDSA_SHA256: hash here, sign the digest with CKM_ECDSA.
    with pytest.raises(p11errors.MechanismInvalid):
        key.sign(challenge, mechanism=Mechanism.ECDSA_SHA256)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(challenge)
    raw = key.sign(digest.finalize(), mechanism=Mechanism.ECDSA)
    assert len(raw) == 64  # r || s, 32 bytes each for P-256
    public.verify(encode_ecdsa_signature(raw), challenge, ec.ECDSA(hashes.SHA256()))
    return ["ECDSA"]


def test_each_key_signs_and_the_certificate_verifies(
    hsm: SoftHsm, standard: dict[str, TokenSpec]
) -> None:
    tokens = _tokens(_lib())
    used: set[str] = set()
    for label, spec in standard.items():
        mechanisms = tokens[label].slot.get_mechanisms()
        assert Mechanism.ECDSA in mechanisms and Mechanism.ECDSA_SHA256 not in mechanisms
        with tokens[label].open(user_pin=spec.pin) as session:
            assert list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))
            for _object_label, cka_id, cert, key in spec.certificates:
                if cert is not None and key is not None:
                    used.update(_sign_and_verify(session, cert, cka_id))
    assert used == {"SHA256_RSA_PKCS", "SHA256_RSA_PKCS_PSS", "ECDSA"}


# --------------------------------------------------------------------------------------------
# PIN


def test_wrong_pin_raises_pin_incorrect_and_never_locks(hsm: SoftHsm, softhsm_pki: TestPki) -> None:
    spec = standard_tokens(softhsm_pki)[0]
    hsm.add_token(spec)
    token = _lib().get_token(token_label=spec.label)

    with pytest.raises(p11errors.PinIncorrect):
        token.open(user_pin="0000")
    # After one failure SoftHSM sets COUNT_LOW, and only that.
    assert _flags(spec.label) & PIN_FLAGS == TokenFlag.USER_PIN_COUNT_LOW
    assert not token.flags & TokenFlag.USER_PIN_COUNT_LOW  # Token objects are snapshots

    # However many failures: still PinIncorrect, still only COUNT_LOW.
    flags = hsm.wrong_pin(spec.label, attempts=12)
    assert flags & PIN_FLAGS == TokenFlag.USER_PIN_COUNT_LOW

    token = _lib().get_token(token_label=spec.label)
    with token.open(user_pin=spec.pin):
        pass
    assert not _flags(spec.label) & PIN_FLAGS  # a good login clears COUNT_LOW


def test_failed_login_leaves_a_session_open(hsm: SoftHsm, softhsm_pki: TestPki) -> None:
    """python-pkcs11 0.10 opens a session, then logs in; when the login fails it raises
    without closing the session (here seen by SoftHSM refusing an SO login while a
    read-only session exists). Reinitialising the library closes it."""
    spec = standard_tokens(softhsm_pki)[0]
    hsm.add_token(spec)
    token = _lib().get_token(token_label=spec.label)
    with pytest.raises(p11errors.PinIncorrect):
        token.open(user_pin="0000")
    with pytest.raises(p11errors.SessionReadOnlyExists):
        token.open(rw=True, so_pin=SO_PIN)
    token = hsm.library().get_token(token_label=spec.label)
    token.open(rw=True, so_pin=SO_PIN).close()


def test_lock_pin_makes_the_token_report_a_locked_pin(hsm: SoftHsm, softhsm_pki: TestPki) -> None:
    specs = standard_tokens(softhsm_pki)[:2]
    for spec in specs:
        hsm.add_token(spec)
    locked, other = specs
    lib = _lib()

    hsm.lock_pin(locked.label)
    # Seen at once by the running library (SoftHSM rereads the token file), not by others.
    assert lib.get_token(token_label=locked.label).flags & TokenFlag.USER_PIN_LOCKED
    assert not _flags(other.label) & PIN_FLAGS
    assert hsm.library().get_token(token_label=locked.label).flags & TokenFlag.USER_PIN_LOCKED

    # SoftHSM never answers CKR_PIN_LOCKED: a wrong PIN is still PinIncorrect and the right
    # PIN still logs in. The flag stays.
    token = _lib().get_token(token_label=locked.label)
    with pytest.raises(p11errors.PinIncorrect):
        token.open(user_pin="0000")
    with token.open(user_pin=locked.pin) as session:
        assert session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=b"\x01")
    assert _flags(locked.label) & TokenFlag.USER_PIN_LOCKED


# --------------------------------------------------------------------------------------------
# Token removed


def test_token_removed_between_enumeration_and_reading(
    hsm: SoftHsm, standard: dict[str, TokenSpec]
) -> None:
    removed = next(label for label in standard if label.startswith("Carte agent"))
    lib = _lib()
    slots = lib.get_slots(token_present=True)
    tokens = _tokens(lib)
    token = tokens[removed]
    session = token.open()
    objects = list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}))
    assert len(objects) == 2

    hsm.delete_token(removed)  # softhsm2-util, another process

    # The slot is still listed, with a token "present", but its token info fails.
    assert [slot.slot_id for slot in lib.get_slots(token_present=True)] == [
        slot.slot_id for slot in slots
    ]
    with pytest.raises(p11errors.GeneralError):
        token.slot.get_token()
    # ... which breaks lookups by label across all slots, not only the removed one's.
    with pytest.raises(p11errors.GeneralError):
        lib.get_token(token_label="Carte revoquee")
    # Objects found before: reading an attribute raises ObjectHandleInvalid.
    with pytest.raises(p11errors.ObjectHandleInvalid):
        objects[0][Attribute.VALUE]
    # The open session finds nothing any more, silently.
    assert not list(session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}))
    session.close()
    # A new session still opens; it finds nothing; a login fails with GeneralError.
    with token.open() as late:
        assert not list(late.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}))
    with pytest.raises(p11errors.GeneralError):
        token.open(user_pin=USER_PIN)
    # The other tokens are still read through their own slots.
    for label in set(tokens) - {removed}:
        with tokens[label].open() as other:
            assert list(other.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE}))

    # After reinitialising, the token is gone and its old slot is invalid.
    lib.reinitialize()
    assert set(_tokens(lib)) == set(standard) - {removed}
    with pytest.raises(p11errors.SlotIDInvalid):
        token.open()


def test_signing_key_removed_after_login(hsm: SoftHsm, standard: dict[str, TokenSpec]) -> None:
    label = next(label for label in standard if label.startswith("Cle RPVA"))
    token = _lib().get_token(token_label=label)
    with token.open(user_pin=USER_PIN) as session:
        key = cast(SignMixin, session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=b"\x01"))
        hsm.delete_token(label)
        with pytest.raises(p11errors.ObjectHandleInvalid):
            key.sign(b"challenge", mechanism=Mechanism.SHA256_RSA_PKCS)


# --------------------------------------------------------------------------------------------
# Configuration


def test_each_folder_is_its_own_softhsm(tmp_path: Path, hsm: SoftHsm, softhsm_pki: TestPki) -> None:
    first, second = demo_tokens(softhsm_pki)[:2]
    hsm.add_token(first)
    other = softhsm(tmp_path / "autre")
    try:
        other.add_token(second)
        # The library now follows the folder last used, whatever SOFTHSM2_CONF says.
        assert set(_tokens(_lib())) == {second.label}
        assert set(_tokens(hsm.library())) == {first.label}
        # Same label in two folders: no clash.
        assert other.add_token(TokenSpec(first.label)) != hsm.serials[first.label]
    finally:
        other.close()


def test_environment_is_enough_for_another_process(hsm: SoftHsm, softhsm_pki: TestPki) -> None:
    specs = demo_tokens(softhsm_pki)
    for spec in specs:
        hsm.add_token(spec)
    script = (
        "import pkcs11, sys\n"
        "lib = pkcs11.lib(sys.argv[1])\n"
        "for slot in lib.get_slots(token_present=True):\n"
        "    token = slot.get_token()\n"
        "    if token.label:\n"
        "        print(token.label, token.serial.decode())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, hsm.module],
        env={"PATH": "/usr/bin:/bin", **hsm.environment()},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert sorted(result.stdout.splitlines()) == sorted(
        f"{label} {serial}" for label, serial in hsm.serials.items()
    )
    assert len(specs) == 3
    assert [spec.label.split(" ")[0:2] for spec in specs] == [
        ["Carte", "agent"],
        ["Cle", "RPVA"],
        ["Carte", "expert"],
    ]


def test_token_labels_are_checked() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        TokenSpec("Carte agent " + "é" * 11)  # 34 bytes of UTF-8
    with pytest.raises(ValueError):
        TokenSpec("")
    assert TokenSpec("Carte agent " + "é" * 10).label  # exactly 32 bytes
