"""Hypothesis strategies for end-entity certificates that carry random extension sets.

cryptography loads a certificate without looking inside its extensions and parses them on
first use; these strategies build the certificates that may fail there. Every extension
cryptography knows (certificate, CRL, CRL entry and OCSP ones) and a few it does not, with
random criticality and a value that is either well formed (built with cryptography's own
classes where it has them) or raw: empty, DER of the wrong shape, another extension's
value, a truncated one, or the right shape holding what cryptography's classes or its chain
builder refuse. Sometimes the same extension twice: cryptography's builder refuses
duplicates, so extensions are written into the to-be-signed part by hand and the
certificate is signed again with the issuer's key.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import string
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import core, parser
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    CRLEntryExtensionOID,
    ExtendedKeyUsageOID,
    ExtensionOID,
    NameOID,
    OCSPExtensionOID,
    SubjectInformationAccessOID,
)
from hypothesis import strategies as st

from fixtures.pki import _aki, _holder_extensions, _holder_subject

# --------------------------------------------------------------------------------------------
# DER by hand: only what cryptography's builder will not write.


def tlv(tag: int, content: bytes) -> bytes:
    """One DER value with a one-byte tag."""
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def sequence(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def oid_der(oid: x509.ObjectIdentifier | str) -> bytes:
    dotted = oid if isinstance(oid, str) else oid.dotted_string
    return core.ObjectIdentifier(dotted).dump()


def children(der: bytes) -> list[bytes]:
    """The encoded children of one constructed DER value."""
    contents = parser.parse(der)[4]
    found = []
    while contents:
        size = parser.peek(contents)
        found.append(contents[:size])
        contents = contents[size:]
    return found


# --------------------------------------------------------------------------------------------
# Extension identifiers


def _members(namespace: type) -> dict[str, x509.ObjectIdentifier]:
    return {
        name: value
        for name, value in vars(namespace).items()
        if isinstance(value, x509.ObjectIdentifier)
    }


KNOWN_OIDS: dict[str, x509.ObjectIdentifier] = {
    **_members(ExtensionOID),
    **{f"CRL_ENTRY_{k}": v for k, v in _members(CRLEntryExtensionOID).items()},
    **{f"OCSP_{k}": v for k, v in _members(OCSPExtensionOID).items()},
}
UNKNOWN_OIDS: dict[str, x509.ObjectIdentifier] = {
    "QC_STATEMENTS": x509.ObjectIdentifier("1.3.6.1.5.5.7.1.3"),
    "NETSCAPE_CERT_TYPE": x509.ObjectIdentifier("2.16.840.1.113730.1.1"),
    "PRIVATE_ENTERPRISE": x509.ObjectIdentifier("1.3.6.1.4.1.99999.42.1"),
    "EXAMPLE_ARC": x509.ObjectIdentifier("2.999.7"),
}
ALL_OIDS: dict[str, x509.ObjectIdentifier] = {**KNOWN_OIDS, **UNKNOWN_OIDS}
OID_NAMES: dict[x509.ObjectIdentifier, str] = {oid: name for name, oid in ALL_OIDS.items()}

# Extensions whose value is GeneralNames.
GENERAL_NAMES_OIDS = {
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ExtensionOID.ISSUER_ALTERNATIVE_NAME,
    CRLEntryExtensionOID.CERTIFICATE_ISSUER,
}


@dataclass(frozen=True)
class RandomExtension:
    """One extension as it goes into the certificate, and how its value was made."""

    oid: x509.ObjectIdentifier
    critical: bool
    value: bytes  # the contents of extnValue
    kind: str  # "well_formed", "empty", "empty_sequence", "der_noise", "other_type", ...

    def __repr__(self) -> str:
        name = OID_NAMES.get(self.oid, "?")
        flag = "critical" if self.critical else "non-critical"
        return f"<{name} {self.oid.dotted_string} {flag} {self.kind} {self.value.hex()}>"

    def encoded(self) -> bytes:
        """The Extension SEQUENCE (critical DEFAULT FALSE: omitted when false, as DER wants)."""
        critical = b"\x01\x01\xff" if self.critical else b""
        return sequence(oid_der(self.oid), critical, tlv(0x04, self.value))


# --------------------------------------------------------------------------------------------
# Well-formed values, built with cryptography's classes where it has one

_LABEL = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=8)
_DOMAIN = st.lists(_LABEL, min_size=1, max_size=3).map(lambda labels: ".".join([*labels, "test"]))
_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " -'", min_size=1, max_size=20)
_RANDOM_OID = st.builds(
    lambda first, second, rest: x509.ObjectIdentifier(".".join(map(str, [first, second, *rest]))),
    st.integers(0, 2),
    st.integers(0, 39),
    st.lists(st.integers(0, 2**40), max_size=5),
)
OIDS = st.one_of(
    st.sampled_from(
        [
            ExtendedKeyUsageOID.CLIENT_AUTH,
            ExtendedKeyUsageOID.SERVER_AUTH,
            ExtendedKeyUsageOID.EMAIL_PROTECTION,
            ExtendedKeyUsageOID.CODE_SIGNING,
            ExtendedKeyUsageOID.OCSP_SIGNING,
            ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
            ExtendedKeyUsageOID.SMARTCARD_LOGON,
            x509.ObjectIdentifier("2.5.29.32.0"),  # anyPolicy
        ]
    ),
    _RANDOM_OID,
)
_DATES = st.datetimes(
    min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2060, 1, 1), timezones=st.just(dt.UTC)
).map(lambda moment: moment.replace(microsecond=0))
_NAME = st.builds(
    lambda cn, org: x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    ),
    _TEXT,
    _TEXT,
)
_IP_ADDRESS = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))
_IP_NETWORK = st.one_of(
    st.builds(
        lambda address, prefix: ipaddress.IPv4Network((address, prefix), strict=False),
        st.ip_addresses(v=4),
        st.integers(0, 32),
    ),
    st.builds(
        lambda address, prefix: ipaddress.IPv6Network((address, prefix), strict=False),
        st.ip_addresses(v=6),
        st.integers(0, 128),
    ),
)


def _utf8(text: str) -> bytes:
    return tlv(0x0C, text.encode())


def general_names(*, networks: bool = False) -> st.SearchStrategy[x509.GeneralName]:
    """Every GeneralName cryptography can write; networks instead of addresses for name
    constraints, which also forbid wildcards."""
    dns = _DOMAIN if networks else st.one_of(_DOMAIN, _DOMAIN.map(lambda d: "*." + d))
    return st.one_of(
        st.builds(lambda local, domain: x509.RFC822Name(f"{local}@{domain}"), _LABEL, _DOMAIN),
        dns.map(x509.DNSName),
        st.builds(
            lambda domain, path: x509.UniformResourceIdentifier(f"http://{domain}/{path}"),
            _DOMAIN,
            _LABEL,
        ),
        (_IP_NETWORK if networks else _IP_ADDRESS).map(x509.IPAddress),
        _NAME.map(x509.DirectoryName),
        OIDS.map(x509.RegisteredID),
        st.builds(
            lambda oid, text: x509.OtherName(oid, _utf8(text)),
            st.sampled_from(
                [x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), x509.ObjectIdentifier("1.2.3.4")]
            ),
            _TEXT,
        ),
    )


_GENERAL_NAMES = st.lists(general_names(), min_size=1, max_size=3)
_REASONS = st.one_of(
    st.none(),
    st.frozensets(
        st.sampled_from(
            [
                flag
                for flag in x509.ReasonFlags
                if flag not in (x509.ReasonFlags.unspecified, x509.ReasonFlags.remove_from_crl)
            ]
        ),
        min_size=1,
    ),
)
_RDN = _TEXT.map(
    lambda text: x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, text)])
)


@st.composite
def _distribution_point(draw: st.DrawFn) -> x509.DistributionPoint:
    which = draw(st.sampled_from(["full", "relative", "issuer_only"]))
    crl_issuer = draw(st.one_of(st.none(), _GENERAL_NAMES))
    if which == "issuer_only":
        crl_issuer = crl_issuer or draw(_GENERAL_NAMES)
    return x509.DistributionPoint(
        full_name=draw(_GENERAL_NAMES) if which == "full" else None,
        relative_name=draw(_RDN) if which == "relative" else None,
        reasons=draw(_REASONS),
        crl_issuer=crl_issuer,
    )


_DISTRIBUTION_POINTS = st.lists(_distribution_point(), min_size=1, max_size=3)


@st.composite
def _key_usage(draw: st.DrawFn) -> x509.KeyUsage:
    bits = draw(st.lists(st.booleans(), min_size=9, max_size=9))
    agreement = bits[4]
    return x509.KeyUsage(
        digital_signature=bits[0],
        content_commitment=bits[1],
        key_encipherment=bits[2],
        data_encipherment=bits[3],
        key_agreement=agreement,
        key_cert_sign=bits[5],
        crl_sign=bits[6],
        encipher_only=agreement and bits[7],
        decipher_only=agreement and bits[8],
    )


@st.composite
def _basic_constraints(draw: st.DrawFn) -> x509.BasicConstraints:
    ca = draw(st.booleans())
    return x509.BasicConstraints(ca, draw(st.one_of(st.none(), st.integers(0, 10))) if ca else None)


_QUALIFIER = st.one_of(
    _DOMAIN.map(lambda domain: f"http://{domain}/cps"),
    st.builds(
        x509.UserNotice,
        st.one_of(
            st.none(),
            st.builds(
                x509.NoticeReference,
                _TEXT,  # optional for the class, not for the encoder
                st.lists(st.integers(0, 1000), max_size=3),
            ),
        ),
        st.one_of(st.none(), _TEXT),
    ),
)
_CERTIFICATE_POLICIES = st.lists(
    st.builds(
        x509.PolicyInformation,
        OIDS,
        st.one_of(st.none(), st.lists(_QUALIFIER, min_size=1, max_size=2)),
    ),
    min_size=1,
    max_size=3,
)
_SUBTREES = st.lists(general_names(networks=True), min_size=1, max_size=3)


@st.composite
def _name_constraints(draw: st.DrawFn) -> x509.NameConstraints:
    permitted = draw(st.one_of(st.none(), _SUBTREES))
    excluded = draw(_SUBTREES if permitted is None else st.one_of(st.none(), _SUBTREES))
    return x509.NameConstraints(permitted, excluded)


@st.composite
def _policy_constraints(draw: st.DrawFn) -> x509.PolicyConstraints:
    explicit = draw(st.one_of(st.none(), st.integers(0, 10)))
    inhibit = draw(
        st.integers(0, 10) if explicit is None else st.one_of(st.none(), st.integers(0, 10))
    )
    return x509.PolicyConstraints(explicit, inhibit)


@st.composite
def _authority_key_identifier(draw: st.DrawFn) -> x509.AuthorityKeyIdentifier:
    key_id = draw(st.one_of(st.none(), st.binary(min_size=1, max_size=32)))
    if draw(st.booleans()):
        return x509.AuthorityKeyIdentifier(
            key_id, draw(_GENERAL_NAMES), draw(st.integers(0, 2**64))
        )
    return x509.AuthorityKeyIdentifier(key_id, None, None)


_ACCESS = st.lists(
    st.builds(
        x509.AccessDescription,
        st.sampled_from(
            [
                AuthorityInformationAccessOID.OCSP,
                AuthorityInformationAccessOID.CA_ISSUERS,
                SubjectInformationAccessOID.CA_REPOSITORY,
            ]
        ),
        general_names(),
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def _private_key_usage_period(draw: st.DrawFn) -> x509.PrivateKeyUsagePeriod:
    first, second = sorted(draw(st.lists(_DATES, min_size=2, max_size=2)))
    which = draw(st.sampled_from(["both", "before", "after"]))
    return x509.PrivateKeyUsagePeriod(
        first if which != "after" else None, second if which != "before" else None
    )


@st.composite
def _issuing_distribution_point(draw: st.DrawFn) -> x509.IssuingDistributionPoint:
    only = draw(st.sampled_from(["user", "ca", "attribute", None]))
    name = draw(st.sampled_from(["full", "relative", None]))
    reasons = draw(_REASONS)
    indirect = draw(st.booleans())
    if only is None and name is None and reasons is None and not indirect:
        name = "full"
    return x509.IssuingDistributionPoint(
        full_name=draw(_GENERAL_NAMES) if name == "full" else None,
        relative_name=draw(_RDN) if name == "relative" else None,
        only_contains_user_certs=only == "user",
        only_contains_ca_certs=only == "ca",
        only_some_reasons=reasons,
        indirect_crl=indirect,
        only_contains_attribute_certs=only == "attribute",
    )


_NAMING_AUTHORITY = st.one_of(
    st.none(),
    st.builds(
        x509.NamingAuthority,
        st.one_of(st.none(), OIDS),
        st.one_of(st.none(), _DOMAIN.map(lambda d: f"http://{d}/")),
        st.one_of(st.none(), _TEXT),
    ),
)
_PROFESSION_INFO = st.builds(
    x509.ProfessionInfo,
    _NAMING_AUTHORITY,
    st.lists(_TEXT, min_size=1, max_size=2),
    st.one_of(st.none(), st.lists(OIDS, min_size=1, max_size=2)),
    st.one_of(st.none(), _TEXT),
    st.one_of(st.none(), st.binary(max_size=8)),
)
_ADMISSIONS = st.builds(
    x509.Admissions,
    st.one_of(st.none(), general_names()),
    st.lists(
        st.builds(
            x509.Admission,
            st.one_of(st.none(), general_names()),
            _NAMING_AUTHORITY,
            st.lists(_PROFESSION_INFO, min_size=1, max_size=2),
        ),
        max_size=2,
    ),
)


def _sct(log_id: bytes, timestamp: int, signature: bytes) -> bytes:
    # RFC 6962 §3.2, TLS encoding: v1, log id, timestamp, no extensions, SHA-256/ECDSA.
    body = (
        b"\x00"
        + log_id
        + timestamp.to_bytes(8, "big")
        + b"\x00\x00"
        + b"\x04\x03"
        + len(signature).to_bytes(2, "big")
        + signature
    )
    return len(body).to_bytes(2, "big") + body


_SCT_LIST = st.lists(
    st.builds(
        _sct,
        st.binary(min_size=32, max_size=32),
        st.integers(0, 2**48),
        st.binary(min_size=8, max_size=72),
    ),
    min_size=1,
    max_size=3,
).map(lambda scts: tlv(0x04, len(b"".join(scts)).to_bytes(2, "big") + b"".join(scts)))


def _subject_directory_attributes(values: list[tuple[str, bytes]]) -> bytes:
    return sequence(*(sequence(oid_der(oid), tlv(0x31, value)) for oid, value in values))


_SUBJECT_DIRECTORY_ATTRIBUTES = st.lists(
    st.one_of(
        _DATES.map(
            lambda moment: (
                "1.3.6.1.5.5.7.9.1",  # dateOfBirth
                tlv(0x18, moment.strftime("%Y%m%d%H%M%SZ").encode()),
            )
        ),
        st.sampled_from([b"FR", b"DE", b"BE"]).map(
            lambda country: ("1.3.6.1.5.5.7.9.4", tlv(0x13, country))  # countryOfCitizenship
        ),
    ),
    min_size=1,
    max_size=3,
).map(_subject_directory_attributes)
_POLICY_MAPPINGS = st.lists(
    st.tuples(OIDS, OIDS).map(lambda pair: sequence(oid_der(pair[0]), oid_der(pair[1]))),
    min_size=1,
    max_size=3,
).map(lambda mappings: sequence(*mappings))

_TYPED: dict[x509.ObjectIdentifier, st.SearchStrategy[x509.ExtensionType]] = {
    ExtensionOID.SUBJECT_KEY_IDENTIFIER: st.binary(min_size=1, max_size=32).map(
        x509.SubjectKeyIdentifier
    ),
    ExtensionOID.KEY_USAGE: _key_usage(),
    ExtensionOID.PRIVATE_KEY_USAGE_PERIOD: _private_key_usage_period(),
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME: _GENERAL_NAMES.map(x509.SubjectAlternativeName),
    ExtensionOID.ISSUER_ALTERNATIVE_NAME: _GENERAL_NAMES.map(x509.IssuerAlternativeName),
    ExtensionOID.BASIC_CONSTRAINTS: _basic_constraints(),
    ExtensionOID.NAME_CONSTRAINTS: _name_constraints(),
    ExtensionOID.CRL_DISTRIBUTION_POINTS: _DISTRIBUTION_POINTS.map(x509.CRLDistributionPoints),
    ExtensionOID.FRESHEST_CRL: _DISTRIBUTION_POINTS.map(x509.FreshestCRL),
    ExtensionOID.CERTIFICATE_POLICIES: _CERTIFICATE_POLICIES.map(x509.CertificatePolicies),
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER: _authority_key_identifier(),
    ExtensionOID.POLICY_CONSTRAINTS: _policy_constraints(),
    ExtensionOID.EXTENDED_KEY_USAGE: st.lists(OIDS, min_size=1, max_size=4).map(
        x509.ExtendedKeyUsage
    ),
    ExtensionOID.INHIBIT_ANY_POLICY: st.integers(0, 10).map(x509.InhibitAnyPolicy),
    ExtensionOID.ISSUING_DISTRIBUTION_POINT: _issuing_distribution_point(),
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS: _ACCESS.map(x509.AuthorityInformationAccess),
    ExtensionOID.SUBJECT_INFORMATION_ACCESS: _ACCESS.map(x509.SubjectInformationAccess),
    ExtensionOID.OCSP_NO_CHECK: st.just(x509.OCSPNoCheck()),
    ExtensionOID.TLS_FEATURE: st.lists(
        st.sampled_from(list(x509.TLSFeatureType)), min_size=1, max_size=2
    ).map(x509.TLSFeature),
    ExtensionOID.CRL_NUMBER: st.integers(0, 2**64).map(x509.CRLNumber),
    ExtensionOID.DELTA_CRL_INDICATOR: st.integers(0, 2**64).map(x509.DeltaCRLIndicator),
    ExtensionOID.PRECERT_POISON: st.just(x509.PrecertPoison()),
    ExtensionOID.MS_CERTIFICATE_TEMPLATE: st.builds(
        x509.MSCertificateTemplate,
        OIDS,
        st.one_of(st.none(), st.integers(0, 100)),
        st.one_of(st.none(), st.integers(0, 100)),
    ),
    ExtensionOID.ADMISSIONS: _ADMISSIONS,
    CRLEntryExtensionOID.CERTIFICATE_ISSUER: _GENERAL_NAMES.map(x509.CertificateIssuer),
    CRLEntryExtensionOID.CRL_REASON: st.sampled_from(list(x509.ReasonFlags)).map(x509.CRLReason),
    CRLEntryExtensionOID.INVALIDITY_DATE: _DATES.map(x509.InvalidityDate),
    OCSPExtensionOID.NONCE: st.binary(min_size=1, max_size=32).map(x509.OCSPNonce),
    OCSPExtensionOID.ACCEPTABLE_RESPONSES: st.lists(OIDS, min_size=1, max_size=3).map(
        x509.OCSPAcceptableResponses
    ),
}
# cryptography has no class for these, or none it can build: the DER is written by hand.
_HANDMADE: dict[x509.ObjectIdentifier, st.SearchStrategy[bytes]] = {
    ExtensionOID.SUBJECT_DIRECTORY_ATTRIBUTES: _SUBJECT_DIRECTORY_ATTRIBUTES,
    ExtensionOID.POLICY_MAPPINGS: _POLICY_MAPPINGS,
    ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS: _SCT_LIST,
    ExtensionOID.SIGNED_CERTIFICATE_TIMESTAMPS: _SCT_LIST,
    **{
        oid: st.binary(max_size=24).map(lambda data: tlv(0x04, data))
        for oid in UNKNOWN_OIDS.values()
    },
}
assert set(_TYPED) | set(_HANDMADE) == set(ALL_OIDS.values()), "an OID has no value strategy"


def well_formed_value(oid: x509.ObjectIdentifier) -> st.SearchStrategy[bytes]:
    """The DER of a well-formed value of the extension ``oid``."""
    if oid in _TYPED:
        return _TYPED[oid].map(lambda extension: extension.public_bytes())
    return _HANDMADE[oid]


# --------------------------------------------------------------------------------------------
# Values of the wrong shape

_PRIMITIVE_TAGS = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0C, 0x13, 0x16, 0x17, 0x18]
_PRIMITIVE_TAGS += [0x80 | n for n in range(9)]
_CONSTRUCTED_TAGS = [0x30, 0x31] + [0xA0 | n for n in range(9)]

DER_NOISE: st.SearchStrategy[bytes] = st.recursive(
    st.builds(tlv, st.sampled_from(_PRIMITIVE_TAGS), st.binary(max_size=12)),
    lambda inner: st.builds(
        lambda tag, items: tlv(tag, b"".join(items)),
        st.sampled_from(_CONSTRUCTED_TAGS),
        st.lists(inner, max_size=4),
    ),
    max_leaves=8,
)
"""Random small DER: well-formed tag-length-value trees of random types and contents."""

# GeneralNames holding a name form cryptography does not support.
UNSUPPORTED_GENERAL_NAMES = [
    sequence(tlv(0xA3, sequence())),  # x400Address
    sequence(tlv(0xA5, tlv(0x81, b"partie"))),  # ediPartyName
]


def _general_name_der(name: x509.GeneralName) -> bytes:
    return children(x509.SubjectAlternativeName([name]).public_bytes())[0]


_INTEGER_CONTENTS = st.binary(max_size=9)  # empty, non-minimal, negative and huge included
_ODD_GENERAL_NAME = st.one_of(
    st.sampled_from([children(names)[0] for names in UNSUPPORTED_GENERAL_NAMES]),
    st.binary(max_size=33).map(lambda address: tlv(0x87, address)),  # any length
    st.sampled_from([0x81, 0x82, 0x86]).map(lambda tag: tlv(tag, b"\xff\xfe")),  # not IA5
    st.sampled_from([b"", b"\x80", b"\x2a\x80"]).map(lambda oid: tlv(0x88, oid)),
    st.just(tlv(0xA4, sequence(tlv(0x31, b"")))),  # a name with an empty RDN
    st.just(tlv(0xA4, sequence(tlv(0x31, sequence(oid_der("2.5.4.3"), tlv(0x1E, b"abc")))))),
    st.just(tlv(0xA0, oid_der("1.2.3") + tlv(0xA0, b"\x05"))),  # otherName, broken value
)
"""One GeneralName that cryptography, or its chain builder, may refuse."""
_ODD_GENERAL_NAMES = st.builds(
    lambda good, odd, at: [*good[:at], odd, *good[at:]],
    st.lists(general_names().map(_general_name_der), max_size=2),
    _ODD_GENERAL_NAME,
    st.integers(0, 2),
)
"""GeneralNames (each encoded) of which one is odd."""


def _optional(tag: int, contents: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(st.just(b""), contents.map(lambda value: tlv(tag, value)))


_ODD_SUBTREE_BASE = st.one_of(
    _ODD_GENERAL_NAME,
    st.sampled_from([4, 16])
    .flatmap(lambda n: st.binary(min_size=n, max_size=n))
    .map(
        lambda address: tlv(0x87, address)  # an address where a network is expected
    ),
    _DOMAIN.map(lambda domain: tlv(0x82, b"*." + domain.encode())),
    general_names(networks=True).map(_general_name_der),
)
_ODD_SUBTREES = st.lists(
    st.builds(
        lambda base, minimum, maximum: sequence(base, minimum, maximum),
        _ODD_SUBTREE_BASE,
        _optional(0x80, _INTEGER_CONTENTS),
        _optional(0x81, _INTEGER_CONTENTS),
    ),
    max_size=2,
).map(lambda subtrees: b"".join(subtrees))
_ODD_TIME = st.one_of(
    _DATES.map(lambda moment: moment.strftime("%Y%m%d%H%M%SZ").encode()),
    st.binary(max_size=16),
)
_ODD_QUALIFIER = st.one_of(
    st.builds(
        lambda tag, text: sequence(oid_der("1.3.6.1.5.5.7.2.1"), tlv(tag, text)),
        st.sampled_from([0x16, 0x0C, 0x04]),
        st.binary(max_size=12),
    ),
    st.builds(
        lambda tag, text: sequence(oid_der("1.3.6.1.5.5.7.2.2"), sequence(tlv(tag, text))),
        st.sampled_from([0x0C, 0x1A, 0x1E, 0x16, 0x13]),  # VisibleString, BMPString...
        st.binary(max_size=12),
    ),
    OIDS.map(lambda oid: sequence(oid_der(oid), b"\x05\x00")),
)


def _sct_list(entries: list[bytes]) -> bytes:
    body = b"".join(len(entry).to_bytes(2, "big") + entry for entry in entries)
    return tlv(0x04, len(body).to_bytes(2, "big") + body)


_ODD_SCT = st.builds(
    lambda version, algorithms, rest: (
        version + bytes(32) + bytes(8) + b"\x00\x00" + algorithms + rest
    ),
    st.binary(min_size=1, max_size=1),
    st.binary(min_size=2, max_size=2),
    st.binary(max_size=6),
)
_ODD: dict[x509.ObjectIdentifier, st.SearchStrategy[bytes]] = {
    ExtensionOID.KEY_USAGE: st.builds(
        lambda unused, bits: tlv(0x03, bytes([unused]) + bits),
        st.integers(0, 8),
        st.binary(max_size=3),
    ),
    ExtensionOID.BASIC_CONSTRAINTS: st.builds(
        lambda ca, path: sequence(ca, path),
        _optional(0x01, st.binary(min_size=1, max_size=1)),
        _optional(0x02, _INTEGER_CONTENTS),
    ),
    ExtensionOID.SUBJECT_KEY_IDENTIFIER: st.binary(max_size=2).map(lambda key: tlv(0x04, key)),
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER: st.builds(
        lambda key, issuer, serial: sequence(key, issuer, serial),
        _optional(0x80, st.binary(max_size=4)),
        _optional(0xA1, _ODD_GENERAL_NAMES.map(b"".join)),
        _optional(0x82, _INTEGER_CONTENTS),
    ),
    ExtensionOID.EXTENDED_KEY_USAGE: st.lists(
        st.binary(max_size=4).map(lambda oid: tlv(0x06, oid)), max_size=2
    ).map(lambda usages: sequence(*usages)),
    ExtensionOID.TLS_FEATURE: st.lists(
        _INTEGER_CONTENTS.map(lambda n: tlv(0x02, n)), max_size=3
    ).map(lambda features: sequence(*features)),
    ExtensionOID.INHIBIT_ANY_POLICY: _INTEGER_CONTENTS.map(lambda n: tlv(0x02, n)),
    ExtensionOID.POLICY_CONSTRAINTS: st.builds(
        lambda explicit, inhibit: sequence(explicit, inhibit),
        _optional(0x80, _INTEGER_CONTENTS),
        _optional(0x81, _INTEGER_CONTENTS),
    ),
    ExtensionOID.NAME_CONSTRAINTS: st.builds(
        lambda permitted, excluded: sequence(permitted, excluded),
        _optional(0xA0, _ODD_SUBTREES),
        _optional(0xA1, _ODD_SUBTREES),
    ),
    ExtensionOID.PRIVATE_KEY_USAGE_PERIOD: st.builds(
        lambda before, after: sequence(before, after),
        _optional(0x80, _ODD_TIME),
        _optional(0x81, _ODD_TIME),
    ),
    ExtensionOID.CERTIFICATE_POLICIES: st.lists(
        st.builds(
            lambda oid, qualifiers: sequence(oid_der(oid), qualifiers),
            OIDS,
            st.one_of(
                st.just(b""), st.lists(_ODD_QUALIFIER, max_size=2).map(lambda q: sequence(*q))
            ),
        ),
        max_size=2,
    ).map(lambda policies: sequence(*policies)),
    ExtensionOID.MS_CERTIFICATE_TEMPLATE: st.builds(
        lambda oid, major, minor: sequence(oid_der(oid), major, minor),
        OIDS,
        _optional(0x02, _INTEGER_CONTENTS),
        _optional(0x02, _INTEGER_CONTENTS),
    ),
    ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS: st.lists(_ODD_SCT, max_size=2).map(
        _sct_list
    ),
}
for _oid in GENERAL_NAMES_OIDS:
    _ODD[_oid] = _ODD_GENERAL_NAMES.map(lambda names: sequence(*names))
for _oid in (ExtensionOID.AUTHORITY_INFORMATION_ACCESS, ExtensionOID.SUBJECT_INFORMATION_ACCESS):
    _ODD[_oid] = st.lists(
        st.builds(
            lambda method, name: sequence(oid_der(method), name),
            st.sampled_from(
                [AuthorityInformationAccessOID.OCSP, AuthorityInformationAccessOID.CA_ISSUERS]
            ),
            _ODD_GENERAL_NAME,
        ),
        min_size=1,
        max_size=2,
    ).map(lambda descriptions: sequence(*descriptions))
for _oid in (ExtensionOID.CRL_DISTRIBUTION_POINTS, ExtensionOID.FRESHEST_CRL):
    _ODD[_oid] = st.lists(
        st.builds(
            lambda name, reasons, issuer: sequence(name, reasons, issuer),
            st.one_of(
                st.just(b""),
                _ODD_GENERAL_NAMES.map(lambda names: tlv(0xA0, tlv(0xA0, b"".join(names)))),
                st.just(tlv(0xA0, tlv(0xA1, b""))),  # an empty relative name
            ),
            _optional(0x81, st.binary(max_size=3)),
            _optional(0xA2, _ODD_GENERAL_NAMES.map(b"".join)),
        ),
        min_size=1,
        max_size=2,
    ).map(lambda points: sequence(*points))

RAW_KINDS = [
    "empty",
    "empty_sequence",
    "der_noise",
    "other_type",
    "truncated",
    "random_bytes",
    "odd_value",
]


def raw_value(oid: x509.ObjectIdentifier, kind: str) -> st.SearchStrategy[bytes]:
    """Bytes that are not (or are not meant to be) a value of the extension ``oid``.

    ``odd_value``: the right structure, with what a constructor of cryptography or its
    chain builder refuses (an empty TLS feature list, an address where name constraints
    want a network, an IP address of 3 bytes, a path length without CA...); plain DER noise
    for an extension that has none written here.
    """
    if kind == "empty":
        return st.just(b"")
    if kind == "empty_sequence":
        return st.just(b"\x30\x00")
    if kind == "der_noise":
        return DER_NOISE
    if kind == "other_type":
        others = sorted((o for o in ALL_OIDS.values() if o != oid), key=lambda o: o.dotted_string)
        return st.sampled_from(others).flatmap(well_formed_value)
    if kind == "truncated":
        return well_formed_value(oid).flatmap(
            lambda value: st.integers(0, max(len(value) - 1, 0)).map(lambda cut: value[:cut])
        )
    if kind == "random_bytes":
        return st.binary(min_size=1, max_size=48)
    if kind == "odd_value":
        return _ODD.get(oid, DER_NOISE)
    raise AssertionError(kind)


# Well formed three times in four: most certificates then get past the first extension and
# exercise what comes after.
VALUE_KINDS = ["well_formed"] * len(RAW_KINDS) * 3 + RAW_KINDS


@st.composite
def extension(
    draw: st.DrawFn, oid: x509.ObjectIdentifier, kind: str | None = None
) -> RandomExtension:
    """One extension ``oid`` with random criticality and a value of ``kind`` (random if
    None)."""
    if kind is None:
        kind = draw(st.sampled_from(VALUE_KINDS))
    value = draw(well_formed_value(oid) if kind == "well_formed" else raw_value(oid, kind))
    return RandomExtension(oid, draw(st.booleans()), value, kind)


_OID_LIST = sorted(ALL_OIDS.values(), key=lambda oid: oid.dotted_string)


@dataclass(frozen=True)
class ExtensionPlan:
    """The extensions of a certificate to issue: ``extensions`` in order, after the usual
    ones of an agent authentication certificate when ``baseline`` (each replaced by an
    extension of the same OID in ``extensions``, if any)."""

    baseline: bool
    extensions: tuple[RandomExtension, ...]

    def over(self, baseline: Sequence[RandomExtension]) -> list[RandomExtension]:
        """The extensions to write, given the usual ones."""
        if not self.baseline:
            return list(self.extensions)
        replaced = {e.oid for e in self.extensions}
        return [e for e in baseline if e.oid not in replaced] + list(self.extensions)


@st.composite
def extension_plans(draw: st.DrawFn, max_size: int = 6) -> ExtensionPlan:
    """Random extension sets: distinct OIDs, then sometimes a second extension with the OID
    of one of them (an exact copy or another value), inserted anywhere."""
    oids = draw(st.lists(st.sampled_from(_OID_LIST), unique=True, max_size=max_size))
    extensions = [draw(extension(oid)) for oid in oids]
    if extensions and draw(st.integers(0, 3)) == 0:
        for _ in range(draw(st.integers(1, 2))):
            original = draw(st.sampled_from(extensions))
            copy = original if draw(st.booleans()) else draw(extension(original.oid))
            extensions.insert(draw(st.integers(0, len(extensions))), copy)
    return ExtensionPlan(draw(st.booleans()), tuple(extensions))


# --------------------------------------------------------------------------------------------
# Issuing


def baseline_extensions(
    issuer: x509.Certificate,
    holder_key: ec.EllipticCurvePrivateKey,
    email: str,
    crl_url: str | None,
    ocsp_url: str | None,
) -> list[RandomExtension]:
    """The extensions of the test PKI's agent authentication certificates, as
    ``fixtures.pki`` issues them."""
    typed = [
        *_holder_extensions(
            role="auth",
            family="agent",
            email=email,
            key=holder_key,
            crl_url=crl_url,
            ocsp_url=ocsp_url,
        ),
        (x509.SubjectKeyIdentifier.from_public_key(holder_key.public_key()), False),
        (_aki(issuer), False),
    ]
    return [
        RandomExtension(value.oid, critical, value.public_bytes(), "baseline")
        for value, critical in typed
    ]


def holder_subject(name: str, email: str) -> x509.Name:
    """A subject like the test PKI's holders'."""
    return _holder_subject(name, email, "Tribunal judiciaire d'Angers")


def _sign(key: object, data: bytes) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    raise TypeError(f"unsupported issuer key {type(key).__name__}")


def issue(
    extensions: Sequence[RandomExtension],
    *,
    issuer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate,
    subject: x509.Name,
    holder_key: ec.EllipticCurvePrivateKey,
    serial_number: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> bytes:
    """The DER of a certificate with exactly ``extensions``, in order, duplicates included,
    signed by ``issuer_key``."""
    bare = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(holder_key.public_key())
        .serial_number(serial_number)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(issuer_key, hashes.SHA256())
    )
    tbs, algorithm, _signature = children(bare.public_bytes(Encoding.DER))
    fields = children(tbs)
    if extensions:
        fields.append(tlv(0xA3, sequence(*(e.encoded() for e in extensions))))
    tbs = sequence(*fields)
    return sequence(tbs, algorithm, tlv(0x03, b"\x00" + _sign(issuer_key, tbs)))
