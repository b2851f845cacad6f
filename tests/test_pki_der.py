"""``pki.der`` against cryptography: names, certificate fields and PEM blocks read from the
bytes must be exactly what cryptography gives, or None so that the caller asks cryptography.
"""

from __future__ import annotations

import base64
import datetime as dt
import string
import warnings
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import (
    _NAMEOID_LENGTH_LIMIT,
    _NAMEOID_TO_NAME,
    _ASN1Type,
    _escape_dn_value,
)
from cryptography.x509.oid import NameOID, ObjectIdentifier
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.pki import TestPki
from pki.der import (
    LENGTH_LIMITS,
    SHORT_NAMES,
    escape_value,
    name_text,
    name_values,
    pem_certificate_blocks,
    tbs_names,
)
from tests.x509_strategies import tlv

KEY = ec.generate_private_key(ec.SECP256R1())
ISSUER = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Émetteur (TEST)")])
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# What loading a certificate raises for bytes it cannot read.
UNREADABLE = (ValueError, x509.InvalidVersion)


def certificate(subject: x509.Name, serial: int = 1) -> x509.Certificate:
    """A small self-signed-looking certificate with ``subject``, read back from its DER so
    that its names are cryptography's parsing of the bytes."""
    built = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ISSUER)
        .public_key(KEY.public_key())
        .serial_number(serial)
        .not_valid_before(START)
        .not_valid_after(START + dt.timedelta(days=365))
        .sign(KEY, hashes.SHA256())
    )
    return x509.load_der_x509_certificate(built.public_bytes(Encoding.DER))


def with_subject(der: bytes, subject: bytes) -> bytes:
    """``der`` (a certificate) with its subject replaced by the bytes ``subject``; the
    signature no longer matches, which loading does not check."""
    certificate_parts = children(der)
    tbs = children(certificate_parts[0])
    tbs[5 if tbs[0][0] == 0xA0 else 4] = subject
    return tlv(0x30, tlv(0x30, b"".join(tbs)) + b"".join(certificate_parts[1:]))


def children(der: bytes) -> list[bytes]:
    """The encoded children of the DER SEQUENCE ``der``."""
    start, length = _content(der, 0)
    found, at = [], start
    while at < start + length:
        content, size = _content(der, at)
        found.append(der[at : content + size])
        at = content + size
    return found


def _content(der: bytes, at: int) -> tuple[int, int]:
    length = der[at + 1]
    if length < 0x80:
        return at + 2, length
    count = length & 0x7F
    return at + 2 + count, int.from_bytes(der[at + 2 : at + 2 + count], "big")


@st.composite
def mutated(draw: st.DrawFn, der: bytes) -> bytes:
    """``der`` with a few bytes replaced by ones that matter to DER."""
    changed = bytearray(der)
    for _ in range(draw(st.integers(1, 4))):
        if not changed:
            break
        position = draw(st.integers(0, len(changed) - 1))
        changed[position] = draw(st.sampled_from([0x00, 0x30, 0x31, 0x80, 0x81, 0x82, 0xFF]))
    return bytes(changed)


@st.composite
def truncated(draw: st.DrawFn, der: bytes) -> bytes:
    return der[: draw(st.integers(0, max(len(der) - 1, 0)))]


def cryptography_text(read: x509.Certificate | bytes) -> tuple[str | None, dict[str, str]]:
    """What cryptography makes of a subject: its RFC 4514 text and first values, or None when
    it refuses the name or warns about it (then pki.der must send it to cryptography)."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            name = x509.Name.from_bytes(read) if isinstance(read, bytes) else read.subject
            text = name.rfc4514_string()
    except ValueError:
        return None, {}
    if caught:
        return None, {}
    values: dict[str, str] = {}
    for attribute in name:
        values.setdefault(attribute.oid.dotted_string, str(attribute.value))
    return text, values


def subject_of(read: x509.Certificate) -> bytes:
    names = tbs_names(read.public_bytes(Encoding.DER))
    assert names is not None
    return names[1]


# --------------------------------------------------------------------------------------------
# Random names

PRINTABLE = string.ascii_letters + string.digits + " '()+,-./:=?"
SPECIALS = '\\"+,;<>#= \x00'
MADE_UP_OIDS = [
    ObjectIdentifier("1.2.3.4"),
    ObjectIdentifier("2.999.7"),
    ObjectIdentifier("0.39.1"),
    ObjectIdentifier("1.3.6.1.4.1.99999.123456789.1"),
]
OIDS = [value for value in vars(NameOID).values() if isinstance(value, ObjectIdentifier)]
FAST_TYPES = [_ASN1Type.UTF8String, _ASN1Type.PrintableString, _ASN1Type.IA5String]
ALL_TYPES = [*FAST_TYPES, *FAST_TYPES, _ASN1Type.BMPString, _ASN1Type.T61String]
LIMITED = {NameOID.COMMON_NAME, NameOID.COUNTRY_NAME, NameOID.JURISDICTION_COUNTRY_NAME}


def alphabet(kind: _ASN1Type) -> st.SearchStrategy[str]:
    if kind is _ASN1Type.PrintableString:
        return st.sampled_from(PRINTABLE)
    specials = st.sampled_from(SPECIALS)
    if kind is _ASN1Type.IA5String:
        return st.one_of(specials, st.characters(max_codepoint=0x7F))
    if kind is _ASN1Type.BMPString:
        return st.one_of(specials, st.characters(codec="utf-8", max_codepoint=0xFFFF))
    return st.one_of(specials, st.characters(codec="utf-8"))


@st.composite
def attributes(draw: st.DrawFn, *, ordinary: bool) -> x509.NameAttribute:
    """A name attribute; ``ordinary`` ones are in pki.der's fast subset and within
    cryptography's length limits."""
    oid = draw(st.sampled_from(OIDS if ordinary else OIDS + MADE_UP_OIDS))
    kind = draw(st.sampled_from(FAST_TYPES if ordinary else ALL_TYPES))
    letters = alphabet(kind)
    if ordinary and oid in (NameOID.COUNTRY_NAME, NameOID.JURISDICTION_COUNTRY_NAME):
        value = draw(st.text(st.sampled_from(string.ascii_uppercase), min_size=2, max_size=2))
    elif ordinary and oid == NameOID.COMMON_NAME:
        value = draw(st.text(letters, min_size=1, max_size=16))
    else:
        value = draw(
            st.one_of(
                st.text(letters, max_size=12),
                st.sampled_from(["", " ", "  ", " x ", "x ", "a b  ", "#x", " #", "x#", "\x00"]),
                st.text(letters, min_size=60, max_size=140),  # long-form lengths
            )
        )
        if kind is _ASN1Type.PrintableString:
            value = "".join(c for c in value if c in PRINTABLE)
    with warnings.catch_warnings():
        # Out-of-limit values (a 3-letter country) are wanted: cryptography warns on them.
        warnings.simplefilter("ignore")
        return x509.NameAttribute(oid, value, _type=kind, _validate=False)


@st.composite
def names(draw: st.DrawFn, *, ordinary: bool = False) -> x509.Name:
    rdns = []
    for _ in range(draw(st.integers(0, 7))):
        size = draw(st.sampled_from([1, 1, 1, 2, 3]))
        members = draw(
            st.lists(
                attributes(ordinary=ordinary),
                min_size=1,
                max_size=size,
                # One value per type and RDN for ordinary names (pki.der wants that),
                # no exact duplicates otherwise (cryptography refuses them).
                unique_by=(lambda a: a.oid) if ordinary else (lambda a: (a.oid, a.value)),
            )
        )
        rdns.append(x509.RelativeDistinguishedName(members))
    return x509.Name(rdns)


@settings(max_examples=200, deadline=None)
@given(names())
def test_name_text_is_cryptographys_text_or_none(name: x509.Name) -> None:
    read = certificate(name)
    subject = subject_of(read)
    assert subject == name.public_bytes()
    expected, expected_values = cryptography_text(read)
    text = name_text(subject)
    if expected is None:
        assert text is None
    else:
        assert text in (None, expected)
    values = name_values(subject)
    assert (values is None) == (text is None)
    if values is not None:
        assert values == expected_values


@settings(max_examples=200, deadline=None)
@given(names(ordinary=True))
def test_ordinary_names_take_the_fast_path(name: x509.Name) -> None:
    read = certificate(name)
    subject = subject_of(read)
    expected, expected_values = cryptography_text(read)
    assert expected is not None
    assert name_text(subject) == expected
    assert name_values(subject) == expected_values


def test_real_subjects_and_issuers_take_the_fast_path(test_pki: TestPki) -> None:
    for read in all_certificates(test_pki):
        issuer, subject = tbs_names(read.public_bytes(Encoding.DER)) or (b"", b"")
        assert name_text(subject) == read.subject.rfc4514_string()
        assert name_text(issuer) == read.issuer.rfc4514_string()


def test_a_multi_valued_rdn_keeps_der_order_and_the_rdns_are_reversed() -> None:
    name = x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "FR")]),
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Greffe"),
                    x509.NameAttribute(NameOID.COMMON_NAME, 'Jean, dit "Jo" <+>'),
                ]
            ),
        ]
    )
    read = certificate(name)
    subject = subject_of(read)
    # In DER order the shorter encoding, OU's, comes first.
    expected = 'OU=Greffe+CN=Jean\\, dit \\"Jo\\" \\<\\+\\>,C=FR'
    assert read.subject.rfc4514_string() == expected
    assert name_text(subject) == expected
    assert name_values(subject) == {
        "2.5.4.6": "FR",
        "2.5.4.3": 'Jean, dit "Jo" <+>',
        "2.5.4.11": "Greffe",
    }


def test_tables_match_cryptographys() -> None:
    assert {oid.dotted_string: short for oid, short in _NAMEOID_TO_NAME.items()} == SHORT_NAMES
    assert {
        oid.dotted_string: limits for oid, limits in _NAMEOID_LENGTH_LIMIT.items()
    } == LENGTH_LIMITS


@settings(max_examples=200, deadline=None)
@given(st.text(st.one_of(st.sampled_from(SPECIALS), st.characters(codec="utf-8")), max_size=10))
def test_escaping_is_cryptographys(value: str) -> None:
    assert escape_value(value) == _escape_dn_value(value)


# --------------------------------------------------------------------------------------------
# Names cryptography's builder will not write

CN, ORG, C = (bytes.fromhex(h) for h in ("550403", "55040a", "550406"))


def attribute(oid: bytes, tag: int, value: bytes) -> bytes:
    return tlv(0x30, tlv(0x06, oid) + tlv(tag, value))


def rdn(*members: bytes) -> bytes:
    return tlv(0x31, b"".join(members))


def name_der(*rdns: bytes) -> bytes:
    return tlv(0x30, b"".join(rdns))


CRAFTED = {
    "ordinaire": (name_der(rdn(attribute(C, 0x13, b"FR")), rdn(attribute(CN, 0x0C, b"A"))), True),
    "vide": (name_der(), True),
    "valeur_longue": (name_der(rdn(attribute(ORG, 0x0C, "é".encode() * 150))), True),
    "rdn_vide": (name_der(rdn()), False),
    "rdn_vide_puis_autre": (name_der(rdn(), rdn(attribute(C, 0x13, b"FR"))), False),
    "espace_final": (name_der(rdn(attribute(ORG, 0x0C, b"Greffe "))), True),
    "espaces": (name_der(rdn(attribute(ORG, 0x13, b" ")), rdn(attribute(ORG, 0x16, b"  "))), True),
    "rdn_desordonne": (
        name_der(rdn(attribute(ORG, 0x0C, b"x"), attribute(CN, 0x0C, b"y"))),
        False,
    ),
    "rdn_ordonne": (name_der(rdn(attribute(CN, 0x0C, b"y"), attribute(ORG, 0x0C, b"x"))), True),
    "rdn_doublon": (name_der(rdn(attribute(CN, 0x0C, b"y"), attribute(CN, 0x0C, b"y"))), False),
    "rdn_doublon_types": (
        name_der(rdn(attribute(CN, 0x0C, b"y"), attribute(CN, 0x13, b"y"))),
        False,
    ),
    "printable_invalide": (name_der(rdn(attribute(ORG, 0x13, b"a@b"))), False),
    "printable_etoile": (name_der(rdn(attribute(ORG, 0x13, b"a*b"))), False),
    "ia5_non_ascii": (name_der(rdn(attribute(ORG, 0x16, "é".encode()))), False),
    "utf8_invalide": (name_der(rdn(attribute(ORG, 0x0C, b"\xed\xa0\x80"))), False),
    "bmp": (name_der(rdn(attribute(ORG, 0x1E, "é".encode("utf-16-be")))), False),
    "t61": (name_der(rdn(attribute(ORG, 0x14, b"abc"))), False),
    "oid_non_minimal": (name_der(rdn(attribute(b"\x55\x80\x04\x03", 0x0C, b"y"))), False),
    "oid_vide": (name_der(rdn(attribute(b"", 0x0C, b"y"))), False),
    "oid_inacheve": (name_der(rdn(attribute(b"\x55\x84", 0x0C, b"y"))), False),
    "oid_inconnu": (name_der(rdn(attribute(b"\x88\x37\x01", 0x0C, b"y"))), True),
    "cn_vide": (name_der(rdn(attribute(CN, 0x0C, b""))), False),
    "cn_trop_long": (name_der(rdn(attribute(CN, 0x0C, b"x" * 65))), False),
    "cn_64_octets": (name_der(rdn(attribute(CN, 0x0C, "é".encode() * 32))), True),
    "pays_trois_lettres": (name_der(rdn(attribute(C, 0x13, b"FRA"))), False),
    "longueur_non_minimale": (b"\x30\x81\x0d" + rdn(attribute(C, 0x13, b"FR")), False),
    "longueur_indefinie": (b"\x30\x80" + rdn(attribute(C, 0x13, b"FR")) + b"\x00\x00", False),
    "octets_en_trop": (name_der(rdn(attribute(C, 0x13, b"FR"))) + b"\x00", False),
    "set_attendu": (tlv(0x30, tlv(0x30, attribute(C, 0x13, b"FR"))), False),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_names(case: str) -> None:
    der, fast = CRAFTED[case]
    expected, expected_values = cryptography_text(der)
    if fast:
        assert expected is not None
        assert name_text(der) == expected
        assert name_values(der) == expected_values
    else:
        # Outside the fast subset: cryptography's own answer, whatever it is, stays its own.
        assert name_text(der) is None
        assert name_values(der) is None


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_subjects_in_a_certificate(case: str) -> None:
    der, _ = CRAFTED[case]
    template = certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modèle")]))
    spliced = with_subject(template.public_bytes(Encoding.DER), der)
    names = tbs_names(spliced)
    if names is None or names[1] != der:
        # A subject that is not one DER value changes the certificate's structure.
        assert name_text(der) is None
        return
    try:
        read = x509.load_der_x509_certificate(spliced)
    except UNREADABLE:
        assert name_text(der) is None
        return
    expected, _ = cryptography_text(read)
    text = name_text(der)
    if expected is None:
        assert text is None
    else:
        assert text in (None, expected)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_name_text_never_raises_and_agrees_when_it_answers(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from([entry[0] for entry in CRAFTED.values()]))
    der = data.draw(st.one_of(st.binary(max_size=80), mutated(base), truncated(base)))
    text = name_text(der)
    values = name_values(der)
    assert (text is None) == (values is None)
    if text is not None:
        expected, expected_values = cryptography_text(der)
        assert text == expected
        assert values == expected_values


# --------------------------------------------------------------------------------------------
# Certificate fields


def all_certificates(pki: TestPki) -> Iterator[x509.Certificate]:
    for family in pki.families.values():
        yield family.root.certificate
        yield family.issuing.certificate
    for holder in pki.holders:
        yield holder.authentication.certificate
        yield holder.signature.certificate
    for group in (pki.cases, pki.extra_cas, pki.nonconforming, pki.conforming):
        for issued in group.values():
            yield issued.certificate


def test_tbs_names_of_real_certificates(test_pki: TestPki) -> None:
    seen = 0
    for read in all_certificates(test_pki):
        assert tbs_names(read.public_bytes(Encoding.DER)) == (
            read.issuer.public_bytes(),
            read.subject.public_bytes(),
        )
        seen += 1
    assert seen > 20


def test_tbs_names_of_a_version_1_certificate() -> None:
    # Without the [0] version field (v1) the serial number comes first.
    from asn1crypto import x509 as asn1_x509

    read = certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "v1")]))
    parsed = asn1_x509.Certificate.load(read.public_bytes(Encoding.DER))
    tbs = parsed["tbs_certificate"]
    tbs["version"] = "v1"
    tbs["extensions"] = None
    der = parsed.dump(force=True)
    v1 = x509.load_der_x509_certificate(der)
    assert v1.version is x509.Version.v1
    assert tbs_names(der) == (v1.issuer.public_bytes(), v1.subject.public_bytes())


TEMPLATE = certificate(
    x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Gabarit (TEST)"),
        ]
    )
).public_bytes(Encoding.DER)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=600), mutated(TEMPLATE), truncated(TEMPLATE)))
def test_tbs_names_never_raises(der: bytes) -> None:
    names = tbs_names(der)
    if der != TEMPLATE and len(der) < len(TEMPLATE) and der == TEMPLATE[: len(der)]:
        assert names is None  # a truncated certificate
    if names is None:
        return
    issuer, subject = names
    assert isinstance(issuer, bytes) and isinstance(subject, bytes)
    try:
        read = x509.load_der_x509_certificate(der)
        expected = (read.issuer.public_bytes(), read.subject.public_bytes())
    except UNREADABLE:
        return
    assert names == expected


# --------------------------------------------------------------------------------------------
# PEM blocks


def small_certificates() -> list[x509.Certificate]:
    return [
        certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Titulaire {n}")]), n)
        for n in (1, 2, 3)
    ]


SMALL = small_certificates()
SMALL_DER = [read.public_bytes(Encoding.DER) for read in SMALL]


def assert_same_as_cryptography(data: bytes) -> list[bytes] | None:
    """pem_certificate_blocks(data), checked against load_pem_x509_certificates."""
    blocks = pem_certificate_blocks(data)
    if blocks is None:
        return None
    try:
        expected = x509.load_pem_x509_certificates(data)
    except UNREADABLE:
        expected = None
    try:
        ours = [x509.load_der_x509_certificate(block) for block in blocks]
    except UNREADABLE:
        ours = None
    assert ours == expected
    if ours is not None:
        assert blocks == [read.public_bytes(Encoding.DER) for read in ours]
    return blocks


# The test PKI holds certificates with a zero or negative serial number on purpose.
@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_pem_blocks_of_a_real_bundle(test_pki: TestPki) -> None:
    certificates = list(all_certificates(test_pki))
    bundle = b"".join(read.public_bytes(Encoding.PEM) for read in certificates)
    expected = [read.public_bytes(Encoding.DER) for read in certificates]
    assert assert_same_as_cryptography(bundle) == expected
    assert assert_same_as_cryptography(bundle.replace(b"\n", b"\r\n")) == expected
    junk = b"Bag Attributes\n    friendlyName: Jean-Pierre\nsubject=C = FR, CN = x\n\n"
    with_junk = b"".join(junk + read.public_bytes(Encoding.PEM) for read in certificates)
    assert assert_same_as_cryptography(with_junk + b"fin\n") == expected


def test_pem_blocks_give_up_on_what_they_do_not_read() -> None:
    one, two = (read.public_bytes(Encoding.PEM) for read in SMALL[:2])
    key_block = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    second_line = one.index(b"\n", 28) + 1
    for data in (
        one + two[:-40],  # truncated last block
        one + two.replace(b"-----END CERTIFICATE-----\n", b""),
        b"",
        b"no PEM here",
        one + key_block,
        one.replace(b"BEGIN CERTIFICATE", b"BEGIN X509 CERTIFICATE").replace(
            b"END CERTIFICATE", b"END X509 CERTIFICATE"
        ),
        one[:second_line] + b"\n" + one[second_line:],  # a blank line starts PEM headers
        one[:-26] + b"\n" + one[-26:],  # blank line before END
        one[:-26] + b"\r\n" + one[-26:],
        one[:40] + b" " + one[40:],
        one[:40] + b"*" + one[40:],
        b"x-" + one,  # six dashes before BEGIN: the pem crate does not see that block
    ):
        assert pem_certificate_blocks(data) is None


def test_pem_blocks_with_other_line_lengths() -> None:
    der = SMALL_DER[0]
    encoded = base64.b64encode(der)
    for width in (1, 4, 63, 64, 65, 76, len(encoded) - 1, len(encoded), 10_000):
        lines = [encoded[i : i + width] for i in range(0, len(encoded), width)]
        for newline in (b"\n", b"\r\n"):
            body = newline.join(lines)
            data = b"-----BEGIN CERTIFICATE-----" + newline + body + newline
            data += b"-----END CERTIFICATE-----" + newline
            assert assert_same_as_cryptography(data) == [der]
    inline = b"-----BEGIN CERTIFICATE-----" + encoded + b"-----END CERTIFICATE-----"
    assert assert_same_as_cryptography(inline) == [der]


B64 = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"


def wrapped(body: bytes) -> bytes:
    return b"-----BEGIN CERTIFICATE-----\n" + body + b"\n-----END CERTIFICATE-----\n"


def test_pem_blocks_refuse_non_canonical_base64() -> None:
    paddings: set[int] = set()
    for size in range(1, 30):
        read = certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x" * size)]))
        encoded = base64.b64encode(read.public_bytes(Encoding.DER))
        padding = len(encoded) - len(encoded.rstrip(b"="))
        if padding in paddings:
            continue
        paddings.add(padding)
        variants = [encoded + b"=", encoded + b"=="]  # padding after a complete quantum
        if padding:
            last = B64.index(chr(encoded[-padding - 1]))
            unused_bit = B64[last ^ 1].encode()
            variants += [
                encoded[:-padding],  # padding missing
                encoded[: -padding - 1] + unused_bit + encoded[-padding:],  # unused bits set
            ]
        for body in variants:
            assert pem_certificate_blocks(wrapped(body)) is None
            with pytest.raises(ValueError):
                x509.load_pem_x509_certificates(wrapped(body))
        assert pem_certificate_blocks(wrapped(encoded)) == [read.public_bytes(Encoding.DER)]
    assert paddings == {0, 1, 2}


def test_pem_blocks_refuse_padding_after_a_quantum_of_zeros() -> None:
    # "AAAA=": strict base64 decoding takes it, and "AAA=" encodes the last two bytes too.
    tbs, algorithm, _ = children(SMALL_DER[0])
    for size in range(64, 67):
        der = tlv(0x30, tbs + algorithm + tlv(0x03, b"\x00" + b"\x01" * size + b"\x00" * 3))
        if len(der) % 3 == 0:
            break
    x509.load_der_x509_certificate(der)
    encoded = base64.b64encode(der)
    assert encoded.endswith(b"AAAA")
    assert pem_certificate_blocks(wrapped(encoded)) == [der]
    assert pem_certificate_blocks(wrapped(encoded + b"=")) is None
    with pytest.raises(ValueError):
        x509.load_pem_x509_certificates(wrapped(encoded + b"="))


def test_pem_blocks_refuse_blank_lines_whatever_the_line_lengths() -> None:
    # The pem crate takes what comes before a blank line for RFC 1421 headers.
    der = SMALL_DER[0]
    encoded = base64.b64encode(der)
    for width in (4, 16, 64, len(encoded) // 2, len(encoded)):
        lines = [encoded[i : i + width] for i in range(0, len(encoded), width)]
        assert len(lines) >= 2 or width == len(encoded)
        layouts = [[*lines, b""]]  # blank line before END, the last line full or not
        if len(lines) >= 3:
            # As many newlines as the usual layout, one of them misplaced.
            layouts.append([lines[0], lines[1] + lines[2], b"", *lines[3:]])
            layouts.append([lines[0], b"", lines[1] + lines[2], *lines[3:]])
        for layout in layouts:
            for newline in (b"\n", b"\r\n"):
                body = newline + newline.join(layout) + newline
                data = b"-----BEGIN CERTIFICATE-----" + body + b"-----END CERTIFICATE-----\n"
                assert pem_certificate_blocks(data) is None
                with pytest.raises(ValueError):
                    x509.load_pem_x509_certificates(data)


PEM_PIECES = st.sampled_from(
    [
        b"\n",
        b"\r\n",
        b" ",
        b"\t",
        b"-",
        b"--",
        b"-----",
        b"=",
        b"==",
        b"A",
        b"*",
        b"junk text",
        b"\xc3\xa9",
        b"\xff",
        b"-----BEGIN CERTIFICATE-----",
        b"-----END CERTIFICATE-----",
        b"-----BEGIN X509 CERTIFICATE-----",
        b"-----END X509 CERTIFICATE-----",
        b"-----BEGIN PRIVATE KEY-----",
        b"-----END PRIVATE KEY-----",
        b"-----BEGIN ",
        b"Proc-Type: 4,ENCRYPTED\n",
    ]
)


@st.composite
def pem_files(draw: st.DrawFn) -> bytes:
    """PEM-like files: real certificate blocks with random line lengths and line endings,
    and random pieces of PEM syntax between, around and inside them."""
    parts: list[bytes] = []
    for der in draw(st.lists(st.sampled_from(SMALL_DER), max_size=3)):
        parts.append(b"".join(draw(st.lists(PEM_PIECES, max_size=3))))
        encoded = base64.b64encode(der)
        width = draw(st.sampled_from([64, 64, 76, 17, 1000]))
        newline = draw(st.sampled_from([b"\n", b"\n", b"\r\n"]))
        lines = [encoded[i : i + width] for i in range(0, len(encoded), width)]
        block = b"-----BEGIN CERTIFICATE-----" + newline + newline.join(lines) + newline
        block += b"-----END CERTIFICATE-----" + newline
        if draw(st.booleans()):
            position = draw(st.integers(0, len(block)))
            block = block[:position] + draw(PEM_PIECES) + block[position:]
        parts.append(block)
    parts.append(b"".join(draw(st.lists(PEM_PIECES, max_size=3))))
    return b"".join(parts)


@settings(max_examples=200, deadline=None)
@given(pem_files())
def test_pem_blocks_agree_with_cryptography(data: bytes) -> None:
    assert_same_as_cryptography(data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_pem_blocks_of_mutated_files(data: st.DataObject) -> None:
    pem = b"".join(read.public_bytes(Encoding.PEM) for read in SMALL[:2])
    changed = bytearray(pem)
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(changed) - 1))
        changed[position] = data.draw(st.sampled_from(b"-\n\r =A/+\x00\xff"))
    assert_same_as_cryptography(bytes(changed))
