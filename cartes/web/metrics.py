"""The monitoring metrics (issue 11): ``GET /metrics`` in Prometheus' text format, which
``cartes web`` serves on a port of its own on loopback, never through nginx.

The figures come from the database (``inventaire.monitoring``) and from the revocation
lists at hand. They are computed when Prometheus asks, and kept ``cache_s`` seconds (60 by
default) of the workspace's clock: the scrapes in between, from any thread, get the same
answer, and the database is read at most once per ``cache_s``.

Series (label values are the tokens of files and command lines, ``inventaire.vocabulary``):

- ``cartes_metrics_up``: 1 when the figures could be read from the database, else 0;
- ``cartes_metrics_computed_timestamp_seconds``: when the figures served were computed;
- ``cartes_holders``; ``cartes_credentials{kind, state}``;
- ``cartes_credentials_expiring{kind, within_days}`` (30, 60, 90);
- ``cartes_credentials_expired_in_service{kind}``;
- ``cartes_predicted_gaps{kind}``; ``cartes_orders_late{kind}``;
- ``cartes_emergency_cards_outstanding``; ``cartes_emergency_cards_overdue``;
- ``cartes_alerts_sent_total`` (a counter: sent digests only ever grow);
  ``cartes_alerts_failed`` and ``cartes_alerts_waiting`` (gauges);
- ``cartes_last_successful_daily_run_timestamp_seconds`` (0 if none ever succeeded);
- ``cartes_crl_age_seconds{issuer}``, ``cartes_crl_next_update_timestamp_seconds{issuer}``:
  of the most recent list (by thisUpdate) of each issuer at hand, named in RFC 4514 text.

A database that cannot be read does not fail the scrape: the answer is still 200, with
``cartes_metrics_up 0``, the revocation lists' series and none of the database's: no old
figure is served as if it were current (Prometheus' advice to exporters on failed
scrapes). Prometheus' own ``up`` then says the process answers, ``cartes_metrics_up``
that its database does not. A failure is kept ``cache_s`` seconds like a success, so a
database that is down is not knocked at on every scrape.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from cartes import messages
from cartes.service import CYCLE_KINDS
from cartes.settings import Settings
from cartes.workspace import Workspace
from inventaire import monitoring
from inventaire.clock import paris_today
from inventaire.enums import CredentialKind
from inventaire.errors import InventaireError
from inventaire.vocabulary import KIND_TOKENS, STATE_TOKENS, token_of
from pki import CrlStore, PkiError, UnreadableCrl
from pki.crl import IndexedCrl

log = logging.getLogger(__name__)

NOT_FOUND = "Introuvable : ce port ne sert que les métriques de supervision, sur /metrics.\n"
NOT_ALLOWED = "Méthode non permise : /metrics se lit par GET.\n"


def settings_crls(settings: Settings) -> CrlStore:
    """The revocation lists of the ``[trust]`` settings as they are on disk now: the
    files of ``trust.crls`` and the cache the backing service fills. A file that cannot
    be read is left out: saying so is the validation's business, not the metrics'."""
    store = CrlStore(settings.trust.crl_cache_dir)
    for path in settings.trust.crls:
        try:
            store.load_file(Path(path))
        except UnreadableCrl:
            continue
    return store


def newest_by_issuer(store: CrlStore) -> dict[str, IndexedCrl]:
    """The most recent list (by thisUpdate) of each issuer at hand, by the issuer's name
    in RFC 4514 text: the freshest word on that issuer's revocations, whose age is what
    to watch. Not checked here (signature, conformity): validation does that."""
    newest: dict[str, IndexedCrl] = {}
    for crl in store.lists():
        issuer = crl.issuer.rfc4514_string()
        if issuer not in newest or crl.this_update > newest[issuer].this_update:
            newest[issuer] = crl
    return newest


class InventoryCollector:
    """A prometheus_client collector of the figures, computed again at most once per
    ``cache_s`` seconds of the workspace's clock (or when that clock goes back); safe
    from any number of threads. ``crl_store`` gives the revocation lists at hand.

    It has no ``describe``: registering it reads nothing."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        crl_store: Callable[[], CrlStore],
        cache_s: float = 60.0,
    ) -> None:
        self._workspace = workspace
        self._crl_store = crl_store
        self._cache_s = cache_s
        self._lock = threading.Lock()
        self._computed_at: dt.datetime | None = None
        self._metrics: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        """The metrics of the figures, computed now or within the last ``cache_s``."""
        # Held while computing: a scrape that comes meanwhile waits for the same answer
        # instead of reading the database again.
        with self._lock:
            now = self._workspace.now()
            if self._computed_at is None or not (
                dt.timedelta(0) <= now - self._computed_at < dt.timedelta(seconds=self._cache_s)
            ):
                self._metrics = self._compute(now)
                self._computed_at = now
            return list(self._metrics)

    def _compute(self, now: dt.datetime) -> list[Metric]:
        figures = self._figures(now)
        metrics: list[Metric] = [
            GaugeMetricFamily(
                "cartes_metrics_up",
                "1 si la base de données a pu être lue au dernier calcul des chiffres, 0 sinon "
                "(les chiffres de la base sont alors absents).",
                value=0 if figures is None else 1,
            ),
            GaugeMetricFamily(
                "cartes_metrics_computed_timestamp_seconds",
                f"Instant du calcul des chiffres servis (secondes Unix) ; ils sont gardés "
                f"{self._cache_s:g} s.",
                value=now.timestamp(),
            ),
        ]
        if figures is not None:
            metrics.extend(inventory_metrics(figures))
        metrics.extend(crl_metrics(self._crls(), now=now))
        return metrics

    def _figures(self, now: dt.datetime) -> monitoring.MonitoringFigures | None:
        try:
            with self._workspace.read() as connection:
                return monitoring.figures(
                    connection,
                    today=paris_today(now),
                    now=now,
                    renewal=self._workspace.renewal(),
                    cycle_kinds=CYCLE_KINDS,
                )
        except InventaireError as exc:
            log.warning("Métriques sans la base de données : %s", messages.error_text(exc))
            return None

    def _crls(self) -> dict[str, IndexedCrl]:
        try:
            return newest_by_issuer(self._crl_store())
        except (OSError, PkiError) as exc:
            log.warning("Métriques sans les listes de révocation : %s", exc)
            return {}


def _gauge(
    name: str, help_text: str, labels: Sequence[str], values: Iterable[tuple[Sequence[str], float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=labels)
    for label_values, value in values:
        family.add_metric(label_values, value)
    return family


def inventory_metrics(figures: monitoring.MonitoringFigures) -> list[Metric]:
    """The metrics of the database's figures."""

    def by_kind(values: dict[CredentialKind, int]) -> list[tuple[list[str], float]]:
        return [([token_of(kind, KIND_TOKENS)], n) for kind, n in values.items()]

    sent = CounterMetricFamily(
        "cartes_alerts_sent",
        "Courriels d'alerte (récapitulatifs) envoyés depuis la création de la base.",
        value=figures.alerts_sent,
    )
    last_run = figures.last_successful_cycle
    return [
        GaugeMetricFamily("cartes_holders", "Titulaires enregistrés.", value=figures.holders),
        _gauge(
            "cartes_credentials",
            "Supports (cartes et clés) par type et par état.",
            ["kind", "state"],
            (
                ([token_of(kind, KIND_TOKENS), token_of(state, STATE_TOKENS)], n)
                for (kind, state), n in figures.by_kind_state.items()
            ),
        ),
        _gauge(
            "cartes_credentials_expiring",
            "Supports en service (actifs ou suspendus), pas encore expirés, dont l'expiration "
            "tombe d'ici within_days jours (aujourd'hui compris).",
            ["kind", "within_days"],
            (
                ([token_of(kind, KIND_TOKENS), str(horizon)], n)
                for horizon, counts in figures.expiring.items()
                for kind, n in counts.items()
            ),
        ),
        _gauge(
            "cartes_credentials_expired_in_service",
            "Supports encore en service dont la date d'expiration est passée.",
            ["kind"],
            by_kind(figures.expired_in_service),
        ),
        _gauge(
            "cartes_predicted_gaps",
            "Supports en service, non remplacés, qui expireront avant qu'un renouvellement "
            "commandé aujourd'hui puisse arriver : rupture certaine.",
            ["kind"],
            by_kind(figures.predicted_gaps),
        ),
        _gauge(
            "cartes_orders_late",
            "Supports en service, non remplacés, dont la date limite de commande est passée "
            "(rupture pas encore certaine).",
            ["kind"],
            by_kind(figures.orders_late),
        ),
        GaugeMetricFamily(
            "cartes_emergency_cards_outstanding",
            "Cartes remises en urgence pas encore restituées (et toujours en service).",
            value=figures.emergency_outstanding,
        ),
        GaugeMetricFamily(
            "cartes_emergency_cards_overdue",
            "Cartes remises en urgence pas restituées à la date de restitution prévue.",
            value=figures.emergency_overdue,
        ),
        sent,
        GaugeMetricFamily(
            "cartes_alerts_failed",
            "Courriels d'alerte refusés définitivement par le serveur de messagerie, depuis "
            "la création de la base.",
            value=figures.alerts_failed,
        ),
        GaugeMetricFamily(
            "cartes_alerts_waiting",
            "Courriels d'alerte pas encore envoyés (en attente ou en cours d'envoi).",
            value=figures.alerts_waiting,
        ),
        GaugeMetricFamily(
            "cartes_last_successful_daily_run_timestamp_seconds",
            "Fin du dernier cycle quotidien réussi du service (secondes Unix ; 0 si aucun "
            "n'a jamais réussi).",
            value=0 if last_run is None else last_run.timestamp(),
        ),
    ]


def crl_metrics(newest: dict[str, IndexedCrl], *, now: dt.datetime) -> list[Metric]:
    """The age and next update of the most recent list of each issuer (``issuer``: its
    name in RFC 4514 text)."""
    return [
        _gauge(
            "cartes_crl_age_seconds",
            "Âge de la liste de révocation la plus récente de chaque émetteur : maintenant "
            "moins sa date d'émission (thisUpdate), en secondes.",
            ["issuer"],
            (([issuer], (now - crl.this_update).total_seconds()) for issuer, crl in newest.items()),
        ),
        _gauge(
            "cartes_crl_next_update_timestamp_seconds",
            "Prochaine mise à jour annoncée (nextUpdate) de la liste de révocation la plus "
            "récente de chaque émetteur (secondes Unix).",
            ["issuer"],
            (
                ([issuer], crl.next_update.timestamp())
                for issuer, crl in newest.items()
                if crl.next_update is not None
            ),
        ),
    ]


async def _not_found(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(NOT_FOUND, status_code=404)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    headers = exc.headers if isinstance(exc, HTTPException) else None
    return PlainTextResponse(NOT_ALLOWED, status_code=405, headers=headers)


def build_metrics_app(
    workspace: Workspace,
    *,
    crl_store: Callable[[], CrlStore] | CrlStore | None = None,
    cache_s: float = 60.0,
) -> Starlette:
    """The ASGI app of the metrics port: ``GET /metrics`` (Prometheus' text format, or
    OpenMetrics when asked for), 404 for any other path.

    ``crl_store``: the revocation lists at hand, a store or a function called at each
    computation (the status page's, so that both see the same lists); by default the
    files of the ``[trust]`` settings, read again at each computation. The figures are
    kept ``cache_s`` seconds of ``workspace.now()``.
    """
    if crl_store is None:
        settings = workspace.settings

        def crls() -> CrlStore:
            return settings_crls(settings)

    elif isinstance(crl_store, CrlStore):
        store = crl_store

        def crls() -> CrlStore:
            return store

    else:
        crls = crl_store
    registry = CollectorRegistry()
    registry.register(InventoryCollector(workspace, crl_store=crls, cache_s=cache_s))

    def metrics(request: Request) -> Response:
        # A plain function: Starlette runs it in a worker thread, off the event loop,
        # while the database is read.
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), headers={"Content-Type": content_type})

    app = Starlette(
        routes=[Route("/metrics", metrics, methods=["GET"])],
        exception_handlers={404: _not_found, 405: _not_allowed},
    )
    app.router.redirect_slashes = False  # /metrics/ is another path: 404, not a redirect
    return app
