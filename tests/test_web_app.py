"""The status page's app in-process (its ASGI interface driven directly): who it answers,
what it says, and in which words; the secret shared with nginx; the validator that follows
the lists on disk; ``cartes web`` refusing to start on bad ground. Through a real nginx:
``tests/test_web_nginx.py``."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from cartes.settings import Settings
from cartes.trust import FreshValidator
from cartes.web import secret as web_secret
from cartes.web.app import build_app
from cartes.workspace import Workspace
from fixtures.pki import write_test_pki
from inventaire.clock import FixedClock
from pki import describe
from tests.conftest import NOW
from tests.factories import add_credential
from tests.test_selfcheck import store_certificate

SECRET = "0123456789abcdef" * 4


@pytest.fixture(scope="module")
def pki_files(test_pki, tmp_path_factory) -> dict[str, Path]:
    return write_test_pki(test_pki, tmp_path_factory.mktemp("web-pki"))


def trust_settings(pki_files: dict[str, Path], tmp_path: Path, **web: Any) -> dict[str, Any]:
    return {
        "trust": {
            "rpva_key": [pki_files["avocat-racine.pem"]],
            "intermediates": [pki_files["avocat-emettrice.pem"]],
            "crls": [pki_files["avocat.crl"], pki_files["avocat_racine.crl"]],
            "crl_cache_dir": tmp_path / "lcr",
        },
        "web": {"secret_file": tmp_path / "jeton", **web},
    }


@pytest.fixture
def app(database, pki_files, tmp_path):
    settings = Settings(database_url=database.url, **trust_settings(pki_files, tmp_path))
    workspace = Workspace(settings=settings, clock=FixedClock(NOW), operator_login="web")
    validators = FreshValidator(settings)
    yield build_app(workspace, secret=SECRET, validators=validators.get)
    workspace.close()


class Answer:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


async def call(app, path: str = "/", headers: dict[str, str] | None = None, method: str = "GET"):
    """One request through the app's ASGI interface, as uvicorn makes it."""
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers_out = {k.decode(): v.decode() for k, v in start["headers"]}
    return Answer(start["status"], headers_out, body)


def through_nginx(certificate_pem: bytes, verification: str = "SUCCESS") -> dict[str, str]:
    """The headers nginx sets (deploy/nginx/cartes.conf)."""
    return {
        "X-Cartes-Jeton": SECRET,
        "X-Cartes-Verification": verification,
        "X-Cartes-Certificat": quote(certificate_pem.decode()),
    }


# --- who is answered -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/statut.json", "/metrics", "/autre"])
async def test_without_the_secret_nothing_is_answered(app, test_pki, path):
    lawyer = test_pki.holders_of("avocat")[0].authentication.certificate_pem()
    forged = through_nginx(lawyer)
    without = {k: v for k, v in forged.items() if k != "X-Cartes-Jeton"}
    for headers in ({}, without, {**forged, "X-Cartes-Jeton": "x" * 64}):
        answer = await call(app, path, headers)
        assert answer.status == 403
        assert "ne répond qu'au serveur web du SAR" in answer.text
        assert "Moreau" not in answer.text and "titulaire" not in answer.text


@pytest.mark.parametrize(
    ("verification", "code", "title"),
    [
        ("NONE", "certificat_absent", "Certificat requis"),
        ("FAILED:unable to get local issuer certificate", "certificat_refuse", "Certificat refusé"),
        ("FAILED:certificate signature failure", "certificat_refuse", "Certificat refusé"),
    ],
)
async def test_what_nginx_did_not_verify_is_refused(app, test_pki, verification, code, title):
    lawyer = test_pki.holders_of("avocat")[0].authentication.certificate_pem()
    answer = await call(app, "/statut.json", through_nginx(lawyer, verification))
    assert (answer.status, answer.json()["erreur"]) == (403, code)
    html = await call(app, "/", through_nginx(lawyer, verification))
    assert (html.status, f"<h1>{title}</h1>" in html.text) == (403, True)


async def test_no_certificate_header(app):
    headers = {"X-Cartes-Jeton": SECRET, "X-Cartes-Verification": "SUCCESS"}
    answer = await call(app, "/statut.json", headers)
    assert (answer.status, answer.json()["erreur"]) == (403, "certificat_absent")


async def test_a_certificate_of_another_authority_is_refused_even_if_nginx_let_it_in(app, test_pki):
    """nginx passes an expired certificate of any issuer as « expired » (OpenSSL reports
    the last error it met): the app checks the chain again."""
    impostor = test_pki.cases["emetteur_inconnu"].certificate_pem()
    answer = await call(
        app, "/statut.json", through_nginx(impostor, "FAILED:certificate has expired")
    )
    assert (answer.status, answer.json()["erreur"]) == (403, "certificat_refuse")


async def test_unreadable_certificate(app):
    headers = through_nginx(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    answer = await call(app, "/statut.json", headers)
    assert (answer.status, answer.json()["erreur"]) == (400, "certificat_illisible")


async def test_only_two_pages_and_only_to_read(app, test_pki):
    lawyer = through_nginx(test_pki.holders_of("avocat")[0].authentication.certificate_pem())
    for path in ("/metrics", "/titulaires/1", "/statut.json/", "/index.html"):
        answer = await call(app, path, lawyer)
        assert (answer.status, "Page introuvable" in answer.text) == (404, True), path
    posted = await call(app, "/", lawyer, method="POST")
    assert (posted.status, "Méthode non permise" in posted.text) == (405, True)
    head = await call(app, "/", lawyer, method="HEAD")  # the server sends no body
    assert head.status == 200


# --- what it says ----------------------------------------------------------------------------


async def test_a_known_key_gets_its_status(app, engine, test_pki):
    holder = test_pki.holders_of("avocat")[0]
    credential_id = add_credential(engine, NOW, expires_on=dt.date(2027, 2, 1))
    store_certificate(engine, credential_id, holder.authentication.certificate)
    headers = through_nginx(holder.authentication.certificate_pem())

    status = (await call(app, "/statut.json", headers)).json()
    assert status["statut"] == "valide" and status["revocation"] == "non_revoque"
    assert status["connue_du_sar"] is True and status["titulaire"].startswith("Claire Martin")
    assert status["type"] == "cle_rpva" and status["role"] == "authentification"
    assert status["expiration_cle"] == "2027-02-01"
    assert status["date_limite_commande"] == "2026-12-03"  # 45 days' lead and 15 of margin
    assert status["sar"] == {
        "etat": "active",
        "urgence": False,
        "renouvellement": "aucun",
        "demande_le": None,
        "recue_le": None,
        "rapproche_par": "empreinte",
    }
    assert status["prochaine_etape"]["code"] == "commander_avant"
    assert status["prochaine_etape"]["avant_le"] == "2026-12-03"
    assert "au plus tard le 03/12/2026" in status["prochaine_etape"]["message"]
    assert "auprès de votre ordre" in status["prochaine_etape"]["consigne"]

    page = await call(app, "/", headers)
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    text = page.text
    assert '<html lang="fr">' in text and "<script" not in text
    assert "État de votre clé RPVA" in text
    assert "Date limite de commande</dt><dd>03/12/2026" in text
    assert "Certificat valide" in text
    assert "Le SAR ne connaît pas cette clé" not in text
    assert "@media print" in text


async def test_an_unknown_key_says_so(app, test_pki):
    holder = test_pki.holders_of("avocat")[1]
    headers = through_nginx(holder.authentication.certificate_pem())
    status = (await call(app, "/statut.json", headers)).json()
    assert (status["connue_du_sar"], status["sar"]) == (False, None)
    assert status["titulaire"] == holder.name
    page = await call(app, "/", headers)
    assert "Le SAR ne connaît pas cette clé" in page.text


async def test_revoked(app, test_pki):
    headers = through_nginx(test_pki.cases["revoque"].certificate_pem())
    status = (await call(app, "/statut.json", headers)).json()
    assert (status["statut"], status["revocation"]) == ("invalide", "revoque")
    assert status["prochaine_etape"]["code"] == "revoquee"
    assert [m["code"] for m in status["motifs"]] == ["revoque"]
    assert "révoqué" in status["motifs"][0]["message"]
    page = await call(app, "/", headers)
    assert "il est révoqué" in page.text


async def test_markup_in_a_certificate_is_shown_as_text(app, engine, test_pki):
    holder = test_pki.holders_of("avocat")[0]
    credential_id = add_credential(engine, NOW)
    store_certificate(engine, credential_id, holder.authentication.certificate)
    from inventaire import db
    from inventaire.models import Credential, Holder

    with db.write_session(engine) as session:
        credential = session.get(Credential, credential_id)
        assert credential is not None
        person = session.get(Holder, credential.holder_id)
        assert person is not None
        person.first_name = "<b>Claire</b>"
        session.add(person)
    page = await call(app, "/", through_nginx(holder.authentication.certificate_pem()))
    assert "&lt;b&gt;Claire&lt;/b&gt;" in page.text and "<b>Claire" not in page.text


async def test_answers_are_never_cached_nor_framed(app, test_pki):
    headers = through_nginx(test_pki.holders_of("avocat")[0].authentication.certificate_pem())
    for path in ("/", "/statut.json"):
        answer = await call(app, path, headers)
        assert answer.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"


async def test_query_parameters_change_nothing(app, engine, test_pki):
    mine, other = test_pki.holders_of("avocat")[:2]
    for holder in (mine, other):
        credential_id = add_credential(engine, NOW)
        store_certificate(engine, credential_id, holder.authentication.certificate)
    headers = through_nginx(mine.authentication.certificate_pem())
    plain = (await call(app, "/statut.json", headers)).json()
    fingerprint = describe(other.authentication.certificate).fingerprint_sha256
    for query in (f"?empreinte={fingerprint}", "?id=2", "?titulaire=2&email=x"):
        answered = (await call(app, "/statut.json" + query, headers)).json()
        assert answered == plain
    assert plain["certificat"]["empreinte_sha256"] != fingerprint


async def test_inventory_unavailable(pki_files, tmp_path, test_pki):
    missing = tmp_path / "absente" / "cartes.db"
    settings = Settings(database_url=f"sqlite:///{missing}", **trust_settings(pki_files, tmp_path))
    workspace = Workspace(settings=settings, clock=FixedClock(NOW), operator_login="web")
    app = build_app(workspace, secret=SECRET, validators=FreshValidator(settings).get)
    headers = through_nginx(test_pki.holders_of("avocat")[0].authentication.certificate_pem())
    answer = await call(app, "/statut.json", headers)
    assert (answer.status, answer.json()["erreur"]) == (503, "indisponible")
    page = await call(app, "/", headers)
    assert (page.status, "momentanément indisponible" in page.text) == (503, True)


# --- the validator follows the lists on disk -------------------------------------------------


def test_fresh_validator_reads_lists_the_service_refreshed(pki_files, tmp_path, test_pki):
    values = trust_settings(pki_files, tmp_path)
    values["trust"]["crls"] = [pki_files["avocat_racine.crl"]]  # the holders' list is not there
    settings = Settings(**values)
    seconds = [0.0]
    fresh = FreshValidator(settings, check_s=30, monotonic=lambda: seconds[0])
    revoked = test_pki.cases["revoque"].certificate
    first = fresh.get()
    assert first.validate(revoked, NOW).status == "indetermine"

    cache = settings.trust.crl_cache_dir
    cache.mkdir(parents=True)
    (cache / "avocat.crl").write_bytes(pki_files["avocat.crl"].read_bytes())
    seconds[0] = 29.0
    assert fresh.get() is first  # not looked at before check_s
    seconds[0] = 31.0
    second = fresh.get()
    assert second is not first
    assert second.validate(revoked, NOW).status == "invalide"
    seconds[0] = 70.0
    assert fresh.get() is second  # nothing changed since


def test_fresh_validator_keeps_the_lists_it_has_when_a_file_goes_bad(pki_files, tmp_path, test_pki):
    configured = tmp_path / "avocat.crl"
    shutil.copy(pki_files["avocat.crl"], configured)
    values = trust_settings(pki_files, tmp_path)
    values["trust"]["crls"] = [configured, pki_files["avocat_racine.crl"]]
    seconds = [0.0]
    fresh = FreshValidator(Settings(**values), check_s=30, monotonic=lambda: seconds[0])
    revoked = test_pki.cases["revoque"].certificate
    first = fresh.get()
    configured.write_bytes(b"not a CRL")  # a configured file cannot be read: pki refuses it
    seconds[0] = 40.0
    assert fresh.get() is first
    assert fresh.get().validate(revoked, NOW).status == "invalide"


# --- the secret shared with nginx ------------------------------------------------------------


def test_secret_file_is_private_and_kept(tmp_path):
    path = tmp_path / "donnees" / "jeton"
    value = web_secret.create(path)
    assert len(value) == 64 and path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert web_secret.create(path) == value == web_secret.read(path)

    path.chmod(0o640)
    with pytest.raises(web_secret.SecretError, match=r"lisible par d'autres.*chmod 600"):
        web_secret.read(path)
    path.chmod(0o600)
    path.write_text("court\n")
    with pytest.raises(web_secret.SecretError, match="invalide"):
        web_secret.read(path)
    with pytest.raises(web_secret.SecretError, match="cartes web jeton"):
        web_secret.read(tmp_path / "absent")


def test_cartes_web_jeton_writes_the_nginx_line_and_never_prints_the_secret(
    cli, tmp_path, monkeypatch
):
    monkeypatch.setenv("CARTES_WEB__SECRET_FILE", str(tmp_path / "jeton"))
    include = tmp_path / "nginx-jeton.conf"
    result = cli("web", "jeton", "--nginx", str(include))
    assert result.code == 0, result.err
    value = web_secret.read(tmp_path / "jeton")
    assert value not in result.out + result.err
    assert f'proxy_set_header X-Cartes-Jeton "{value}";' in include.read_text()
    assert include.stat().st_mode & 0o777 == 0o600
    again = cli("web", "jeton")
    assert (again.code, "conservé" in again.out) == (0, True)
    assert web_secret.read(tmp_path / "jeton") == value


def test_cartes_web_refuses_to_start_on_bad_ground(cli, tmp_path, monkeypatch, pki_files):
    monkeypatch.setenv("CARTES_WEB__SECRET_FILE", str(tmp_path / "jeton"))
    result = cli("web", "--port", "1")
    assert (result.code, "cartes web jeton" in result.err) == (1, True)

    web_secret.create(tmp_path / "jeton")
    result = cli("web", "--port", "1")
    assert (result.code, "Aucune ancre de confiance" in result.err) == (1, True)

    monkeypatch.setenv("CARTES_TRUST__RPVA_KEY", json.dumps([str(pki_files["avocat-racine.pem"])]))
    result = cli("web")
    assert (result.code, "--socket CHEMIN ou --port N" in result.err) == (1, True)
