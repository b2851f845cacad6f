"""Alerts from the outbox to a real SMTP server (aiosmtpd on 127.0.0.1): what arrives,
that nothing goes twice and nothing is lost, and 400 days of daily runs."""

from __future__ import annotations

import datetime as dt
import email.policy
import json
from email import message_from_bytes

import sqlalchemy as sa

from cartes import dispatch
from cartes.settings import Settings
from inventaire import alerts, credentials, db, lifecycle, operators
from inventaire.clock import PARIS
from inventaire.enums import AlertLevel, CredentialKind, CredentialState, DigestState
from inventaire.models import Alert, Credential, Digest, Holder
from tests.conftest import NOW
from tests.factories import add_credential
from tests.smtp_support import SmtpTestServer

K = CredentialKind
L = AlertLevel
S = CredentialState
TODAY = NOW.date()
BAR = "ordre@avocats.test"
SAR = "sar@justice.test"


def make_settings(server: SmtpTestServer, **alerts_changes) -> Settings:
    return Settings(
        smtp=server.settings(),
        alerts={"copies": {"rpva_key": [BAR], "agent_card": [SAR]}, **alerts_changes},
    )


def email_of(engine, credential_id: int) -> str:
    with db.read_session(engine) as session:
        credential = session.get(Credential, credential_id)
        return session.get(Holder, credential.holder_id).email


def text_of(received) -> str:
    return received.message.get_body(("plain",)).get_content()


def digest_states(engine) -> dict[str, DigestState]:
    with db.read_session(engine) as session:
        rows = session.execute(sa.select(Digest.recipient, Digest.state)).all()
    return {recipient: DigestState(state) for recipient, state in rows}


def test_mails_arrive_once_with_their_content(engine, smtp_server):
    rpva = add_credential(engine, NOW, expires_on=TODAY + dt.timedelta(days=20))
    agent = add_credential(
        engine, NOW, kind=K.AGENT_CARD, expires_on=TODAY + dt.timedelta(days=100)
    )
    settings = make_settings(smtp_server)
    report = dispatch.plan_and_send(engine, settings, now=NOW)
    assert (report.planned, report.sent, report.failed, report.error) == (4, 4, 0, None)
    received = smtp_server.wait_for(4)
    by_recipient = {mail.rcpt_tos: mail for mail in received}
    assert set(by_recipient) == {(email_of(engine, rpva),), (email_of(engine, agent),),
                                 (BAR,), (SAR,)}  # fmt: skip
    holder_mail = by_recipient[(email_of(engine, rpva),)]
    assert holder_mail.mail_from == settings.smtp.sender
    subject = holder_mail.message["Subject"]
    assert "1 support" in subject and "17/10/2026" in subject  # order-by: expiry − 60 days
    body = text_of(holder_mail)
    assert "rupture" in body.lower() and "RPVA" in body and "SER-" in body
    assert settings.alerts.instructions.rpva_key[:40] in " ".join(body.split())
    copy = text_of(by_recipient[(SAR,)])
    assert "Claire" in copy and settings.alerts.instructions.agent_card[:30] in " ".join(
        copy.split()
    )
    # Every message carries its digest's Message-ID, recorded as sent.
    with db.read_session(engine) as session:
        sent_ids = set(
            session.execute(sa.select(Digest.message_id).where(Digest.state == "SENT")).scalars()
        )
    assert {mail.message["Message-ID"] for mail in received} == sent_ids
    # The next run, the same day and the day after, sends nothing new.
    assert dispatch.plan_and_send(engine, settings, now=NOW).sent == 0
    assert dispatch.plan_and_send(engine, settings, now=NOW + dt.timedelta(days=1)).sent == 0
    assert len(smtp_server.messages) == 4
    assert smtp_server.connections == 1  # one connection for the whole first run


def test_server_down_nothing_lost_then_everything_once(engine, smtp_server):
    ids = [
        add_credential(engine, NOW, expires_on=TODAY + dt.timedelta(days=days))
        for days in (5, 15, 25)
    ]
    settings = make_settings(smtp_server, retry_first_s=60)
    smtp_server.stop()
    report = dispatch.plan_and_send(engine, settings, now=NOW)
    assert report.sent == 0 and report.error and "127.0.0.1" in report.error
    assert report.waiting == 4  # three holders and the bar
    assert set(digest_states(engine).values()) == {DigestState.PENDING}
    # The run stopped at the first failure to connect: one digest was tried, and waits
    # for its backoff (60 s, then 120 s...); the others were put back, still due.
    report = dispatch.send_due(engine, settings, now=NOW + dt.timedelta(seconds=30))
    assert report.sent == 0 and report.waiting == 4
    smtp_server.start()
    report = dispatch.send_due(engine, settings, now=NOW + dt.timedelta(seconds=31))
    assert (report.sent, report.waiting) == (2, 2)  # the two never tried
    later = NOW + dt.timedelta(minutes=10)
    report = dispatch.send_due(engine, settings, now=later)
    assert (report.sent, report.waiting, report.error) == (2, 0, None)
    assert sorted(m.rcpt_tos[0] for m in smtp_server.wait_for(4)) == sorted(
        [*(email_of(engine, i) for i in ids), BAR]
    )
    assert dispatch.plan_and_send(engine, settings, now=later).sent == 0
    assert len(smtp_server.messages) == 4
    with db.read_session(engine) as session:
        attempts = session.execute(sa.select(Digest.attempts)).scalars().all()
    assert sorted(attempts) == [1, 1, 2, 2]


def test_a_permanent_refusal_fails_only_that_recipient(engine, smtp_server, cli):
    refused = add_credential(engine, NOW, expires_on=TODAY + dt.timedelta(days=5))
    other = add_credential(engine, NOW, expires_on=TODAY + dt.timedelta(days=6))
    address = email_of(engine, refused)
    smtp_server.refuse(address, 550, f"5.1.1 <{address}>: Mailbox unknown")
    smtp_server.refuse(BAR, 451, "4.7.1 Greylisted, try later")
    settings = make_settings(smtp_server)
    logged: list[tuple[str, dict]] = []
    report = dispatch.plan_and_send(
        engine, settings, now=NOW, log=lambda event, **fields: logged.append((event, fields))
    )
    assert (report.sent, report.failed) == (1, 1)
    assert [m.rcpt_tos for m in smtp_server.messages] == [(email_of(engine, other),)]
    # The logs name digests and alerts by id, never an address, even quoting the server.
    refusals = [fields for event, fields in logged if event == "courriel.refuse"]
    assert len(refusals) == 1 and "550" in refusals[0]["message"]
    assert "@" not in json.dumps(logged, default=str)
    states = digest_states(engine)
    assert states[email_of(engine, refused)] is DigestState.FAILED
    assert states[BAR] is DigestState.PENDING  # 4xx: tried again later
    result = cli("alertes", "liste", "--etat", "echec", "--format", "json", operator="lecture")
    [failed] = json.loads(result.out)
    assert failed["destinataire"] == email_of(engine, refused)
    assert "550" in failed["erreur"] and "Mailbox unknown" in failed["erreur"]
    # A failed digest is not tried again; the greylisted one goes once accepted.
    smtp_server.handler.rcpt_refusals.clear()
    report = dispatch.send_due(engine, settings, now=NOW + dt.timedelta(hours=2))
    assert (report.sent, report.failed) == (1, 0)
    assert [m.rcpt_tos[0] for m in smtp_server.messages] == [email_of(engine, other), BAR]


def test_a_bad_address_in_the_inventory_fails_without_the_server(engine, smtp_server):
    bad = add_credential(engine, NOW, expires_on=TODAY + dt.timedelta(days=5))
    good = add_credential(engine, NOW, expires_on=TODAY + dt.timedelta(days=5))
    with db.write_session(engine) as session:
        holder = session.get(Holder, session.get(Credential, bad).holder_id)
        holder.email = "claire martin@example"
    report = dispatch.plan_and_send(engine, make_settings(smtp_server), now=NOW)
    assert (report.sent, report.failed) == (2, 1)  # the good holder and the bar
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == sorted(
        [email_of(engine, good), BAR]
    )
    assert digest_states(engine)["claire martin@example"] is DigestState.FAILED


def test_starttls_and_auth_through_the_command(engine, cli, smtp_tls_server, monkeypatch):
    credential = add_credential(engine, NOW, expires_on=TODAY + dt.timedelta(days=5))
    for name, value in smtp_tls_server.environ().items():
        monkeypatch.setenv(name, value)
    result = cli("alertes", "envoyer", operator="lecture")
    assert result.code == 1 and "rôle requis" in result.err
    result = cli("alertes", "envoyer", operator="gestion")
    assert result.code == 0, result.err
    assert "Courriels envoyés : 1" in result.out
    [received] = smtp_tls_server.wait_for(1)
    assert received.tls and received.user == smtp_tls_server.auth[0]
    assert received.rcpt_tos == (email_of(engine, credential),)
    result = cli("alertes", "tester", "sar@justice.test", operator="lecture")
    assert result.code == 1 and "rôle requis" in result.err
    result = cli("alertes", "tester", "sar@justice.test", operator="gestion")
    assert result.code == 0, result.err
    assert smtp_tls_server.wait_for(2)[-1].message["Subject"] == "cartes : courriel d'essai"
    # A wrong password: a French message that says what to fix, and never the password.
    monkeypatch.setenv("CARTES_SMTP__PASSWORD", "Faux-Mot-De-Passe-42")
    add_credential(engine, NOW, expires_on=TODAY + dt.timedelta(days=5))
    result = cli("alertes", "envoyer", operator="gestion")
    assert result.code == 1
    assert "Authentification" in result.err and "Rien n'est perdu" in result.err
    assert "Faux-Mot-De-Passe-42" not in result.err + result.out
    result = cli("alertes", "tester", "sar@justice.test", operator="gestion")
    assert result.code == 1 and "Faux-Mot-De-Passe-42" not in result.err + result.out
    result = cli("alertes", "liste", "--format", "json", operator="lecture")
    assert "Faux-Mot-De-Passe-42" not in result.out
    assert {o["etat"] for o in json.loads(result.out) if o["envoyee_le"] is None} == {"en_attente"}


def test_preview_records_nothing_and_writes_eml(engine, cli, smtp_server, monkeypatch, tmp_path):
    add_credential(engine, NOW, expires_on=TODAY + dt.timedelta(days=5))
    for name, value in smtp_server.environ().items():
        monkeypatch.setenv(name, value)
    result = cli("alertes", "apercu", "--dossier", str(tmp_path / "eml"), operator="lecture")
    assert result.code == 0, result.err
    assert "1 courriel à envoyer le 26/11/2026" in result.out
    assert "rupture certaine" in result.out
    [eml] = sorted((tmp_path / "eml").glob("*.eml"))
    message = message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert message["To"].startswith("claire.martin")
    with db.read_session(engine) as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Alert)).scalar() == 0
        assert session.execute(sa.select(sa.func.count()).select_from(Digest)).scalar() == 0
    result = cli("alertes", "apercu", "--format", "json", "--date", "2026-12-05",
                 operator="lecture")  # fmt: skip
    assert result.code == 0, result.err
    [digest] = json.loads(result.out)
    assert digest["alertes"][0]["niveau"] == "expire"
    assert smtp_server.messages == []


# ---------------------------------------------------------------------------------------
# 400 days of daily runs


def _paris_morning(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(6, 30), tzinfo=PARIS).astimezone(dt.UTC)


def test_four_hundred_days_of_daily_runs(engine, smtp_server):
    """Sample credentials of each kind, one renewed half-way, one whose renewal is
    requested but never arrives, one muted: each gets exactly its expected sequence of
    alerts, in mails that arrive on the expected days."""
    start = TODAY
    settings = make_settings(smtp_server)

    def on(day: int) -> dt.date:
        return start + dt.timedelta(days=day)

    def add(kind: K, expiry_day: int) -> int:
        return add_credential(engine, NOW, kind=kind, expires_on=on(expiry_day))

    rpva = add(K.RPVA_KEY, 200)  # lead 45, margin 15
    agent = add(K.AGENT_CARD, 250)  # lead 60
    expert = add(K.EXPERT_CARD, 150)  # lead 30
    temporary = add(K.TEMPORARY_CARD, 300)  # lead 15
    renewed = add(K.RPVA_KEY, 200)  # renewal requested on day 120, handed over on day 190
    requested = add(K.RPVA_KEY, 200)  # requested on day 120, never arrives
    muted = add(K.RPVA_KEY, 200)  # muted on day 145
    expired_weeks = [1 + 7 * week for week in range(8)]
    expected = {
        rpva: [(110, L.TO_PLAN, 0), (140, L.ORDER_NOW, 0), (156, L.GAP, 0)]
        + [(200 + d, L.EXPIRED, w) for w, d in enumerate(expired_weeks)],
        agent: [(145, L.TO_PLAN, 0), (175, L.ORDER_NOW, 0), (191, L.GAP, 0)]
        + [(250 + d, L.EXPIRED, w) for w, d in enumerate(expired_weeks)],
        expert: [(75, L.TO_PLAN, 0), (105, L.ORDER_NOW, 0), (121, L.GAP, 0)]
        + [(150 + d, L.EXPIRED, w) for w, d in enumerate(expired_weeks)],
        temporary: [(240, L.TO_PLAN, 0), (270, L.ORDER_NOW, 0), (286, L.GAP, 0)]
        + [(300 + d, L.EXPIRED, w) for w, d in enumerate(expired_weeks)],
        renewed: [(110, L.TO_PLAN, 0)],
        requested: [(110, L.TO_PLAN, 0)]
        + [(200 + d, L.EXPIRED, w) for w, d in enumerate(expired_weeks)],
        muted: [(110, L.TO_PLAN, 0), (140, L.ORDER_NOW, 0)],
    }

    def request_renewal(of: int, now: dt.datetime) -> int:
        with db.write_session(engine) as session:
            issuer = operators.find(session, "remise")
            old = session.get(Credential, of)
            new = credentials.create_credential(
                session,
                holder_id=old.holder_id,
                kind=K.RPVA_KEY,
                state=S.REQUESTED,
                operator=issuer,
                now=now,
            )
            new.replaces_id = of
            return new.id

    def move(credential_id: int, target: S, now: dt.datetime) -> None:
        with db.write_session(engine) as session:
            lifecycle.transition(
                session,
                credential_id=credential_id,
                target=target,
                operator=operators.find(session, "remise"),
                reason="test",
                now=now,
            )

    mails_per_day: dict[int, int] = {}
    replacement = None
    for day in range(400):
        now = _paris_morning(on(day))
        if day == 120:
            replacement = request_renewal(renewed, now)
            request_renewal(requested, now)
        if day == 160:
            move(replacement, S.RECEIVED, now)
        if day == 190:
            move(replacement, S.ACTIVE, now)
        if day == 145:
            with db.write_session(engine) as session:
                alerts.mute(
                    session,
                    credential_id=muted,
                    operator=operators.find(session, "gestion"),
                    reason="titulaire parti",
                    now=now,
                )
        before = len(smtp_server.messages)
        report = dispatch.plan_and_send(engine, settings, now=now)
        assert report.ok, report
        if report.sent:
            mails_per_day[day] = len(smtp_server.messages) - before

    with db.read_session(engine) as session:
        rows = session.execute(
            sa.select(Alert.credential_id, Alert.due_on, Alert.level, Alert.occurrence)
            .where(Alert.recipient != BAR, Alert.recipient != SAR)
            .order_by(Alert.credential_id, Alert.due_on)
        ).all()
    got: dict[int, list[tuple[int, AlertLevel, int]]] = {}
    for credential_id, due_on, level, occurrence in rows:
        got.setdefault(credential_id, []).append(
            ((due_on - start).days, AlertLevel(level), occurrence)
        )
    assert got == expected
    # Every alert went out by mail on its day, one mail per recipient and day.
    received = smtp_server.messages
    holder_mails = [m for m in received if m.rcpt_tos[0] not in (BAR, SAR)]
    assert len(holder_mails) == sum(len(sequence) for sequence in expected.values())
    assert len({m.message["Message-ID"] for m in received}) == len(received)
    # Copies: the bar gets the RPVA keys' alerts, grouped by day into one mail.
    rpva_days = {d for cid in (rpva, renewed, requested, muted) for d, _, _ in expected[cid]}
    assert len([m for m in received if m.rcpt_tos == (BAR,)]) == len(rpva_days)
    assert set(mails_per_day) == {d for seq in expected.values() for d, _, _ in seq}


# ---------------------------------------------------------------------------------------
# A crash while sending


def _due_inventory_csv(path, holders: int, today: dt.date) -> None:
    """``holders`` lawyers, each with an RPVA key expiring in 20 days (a gap is certain)."""
    from fixtures.synthetic import write_csv

    expiry = (today + dt.timedelta(days=20)).isoformat()
    write_csv(
        path,
        (
            {
                "nom": f"Avocat{number}",
                "prenom": "Jeanne",
                "email": f"avocat{number:04d}@barreau-angers.test",
                "role": "avocat",
                "organisation": "Barreau d'Angers",
                "type": "cle_rpva",
                "modele": "",
                "numero_serie": f"CRASH-{number:04d}",
                "etat": "active",
                "date_remise": "",
                "date_expiration": expiry,
            }
            for number in range(holders)
        ),
    )


def test_kill_9_while_sending_then_restart(database, cli, smtp_server, tmp_path):
    """``kill -9`` of ``cartes service --une-fois`` while it sends 500 digests, then a
    restart: every recipient has their mail, and at most the one in flight went twice
    (with the same Message-ID)."""
    import os
    import signal
    import subprocess
    import time

    from tests.conftest import CARTES

    holders = 500
    today = dt.datetime.now(PARIS).date()  # the subprocesses run on the real clock
    source = tmp_path / "inventaire.csv"
    _due_inventory_csv(source, holders, today)
    result = cli("importer", str(source), operator="gestion")
    assert result.code == 0, result.err
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CARTES_")}
    environment.update(
        CARTES_DATABASE_URL=database.url,
        CARTES_BUSY_TIMEOUT_S="5",
        CARTES_ALERTS__RESEND_AFTER_S="1",
        **smtp_server.environ(),
    )
    command = [CARTES, "--operateur", "admin", "service", "--une-fois"]
    first = subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        smtp_server.wait_for(100, timeout=60)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    assert first.returncode == -signal.SIGKILL
    before_restart = len(smtp_server.messages)
    assert before_restart < holders, "le premier service a tout envoyé avant d'être tué"
    time.sleep(1.2)  # resend_after_s: the digest left "sending" is due again
    second = subprocess.run(command, env=environment, capture_output=True, text=True,
                            timeout=120, check=False)  # fmt: skip
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr
    events = [json.loads(line)["evenement"] for line in second.stdout.splitlines()]
    assert "bail.obtenu" in events  # taken over at once from the dead process
    received = smtp_server.messages
    recipients = [mail.rcpt_tos[0] for mail in received]
    assert set(recipients) == {f"avocat{n:04d}@barreau-angers.test" for n in range(holders)}
    assert len(received) - holders <= 1
    repeated = {r for r in recipients if recipients.count(r) > 1}
    for recipient in repeated:
        ids = {m.message["Message-ID"] for m in received if m.rcpt_tos[0] == recipient}
        assert len(ids) == 1
    with db.read_session(database.engine) as session:
        states = session.execute(sa.select(Digest.state, sa.func.count()).group_by(Digest.state))
        assert {DigestState(state): count for state, count in states} == {DigestState.SENT: holders}


def test_a_manual_send_waits_for_the_service(engine, cli, smtp_server, monkeypatch):
    """While the service holds the lease, ``cartes alertes envoyer`` sends nothing."""
    import os

    from inventaire import lease

    add_credential(engine, NOW, expires_on=TODAY + dt.timedelta(days=5))
    for name, value in smtp_server.environ().items():
        monkeypatch.setenv(name, value)
    held = lease.acquire(engine, name="service", owner="cartes service autre pid 1",
                         host="autre-serveur", pid=os.getpid(), now=dt.datetime.now(dt.UTC),
                         duration_s=600)  # fmt: skip
    assert held.held
    result = cli("alertes", "envoyer", operator="gestion")
    assert result.code == 1
    assert "cartes service autre pid 1 envoie déjà les alertes" in result.err
    assert smtp_server.messages == []
    with db.read_session(engine) as session:
        assert session.execute(sa.select(sa.func.count()).select_from(Alert)).scalar() == 0


def test_smtp_settings_are_checked_and_the_password_never_shown(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("CARTES_SMTP__PASSWORD", "Mot-De-Passe-Secret-9")
    result = cli("config", operator=None)
    assert result.code == 0, result.err
    assert "Mot-De-Passe-Secret-9" not in result.out and 'password = "**********"' in result.out
    old = tmp_path / "ancien.toml"
    old.write_text("[smtp]\nstarttls = true\n", encoding="utf-8")
    result = cli("--config", str(old), "config", operator=None)
    assert result.code == 1 and 'écrivez security = "starttls"' in result.err
    bad = tmp_path / "mauvais.toml"
    bad.write_text('[smtp]\nsecurity = "ssl"\n', encoding="utf-8")
    result = cli("--config", str(bad), "config", operator=None)
    assert result.code == 1 and "smtp.security" in result.err and "starttls" in result.err
