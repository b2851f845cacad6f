"""The lawyers' status page end to end: a real nginx configured from
``deploy/nginx/cartes.conf`` as shipped, in front of a real ``cartes web`` process, and
TLS clients presenting real certificates of the test PKI (issued at the real time: nginx
checks dates against the system clock).

One nginx and one ``cartes web`` serve the whole module, per database backend; the
inventory is filled once, before any request, so every test sees the same lawyers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from prometheus_client.parser import text_string_to_metric_families

from fixtures.pki import Family, Issued, TestPki, build_test_pki, issue_holders
from inventaire import db, operators, requests
from inventaire.clock import PARIS, paris_today
from inventaire.enums import CredentialKind
from pki import describe
from tests.conftest import Database, fresh_database
from tests.nginx_support import (
    NGINX,
    SHIPPED_SITE,
    Answer,
    Stack,
    http_get,
    https_get,
    real_now,
    register_key,
    site_config,
    unix_get,
    web_stack,
)
from tests.pki_support import KEY_CACHE

if not Path(NGINX).exists():
    if os.environ.get("CARTES_TEST_REQUIRE_NGINX") == "1":
        raise RuntimeError("nginx est requis pour ces tests (paquet nginx)")
    pytest.skip("nginx n'est pas installé (paquet nginx)", allow_module_level=True)

pytestmark = pytest.mark.slow

# nginx's own answers (deploy/nginx/cartes.conf), told apart from the app's French pages.
NGINX_NO_CERTIFICATE = (
    "Certificat requis : branchez votre clé, puis rechargez la page en choisissant le "
    "certificat de la clé.\n"
)
NGINX_REFUSED = "Certificat refusé : il n'est pas délivré par une autorité que le SAR reconnaît.\n"
NGINX_NOT_FOUND = "Page introuvable.\n"
# The renewal plan's figures for an RPVA key with the default settings.
RPVA_LEAD_DAYS, MARGIN_DAYS = 45, 15


def test_the_harness_refuses_a_site_file_of_another_shape(tmp_path):
    """The tests run the shipped file: one whose paths could not all be replaced would
    have nginx read production paths, or test something else."""
    shipped = SHIPPED_SITE.read_text(encoding="utf-8")
    options = {
        name: tmp_path / name
        for name in ("certificate", "key", "authorities", "upstream_socket", "secret_include")
    }
    assert "/etc/" not in "\n".join(
        line
        for line in site_config(shipped, port=8443, **options).splitlines()
        if not line.lstrip().startswith("#")
    )
    for changed in (
        shipped.replace("listen [::]:443 ssl;", "listen [::]:443 ssl http2;"),
        shipped.replace("include /etc/cartes/nginx-jeton.conf;", ""),
        shipped + "\nserver { listen 80; ssl_certificate /etc/cartes/tls/autre.pem; }\n",
    ):
        with pytest.raises(AssertionError):
            site_config(changed, port=8443, **options)


@pytest.fixture(scope="module")
def live_pki() -> TestPki:
    return build_test_pki(now=real_now(), key_cache=KEY_CACHE)


# --------------------------------------------------------------------------------------------
# One database per backend for the module, made like the ``database`` fixture's


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One database for the whole file: nginx and ``cartes web`` start once per kind."""
    with fresh_database(request.param, tmp_path_factory.mktemp("web-db"), request) as database:
        yield database


@dataclass(frozen=True)
class Lawyers:
    """The keys the tests present, and what the inventory knows of them."""

    known: Issued  # Gaëlle Moreau-Lefort's key, in service, nothing ordered
    other: Issued  # Étienne Faure's key, in service: nobody else may see it
    ordered: Issued  # a key whose replacement was ordered today
    unknown: Issued  # a valid lawyer's key the SAR never registered
    revoked: Issued  # in service at the SAR, revoked in the lawyers' CRL
    expired: Issued  # a lawyer's key that expired two years ago
    ordered_on: dt.date  # the day (Paris) the replacement was ordered


@pytest.fixture(scope="module")
def lawyers(live_pki: TestPki, module_database) -> Lawyers:
    engine = module_database.engine
    now = real_now()
    avocat = live_pki.families["avocat"]
    first, second = (holder.authentication for holder in live_pki.holders_of("avocat"))
    ordered, unknown = issue_holders(avocat, 2, now=now)
    (expired,) = issue_holders(avocat, 1, now=now - dt.timedelta(days=4 * 365))
    revoked = live_pki.cases["revoque"]
    for issued, first_name, last_name in [
        (first, "Gaëlle", "Moreau-Lefort"),  # not the certificate's: the SAR's record wins
        (second, "Étienne", "Faure"),
        (ordered, "Camille", "Renouvelle"),
        (revoked, "Titulaire", "Révoqué"),
    ]:
        credential_id = register_key(
            engine, issued, avocat, first_name=first_name, last_name=last_name, now=now
        )
        if issued is ordered:
            with db.write_session(engine) as session:
                requests.create_request(
                    session,
                    holder_email=email_of(issued),
                    kind=CredentialKind.RPVA_KEY,
                    replaces_id=credential_id,
                    operator=operators.find(session, "gestion"),  # type: ignore[arg-type]
                    now=now,
                )
    return Lawyers(first, second, ordered, unknown, revoked, expired, paris_today(now))


@pytest.fixture(scope="module")
def stack(
    live_pki: TestPki, module_database, lawyers: Lawyers, tmp_path_factory
) -> Iterator[Stack]:
    url = module_database.url
    with web_stack(tmp_path_factory.mktemp("web"), live_pki, url) as running:
        yield running


# --------------------------------------------------------------------------------------------
# Helpers


def fingerprint(issued: Issued) -> str:
    return hashlib.sha256(issued.certificate.public_bytes(Encoding.DER)).hexdigest()


def email_of(issued: Issued) -> str:
    email = describe(issued.certificate).email
    assert email is not None
    return email


@dataclass(frozen=True)
class Through(Answer):
    """An answer through nginx, and whether nginx passed the request on to the app."""

    proxied: bool


def get(stack: Stack, issued: Issued | None, path: str, **headers: str) -> Through:
    """``path`` through nginx, presenting ``issued``; tells from nginx's access log
    whether the app was asked."""
    logged = len(stack.nginx.access_log())  # every earlier request's line is written
    answer = https_get(stack.nginx.port, path, stack.client_context(issued), headers)
    line = stack.nginx.log_line(logged)
    assert f" {path} " in line, line
    return Through(answer.status, answer.headers, answer.body, proxied=line.split()[1] != "-")


def order_by(issued: Issued) -> dt.date:
    expiry = issued.certificate.not_valid_after_utc.astimezone(PARIS).date()
    return expiry - dt.timedelta(days=RPVA_LEAD_DAYS + MARGIN_DAYS)


def french(day: dt.date) -> str:
    return f"{day:%d/%m/%Y}"


# --------------------------------------------------------------------------------------------
# A lawyer's own key


def test_a_known_lawyer_gets_the_status_of_her_own_key(stack, lawyers):
    answer = get(stack, lawyers.known, "/statut.json")
    assert answer.status == 200, answer.body
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"
    assert "max-age" in answer.headers["strict-transport-security"]
    status = answer.json()
    assert status["titulaire"] == "Gaëlle Moreau-Lefort"
    assert status["certificat"]["empreinte_sha256"] == fingerprint(lawyers.known)
    assert (status["type"], status["statut"], status["revocation"]) == (
        "cle_rpva",
        "valide",
        "non_revoque",
    )
    assert status["connue_du_sar"] is True
    assert status["sar"]["rapproche_par"] == "empreinte"
    assert (status["sar"]["etat"], status["sar"]["renouvellement"]) == ("active", "aucun")
    assert status["date_limite_commande"] == order_by(lawyers.known).isoformat()
    assert status["prochaine_etape"]["code"] == "commander_avant"
    assert status["prochaine_etape"]["avant_le"] == order_by(lawyers.known).isoformat()
    assert answer.proxied

    page = get(stack, lawyers.known, "/")
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Gaëlle Moreau-Lefort" in page.body
    assert "État de votre clé RPVA" in page.body
    assert f"<dt>Date limite de commande</dt><dd>{french(order_by(lawyers.known))}</dd>" in (
        page.body
    )
    assert "Clé enregistrée</dt><dd>oui" in page.body
    assert "ne connaît pas cette clé" not in page.body


def test_a_replacement_ordered_at_the_sar_shows_on_the_page(stack, lawyers):
    status = get(stack, lawyers.ordered, "/statut.json").json()
    assert status["titulaire"] == "Camille Renouvelle"
    assert status["statut"] == "valide"
    assert status["sar"]["renouvellement"] == "demande"
    assert status["sar"]["demande_le"] == lawyers.ordered_on.isoformat()
    assert status["prochaine_etape"]["code"] == "commande_en_cours"

    page = get(stack, lawyers.ordered, "/")
    ordered = f"Renouvellement</dt><dd>commandé le {french(lawyers.ordered_on)}, attendu vers le "
    assert ordered in page.body


def test_a_key_the_sar_does_not_know_gets_what_the_certificate_tells(stack, lawyers):
    status = get(stack, lawyers.unknown, "/statut.json").json()
    assert status["connue_du_sar"] is False
    assert status["sar"] is None
    assert status["statut"] == "valide"
    assert status["certificat"]["empreinte_sha256"] == fingerprint(lawyers.unknown)
    assert status["titulaire"] == describe(lawyers.unknown.certificate).holder_name
    assert status["prochaine_etape"]["code"] == "commander_avant"

    page = get(stack, lawyers.unknown, "/")
    assert page.status == 200
    assert "Le SAR ne connaît pas cette clé" in page.body


def test_a_revoked_key_is_told_so(stack, lawyers):
    status = get(stack, lawyers.revoked, "/statut.json").json()
    assert status["certificat"]["empreinte_sha256"] == fingerprint(lawyers.revoked)
    assert (status["statut"], status["revocation"]) == ("invalide", "revoque")
    assert status["connue_du_sar"] is True
    assert status["prochaine_etape"]["code"] == "revoquee"
    assert "revoque" in [reason["code"] for reason in status["motifs"]]

    page = get(stack, lawyers.revoked, "/")
    assert "Certificat invalide : il est révoqué." in page.body


def test_an_expired_key_gets_its_page_saying_it_expired(stack, lawyers):
    answer = get(stack, lawyers.expired, "/statut.json")
    assert answer.status == 200, answer.body
    status = answer.json()
    assert status["certificat"]["empreinte_sha256"] == fingerprint(lawyers.expired)
    assert status["statut"] == "invalide"
    assert "expire" in [reason["code"] for reason in status["motifs"]]
    assert status["jours_restants"] < 0
    assert status["prochaine_etape"]["code"] == "expiree"


# --------------------------------------------------------------------------------------------
# What nginx refuses


def test_without_a_certificate_nginx_asks_for_one(stack):
    for path in ("/", "/statut.json"):
        answer = get(stack, None, path)
        assert (answer.status, answer.body) == (403, NGINX_NO_CERTIFICATE)
        assert not answer.proxied


@pytest.mark.parametrize("case", ["emetteur_inconnu", "expert"])
def test_a_certificate_of_another_authority_never_reaches_the_app(stack, live_pki, case):
    issued = (
        live_pki.cases[case]
        if case in live_pki.cases
        else live_pki.holders_of(case)[0].authentication  # a family nginx does not accept
    )
    for path in ("/", "/statut.json"):
        answer = get(stack, issued, path)
        assert answer.status == 403
        assert fingerprint(issued) not in answer.body
        assert not answer.proxied


@pytest.mark.parametrize("case", ["emetteur_inconnu", "expert"])
def test_a_certificate_of_another_authority_is_refused_in_french(stack, live_pki, case):
    issued = (
        live_pki.cases[case]
        if case in live_pki.cases
        else live_pki.holders_of(case)[0].authentication
    )
    answer = get(stack, issued, "/statut.json")
    assert (answer.status, answer.body) == (403, NGINX_REFUSED)


def test_an_expired_certificate_of_an_unknown_authority_is_never_answered(stack, live_pki):
    """OpenSSL reports the last error it met: such a certificate may reach the app as
    merely « expired », and the app must then refuse it itself."""
    unknown = Family(
        name="inconnue",
        root=live_pki.extra_cas["inconnue_racine"],
        issuing=live_pki.extra_cas["inconnue_emettrice"],
        crl_url=None,
        ocsp_url=None,
    )
    (issued,) = issue_holders(unknown, 1, now=real_now() - dt.timedelta(days=4 * 365))
    answer = get(stack, issued, "/statut.json")
    assert answer.status == 403, answer.body
    assert fingerprint(issued) not in answer.body
    if answer.proxied:  # nginx saw « expired » only: the app refused it
        assert answer.json()["erreur"] == "certificat_refuse"
    else:
        assert answer.body == NGINX_REFUSED


# --------------------------------------------------------------------------------------------
# Requests that do not come through nginx, and headers a client forges


def test_a_request_straight_to_the_app_is_refused(stack, lawyers):
    forged = {
        "X-Cartes-Certificat": quote(lawyers.known.certificate_pem().decode()),
        "X-Cartes-Verification": "SUCCESS",
    }
    for path, headers in [
        ("/", {}),
        ("/", forged),
        ("/", {**forged, "X-Cartes-Jeton": "0" * 64}),
        ("/metrics", {}),
    ]:
        answer = unix_get(stack.web.socket, path, headers)
        assert answer.status == 403, (path, headers)
        assert "<h1>Accès refusé</h1>" in answer.body
        assert "Gaëlle" not in answer.body and fingerprint(lawyers.known) not in answer.body
    answer = unix_get(stack.web.socket, "/statut.json", forged)
    assert answer.status == 403
    assert answer.json()["erreur"] == "acces_direct"


def test_headers_forged_through_nginx_are_replaced(stack, lawyers):
    forged = {
        "X-Cartes-Certificat": quote(lawyers.other.certificate_pem().decode()),
        "X-Cartes-Verification": "SUCCESS",
        "X-Cartes-Jeton": "0" * 64,
    }
    answer = get(stack, lawyers.known, "/statut.json", **forged)
    assert answer.status == 200, answer.body  # nginx put the real secret back
    status = answer.json()
    assert status["certificat"]["empreinte_sha256"] == fingerprint(lawyers.known)
    assert status["titulaire"] == "Gaëlle Moreau-Lefort"
    page = get(stack, lawyers.known, "/", **forged)
    assert "Étienne Faure" not in page.body and fingerprint(lawyers.other) not in page.body

    # Without a certificate of its own, a client's forged headers get nginx's refusal.
    answer = get(stack, None, "/statut.json", **forged)
    assert (answer.status, answer.body) == (403, NGINX_NO_CERTIFICATE)


@pytest.mark.parametrize(
    "path",
    [
        "/../",
        "/statut.json/../x",
        "/?email={email}",
        "/statut.json?empreinte={fingerprint}&titulaire=Faure",
        "//statut.json",
        "/statut.json/",
        "/%2e%2e/statut.json",
        "/statut.json%3Fempreinte={fingerprint}",
        "/index.html",
        "/titulaires/1",
    ],
)
def test_no_path_nor_parameter_reaches_another_holder(stack, lawyers, path):
    other = lawyers.other
    target = path.format(email=quote(email_of(other)), fingerprint=fingerprint(other))
    answer = get(stack, lawyers.known, target)
    for secret in ("Étienne", "Faure", email_of(other), fingerprint(other)):
        assert secret not in answer.body
    if answer.status == 200:
        assert fingerprint(lawyers.known) in answer.body
    else:
        assert answer.status in (400, 404)


# --------------------------------------------------------------------------------------------
# Metrics


def test_metrics_answer_on_their_port_and_never_through_nginx(stack, lawyers):
    answer = get(stack, lawyers.known, "/metrics")
    assert (answer.status, answer.body) == (404, NGINX_NOT_FOUND)
    assert not answer.proxied

    answer = http_get(stack.web.metrics_port, "/metrics")
    assert answer.status == 200
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.body)
        for sample in family.samples
    }
    assert samples["cartes_metrics_up", ()] == 1
    assert samples["cartes_holders", ()] == 4
    active = ("cartes_credentials", (("kind", "cle_rpva"), ("state", "active")))
    requested = ("cartes_credentials", (("kind", "cle_rpva"), ("state", "demandee")))
    assert (samples[active], samples[requested]) == (4, 1)
    assert samples["cartes_emergency_cards_outstanding", ()] == 0
    ages = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "cartes_crl_age_seconds"
    }
    issuers = {dict(labels)["issuer"] for labels in ages}
    assert "CN=AC Avocats RPVA (TEST),O=Conseil national des barreaux (TEST),C=FR" in issuers
    assert all(age >= 3600 for age in ages.values())  # issued an hour before the PKI

    assert http_get(stack.web.metrics_port, "/").status == 404
