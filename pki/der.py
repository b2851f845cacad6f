"""What validation needs from certificates, read straight from their DER bytes.

``cryptography`` builds Python objects for every name it is asked for (tens of microseconds
for a certificate's subject, as much again for its RFC 4514 text) and re-encodes a
certificate to give back its DER. At thousands of certificates a second that is most of the
time, so the DER bytes a file held are kept and the few things validation needs are read
from them here.

Every function covers a fast subset exactly and returns None outside it, so that the caller
falls back to ``cryptography``: what comes back is what ``cryptography`` would have given.
"""

from __future__ import annotations

import binascii

from cryptography.x509.oid import NameOID

__all__ = ["name_text", "name_values", "pem_certificate_blocks", "read_name", "tbs_names"]

# --- PEM ------------------------------------------------------------------------------------

_BEGIN = b"-----BEGIN CERTIFICATE-----"
_END = b"-----END CERTIFICATE-----"
_DASHES = b"-----"


def pem_certificate_blocks(data: bytes) -> list[bytes] | None:
    """The DER of every ``CERTIFICATE`` block of PEM ``data``, in order, or None when the file
    is anything but plain certificate blocks (any other block, an unfinished block, headers,
    blank or space-indented lines, base64 that is not canonical) or holds no certificate.

    Where a list comes back, loading each DER gives the certificates
    ``x509.load_pem_x509_certificates(data)`` gives; None asks the caller to use that function.
    Text between blocks is allowed as long as it holds no run of five dashes.
    """
    # cryptography reads PEM with the ``pem`` crate: it takes text up to the first
    # "-----BEGIN " (with a matcher that misses one preceded by dashes), skips whitespace,
    # splits headers off at the first blank line and decodes the rest, whitespace removed,
    # as canonical base64. Accepting only text free of "-----" outside the blocks, and blocks
    # without blank lines, makes both readings find the same blocks and the same bytes.
    blocks: list[bytes] = []
    find = data.find
    position = 0
    while True:
        start = find(_DASHES, position)
        if start < 0:
            break
        if not data.startswith(_BEGIN, start):
            return None
        body_start = start + len(_BEGIN)
        # Looking for the whole END line skips through base64 faster than for its dashes;
        # a dash before it is not base64 and makes the decoding give up.
        stop = find(_END, body_start)
        if stop < 0:
            return None
        der = _decode_body(data[body_start:stop])
        if der is None:
            return None
        blocks.append(der)
        position = stop + len(_END)
    return blocks or None


def _decode_body(body: bytes) -> bytes | None:
    """The bytes of one block's base64 body, or None when the ``pem`` crate could read it
    differently (headers, blank lines) or would refuse it (non-canonical base64)."""
    compact = _compact_regular(body)
    if compact is None:
        lines = body.split(b"\n")
        interior = lines[1:-1]
        # A blank line inside the body ("\n\n" or "\r\n\r\n") ends the PEM headers.
        if b"" in interior or b"\r" in interior:
            return None
        compact = b"".join(lines)
        if b"\r" in compact:
            compact = compact.replace(b"\r", b"")
    try:
        der = binascii.a2b_base64(compact, strict_mode=True)
    except binascii.Error:
        return None
    # strict_mode still accepts what the base64 crate refuses: padding after a complete
    # quantum ("QUJD=") and non-zero unused bits ("QR=="). The last quantum must re-encode
    # to itself; the others are canonical by construction.
    size = len(compact)
    padding = 2 if compact.endswith(b"==") else 1 if compact.endswith(b"=") else 0
    if size % 4 or len(der) != size // 4 * 3 - padding:
        return None
    if padding and binascii.b2a_base64(der[-(3 - padding) :], newline=False) != compact[-4:]:
        return None
    return der


def _compact_regular(body: bytes) -> bytes | None:
    """The body without its newlines when it is laid out the usual way (a newline, then lines
    of one length, the last one possibly shorter, each ending with a newline), else None.

    Checking this layout costs a few slices; looking for blank lines (a two-byte pattern)
    would cost more than removing the newlines."""
    if body[:1] != b"\n" or body[-1:] != b"\n" or body[-2:] == b"\n\n":
        return None
    step = body.find(b"\n", 1)
    # A first line that is empty or ends with "\r" (CRLF) is left to the general reading.
    if step < 2 or body[step - 1] == 0x0D:
        return None
    marks = body[::step]
    if marks.count(b"\n") != len(marks):
        return None
    compact = body.replace(b"\n", b"")
    expected = len(marks) if (len(body) - 1) % step == 0 else len(marks) + 1
    if len(body) - len(compact) != expected:
        return None
    return compact


# --- DER TLV --------------------------------------------------------------------------------


def _long_length(der: bytes, at: int) -> tuple[int, int] | None:
    """(content start, content length) of a long-form DER length whose first byte is at
    ``at``; None for the indefinite form, a non-minimal length or more than 4 length bytes."""
    count = der[at] & 0x7F
    if count == 0 or count > 4:
        return None
    start = at + 1 + count
    raw = der[at + 1 : start]
    if len(raw) != count or raw[0] == 0:
        return None
    length = int.from_bytes(raw, "big")
    if length < 0x80:
        return None
    return start, length


def _element(der: bytes, at: int, end: int) -> tuple[int, int, int] | None:
    """(tag, content start, content end) of the DER element at ``at``, which must end by
    ``end``; None when it does not, or its tag is in the multi-byte form."""
    if at + 2 > end:
        return None
    tag = der[at]
    if tag & 0x1F == 0x1F:
        return None
    length = der[at + 1]
    if length < 0x80:
        start = at + 2
    else:
        long = _long_length(der, at + 1)
        if long is None:
            return None
        start, length = long
    stop = start + length
    if stop > end:
        return None
    return tag, start, stop


# TBSCertificate fields up to the subject, after the optional [0] version: serialNumber,
# signature, issuer, validity, subject.
_TBS_FIELDS = (0x02, 0x30, 0x30, 0x30, 0x30)


def tbs_names(der: bytes) -> tuple[bytes, bytes] | None:
    """The complete DER encodings (tag, length and content) of the issuer and the subject of
    the DER certificate ``der``, or None when ``der`` is not one DER SEQUENCE whose
    TBSCertificate is laid out as RFC 5280 §4.1 says up to the subject (what follows is not
    read). Never raises, whatever the bytes."""
    try:
        return _tbs_names(der)
    except IndexError:
        # A header read past the end of the bytes: truncated, hence not a certificate.
        return None


def _tbs_names(der: bytes) -> tuple[bytes, bytes] | None:
    certificate = _element(der, 0, len(der))
    if certificate is None or certificate[0] != 0x30 or certificate[2] != len(der):
        return None
    tbs = _element(der, certificate[1], certificate[2])
    if tbs is None or tbs[0] != 0x30:
        return None
    _, at, end = tbs
    if der[at] == 0xA0:
        version = _element(der, at, end)
        if version is None:
            return None
        at = version[2]
    # The five fields are read inline: a call per field would cost more than the reading.
    starts: list[int] = []
    for tag in _TBS_FIELDS:
        if der[at] != tag:
            return None
        starts.append(at)
        length = der[at + 1]
        if length < 0x80:
            at += 2 + length
        else:
            long = _long_length(der, at + 1)
            if long is None:
                return None
            at = long[0] + long[1]
        if at > end:
            return None
    return der[starts[2] : starts[3]], der[starts[4] : at]


# --- Names ----------------------------------------------------------------------------------

# Short names cryptography uses in RFC 4514 text (``x509.name._NAMEOID_TO_NAME``); any other
# attribute is written with its dotted OID. The tests check this table against cryptography's.
SHORT_NAMES = {
    NameOID.COMMON_NAME.dotted_string: "CN",
    NameOID.LOCALITY_NAME.dotted_string: "L",
    NameOID.STATE_OR_PROVINCE_NAME.dotted_string: "ST",
    NameOID.ORGANIZATION_NAME.dotted_string: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME.dotted_string: "OU",
    NameOID.COUNTRY_NAME.dotted_string: "C",
    NameOID.STREET_ADDRESS.dotted_string: "STREET",
    NameOID.DOMAIN_COMPONENT.dotted_string: "DC",
    NameOID.USER_ID.dotted_string: "UID",
}
# Lengths in UTF-8 bytes outside which cryptography warns when it parses the attribute
# (``x509.name._NAMEOID_LENGTH_LIMIT``): such names are left to it.
LENGTH_LIMITS = {
    NameOID.COUNTRY_NAME.dotted_string: (2, 2),
    NameOID.JURISDICTION_COUNTRY_NAME.dotted_string: (2, 2),
    NameOID.COMMON_NAME.dotted_string: (1, 64),
}
_NO_LIMIT = (0, 1 << 62)

_UTF8_STRING, _PRINTABLE_STRING, _IA5_STRING = 0x0C, 0x13, 0x16
# The PrintableString alphabet of X.680 §41.4, as rust-asn1 checks it.
_PRINTABLE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?"
# Characters ``_escape_dn_value`` escapes wherever they are; '#' and ' ' only at either end.
_ESCAPED = b'\\"+,;<>\x00'
# A value starting with one of these, or ending with a space, is escaped too.
_ESCAPED_ENDS = (b"#", b" ")

# OID content bytes -> ("NAME=" prefix, smallest length, largest length, dotted OID).
_ATTRIBUTE_TYPES: dict[bytes, tuple[str, int, int, str]] = {}
_ATTRIBUTE_TYPES_MAX = 1024


def _attribute_type(content: bytes) -> tuple[str, int, int, str] | None:
    """The RFC 4514 prefix and length limits of the attribute type whose OID has DER content
    ``content``; None when that OID is not minimally encoded or has an arc of 56 bits or more
    (cryptography takes larger ones, but they have no place in a certificate name)."""
    if not content or content[-1] & 0x80:
        return None
    arcs: list[int] = []
    value = 0
    width = 0
    for byte in content:
        if width == 0 and byte == 0x80:
            return None
        value = (value << 7) | (byte & 0x7F)
        if byte & 0x80:
            width += 1
            if width >= 8:
                return None
            continue
        arcs.append(value)
        value = 0
        width = 0
    first = arcs[0]
    head = f"0.{first}" if first < 40 else f"1.{first - 40}" if first < 80 else f"2.{first - 80}"
    dotted = ".".join([head, *map(str, arcs[1:])])
    low, high = LENGTH_LIMITS.get(dotted, _NO_LIMIT)
    result = (SHORT_NAMES.get(dotted, dotted) + "=", low, high, dotted)
    if len(_ATTRIBUTE_TYPES) < _ATTRIBUTE_TYPES_MAX:
        _ATTRIBUTE_TYPES[content] = result
    return result


def escape_value(value: str) -> str:
    """``value`` escaped for RFC 4514 text exactly as cryptography's ``_escape_dn_value``
    escapes a string."""
    if not value:
        return ""
    value = value.replace("\\", "\\\\")
    value = value.replace('"', '\\"')
    value = value.replace("+", "\\+")
    value = value.replace(",", "\\,")
    value = value.replace(";", "\\;")
    value = value.replace("<", "\\<")
    value = value.replace(">", "\\>")
    value = value.replace("\0", "\\00")
    if value[0] == "#" or (value[0] == " " and len(value) > 1):
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value


def name_text(name_der: bytes) -> str | None:
    """Exactly what ``x509.Name.rfc4514_string()`` returns for the DER Name ``name_der``
    (as ``tbs_names`` gives it), or None when the name is outside the subset read here:
    values other than UTF8String, PrintableString and ASCII IA5String, an empty or
    non-canonical RDN, an RDN holding one attribute type twice, a name cryptography would
    refuse or warn about (a country not 2 characters long, a common name not 1 to 64 bytes
    long), or anything unexpected in the encoding. Never raises, whatever the bytes."""
    try:
        return _read_name(name_der, None)
    except IndexError:
        # A header read past the end of the bytes: truncated, hence not a Name.
        return None


def name_values(name_der: bytes) -> dict[str, str] | None:
    """The value of each attribute type of the DER Name ``name_der``, by dotted OID: for a
    type present more than once, its first value in DER order (what
    ``name.get_attributes_for_oid(oid)[0].value`` gives). None exactly when ``name_text``
    gives None. Never raises, whatever the bytes."""
    read = read_name(name_der)
    return read[1] if read is not None else None


def read_name(name_der: bytes) -> tuple[str, dict[str, str]] | None:
    """``name_text`` and ``name_values`` of ``name_der`` in one reading (a subject is
    both shown and searched for its common name and e-mail)."""
    values: dict[str, str] = {}
    try:
        text = _read_name(name_der, values)
    except IndexError:
        return None
    return (text, values) if text is not None else None


def _read_name(der: bytes, values: dict[str, str] | None) -> str | None:
    """``name_text`` of ``der``, recording attribute values in ``values`` when given."""
    end = len(der)
    if end < 2 or der[0] != 0x30:
        return None
    length = der[1]
    if length < 0x80:
        at = 2
    else:
        long = _long_length(der, 1)
        if long is None:
            return None
        at, length = long
    if at + length != end:
        return None
    types = _ATTRIBUTE_TYPES
    rdns: list[str] = []
    attributes: tuple[tuple[bytes, int, bytes], ...] | list[tuple[bytes, int, bytes]]
    while at < end:
        # Nearly every RDN holds one attribute with short lengths throughout:
        # SET(31 n+2) SEQUENCE(30 n) OID(06 k ...) value(tag m ...), with n = k + m + 4.
        if (
            der[at] == 0x31
            and der[at + 2] == 0x30
            and der[at + 4] == 0x06
            and (length := der[at + 3]) < 0x7E
            and der[at + 1] == length + 2
            and at + 4 + length <= end
        ):
            oid_end = at + 6 + der[at + 5]
            if oid_end + 2 > at + 4 + length or length != oid_end - at + der[oid_end + 1] - 2:
                return None
            attributes = (
                (der[at + 6 : oid_end], der[oid_end], der[oid_end + 2 : at + 4 + length]),
            )
            at += 4 + length
        else:
            rdn = _split_rdn(der, at, end)
            if rdn is None:
                return None
            attributes, at = rdn
        texts: list[str] = []
        for oid, tag, raw in attributes:
            attribute_type = types.get(oid) or _attribute_type(oid)
            if attribute_type is None:
                return None
            prefix, low, high, dotted = attribute_type
            if not low <= len(raw) <= high:
                return None
            if tag == _UTF8_STRING:
                try:
                    value = raw.decode()
                except UnicodeDecodeError:
                    return None
            elif tag == _PRINTABLE_STRING:
                if raw.translate(None, _PRINTABLE):
                    return None
                value = raw.decode("ascii")
            elif tag == _IA5_STRING:
                if not raw.isascii():
                    return None
                value = raw.decode("ascii")
            else:
                return None
            # The escaped characters are ASCII, so the encoded value tells.
            if (
                raw.translate(None, _ESCAPED) == raw
                and raw[:1] not in _ESCAPED_ENDS
                and raw[-1:] != b" "
            ):
                texts.append(prefix + value)
            else:
                texts.append(prefix + escape_value(value))
            if values is not None:
                values.setdefault(dotted, value)
        rdns.append(texts[0] if len(texts) == 1 else "+".join(texts))
    rdns.reverse()
    return ",".join(rdns)


def _split_rdn(der: bytes, at: int, end: int) -> tuple[list[tuple[bytes, int, bytes]], int] | None:
    """The (OID content, value tag, value content) of each attribute of the RDN at ``at``
    and where the RDN ends, read with any DER length; None when it is not a non-empty SET
    OF AttributeTypeAndValue in DER order, each type once."""
    rdn = _element(der, at, end)
    if rdn is None or rdn[0] != 0x31 or rdn[1] == rdn[2]:
        return None
    _, at, set_end = rdn
    attributes: list[tuple[bytes, int, bytes]] = []
    previous = b""
    while at < set_end:
        attribute = _element(der, at, set_end)
        if attribute is None or attribute[0] != 0x30:
            return None
        # cryptography refuses a SET OF out of DER order and an RDN holding one attribute
        # twice; holding each type once is stricter and as simple.
        encoding = der[at : attribute[2]]
        if encoding <= previous:
            return None
        previous = encoding
        oid = _element(der, attribute[1], attribute[2])
        if oid is None or oid[0] != 0x06:
            return None
        value = _element(der, oid[2], attribute[2])
        if value is None or value[2] != attribute[2]:
            return None
        attributes.append((der[oid[1] : oid[2]], value[0], der[value[1] : value[2]]))
        at = attribute[2]
    if len({oid for oid, _, _ in attributes}) != len(attributes):
        return None
    return attributes, set_end
