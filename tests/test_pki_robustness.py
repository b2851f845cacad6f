"""Property tests: truncated, mutated and random DER and PEM given to every parsing entry
point and to ``cartes valider`` give only the project's own errors, never a traceback."""

from __future__ import annotations

import base64
import contextlib
import io

import pytest
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
