"""E-mails of renewal alerts: the French rendering of a digest, and sending through a real
SMTP server on 127.0.0.1 (aiosmtpd): one connection for many messages, STARTTLS and AUTH,
implicit TLS, and each failure sorted as temporary, permanent or fatal."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from cartes import mail
from cartes.mail import SmtpSender, render_digest, render_test, write_eml
from cartes.settings import Settings
from inventaire.enums import AlertLevel, CredentialKind
from inventaire.outbox import DigestContent, DigestItem
from tests.smtp_support import (
    HOST,
    SENDER,
    SMTP_PASSWORD,
    SMTP_USER,
    SmtpTestServer,
    free_port,
    smtp_certificates,
    smtp_implicit_tls_server,
    smtp_server,
    smtp_tls_server,
)

# The fixtures above, named here so that linters see them used (pytest finds them by name;
# test parameters of the same name would otherwise read as redefinitions).
FIXTURES = (smtp_certificates, smtp_server, smtp_tls_server, smtp_implicit_tls_server)

NOW = dt.datetime(2026, 11, 26, 5, 30, tzinfo=dt.UTC)
DAY = dt.date(2026, 11, 26)
CLAIRE = "claire.martin@justice.fr"

INSTRUCTIONS = {
    "agent_card": "Passez au SAR avec votre ancienne carte.",
    "expert_card": "Commandez chez CertEurope et prévenez la compagnie.",
    "rpva_key": "Commandez votre nouvelle clé RPVA auprès de l'ordre.",
    "temporary_card": "Adressez-vous au greffe de la procédure.",
}


def make_item(
    n: int,
    *,
    level: AlertLevel = AlertLevel.TO_PLAN,
    kind: CredentialKind = CredentialKind.RPVA_KEY,
    days_left: int = 90,
    order_in: int = 30,
    gap_days: int = 0,
    name: str = "Claire Martin",
    holder_email: str = CLAIRE,
    organisation: str = "Barreau d'Angers",
) -> DigestItem:
    return DigestItem(
        alert_id=n,
        level=level,
        occurrence=0,
        credential_id=n,
        kind=kind,
        serial=f"SN-{n:04d}",
        expires_on=DAY + dt.timedelta(days=days_left),
        order_by=DAY + dt.timedelta(days=order_in),
        days_left=days_left,
        gap_days=gap_days,
        holder_name=name,
        holder_email=holder_email,
        organisation=organisation,
    )


def make_digest(*items: DigestItem, recipient: str = CLAIRE, digest_id: int = 1) -> DigestContent:
    items = items or (make_item(1),)
    return DigestContent(
        id=digest_id,
        recipient=recipient,
        message_id=f"<digest-{digest_id}.20261126@cartes.ca-angers.test>",
        day=DAY,
        items=tuple(sorted(items, key=lambda item: item.order_by)),
    )


@pytest.fixture
def settings() -> Settings:
    return Settings(smtp={"sender": SENDER}, alerts={"instructions": INSTRUCTIONS})


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------
# Rendering


def test_subject_counts_the_items_and_gives_the_earliest_order_by_date(settings):
    digest = make_digest(
        make_item(1, order_in=60), make_item(2, order_in=47), make_item(3, order_in=80)
    )
    message = render_digest(digest, settings=settings, now=NOW)
    assert message["Subject"] == "cartes : 3 supports à renouveler — commande avant le 12/01/2027"

    single = render_digest(make_digest(make_item(1, order_in=47)), settings=settings, now=NOW)
    assert single["Subject"] == "cartes : 1 support à renouveler — commande avant le 12/01/2027"


def test_subject_says_when_the_order_by_date_is_today_or_past(settings):
    today = render_digest(make_digest(make_item(1, order_in=0)), settings=settings, now=NOW)
    assert "aujourd'hui, 26/11/2026" in today["Subject"]
    late = make_digest(make_item(1, level=AlertLevel.GAP, order_in=-5, gap_days=12))
    assert "date limite de commande dépassée (21/11/2026)" in str(
        render_digest(late, settings=settings, now=NOW)["Subject"]
    )


def test_subject_and_text_of_a_digest_of_expired_items(settings):
    expired = make_digest(
        make_item(1, level=AlertLevel.EXPIRED, days_left=-3, order_in=-48, gap_days=48),
        make_item(2, level=AlertLevel.EXPIRED, days_left=-10, order_in=-55, gap_days=55),
    )
    message = render_digest(expired, settings=settings, now=NOW)
    assert message["Subject"] == "cartes : 2 supports expirés — à renouveler sans attendre"
    text, _ = parts(message)
    assert "ont expiré" in text
    assert "le 23/11/2026 (expiré depuis 3 jours)" in text
    assert "commandez le renouvellement sans attendre" in text


def test_headers_and_alternatives(settings):
    message = render_digest(make_digest(), settings=settings, now=NOW)
    assert message["From"] == SENDER
    assert message["To"] == CLAIRE
    assert message["Message-ID"] == "<digest-1.20261126@cartes.ca-angers.test>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"].datetime == NOW
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    # What goes on the wire is 7-bit and reads back the same.
    raw = message.as_bytes()
    assert raw.isascii()
    again = email.message_from_bytes(raw, policy=email.policy.default)
    assert again["Subject"] == message["Subject"]
    assert parts(again) == parts(message)  # type: ignore[arg-type]


def test_the_same_digest_renders_to_the_same_mail(settings):
    digest = make_digest(make_item(1), make_item(2, kind=CredentialKind.AGENT_CARD))
    first = render_digest(digest, settings=settings, now=NOW)
    second = render_digest(digest, settings=settings, now=NOW)
    assert first["Message-ID"] == second["Message-ID"] == digest.message_id
    assert first.as_bytes() == second.as_bytes()
    # Later (a crash, then the digest again): same Message-ID, only the Date moves.
    later = render_digest(digest, settings=settings, now=NOW + dt.timedelta(hours=2))
    assert later["Message-ID"] == digest.message_id


def test_each_item_in_french_with_its_level_and_what_to_do(settings):
    digest = make_digest(
        make_item(1, level=AlertLevel.TO_PLAN, kind=CredentialKind.RPVA_KEY, order_in=30),
        make_item(
            2,
            level=AlertLevel.ORDER_NOW,
            kind=CredentialKind.AGENT_CARD,
            days_left=60,
            order_in=0,
        ),
        make_item(
            3,
            level=AlertLevel.GAP,
            kind=CredentialKind.EXPERT_CARD,
            days_left=20,
            order_in=-25,
            gap_days=40,
        ),
        make_item(
            4,
            level=AlertLevel.EXPIRED,
            kind=CredentialKind.TEMPORARY_CARD,
            days_left=-3,
            order_in=-18,
            gap_days=18,
        ),
    )
    text, html = parts(render_digest(digest, settings=settings, now=NOW))
    for body in (text, html.replace("&#39;", "'")):
        assert "Clé RPVA n° SN-0001 — à prévoir" in body
        assert "Carte agent n° SN-0002 — à commander maintenant" in body
        assert "Carte expert n° SN-0003 — rupture certaine : commandez sans attendre" in body
        assert "Carte temporaire n° SN-0004 — expiré" in body
        for instruction in INSTRUCTIONS.values():
            assert instruction in body
        # Expiry, days left, order-by date, predicted gap.
        assert "le 24/02/2027 (dans 90 jours)" in body
        assert "avant le 26/12/2026 (dans 30 jours)" in body
        assert "aujourd'hui au plus tard (26/11/2026)" in body
        assert "40 jours sans support valide" in body
        assert "le 16/12/2026 (dans 20 jours)" in body
    # Each instruction goes with its own item; the earliest order-by date first.
    blocks = [block for block in text.split("\n\n") if " n° SN-" in block]
    assert [block.split(" n° ")[1][:7] for block in blocks] == [
        "SN-0003",
        "SN-0004",
        "SN-0002",
        "SN-0001",
    ]
    assert INSTRUCTIONS["expert_card"] in blocks[0]
    assert INSTRUCTIONS["temporary_card"] in blocks[1]
    assert INSTRUCTIONS["agent_card"] in blocks[2]
    assert INSTRUCTIONS["rpva_key"] in blocks[3]


def test_holder_is_greeted_by_name(settings):
    text, html = parts(render_digest(make_digest(), settings=settings, now=NOW))
    assert text.startswith("Bonjour Claire Martin,\n")
    assert "Bonjour Claire Martin," in html
    assert "copie" not in text
    assert "Titulaire" not in text


def test_copy_to_a_service_says_so_and_names_holder_and_organisation(settings):
    digest = make_digest(
        make_item(1, name="Claire Martin", organisation="TJ Angers"),
        make_item(2, name="Paul Durand", holder_email="p.durand@avocat.fr", organisation="Laval"),
        recipient="sar@ca-angers.justice.fr",
    )
    text, html = parts(render_digest(digest, settings=settings, now=NOW))
    assert text.startswith("Bonjour,\n")
    assert "Claire Martin," not in text
    for body in (text, html):
        assert "copie adressée à votre service" in body
        assert "Claire Martin (TJ Angers)" in body
        assert "Paul Durand (Laval)" in body


def test_html_escapes_what_comes_from_the_inventory(settings):
    digest = make_digest(
        make_item(1, name="Jean <script>alert(1)</script> & Fils", organisation="<b>TJ</b>"),
        recipient="sar@ca-angers.justice.fr",
    )
    text, html = parts(render_digest(digest, settings=settings, now=NOW))
    assert "<script>" not in html and "<b>TJ" not in html
    assert "Jean &lt;script&gt;alert(1)&lt;/script&gt; &amp; Fils" in html
    assert "Jean <script>alert(1)</script> & Fils" in text  # plain text: as it is
    assert "http" not in html and "src=" not in html  # no external resource


def test_a_bad_recipient_still_renders(settings):
    # The sender refuses it; rendering (and the preview) must not fail on it.
    for recipient in ("claire martin@justice.fr", "josé@justice.fr", "a\nBcc: x@y.fr"):
        message = render_digest(make_digest(recipient=recipient), settings=settings, now=NOW)
        assert message.as_bytes()
        assert "Bcc" not in message


def test_write_eml(settings, tmp_path):
    message = render_digest(make_digest(), settings=settings, now=NOW)
    path = tmp_path / "alerte.eml"
    write_eml(message, path)
    again = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert again["Message-ID"] == message["Message-ID"]
    assert again["Subject"] == message["Subject"]


def test_render_test_mail(settings):
    message = render_test("sar@ca-angers.justice.fr", settings=settings, now=NOW)
    assert message["To"] == "sar@ca-angers.justice.fr"
    assert message["From"] == SENDER
    assert message["Subject"] == "cartes : courriel d'essai"
    assert message["Auto-Submitted"] == "auto-generated"
    body = message.get_content()
    assert "courriel d'essai" in body
    assert "26/11/2026 à 06:30" in body  # Paris time


# ---------------------------------------------------------------------------------------
# Sending


def digest_message(settings: Settings, n: int, recipient: str | None = None) -> EmailMessage:
    to = recipient or f"titulaire{n}@justice.fr"
    digest = make_digest(make_item(n, holder_email=to), recipient=to, digest_id=n)
    return render_digest(digest, settings=settings, now=NOW)


@pytest.fixture
def no_password_in_logs(caplog) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        assert SMTP_PASSWORD not in record.getMessage()


def test_many_messages_over_one_connection(smtp_server):
    settings = Settings(smtp=smtp_server.settings())
    count = 200
    messages = [digest_message(settings, n) for n in range(count)]
    started = time.monotonic()
    with SmtpSender(settings.smtp) as sender:
        results = [sender.send(message) for message in messages]
    elapsed = time.monotonic() - started
    assert {result.outcome for result in results} == {"sent"}
    assert all(result.error is None for result in results)
    received = smtp_server.wait_for(count)
    assert smtp_server.connections == 1
    assert sender.connections == 1
    assert elapsed < 20, f"{count} messages en {elapsed:.1f} s"
    first = received[0]
    assert first.mail_from == SENDER
    assert first.rcpt_tos == ("titulaire0@justice.fr",)
    assert first.message["Message-ID"] == messages[0]["Message-ID"]
    assert {mail.message["Message-ID"] for mail in received} == {
        message["Message-ID"] for message in messages
    }


def test_envelope_recipient_is_the_to_address_only(smtp_server):
    settings = Settings(smtp=smtp_server.settings())
    message = digest_message(settings, 1)
    message["Cc"] = "copie@justice.fr"
    with SmtpSender(settings.smtp) as sender:
        assert sender.send(message).outcome == "sent"
    (received,) = smtp_server.wait_for(1)
    assert received.rcpt_tos == ("titulaire1@justice.fr",)
    assert received.mail_from == SENDER


def test_starttls_and_authentication(smtp_tls_server, no_password_in_logs):
    settings = Settings(smtp=smtp_tls_server.settings())
    assert settings.smtp.security == "starttls"
    with SmtpSender(settings.smtp, ssl_context=smtp_tls_server.client_context) as sender:
        results = [sender.send(digest_message(settings, n)) for n in range(3)]
    assert [result.outcome for result in results] == ["sent"] * 3
    received = smtp_tls_server.wait_for(3)
    assert all(mail.tls and mail.user == SMTP_USER for mail in received)
    assert smtp_tls_server.connections == 1


def test_password_from_a_file(smtp_tls_server, tmp_path):
    secret = tmp_path / "smtp.secret"
    secret.write_text(SMTP_PASSWORD + "\n", encoding="utf-8")
    smtp = smtp_tls_server.settings(password=None, password_file=secret)
    with SmtpSender(smtp, ssl_context=smtp_tls_server.client_context) as sender:
        result = sender.send(digest_message(Settings(smtp=smtp), 1))
    assert result.outcome == "sent"


def test_implicit_tls(smtp_implicit_tls_server):
    settings = Settings(smtp=smtp_implicit_tls_server.settings())
    assert settings.smtp.security == "tls"
    with SmtpSender(settings.smtp, ssl_context=smtp_implicit_tls_server.client_context) as sender:
        results = [sender.send(digest_message(settings, n)) for n in range(2)]
    assert [result.outcome for result in results] == ["sent", "sent"]
    received = smtp_implicit_tls_server.wait_for(2)
    assert all(mail.tls and mail.user == SMTP_USER for mail in received)


def test_wrong_password_is_fatal_and_never_shown(smtp_tls_server, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "Faux-Mdp-9q7Zx3"
    smtp = smtp_tls_server.settings(password=wrong)
    with SmtpSender(smtp, ssl_context=smtp_tls_server.client_context) as sender:
        result = sender.send(digest_message(Settings(smtp=smtp), 1))
        again = sender.send(digest_message(Settings(smtp=smtp), 2))
        shown = [repr(result), str(result), result.error or "", repr(sender), repr(again)]
    assert result.outcome == again.outcome == "fatal"
    assert result.error is not None
    assert result.error.startswith(f"Authentification SMTP refusée par {HOST}:")
    assert "vérifiez smtp.user et le mot de passe (535" in result.error
    encoded = base64.b64encode(f"\0{SMTP_USER}\0{wrong}".encode()).decode()
    for text in [*shown, caplog.text]:
        assert wrong not in text
        assert encoded not in text
    assert smtp_tls_server.messages == []


def test_unreadable_password_file_is_fatal_without_connecting(smtp_tls_server, tmp_path):
    missing = tmp_path / "absent.secret"
    smtp = smtp_tls_server.settings(password=None, password_file=missing)
    with SmtpSender(smtp, ssl_context=smtp_tls_server.client_context) as sender:
        result = sender.send(digest_message(Settings(smtp=smtp), 1))
    assert result.outcome == "fatal"
    assert str(missing) in (result.error or "")
    assert "smtp.password_file" in (result.error or "")
    assert smtp_tls_server.connections == 0


def test_starttls_not_offered_is_fatal(smtp_server):
    smtp = smtp_server.settings(security="starttls")
    with SmtpSender(smtp) as sender:
        result = sender.send(digest_message(Settings(smtp=smtp), 1))
    assert result.outcome == "fatal"
    assert "ne propose pas STARTTLS" in (result.error or "")
    assert "smtp.security" in (result.error or "")


def test_tls_handshake_failure_is_fatal(smtp_server):
    # Implicit TLS against a plain server: the handshake cannot succeed.
    smtp = smtp_server.settings(security="tls")
    with SmtpSender(smtp) as sender:
        result = sender.send(digest_message(Settings(smtp=smtp), 1))
    assert result.outcome == "fatal"
    assert "Négociation TLS impossible" in (result.error or "")


def test_untrusted_server_certificate_is_fatal(smtp_tls_server, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    smtp = smtp_tls_server.settings()
    with SmtpSender(smtp) as sender:  # the system's authorities do not know the test one
        result = sender.send(digest_message(Settings(smtp=smtp), 1))
    assert result.outcome == "fatal"
    assert "Certificat du serveur SMTP" in (result.error or "")
    assert smtp_tls_server.messages == []


def test_authentication_required_but_no_user_is_fatal(smtp_tls_server):
    smtp = smtp_tls_server.settings(user=None, password=None)
    with SmtpSender(smtp, ssl_context=smtp_tls_server.client_context) as sender:
        result = sender.send(digest_message(Settings(smtp=smtp), 1))
    assert result.outcome == "fatal"
    assert "530" in (result.error or "")
    assert "smtp.user" in (result.error or "")


def test_sender_refused_is_fatal(smtp_server):
    smtp_server.refuse_sender(SENDER, 553, "5.7.1 Expéditeur non autorisé")
    smtp = smtp_server.settings()
    with SmtpSender(smtp) as sender:
        result = sender.send(digest_message(Settings(smtp=smtp), 1))
    assert result.outcome == "fatal"
    assert "smtp.sender" in (result.error or "")
    assert "553 5.7.1 Expéditeur non autorisé" in (result.error or "")


def test_server_down_is_temporary_then_the_sender_reconnects(smtp_server):
    settings = Settings(smtp=smtp_server.settings())
    with SmtpSender(settings.smtp) as sender:
        assert sender.send(digest_message(settings, 1)).outcome == "sent"
        smtp_server.stop()
        down = [sender.send(digest_message(settings, n)) for n in (2, 3)]
        assert [result.outcome for result in down] == ["temporary", "temporary"]
        assert all(result.connection_failed for result in down)
        assert "injoignable (connexion refusée)" in (down[1].error or "")
        smtp_server.start()
        back = sender.send(digest_message(settings, 4))
    assert back.outcome == "sent"
    assert [mail.rcpt_tos for mail in smtp_server.wait_for(2)] == [
        ("titulaire1@justice.fr",),
        ("titulaire4@justice.fr",),
    ]
    assert sender.connections == 2


def test_an_idle_connection_closed_by_the_server_is_replaced(smtp_server, monkeypatch):
    monkeypatch.setattr(mail, "IDLE_CHECK_S", 0.0)
    settings = Settings(smtp=smtp_server.settings())
    with SmtpSender(settings.smtp) as sender:
        assert sender.send(digest_message(settings, 1)).outcome == "sent"
        smtp_server.stop()  # the server restarts while the sender is idle
        smtp_server.start()
        assert sender.send(digest_message(settings, 2)).outcome == "sent"
    assert len(smtp_server.wait_for(2)) == 2


def test_nothing_listening_is_temporary():
    smtp = Settings(smtp={"host": HOST, "port": free_port(), "timeout_s": 1}).smtp
    with SmtpSender(smtp) as sender:
        result = sender.send(digest_message(Settings(smtp=smtp), 1))
    assert result.outcome == "temporary"
    assert result.connection_failed
    assert "injoignable" in (result.error or "")


def test_a_silent_server_is_a_temporary_failure_after_timeout_s():
    with socket.socket() as silent:  # accepts connections (backlog), never says a word
        silent.bind((HOST, 0))
        silent.listen(4)
        smtp = Settings(smtp={"host": HOST, "port": silent.getsockname()[1], "timeout_s": 0.5})
        started = time.monotonic()
        with SmtpSender(smtp.smtp) as sender:
            result = sender.send(digest_message(smtp, 1))
        elapsed = time.monotonic() - started
    assert result.outcome == "temporary"
    assert "délai" in (result.error or "")
    assert elapsed < 3


def test_refused_recipient_is_permanent_and_the_next_message_goes(smtp_server):
    smtp_server.refuse("inconnu@justice.fr", 550, "5.1.1 Boîte inconnue")
    settings = Settings(smtp=smtp_server.settings())
    with SmtpSender(settings.smtp) as sender:
        refused = sender.send(digest_message(settings, 1, "inconnu@justice.fr"))
        sent = sender.send(digest_message(settings, 2))
    assert refused.outcome == "permanent"
    assert refused.error == "550 5.1.1 Boîte inconnue (le serveur a refusé le destinataire)"
    assert not refused.connection_failed
    assert sent.outcome == "sent"
    assert [mail.rcpt_tos for mail in smtp_server.wait_for(1)] == [("titulaire2@justice.fr",)]
    assert smtp_server.connections == 1


def test_greylisting_is_temporary(smtp_server):
    smtp_server.refuse("plus-tard@justice.fr", 451, "4.7.1 Greylisting, réessayez")
    settings = Settings(smtp=smtp_server.settings())
    with SmtpSender(settings.smtp) as sender:
        result = sender.send(digest_message(settings, 1, "plus-tard@justice.fr"))
        assert sender.send(digest_message(settings, 2)).outcome == "sent"
    assert result.outcome == "temporary"
    assert "451 4.7.1 Greylisting, réessayez" in (result.error or "")


@pytest.mark.parametrize(
    ("code", "outcome"), [(554, "permanent"), (452, "temporary")], ids=["5xx", "4xx"]
)
def test_message_refused_after_data(smtp_server, code, outcome):
    smtp_server.refuse_data("refus@justice.fr", code, "Contenu refusé")
    settings = Settings(smtp=smtp_server.settings())
    with SmtpSender(settings.smtp) as sender:
        result = sender.send(digest_message(settings, 1, "refus@justice.fr"))
        assert sender.send(digest_message(settings, 2)).outcome == "sent"
    assert result.outcome == outcome
    assert f"{code} Contenu refusé" in (result.error or "")


@pytest.mark.parametrize(
    "recipient",
    ["sans-arobase.justice.fr", "claire martin@justice.fr", "josé@justice.fr", "a@b@c.fr", ""],
)
def test_bad_address_is_permanent_without_contacting_the_server(smtp_server, recipient):
    settings = Settings(smtp=smtp_server.settings())
    message = digest_message(settings, 1, recipient or "x@y.fr")
    if not recipient:
        del message["To"]
    with SmtpSender(settings.smtp) as sender:
        result = sender.send(message)
        assert not sender.connected
    assert result.outcome == "permanent"
    assert (result.error or "").startswith("Adresse du destinataire invalide")
    assert smtp_server.connections == 0


def test_smtp_problem_text_is_french():
    refused = ConnectionRefusedError(111, "Connection refused")
    smtp = Settings(smtp={"host": "smtp.example.fr", "port": 587}).smtp
    assert mail.smtp_problem_text(refused, smtp) == (
        "Serveur SMTP smtp.example.fr:587 injoignable (connexion refusée) : nouvel essai plus tard"
    )


def test_the_test_server_restarts_on_the_same_port():
    with SmtpTestServer() as server:
        port = server.port
        server.stop()
        assert not server.running
        server.start()
        assert server.port == port and server.running


@pytest.mark.slow
def test_a_subprocess_reaches_the_test_server_through_its_environment(smtp_tls_server):
    # What a CLI test does: the settings come from CARTES_SMTP__* and the test authority
    # from SSL_CERT_FILE, read by the default SSL context.
    script = (
        "import datetime as dt\n"
        "from cartes.mail import SmtpSender, render_test\n"
        "from cartes.settings import Settings\n"
        "settings = Settings()\n"
        "message = render_test('sar@justice.fr', settings=settings, now=dt.datetime.now(dt.UTC))\n"
        "with SmtpSender(settings.smtp) as sender:\n"
        "    print(sender.send(message).outcome)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **smtp_tls_server.environ()},
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.stdout.strip() == "sent", done.stderr
    (received,) = smtp_tls_server.wait_for(1)
    assert received.rcpt_tos == ("sar@justice.fr",)
    assert received.tls and received.user == SMTP_USER
