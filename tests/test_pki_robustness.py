"""Property tests: truncated, mutated and random DER and PEM given to every parsing entry
point and to ``cartes valider`` give only the project's own errors, never a traceback."""

from __future__ import annotations

import base64
import contextlib
import io
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cartes.cli.main import main
from pki import PkiError, describe, load_certificates, load_crl

PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def samples(test_pki):
    holder = test_pki.holders[0].authentication.certificate
    der = holder.public_bytes(Encoding.DER)
    return {
        "der": der,
        "pem": holder.public_bytes(Encoding.PEM),
        "crl": test_pki.crls["agent"].public_bytes(Encoding.DER),
    }


def parse_everything(data: bytes) -> None:
    """Every entry point; only PkiError may come out."""
    with contextlib.suppress(PkiError):
        for certificate in load_certificates(data):
            describe(certificate)
    with contextlib.suppress(PkiError):
        load_crl(data)


def mutate(data: bytes, position: int, length: int, insert: bytes) -> bytes:
    position %= max(len(data), 1)
    return data[:position] + insert + data[position + length :]


@PROPERTY
@given(data=st.binary(max_size=3000))
def test_random_bytes(data):
    parse_everything(data)
    parse_everything(b"-----BEGIN CERTIFICATE-----\n" + data + b"\n-----END CERTIFICATE-----\n")


@PROPERTY
@given(
    which=st.sampled_from(["der", "pem", "crl"]),
    position=st.integers(min_value=0, max_value=4000),
    length=st.integers(min_value=0, max_value=64),
    insert=st.binary(max_size=16),
)
def test_mutated_certificates_and_crls(samples, which, position, length, insert):
    parse_everything(mutate(samples[which], position, length, insert))


@PROPERTY
@given(cut=st.integers(min_value=0, max_value=2000))
def test_truncated(samples, cut):
    parse_everything(samples["der"][:cut])
    parse_everything(samples["pem"][:cut])
    parse_everything(samples["crl"][:cut])


@PROPERTY
@given(
    position=st.integers(min_value=0, max_value=4000),
    insert=st.binary(min_size=1, max_size=8),
)
def test_mutated_base64_inside_pem(samples, position, insert):
    body = base64.b64decode(b"".join(samples["pem"].splitlines()[1:-1]))
    damaged = mutate(body, position, 1, insert)
    pem = (
        b"-----BEGIN CERTIFICATE-----\n"
        + base64.encodebytes(damaged)
        + b"-----END CERTIFICATE-----\n"
    )
    parse_everything(pem)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    position=st.integers(min_value=0, max_value=4000),
    length=st.integers(min_value=0, max_value=32),
    insert=st.binary(max_size=8),
)
def test_cli_never_shows_a_traceback(samples, test_pki, tmp_path_factory, position, length, insert):
    folder = tmp_path_factory.mktemp("hasard")
    damaged = folder / "carte.der"
    damaged.write_bytes(mutate(samples["der"], position, length, insert))
    root = folder / "racine.pem"
    root.write_bytes(test_pki.families["agent"].root.certificate.public_bytes(Encoding.PEM))
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["valider", str(damaged), "--ancre", str(root), "--format", "jsonl"], out=out, err=err
    )
    assert code in (0, 1, 2, 3)
    assert "Traceback" not in err.getvalue()


def test_unknown_x509_version_is_an_unreadable_certificate(samples):
    """Found by the property above: a version byte of 1 made cryptography raise
    InvalidVersion, which is not a ValueError."""
    body = bytearray(base64.b64decode(b"".join(samples["pem"].splitlines()[1:-1])))
    version = body.index(b"\xa0\x03\x02\x01\x02") + 4
    body[version] = 0x05
    pem = (
        b"-----BEGIN CERTIFICATE-----\n"
        + base64.encodebytes(bytes(body))
        + b"-----END CERTIFICATE-----\n"
    )
    with pytest.raises(PkiError):
        load_certificates(pem)
    with pytest.raises(PkiError):
        load_certificates(bytes(body))


# The certificate the property above found: a test holder certificate whose issuer has
# four bytes replaced (position 76, by 00 00 00 80), so that one attribute's OID is invalid.
BROKEN_ISSUER = base64.b64decode(
    "MIIE1jCCA76gAwIBAgIUJplRSgMVOm6Zrww30GoIfHi+11cwDQYJKoZIhvcNAQELBQAwWjELMAkGA1UEBhMCRlIx"
    "KDAmBgNVBAoMHwAAAIBzdMOocmUgZGUgbGEgSnVzdGljZSAoVEVTVCkxITAfBgNVBAMMGEFDIEFnZW50cyBKdXN0"
    "aWNlIChURVNUKTAeFw0yNTExMjYwOTMwMDBaFw0yODExMjYwOTMwMDBaMIG3MQswCQYDVQQGEwJGUjElMCMGA1UE"
    "CgwcVHJpYnVuYWwganVkaWNpYWlyZSBkJ0FuZ2VyczEaMBgGA1UEAwwRSMOpbMOobmUgTGVmw6h2cmUxETAPBgNV"
    "BCoMCEjDqWzDqG5lMREwDwYDVQQEDAhMZWbDqHZyZTETMBEGA1UEBRMKQUdULTAwMDAwMTEqMCgGCSqGSIb3DQEJ"
    "ARYbaGVsZW5lLmxlZmV2cmVAanVzdGljZS50ZXN0MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAt7no"
    "YrhE8h/aBFn4URZzcAODzUsLNO9UhyYT+vCWMJy7/YfHWbRnofFLJ5CYjk/KUIjTzSI02mXg3gWZ499flR64gmNb"
    "nk3wfKQvyxuL4QRjp8IlxCW4y5S1r2hyGX3gxBnG741/EdJEfGLvAqaA6nBZutNyyno/mif4icvnykqNAjenBPWs"
    "7mGx0ktD7Sd1Lk50pHF+hsiRfyvRlKDVgqcfoHxFhk2CvVtQJ8NjqzQGchLnBQajHtgcAkK7juYbzonTjTmmMalW"
    "2RlgwW6BiCMNHwaNa/w9gvIh6XlXkr8vDmxNe4I5bIAKogDhii3xXCbHPrFfytu+DTVd2cG4TQIDAQABo4IBNDCC"
    "ATAwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCBaAwHQYDVR0lBBYwFAYIKwYBBQUHAwIGCCsGAQUFBwMEMBMG"
    "A1UdIAQMMAowCAYGiDeBegEBMCYGA1UdEQQfMB2BG2hlbGVuZS5sZWZldnJlQGp1c3RpY2UudGVzdDA1BgNVHR8E"
    "LjAsMCqgKKAmhiRodHRwOi8vMTI3LjAuMC4xOjM1NjIzL2NybC9hZ2VudC5jcmwwPQYIKwYBBQUHAQEEMTAvMC0G"
    "CCsGAQUFBzABhiFodHRwOi8vMTI3LjAuMC4xOjM1NjIzL29jc3AvYWdlbnQwHQYDVR0OBBYEFKEtfonFtP3LluD3"
    "npqNFMCCbQlZMB8GA1UdIwQYMBaAFGhnrNsS6P6QRVjseCwYib8grUKvMA0GCSqGSIb3DQEBCwUAA4IBAQADXMSj"
    "Ui2MDVIHK/IBzKjem/yIXj8r4LLjG3bQwtAXgX5LzWiJllHbu5BSH0TdV4lsfLyc+eYh/mQL/i1MZ931Hggu16SV"
    "IPDxSTH+xY7iR+E9sosjiaamTHn0korAQCQiRtzq+MXljMOp981PkkidFsWYKd3VdXltcwElPUEfOtn7nzD9HCOn"
    "JL9CU9rTj3tt3ulOsAQ6fYQzOe01/ZP0J36qaeeyaZ+FcK1nTa0eNRa2CY/tUDEg3JTau9x01limyxJuv6+P8EOQ"
    "l1Y7mCiLwr5srkbVmLV9R+ZS6diCy7T17fjds8sbEAquru2Af6p3/kET+F7H02i41e83h/se"
)


def test_unreadable_issuer_name_is_an_unreadable_certificate(test_pki, tmp_path):
    """Found by the property above: names are parsed lazily, so a certificate whose issuer
    name is not valid DER loaded fine and crashed the validation later."""
    with pytest.raises(PkiError):
        load_certificates(BROKEN_ISSUER)
    path = tmp_path / "carte.der"
    path.write_bytes(BROKEN_ISSUER)
    root = tmp_path / "racine.pem"
    root.write_bytes(test_pki.families["agent"].root.certificate.public_bytes(Encoding.PEM))
    out, err = io.StringIO(), io.StringIO()
    code = main(["valider", str(path), "--ancre", str(root), "--format", "json"], out=out, err=err)
    assert code == 3
    assert "illisible" in out.getvalue()
    # In a bundle, only that certificate is unreadable: the others before and after it
    # are validated, in order.
    holder = test_pki.holders[0].authentication.certificate
    broken_pem = x509.load_der_x509_certificate(BROKEN_ISSUER).public_bytes(Encoding.PEM)
    bundle = tmp_path / "lot.pem"
    bundle.write_bytes(
        holder.public_bytes(Encoding.PEM) + broken_pem + holder.public_bytes(Encoding.PEM)
    )
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["valider", str(bundle), "--ancre", str(root), "--format", "jsonl"], out=out, err=err
    )
    assert code == 3, err.getvalue()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["statut"] for line in lines][1] == "illisible"
    assert lines[1]["motifs"][0]["code"] == "nom_illisible"
    assert lines[0]["certificat"] == lines[2]["certificat"] is not None


# Also found by the property above: a test holder certificate whose extensions have eight
# bytes replaced by zeros (position 2035): they load, then fail to parse on first use.
BROKEN_EXTENSIONS = base64.b64decode(
    "MIIE1jCCA76gAwIBAgIUTDH7Gtih69RXYFuv6CcD4fkhQKIwDQYJKoZIhvcNAQELBQAwWjELMAkGA1UEBhMCRlIx"
    "KDAmBgNVBAoMH01pbmlzdMOocmUgZGUgbGEgSnVzdGljZSAoVEVTVCkxITAfBgNVBAMMGEFDIEFnZW50cyBKdXN0"
    "aWNlIChURVNUKTAeFw0yNTExMjYwOTMwMDBaFw0yODExMjYwOTMwMDBaMIG3MQswCQYDVQQGEwJGUjElMCMGA1UE"
    "CgwcVHJpYnVuYWwganVkaWNpYWlyZSBkJ0FuZ2VyczEaMBgGA1UEAwwRSMOpbMOobmUgTGVmw6h2cmUxETAPBgNV"
    "BCoMCEjDqWzDqG5lMREwDwYDVQQEDAhMZWbDqHZyZTETMBEGA1UEBRMKQUdULTAwMDAwMTEqMCgGCSqGSIb3DQEJ"
    "ARYbaGVsZW5lLmxlZmV2cmVAanVzdGljZS50ZXN0MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAt7no"
    "YrhE8h/aBFn4URZzcAODzUsLNO9UhyYT+vCWMJy7/YfHWbRnofFLJ5CYjk/KUIjTzSI02mXg3gWZ499flR64gmNb"
    "nk3wfKQvyxuL4QRjp8IlxCW4y5S1r2hyGX3gxBnG741/EdJEfGLvAqaA6nBZutNyyno/mif4icvnykqNAjenBPWs"
    "7mGx0ktD7Sd1Lk50pHF+hsiRfyvRlKDVgqcfoHxFhk2CvVtQJ8NjqzQGchLnBQajHtgcAkK7juYbzonTjTmmMalW"
    "2RlgwW6BiCMNHwaNa/w9gvIh6XlXkr8vDmxNe4I5bIAKogDhii3xXCbHPrFfytu+DTVd2cG4TQIDAQABo4IBNDCC"
    "ATAwDAYDVR0TAQH/BAIwADAOBgNVHQ8BAf8EBAMCBaAwHQYDVR0lBBYwFAYIKwYBBQUHAwIGCCsGAQUFBwMEMBMG"
    "A1UdIAQMMAowCAYGiDeBegEBMCYGA1UdEQQfMB2BG2hlbGVuZS5sZWZldnJlQGp1c3RpY2UudGVzdDA1BgNVHR8E"
    "LgAAAAAAAAAAhiRodHRwOi8vMTI3LjAuMC4xOjM1ODQ3L2NybC9hZ2VudC5jcmwwPQYIKwYBBQUHAQEEMTAvMC0G"
    "CCsGAQUFBzABhiFodHRwOi8vMTI3LjAuMC4xOjM1ODQ3L29jc3AvYWdlbnQwHQYDVR0OBBYEFKEtfonFtP3LluD3"
    "npqNFMCCbQlZMB8GA1UdIwQYMBaAFGhnrNsS6P6QRVjseCwYib8grUKvMA0GCSqGSIb3DQEBCwUAA4IBAQBEv7qN"
    "IS031/kDX9QHrWaioNskUOCwi23gNyEeQcvMZiyCjSzYGpqtMUTkcsYy8Vf350zJfsM5dHF4sbwhlW2MKfEMPFw6"
    "zDCHHCXy5x/gAti8EaU31mYtKKsngk9uPQlDnxos1j4nj8PS66pCCYe86oHFlKk0hMye5m333nRaF41jGEMD8o+f"
    "K7Dm3yfpuhz5tjQOoeXXNtbGCwBrMGXYXcj2IC/mPKglhrF4ILRz2LVPGaQaGfymOexLjyw027o1m9xu6s30CK0p"
    "jiSB5O1ncIU0Zk1PRlHxchs4Ha4jxmZ0vxHNb0SL+HcyMCCd9HoOFp69FkwtSDJPY44fVXie"
)


def test_extensions_that_do_not_parse_make_an_invalid_certificate(test_pki, tmp_path):
    """Readable, and invalid (issue 10): not « illisible », which says the input could not
    be read at all. The CRL distribution points are the extension at fault."""
    path = tmp_path / "carte.der"
    path.write_bytes(BROKEN_EXTENSIONS)
    root = tmp_path / "racine.pem"
    root.write_bytes(test_pki.families["agent"].root.certificate.public_bytes(Encoding.PEM))
    out, err = io.StringIO(), io.StringIO()
    code = main(["valider", str(path), "--ancre", str(root), "--format", "json"], out=out, err=err)
    assert code == 1, err.getvalue()
    document = json.loads(out.getvalue())
    assert document["statut"] == "invalide"
    assert document["motifs"][0]["defaut"] == "extension_illisible"
    assert "cRLDistributionPoints (2.5.29.31) est mal formée" in document["motifs"][0]["message"]
    assert document["certificat"]["sujet"].endswith("C=FR")
