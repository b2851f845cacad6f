"""One holder's personal data (issue 12): ``cartes titulaire voir`` and ``exporter``, the
register of who read a holder's record (the CLI, the terminal UI's record, an export), on
SQLite and PostgreSQL.

The holder of these tests has a credential of each kind, certificates from the test PKI, a
request, an emergency card, alerts (their own, a copy to the IT service, and one sent to
their address about someone else's key), a mute and journal entries; a second holder,
with names, addresses, serials and certificates of their own, must leave no trace in the
first one's export.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import stat
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from cartes.ops import records
from cartes.settings import Settings
from cartes.workspace import Workspace
from fixtures.pki import write_test_pki
from inventaire import alerts, credentials, db, emergency, organisations, outbox, requests
from inventaire.clock import PARIS, from_db
from inventaire.enums import (
    CardModel,
    CertificateRole,
    CredentialKind,
    CredentialState,
    HolderRole,
)
from inventaire.models import Certificate, Digest, Holder, RecordAccess
from inventaire.personal import AccessNotRecorded
from inventaire.renewal import AlertPolicy
from tests.conftest import NOW, get_operator

K = CredentialKind
S = CredentialState
TODAY = NOW.date()
COPIES = "sar.copies@justice.fr"


@dataclass
class Person:
    holder_id: int
    email: str
    credentials: dict[str, int]  # by label
    fingerprints: list[str]
    strings: list[str]  # what only this person's data contains


@pytest.fixture(scope="module")
def pki_files(test_pki, tmp_path_factory) -> dict[str, Path]:
    return write_test_pki(test_pki, tmp_path_factory.mktemp("personal-pki"))


def _holder(session, by, *, last: str, first: str, email: str, role: HolderRole, org: str) -> int:
    holder = credentials.create_holder(
        session,
        last_name=last,
        first_name=first,
        email=email,
        role=role,
        organisation_id=organisations.find(session, org).id,  # type: ignore[union-attr]
        operator=by,
        now=NOW,
    )
    assert holder.id is not None
    return holder.id


def _credential(session, by, holder_id: int, kind: K, serial: str, days: int) -> int:
    credential = credentials.create_credential(
        session,
        holder_id=holder_id,
        kind=kind,
        state=S.ACTIVE,
        serial=serial,
        model=CardModel.OLD if kind is K.AGENT_CARD else None,
        expires_on=TODAY + dt.timedelta(days=days),
        operator=by,
        now=NOW,
    )
    assert credential.id is not None
    return credential.id


def _certificate(session, credential_id: int, pem: Path, role: CertificateRole) -> str:
    certificate = x509.load_pem_x509_certificate(pem.read_bytes())
    der = certificate.public_bytes(Encoding.DER)
    fingerprint = hashlib.sha256(der).hexdigest()
    session.add(
        Certificate(
            credential_id=credential_id,
            der=der,
            fingerprint_sha256=fingerprint,
            issuer=certificate.issuer.rfc4514_string(),
            serial_number=format(certificate.serial_number, "X"),
            subject=certificate.subject.rfc4514_string(),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            role=role,
            last_status="valide",
            last_validated_at=NOW,
        )
    )
    session.flush()
    return fingerprint


@pytest.fixture
def people(engine, pki_files) -> tuple[Person, Person]:
    """Hélène Dubois-Test (everything) and Bertrand Quillevéré (the other one)."""
    a_email = "helene.dubois-test@justice.fr"
    b_email = "bertrand.quillevere@avocats-laval.fr"
    admin = get_operator(engine, "admin")
    issuer = get_operator(engine, "remise")
    with db.write_session(engine) as session:
        a = _holder(
            session,
            admin,
            last="Dubois-Test",
            first="Hélène",
            email=a_email,
            role=HolderRole.CLERK,
            org="TJ Angers",
        )
        own = {
            "agent": _credential(session, admin, a, K.AGENT_CARD, "AG-HD-0001", 20),
            "expert": _credential(session, admin, a, K.EXPERT_CARD, "EXP-HD-0002", 300),
            "rpva": _credential(session, admin, a, K.RPVA_KEY, "RPVA-HD-0003", 40),
            "temporary": _credential(session, admin, a, K.TEMPORARY_CARD, "TMP-HD-0004", 60),
        }
        fingerprints = [
            _certificate(
                session,
                own["expert"],
                pki_files["expert-1-auth.pem"],
                CertificateRole.AUTHENTICATION,
            ),
            _certificate(
                session, own["expert"], pki_files["expert-1-sign.pem"], CertificateRole.SIGNATURE
            ),
        ]
        request = requests.create_request(
            session,
            holder_email=a_email,
            kind=K.AGENT_CARD,
            replaces_id=own["agent"],
            reason="carte ancien modèle bientôt expirée",
            operator=admin,
            now=NOW,
        )
        assert request.id is not None
        own["request"] = request.id
        requests.receive(
            session, request_id=request.id, serial="AG-HD-NEW-5", operator=admin, now=NOW
        )
        issuance = emergency.issue(
            session,
            holder_email=a_email,
            serial="URG-HD-0006",
            reason="nouvelle carte pas encore remise",
            request_id=request.id,
            return_after_days=30,
            operator=issuer,
            now=NOW,
        )
        own["emergency"] = issuance.credential_id
        alerts.mute(
            session,
            credential_id=own["temporary"],
            operator=admin,
            reason="<b>fin de procédure</b> & clôture",
            now=NOW,
        )

        b = _holder(
            session,
            admin,
            last="Quillevéré",
            first="Bertrand",
            email=b_email,
            role=HolderRole.LAWYER,
            org="Barreau de Laval",
        )
        b_rpva = _credential(session, admin, b, K.RPVA_KEY, "RPVA-BQ-0777", 30)
        b_fingerprint = _certificate(
            session, b_rpva, pki_files["avocat-1-auth.pem"], CertificateRole.AUTHENTICATION
        )
        alerts.mute(
            session,
            credential_id=b_rpva,
            operator=admin,
            reason="congé de maître Quillevéré",
            now=NOW,
        )
        alerts.unmute(session, credential_id=b_rpva, operator=admin, now=NOW)

        # Copies of RPVA alerts go to the IT service and, as it happens, to Hélène
        # Dubois-Test herself: she then receives an alert about Bertrand Quillevéré's key.
        policy = AlertPolicy(
            lead_days=dict.fromkeys(K, 45),
            margin_days=5,
            copies={K.RPVA_KEY: (COPIES, a_email), K.AGENT_CARD: (COPIES,)},
        )
        alerts.plan_alerts(
            session, policy=policy, now=NOW, today=TODAY, message_domain="justice.fr"
        )
        digest = session.execute(
            sa.select(Digest.id).where(Digest.recipient == a_email)  # type: ignore[arg-type]
        ).scalar_one()
        outbox.mark_sent(session, digest, now=NOW + dt.timedelta(minutes=1))
    b_subject = x509.load_pem_x509_certificate(
        pki_files["avocat-1-auth.pem"].read_bytes()
    ).subject.rfc4514_string()
    return (
        Person(
            a,
            a_email,
            own,
            fingerprints,
            ["Dubois-Test", "AG-HD-0001", "URG-HD-0006", "fin de proc"],
        ),
        Person(
            b,
            b_email,
            {"rpva": b_rpva},
            [b_fingerprint],
            [
                "Quillevéré",
                "Quillevere",
                "Bertrand",
                b_email,
                "RPVA-BQ-0777",
                b_fingerprint,
                b_subject,
                "Barreau de Laval",
                "congé de maître",
                COPIES,
            ],
        ),
    )


@pytest.fixture
def workspaces(database, clock):
    """``workspaces(login)``: a workspace on the test database for that operator."""
    with contextlib.ExitStack() as stack:
        settings = Settings(database_url=database.url, busy_timeout_s=2)
        yield lambda login: stack.enter_context(
            contextlib.closing(Workspace(settings=settings, clock=clock, operator_login=login))
        )


def register(engine) -> list[tuple[int, str, str, dt.datetime]]:
    with db.read_session(engine) as session:
        rows = session.execute(
            sa.select(RecordAccess).order_by(RecordAccess.id)  # type: ignore[arg-type]
        ).scalars()
        return [(r.holder_id, r.operator, r.purpose, from_db(r.accessed_at)) for r in rows]


def paris(instant: dt.datetime) -> str:
    return instant.astimezone(PARIS).isoformat(timespec="seconds")


def no_trace_of(other: Person, text: str) -> None:
    folded = text.lower()
    for value in other.strings:
        assert value.lower() not in folded, value


# -- The export ------------------------------------------------------------------------------


def test_the_json_export_holds_everything_about_the_holder(cli, people):
    a, _ = people
    result = cli("titulaire", "exporter", a.email.upper(), operator="lecture")
    assert result.code == 0, result.err
    doc = json.loads(result.out)

    who = doc["titulaire"]
    assert (who["id"], who["nom"], who["prenom"], who["email"]) == (
        a.holder_id,
        "Dubois-Test",
        "Hélène",
        a.email,
    )
    assert (who["role"], who["organisation"], who["actif"]) == ("greffier", "TJ Angers", True)
    assert who["cree_le"] == paris(NOW) and who["anonymise_le"] is None

    supports = {s["id"]: s for s in doc["supports"]}
    assert set(supports) == set(a.credentials.values())
    assert {s["type"] for s in supports.values()} == {
        "carte_agent",
        "carte_expert",
        "cle_rpva",
        "carte_temporaire",
    }
    urgent = supports[a.credentials["emergency"]]
    assert (urgent["urgence"], urgent["modele"], urgent["numero_serie"]) == (
        True,
        "ancien",
        "URG-HD-0006",
    )
    assert supports[a.credentials["rpva"]]["expire_le"] == (TODAY + dt.timedelta(40)).isoformat()

    certificates = doc["certificats"]
    assert sorted(c["empreinte_sha256"] for c in certificates) == sorted(a.fingerprints)
    assert {c["support"] for c in certificates} == {a.credentials["expert"]}
    assert {c["role"] for c in certificates} == {"authentification", "signature"}
    assert all(c["sujet"] and c["emetteur"] and c["valide_au"] for c in certificates)
    assert {key for c in certificates for key in c} == {  # never the DER
        "id",
        "support",
        "role",
        "sujet",
        "emetteur",
        "numero_serie",
        "valide_du",
        "valide_au",
        "empreinte_sha256",
        "dernier_statut",
        "statut_obtenu_le",
    }

    (request,) = doc["demandes"]
    assert (request["id"], request["etat"], request["remplace"]) == (
        a.credentials["request"],
        "recue",
        a.credentials["agent"],
    )
    steps = {e["n"]: e["action"] for e in doc["journal"]}
    assert [steps[n] for n in request["historique"]] == ["demande.creation", "demande.reception"]

    (issued,) = doc["cartes_urgence"]
    assert (issued["support"], issued["emise_par"], issued["demande_couverte"]) == (
        a.credentials["emergency"],
        "remise",
        a.credentials["request"],
    )
    assert issued["motif"] == "nouvelle carte pas encore remise"
    assert issued["retour_prevu_le"] == (TODAY + dt.timedelta(30)).isoformat()

    lines = doc["alertes"]
    own = [line for line in lines if line["support"] == a.credentials["rpva"]]
    assert {(line["destinataire"], line["copie_au_service"]) for line in own} == {
        (a.email, False),
        (None, True),
    }
    to_her = next(line for line in own if line["destinataire"] == a.email)
    assert (to_her["envoi"], to_her["envoyee_le"]) == (
        "envoyee",
        paris(NOW + dt.timedelta(minutes=1)),
    )
    # The alert about Bertrand Quillevéré's key sent to her address: hers, without his key.
    (about_other,) = [line for line in lines if line["autre_titulaire"]]
    assert (about_other["support"], about_other["destinataire"]) == (None, a.email)

    (mute,) = doc["alertes_coupees"]
    assert (mute["support"], mute["operateur"]) == (a.credentials["temporary"], "admin")
    assert mute["motif"] == "<b>fin de procédure</b> & clôture"

    actions = [e["action"] for e in doc["journal"]]
    for action in (
        "titulaire.creation",
        "support.creation",
        "demande.creation",
        "demande.reception",
        "urgence.emission",
        "support.alertes_coupees",
    ):
        assert action in actions
    assert {(e["objet"], e["id"]) for e in doc["journal"]} <= {("titulaire", a.holder_id)} | {
        ("support", i) for i in a.credentials.values()
    }
    creation = next(e for e in doc["journal"] if e["action"] == "demande.creation")
    assert creation["action_libelle"] == "demande enregistrée"
    assert creation["apres"]["state"] == "REQUESTED"  # as stored

    assert doc["consultations"] == [
        {
            "date": paris(NOW),
            "operateur": "lecture",
            "motif": "export",
            "motif_libelle": "export de ses données",
        }
    ]


def test_the_export_holds_no_trace_of_another_holder(cli, people):
    a, b = people
    for form in ("json", "html"):
        result = cli("titulaire", "exporter", str(a.holder_id), "--format", form)
        assert result.code == 0, result.err
        no_trace_of(b, result.out)
        for value in a.strings:  # and it is her export indeed
            assert value.lower() in result.out.lower(), value
    doc = json.loads(cli("titulaire", "exporter", a.email).out)
    referenced = {s["id"] for s in doc["supports"]}
    referenced |= {c["support"] for c in doc["certificats"]}
    referenced |= {line["support"] for line in doc["alertes"]} - {None}
    referenced |= {m["support"] for m in doc["alertes_coupees"]}
    referenced |= {e["id"] for e in doc["journal"] if e["objet"] == "support"}
    assert referenced == set(a.credentials.values())
    assert b.credentials["rpva"] not in referenced
    # His own export, for the symmetry: nothing of hers but the copy she received.
    other = cli("titulaire", "exporter", b.email).out
    assert "Dubois-Test" not in other and "AG-HD-0001" not in other


class PageParser(HTMLParser):
    """Checks that every element is closed in order and collects the headings."""

    VOID = frozenset({"meta", "br", "link", "img", "input", "hr"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.headings: dict[str, list[str]] = {"h1": [], "h2": []}
        self.tags: set[str] = set()
        self.lang: str | None = None
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "html":
            self.lang = dict(attrs).get("lang")
        if tag in self.headings:
            self._text = []
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> inattendu (ouverts : {self.stack})")
            return
        self.stack.pop()
        if tag in self.headings and self._text is not None:
            self.headings[tag].append("".join(self._text).strip())
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def test_the_html_export_is_french_well_formed_and_escaped(cli, people):
    a, _ = people
    result = cli("titulaire", "exporter", a.email, "--format", "html", operator="lecture")
    assert result.code == 0, result.err
    page = PageParser()
    page.feed(result.out)
    page.close()
    assert page.problems == [] and page.stack == []
    assert page.lang == "fr"
    assert "script" not in page.tags and "<script" not in result.out.lower()
    assert page.headings["h1"] == [
        f"Données personnelles de Hélène Dubois-Test (titulaire n°{a.holder_id})"
    ]
    assert page.headings["h2"] == [
        "Identité",
        "Supports (cartes et clés)",
        "Certificats",
        "Demandes",
        "Cartes remises en urgence",
        "Alertes de renouvellement",
        "Alertes coupées",
        "Journal des modifications",
        "Consultations de la fiche",
    ]
    assert "@media print" in result.out
    assert "&lt;b&gt;fin de procédure&lt;/b&gt; &amp; clôture" in result.out
    assert "<b>fin" not in result.out
    assert "copie au service" in result.out
    assert "demande enregistrée" in result.out  # the journal's actions, in French
    assert "export de ses données" in result.out


def test_voir_prints_a_french_summary(cli, people):
    a, b = people
    result = cli("titulaire", "voir", a.email, operator="lecture")
    assert result.code == 0, result.err
    text = result.out
    assert text.startswith("Données personnelles de Hélène Dubois-Test")
    for heading in (
        "Supports (cartes et clés) (6)",
        "Certificats (2)",
        "Demandes (1)",
        "Cartes remises en urgence (1)",
        "Alertes coupées (1)",
        "Consultations de la fiche (1)",
    ):
        assert heading in text
    assert "clé RPVA" in text and "carte agent ancien modèle" in text
    assert "consultation de la fiche complète" in text
    no_trace_of(b, text)
    json_form = json.loads(cli("titulaire", "voir", a.email, "--format", "json").out)
    assert [c["motif"] for c in json_form["consultations"]] == ["voir", "voir"]


# -- The register ----------------------------------------------------------------------------


def test_every_reading_is_registered_with_who_how_and_when(cli, people, clock, engine, workspaces):
    a, b = people
    assert register(engine) == []

    assert cli("titulaire", "voir", a.email, operator="lecture").code == 0
    clock.advance(minutes=5)
    assert cli("titulaire", "exporter", str(a.holder_id), operator="admin").code == 0
    # The terminal UI's record of one of her credentials shows her: a reading « fiche ».
    reader = workspaces("gestion")
    record = records.load_record(reader, a.credentials["rpva"])
    assert record.holder.id == a.holder_id
    five = NOW + dt.timedelta(minutes=5)
    assert register(engine) == [
        (a.holder_id, "lecture", "voir", NOW),
        (a.holder_id, "admin", "export", five),
        (a.holder_id, "gestion", "fiche", five),
    ]

    # Refreshes and another credential of hers within the half hour are the same reading...
    clock.advance(minutes=20)
    records.load_record(reader, a.credentials["rpva"])
    records.load_record(reader, a.credentials["expert"])
    assert len(register(engine)) == 3
    # ...not a look an hour later, nor another operator's, nor another holder's record.
    clock.advance(minutes=40)
    records.load_record(reader, a.credentials["rpva"])
    records.load_record(workspaces("lecture"), a.credentials["rpva"])
    records.load_record(reader, b.credentials["rpva"])
    later = five + dt.timedelta(minutes=60)
    assert register(engine)[3:] == [
        (a.holder_id, "gestion", "fiche", later),
        (a.holder_id, "lecture", "fiche", later),
        (b.holder_id, "gestion", "fiche", later),
    ]

    # Her next export lists every reading of her record, itself last, and not his.
    doc = json.loads(cli("titulaire", "exporter", a.email, operator="lecture").out)
    assert [(c["operateur"], c["motif"]) for c in doc["consultations"]] == [
        ("lecture", "voir"),
        ("admin", "export"),
        ("gestion", "fiche"),
        ("gestion", "fiche"),
        ("lecture", "fiche"),
        ("lecture", "export"),
    ]
    assert doc["consultations"][-1]["date"] == paris(later)


def test_an_unknown_holder_is_refused_and_nothing_is_recorded(cli, people, engine):
    for command in ("voir", "exporter"):
        for unknown in ("personne@justice.fr", "999999"):
            result = cli("titulaire", command, unknown, operator="lecture")
            assert result.code == 1
            assert result.out == ""
            assert f"Aucun titulaire ne correspond à « {unknown} »" in result.err
    assert register(engine) == []


def test_an_unknown_operator_reads_nothing(cli, people, engine):
    a, _ = people
    result = cli("titulaire", "voir", a.email, operator="intrus")
    assert result.code == 1 and result.out == ""
    assert "Opérateur inconnu" in result.err
    assert register(engine) == []


def test_an_export_to_a_file_is_private_and_replaces_it_whole(cli, people, engine, tmp_path):
    a, _ = people
    target = tmp_path / "export" / "dubois.html"
    target.parent.mkdir()
    target.write_text("ancien contenu")
    target.chmod(0o644)
    result = cli(
        "titulaire", "exporter", a.email, "--format", "html", "--sortie", str(target),
        operator="lecture",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "écrites dans" in result.out and "registre des consultations" in result.out
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in target.parent.iterdir()] == ["dubois.html"]  # no temporary file
    assert register(engine) == [(a.holder_id, "lecture", "export", NOW)]


@pytest.mark.parametrize("where", ["under_a_file", "missing_folder", "a_folder"])
def test_a_path_that_cannot_be_written_records_nothing(cli, people, engine, tmp_path, where):
    a, _ = people
    (tmp_path / "file.txt").write_text("x")
    target = {
        "under_a_file": tmp_path / "file.txt" / "out.json",
        "missing_folder": tmp_path / "absent" / "out.json",
        "a_folder": tmp_path,
    }[where]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli("titulaire", "exporter", a.email, "--sortie", str(target), operator="lecture")
    assert result.code == 1
    assert f"Impossible d'écrire {target}" in result.err
    assert "Traceback" not in result.err and result.out == ""
    assert register(engine) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def _refuse_register(engine) -> None:
    """Make every insert into the register fail, as a database that cannot take it."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_register BEFORE INSERT ON record_access "
                "BEGIN SELECT RAISE(ABORT, 'registre indisponible'); END"
            )
        else:
            connection.exec_driver_sql(
                "CREATE FUNCTION refuse_register() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'registre indisponible'; END $$"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_register BEFORE INSERT ON record_access "
                "FOR EACH ROW EXECUTE FUNCTION refuse_register()"
            )


def test_a_reading_the_register_cannot_hold_is_refused(cli, people, engine, workspaces, tmp_path):
    a, _ = people
    _refuse_register(engine)

    for command in ("voir", "exporter"):
        result = cli("titulaire", command, a.email, operator="lecture")
        assert result.code == 1
        assert result.out == ""  # nothing of her data
        assert "Lecture refusée" in result.err and "registre des consultations" in result.err
        assert "Dubois" not in result.err
    target = tmp_path / "sortie" / "export.json"
    target.parent.mkdir()
    result = cli("titulaire", "exporter", a.email, "--sortie", str(target), operator="lecture")
    assert result.code == 1 and "Lecture refusée" in result.err
    assert list(target.parent.iterdir()) == []  # neither the file nor its temporary
    with pytest.raises(AccessNotRecorded) as refused:
        records.load_record(workspaces("gestion"), a.credentials["rpva"])
    assert refused.value.params["id"] == a.holder_id
    assert register(engine) == []


def test_an_anonymised_holder_is_still_exported(cli, people, engine):
    a, _ = people
    with db.write_session(engine) as session:
        holder = session.get(Holder, a.holder_id)
        assert holder is not None
        holder.last_name, holder.first_name = "Anonyme", "—"
        holder.email = f"anonyme-{a.holder_id}@anonyme.invalid"
        holder.search_text = "anonyme"
        holder.anonymised_at = NOW
    assert cli("titulaire", "voir", a.email).code == 1  # her address is gone
    doc = json.loads(cli("titulaire", "exporter", str(a.holder_id)).out)
    assert (doc["titulaire"]["nom"], doc["titulaire"]["anonymise_le"]) == ("Anonyme", paris(NOW))
    assert len(doc["supports"]) == 6 and len(doc["certificats"]) == 2
    html = cli("titulaire", "exporter", str(a.holder_id), "--format", "html").out
    assert "ont été anonymisées le 26/11/2026 10:30:00" in html
    assert "Dubois" not in html


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_the_json_keys_are_the_documented_ones(cli, people):
    a, _ = people
    doc = json.loads(cli("titulaire", "exporter", a.email).out)
    assert list(doc) == [
        "document",
        "version",
        "etabli_le",
        "titulaire",
        "supports",
        "certificats",
        "demandes",
        "cartes_urgence",
        "alertes",
        "alertes_coupees",
        "journal",
        "consultations",
    ]
    assert (doc["document"], doc["version"], doc["etabli_le"]) == (
        "cartes.titulaire",
        1,
        paris(NOW),
    )
    # French keys only (the stored before/after of the journal aside).
    entries = [{k: v for k, v in e.items() if k not in ("avant", "apres")} for e in doc["journal"]]
    english = {"id", "version", "document", "email"}
    keys = _keys({**doc, "journal": entries}) - english
    assert all(key.isascii() and key == key.lower() for key in keys)
    assert not keys & {"state", "kind", "holder", "serial", "recipient", "der"}
