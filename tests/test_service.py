"""``cartes service``: the daily schedule (DST included), catching up a missed cycle, the
revalidation of stored certificates, the CRL refresh, one cycle (``--une-fois``) with its
record and journal head, the lease held by another instance, SIGTERM, and the logs.

Planning and sending the alerts is ``cartes.dispatch``'s work, tested with it; here it is
replaced by a stand-in that records how the service calls it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import cartes
from cartes import service, trust
from cartes.service import EventLog, Service, last_daily_slot, missed, next_daily_run
from cartes.settings import ServiceSettings, Settings, SmtpSettings, TrustSettings
from fixtures.pki import write_test_pki
from inventaire import db, journal, lease
from inventaire.clock import PARIS, from_db
from inventaire.models import Certificate, CertificateRole, ServiceRun
from tests.conftest import CARTES, NOW
from tests.factories import add_credential

SECRET = "Mot-De-Passe-Tres-Secret-42"


def paris(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


# --------------------------------------------------------------------------------------------
# Schedule


def test_next_daily_run_same_day_or_next():
    at = dt.time(6, 30)
    assert next_daily_run(paris(2026, 11, 26, 5, 0), at) == paris(2026, 11, 26, 6, 30)
    assert next_daily_run(paris(2026, 11, 26, 6, 30), at) == paris(2026, 11, 27, 6, 30)
    assert next_daily_run(paris(2026, 11, 26, 23, 59), at) == paris(2026, 11, 27, 6, 30)
    # 23:30 UTC is already the next day in Paris.
    assert next_daily_run(utc(2026, 11, 26, 23, 30), at) == paris(2026, 11, 27, 6, 30)
    assert next_daily_run(utc(2026, 11, 26, 23, 30), at).tzinfo == dt.UTC


def test_spring_forward_day_still_has_its_run():
    """On 29 March 2026 Paris skips from 02:00 to 03:00: a 02:30 run happens once, at the
    first instant after the gap's wall time (03:30 summer time), then at 02:30 again."""
    at = dt.time(2, 30)
    first = next_daily_run(paris(2026, 3, 29, 0, 0), at)
    assert first == utc(2026, 3, 29, 1, 30)
    assert first.astimezone(PARIS).date() == dt.date(2026, 3, 29)
    second = next_daily_run(first, at)
    assert second == paris(2026, 3, 30, 2, 30) == utc(2026, 3, 30, 0, 30)


def test_fall_back_day_runs_once():
    """On 25 October 2026 Paris lives 02:00-03:00 twice: one run, at the first 02:30."""
    at = dt.time(2, 30)
    first = next_daily_run(paris(2026, 10, 25, 0, 0), at)
    assert first == utc(2026, 10, 25, 0, 30)  # 02:30 summer time
    second = next_daily_run(first, at)
    assert second == utc(2026, 10, 26, 1, 30)  # 02:30 winter time, the next day


@pytest.mark.parametrize("at", [dt.time(0, 0), dt.time(2, 30), dt.time(6, 30), dt.time(23, 59)])
def test_one_run_per_paris_day_for_a_whole_year(at):
    instant = paris(2025, 12, 31, 23, 59, 30)
    days = []
    for _ in range(366):
        instant = next_daily_run(instant, at)
        days.append(instant.astimezone(PARIS).date())
        if days[-1] != dt.date(2026, 3, 29) or at != dt.time(2, 30):
            assert instant.astimezone(PARIS).time() == at
    assert days == [dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(366)]


def test_last_slot_and_missed_runs():
    at = dt.time(6, 30)
    before_slot = paris(2026, 11, 26, 6, 0)
    after_slot = paris(2026, 11, 26, 7, 0)
    assert last_daily_slot(before_slot, at) == paris(2026, 11, 25, 6, 30)
    assert last_daily_slot(after_slot, at) == paris(2026, 11, 26, 6, 30)
    assert last_daily_slot(paris(2026, 11, 26, 6, 30), at) == paris(2026, 11, 26, 6, 30)

    assert missed(None, after_slot, at)  # never ran
    assert not missed(paris(2026, 11, 26, 6, 30, 2), after_slot, at)  # today's ran
    assert missed(paris(2026, 11, 25, 6, 30, 2), after_slot, at)  # down this morning
    assert not missed(paris(2026, 11, 25, 6, 30, 2), before_slot, at)  # not yet time
    assert missed(paris(2026, 11, 24, 6, 30, 2), before_slot, at)  # yesterday's missed
    # A naive instant read from SQLite is UTC.
    assert not missed(dt.datetime(2026, 11, 26, 5, 31), after_slot, at)


# --------------------------------------------------------------------------------------------
# Logs


def test_event_log_lines(clock):
    stream = io.StringIO()
    log = EventLog(stream, clock)
    log("bail.obtenu", message="Bail obtenu.", jusqua=paris(2026, 11, 26, 10, 32), pid=12)
    log("courriel.refuse", niveau="erreur", digest=3, alertes=[7, 8])
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first == {
        "ts": "2026-11-26T09:30:00.000+00:00",
        "niveau": "info",
        "evenement": "bail.obtenu",
        "message": "Bail obtenu.",
        "jusqua": "2026-11-26T09:32:00+00:00",
        "pid": 12,
    }
    assert list(first)[:4] == ["ts", "niveau", "evenement", "message"]
    assert (second["niveau"], second["message"], second["alertes"]) == (
        "erreur",
        "courriel.refuse",
        [7, 8],
    )


def test_event_log_never_writes_a_secret(clock):
    stream = io.StringIO()
    log = EventLog(stream, clock)
    smtp = SmtpSettings(user="cartes", password=SECRET)
    log("essai", smtp=smtp, password=SECRET, mot_de_passe=SECRET, secret=smtp.password)
    assert SECRET not in stream.getvalue()
    assert json.loads(stream.getvalue())["smtp"] == "***"


# --------------------------------------------------------------------------------------------
# Revalidation and CRLs


@pytest.fixture(scope="module")
def pki_files(test_pki, tmp_path_factory) -> dict[str, Path]:
    return write_test_pki(test_pki, tmp_path_factory.mktemp("service-pki"))


def trust_settings(files: dict[str, Path], cache: Path, **options: Any) -> TrustSettings:
    families = ("agent", "expert", "avocat")
    return TrustSettings(
        agent_card=[files["agent-racine.pem"]],
        expert_card=[files["expert-racine.pem"]],
        rpva_key=[files["avocat-racine.pem"]],
        intermediates=[*(files[f"{f}-emettrice.pem"] for f in families), files["ac-sans_lcr.pem"]],
        crl_cache_dir=cache,
        **options,
    )


def der(files: dict[str, Path], name: str) -> bytes:
    return x509.load_pem_x509_certificate(files[name].read_bytes()).public_bytes(Encoding.DER)


def store_certificates(
    engine, now: dt.datetime, ders: dict[str, bytes], *, validated_at: dt.datetime | None = None
) -> dict[str, int]:
    """Certificates of one credential, by label → id."""
    credential_id = add_credential(engine, now)
    ids = {}
    with db.write_session(engine) as session:
        for label, content in ders.items():
            row = Certificate(
                credential_id=credential_id,
                der=content,
                fingerprint_sha256=hashlib.sha256(content).hexdigest(),
                issuer="CN=test",
                serial_number=label,
                subject=f"CN={label}",
                not_before=now,
                not_after=now,
                role=CertificateRole.AUTHENTICATION,
                last_status="ancien" if validated_at else None,
                last_validated_at=validated_at,
            )
            session.add(row)
            session.flush()
            ids[label] = row.id
    return ids


def statuses(engine) -> dict[int, tuple[str | None, dt.datetime | None]]:
    with db.read_session(engine) as session:
        rows = session.execute(
            sa.select(Certificate.id, Certificate.last_status, Certificate.last_validated_at)
        ).all()
    return {
        row.id: (
            row.last_status,
            from_db(row.last_validated_at) if row.last_validated_at else None,
        )
        for row in rows
    }


def test_revalidate_stored_certificates(engine, clock, pki_files, tmp_path):
    now = clock.now()
    stale = store_certificates(
        engine,
        now,
        {
            "valide": der(pki_files, "agent-1-auth.pem"),
            "revoque": der(pki_files, "cas-revoque.pem"),
            "sans_lcr": der(pki_files, "cas-sans_crl.pem"),
            "casse": b"\x30\x03\x02\x01\x01",
        },
        validated_at=now - dt.timedelta(hours=25),
    )
    never = store_certificates(engine, now, {"jamais": der(pki_files, "expert-1-auth.pem")})
    fresh = store_certificates(
        engine,
        now,
        {"recent": der(pki_files, "agent-1-sign.pem")},
        validated_at=now - dt.timedelta(hours=2),
    )
    crls = [
        pki_files[f"{name}.crl"]
        for f in ("agent", "expert", "avocat")
        for name in (f, f"{f}_racine")
    ]
    settings = Settings(trust=trust_settings(pki_files, tmp_path / "lcr", crls=crls))
    logged = Recorder()

    counts = service.revalidate(
        engine,
        trust.validator_from_settings(settings),
        now=now,
        older_than=dt.timedelta(hours=24),
        log=logged,
        should_stop=lambda: False,
        batch=2,  # several batches
    )

    assert (
        counts.checked,
        counts.valid,
        counts.invalid,
        counts.undetermined,
        counts.unreadable,
    ) == (
        5,
        2,
        1,
        1,
        1,
    )
    found = statuses(engine)
    assert found[stale["valide"]] == ("valide", now)
    assert found[stale["revoque"]] == ("invalide", now)
    assert found[stale["sans_lcr"]] == ("indetermine", now)
    assert found[stale["casse"]] == ("illisible", now)
    assert found[never["jamais"]] == ("valide", now)
    assert found[fresh["recent"]] == ("ancien", now - dt.timedelta(hours=2))  # left alone
    assert logged.events("revalidation.illisible") == [
        {
            "niveau": "avertissement",
            "message": f"Certificat n°{stale['casse']} illisible : il n'a pas pu être validé.",
            "certificat": stale["casse"],
        }
    ]


def test_revalidation_stops_when_asked(engine, clock, pki_files, tmp_path):
    now = clock.now()
    store_certificates(engine, now, {"a": der(pki_files, "agent-1-auth.pem")})
    settings = Settings(trust=trust_settings(pki_files, tmp_path / "lcr"))
    counts = service.revalidate(
        engine,
        trust.validator_from_settings(settings),
        now=now,
        older_than=dt.timedelta(hours=24),
        log=Recorder(),
        should_stop=lambda: True,
    )
    assert counts.checked == 0
    assert list(statuses(engine).values()) == [(None, None)]


def test_refresh_crls_downloads_every_distribution_point(pki_files, tmp_path):
    cache = tmp_path / "lcr"
    settings = Settings(trust=trust_settings(pki_files, cache, network=True, timeout_s=5))
    holders = [
        x509.load_pem_x509_certificate(pki_files[name].read_bytes())
        for name in ("agent-1-auth.pem", "cas-sans_crl.pem")
    ]
    logged = Recorder()

    refresh = trust.refresh_crls(settings, log=logged, certificates=holders)

    # The roots' lists (named by the three issuing CAs and the CA without CRL), the
    # agent CA's list (named by the holder); the CA without CRL publishes none.
    assert refresh.fetched == 4
    assert list(refresh.failures) == [
        url for url in refresh.failures if url.endswith("/sans_lcr.crl")
    ]
    assert refresh.failed == 1
    assert len(list(cache.glob("*.crl"))) == 4
    fetched = {event["url"].rsplit("/", 1)[1] for event in logged.events("lcr.telechargee")}
    assert fetched == {"agent_racine.crl", "expert_racine.crl", "avocat_racine.crl", "agent.crl"}
    [failure] = logged.events("lcr.echec")
    assert failure["niveau"] == "avertissement"
    assert failure["message"].startswith("LCR non téléchargée : http")

    # The cache is what validation then reads, without the network.
    offline = Settings(trust=trust_settings(pki_files, cache))
    result = trust.validator_from_settings(offline).validate(holders[0], NOW)
    assert result.status == "valide", result.reasons


def test_no_refresh_without_network(pki_files, tmp_path):
    settings = Settings(trust=trust_settings(pki_files, tmp_path / "lcr"))
    logged = Recorder()
    assert trust.refresh_crls(settings, log=logged).fetched == 0
    assert logged.records == []
    assert not (tmp_path / "lcr").exists()


# --------------------------------------------------------------------------------------------
# One cycle, in process, with a stand-in for cartes.dispatch


class Recorder:
    """A ``log`` that keeps the events, and can act when one is logged."""

    def __init__(self, hooks: dict[str, Any] | None = None) -> None:
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.hooks = hooks or {}
        self._lock = threading.Lock()

    def __call__(self, event: str, /, **fields: Any) -> None:
        with self._lock:
            self.records.append((event, fields))
        if event in self.hooks:
            self.hooks[event]()

    def names(self) -> list[str]:
        return [event for event, _ in self.records]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [fields for event, fields in self.records if event == name]


@dataclass
class Report:
    planned: int = 0
    sent: int = 0
    failed: int = 0
    waiting: int = 0
    error: str | None = None


@dataclass
class FakeDispatch:
    """Stands for ``cartes.dispatch``: records the calls, logs like it, returns a report."""

    report: Report = field(default_factory=Report)
    raises: BaseException | None = None
    during: Any = None  # called with should_stop while "sending"
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def _call(self, name: str, engine, settings, *, now, log, should_stop) -> Report:
        self.calls.append((name, {"now": now, "should_stop": should_stop, "engine": engine}))
        if self.raises is not None:
            raise self.raises
        log("courriel.envoye", message="Courriel envoyé.", digest=1, alertes=[1, 2])
        if self.during is not None:
            self.during(should_stop)
        return self.report

    def plan_and_send(self, *args: Any, **kwargs: Any) -> Report:
        return self._call("plan_and_send", *args, **kwargs)

    def send_due(self, *args: Any, **kwargs: Any) -> Report:
        return self._call("send_due", *args, **kwargs)


@pytest.fixture
def dispatch(monkeypatch) -> FakeDispatch:
    fake = FakeDispatch()
    module = types.ModuleType("cartes.dispatch")
    module.plan_and_send = fake.plan_and_send  # type: ignore[attr-defined]
    module.send_due = fake.send_due  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cartes.dispatch", module)
    monkeypatch.setattr(cartes, "dispatch", module, raising=False)
    return fake


def lines(text: str) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in text.splitlines()]
    for record in records:
        assert list(record)[:4] == ["ts", "niveau", "evenement", "message"]
        assert record["niveau"] in ("info", "avertissement", "erreur")
        assert dt.datetime.fromisoformat(record["ts"]).utcoffset() == dt.timedelta(0)
    return records


def runs(engine) -> list[ServiceRun]:
    with db.read_session(engine) as session:
        found = list(session.execute(sa.select(ServiceRun).order_by(ServiceRun.id)).scalars())  # type: ignore[arg-type]
        for run in found:
            session.expunge(run)
        return found


def test_une_fois_runs_a_cycle_and_records_the_journal_head(cli, engine, dispatch, monkeypatch):
    monkeypatch.setenv("CARTES_SMTP__PASSWORD", SECRET)
    dispatch.report = Report(planned=3, sent=2, waiting=0)
    [stored] = store_certificates(engine, NOW, {"x": b"\x30\x03\x02\x01\x01"}).values()

    result = cli("service", "--une-fois")

    assert result.code == 0, result.err
    assert SECRET not in result.out + result.err
    records = lines(result.out)
    names = [record["evenement"] for record in records]
    assert names == [
        "bail.obtenu",
        "cycle.debut",
        "revalidation.sans_ancre",
        "courriel.envoye",
        "journal.tete",
        "cycle.fin",
        "bail.libere",
    ]
    [(name, call)] = dispatch.calls
    assert name == "plan_and_send" and call["now"] == NOW and call["should_stop"]() is False

    with db.read_session(engine) as session:
        head_seq, head_hash = journal.head(session)
    [run] = runs(engine)
    assert (run.kind, run.ok, run.journal_seq, run.journal_hash) == (
        "une_fois",
        True,
        head_seq,
        head_hash,
    )
    assert from_db(run.started_at) == NOW and run.finished_at is not None
    summary = json.loads(run.summary or "")
    assert summary["alerts"] == {"planned": 3, "sent": 2, "failed": 0, "waiting": 0, "error": None}
    # No trust anchor configured: stored certificates are left as they are, not all
    # declared invalid.
    assert summary["revalidation"] is None and summary["crls"] is None
    assert statuses(engine)[stored] == (None, None)

    head = records[names.index("journal.tete")]
    assert (head["seq"], head["empreinte"]) == (head_seq, head_hash)
    assert f"--tete {head_seq}:{head_hash}" in head["message"]
    assert records[names.index("cycle.fin")]["ok"] is True
    assert lease.current(engine, name="service") is None
    # What the log noted is what ``journal verifier --tete`` takes.
    check = cli("journal", "verifier", "--tete", f"{head['seq']}:{head['empreinte']}")
    assert check.code == 0, check.err


@pytest.mark.parametrize(
    ("report", "raises", "problem"),
    [
        (Report(planned=2, sent=1, failed=1), None, "refusés : 1"),
        (Report(planned=2, waiting=2, error="serveur injoignable"), None, "serveur injoignable"),
        (None, RuntimeError("boom " + SECRET), "alertes : erreur inattendue (RuntimeError)"),
    ],
)
def test_une_fois_exits_1_when_the_cycle_had_problems(
    cli, engine, dispatch, report, raises, problem
):
    dispatch.report = report
    dispatch.raises = raises
    result = cli("service", "--une-fois")
    assert result.code == 1
    assert "Cycle terminé avec des problèmes" in result.err and problem in result.err
    assert SECRET not in result.out + result.err  # an exception's text is not logged
    names = [record["evenement"] for record in lines(result.out)]
    assert "journal.tete" in names and names[-1] == "bail.libere"
    [run] = runs(engine)
    assert run.ok is False and run.journal_seq is not None


def test_une_fois_waits_for_the_lease_then_gives_up(cli, engine, clock, dispatch, monkeypatch):
    monkeypatch.setenv("CARTES_SERVICE__LEASE_S", "2")
    other = lease.acquire(
        engine,
        name="service",
        owner="cartes service serveur-b pid 4242",
        host="serveur-b",
        pid=4242,
        now=clock.now(),
        duration_s=600,
    )
    assert other.held
    started = time.monotonic()
    result = cli("service", "--une-fois")
    waited = time.monotonic() - started

    assert result.code == 1
    assert 1.5 <= waited < 10
    assert "cartes service serveur-b pid 4242" in result.err
    assert "26/11/2026 à 10:40:00" in result.err  # expiry, Paris time
    assert "abandon, aucun cycle n'a été lancé" in result.err
    records = lines(result.out)
    assert [r["evenement"] for r in records] == ["bail.occupe", "bail.abandon"]
    assert (records[0]["hote"], records[0]["pid"]) == ("serveur-b", 4242)
    assert dispatch.calls == [] and runs(engine) == []
    assert lease.current(engine, name="service").owner == other.owner


def test_cycle_with_network_refreshes_then_revalidates(
    engine, clock, dispatch, pki_files, tmp_path
):
    [stored] = store_certificates(engine, NOW, {"a": der(pki_files, "agent-1-auth.pem")}).values()
    settings = Settings(trust=trust_settings(pki_files, tmp_path / "lcr", network=True))
    log = Recorder()

    outcome = service.run_cycle(
        engine, settings, kind="quotidien", clock=clock, log=log, should_stop=lambda: False
    )

    assert outcome.ok, outcome.errors
    assert (outcome.crls_fetched, outcome.crls_failed) == (4, 0)
    assert outcome.revalidation is not None and outcome.revalidation.valid == 1
    assert statuses(engine)[stored] == ("valide", NOW)
    names = log.names()
    assert (
        names.index("lcr.telechargee") < names.index("courriel.envoye") < names.index("cycle.fin")
    )
    [run] = runs(engine)
    assert json.loads(run.summary or "")["crls"] == {"fetched": 4, "failed": 0}


def test_bad_daily_at_is_refused(cli, monkeypatch):
    monkeypatch.setenv("CARTES_SERVICE__DAILY_AT", "25:00")
    result = cli("service", "--une-fois")
    assert result.code == 1
    assert "heure invalide « 25:00 »" in result.err


def test_database_not_initialised(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("CARTES_DATABASE_URL", f"sqlite:///{tmp_path / 'absente.db'}")
    result = cli("service")
    assert result.code == 1
    assert "lancez « cartes init »" in result.err
    assert not (tmp_path / "absente.db").exists()


# --------------------------------------------------------------------------------------------
# The loop, in process


def make_service(database, clock, log, **service_settings: Any) -> Service:
    settings = Settings(database_url=database.url, service=ServiceSettings(**service_settings))
    return Service(
        database.engine,
        settings,
        clock=clock,
        log=log,
        stop=threading.Event(),
        host="serveur-a",
        pid=os.getpid(),
    )


def record_run(engine, started_at: dt.datetime, *, ok: bool = True, kind: str = "quotidien"):
    with db.write_session(engine) as session:
        session.add(ServiceRun(kind=kind, started_at=started_at, ok=ok))


def test_missed_cycle_is_caught_up_at_start(database, clock, dispatch):
    # The last successful cycle was yesterday morning; a failed one ran today.
    record_run(database.engine, clock.now() - dt.timedelta(days=1))
    record_run(database.engine, clock.now() - dt.timedelta(hours=1), ok=False)
    log = Recorder()
    runner = make_service(database, clock, log)
    dispatch.during = lambda _should_stop: runner.stop.set()  # stop once the cycle sends

    assert runner.run_forever() == 0

    assert [name for name, _ in dispatch.calls] == ["plan_and_send"]
    assert log.names().index("cycle.rattrapage") < log.names().index("cycle.debut")
    [catch_up] = log.events("cycle.rattrapage")
    assert "26/11/2026 à 06:30:00" in catch_up["message"]
    assert [run.kind for run in runs(database.engine)][-1] == "quotidien"
    assert lease.current(database.engine, name="service") is None


def test_no_cycle_at_start_when_today_was_served_and_retries_are_polled(database, clock, dispatch):
    record_run(database.engine, clock.now() - dt.timedelta(hours=2))  # 08:30 Paris, after 06:30
    log = Recorder()
    runner = make_service(database, clock, log, poll_s=0.05)
    dispatch.report = Report(sent=1, waiting=0)

    def after_two_polls(_should_stop: Any) -> None:
        if len(dispatch.calls) == 2:
            runner.stop.set()

    dispatch.during = after_two_polls

    assert runner.run_forever() == 0

    assert [name for name, _ in dispatch.calls] == ["send_due", "send_due"]
    assert "cycle.debut" not in log.names() and len(runs(database.engine)) == 1
    [waiting] = log.events("service.attente")
    assert "27/11/2026 à 06:30:00" in waiting["message"]
    assert log.events("relances.bilan")[0]["envoyes"] == 1
    assert log.names()[-2:] == ["bail.libere", "service.arret"]


def test_lost_lease_stops_sending(database, clock, dispatch):
    """Another process took the lease (ours had expired during a stall): the renewing
    thread notices, the sending stops at the next mail, the other's lease is kept."""
    log = Recorder()
    runner = make_service(database, clock, log, lease_s=3)  # renewed every second
    seen: list[bool] = []

    def taken_meanwhile(should_stop: Any) -> None:
        with database.engine.begin() as connection:
            connection.exec_driver_sql(
                "UPDATE service_lease SET owner = 'intrus', host = 'serveur-b', pid = 1"
            )
        deadline = time.monotonic() + 10
        while not should_stop() and time.monotonic() < deadline:
            time.sleep(0.05)
        seen.append(should_stop())

    dispatch.during = taken_meanwhile

    assert runner.run_once() == 1

    assert seen == [True]
    assert "repris par intrus" in log.events("bail.perdu")[0]["message"]
    assert "bail.libere" not in log.names()
    assert lease.current(database.engine, name="service").owner == "intrus"
    [run] = runs(database.engine)
    assert run.ok is False and json.loads(run.summary or "")["interrupted"] is True


# --------------------------------------------------------------------------------------------
# The real command, in its own process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """``cartes service`` running in its own process; its log lines read as they come."""

    def __init__(self, database_url: str, tmp_path: Path, **env: str) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("CARTES_")}
        environment.update(
            {
                "CARTES_DATABASE_URL": database_url,
                "CARTES_BUSY_TIMEOUT_S": "2",
                "CARTES_SERVICE__POLL_S": "3600",
                "CARTES_SMTP__HOST": "127.0.0.1",
                "CARTES_SMTP__PORT": str(free_port()),  # nobody listens there
                "CARTES_SMTP__PASSWORD": SECRET,
                "XDG_CONFIG_HOME": str(tmp_path / "config"),
                "XDG_DATA_HOME": str(tmp_path / "data"),
                **env,
            }
        )
        self.process = subprocess.Popen(
            [CARTES, "service"],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.records: list[dict[str, Any]] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, event: str, timeout: float = 20) -> dict[str, Any]:
        for record in self.records:
            if record["evenement"] == event:
                return record
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            record = json.loads(line)
            self.records.append(record)
            if record["evenement"] == event:
                return record
        raise AssertionError(f"pas d'événement {event} ; reçu : {self.records}")

    def stop(self, timeout: float = 20) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self.wait_for("service.arret", timeout=5)
        return code

    def names(self) -> list[str]:
        return [record["evenement"] for record in self.records]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def test_sigterm_stops_the_service_and_releases_the_lease(database, tmp_path):
    record_run(database.engine, dt.datetime.now(dt.UTC))  # today is served: no cycle
    first = ServiceProcess(database.url, tmp_path)
    try:
        first.wait_for("service.attente")
        holder = lease.current(database.engine, name="service")
        assert holder is not None and holder.pid == first.process.pid

        assert first.stop() == 0
        assert first.names()[-2:] == ["bail.libere", "service.arret"]
        assert "SIGTERM" in first.records[-1]["message"]
        assert lease.current(database.engine, name="service") is None
        assert "cycle.debut" not in first.names()
        assert first.process.stderr is not None and first.process.stderr.read() == ""
    finally:
        first.close()


def test_second_service_waits_and_does_nothing(database, tmp_path):
    # No cycle was ever recorded: each instance would catch up at once if it could.
    first = ServiceProcess(database.url, tmp_path)
    second = None
    try:
        first.wait_for("service.attente")  # after its own catch-up cycle
        assert "cycle.debut" in first.names()
        second = ServiceProcess(database.url, tmp_path)
        busy = second.wait_for("bail.occupe")
        assert busy["niveau"] == "avertissement"
        assert (busy["hote"], busy["pid"]) == (socket.gethostname(), first.process.pid)
        assert busy["titulaire"] == lease.owner_name(socket.gethostname(), first.process.pid)
        assert f"pid {first.process.pid}" in busy["message"] and "jusqu'au" in busy["message"]

        assert second.stop() == 0
        assert "cycle.debut" not in second.names() and "bail.obtenu" not in second.names()
        assert lease.current(database.engine, name="service").pid == first.process.pid
        assert first.stop() == 0
        output = json.dumps(first.records + second.records)
        assert SECRET not in output
    finally:
        first.close()
        if second is not None:
            second.close()
