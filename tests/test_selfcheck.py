"""A holder's own certificate: what the inventory knows of its key (``inventaire.selfcheck``),
the next step, and the report the status page renders (``cartes.selfcheck``), on SQLite and
PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from cartes.selfcheck import UntrustedCertificate, key_report
from cartes.settings import Settings
from cartes.trust import validator_from_settings
from fixtures.pki import write_test_pki
from inventaire import db, operators, requests
from inventaire.enums import CertificateRole, CredentialKind, CredentialState
from inventaire.models import Certificate, Credential, Holder
from inventaire.plan import Replacement
from inventaire.selfcheck import KnownKey, Step, advise, known_key
from pki import UnreadableCertificate, describe
from tests.conftest import NOW
from tests.factories import add_credential
from tests.inventory_support import TODAY, read

S = CredentialState


@pytest.fixture(scope="module")
def pki_files(test_pki, tmp_path_factory) -> dict[str, Path]:
    return write_test_pki(test_pki, tmp_path_factory.mktemp("selfcheck-pki"))


@pytest.fixture
def settings(pki_files, tmp_path) -> Settings:
    return Settings(
        trust={
            "rpva_key": [pki_files["avocat-racine.pem"]],
            "agent_card": [pki_files["agent-racine.pem"]],
            "intermediates": [pki_files["avocat-emettrice.pem"], pki_files["agent-emettrice.pem"]],
            "crls": [pki_files[f"{name}.crl"] for name in ("avocat", "avocat_racine")],
            "crl_cache_dir": tmp_path / "lcr",
        }
    )


def store_certificate(engine, credential_id: int, certificate, **changes: str) -> None:
    """Record ``certificate`` on the credential as a desk scan would (``changes``: columns
    stored otherwise, to reach the match by serial number)."""
    info = describe(certificate)
    values = {
        "fingerprint_sha256": info.fingerprint_sha256,
        "issuer": info.issuer,
        "serial_number": info.serial_number,
    }
    values.update(changes)
    with db.write_session(engine) as session:
        session.add(
            Certificate(
                credential_id=credential_id,
                der=b"der",
                subject=info.subject,
                not_before=info.not_before,
                not_after=info.not_after,
                role=CertificateRole.AUTHENTICATION,
                **values,
            )
        )


def lookup(engine, certificate, *, lead_days: int = 45) -> KnownKey | None:
    info = describe(certificate)
    with read(engine) as connection:
        return known_key(
            connection,
            fingerprint_sha256=info.fingerprint_sha256,
            issuer=info.issuer,
            serial_number=info.serial_number,
            today=TODAY,
            lead_days=lead_days,
        )


def order_replacement(engine, credential_id: int, *, on: dt.datetime = NOW) -> int:
    with db.write_session(engine) as session:
        admin = operators.find(session, "admin")
        assert admin is not None
        old = session.get(Credential, credential_id)
        assert old is not None
        holder = session.get(Holder, old.holder_id)
        assert holder is not None
        request = requests.create_request(
            session,
            holder_email=holder.email,
            kind=CredentialKind.RPVA_KEY,
            replaces_id=credential_id,
            operator=admin,
            now=on,
        )
        assert request.id is not None
        return request.id


def set_state(engine, credential_id: int, state: CredentialState, **dates: dt.date) -> None:
    with db.write_session(engine) as session:
        credential = session.get(Credential, credential_id)
        assert credential is not None
        credential.state = state
        for name, value in dates.items():
            setattr(credential, name, value)
        session.add(credential)


# --- the inventory's side ------------------------------------------------------------------


def test_key_found_by_fingerprint(engine, test_pki):
    certificate = test_pki.holders_of("avocat")[0].authentication.certificate
    credential_id = add_credential(engine, NOW, expires_on=dt.date(2027, 3, 1))
    store_certificate(engine, credential_id, certificate)
    known = lookup(engine, certificate)
    assert known is not None
    assert (known.credential_id, known.matched_by) == (credential_id, "empreinte")
    assert (known.kind, known.state, known.emergency) == (CredentialKind.RPVA_KEY, S.ACTIVE, False)
    assert known.holder_name.startswith("Claire Martin")
    assert known.expires_on == dt.date(2027, 3, 1)
    assert (known.replacement, known.requested_on, known.renewed) == (Replacement.NONE, None, False)


def test_key_found_by_issuer_and_serial_when_the_bytes_differ(engine, test_pki):
    certificate = test_pki.holders_of("avocat")[0].authentication.certificate
    credential_id = add_credential(engine, NOW)
    store_certificate(engine, credential_id, certificate, fingerprint_sha256="ab" * 32)
    known = lookup(engine, certificate)
    assert known is not None
    assert (known.credential_id, known.matched_by) == (credential_id, "numero_serie")


def test_same_serial_under_another_issuer_is_another_key(engine, test_pki):
    certificate = test_pki.holders_of("avocat")[0].authentication.certificate
    credential_id = add_credential(engine, NOW)
    store_certificate(
        engine, credential_id, certificate, fingerprint_sha256="cd" * 32, issuer="CN=Autre AC"
    )
    assert lookup(engine, certificate) is None


def test_replacement_ordered_then_received_then_handed_over(engine, test_pki):
    certificate = test_pki.holders_of("avocat")[0].authentication.certificate
    credential_id = add_credential(engine, NOW)
    store_certificate(engine, credential_id, certificate)
    request_id = order_replacement(engine, credential_id)

    known = lookup(engine, certificate)
    assert known is not None
    assert (known.replacement, known.requested_on) == (Replacement.REQUESTED, TODAY)
    assert known.renewed is False

    set_state(engine, request_id, S.RECEIVED, received_on=TODAY)
    known = lookup(engine, certificate)
    assert known is not None
    assert (known.replacement, known.received_on) == (Replacement.RECEIVED, TODAY)

    set_state(engine, request_id, S.ACTIVE, handed_over_on=TODAY)
    known = lookup(engine, certificate)
    assert known is not None
    assert (known.replacement, known.renewed) == (Replacement.NONE, True)


def test_cancelled_replacement_counts_for_nothing(engine, test_pki):
    certificate = test_pki.holders_of("avocat")[0].authentication.certificate
    credential_id = add_credential(engine, NOW)
    store_certificate(engine, credential_id, certificate)
    request_id = order_replacement(engine, credential_id)
    set_state(engine, request_id, S.CANCELLED)
    known = lookup(engine, certificate)
    assert known is not None
    assert (known.replacement, known.renewed) == (Replacement.NONE, False)


# --- the next step ---------------------------------------------------------------------------

EXPIRY = TODAY + dt.timedelta(days=200)


def known(**changes: object) -> KnownKey:
    base = KnownKey(
        credential_id=1,
        matched_by="empreinte",
        kind=CredentialKind.RPVA_KEY,
        state=S.ACTIVE,
        emergency=False,
        holder_name="Claire Martin",
        expires_on=EXPIRY,
        replacement=Replacement.NONE,
        requested_on=None,
        received_on=None,
        renewed=False,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def step(
    not_after: dt.date = EXPIRY,
    *,
    valid: bool = True,
    revoked: bool = False,
    key: KnownKey | None = None,
):
    return advise(
        not_after=not_after,
        valid=valid,
        revoked=revoked,
        known=key,
        today=TODAY,
        lead_days=45,
        margin_days=15,
    )


def test_order_by_date_is_expiry_less_lead_and_margin():
    advice = step()
    assert (advice.step, advice.by) == (Step.ORDER_BY, EXPIRY - dt.timedelta(days=60))
    assert (advice.days_left, advice.gap_days) == (200, 0)
    assert advice.arrival == TODAY + dt.timedelta(days=45)


def test_order_late_and_the_gap_it_leaves():
    expiry = TODAY + dt.timedelta(days=30)
    advice = step(expiry)
    assert (advice.step, advice.by) == (Step.ORDER_NOW, TODAY)
    assert advice.gap_days == 15  # ordered today, it arrives 45 days on: 15 days without


def test_expired_revoked_invalid():
    assert step(TODAY - dt.timedelta(days=1), valid=False).step is Step.EXPIRED
    assert step(revoked=True, valid=False).step is Step.REVOKED
    assert step(valid=False).step is Step.INVALID


def test_the_records_facts_come_before_the_plan():
    assert step(key=known(renewed=True)).step is Step.RENEWED
    advice = step(revoked=True, valid=False, key=known(state=S.LOST))
    assert (advice.step, advice.by) == (Step.OUT_OF_SERVICE, TODAY)
    collect = step(key=known(replacement=Replacement.RECEIVED, received_on=TODAY))
    assert (collect.step, collect.by, collect.arrival) == (Step.COLLECT, EXPIRY, TODAY)


def test_a_requested_renewal_predicts_its_arrival_and_gap():
    expiry = TODAY + dt.timedelta(days=20)
    requested = TODAY - dt.timedelta(days=10)
    advice = step(
        expiry,
        key=known(replacement=Replacement.REQUESTED, requested_on=requested, expires_on=expiry),
    )
    assert (advice.step, advice.by) == (Step.AWAIT, None)
    assert advice.arrival == requested + dt.timedelta(days=45)
    assert advice.gap_days == 15


def test_the_key_expires_with_its_earliest_certificate():
    earlier = TODAY + dt.timedelta(days=100)
    advice = step(key=known(expires_on=earlier))
    assert advice.expires_on == earlier
    assert advice.by == earlier - dt.timedelta(days=60)


# --- the report ------------------------------------------------------------------------------


def test_report_of_a_known_key(engine, test_pki, settings):
    holder = test_pki.holders_of("avocat")[0]
    credential_id = add_credential(engine, NOW, expires_on=dt.date(2027, 2, 1))
    store_certificate(engine, credential_id, holder.authentication.certificate)
    validator = validator_from_settings(settings, network=False)
    with read(engine) as connection:
        report = key_report(
            holder.authentication.certificate_pem(),
            validator=validator,
            settings=settings,
            connection=connection,
            at=NOW,
        )
    assert report.certificate.status == "valide"
    assert report.known is not None and report.known.credential_id == credential_id
    assert report.holder_name == report.known.holder_name
    assert report.kind is CredentialKind.RPVA_KEY
    # The record's expiry (earlier than the certificate's) is the one planned with.
    assert report.advice.expires_on == dt.date(2027, 2, 1)
    assert report.advice.step is Step.ORDER_BY


def test_report_of_a_revoked_certificate_unknown_to_the_sar(engine, test_pki, settings):
    validator = validator_from_settings(settings, network=False)
    with read(engine) as connection:
        report = key_report(
            test_pki.cases["revoque"].certificate_pem(),
            validator=validator,
            settings=settings,
            connection=connection,
            at=NOW,
        )
    assert report.known is None
    assert report.certificate.revocation == "revoque"
    assert report.advice.step is Step.REVOKED
    assert report.holder_name == describe(test_pki.cases["revoque"].certificate).holder_name


def test_a_certificate_of_no_configured_authority_gets_no_report(engine, test_pki, settings):
    """Not even by serial number: an unknown issuer could copy a real one's name."""
    validator = validator_from_settings(settings, network=False)
    impostor = test_pki.cases["emetteur_inconnu"].certificate
    credential_id = add_credential(engine, NOW)
    store_certificate(engine, credential_id, impostor, fingerprint_sha256="ef" * 32)
    with read(engine) as connection, pytest.raises(UntrustedCertificate):
        key_report(
            test_pki.cases["emetteur_inconnu"].certificate_pem(),
            validator=validator,
            settings=settings,
            connection=connection,
            at=NOW,
        )


def test_unreadable_bytes(settings):
    validator = validator_from_settings(settings, network=False)
    with pytest.raises(UnreadableCertificate):
        key_report(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            validator=validator,
            settings=settings,
            connection=None,
            at=NOW,
        )
