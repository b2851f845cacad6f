"""Retention of personal data (issue 12, item 4): who the rule selects, what anonymising
leaves in the database (nothing of the person, the statistics and the journal intact),
``cartes maintenance anonymiser`` with and without ``--simulation``, and the service's
monthly step. On SQLite and PostgreSQL, with the test clock moved in time."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import Engine

from cartes import service
from cartes.settings import RetentionSettings, Settings
from inventaire import (
    alerts,
    certificates,
    db,
    dbapi,
    emergency,
    journal,
    lifecycle,
    operators,
    requests,
    retention,
    stats,
    summary,
)
from inventaire.browse import Renewal
from inventaire.clock import PARIS
from inventaire.dashboard import compute as dashboard
from inventaire.enums import OperatorRole
from inventaire.models import (
    Alert,
    AlertLevel,
    AlertMute,
    Certificate,
    CertificateRole,
    CredentialKind,
    CredentialState,
    Digest,
    DigestState,
    EmergencyIssuance,
    Holder,
    HolderRole,
    JournalEntry,
    RecordAccess,
    ServiceRun,
)
from inventaire.vocabulary import fold
from tests.conftest import NOW, Database, fresh_database
from tests.inventory_support import holder_with
from tests.test_service import Recorder, dispatch  # noqa: F401  (the stand-in for mail)

S = CredentialState
K = CredentialKind
TODAY = dt.date(2026, 11, 26)  # the test clock's day in Paris
CUTOFF = dt.date(2021, 11, 26)  # five years earlier: the default retention
LEADS = {K.RPVA_KEY: 45, K.AGENT_CARD: 60, K.EXPERT_CARD: 30, K.TEMPORARY_CARD: 15}
MARGIN = 15

# The person to forget, and another who stays.
LAST, FIRST, EMAIL = "Martin-Dupré", "Élodie", "elodie.martin-dupre@avocats-angers.fr"
OTHER_LAST, OTHER_FIRST, OTHER_EMAIL = "Laurent", "Bernard", "bernard.laurent@avocats-angers.fr"
# What a trace of her looks like, folded (accents and case do not hide it).
NEEDLES = ("martin-dupr", "lodie", "elodie.martin")
SAR = "sar@ca-angers.justice.fr"


def paris(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS).astimezone(dt.UTC)


def url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


# --------------------------------------------------------------------------------------------
# Building an inventory in the past


# A credential for ``person``: kind, state, serial, expiry.
Card = tuple[CredentialKind, CredentialState, str | None, dt.date | None]


def person(
    engine: Engine,
    last_name: str,
    *,
    at: dt.datetime,
    first_name: str = "Test",
    email: str | None = None,
    cards: tuple[Card, ...] = (),
) -> tuple[int, list[int]]:
    """A holder made at ``at`` with credentials (kind, state, serial, expiry): their ids."""
    email = email or f"{fold(last_name)}@avocats-angers.fr"
    return holder_with(
        engine, at, last_name=last_name, first_name=first_name, email=email, cards=cards
    )


def rpva_key(
    expires_on: dt.date | None, state: CredentialState = S.ACTIVE, serial: str | None = None
) -> Card:
    """An RPVA key, for ``person``."""
    return (K.RPVA_KEY, state, serial, expires_on)


def move(engine: Engine, credential_id: int, target: CredentialState, *, at: dt.datetime) -> None:
    with db.write_session(engine) as session:
        lifecycle.transition(
            session,
            credential_id=credential_id,
            target=target,
            operator=operators.require(session, "admin", OperatorRole.ADMIN),
            reason="fin de fonctions",
            now=at,
        )


def certificate_der(name: str, email: str, *, not_after: dt.datetime) -> bytes:
    """A certificate whose subject and alternative name say who holds it."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, email),
        ]
    )
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AC Avocats de test")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - dt.timedelta(days=3 * 365))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
    )
    return builder.sign(private_key, hashes.SHA256()).public_bytes(Encoding.DER)


def store_certificate(engine: Engine, credential_id: int, der: bytes) -> int:
    parsed = x509.load_der_x509_certificate(der)
    with db.write_session(engine) as session:
        row = Certificate(
            credential_id=credential_id,
            der=der,
            fingerprint_sha256=hashlib.sha256(der).hexdigest(),
            issuer=parsed.issuer.rfc4514_string(),
            serial_number=format(parsed.serial_number, "X"),
            subject=parsed.subject.rfc4514_string(),
            not_before=parsed.not_valid_before_utc,
            not_after=parsed.not_valid_after_utc,
            role=CertificateRole.AUTHENTICATION,
            last_status="valide",
            last_validated_at=parsed.not_valid_before_utc,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def add_digest(
    engine: Engine,
    *,
    credential_id: int,
    recipient: str,
    state: DigestState,
    at: dt.datetime,
    error: str | None = None,
) -> int:
    """A digest of the outbox with one alert about ``credential_id``."""
    with db.write_session(engine) as session:
        digest = Digest(
            recipient=recipient,
            state=state,
            message_id=f"<cartes.{hashlib.sha256(recipient.encode()).hexdigest()[:16]}"
            f"{state.value.lower()}@ca-angers.justice.fr>",
            attempts=1,
            next_attempt_at=at,
            last_error=error,
            created_at=at,
            sent_at=at if state is DigestState.SENT else None,
        )
        session.add(digest)
        session.flush()
        session.add(
            Alert(
                credential_id=credential_id,
                level=AlertLevel.EXPIRED,
                recipient=recipient,
                occurrence=0 if state is DigestState.SENT else 1,
                due_on=at.date(),
                digest_id=digest.id,
                created_at=at,
            )
        )
        assert digest.id is not None
        return digest.id


# --------------------------------------------------------------------------------------------
# Looking at the database


def tables(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (search index and its shadow tables included), sorted."""
    dump: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in sorted(sa.inspect(connection).get_table_names()):
            rows = connection.exec_driver_sql(f'SELECT * FROM "{table}"').all()
            dump[table] = sorted((tuple(_plain(v) for v in row) for row in rows), key=repr)
    return dump


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


def traces(engine: Engine, needles: tuple[str, ...], blobs: tuple[bytes, ...] = ()) -> set[str]:
    """The columns (``table.column``) where a needle (folded) or a blob is found, in text
    and in binary values alike."""
    found = set()
    with engine.connect() as connection:
        for table in sa.inspect(connection).get_table_names():
            result = connection.exec_driver_sql(f'SELECT * FROM "{table}"')
            columns = list(result.keys())
            for row in result:
                for column, value in zip(columns, row, strict=True):
                    if _holds(_plain(value), needles, blobs):
                        found.add(f"{table}.{column}")
    return found


def _holds(value: Any, needles: tuple[str, ...], blobs: tuple[bytes, ...]) -> bool:
    if isinstance(value, str):
        return any(needle in fold(value) for needle in needles)
    if isinstance(value, bytes):
        lowered = value.lower()
        return any(needle.encode() in lowered for needle in needles) or any(
            blob in value for blob in blobs if blob
        )
    return False


def sqlite_files(database: Database) -> dict[str, bytes]:
    """The bytes of a SQLite database's file and of its ``-wal`` (empty when absent)."""
    path = Path(database.url.removeprefix("sqlite:///"))
    wal = path.with_name(path.name + "-wal")
    return {
        "db": path.read_bytes(),
        "wal": wal.read_bytes() if wal.exists() else b"",
    }


def figures(engine: Engine) -> tuple[Any, ...]:
    """What the statistics, the summary and the dashboard show today."""
    with dbapi.connect(url(engine)) as connection:
        return (
            stats.compute(connection, today=TODAY, lead_days=LEADS, margin_days=MARGIN),
            summary.summarize(connection, today=TODAY),
            dashboard(connection, today=TODAY, now=NOW, renewal=Renewal(LEADS, MARGIN)),
        )


def journal_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with db.read_session(engine) as session:
        rows = session.execute(
            sa.select(JournalEntry.seq, JournalEntry.hash, JournalEntry.action).order_by(
                JournalEntry.seq
            )
        ).all()
    return [tuple(row) for row in rows]


def holder_row(engine: Engine, holder_id: int) -> Holder:
    with db.read_session(engine) as session:
        holder = session.get(Holder, holder_id)
        assert holder is not None
        session.expunge(holder)
        return holder


def simulated(cli: Any) -> dict[int, str]:
    """``--simulation --format json``: holder id → the end of their last credential."""
    result = cli("maintenance", "anonymiser", "--simulation", "--format", "json")
    assert result.code == 0, result.err
    return {h["id"]: h["fin_dernier_support"] for h in json.loads(result.out)["titulaires"]}


# --------------------------------------------------------------------------------------------
# Who the rule selects


def test_who_is_anonymised_and_from_when(database, cli):
    engine = database.engine
    long_ago = paris(2015, 3, 2, 10)
    expected: dict[int, str] = {}

    def ended(name: str, expires_on: dt.date | None, target: CredentialState, at: dt.datetime):
        holder, [credential] = person(engine, name, at=long_ago, cards=(rpva_key(expires_on),))
        move(engine, credential, target, at=at)
        return holder, credential

    # Returned the day before the cut-off day (Paris): more than five years ago.
    returned, _ = ended("rendue", dt.date(2024, 1, 1), S.RETURNED, paris(2021, 11, 25, 23, 30))
    expected[returned] = "2021-11-25"
    # Returned at the very start of the cut-off day: exactly five years, not more.
    ended("le_jour_meme", dt.date(2024, 1, 1), S.RETURNED, paris(2021, 11, 26, 0, 0))
    # Never given back, expired before the cut-off: ended at its expiry.
    expired, _ = person(engine, "expiree", at=long_ago, cards=(rpva_key(dt.date(2021, 11, 25)),))
    expected[expired] = "2021-11-25"
    # Revoked after its expiry: it ended at the expiry, the earlier of the two.
    revoked, _ = ended("revoquee", dt.date(2019, 5, 1), S.REVOKED, paris(2020, 1, 10, 12))
    expected[revoked] = "2019-05-01"
    # Suspended, expired on the cut-off day: not yet.
    ended("suspendue", CUTOFF, S.SUSPENDED, long_ago)
    # In service and its expiry unknown: it has not ended.
    person(engine, "sans_expiration", at=long_ago, cards=(rpva_key(None),))
    # A request never handed over keeps its holder, however old.
    person(engine, "demande", at=long_ago, cards=(rpva_key(dt.date(2016, 1, 1), S.REQUESTED),))
    # One credential ended long ago, the other still in service.
    person(
        engine,
        "deux_supports",
        at=long_ago,
        cards=(rpva_key(dt.date(2018, 1, 1), S.RETURNED), rpva_key(dt.date(2027, 1, 1))),
    )
    # An emergency card never taken back, even expired long ago.
    person(engine, "urgence", at=long_ago)
    with db.write_session(engine) as session:
        card = emergency.issue(
            session,
            holder_email="urgence@avocats-angers.fr",
            serial="URG-0001",
            reason="carte oubliée",
            without_request=True,
            return_after_days=15,
            operator=operators.require(session, "remise", OperatorRole.ISSUER),
            now=long_ago,
        ).credential_id
        session.execute(
            sa.text("UPDATE credential SET expires_on = :day WHERE id = :id"),
            {"day": dt.date(2016, 1, 1), "id": card},
        )
    # An e-mail to them still waiting in the outbox needs their address.
    _, waiting = ended("courriel", dt.date(2018, 1, 1), S.RETURNED, paris(2018, 1, 2, 9))
    add_digest(
        engine,
        credential_id=waiting,
        recipient="courriel@avocats-angers.fr",
        state=DigestState.PENDING,
        at=paris(2018, 1, 1, 6),
    )
    # ... and so does an alert not yet put in an e-mail.
    _, planned = ended("alerte", dt.date(2018, 1, 1), S.RETURNED, paris(2018, 1, 2, 9))
    with db.write_session(engine) as session:
        session.add(
            Alert(
                credential_id=planned,
                level=AlertLevel.EXPIRED,
                recipient="alerte@avocats-angers.fr",
                due_on=dt.date(2018, 1, 1),
                created_at=paris(2018, 1, 1, 6),
            )
        )
    # Without any credential: from their own record's last change.
    idle, _ = person(engine, "sans_support", at=long_ago)
    expected[idle] = "2015-03-02"
    person(engine, "recent", at=paris(2024, 5, 5))

    assert simulated(cli) == expected

    # The same rule, read in the write transaction the run uses, and for another setting.
    with db.read_session(engine) as session:
        reader = retention.SessionReader(session)
        found = retention.candidates(reader, today=TODAY, years=5)
        assert {c.holder_id: c.ended_on.isoformat() for c in found} == expected
        first_two = retention.candidates(reader, today=TODAY, years=5, limit=2)
        assert [c.holder_id for c in first_two] == sorted(expected)[:2]
        later = {c.holder_id for c in retention.candidates(reader, today=TODAY, years=6)}
    assert later == {revoked, idle}


def test_cutoff_is_the_same_day_years_before():
    assert retention.cutoff(TODAY, 5) == CUTOFF
    assert retention.cutoff(dt.date(2028, 2, 29), 1) == dt.date(2027, 2, 28)


# --------------------------------------------------------------------------------------------
# Anonymising: nothing of the person left, the rest intact


def her_record(engine: Engine) -> dict[str, Any]:
    """Élodie Martin-Dupré, lawyer from 2019 to 2020: a key with its certificate, a mute,
    an emergency card given back, a cancelled request, mails sent and refused, a copy to
    the IT service, a reading of her record; and Bernard Laurent, in service."""
    start = paris(2019, 3, 1, 10)
    her, [rpva] = person(
        engine,
        LAST,
        first_name=FIRST,
        email=EMAIL,
        at=start,
        cards=(rpva_key(dt.date(2022, 3, 1), serial="RPVA-0042"),),
    )
    der = certificate_der(f"{FIRST} {LAST}", EMAIL, not_after=paris(2022, 3, 1, 12))
    certificate = store_certificate(engine, rpva, der)
    with db.write_session(engine) as session:
        admin = operators.require(session, "admin", OperatorRole.ADMIN)
        alerts.mute(session, credential_id=rpva, operator=admin, reason="départ annoncé", now=start)
        request = requests.create_request(
            session, holder_email=EMAIL, kind=K.AGENT_CARD, operator=admin, now=start
        )
        assert request.id is not None
        issued = emergency.issue(
            session,
            holder_email=EMAIL,
            serial="URG-0042",
            reason="clé oubliée au cabinet, audience urgente",
            request_id=request.id,
            return_after_days=10,
            operator=operators.require(session, "remise", OperatorRole.ISSUER),
            now=start,
        )
        assert issued.id is not None
        session.add(
            RecordAccess(holder_id=her, operator="admin", purpose="voir", accessed_at=start)
        )
    with db.write_session(engine) as session:
        admin = operators.require(session, "admin", OperatorRole.ADMIN)
        emergency.give_back(
            session, issuance_id=issued.id, operator=admin, now=start + dt.timedelta(days=3)
        )
        requests.cancel(
            session, request_id=request.id, reason="plus utile", operator=admin, now=start
        )
    sent = add_digest(
        engine, credential_id=rpva, recipient=EMAIL, state=DigestState.SENT, at=paris(2020, 1, 6)
    )
    refused = add_digest(
        engine,
        credential_id=rpva,
        recipient=EMAIL,
        state=DigestState.FAILED,
        at=paris(2020, 1, 13),
        error=f"550 5.1.1 <{EMAIL}> : boîte inconnue ({FIRST} {LAST})",
    )
    copy = add_digest(
        engine, credential_id=rpva, recipient=SAR, state=DigestState.SENT, at=paris(2020, 1, 6)
    )
    move(engine, rpva, S.RETURNED, at=paris(2020, 6, 15, 11))

    other, [other_key] = person(
        engine,
        OTHER_LAST,
        first_name=OTHER_FIRST,
        email=OTHER_EMAIL,
        at=start,
        cards=(rpva_key(dt.date(2028, 1, 1)),),
    )
    other_der = certificate_der(f"{OTHER_FIRST} {OTHER_LAST}", OTHER_EMAIL, not_after=NOW)
    store_certificate(engine, other_key, other_der)
    return {
        "her": her,
        "key": rpva,
        "der": der,
        "certificate": certificate,
        "digests": (sent, refused),
        "copy": copy,
        "other": other,
        "other_der": other_der,
    }


def test_anonymisation_leaves_nothing_of_the_person(database, cli):
    engine = database.engine
    record = her_record(engine)
    her = record["her"]
    assert traces(engine, NEEDLES, (record["der"],))  # the search can find her
    assert json.loads(cli("liste", "--recherche", "martin-dupre", "--format", "json").out)
    before = figures(engine)
    journal_before = journal_rows(engine)
    with db.read_session(engine) as session:
        kept_certificate = session.get(Certificate, record["certificate"])
        assert kept_certificate is not None
        session.expunge(kept_certificate)

    result = cli("maintenance", "anonymiser")

    assert result.code == 0, result.err
    assert "1 titulaire anonymisé (conservation de 5 ans" in result.out
    assert "26/11/2021" in result.out and "15/06/2020" in result.out
    assert not any(needle in fold(result.out) for needle in NEEDLES)  # the output names nobody

    # Nothing of her in any text or binary column of any table, search index included.
    assert traces(engine, NEEDLES, (record["der"],)) == set()
    # ... while the other holder is all there: the search finds what is there.
    other_needles = (fold(OTHER_LAST), OTHER_EMAIL)
    assert {"holder.last_name", "holder.email", "certificate.der", "certificate.subject"} <= (
        traces(engine, other_needles, (record["other_der"],))
    )
    if database.backend == "sqlite":
        # Not in the file either: no freed page, old index segment or WAL frame keeps her.
        raw = b"".join(sqlite_files(database).values())
        assert not [n for n in (*NEEDLES, "dupr") if n.encode() in raw.lower()]
        assert record["der"] not in raw
        assert fold(OTHER_LAST).encode() in raw.lower()

    anonymised = holder_row(engine, her)
    assert (anonymised.last_name, anonymised.first_name) == ("Anonyme", f"n°{her}")
    assert anonymised.email == f"anonyme-{her}@anonyme.invalid"
    assert anonymised.anonymised_at is not None
    assert (anonymised.role, anonymised.active) == (HolderRole.LAWYER, True)
    with db.read_session(engine) as session:
        certificate = session.get(Certificate, record["certificate"])
        assert certificate is not None
        assert (certificate.der, certificate.subject) == (b"", "[anonymisé]")
        # The daily revalidation and the CRL samples pass over what has no DER any more.
        stale = certificates.stale(session, validated_before=None, after_id=0, limit=10_000)
        assert record["certificate"] not in [row.id for row in stale]
        assert b"" not in certificates.latest_per_issuer(session)
        for name in ("fingerprint_sha256", "issuer", "serial_number", "not_before", "not_after"):
            assert getattr(certificate, name) == getattr(kept_certificate, name)
        [issuance] = session.execute(sa.select(EmergencyIssuance)).scalars()
        assert issuance.reason == "[anonymisé]" and issuance.returned_on is not None
        mute = session.get(AlertMute, record["key"])
        assert mute is not None and mute.reason == "[anonymisé]"
        recipients = {
            (d.id, d.recipient, d.last_error) for d in session.execute(sa.select(Digest)).scalars()
        }
        sent, refused = record["digests"]
        assert recipients == {
            (sent, anonymised.email, None),
            (refused, anonymised.email, "[anonymisé]"),
            (record["copy"], SAR, None),  # the IT service's copy is the IT service's
        }
        assert sorted(a.recipient for a in session.execute(sa.select(Alert)).scalars()) == [
            anonymised.email,
            anonymised.email,
            SAR,
        ]
        # Who looked at her record stays on record (by id: no personal data there).
        [access] = session.execute(sa.select(RecordAccess)).scalars()
        assert access.holder_id == her

    # The inventory's search no longer finds her, and finds the anonymised record.
    listing = cli("liste", "--recherche", "martin-dupre", "--format", "json")
    assert listing.code == 0, listing.err
    assert json.loads(listing.out) == []
    listing = cli("liste", "--recherche", f"anonyme-{her}", "--format", "json")
    assert {line["numero_serie"] for line in json.loads(listing.out)} >= {"RPVA-0042"}

    # Figures unchanged; the journal is the old one plus one entry, and verifies.
    assert figures(engine) == before
    after = journal_rows(engine)
    assert after[: len(journal_before)] == journal_before
    [(_, _, action)] = after[len(journal_before) :]
    assert action == "titulaire.anonymisation"
    with db.read_session(engine) as session:
        [entry] = journal.entries(session, journal.JournalFilter(action=action))
    assert (entry.operator, entry.entity_type, entry.entity_id) == ("admin", "holder", her)
    assert "15/06/2020" in (entry.reason or "")
    assert json.loads(entry.after or "") == {
        "anonymised": True,
        "last_end": "2020-06-15",
        "retention_years": 5,
    }
    verified = cli("journal", "verifier")
    assert verified.code == 0, verified.err

    # Again: nothing to do, nothing written.
    again = cli("maintenance", "anonymiser")
    assert again.code == 0 and "Aucun titulaire à anonymiser" in again.out
    assert journal_rows(engine) == after


def test_no_trace_in_the_sqlite_file_where_freed_space_is_not_overwritten(request, tmp_path):
    # Debian's SQLite overwrites freed space by default (SQLITE_SECURE_DELETE); others
    # do not, and then the run must ask for it.
    with fresh_database("sqlite", tmp_path, request) as database:
        engine = db.make_engine(database.url)
        sa.event.listen(
            engine, "connect", lambda connection, _: connection.execute("PRAGMA secure_delete = 0")
        )
        try:
            record = her_record(engine)
            report = retention.run(engine, years=5, by="admin", now=NOW)
            assert [c.holder_id for c in report.anonymised] == [record["her"]]
            raw = b"".join(sqlite_files(database).values())
        finally:
            engine.dispose()
    assert not [n for n in (*NEEDLES, "dupr") if n.encode() in raw.lower()]
    assert record["der"] not in raw


def test_simulation_lists_them_and_changes_nothing(database, cli):
    engine = database.engine
    record = her_record(engine)
    files = sqlite_files(database) if database.backend == "sqlite" else None
    before = tables(engine)

    result = cli("maintenance", "anonymiser", "--simulation")
    as_json = cli(
        "maintenance", "anonymiser", "--simulation", "--format", "json", operator="lecture"
    )

    assert result.code == 0, result.err
    assert "Simulation : 1 titulaire serait anonymisé" in result.out
    assert "Rien n'a été modifié" in result.out
    assert f"{FIRST} {LAST}" in result.out and EMAIL in result.out  # to recognise them
    assert as_json.code == 0, as_json.err
    document = json.loads(as_json.out)
    assert document["simulation"] is True and document["fin_avant_le"] == "2021-11-26"
    assert document["titulaires"] == [
        {
            "id": record["her"],
            "nom": LAST,
            "prenom": FIRST,
            "email": EMAIL,
            "organisation": "Barreau d'Angers",
            "role": "avocat",
            "supports": 3,
            "fin_dernier_support": "2020-06-15",
        }
    ]
    if files is not None:
        assert sqlite_files(database) == files  # byte for byte, WAL included
    # Not a row written: no journal entry, no run, no reading recorded.
    assert tables(engine) == before


# --------------------------------------------------------------------------------------------
# Refusals


def test_only_an_administrator_anonymises(database, cli):
    her = her_record(database.engine)["her"]
    before = tables(database.engine)

    manager = cli("maintenance", "anonymiser", operator="gestion")
    unknown = cli("maintenance", "anonymiser", "--simulation", operator="inconnu")

    assert manager.code == 1 and "« gestion » n'a pas le rôle requis" in manager.err
    assert unknown.code == 1 and "inconnu" in unknown.err
    assert manager.out == unknown.out == ""
    assert tables(database.engine) == before
    assert holder_row(database.engine, her).anonymised_at is None


@pytest.mark.parametrize(
    ("years", "why"),
    [
        ("0", "valeur trop petite (au moins 1 attendu)"),
        ("abc", "nombre entier attendu"),
        ("-5", "valeur trop petite (au moins 1 attendu)"),
        ("101", "valeur trop grande (au plus 100 attendu)"),
        ("2.5", "nombre entier attendu"),
    ],
)
def test_a_retention_that_is_not_a_positive_number_is_refused(
    database, cli, monkeypatch, years, why
):
    her = her_record(database.engine)["her"]
    before = tables(database.engine)
    monkeypatch.setenv("CARTES_RETENTION__YEARS", years)

    for simulation in ((), ("--simulation",)):
        result = cli("maintenance", "anonymiser", *simulation)
        assert result.code == 1
        assert f"Configuration invalide : retention.years : {why}" in result.err, result.err
        assert result.out == ""
    assert tables(database.engine) == before
    assert holder_row(database.engine, her).anonymised_at is None


def test_a_longer_retention_from_the_settings_keeps_her(database, cli, monkeypatch):
    her_record(database.engine)
    monkeypatch.setenv("CARTES_RETENTION__YEARS", "7")
    result = cli("maintenance", "anonymiser")
    assert result.code == 0, result.err
    assert "Aucun titulaire à anonymiser (conservation de 7 ans" in result.out
    assert "26/11/2019" in result.out


# --------------------------------------------------------------------------------------------
# Runs: batches, interruption, the service's monthly step


def test_an_interrupted_run_is_taken_up_where_it_stopped(database):
    engine = database.engine
    ids = [person(engine, f"Parti{n}", at=paris(2018, 1, 1))[0] for n in range(3)]
    batches = []

    def after_one_batch() -> bool:
        batches.append(len(batches))
        return len(batches) > 1

    first = retention.run(
        engine, years=5, by="admin", now=NOW, batch=2, should_stop=after_one_batch
    )
    assert ([c.holder_id for c in first.anonymised], first.finished) == (ids[:2], False)
    rest = retention.run(engine, years=5, by="admin", now=NOW, batch=2)
    assert ([c.holder_id for c in rest.anonymised], rest.finished) == (ids[2:], True)
    assert [holder_row(engine, i).last_name for i in ids] == ["Anonyme"] * 3
    with db.read_session(engine) as session:
        assert journal.verify(session).intact


@pytest.mark.usefixtures("dispatch")
def test_the_service_anonymises_once_a_month(database, clock):
    engine = database.engine
    her = her_record(engine)["her"]
    settings = Settings(database_url=database.url)
    log = Recorder()

    def cycle() -> service.CycleOutcome:
        return service.run_cycle(
            engine, settings, kind="quotidien", clock=clock, log=log, should_stop=lambda: False
        )

    first = cycle()

    assert first.ok, first.errors
    assert holder_row(engine, her).last_name == "Anonyme"
    [bilan] = log.events("anonymisation.bilan")
    assert bilan["anonymises"] == 1 and "5 ans" in bilan["message"]
    assert not any(n in fold(json.dumps(log.records, default=str)) for n in NEEDLES)
    with db.read_session(engine) as session:
        [entry] = journal.entries(session, journal.JournalFilter(action="titulaire.anonymisation"))
        assert entry.operator == "(service)" and entry.entity_id == her
    assert first.summary()["anonymisation"] == {"anonymised": 1, "finished": True}
    assert "titulaires anonymisés : 1" in first.french_summary()

    # Someone else's retention ends the next day: the step waits for next month.
    late, _ = person(engine, "Tardif", at=paris(2021, 11, 26, 12))
    clock.advance(days=1)
    second = cycle()
    assert second.ok and second.summary()["anonymisation"] is None
    assert holder_row(engine, late).anonymised_at is None

    clock.instant = paris(2026, 12, 1, 6, 30)
    third = cycle()
    assert third.summary()["anonymisation"] == {"anonymised": 1, "finished": True}
    assert holder_row(engine, late).anonymised_at is not None
    with db.read_session(engine) as session:
        assert journal.verify(session).intact
        kinds = session.execute(sa.select(ServiceRun.kind)).scalars().all()
    assert kinds == ["quotidien"] * 3  # one row per cycle: the step is in its summary


@pytest.mark.usefixtures("dispatch")
def test_a_failed_monthly_step_is_tried_again_the_next_day(database, clock, monkeypatch):
    engine = database.engine
    her = her_record(engine)["her"]
    settings = Settings(database_url=database.url, retention=RetentionSettings(years=5))
    log = Recorder()

    working = retention.run
    broken = [True]

    def once_broken(*args: Any, **kwargs: Any) -> retention.Report:
        if broken.pop() if broken else False:
            raise RuntimeError(f"boom {EMAIL}")
        return working(*args, **kwargs)

    monkeypatch.setattr(retention, "run", once_broken)
    failed = service.run_cycle(
        engine, settings, kind="quotidien", clock=clock, log=log, should_stop=lambda: False
    )
    assert not failed.ok
    assert failed.errors == ["anonymisation : erreur inattendue (RuntimeError)"]
    assert failed.summary()["anonymisation"] is None
    assert EMAIL not in json.dumps(log.records, default=str)
    assert holder_row(engine, her).anonymised_at is None

    clock.advance(days=1)
    retried = service.run_cycle(
        engine, settings, kind="quotidien", clock=clock, log=log, should_stop=lambda: False
    )
    assert retried.ok, retried.errors
    assert holder_row(engine, her).anonymised_at is not None
