"""The lawyers' status page as it runs in production, for the tests and the benchmark: a
real nginx on 127.0.0.1 configured from ``deploy/nginx/cartes.conf`` as shipped, in front
of a real ``cartes web`` process on a Unix socket, with real certificates.

Only the paths of the shipped site file are changed, by textual substitution, each of them
checked to have happened exactly once: when the shipped file changes shape, the tests
break here instead of testing something else. nginx runs in the foreground with a small
main configuration of its own, all its files in a temporary folder, and logs each request
with the upstream it went to (``-`` when nginx answered itself).

    with web_stack(folder, pki, database_url) as stack:
        answer = https_get(stack.nginx.port, "/statut.json", stack.client_context(lawyer))
        direct = unix_get(stack.web.socket, "/")  # nginx bypassed
        metrics = http_get(stack.web.metrics_port, "/metrics")

The benchmark (``benchmarks/web.py``) uses the same pieces.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.engine import Engine

from cartes import desk
from cartes.readers import CertificateObject, TokenRead
from fixtures.demo import trust_settings
from fixtures.pki import Family, Issued, TestPki
from inventaire import credentials, db, operators, organisations
from inventaire.enums import HolderRole
from pki import CrlStore, TrustStore, Validator, describe
from tests.smtp_support import SmtpCertificates, make_test_certificates

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_SITE = ROOT / "deploy" / "nginx" / "cartes.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CARTES = str(Path(sys.executable).with_name("cartes"))
HOST = "127.0.0.1"
# The families whose keys nginx asks for: lawyers, and agents (their roots and issuing CAs).
CLIENT_FAMILIES = ("avocat", "agent")
# Bounds for a process to come up or go down: limits, not measures.
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
SECRET_FILE = Path("secret") / "jeton"  # under the settings' folder


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on (at the time of asking)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def stop_process(
    process: subprocess.Popen[Any] | None, signum: signal.Signals, what: Callable[[], str]
) -> int:
    """Stop ``process`` with ``signum`` and return its exit code; one that is still there
    after ``STOP_TIMEOUT_S`` is killed, and ``what`` (its name and logs) is raised."""
    if process is None:
        return 0
    if process.poll() is None:
        process.send_signal(signum)
    try:
        return process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"ne s'arrête pas sur {signum.name} : {what()}") from None


# --------------------------------------------------------------------------------------------
# nginx


def site_config(
    shipped: str,
    *,
    port: int,
    certificate: Path,
    key: Path,
    authorities: Path,
    upstream_socket: Path,
    secret_include: Path,
    extra_locations: str = "",
) -> str:
    """The shipped site file with the test's paths and port instead of the production
    ones; ``extra_locations`` (the benchmark's baseline) goes at the end of the server
    block. Each substitution must match exactly once."""
    substitutions = [
        ("    listen 443 ssl;\n", f"    listen {HOST}:{port} ssl;\n"),
        ("    listen [::]:443 ssl;\n", ""),
        (
            "ssl_certificate /etc/cartes/tls/serveur.pem;",
            f"ssl_certificate {certificate};",
        ),
        (
            "ssl_certificate_key /etc/cartes/tls/serveur.key;",
            f"ssl_certificate_key {key};",
        ),
        (
            "ssl_client_certificate /etc/cartes/tls/autorites-clients.pem;",
            f"ssl_client_certificate {authorities};",
        ),
        ("server unix:/run/cartes-web/web.sock;", f"server unix:{upstream_socket};"),
        ("include /etc/cartes/nginx-jeton.conf;", f"include {secret_include};"),
    ]
    text = shipped
    for old, new in substitutions:
        found = text.count(old)
        assert found == 1, f"{SHIPPED_SITE} : {old.strip()!r} trouvé {found} fois, 1 attendu"
        text = text.replace(old, new)
    if extra_locations:
        # The file ends with the server block: the extra locations go before its brace.
        body, brace, after = text.rstrip().rpartition("\n}")
        assert brace and not after, f"{SHIPPED_SITE} ne finit plus par le bloc server"
        text = f"{body}\n\n    {extra_locations.strip()}\n}}\n"
    leftovers = [
        line
        for line in text.splitlines()
        if not line.lstrip().startswith("#") and re.search(r"/etc/|/run/|\b443\b", line)
    ]
    assert not leftovers, f"{SHIPPED_SITE} : chemins de production restants : {leftovers}"
    return text


def main_config(
    folder: Path, site: Path, *, workers: int | str = 1, access_log: bool = True
) -> str:
    """The main nginx.conf: every file nginx writes inside ``folder``, the site included."""
    temp = folder / "temp"
    lines = [
        # Workers run as root only when the master does: the socket (0660) and the
        # temporary folder (0700) are root's.
        "user root;" if os.geteuid() == 0 else "",
        f"worker_processes {workers};",
        f"pid {folder / 'nginx.pid'};",
        f"error_log {folder / 'error.log'} notice;",
        "events { worker_connections 512; }",
        "http {",
        f"    client_body_temp_path {temp / 'body'};",
        f"    proxy_temp_path {temp / 'proxy'};",
        f"    fastcgi_temp_path {temp / 'fastcgi'};",
        f"    uwsgi_temp_path {temp / 'uwsgi'};",
        f"    scgi_temp_path {temp / 'scgi'};",
        "    log_format upstream '$status $upstream_addr \"$request\" $ssl_client_verify';",
        f"    access_log {folder / 'access.log'} upstream;"
        if access_log
        else "    access_log off;",
        f"    include {site};",
        "}",
    ]
    return "\n".join(line for line in lines if line) + "\n"


@dataclass
class Nginx:
    """A real nginx in the foreground, on ``port`` of 127.0.0.1, files under ``folder``."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> list[str]:
        """One line per request: status, upstream address (``-``: nginx answered itself),
        request line, ``$ssl_client_verify``."""
        path = self.folder / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def log_line(self, index: int) -> str:
        """Line ``index`` (from 0) of the access log, once written: nginx logs a request
        after sending its response, so a client may have read it first."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(lines := self.access_log()) <= index:
            assert time.monotonic() < deadline, f"requête {index + 1} absente du journal : {lines}"
            time.sleep(0.01)
        return lines[index]

    def _command(self, *options: str) -> list[str]:
        config = self.folder / "nginx.conf"
        prefix = f"{self.folder}/"
        return [
            NGINX,
            "-p",
            prefix,
            "-c",
            str(config),
            "-e",
            str(self.folder / "error.log"),
            *options,
        ]

    def start(self) -> None:
        checked = subprocess.run(
            self._command("-t"), capture_output=True, text=True, timeout=60, check=False
        )
        assert checked.returncode == 0, f"nginx -t :\n{checked.stderr}\n{self.error_log}"
        self.process = subprocess.Popen(
            self._command("-g", "daemon off;"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"nginx s'est arrêté au démarrage (code {self.process.returncode}) :\n"
                    f"{self.error_log}"
                )
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 1):
                return
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"nginx n'écoute pas sur {HOST}:{self.port} :\n{self.error_log}")

    def stop(self) -> int:
        """Graceful shutdown (SIGQUIT: requests under way end first); the exit code."""
        process, self.process = self.process, None
        return stop_process(process, signal.SIGQUIT, lambda: f"nginx :\n{self.error_log}")


@dataclass(frozen=True)
class NginxOptions:
    """What may differ from the tests' nginx: the benchmark's workers, no access log, its
    baseline location (``site_config``'s ``extra_locations``)."""

    workers: int | str = 1
    access_log: bool = True
    extra_locations: str = ""


def start_nginx(
    folder: Path,
    *,
    tls: SmtpCertificates,
    authorities: Path,
    upstream_socket: Path,
    secret_include: Path,
    options: NginxOptions = NginxOptions(),
) -> Nginx:
    """nginx running the shipped site file, with its paths substituted, on a free port."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / "temp" / name).mkdir(parents=True, exist_ok=True)
    port = free_port()
    site = folder / "cartes.conf"
    site.write_text(
        site_config(
            SHIPPED_SITE.read_text(encoding="utf-8"),
            port=port,
            certificate=tls.cert_file,
            key=tls.key_file,
            authorities=authorities,
            upstream_socket=upstream_socket,
            secret_include=secret_include,
            extra_locations=options.extra_locations,
        ),
        encoding="utf-8",
    )
    (folder / "nginx.conf").write_text(
        main_config(folder, site, workers=options.workers, access_log=options.access_log),
        encoding="utf-8",
    )
    nginx = Nginx(folder, port)
    nginx.start()
    return nginx


def write_client_authorities(pki: TestPki, path: Path) -> Path:
    """The CAs nginx accepts client certificates from: roots and issuing CAs of
    ``CLIENT_FAMILIES``, PEM concatenated."""
    path.write_bytes(
        b"".join(
            certificate.public_bytes(Encoding.PEM)
            for name in CLIENT_FAMILIES
            for certificate in (
                pki.families[name].root.certificate,
                pki.families[name].issuing.certificate,
            )
        )
    )
    return path


# --------------------------------------------------------------------------------------------
# cartes web


def cartes_environment(config: Path) -> dict[str, str]:
    """A user's environment (no CARTES_* leftovers) with ``config`` as settings file."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CARTES_")}
    environment["CARTES_CONFIG"] = str(config)
    return environment


def write_settings(folder: Path, pki: TestPki, database_url: str) -> Path:
    """The settings file of ``cartes web``: the database, the ``[trust]`` section of the
    three families (anchors, issuing CAs, their CRLs) and the secret's file."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f"database_url = {json.dumps(database_url)}",
        "busy_timeout_s = 2",
        *trust_settings(pki, folder / "confiance"),
        f"crl_cache_dir = {json.dumps(str(folder / 'lcr'))}",
        "[web]",
        f"secret_file = {json.dumps(str(folder / SECRET_FILE))}",
    ]
    config = folder / "cartes.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


@dataclass
class CartesWeb:
    """``cartes web`` in its own process, serving the page on ``socket`` and the metrics on
    ``metrics_port`` of 127.0.0.1."""

    config: Path
    socket: Path
    metrics_port: int
    stderr_path: Path
    process: subprocess.Popen[str] | None = None
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def secret(self) -> str:
        """The secret nginx sends (``write_settings`` puts its file beside the settings)."""
        return (self.config.parent / SECRET_FILE).read_text().strip()

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def start(self) -> None:
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                [
                    CARTES,
                    "web",
                    "--socket",
                    str(self.socket),
                    "--port-metriques",
                    str(self.metrics_port),
                ],
                env=cartes_environment(self.config),
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self.reader.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop(check=False)
                raise AssertionError(f"cartes web n'a pas dit être prêt :\n{self.stderr}") from None
            if line is None:
                code = self.process.wait()
                raise AssertionError(f"cartes web s'est arrêté (code {code}) :\n{self.stderr}")
            if line.startswith("Page d'état des clés servie pour nginx"):
                return

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def stop(self, *, check: bool = True) -> int:
        """SIGTERM, as systemd stops it; with ``check``, it must exit 0 having said so."""
        process, self.process = self.process, None
        code = stop_process(process, signal.SIGTERM, lambda: f"cartes web :\n{self.stderr}")
        if check and process is not None:
            assert code == 0, f"cartes web : code {code} à l'arrêt :\n{self.stderr}"
            if self.reader is not None:
                self.reader.join(STOP_TIMEOUT_S)  # the whole output, once the pipe closed
            assert self.output[-1:] == ["Page d'état arrêtée.\n"], self.output
        return code


def start_cartes_web(folder: Path, config: Path) -> tuple[CartesWeb, Path]:
    """``cartes web jeton --nginx`` (the secret and nginx's include), then ``cartes web``
    on a socket under ``folder``; the process and the include's path."""
    include = folder / "nginx-jeton.conf"
    made = subprocess.run(
        [CARTES, "web", "jeton", "--nginx", str(include)],
        env=cartes_environment(config),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert include.read_text().count("proxy_set_header X-Cartes-Jeton") == 1
    web = CartesWeb(
        config=config,
        socket=folder / "web.sock",
        metrics_port=free_port(),
        stderr_path=folder / "cartes-web.err",
    )
    web.start()
    return web, include


# --------------------------------------------------------------------------------------------
# Both


@dataclass
class Stack:
    """nginx in front of ``cartes web``, and what a client needs to talk to them."""

    folder: Path
    pki: TestPki
    tls: SmtpCertificates
    nginx: Nginx
    web: CartesWeb
    database_url: str

    def key_files(self, issued: Issued, name: str) -> tuple[Path, Path]:
        """``issued``'s certificate and key written for a TLS client."""
        folder = self.folder / "clients"
        folder.mkdir(exist_ok=True)
        certificate, key = folder / f"{name}.pem", folder / f"{name}.key"
        certificate.write_bytes(issued.certificate_pem())
        key.write_bytes(issued.key_pem())
        key.chmod(0o600)
        return certificate, key

    def client_context(self, issued: Issued | None, name: str = "client") -> ssl.SSLContext:
        """A TLS client trusting the test server, presenting ``issued`` (None: nothing)."""
        context = self.tls.client_context()
        if issued is not None:
            context.load_cert_chain(*self.key_files(issued, name))
        return context


@contextlib.contextmanager
def web_stack(
    folder: Path,
    pki: TestPki,
    database_url: str,
    *,
    nginx_options: NginxOptions = NginxOptions(),
    show_logs: bool = True,
) -> Iterator[Stack]:
    """``cartes web`` on ``database_url`` (migrated), trusting ``pki``, behind nginx; both
    stopped at the end, where each must exit 0. nginx's error log and the app's errors are
    printed then (pytest shows them with a failed test); with ``show_logs`` false, only
    when something went wrong or nginx logged a warning or worse."""
    config = write_settings(folder / "cartes", pki, database_url)
    tls = make_test_certificates(folder / "tls")
    authorities = write_client_authorities(pki, folder / "tls" / "autorites-clients.pem")
    web, include = start_cartes_web(folder / "cartes", config)
    nginx = None
    failed = False
    try:
        nginx = start_nginx(
            folder / "nginx",
            tls=tls,
            authorities=authorities,
            upstream_socket=web.socket,
            secret_include=include,
            options=nginx_options,
        )
        yield Stack(folder, pki, tls, nginx, web, database_url)
    except BaseException:
        failed = True
        raise
    finally:
        problems = []
        for name, stop in [("nginx", nginx.stop if nginx else lambda: 0), ("cartes web", web.stop)]:
            try:
                code = stop()
                if code != 0:
                    problems.append(f"{name} : code {code} à l'arrêt")
            except AssertionError as exc:
                problems.append(str(exc))
        error_log = nginx.error_log if nginx is not None else ""
        serious = re.search(r"\[(warn|error|crit|alert|emerg)\]", error_log)
        if show_logs or failed or problems or serious:
            if error_log:
                print(f"--- error.log de nginx ---\n{error_log}")
            if web.stderr:
                print(f"--- erreurs de cartes web ---\n{web.stderr}")
        if not failed:
            assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------
# Clients


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: str

    def json(self) -> dict[str, object]:
        return json.loads(self.body)


def _answer(
    connection: http.client.HTTPConnection, method: str, path: str, headers: Mapping[str, str]
) -> Answer:
    try:
        connection.request(method, path, headers=dict(headers))
        response = connection.getresponse()
        body = response.read().decode("utf-8", errors="replace")
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()


def https_get(
    port: int,
    path: str,
    context: ssl.SSLContext,
    headers: Mapping[str, str] | None = None,
    method: str = "GET",
) -> Answer:
    """One request through nginx, on its own TLS connection."""
    connection = http.client.HTTPSConnection(HOST, port, context=context, timeout=60)
    return _answer(connection, method, path, headers or {})


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=60)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self._path))


def unix_get(path: Path, target: str, headers: Mapping[str, str] | None = None) -> Answer:
    """One request straight to the app's Unix socket, nginx bypassed."""
    return _answer(_UnixConnection(path), "GET", target, headers or {})


def http_get(port: int, path: str) -> Answer:
    """One plain HTTP request to 127.0.0.1 (the metrics port)."""
    return _answer(http.client.HTTPConnection(HOST, port, timeout=60), "GET", path, {})


# --------------------------------------------------------------------------------------------
# The inventory


def register_key(
    engine: Engine,
    issued: Issued,
    family: Family,
    *,
    first_name: str,
    last_name: str,
    now: dt.datetime,
    operator: str = "admin",
    organisation: str = "Barreau d'Angers",
) -> int:
    """A lawyer whose RPVA key carries ``issued`` (a certificate of ``family``), registered
    as at the SAR's desk: the holder (the certificate's e-mail address, the names the SAR
    typed), then the key read, validated, matched and recorded as already handed over,
    with its certificate (``cartes.desk``). The credential's id."""
    email = describe(issued.certificate).email
    assert email is not None
    with db.write_session(engine) as session:
        acting = operators.find(session, operator)
        bar = organisations.find(session, organisation)
        assert acting is not None and bar is not None
        credentials.create_holder(
            session,
            last_name=last_name,
            first_name=first_name,
            email=email,
            role=HolderRole.LAWYER,
            organisation_id=bar.id,  # type: ignore[arg-type]
            operator=acting,
            now=now,
        )
    key = TokenRead(
        module="test",
        slot=0,
        label=f"Cle RPVA {last_name}",
        serial=f"RPVA{issued.serial_number:X}"[:16],
        manufacturer="test",
        model="test",
        pin_state=None,
        certificates=(CertificateObject("Authentification", "01", issued.certificate),),
    )
    validator = Validator(
        TrustStore({"cle_rpva": (family.root.certificate,)}, (family.issuing.certificate,)),
        CrlStore(),
    )
    (scanned,) = desk.validate_tokens([key], validator=validator, at=now)
    outcome = desk.match_and_register(
        engine, scanned, operator_login=operator, register=True, already_handed_over=True, now=now
    )
    assert outcome.refused is None and outcome.registration is not None, outcome
    assert outcome.registration.created
    return outcome.registration.credential_id


def real_now() -> dt.datetime:
    """The system clock: nginx checks certificate dates against it, and so does
    ``cartes web``."""
    return dt.datetime.now(dt.UTC)
