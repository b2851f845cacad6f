"""Property tests: end-entity certificates with random extension sets (every extension
cryptography knows and a few it does not, well formed or not, sometimes twice) never make
``describe``, the validator or ``cartes valider`` fail. cryptography parses extensions on
first use, so such a certificate loads; an extension it cannot read, or one that appears
twice, makes the certificate non-conforming (RFC 5280 §4.2), not unreadable."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cartes.cli.main import main
from pki import (
    INVALID,
    UNDETERMINED,
    VALID,
    CrlStore,
    TrustStore,
    Validator,
    describe,
    load_certificates,
)
from tests import x509_strategies as xs
from tests.pki_support import KINDS, PKI_NOW

PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# ``cartes valider`` reads files and builds its validator for each example: fewer of them.
CLI_PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
STATUSES = {VALID, INVALID, UNDETERMINED}
EXTENSION_DEFECTS = {"extension_dupliquee", "extension_illisible"}
EMAIL = "helene.aleatoire@justice.test"
SERIALS = st.integers(min_value=1, max_value=2**159 - 1)

# Some values cryptography reads today with a deprecation warning (UTF-8 in a VisibleString,
# a negative serial number in an authority key identifier); when they become errors the
# properties below will say whether they are handled.
pytestmark = pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")


@pytest.fixture(scope="module")
def holder_key():
    # EC: a key per module, and each certificate costs two RSA signatures only.
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def issue(test_pki, holder_key):
    """``issue(plan, serial)``: the DER of an agent end-entity certificate with the plan's
    extensions, signed by the agent issuing CA."""
    family = test_pki.families["agent"]
    baseline = xs.baseline_extensions(
        family.issuing.certificate, holder_key, EMAIL, family.crl_url, family.ocsp_url
    )

    def make(plan: xs.ExtensionPlan, serial: int = 0x1D) -> bytes:
        return xs.issue(
            plan.over(baseline),
            issuer_key=family.issuing.key,
            issuer=family.issuing.certificate,
            subject=xs.holder_subject("Hélène Aléatoire", EMAIL),
            holder_key=holder_key,
            serial_number=serial,
            not_before=PKI_NOW - dt.timedelta(days=365),
            not_after=PKI_NOW + dt.timedelta(days=730),
        )

    return make


@pytest.fixture(scope="module")
def validator(test_pki):
    families = test_pki.families
    trust = TrustStore(
        {KINDS[name]: (family.root.certificate,) for name, family in families.items()},
        tuple(family.issuing.certificate for family in families.values()),
    )
    crls = CrlStore()
    for name in ("agent", "agent_racine"):
        crls.add(test_pki.crls[name], name)
    return Validator(trust, crls)


@pytest.fixture(scope="module")
def cli_files(test_pki, tmp_path_factory):
    folder = tmp_path_factory.mktemp("extensions")
    family = test_pki.families["agent"]
    files = {
        "racine": family.root.certificate.public_bytes(Encoding.PEM),
        "emettrice": family.issuing.certificate.public_bytes(Encoding.PEM),
        "lcr": test_pki.crls["agent"].public_bytes(Encoding.DER),
        "lcr_racine": test_pki.crls["agent_racine"].public_bytes(Encoding.DER),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def load(der: bytes) -> x509.Certificate:
    # A fresh object each time: cryptography caches what it has parsed.
    return x509.load_der_x509_certificate(der)


def extension_failure(der: bytes) -> Exception | None:
    """What cryptography raises when it reads all the extensions, if anything.

    Not only ValueError: DuplicateExtension, UnsupportedGeneralNameType (an x400Address),
    TypeError (an empty TLS feature list, an address where name constraints want a network)
    and KeyError (a TLS feature it does not know) were all seen.
    """
    try:
        load(der).extensions  # noqa: B018  (parsing is the point)
    except Exception as exc:
        return exc
    return None


def defects(result) -> list[str]:
    return [
        reason.params.get("defaut")
        for reason in result.reasons
        if reason.code == "certificat_non_conforme"
    ]


def run_cli(cli_files, der: bytes) -> tuple[int, str, str]:
    certificate = cli_files / "carte.der"
    certificate.write_bytes(der)
    out, err = io.StringIO(), io.StringIO()
    argv = ["valider", str(certificate), "--ancre", str(cli_files / "racine")]
    argv += ["--intermediaire", str(cli_files / "emettrice")]
    argv += ["--crl", str(cli_files / "lcr"), "--crl", str(cli_files / "lcr_racine")]
    argv += ["--date", PKI_NOW.isoformat(), "--format", "json"]
    # An exception out of main() is what ``cartes`` shows as « Erreur inattendue ».
    code = main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def check_cli_report(code: int, out: str, err: str) -> dict:
    assert code in (0, 1, 2), (code, out, err)
    assert "Erreur inattendue" not in err
    report = json.loads(out)
    assert isinstance(report, dict), report
    assert report["statut"] in STATUSES
    assert report["certificat"] is not None
    for reason in report["motifs"]:
        assert reason["code"]
        # "Erreur (code)." is what the messages say of a code they do not know.
        assert not reason["message"].startswith("Erreur ("), reason
    assert code == {VALID: 0, INVALID: 1, UNDETERMINED: 2}[report["statut"]]
    return report


# --------------------------------------------------------------------------------------------
# Properties


@PROPERTY
@given(plan=xs.extension_plans(), serial=SERIALS)
def test_describe_and_validate_never_raise(issue, validator, plan, serial):
    der = issue(plan, serial)
    describe(load(der))
    result = validator.validate(load(der), PKI_NOW)
    assert result.status in STATUSES
    result.info  # noqa: B018  (what ``cartes valider`` shows of it)


@PROPERTY
@given(plan=xs.extension_plans(), serial=SERIALS)
def test_unreadable_extensions_make_a_non_conforming_certificate(issue, validator, plan, serial):
    der = issue(plan, serial)
    failure = extension_failure(der)
    result = validator.validate(load(der), PKI_NOW)
    event(f"extensions: {type(failure).__name__ if failure else 'lisibles'}")
    event(f"statut: {result.status}")
    if failure is None:
        return
    assert result.status == INVALID, (failure, result.reasons)
    assert EXTENSION_DEFECTS & set(defects(result)), (failure, result.reasons)


@CLI_PROPERTY
@given(plan=xs.extension_plans(), serial=SERIALS)
def test_cartes_valider_reports_every_loadable_certificate(issue, cli_files, plan, serial):
    check_cli_report(*run_cli(cli_files, issue(plan, serial)))


# --------------------------------------------------------------------------------------------
# Regressions: the issue's two certificates, a malformed value of each extension the
# validator or the description reads, and what the properties above found.

# NULL where a SEQUENCE (a BIT STRING for keyUsage) is expected.
MALFORMED = b"\x05\x00"
SAN = x509.SubjectAlternativeName([x509.RFC822Name(EMAIL)]).public_bytes()


def _one(
    oid: x509.ObjectIdentifier, value: bytes, *, critical: bool = False, twice: bool = False
) -> xs.ExtensionPlan:
    """The usual extensions, with ``oid`` replaced by ``value`` (twice if asked)."""
    extension = xs.RandomExtension(oid, critical, value, "regression")
    return xs.ExtensionPlan(True, (extension, extension) if twice else (extension,))


REGRESSIONS = {
    "san_twice": (_one(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, SAN, twice=True), "dupliquee"),
    "eku_empty": (_one(ExtensionOID.EXTENDED_KEY_USAGE, b"\x30\x00"), "illisible"),
    **{
        f"{name.lower()}_malformed": (_one(getattr(ExtensionOID, name), MALFORMED), "illisible")
        for name in (
            "KEY_USAGE",
            "BASIC_CONSTRAINTS",
            "SUBJECT_ALTERNATIVE_NAME",
            "CRL_DISTRIBUTION_POINTS",
            "AUTHORITY_INFORMATION_ACCESS",
            "CERTIFICATE_POLICIES",
            "NAME_CONSTRAINTS",
            "POLICY_CONSTRAINTS",
        )
    },
    # Found by the properties and the probing they led to. cryptography's chain builder
    # raised UnsupportedGeneralNameType or ValueError (not VerificationError) for a SAN
    # naming an x400Address or an ediPartyName, an IP address of three bytes, a directory
    # name with an empty RDN; reading the extensions raised TypeError for an empty TLS
    # feature list or an address where name constraints want a network, and KeyError for a
    # TLS feature it does not know.
    "san_x400_address": (
        _one(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, xs.UNSUPPORTED_GENERAL_NAMES[0]),
        "illisible",
    ),
    "san_edi_party_name": (
        _one(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, xs.UNSUPPORTED_GENERAL_NAMES[1]),
        "illisible",
    ),
    "tls_feature_empty": (_one(ExtensionOID.TLS_FEATURE, b"\x30\x00"), "illisible"),
    "tls_feature_unknown": (
        _one(ExtensionOID.TLS_FEATURE, xs.sequence(xs.tlv(0x02, b"\x07"))),
        "illisible",
    ),
    "name_constraints_address_not_network": (
        _one(
            ExtensionOID.NAME_CONSTRAINTS,
            xs.sequence(xs.tlv(0xA0, xs.sequence(xs.tlv(0x87, b"\x0a\x00\x00\x01")))),
            critical=True,
        ),
        "illisible",
    ),
    "san_ip_address_of_three_bytes": (
        _one(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, xs.sequence(xs.tlv(0x87, b"\x0a\x00\x01"))),
        "illisible",
    ),
    "san_directory_name_with_empty_rdn": (
        _one(
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
            xs.sequence(xs.tlv(0xA4, xs.sequence(xs.tlv(0x31, b"")))),
        ),
        "illisible",
    ),
}


@pytest.mark.parametrize("case", sorted(REGRESSIONS))
def test_regression_is_a_non_conforming_certificate(issue, validator, cli_files, case):
    plan, defect = REGRESSIONS[case]
    (oid,) = {extension.oid for extension in plan.extensions}
    der = issue(plan)
    assert extension_failure(der) is not None, "cryptography reads it: not a regression case"

    assert describe(load(der)).holder_name == "Hélène Aléatoire"
    result = validator.validate(load(der), PKI_NOW)
    assert result.status == INVALID
    reasons = [r for r in result.reasons if r.code == "certificat_non_conforme"]
    assert f"extension_{defect}" in [r.params.get("defaut") for r in reasons], result.reasons
    for reason in reasons:
        if reason.params.get("defaut") == f"extension_{defect}" and "extension" in reason.params:
            assert reason.params["extension"] == oid.dotted_string

    report = check_cli_report(*run_cli(cli_files, der))
    assert report["statut"] == INVALID
    assert "certificat_non_conforme" in [reason["code"] for reason in report["motifs"]]


def test_baseline_certificate_is_valid(issue, validator, cli_files):
    """The certificate the regressions start from is valid: their one defect is what makes
    them invalid."""
    der = issue(xs.ExtensionPlan(True, ()))
    assert extension_failure(der) is None
    result = validator.validate(load(der), PKI_NOW)
    assert result.status == VALID, result.reasons
    report = check_cli_report(*run_cli(cli_files, der))
    assert report["statut"] == VALID


@pytest.mark.parametrize("marker", [b"-----BEGIN CERTIFICATE-----", b"-----BEGIN PKCS7-----"])
def test_der_certificate_quoting_a_pem_marker_is_read_as_der(issue, cli_files, marker):
    """Found by the CLI property: a PEM marker anywhere in a DER certificate (here in a
    Netscape comment) made it be read as PEM, and refused as unreadable."""
    comment = xs.RandomExtension(
        x509.ObjectIdentifier("2.16.840.1.113730.1.13"),
        False,
        xs.tlv(0x16, b"voir " + marker),
        "regression",
    )
    der = issue(xs.ExtensionPlan(True, (comment,)))
    assert load_certificates(der) == [load(der)]
    report = check_cli_report(*run_cli(cli_files, der))
    assert report["statut"] == VALID
