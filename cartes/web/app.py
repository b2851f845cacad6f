"""The status page's ASGI app (Starlette): ``/`` in HTML, ``/statut.json`` in JSON, for the
certificate nginx verified and passed on, and nothing else.

nginx terminates TLS, asks the browser for the key's certificate and verifies its chain
against the configured authorities; it then sets three headers itself, replacing any a
client sent under those names (``deploy/nginx/cartes.conf``):

- ``X-Cartes-Jeton``: the secret shared with nginx. A request without it did not come
  through nginx and is refused whatever its path: this app trusts the two others only
  from nginx.
- ``X-Cartes-Verification``: nginx's ``$ssl_client_verify``. A chain verified except for
  the certificate's dates is answered (the page tells an expired key so); anything else
  is refused.
- ``X-Cartes-Certificat``: nginx's ``$ssl_client_escaped_cert``, the certificate in
  URL-encoded PEM.

No path and no parameter names a holder: the only certificate reachable is the one the
browser proved it holds the key of.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cartes import messages
from cartes.selfcheck import KeyReport, UntrustedCertificate, key_report
from cartes.web.view import (
    REVOCATION_LABELS,
    STATUS_LABELS,
    report_view,
)
from cartes.workspace import Workspace
from inventaire.clock import PARIS
from inventaire.dbapi import ReadConnection
from inventaire.errors import InventaireError
from inventaire.vocabulary import STATE_TOKENS
from pki import PkiError, Validator

SECRET_HEADER = "x-cartes-jeton"
VERIFY_HEADER = "x-cartes-verification"
CERTIFICATE_HEADER = "x-cartes-certificat"

# nginx's ``$ssl_client_verify`` for a chain it verified up to a configured authority,
# where only the certificate's validity dates failed: the holder is told the key expired.
ANSWERED_VERIFICATIONS = frozenset(
    {"SUCCESS", "FAILED:certificate has expired", "FAILED:certificate is not yet valid"}
)

# Personal data: never cached, never framed, nothing fetched from elsewhere.
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}

REFUSALS = {
    "acces_direct": (
        403,
        "Accès refusé",
        "Cette adresse ne répond qu'au serveur web du SAR : ouvrez la page d'état par son "
        "adresse habituelle.",
    ),
    "certificat_absent": (
        403,
        "Certificat requis",
        "Votre navigateur n'a présenté aucun certificat : branchez votre clé, puis rechargez "
        "la page en choisissant le certificat de la clé.",
    ),
    "certificat_refuse": (
        403,
        "Certificat refusé",
        "Le certificat présenté n'est pas délivré par une autorité que le SAR reconnaît.",
    ),
    "certificat_illisible": (
        400,
        "Certificat illisible",
        "Le certificat présenté ne peut pas être lu. Contactez le SAR.",
    ),
    "indisponible": (
        503,
        "Service momentanément indisponible",
        "L'inventaire du SAR ne peut pas être consulté pour l'instant : réessayez dans "
        "quelques minutes.",
    ),
    "introuvable": (404, "Page introuvable", "Cette page n'existe pas."),
    "methode": (405, "Méthode non permise", "Cette page se consulte seulement."),
}

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class Refused(Exception):
    """A request the page does not answer; ``code`` names the French answer (REFUSALS)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def refusal(code: str, *, json_body: bool) -> Response:
    """The French answer of a refusal, as JSON for ``.json`` paths, else as a page."""
    status, title, text = REFUSALS[code]
    headers = dict(SECURITY_HEADERS)
    if json_body:
        return JSONResponse({"erreur": code, "message": text}, status, headers=headers)
    body = (
        '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{title}</title></head><body><main><h1>{title}</h1><p>{text}</p></main>"
        "</body></html>"
    )
    return HTMLResponse(body, status, headers=headers)


class OnlyThroughNginx:
    """Refuses, before any routing, every request that does not carry the secret nginx
    adds: a request straight to the app's socket or port gets 403 whatever its path."""

    def __init__(self, app: ASGIApp, secret: bytes) -> None:
        self.app = app
        self._secret = secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = b""
            for name, value in scope["headers"]:
                if name == b"x-cartes-jeton":
                    given = value
                    break
            if not hmac.compare_digest(given, self._secret):
                json_body = scope["path"].endswith(".json")
                await refusal("acces_direct", json_body=json_body)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class StatusPage:
    """The two views of one presented certificate, with one read connection per thread
    of the server's pool (kept between requests: opening one costs more than the query)."""

    def __init__(self, workspace: Workspace, validators: Callable[[], Validator]) -> None:
        self._workspace = workspace
        self._validators = validators
        self._local = threading.local()
        self._inline = workspace.settings.database_url.startswith("sqlite")

    def report(self, request: Request) -> KeyReport:
        verification = request.headers.get(VERIFY_HEADER, "NONE")
        if verification not in ANSWERED_VERIFICATIONS:
            raise Refused("certificat_absent" if verification == "NONE" else "certificat_refuse")
        escaped = request.headers.get(CERTIFICATE_HEADER, "")
        if not escaped:
            raise Refused("certificat_absent")
        workspace = self._workspace
        try:
            connection = self._connection()
            try:
                return key_report(
                    unquote_to_bytes(escaped),
                    validator=self._validators(),
                    settings=workspace.settings,
                    connection=connection,
                    at=workspace.now(),
                )
            finally:
                connection.end()
        except PkiError:
            raise Refused("certificat_illisible") from None
        except UntrustedCertificate:
            raise Refused("certificat_refuse") from None
        except InventaireError:
            self._drop_connection()
            raise Refused("indisponible") from None

    def _connection(self) -> ReadConnection:
        connection: ReadConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._workspace.read()
            self._local.connection = connection
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with contextlib.suppress(Exception):  # a broken connection may refuse to close
                connection.close()

    def _html(self, request: Request) -> Response:
        try:
            report = self.report(request)
        except Refused as refused:
            return refusal(refused.code, json_body=False)
        view = report_view(report, self._workspace.settings)
        body = _TEMPLATES.get_template("statut.html").render(_labels(view, report))
        return HTMLResponse(body, headers=SECURITY_HEADERS)

    def _json(self, request: Request) -> Response:
        try:
            report = self.report(request)
        except Refused as refused:
            return refusal(refused.code, json_body=True)
        body = json.dumps(report_view(report, self._workspace.settings), ensure_ascii=False)
        return Response(body, media_type="application/json", headers=SECURITY_HEADERS)

    async def html(self, request: Request) -> Response:
        return await self._answer(self._html, request)

    async def json(self, request: Request) -> Response:
        return await self._answer(self._json, request)

    async def _answer(self, make: Callable[[Request], Response], request: Request) -> Response:
        # A SQLite read is a local lookup of microseconds, and the rest is computation:
        # done on the event loop, a request costs 0.8 ms instead of 1.3 ms through a
        # worker thread. A PostgreSQL server is across a socket and may be slow to answer
        # or to connect: there the work goes to the thread pool, so one slow request does
        # not hold the others (nor the metrics, served by the same loop).
        if self._inline:
            return make(request)
        return await run_in_threadpool(make, request)


def _labels(view: dict[str, Any], report: KeyReport) -> dict[str, Any]:
    """The template's values: the view and the French words for its codes."""
    sar = view["sar"]
    return {
        "v": view,
        "kind_label": messages.KIND_LABELS[report.kind],
        "role_label": messages.ROLE_LABELS.get(view["role"] or "", "sans usage précisé"),
        "status_label": STATUS_LABELS[view["statut"]],
        "revocation_label": REVOCATION_LABELS[view["revocation"]],
        "state_label": messages.STATE_LABELS[STATE_TOKENS[sar["etat"]]] if sar else "",
        "made_at": f"{report.at.astimezone(PARIS):%d/%m/%Y à %H:%M}",
        "fr": lambda iso: f"{iso[8:10]}/{iso[5:7]}/{iso[:4]}",
    }


def build_app(workspace: Workspace, *, secret: str, validators: Callable[[], Validator]) -> ASGIApp:
    """The status page for ``workspace``'s inventory, answering only requests that carry
    ``secret`` in ``X-Cartes-Jeton``; ``validators`` gives the validator to use (a
    ``cartes.trust.FreshValidator``'s ``get``: the lists the service refreshes)."""
    page = StatusPage(workspace, validators)

    async def not_found(request: Request, _exc: Exception) -> Response:
        return refusal("introuvable", json_body=request.url.path.endswith(".json"))

    async def not_allowed(request: Request, _exc: Exception) -> Response:
        return refusal("methode", json_body=request.url.path.endswith(".json"))

    app = Starlette(
        routes=[
            Route("/", page.html, methods=["GET"]),
            Route("/statut.json", page.json, methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: not_allowed},
    )
    app.router.redirect_slashes = False  # two pages, no aliases
    return OnlyThroughNginx(app, secret.encode())
