"""The monitoring metrics (``cartes.web.metrics``), served for real by uvicorn on loopback
and read with urllib, as Prometheus reads them: the series of a small known inventory,
the cache of ``cache_s`` seconds of the workspace's clock, 404 beside ``/metrics``, and a
database that cannot be read."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine

from cartes.service import DAILY
from cartes.settings import Settings, TrustSettings
from cartes.web.metrics import NOT_FOUND, build_metrics_app
from cartes.workspace import Workspace
from fixtures.pki import TestPki
from inventaire import db, emergency, operators, runs
from inventaire.clock import FixedClock
from inventaire.models import CredentialKind, CredentialState, Digest, DigestState
from pki import CrlStore
from tests.conftest import NOW, Database
from tests.factories import add_credential
from tests.inventory_support import TODAY, holder_with

K, S = CredentialKind, CredentialState
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# --------------------------------------------------------------------------------------------
# Serving and reading


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn in a thread, on a free port of 127.0.0.1; its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        for _ in range(1000):  # up to 10 s for the server to listen: a bound, not a measure
            if server.started or not thread.is_alive():
                break
            time.sleep(0.01)
        assert server.started, "uvicorn n'a pas démarré"
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


# No proxy from the environment between the test and the loopback server.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str, method: str = "GET") -> tuple[int, str, str]:
    """Status, content type and body of a request."""
    try:
        with _opener.open(urllib.request.Request(url, method=method), timeout=60) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def scrape(base: str) -> tuple[Series, dict[str, str]]:
    """The samples of ``/metrics`` by name and labels, and the HELP text of each family."""
    status, content_type, body = fetch(base + "/metrics")
    assert status == 200, body
    assert content_type.startswith("text/plain")
    series: Series = {}
    helps = {}
    for family in text_string_to_metric_families(body):
        helps[family.name] = family.documentation
        for sample in family.samples:
            series[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return series, helps


def values(series: Series, name: str) -> dict[tuple[str, ...], float]:
    """The samples of ``name``, by their label values in the order of the label names."""
    return {
        tuple(v for _, v in labels): value for (n, labels), value in series.items() if n == name
    }


def value(series: Series, name: str, **labels: str) -> float:
    return series[name, tuple(sorted(labels.items()))]


def nonzero(counts: dict[tuple[str, ...], float]) -> dict[tuple[str, ...], float]:
    return {key: n for key, n in counts.items() if n}


def of_database(series: Series) -> Series:
    """The series of the database's figures."""
    return {key: n for key, n in series.items() if not key[0].startswith(_NOT_OF_DATABASE)}


_NOT_OF_DATABASE = ("cartes_metrics_", "cartes_crl_")


# --------------------------------------------------------------------------------------------
# The inventory


def workspace_on(database: Database, clock: FixedClock, **settings: Any) -> Workspace:
    return Workspace(
        settings=Settings(database_url=database.url, busy_timeout_s=2, **settings),
        clock=clock,
        operator_login="admin",
    )


def known_inventory(engine: Engine, now: dt.datetime) -> None:
    """Seven holders, their credentials, two emergency cards, six digests, three runs."""
    day = dt.timedelta(days=1)
    holders: list[list[tuple[CredentialKind, CredentialState, str | None, dt.date | None]]] = [
        [(K.RPVA_KEY, S.ACTIVE, None, TODAY + 10 * day)],  # gap: sooner than 45 days
        [(K.RPVA_KEY, S.ACTIVE, None, TODAY + 50 * day)],  # order-by passed (45 + 15)
        [
            (K.AGENT_CARD, S.ACTIVE, "AG-80", TODAY + 80 * day),  # order-by in 5 days
            (K.AGENT_CARD, S.REQUESTED, None, TODAY + 5 * day),  # not in service
        ],
        [(K.EXPERT_CARD, S.SUSPENDED, None, TODAY + 30 * day)],  # late (30 + 15)
        [(K.EXPERT_CARD, S.ACTIVE, None, TODAY - 3 * day)],  # expired, in service
        [(K.TEMPORARY_CARD, S.RETURNED, None, TODAY + 20 * day)],  # not in service
        [(K.AGENT_CARD, S.ACTIVE, "AG-400", TODAY + 400 * day)],
    ]
    for number, cards in enumerate(holders):
        holder_with(
            engine,
            now,
            last_name=f"Suivi{number}",
            first_name="Anne",
            email=f"anne.suivi{number}@example.fr",
            cards=cards,
        )
    with db.write_session(engine) as session:
        issuer = operators.find(session, "remise")
        assert issuer is not None
        # Issued ten days ago: one due back five days ago (overdue), one in twenty days.
        for number, due_in_days in [(2, -5), (6, 20)]:
            emergency.issue(
                session,
                holder_email=f"anne.suivi{number}@example.fr",
                serial=f"OLD-{number}",
                reason="nouvelle carte en retard",
                without_request=True,
                return_due_on=TODAY + due_in_days * day,
                return_after_days=30,
                operator=issuer,
                now=now - 10 * day,
            )
        for state in [*[DigestState.SENT] * 3, DigestState.FAILED, DigestState.PENDING]:
            session.add(
                Digest(
                    recipient="anne.suivi0@example.fr",
                    state=state,
                    attempts=1,
                    next_attempt_at=now,
                    created_at=now - day,
                    sent_at=now - day if state is DigestState.SENT else None,
                )
            )
        session.add(
            Digest(
                recipient="anne.suivi1@example.fr",
                state=DigestState.SENDING,
                next_attempt_at=now,
                created_at=now,
                claimed_at=now,
            )
        )
        # A successful cycle yesterday, a failed one this morning, and a run of another
        # kind since, successful: only the first is the last successful daily run.
        for kind, started_ago, ok in [(DAILY, 26, True), (DAILY, 2, False), ("envoi", 1, True)]:
            started_at = now - dt.timedelta(hours=started_ago)
            run_id = runs.start(session, kind=kind, started_at=started_at)
            runs.finish(
                session,
                run_id=run_id,
                finished_at=started_at + dt.timedelta(minutes=10),
                ok=ok,
                summary={},
            )


def write_crl(crl: x509.CertificateRevocationList, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(crl.public_bytes(Encoding.DER))
    return path


def issuer(crl: x509.CertificateRevocationList) -> str:
    return crl.issuer.rfc4514_string()


# --------------------------------------------------------------------------------------------
# Tests


def test_the_series_of_a_known_inventory(
    database: Database, clock: FixedClock, test_pki: TestPki, tmp_path: Path
) -> None:
    known_inventory(database.engine, clock.now())
    crls = test_pki.crls
    # The lists of the settings: files named in [trust], and the cache the service fills.
    # The stale agent list is older than the current one of the same issuer.
    named = [
        write_crl(crls["agent"], tmp_path / "named" / "agent.crl"),
        write_crl(crls["agent_perimee"], tmp_path / "named" / "agent_perimee.crl"),
        tmp_path / "named" / "absente.crl",
    ]
    cache = tmp_path / "cache"
    write_crl(crls["avocat"], cache / "0123.crl")
    write_crl(crls["racine_sans_ski"], cache / "4567.crl")
    (cache / "abimee.crl").write_bytes(b"pas une liste")
    workspace = workspace_on(database, clock, trust=TrustSettings(crls=named, crl_cache_dir=cache))

    with serving(build_metrics_app(workspace)) as base:
        series, helps = scrape(base)

    assert value(series, "cartes_metrics_up") == 1
    assert value(series, "cartes_metrics_computed_timestamp_seconds") == NOW.timestamp()
    assert value(series, "cartes_holders") == 7
    counted = {
        ("carte_agent", "active"): 4,  # two of them emergency cards
        ("carte_agent", "demandee"): 1,
        ("cle_rpva", "active"): 2,
        ("carte_expert", "active"): 1,
        ("carte_expert", "suspendue"): 1,
        ("carte_temporaire", "restituee"): 1,
    }
    credentials = values(series, "cartes_credentials")
    assert len(credentials) == 4 * 9  # every kind and state, zero included
    assert nonzero(credentials) == counted
    assert credentials["carte_temporaire", "perdue"] == 0
    assert nonzero(values(series, "cartes_credentials_expiring")) == {
        ("cle_rpva", "30"): 1,
        ("cle_rpva", "60"): 2,
        ("cle_rpva", "90"): 2,
        ("carte_expert", "30"): 1,  # in 30 days: within 30 days
        ("carte_expert", "60"): 1,
        ("carte_expert", "90"): 1,
        ("carte_agent", "90"): 1,
    }
    assert len(values(series, "cartes_credentials_expiring")) == 4 * 3
    every_kind = dict.fromkeys(["carte_agent", "carte_expert", "cle_rpva", "carte_temporaire"], 0)
    assert values(series, "cartes_credentials_expired_in_service") == {
        (kind,): n for kind, n in (every_kind | {"carte_expert": 1}).items()
    }
    assert values(series, "cartes_predicted_gaps") == {
        (kind,): n for kind, n in (every_kind | {"cle_rpva": 1}).items()
    }
    assert values(series, "cartes_orders_late") == {
        (kind,): n for kind, n in (every_kind | {"cle_rpva": 1, "carte_expert": 1}).items()
    }
    assert value(series, "cartes_emergency_cards_outstanding") == 2
    assert value(series, "cartes_emergency_cards_overdue") == 1
    assert value(series, "cartes_alerts_sent_total") == 3
    assert value(series, "cartes_alerts_failed") == 1
    assert value(series, "cartes_alerts_waiting") == 2
    yesterday_end = NOW - dt.timedelta(hours=26) + dt.timedelta(minutes=10)
    assert (
        value(series, "cartes_last_successful_daily_run_timestamp_seconds")
        == yesterday_end.timestamp()
    )
    # The most recent list of each issuer; the unreadable files are left out.
    assert values(series, "cartes_crl_age_seconds") == {
        (issuer(crls["agent"]),): 3600,
        (issuer(crls["avocat"]),): 3600,
        (issuer(crls["racine_sans_ski"]),): 86400,
    }
    assert values(series, "cartes_crl_next_update_timestamp_seconds") == {
        (issuer(crls["agent"]),): (NOW + dt.timedelta(days=7)).timestamp(),
        (issuer(crls["avocat"]),): (NOW + dt.timedelta(days=7)).timestamp(),
        (issuer(crls["racine_sans_ski"]),): (NOW + dt.timedelta(days=180)).timestamp(),
    }
    assert "CN=" in issuer(crls["agent"])
    # Identifiers in English, what people read in French.
    assert helps["cartes_credentials"].startswith("Supports (cartes et clés)")
    assert helps["cartes_alerts_sent"].startswith("Courriels d'alerte")
    assert all(name.startswith("cartes_") for name, _ in series)


def test_the_figures_are_kept_cache_s_seconds_of_the_clock(
    database: Database, clock: FixedClock, test_pki: TestPki
) -> None:
    store = CrlStore()
    store.add(test_pki.crls["expert"], "expert.crl")
    workspace = workspace_on(database, clock)
    app = build_metrics_app(workspace, crl_store=lambda: store, cache_s=30)
    rpva = ("cartes_credentials", (("kind", "cle_rpva"), ("state", "active")))

    with serving(app) as base:
        first, _ = scrape(base)
        add_credential(database.engine, clock.now(), kind=K.RPVA_KEY, state=S.ACTIVE)
        store.add(test_pki.crls["avocat"], "avocat.crl")
        clock.advance(seconds=29)
        cached, _ = scrape(base)
        clock.advance(seconds=1)
        computed, _ = scrape(base)

    assert first[rpva] == 0 and cached == first
    assert len(values(cached, "cartes_crl_age_seconds")) == 1
    assert computed[rpva] == 1
    assert (
        value(computed, "cartes_metrics_computed_timestamp_seconds")
        == (NOW + dt.timedelta(seconds=30)).timestamp()
    )
    assert values(computed, "cartes_crl_age_seconds") == {
        (issuer(test_pki.crls["expert"]),): 3630,
        (issuer(test_pki.crls["avocat"]),): 3630,
    }


def test_other_paths_are_not_found(database: Database, clock: FixedClock) -> None:
    with serving(build_metrics_app(workspace_on(database, clock))) as base:
        for path in ["/", "/metrics/", "/metrics/x", "/metriques", "/favicon.ico"]:
            status, content_type, body = fetch(base + path)
            assert (status, body) == (404, NOT_FOUND), path
            assert content_type.startswith("text/plain")
        status, _, body = fetch(base + "/metrics", method="POST")
        assert status == 405 and body.startswith("Méthode non permise")
        assert fetch(base + "/metrics")[0] == 200


def test_an_unreadable_database_answers_up_0_without_its_figures(
    database: Database, clock: FixedClock, test_pki: TestPki, tmp_path: Path
) -> None:
    known_inventory(database.engine, clock.now())
    store = CrlStore()
    store.add(test_pki.crls["agent"], "agent.crl")
    workspace = workspace_on(database, clock)
    readable = workspace.settings
    if database.backend == "sqlite":
        missing = f"sqlite:///{tmp_path / 'absente.db'}"
    else:
        missing = database.url.rsplit("/", 1)[0] + "/cartes_base_absente"
    app = build_metrics_app(workspace, crl_store=store)

    with serving(app) as base:
        before, _ = scrape(base)
        workspace.settings = readable.model_copy(update={"database_url": missing})
        clock.advance(seconds=60)
        down, _ = scrape(base)
        workspace.settings = readable
        clock.advance(seconds=30)
        still_down, _ = scrape(base)  # the failure is kept cache_s seconds too
        clock.advance(seconds=30)
        back, _ = scrape(base)

    assert value(before, "cartes_metrics_up") == 1
    assert value(down, "cartes_metrics_up") == 0 and still_down == down
    assert (
        value(down, "cartes_metrics_computed_timestamp_seconds")
        == (NOW + dt.timedelta(seconds=60)).timestamp()
    )
    # No figure of the database is served as if current; the lists are still there.
    assert of_database(down) == {}
    assert {name for name, _ in down} == {
        "cartes_metrics_up",
        "cartes_metrics_computed_timestamp_seconds",
        "cartes_crl_age_seconds",
        "cartes_crl_next_update_timestamp_seconds",
    }
    assert values(down, "cartes_crl_age_seconds") == {(issuer(test_pki.crls["agent"]),): 3660}
    assert value(back, "cartes_metrics_up") == 1
    # Holders, kind × state, kind × horizon, three per kind, and seven single figures.
    assert len(of_database(before)) == 1 + 4 * 9 + 4 * 3 + 3 * 4 + 6
    assert of_database(back) == of_database(before)
