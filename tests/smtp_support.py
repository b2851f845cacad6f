"""A real SMTP server on 127.0.0.1 for tests: aiosmtpd in a thread, a handler that keeps
what it receives and refuses what it is told to.

Test modules import the fixtures they use::

    from tests.smtp_support import smtp_server  # noqa: F401

``smtp_server``: plain SMTP. ``smtp_tls_server``: STARTTLS required, then AUTH (PLAIN or
LOGIN) required with ``SMTP_USER`` / ``SMTP_PASSWORD``. ``smtp_implicit_tls_server``: TLS
from the first byte (port 465 style), AUTH required. Each gives an ``SmtpTestServer``:
``host``, ``port``, ``messages`` (``ReceivedMail``), ``connections``, ``wait_for(count,
timeout)``, ``refuse(address, code, text)``, ``stop()`` / ``start()`` (same port),
``settings(**changes)`` (an ``SmtpSettings`` for it), ``environ()`` (variables for a
``cartes`` subprocess, the test authority included) and, for the TLS variants,
``client_context`` (an ``ssl.SSLContext`` trusting the test authority) and ``ca_file``.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cartes.settings import SmtpSettings

HOST = "127.0.0.1"
SMTP_USER = "alertes@cartes.test"
# Distinctive: tests look for it everywhere it must not be.
SMTP_PASSWORD = "Mdp-SMTP-7f3a9c"
SENDER = "cartes@ca-angers.test"


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the server received it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    tls: bool
    user: str | None  # the authenticated login, if any

    @functools.cached_property
    def message(self) -> EmailMessage:
        # Parsed when a test reads it, not in the server's thread: a benchmark sends
        # thousands of messages that nobody reads.
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RecordingHandler:
    """aiosmtpd handler: keeps the messages, counts connections, refuses on demand."""

    received: list[ReceivedMail] = field(default_factory=list)
    # Refusals by address: at RCPT (``refuse``), at MAIL FROM (``refuse_sender``), or at
    # the end of DATA for a message to that recipient (``refuse_data``).
    rcpt_refusals: dict[str, str] = field(default_factory=dict)
    sender_refusals: dict[str, str] = field(default_factory=dict)
    data_refusals: dict[str, str] = field(default_factory=dict)
    connections: int = 0
    # Refuse MAIL FROM before AUTH (aiosmtpd's own check wants STARTTLS, not implicit TLS).
    require_auth: bool = False
    condition: threading.Condition = field(default_factory=threading.Condition)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> Any:
        session.host_name = hostname
        # One connection may say EHLO twice (again after STARTTLS): count connections.
        if not getattr(server, "_counted", False):
            server._counted = True  # type: ignore[attr-defined]
            with self.condition:
                self.connections += 1
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        refusal = self.sender_refusals.get(address.lower())
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        refusal = self.rcpt_refusals.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for address in envelope.rcpt_tos:
            refusal = self.data_refusals.get(address.lower())
            if refusal:
                return refusal
        raw = envelope.original_content or b""
        login = getattr(session.auth_data, "login", None)
        user = login.decode() if isinstance(login, bytes) else None
        mail = ReceivedMail(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=raw,
            tls=server.transport is not None
            and server.transport.get_extra_info("ssl_object") is not None,
            user=user,
        )
        with self.condition:
            self.received.append(mail)
            self.condition.notify_all()
        return "250 2.0.0 Message accepted"


class _Controller(Controller):
    """Keeps the server's protocol objects, to cut their connections on stop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.protocols: list[SMTP] = []

    def factory(self) -> SMTP:
        protocol = super().factory()
        self.protocols.append(protocol)
        return protocol

    def cut_connections(self) -> None:
        for protocol in self.protocols:
            transport = protocol._original_transport or protocol.transport
            if transport is not None:
                transport.close()


def _authenticator(user: str, password: str) -> Any:
    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return authenticate


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


class SmtpTestServer:
    """An aiosmtpd server on 127.0.0.1 in a thread (see the module docstring)."""

    host = HOST

    def __init__(
        self,
        *,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
        client_context: ssl.SSLContext | None = None,
        ca_file: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.handler = RecordingHandler()
        self.client_context = client_context
        self.ca_file = ca_file
        self.auth = auth
        self.security = "tls" if implicit_tls else "starttls" if starttls else "none"
        self._starttls = starttls
        self._implicit_tls = implicit_tls
        self._controller: _Controller | None = None

    # -- life

    def _new_controller(self) -> _Controller:
        kwargs: dict[str, Any] = {"hostname": HOST, "port": self.port, "ready_timeout": 3.0}
        if self._starttls is not None:
            kwargs.update(tls_context=self._starttls, require_starttls=True)
        if self._implicit_tls is not None:
            kwargs["ssl_context"] = self._implicit_tls
        if self.auth is not None:
            kwargs["authenticator"] = _authenticator(*self.auth)
            if self._implicit_tls is None:
                kwargs.update(auth_required=True, auth_require_tls=True)
            else:
                # aiosmtpd does not see implicit TLS as encryption: the handler checks.
                kwargs.update(auth_required=False, auth_require_tls=False)
                self.handler.require_auth = True
        return _Controller(self.handler, **kwargs)

    def start(self) -> None:
        """Start (again) on the same port."""
        if self._controller is not None:
            return
        controller = self._new_controller()
        deadline = time.monotonic() + 2.0
        while True:
            try:
                controller.start()
                break
            except OSError:
                # The port may linger a moment after a stop.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
                controller = self._new_controller()
        self._controller = controller

    def stop(self) -> None:
        """Stop listening and cut the open connections (the server is down)."""
        controller, self._controller = self._controller, None
        if controller is None:
            return
        controller.loop.call_soon_threadsafe(controller.cut_connections)
        controller.stop()

    def __enter__(self) -> SmtpTestServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._controller is not None

    # -- what was received

    @property
    def messages(self) -> list[ReceivedMail]:
        with self.handler.condition:
            return list(self.handler.received)

    @property
    def connections(self) -> int:
        """Client connections that said EHLO (the controller's readiness probe does not)."""
        with self.handler.condition:
            return self.handler.connections

    def wait_for(self, count: int, timeout: float = 2.0) -> list[ReceivedMail]:
        """The messages once at least ``count`` arrived; AssertionError after ``timeout``."""
        with self.handler.condition:
            arrived = self.handler.condition.wait_for(
                lambda: len(self.handler.received) >= count, timeout
            )
            received = list(self.handler.received)
        assert arrived, f"{len(received)} message(s) reçu(s) sur {count} attendu(s)"
        return received

    # -- behaviour

    def refuse(self, address: str, code: int = 550, text: str = "5.1.1 Boîte inconnue") -> None:
        """Answer ``code text`` to RCPT TO:<address> (550: for good; 451: try later)."""
        self.handler.rcpt_refusals[address.lower()] = f"{code} {text}"

    def refuse_sender(self, address: str, code: int = 553, text: str = "5.7.1 Refusé") -> None:
        self.handler.sender_refusals[address.lower()] = f"{code} {text}"

    def refuse_data(self, address: str, code: int = 554, text: str = "5.6.0 Refusé") -> None:
        """Answer ``code text`` at the end of DATA of a message to ``address``."""
        self.handler.data_refusals[address.lower()] = f"{code} {text}"

    # -- for clients

    def settings(self, **changes: Any) -> SmtpSettings:
        values: dict[str, Any] = {
            "host": HOST,
            "port": self.port,
            "security": self.security,
            "sender": SENDER,
            "timeout_s": 2.0,
        }
        if self.auth is not None:
            values["user"], values["password"] = self.auth
        values.update(changes)
        return SmtpSettings(**values)

    def environ(self) -> dict[str, str]:
        """``CARTES_SMTP__*`` variables (and SSL_CERT_FILE for the test authority) that
        point a ``cartes`` subprocess at this server."""
        env = {
            "CARTES_SMTP__HOST": HOST,
            "CARTES_SMTP__PORT": str(self.port),
            "CARTES_SMTP__SECURITY": self.security,
            "CARTES_SMTP__SENDER": SENDER,
            "CARTES_SMTP__TIMEOUT_S": "2",
        }
        if self.auth is not None:
            env["CARTES_SMTP__USER"], env["CARTES_SMTP__PASSWORD"] = self.auth
        if self.ca_file is not None:
            env["SSL_CERT_FILE"] = str(self.ca_file)
        return env


# ---------------------------------------------------------------------------------------
# A test authority and a server certificate for 127.0.0.1 and localhost


@dataclass(frozen=True)
class SmtpCertificates:
    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_test_certificates(folder: Path) -> SmtpCertificates:
    """A test authority and a server certificate it signed, valid now (real time: TLS
    checks the system clock), for 127.0.0.1 and localhost."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AC de test SMTP cartes")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    certificates = SmtpCertificates(
        ca_file=folder / "ac-test.pem",
        cert_file=folder / "serveur.pem",
        key_file=folder / "serveur.key",
    )
    certificates.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    certificates.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certificates.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certificates


# ---------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def smtp_certificates(tmp_path_factory: pytest.TempPathFactory) -> SmtpCertificates:
    return make_test_certificates(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    """Plain SMTP on 127.0.0.1, no authentication."""
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def smtp_tls_server(smtp_certificates: SmtpCertificates) -> Iterator[SmtpTestServer]:
    """STARTTLS required, then AUTH PLAIN/LOGIN required (SMTP_USER, SMTP_PASSWORD)."""
    with SmtpTestServer(
        starttls=smtp_certificates.server_context(),
        auth=(SMTP_USER, SMTP_PASSWORD),
        client_context=smtp_certificates.client_context(),
        ca_file=smtp_certificates.ca_file,
    ) as server:
        yield server


@pytest.fixture
def smtp_implicit_tls_server(smtp_certificates: SmtpCertificates) -> Iterator[SmtpTestServer]:
    """TLS from the first byte (as on port 465), AUTH required."""
    with SmtpTestServer(
        implicit_tls=smtp_certificates.server_context(),
        auth=(SMTP_USER, SMTP_PASSWORD),
        client_context=smtp_certificates.client_context(),
        ca_file=smtp_certificates.ca_file,
    ) as server:
        yield server
