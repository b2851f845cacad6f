"""Old-model agent cards handed out in emergency: who may issue one, what is refused, the
register, and the IT service's reminders from issuance to return under a moving clock,
mailed to a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from cartes import dispatch, mail
from cartes.settings import Settings
from inventaire import credentials, db, emergency, lifecycle, operators, organisations
from inventaire.clock import paris_today
from inventaire.enums import AlertLevel, CardModel, CredentialKind, CredentialState, HolderRole
from inventaire.errors import PermissionDenied
from inventaire.models import Alert, Credential, EmergencyIssuance, JournalEntry
from inventaire.outbox import DigestContent, DigestItem, EmergencyDetails
from tests.conftest import NOW, get_operator
from tests.factories import journal_count
from tests.smtp_support import SmtpTestServer, smtp_server

FIXTURES = (smtp_server,)

K = CredentialKind
S = CredentialState
TODAY = paris_today(NOW)  # 26/11/2026
SAR = "sar@justice.test"
JUDGE = "juliette.bernard@justice.fr"


def make_holder(engine, email: str = JUDGE, *, last_name: str = "Bernard") -> int:
    with db.write_session(engine) as session:
        admin = operators.find(session, "admin")
        holder = credentials.create_holder(
            session,
            last_name=last_name,
            first_name="Juliette",
            email=email,
            role=HolderRole.MAGISTRATE,
            organisation_id=organisations.find(session, "TJ Angers").id,
            operator=admin,
            now=NOW,
        )
        return holder.id


def make_request(
    engine,
    holder_id: int,
    *,
    state: CredentialState = S.REQUESTED,
    kind: CredentialKind = K.AGENT_CARD,
    model: CardModel | None = CardModel.NEW,
    serial: str | None = None,
) -> int:
    """A new-model agent card request (a credential in ``state``) of one holder."""
    with db.write_session(engine) as session:
        admin = operators.find(session, "admin")
        credential = credentials.create_credential(
            session,
            holder_id=holder_id,
            kind=kind,
            state=state,
            model=model,
            serial=serial,
            operator=admin,
            now=NOW,
        )
        return credential.id


def hand_over(engine, request_id: int, now: dt.datetime) -> None:
    """The new card arrives at the IT service, then is handed over by a habilitated
    operator."""
    issuer = get_operator(engine, "remise")
    for target in (S.RECEIVED, S.ACTIVE):
        with db.write_session(engine) as session:
            lifecycle.transition(
                session,
                credential_id=request_id,
                target=target,
                operator=issuer,
                reason="nouvelle carte",
                now=now,
            )


def counts(engine) -> tuple[int, int, int, int]:
    """Credentials, issuances, alerts, journal entries."""
    with db.read_session(engine) as session:
        return tuple(  # type: ignore[return-value]
            session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (Credential, EmergencyIssuance, Alert, JournalEntry)
        )


def listing(cli, *options: str) -> list[dict]:
    result = cli("urgence", "liste", "--format", "json", *options, operator="lecture")
    assert result.code == 0, result.err
    return json.loads(result.out)


def make_settings(server: SmtpTestServer, **emergency_settings) -> Settings:
    return Settings(
        smtp=server.settings(),
        alerts={"copies": {"agent_card": [SAR]}},
        emergency=emergency_settings,
    )


def text_of(received) -> str:
    return " ".join(received.message.get_body(("plain",)).get_content().split())


# ---------------------------------------------------------------------------------------
# Issuing


def test_issue_records_an_old_model_emergency_card_handed_over_now(engine, cli):
    holder = make_holder(engine)
    request = make_request(engine, holder)
    before = journal_count(engine)
    result = cli(
        "urgence", "emettre", "--titulaire", " Juliette.Bernard@justice.fr ",
        "--numero-serie", "ab-1234", "--motif", "carte nouveau modèle en retard",
        "--demande", str(request), operator="remise",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "Carte d'urgence n° AB-1234 remise à juliette.bernard@justice.fr" in result.out
    assert f"demande n°{request}" in result.out and "retour prévu le 24/02/2027" in result.out
    with db.read_session(engine) as session:
        [issuance] = session.execute(sa.select(EmergencyIssuance)).scalars().all()
        card = session.get(Credential, issuance.credential_id)
    assert (card.kind, card.model, card.state) == (K.AGENT_CARD, CardModel.OLD, S.ACTIVE)
    assert card.emergency and card.serial == "AB-1234" and card.holder_id == holder
    assert card.handed_over_on == TODAY and card.replaces_id is None
    assert (issuance.holder_id, issuance.issued_by, issuance.request_id) == (
        holder,
        "remise",
        request,
    )
    assert issuance.issued_on == TODAY
    assert issuance.return_due_on == TODAY + dt.timedelta(days=90)
    assert issuance.returned_on is None
    # One journal entry, on the card, naming ids and never the holder.
    assert journal_count(engine) == before + 1
    with db.read_session(engine) as session:
        entry = session.execute(
            sa.select(JournalEntry).order_by(JournalEntry.seq.desc()).limit(1)
        ).scalar_one()
    assert (entry.action, entry.entity_type, entry.entity_id, entry.operator) == (
        "urgence.emission",
        "credential",
        card.id,
        "remise",
    )
    after = json.loads(entry.after)
    assert after["emergency"] is True and after["request_id"] == request
    assert after["emergency_issuance_id"] == issuance.id
    assert "bernard" not in (entry.after + (entry.reason or "")).lower()
    assert "juliette" not in entry.after.lower()


def test_issue_without_request_and_a_chosen_return_date(engine, cli):
    make_holder(engine)
    result = cli(
        "urgence", "emettre", "--titulaire", JUDGE, "--numero-serie", "OLD-9",
        "--motif", "aucune commande possible avant janvier", "--sans-demande",
        "--retour-prevu", "15/01/2027", operator="remise",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "sans demande" in result.out and "retour prévu le 15/01/2027" in result.out
    [line] = listing(cli)
    assert line["demande"] is None and line["demande_etat"] is None
    assert line["retour_prevu_le"] == "2027-01-15"
    assert line["motif"] == "aucune commande possible avant janvier"


@pytest.mark.parametrize("login", ["gestion", "admin", "lecture"])
def test_only_a_habilitated_operator_may_issue(engine, cli, login):
    holder = make_holder(engine)
    request = make_request(engine, holder)
    before = counts(engine)
    result = cli(
        "urgence", "emettre", "--titulaire", JUDGE, "--numero-serie", "X1",
        "--motif", "urgence", "--demande", str(request), operator=login,
    )  # fmt: skip
    assert result.code == 1
    assert "n'a pas le rôle requis : habilité" in result.err
    assert counts(engine) == before  # no card, no issuance, no journal entry
    # The domain refuses too, whatever the caller checked.
    with db.write_session(engine) as session, pytest.raises(PermissionDenied):
        emergency.issue(
            session,
            holder_email=JUDGE,
            serial="X1",
            reason="urgence",
            request_id=request,
            return_after_days=90,
            operator=get_operator(engine, login),
            now=NOW,
        )
    assert counts(engine) == before


def _bad_cases():
    # (name, how to set it up, arguments, expected words of the message)
    return [
        ("titulaire inconnu", None, ["--titulaire", "personne@justice.fr"], "Aucun titulaire"),
        ("numero deja utilise", "serial", ["--numero-serie", "used-1"], "déjà celui d'une carte"),
        ("demande d'un autre", "other", [], "celle d'un autre titulaire"),
        ("demande active", "active", [], "« active » : seule une demande"),
        ("demande annulee", "cancelled", [], "« annulée » : seule une demande"),
        ("demande ancien modele", "old", [], "n'est pas une carte agent nouveau modèle"),
        ("demande cle rpva", "rpva", [], "n'est pas une carte agent nouveau modèle"),
        ("demande inconnue", "unknown", [], "Aucune demande n°"),
        ("retour passe", None, ["--retour-prevu", "25/11/2026"], "déjà passé"),
        ("motif vide", None, ["--motif", "   "], "motif est obligatoire"),
        ("deuxieme carte", "second", [], "déjà une carte d'urgence en circulation"),
    ]


@pytest.mark.parametrize(
    ("setup", "changes", "expected"),
    [case[1:] for case in _bad_cases()],
    ids=[case[0] for case in _bad_cases()],
)
def test_bad_input_is_refused_in_french_and_writes_nothing(engine, cli, setup, changes, expected):
    holder = make_holder(engine)
    request = make_request(engine, holder)
    if setup == "serial":
        make_request(engine, holder, state=S.ACTIVE, model=CardModel.NEW, serial="USED-1")
    elif setup == "other":
        request = make_request(engine, make_holder(engine, "autre@justice.fr", last_name="Autre"))
    elif setup == "active":
        request = make_request(engine, holder, state=S.ACTIVE, serial="NEW-1")
    elif setup == "cancelled":
        with db.write_session(engine) as session:
            lifecycle.transition(
                session,
                credential_id=request,
                target=S.CANCELLED,
                operator=operators.find(session, "gestion"),
                reason="erreur",
                now=NOW,
            )
    elif setup == "old":
        request = make_request(engine, holder, model=CardModel.OLD)
    elif setup == "rpva":
        request = make_request(engine, holder, kind=K.RPVA_KEY, model=None)
    elif setup == "unknown":
        request = 99_999
    elif setup == "second":
        first = cli(
            "urgence", "emettre", "--titulaire", JUDGE, "--numero-serie", "FIRST",
            "--motif", "urgence", "--sans-demande", operator="remise",
        )  # fmt: skip
        assert first.code == 0, first.err
    arguments = {
        "--titulaire": JUDGE,
        "--numero-serie": "EMERG-1",
        "--motif": "carte nouveau modèle en retard",
        "--demande": str(request),
    }
    arguments.update(dict(zip(changes[::2], changes[1::2], strict=True)))
    before = counts(engine)
    result = cli("urgence", "emettre", *(x for pair in arguments.items() for x in pair),
                 operator="remise")  # fmt: skip
    assert result.code == 1, result.out
    assert expected in result.err, result.err
    assert "Traceback" not in result.err and not result.out
    assert counts(engine) == before


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--demande", "1", "--sans-demande"], "incompatible avec l'argument --demande"),
        ([], "l'un des arguments --demande --sans-demande est obligatoire"),
        (["--demande", "premiere"], "argument --demande : valeur invalide"),
        (["--sans-demande", "--retour-prevu", "bientôt"], "date invalide"),
    ],
)
def test_the_command_line_is_checked_before_anything(engine, cli, arguments, expected):
    make_holder(engine)
    before = counts(engine)
    result = cli(
        "urgence", "emettre", "--titulaire", JUDGE, "--numero-serie", "S1", "--motif", "m",
        *arguments, operator="remise",
    )  # fmt: skip
    assert result.code == 2
    assert expected in result.err
    assert counts(engine) == before


# ---------------------------------------------------------------------------------------
# Giving back


def test_give_back_is_checked_and_recorded_once(engine, cli, clock):
    make_holder(engine)
    result = cli(
        "urgence", "emettre", "--titulaire", JUDGE, "--numero-serie", "R-1",
        "--motif", "urgence", "--sans-demande", operator="remise",
    )  # fmt: skip
    assert result.code == 0, result.err
    [line] = listing(cli)
    issuance = str(line["id"])
    clock.advance(days=5)
    refusals = [
        (("urgence", "restituer", issuance), "lecture", "rôle requis : gestionnaire"),
        (("urgence", "restituer", "999"), "gestion", "Aucune émission d'urgence n°999"),
        (("urgence", "restituer", issuance, "--date", "02/12/2026"), "gestion", "postérieur"),
        (("urgence", "restituer", issuance, "--date", "25/11/2026"), "gestion", "précède"),
    ]
    for argv, login, expected in refusals:
        before = counts(engine)
        result = cli(*argv, operator=login)
        assert result.code == 1 and expected in result.err, (argv, result.err)
        assert counts(engine) == before
    result = cli("urgence", "restituer", issuance, "--date", "30/11/2026", operator="gestion")
    assert result.code == 0, result.err
    assert "restituée le 30/11/2026" in result.out
    [line] = listing(cli)
    assert line["restituee_le"] == "2026-11-30"
    assert (line["a_recuperer"], line["en_retard"]) == (False, False)
    with db.read_session(engine) as session:
        assert session.get(Credential, line["support"]).state is S.RETURNED
        entry = session.execute(
            sa.select(JournalEntry).order_by(JournalEntry.seq.desc()).limit(1)
        ).scalar_one()
    assert (entry.action, entry.entity_id, entry.operator) == (
        "urgence.restitution",
        line["support"],
        "gestion",
    )
    assert json.loads(entry.before)["state"] == "ACTIVE"
    assert json.loads(entry.after)["returned_on"] == "2026-11-30"
    before = counts(engine)
    result = cli("urgence", "restituer", issuance, operator="gestion")
    assert result.code == 1 and "déjà été restituée, le 30/11/2026" in result.err
    assert counts(engine) == before


# ---------------------------------------------------------------------------------------
# From issuance to return: the register and the IT service's reminders


def test_emergency_flow_from_issuance_to_return(engine, cli, clock, smtp_server):
    holder = make_holder(engine)
    request = make_request(engine, holder)
    settings = make_settings(smtp_server)
    result = cli(
        "urgence", "emettre", "--titulaire", JUDGE, "--numero-serie", "ANC-0042",
        "--motif", "carte nouveau modèle en retard", "--demande", str(request),
        operator="remise",
    )  # fmt: skip
    assert result.code == 0, result.err
    [line] = listing(cli)
    assert line["demande_etat"] == "demandee"
    assert (line["a_recuperer"], line["en_retard"]) == (False, False)
    due = dt.date.fromisoformat(line["retour_prevu_le"])
    assert due == dt.date(2027, 2, 24)

    # While the new card is pending, the IT service hears nothing.
    assert dispatch.plan_and_send(engine, settings, now=clock.now()).sent == 0
    assert listing(cli, "--a-recuperer") == []

    # The new card arrives and is handed over: the emergency card is to take back.
    clock.advance(days=10)
    hand_over(engine, request, clock.now())
    [line] = listing(cli, "--a-recuperer")
    assert line["demande_etat"] == "active" and line["a_recuperer"] is True
    assert line["en_retard"] is False and listing(cli, "--en-retard") == []

    report = dispatch.plan_and_send(engine, settings, now=clock.now())
    assert (report.planned, report.sent, report.failed) == (1, 1, 0)
    [received] = smtp_server.wait_for(1)
    assert received.rcpt_tos == (SAR,)  # the IT service, never the holder
    assert received.message["Subject"] == "cartes : 1 carte d'urgence à récupérer"
    body = text_of(received)
    assert "Carte d'urgence n° ANC-0042 (carte agent ancien modèle) — à récupérer" in body
    assert "Titulaire : Juliette Bernard (TJ Angers)" in body
    assert "Remise en urgence : le 26/11/2026 par remise" in body
    assert "Retour prévu : le 24/02/2027 (dans 80 jours)" in body
    assert "Nouvelle carte : remise le 06/12/2026" in body
    assert f"cartes urgence restituer {line['id']}" in body
    assert "copie adressée" not in body and "Date limite de commande" not in body

    # Once: not again the same day, nor the next days.
    assert dispatch.plan_and_send(engine, settings, now=clock.now()).sent == 0
    for _ in range(3):
        clock.advance(days=1)
        assert dispatch.plan_and_send(engine, settings, now=clock.now()).planned == 0
    assert len(smtp_server.messages) == 1

    # Past the planned return date: overdue, and reminded every week while it stays out.
    clock.instant = dt.datetime.combine(due, NOW.time(), tzinfo=dt.UTC)
    assert dispatch.plan_and_send(engine, settings, now=clock.now()).sent == 0
    sent_on = []
    for _ in range(15):
        clock.advance(days=1)
        if dispatch.plan_and_send(engine, settings, now=clock.now()).sent:
            sent_on.append(paris_today(clock.now()))
    assert sent_on == [due + dt.timedelta(days=days) for days in (1, 8, 15)]
    overdue = smtp_server.messages[1:]
    assert [mail.rcpt_tos for mail in overdue] == [(SAR,)] * 3
    assert overdue[0].message["Subject"] == (
        "cartes : 1 carte d'urgence en retard — date de retour dépassée"
    )
    body = text_of(overdue[-1])
    assert "ANC-0042" in body and "en retard, la date de retour est dépassée" in body
    assert "Retour prévu : le 24/02/2027, dépassé de 15 jours" in body
    assert "Nouvelle carte : remise le 06/12/2026" in body
    [line] = listing(cli, "--en-retard")
    assert line["en_retard"] is True and line["a_recuperer"] is True
    assert listing(cli, "--en-retard", "--a-recuperer") == [line]
    with db.read_session(engine) as session:
        levels = session.execute(
            sa.select(Alert.level, Alert.occurrence, Alert.recipient).order_by(Alert.id)
        ).all()
    assert [(AlertLevel(level), occurrence, to) for level, occurrence, to in levels] == [
        (AlertLevel.TO_RETURN, 0, SAR),
        (AlertLevel.OVERDUE, 0, SAR),
        (AlertLevel.OVERDUE, 1, SAR),
        (AlertLevel.OVERDUE, 2, SAR),
    ]

    # Given back: the reminders stop.
    result = cli("urgence", "restituer", str(line["id"]), operator="gestion")
    assert result.code == 0, result.err
    for _ in range(21):
        clock.advance(days=1)
        assert dispatch.plan_and_send(engine, settings, now=clock.now()).planned == 0
    assert len(smtp_server.messages) == 4
    assert listing(cli, "--en-retard") == [] and listing(cli, "--a-recuperer") == []
    [line] = listing(cli)
    assert line["restituee_le"] == "2027-03-11"


def test_reminders_go_to_the_configured_service_and_respect_the_card_state(engine, cli, clock):
    holder = make_holder(engine)
    request = make_request(engine, holder)
    make_holder(engine, "paul.durand@justice.fr", last_name="Durand")
    for email, serial, bridge in (
        (JUDGE, "U-1", ["--demande", str(request)]),
        ("paul.durand@justice.fr", "U-2", ["--sans-demande"]),
    ):
        result = cli(
            "urgence", "emettre", "--titulaire", email, "--numero-serie", serial,
            "--motif", "urgence", "--retour-prevu", "01/12/2026", *bridge, operator="remise",
        )  # fmt: skip
        assert result.code == 0, result.err
    hand_over(engine, request, NOW)
    settings = Settings(
        alerts={"copies": {"agent_card": [SAR]}},
        emergency={"notify": ["Urgences@SAR.test", "chef@sar.test"]},
    )
    # The second card is recorded lost: nothing left to take back.
    [first, second] = listing(cli)
    assert second["support"] != first["support"]
    with db.write_session(engine) as session:
        lifecycle.transition(
            session,
            credential_id=second["support"],
            target=S.LOST,
            operator=operators.find(session, "gestion"),
            reason="perdue",
            now=NOW,
        )
    planned = dispatch.plan(engine, settings, now=NOW)
    assert planned.alerts == 2 and planned.digests == 2
    later = NOW + dt.timedelta(days=6)  # overdue since 02/12
    assert dispatch.plan(engine, settings, now=later).alerts == 2
    with db.read_session(engine) as session:
        rows = session.execute(sa.select(Alert.credential_id, Alert.level, Alert.recipient)).all()
    assert {(c, AlertLevel(level), to) for c, level, to in rows} == {
        (first["support"], level, to)
        for level in (AlertLevel.TO_RETURN, AlertLevel.OVERDUE)
        for to in ("urgences@sar.test", "chef@sar.test")
    }
    clock.instant = later
    [line] = listing(cli, "--en-retard")
    assert line["support"] == first["support"]
    lost = next(line for line in listing(cli) if line["support"] == second["support"])
    assert (lost["a_recuperer"], lost["en_retard"], lost["restituee_le"]) == (False, False, None)


def test_listing_as_json_csv_and_table(engine, cli, clock):
    holder = make_holder(engine)
    request = make_request(engine, holder)
    result = cli(
        "urgence", "emettre", "--titulaire", JUDGE, "--numero-serie", "L-7",
        "--motif", "carte HS; en attente", "--demande", str(request), operator="remise",
    )  # fmt: skip
    assert result.code == 0, result.err
    [line] = listing(cli)
    assert list(line) == [
        "id", "support", "numero_serie", "titulaire", "email", "organisation", "emise_par",
        "motif", "emise_le", "retour_prevu_le", "demande", "demande_etat", "a_recuperer",
        "en_retard", "restituee_le",
    ]  # fmt: skip
    assert line == {
        "id": line["id"],
        "support": line["support"],
        "numero_serie": "L-7",
        "titulaire": "Juliette Bernard",
        "email": JUDGE,
        "organisation": "TJ Angers",
        "emise_par": "remise",
        "motif": "carte HS; en attente",
        "emise_le": "2026-11-26",
        "retour_prevu_le": "2027-02-24",
        "demande": request,
        "demande_etat": "demandee",
        "a_recuperer": False,
        "en_retard": False,
        "restituee_le": None,
    }
    result = cli("urgence", "liste", "--format", "csv", operator="lecture")
    assert result.code == 0, result.err
    header, row = result.out.splitlines()
    assert header.split(";") == list(line)
    assert '"carte HS; en attente"' in row and row.endswith(";non;non;")
    clock.advance(days=100)
    result = cli("urgence", "liste", operator="lecture")
    assert result.code == 0, result.err
    assert "L-7" in result.out and "en retard" in result.out
    assert f"n°{request} (demandée)" in result.out and "1 carte d'urgence." in result.out
    result = cli("urgence", "liste", operator="inconnu")
    assert result.code == 1 and "Opérateur inconnu" in result.err


# ---------------------------------------------------------------------------------------
# Rendering a digest that mixes renewal alerts and emergency cards


def test_a_digest_with_renewal_alerts_and_an_emergency_card():
    day = dt.date(2026, 12, 6)
    renewal = DigestItem(
        alert_id=1,
        level=AlertLevel.ORDER_NOW,
        occurrence=0,
        credential_id=10,
        kind=K.AGENT_CARD,
        serial="NEW-10",
        expires_on=day + dt.timedelta(days=70),
        order_by=day + dt.timedelta(days=2),
        days_left=70,
        gap_days=0,
        holder_name="Paul Durand",
        holder_email="paul.durand@justice.fr",
        organisation="TJ Laval",
    )
    card = DigestItem(
        alert_id=2,
        level=AlertLevel.TO_RETURN,
        occurrence=0,
        credential_id=11,
        kind=K.AGENT_CARD,
        serial="ANC-1",
        expires_on=dt.date(2027, 2, 24),
        order_by=dt.date(2027, 2, 24),
        days_left=80,
        gap_days=0,
        holder_name="Juliette Bernard",
        holder_email=JUDGE,
        organisation="TJ Angers",
        emergency=EmergencyDetails(
            issuance_id=3,
            issued_on=dt.date(2026, 11, 26),
            issued_by="remise",
            return_due_on=dt.date(2027, 2, 24),
            request_id=9,
            new_card_handed_over_on=day,
        ),
    )
    digest = DigestContent(
        id=1, recipient=SAR, message_id="<d1@cartes.test>", day=day, items=(renewal, card)
    )
    message = mail.render_digest(digest, settings=Settings(), now=NOW)
    assert message["Subject"] == (
        "cartes : 1 support à renouveler — commande avant le 08/12/2026 ; "
        "1 carte d'urgence à récupérer"
    )
    text = " ".join(message.get_body(("plain",)).get_content().split())
    html = message.get_body(("html",)).get_content()
    assert "1 support d'accès à renouveler, puis 1 carte d'urgence à récupérer" in text
    assert "copie adressée à votre service" in text  # about the renewal alert
    assert "1. Carte agent n° NEW-10 — à commander maintenant" in text
    assert "Date limite de commande : avant le 08/12/2026" in text
    assert "2. Carte d'urgence n° ANC-1 (carte agent ancien modèle) — à récupérer" in text
    assert "Nouvelle carte : remise le 06/12/2026" in text
    assert "Retour prévu : le 24/02/2027 (dans 80 jours)" in text
    assert "Remise en urgence</td><td>le 26/11/2026 par remise" in html
