"""The lawyers' status page through nginx on loopback: requests per second and latency.

A real nginx configured from ``deploy/nginx/cartes.conf`` (paths substituted, as in the
tests: ``tests/nginx_support.py``) in front of a real ``cartes web`` on its Unix socket,
on a SQLite inventory of realistic size (the demo district, ``cartes demo``) where the
lawyers whose keys are presented are registered with their certificates.

The load is bounded: a few persistent HTTP/1.1 connections (keep-alive), each with its own
TLS session opened with one lawyer's client certificate before the clock starts, each
sending its next request when the previous answer is in (a closed loop), a fixed number
of requests per address. The client is kept light (raw sockets, one request built once),
as the machine's cores are shared by nginx, the app and the client.

Printed for ``/`` and ``/statut.json`` through nginx: requests per second, p50, p95 and
p99 latency, against the targets (issue 11): ≥ 500 requests/s and p99 ≤ 50 ms. Baselines
measured in the same run, in turn with them: nginx answering by itself (``return 200``) on
the same kind of TLS connections, and the app alone on its socket for each address (the
request nginx would pass on, secret included); the ratios say what the page costs over
nginx, and what nginx and TLS cost over the app. Figures are those of the median round
(by rate), its latencies over all of its requests; the spread of the rounds is shown.

    python benchmarks/web.py [--titulaires 3000] [--avocats 8] [--connexions 4]
                             [--requetes 2000] [--tours 3]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from _common import CACHE, CARTES, ROOT, at_least, run, verdict
from cryptography.hazmat.primitives.serialization import Encoding

from fixtures.pki import Issued, build_test_pki, issue_holders
from inventaire import db

sys.path.insert(0, str(ROOT))
# The tests' harness, from the repository (not an installed package).
from tests.nginx_support import (
    HOST,
    NginxOptions,
    Stack,
    cartes_environment,
    real_now,
    register_key,
    web_stack,
    write_settings,
)

TARGET_RATE = 500.0  # requests per second
TARGET_P99_MS = 50.0
BASELINE = "/repere"
# nginx answering by itself, on the same server block and TLS connections as the page.
BASELINE_LOCATION = f'location = {BASELINE} {{ default_type text/plain; return 200 "ok\\n"; }}'
TIMEOUT_S = 30.0  # per socket operation: a hang fails the run instead of blocking it
_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection: *close", re.IGNORECASE)


# --------------------------------------------------------------------------------------------
# A light HTTP/1.1 client: one request built once, answers read by Content-Length


class Connection:
    """A persistent connection that sends the same request again and again."""

    def __init__(
        self, connect: Callable[[], socket.socket], request: bytes, expected: bytes
    ) -> None:
        self._connect = connect
        self._request = request
        self.expected = expected  # in the first answer: the right page for this client
        self._socket = connect()
        self._buffer = b""

    def exchange(self) -> tuple[int, bytes]:
        """Send the request, read the whole answer: its status and body."""
        self._socket.sendall(self._request)
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            self._receive()
        head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
        length = _LENGTH.search(head)
        if length is None:
            raise SystemExit(f"réponse sans Content-Length : {head!r}")
        size = int(length.group(1))
        while len(self._buffer) < size:
            self._receive()
        body, self._buffer = self._buffer[:size], self._buffer[size:]
        if _CLOSE.search(head):  # nginx's keepalive_requests reached: a new connection
            self.close()
            self._socket = self._connect()
            self._buffer = b""
        return int(head[9:12]), body

    def _receive(self) -> None:
        chunk = self._socket.recv(65536)
        if not chunk:
            raise SystemExit("connexion fermée au milieu d'une réponse")
        self._buffer += chunk

    def close(self) -> None:
        self._socket.close()


def tls_connector(stack: Stack, issued: Issued, name: str) -> Callable[[], socket.socket]:
    """Opens a TLS connection to nginx presenting ``issued`` (handshake done)."""
    context = stack.client_context(issued, name)

    def connect() -> socket.socket:
        raw = socket.create_connection((HOST, stack.nginx.port), timeout=TIMEOUT_S)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return context.wrap_socket(raw, server_hostname=HOST)

    return connect


def unix_connector(path: Path) -> Callable[[], socket.socket]:
    def connect() -> socket.socket:
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.settimeout(TIMEOUT_S)
        raw.connect(str(path))
        return raw

    return connect


def request(path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", "User-Agent: banc-cartes"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --------------------------------------------------------------------------------------------
# Load


@dataclass(frozen=True)
class Figures:
    rate: float  # requests per second, all connections together
    latencies: list[float]  # seconds, each request

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000


def load(connections: list[Connection], total: int) -> Figures:
    """``total`` requests shared by ``connections``, each its own thread in a closed loop;
    every answer must be 200, and the first of each connection hold what it expects."""
    share = total // len(connections)
    latencies: list[list[float]] = [[] for _ in connections]
    failures: list[str] = []
    start = threading.Barrier(len(connections) + 1)

    def work(index: int) -> None:
        connection, mine = connections[index], latencies[index]
        start.wait()
        try:
            for number in range(share):
                sent = time.perf_counter()
                status, body = connection.exchange()
                mine.append(time.perf_counter() - sent)
                if status != 200 or (number == 0 and connection.expected not in body):
                    failures.append(f"{status} {body[:300]!r}")
                    return
        except (OSError, SystemExit) as exc:
            failures.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(connections))]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    if failures:
        raise SystemExit(f"réponse inattendue : {failures[0]}")
    return Figures(share * len(connections) / seconds, [s for mine in latencies for s in mine])


def median_round(rounds: list[Figures]) -> Figures:
    return sorted(rounds, key=lambda figures: figures.rate)[len(rounds) // 2]


# --------------------------------------------------------------------------------------------


def inventory(config: Path, holders: int) -> None:
    """The demo district of ``holders`` holders, made by the commands an installation
    uses (``cartes init``, ``cartes demo``)."""
    environment = cartes_environment(config)
    run([CARTES, "--operateur", "admin", "init"], environment, timeout_s=300)
    demo = [CARTES, "--operateur", "admin", "demo", "--titulaires", str(holders)]
    run(demo, environment, timeout_s=600)


def main() -> None:
    parser = argparse.ArgumentParser(description="Mesure de la page d'état des clés")
    parser.add_argument("--titulaires", type=int, default=3000)
    parser.add_argument("--avocats", type=int, default=8, help="clés enregistrées présentées")
    parser.add_argument("--connexions", type=int, default=4)
    parser.add_argument("--requetes", type=int, default=2000, help="par adresse et par tour")
    parser.add_argument("--tours", type=int, default=3)
    args = parser.parse_args()

    now = real_now()  # nginx checks certificate dates against the system clock
    pki = build_test_pki(now=now, key_cache=CACHE / "pki-keys")
    avocat = pki.families["avocat"]
    lawyers = issue_holders(avocat, args.avocats, now=now)
    with tempfile.TemporaryDirectory(prefix="banc-web-") as name:
        folder = Path(name)
        database_url = f"sqlite:///{folder / 'cartes.db'}"
        config = write_settings(folder / "cartes", pki, database_url)
        inventory(config, args.titulaires)
        engine = db.make_engine(database_url)
        for index, issued in enumerate(lawyers):
            register_key(
                engine, issued, avocat, first_name="Avocat", last_name=f"Banc{index}", now=now
            )
        engine.dispose()
        with web_stack(
            folder / "pile",
            pki,
            database_url,
            nginx_options=NginxOptions(
                workers="auto", access_log=False, extra_locations=BASELINE_LOCATION
            ),
            show_logs=False,
        ) as stack:
            measure(stack, lawyers, args)


def measure(stack: Stack, lawyers: list[Issued], args: argparse.Namespace) -> None:
    secret = stack.web.secret
    tls = [tls_connector(stack, issued, f"avocat{i}") for i, issued in enumerate(lawyers)]

    def lawyer(round_number: int, i: int) -> int:
        """Each connection of a round presents its own lawyer's key; the rounds rotate."""
        return (round_number * args.connexions + i) % len(lawyers)

    def through_nginx(path: str) -> Callable[[int], list[Connection]]:
        def make(round_number: int) -> list[Connection]:
            connections = []
            for i in range(args.connexions):
                index = lawyer(round_number, i)
                # The baseline's answer is nginx's; the page's names the key presented.
                expected = b"ok\n" if path == BASELINE else fingerprint(lawyers[index])
                connections.append(Connection(tls[index], request(path), expected))
            return connections

        return make

    def app_alone(path: str) -> Callable[[int], list[Connection]]:
        def make(round_number: int) -> list[Connection]:
            connections = []
            for i in range(args.connexions):
                issued = lawyers[lawyer(round_number, i)]
                # What nginx passes on for a verified certificate, secret included.
                headers = {
                    "X-Cartes-Jeton": secret,
                    "X-Cartes-Verification": "SUCCESS",
                    "X-Cartes-Certificat": quote(issued.certificate_pem().decode()),
                }
                connect = unix_connector(stack.web.socket)
                connections.append(Connection(connect, request(path, headers), fingerprint(issued)))
            return connections

        return make

    targets = {
        "nginx seul (return 200)": through_nginx(BASELINE),
        "/ à travers nginx": through_nginx("/"),
        "/ application seule": app_alone("/"),
        "/statut.json à travers nginx": through_nginx("/statut.json"),
        "/statut.json application seule": app_alone("/statut.json"),
    }
    print(
        f"Page d'état à travers nginx : {args.titulaires} titulaires de démonstration, "
        f"{len(lawyers)} avocats enregistrés, {args.connexions} connexions persistantes, "
        f"{args.tours} tours de {args.requetes} requêtes par adresse"
    )
    # Warm-up: the app's threads open their database connections, caches fill.
    for make in targets.values():
        run_load(make(0), min(400, args.requetes))
    rounds: dict[str, list[Figures]] = {label: [] for label in targets}
    for round_number in range(args.tours):
        for label, make in targets.items():  # in turn: all see the same machine
            rounds[label].append(run_load(make(round_number), args.requetes))
    figures = {}
    for label, measured in rounds.items():
        figures[label] = median = median_round(measured)
        p50, p95, p99 = (median.percentile(p) for p in (50, 95, 99))
        spread = f"{min(f.rate for f in measured):.0f}–{max(f.rate for f in measured):.0f}"
        line = (
            f"  {label:31} : {median.rate:6.0f} requêtes/s (tours {spread}) ; "
            f"p50 {p50:4.1f} ms, p95 {p95:4.1f} ms, p99 {p99:4.1f} ms"
        )
        if label.endswith("à travers nginx"):
            line += (
                f"\n  {'':31}   objectifs ≥ {TARGET_RATE:.0f} requêtes/s : "
                f"{at_least(median.rate, TARGET_RATE)} ; p99 ≤ {TARGET_P99_MS:.0f} ms : "
                f"{verdict(p99, TARGET_P99_MS)}"
            )
        print(line)
    static = figures["nginx seul (return 200)"].rate
    for path in ("/", "/statut.json"):
        rate = figures[f"{path} à travers nginx"].rate
        alone = figures[f"{path} application seule"].rate
        print(
            f"  {path} à travers nginx : {rate / static:.2f} du débit de nginx seul, "
            f"{rate / alone:.2f} de celui de l'application seule"
        )


def run_load(connections: list[Connection], total: int) -> Figures:
    """``load`` on connections opened beforehand (handshakes before the clock starts),
    closed afterwards."""
    try:
        return load(connections, total)
    finally:
        for connection in connections:
            connection.close()


def fingerprint(issued: Issued) -> bytes:
    return hashlib.sha256(issued.certificate.public_bytes(Encoding.DER)).hexdigest().encode()


if __name__ == "__main__":
    main()
