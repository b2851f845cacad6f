"""Requests (``cartes demande``): the path request → receipt → handover, what the renewal
plan and the measured lead times see of it, roles, bad input, and the listing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
import sqlalchemy as sa

from inventaire import (
    alerts,
    credentials,
    db,
    dbapi,
    journal,
    lifecycle,
    operators,
    organisations,
    requests,
)
from inventaire.clock import paris_today
from inventaire.enums import AlertLevel
from inventaire.errors import InventaireError
from inventaire.models import (
    Alert,
    CardModel,
    Credential,
    CredentialKind,
    CredentialState,
    Holder,
    HolderRole,
    JournalEntry,
    OperatorRole,
)
from inventaire.plan import MeasuredLead, measured_lead_times
from tests.conftest import get_operator
from tests.factories import add_credential, journal_count

S = CredentialState
K = CredentialKind
TODAY = dt.date(2026, 11, 26)  # the test clock's day in Paris


def day(offset: int) -> dt.date:
    return TODAY + dt.timedelta(days=offset)


def email_of(engine, credential_id: int) -> str:
    with db.read_session(engine) as session:
        credential = session.get(Credential, credential_id)
        assert credential is not None
        holder = session.get(Holder, credential.holder_id)
        assert holder is not None
        return holder.email


def credential(engine, credential_id: int) -> Credential:
    with db.read_session(engine) as session:
        found = session.get(Credential, credential_id)
        assert found is not None
        session.expunge(found)
        return found


def inventory(engine) -> tuple[list[dict], int]:
    """Every credential as the journal sees it (with its version), and the journal
    length: what a refused command must leave as it was."""
    with db.read_session(engine) as session:
        rows = session.execute(sa.select(Credential).order_by(Credential.id)).scalars()  # type: ignore[arg-type]
        snapshots = [
            {**lifecycle.snapshot(row), "id": row.id, "version": row.version} for row in rows
        ]
    return snapshots, journal_count(engine)


def entries(engine, credential_id: int) -> list[JournalEntry]:
    with db.read_session(engine) as session:
        return journal.entries(
            session,
            journal.JournalFilter(entity_type="credential", entity_id=credential_id),
            limit=None,
            newest_first=False,
        )


def plan_line(cli, credential_id: int) -> dict | None:
    result = cli("plan", "--format", "json", operator=None)
    assert result.code == 0, result.err
    lines = [line for line in json.loads(result.out) if line["support"] == credential_id]
    return lines[0] if lines else None


def request_id(result) -> int:
    assert result.code == 0, result.err
    # "Demande n°12 enregistrée : …"
    return int(result.out.split("n°", 1)[1].split(" ", 1)[0])


def listed(cli, *args: str) -> dict[int, dict]:
    result = cli("demande", "liste", "--format", "json", *args, operator="lecture")
    assert result.code == 0, result.err
    return {line["id"]: line for line in json.loads(result.out)}


def measured(engine, today: dt.date) -> dict:
    url = engine.url.render_as_string(hide_password=False)
    with dbapi.connect(url) as connection:
        return measured_lead_times(connection, today=today)


@pytest.fixture
def old_key(engine, clock) -> int:
    """A lawyer's RPVA key expiring in 30 days: in the plan, to order at once."""
    return add_credential(engine, clock.now(), expires_on=day(30))


# -- The whole path ------------------------------------------------------------------------


def run(cli, command: str, *extra: str, operator: str = "admin"):
    """``cartes`` with the words of ``command`` (no quoting needed) and ``extra`` ones."""
    return cli(*command.split(), *extra, operator=operator)


def renew(cli, engine, old_id: int, kind: str = "cle_rpva") -> int:
    """A request renewing ``old_id`` made by a manager; returns its id."""
    command = f"demande creer --titulaire {email_of(engine, old_id)} --type {kind}"
    return request_id(run(cli, command, "--remplace", str(old_id), operator="gestion"))


def test_request_receipt_handover_and_old_key_returned(cli, engine, clock, old_key):
    email = email_of(engine, old_key)
    assert plan_line(cli, old_key)["remplacement"] == "aucun"

    created = run(
        cli,
        f"demande creer --titulaire {email.upper()} --type cle_rpva --remplace {old_key}",
        "--motif",
        "renouvellement avant expiration",
        operator="gestion",
    )
    new = request_id(created)
    assert "clé RPVA" in created.out and f"remplacement du support n°{old_key}" in created.out
    request = credential(engine, new)
    assert (request.state, request.kind, request.model) == (S.REQUESTED, K.RPVA_KEY, None)
    assert (request.replaces_id, request.requested_on, request.serial) == (old_key, TODAY, None)
    assert plan_line(cli, old_key)["remplacement"] == "demande"

    clock.advance(days=20)
    received = run(cli, f"demande recevoir {new} --numero-serie", " rpva-778 ", operator="gestion")
    assert received.code == 0, received.err
    assert received.out == (
        f"Demande n°{new} : demandée → reçue le {day(20):%d/%m/%Y}, n° de série RPVA-778.\n"
    )
    request = credential(engine, new)
    assert (request.state, request.serial, request.received_on) == (S.RECEIVED, "RPVA-778", day(20))
    assert plan_line(cli, old_key)["remplacement"] == "recu"
    # The receipt makes the lead time measurable: 20 days, one case.
    assert measured(engine, day(20)) == {K.RPVA_KEY: MeasuredLead(median_days=20.0, cases=1)}

    clock.advance(days=3)
    handed = run(cli, f"demande remettre {new} --ancien-restitue", operator="remise")
    assert handed.code == 0, handed.err
    assert f"support remplacé n°{old_key} : active → restituée" in handed.out
    request = credential(engine, new)
    assert (request.state, request.handed_over_on) == (S.ACTIVE, day(23))
    assert credential(engine, old_key).state is S.RETURNED
    assert plan_line(cli, old_key) is None

    # One journal entry per step, each with the state before and after.
    steps = [(e.action, e.operator, e.reason) for e in entries(engine, new)]
    assert steps == [
        ("demande.creation", "gestion", "renouvellement avant expiration"),
        ("demande.reception", "gestion", None),
        ("demande.remise", "remise", None),
    ]
    states = [
        (json.loads(e.before)["state"] if e.before else None, json.loads(e.after)["state"])
        for e in entries(engine, new)
    ]
    assert states == [(None, "REQUESTED"), ("REQUESTED", "RECEIVED"), ("RECEIVED", "ACTIVE")]
    returned = entries(engine, old_key)[-1]
    assert (returned.action, returned.operator) == ("support.transition", "remise")
    assert json.loads(returned.before)["state"] == "ACTIVE"
    assert json.loads(returned.after)["state"] == "RETURNED"
    assert f"demande n°{new}" in (returned.reason or "")
    with db.read_session(engine) as session:
        assert journal.verify(session).intact

    (line,) = listed(cli).values()
    assert line == {
        "id": new,
        "type": "cle_rpva",
        "modele": None,
        "etat": "active",
        "titulaire": line["titulaire"],
        "email": email,
        "organisation": "Barreau d'Angers",
        "numero_serie": "RPVA-778",
        "remplace": old_key,
        "demandee_le": TODAY.isoformat(),
        "recue_le": day(20).isoformat(),
        "remise_le": day(23).isoformat(),
        "age_jours": None,
        "delai_jours": 20,
    }
    assert line["titulaire"].startswith("Claire Martin")


def due_alerts(engine, credential_id: int, now: dt.datetime) -> list[AlertLevel]:
    """The alert levels the daily planner would write today for ``credential_id``."""
    leads = {K.RPVA_KEY: 45, K.AGENT_CARD: 60, K.EXPERT_CARD: 30, K.TEMPORARY_CARD: 15}
    policy = alerts.AlertPolicy(lead_days=leads, margin_days=15)
    with db.dry_run_session(engine) as session:
        alerts.plan_alerts(
            session, policy=policy, now=now, today=paris_today(now), message_domain="test"
        )
        query = sa.select(Alert.level).where(Alert.credential_id == credential_id)
        return list(session.execute(query).scalars())


def test_a_request_stops_the_reminders_to_order(cli, engine, clock, old_key):
    # 30 days left for a key that takes 45 to renew: a gap is certain, and said so...
    assert due_alerts(engine, old_key, clock.now()) == [AlertLevel.GAP]
    new = renew(cli, engine, old_key)
    # ...until it is ordered; a cancelled request brings the reminder back.
    assert due_alerts(engine, old_key, clock.now()) == []
    assert run(cli, f"demande annuler {new} --motif erreur").code == 0
    assert due_alerts(engine, old_key, clock.now()) == [AlertLevel.GAP]


def test_handover_without_the_old_key_renews_it(cli, engine, clock, old_key):
    new = renew(cli, engine, old_key)
    assert run(cli, f"demande recevoir {new} --numero-serie K-1").code == 0
    handed = run(cli, f"demande remettre {new}", operator="remise")
    assert handed.code == 0, handed.err
    assert "quitte le plan de renouvellement" in handed.out
    # Renewed: out of the plan, but still in service until it is handed back.
    assert credential(engine, old_key).state is S.ACTIVE
    assert plan_line(cli, old_key) is None


def test_agent_card_request_is_of_the_new_model_by_default(cli, engine, clock):
    old_card = add_credential(
        engine, clock.now(), kind=K.AGENT_CARD, organisation="TJ Angers", expires_on=day(50)
    )
    email = email_of(engine, old_card)
    command = f"demande creer --titulaire {email} --type carte_agent --remplace {old_card}"
    created = run(cli, command, operator="gestion")
    assert "carte agent nouveau modèle" in created.out
    assert credential(engine, request_id(created)).model is CardModel.NEW


def test_dates_given_explicitly(cli, engine, clock, old_key):
    new = renew(cli, engine, old_key)
    clock.advance(days=10)
    received_on = day(4).strftime("%d/%m/%Y")
    assert run(cli, f"demande recevoir {new} --numero-serie K-2 --date {received_on}").code == 0
    handed = run(cli, f"demande remettre {new} --date {day(6).isoformat()}", operator="remise")
    assert handed.code == 0, handed.err
    request = credential(engine, new)
    assert (request.received_on, request.handed_over_on) == (day(4), day(6))


def test_cancel(cli, engine, clock, old_key):
    new = renew(cli, engine, old_key)
    assert run(cli, f"demande recevoir {new} --numero-serie K-3").code == 0
    cancelled = run(cli, f"demande annuler {new} --motif", "clé défectueuse à la livraison")
    assert cancelled.code == 0, cancelled.err
    assert cancelled.out == f"Demande n°{new} : reçue → annulée.\n"
    assert credential(engine, new).state is S.CANCELLED
    last = entries(engine, new)[-1]
    assert (last.action, last.reason) == ("demande.annulation", "clé défectueuse à la livraison")
    # The old key is back to "nothing ordered", and a new request may replace it.
    assert plan_line(cli, old_key)["remplacement"] == "aucun"
    renew(cli, engine, old_key)
    assert plan_line(cli, old_key)["remplacement"] == "demande"


# -- Roles ---------------------------------------------------------------------------------


def refused(cli, engine, command: str, *extra: str, operator: str, says: str) -> None:
    """Runs a command that must be refused: exit 1, a French message, nothing written
    (no credential changed, no journal entry)."""
    before = inventory(engine)
    result = run(cli, command, *extra, operator=operator)
    assert result.code == 1, result.out
    assert says in result.err, result.err
    assert result.out == ""
    assert inventory(engine) == before


def test_every_step_needs_its_role(cli, engine, clock, old_key):
    email = email_of(engine, old_key)
    create = f"demande creer --titulaire {email} --type cle_rpva --remplace {old_key}"
    refused(cli, engine, create, operator="lecture", says="rôle requis : gestionnaire")
    refused(cli, engine, create, operator="inconnu", says="Opérateur inconnu")
    new = request_id(run(cli, create, operator="gestion"))

    receive = f"demande recevoir {new} --numero-serie K-4"
    refused(cli, engine, receive, operator="lecture", says="rôle requis : gestionnaire")
    assert run(cli, receive, operator="gestion").code == 0

    hand_over = f"demande remettre {new} --ancien-restitue"
    for login in ("gestion", "admin", "lecture"):
        refused(cli, engine, hand_over, operator=login, says="rôle requis : habilité")
    # Habilitated to hand over, but handing the old key back is a manager's change.
    assert run(cli, "operateur ajouter guichet --role habilite").code == 0
    refused(cli, engine, hand_over, operator="guichet", says="rôle requis : gestionnaire")
    assert credential(engine, new).state is S.RECEIVED

    cancel = f"demande annuler {new} --motif erreur"
    refused(cli, engine, cancel, operator="lecture", says="rôle requis : gestionnaire")
    refused(cli, engine, cancel, operator="guichet", says="rôle requis : gestionnaire")

    assert run(cli, "demande liste", operator="inconnu").code == 1
    assert run(cli, "demande liste", operator="lecture").code == 0
    # Without the old key, the habilitation alone is enough.
    handed = run(cli, f"demande remettre {new}", operator="guichet")
    assert handed.code == 0, handed.err
    assert credential(engine, new).state is S.ACTIVE


# -- Bad input -----------------------------------------------------------------------------


@pytest.fixture
def pending(cli, engine, old_key) -> int:
    """A request renewing ``old_key``, not received yet."""
    return renew(cli, engine, old_key)


def test_bad_requests(cli, engine, clock, old_key, pending):
    email = email_of(engine, old_key)
    other_key = add_credential(engine, clock.now())
    lost_key = add_credential(engine, clock.now(), state=S.LOST)
    expert_card = add_credential(engine, clock.now(), kind=K.EXPERT_CARD)
    rpva = "demande creer --type cle_rpva --titulaire"

    def no(command: str, says: str) -> None:
        refused(cli, engine, command, operator="gestion", says=says)

    no(f"{rpva} personne@example.fr", "Aucun titulaire n'a l'adresse « personne@example.fr »")
    no(f"{rpva} {email}", f"a déjà un support de ce type en service (n°{old_key})")
    no(
        f"{rpva} {email} --remplace {old_key}",
        f"déjà un remplaçant en cours : la demande n°{pending} (« demandée »)",
    )
    no(f"{rpva} {email} --remplace {other_key}", "appartient à un autre titulaire")
    no(f"{rpva} {email} --remplace 99999", "Aucun support n°99999")
    no(
        f"{rpva} {email_of(engine, lost_key)} --remplace {lost_key}",
        "est « perdue » : seul un support en service",
    )
    no(
        f"demande creer --type carte_agent --titulaire {email_of(engine, expert_card)} "
        f"--remplace {expert_card}",
        "n'est pas du type demandé",
    )
    no(f"{rpva} {email} --modele nouveau", "le modèle ne s'indique que pour une carte agent")
    no(f"demande creer --type badge --titulaire {email}", "Valeur « badge » inconnue pour type")


def test_a_holder_without_a_card_gets_one_request_at_a_time(cli, engine, clock):
    expert_card = add_credential(engine, clock.now(), kind=K.EXPERT_CARD)
    command = f"demande creer --titulaire {email_of(engine, expert_card)} --type cle_rpva"
    first = request_id(run(cli, command, operator="gestion"))
    refused(
        cli,
        engine,
        command,
        operator="gestion",
        says=f"a déjà une demande en cours pour ce type de support : n°{first}",
    )


def test_bad_receipts(cli, engine, clock, old_key, pending):
    used = credential(engine, old_key).serial
    assert used is not None
    receive = f"demande recevoir {pending} --numero-serie"

    def no(command: str, says: str, *extra: str) -> None:
        refused(cli, engine, command, *extra, operator="gestion", says=says)

    no(f"{receive} {used.lower()}", f"« {used} » est déjà celui du support n°{old_key}")
    no(receive, "numéro de série invalide", "K 5 ?")
    no(f"{receive} K-5 --date {day(1)}", f"le {day(1)} est postérieur à aujourd'hui")
    no(f"{receive} K-5 --date {day(-1)}", "précède la demande")
    no("demande recevoir 99999 --numero-serie K-5", "Aucune demande n°99999.")
    no(f"demande recevoir {old_key} --numero-serie K-5", "n'a pas fait l'objet d'une demande")
    refused(
        cli,
        engine,
        f"demande remettre {pending}",
        operator="remise",
        says="est « demandée » : seule une demande « reçue »",
    )

    # The serial of a credential of another kind is free for this one.
    expert_card = add_credential(engine, clock.now(), kind=K.EXPERT_CARD)
    expert_serial = credential(engine, expert_card).serial
    assert expert_serial is not None
    assert run(cli, f"{receive} {expert_serial}", operator="gestion").code == 0
    no(f"{receive} K-6", "est « reçue » : seule une demande « demandée » peut être reçue")


def test_bad_handovers_and_cancellations(cli, engine, clock, old_key, pending):
    clock.advance(days=5)
    assert run(cli, f"demande recevoir {pending} --numero-serie K-7").code == 0
    hand_over = f"demande remettre {pending}"

    def no(command: str, says: str, *extra: str, operator: str = "remise") -> None:
        refused(cli, engine, command, *extra, operator=operator, says=says)

    no(f"{hand_over} --date {day(4)}", "précède la réception au SAR")
    no(f"{hand_over} --date {day(6)}", "postérieur à aujourd'hui")
    no(f"demande annuler {pending} --motif", "Le motif est obligatoire.", "  ")
    no("demande annuler 99999 --motif erreur", "Aucune demande n°99999.")

    # A suspended old key cannot be returned (the lifecycle forbids it): nothing is done.
    assert run(cli, f"transition {old_key} suspendue --motif oubliée").code == 0
    no(f"{hand_over} --ancien-restitue", "« suspendue » ne peut pas devenir « restituée »")

    assert run(cli, hand_over, operator="remise").code == 0
    no(hand_over, "est « active » : seule une demande « reçue »")
    no(
        f"demande annuler {pending} --motif erreur",
        "est « active » : seule une demande « demandée » ou « reçue » peut être annulée",
        operator="gestion",
    )


def add_key(engine, clock, holder_of: int, **kwargs) -> int:
    """A credential registered directly for the holder of credential ``holder_of``."""
    with db.write_session(engine) as session:
        created = credentials.create_credential(
            session,
            holder_id=credential(engine, holder_of).holder_id,
            operator=get_operator(engine, "admin"),
            now=clock.now(),
            **kwargs,
        )
        assert created.id is not None
        return created.id


def test_no_second_card_in_service_at_handover(cli, engine, clock):
    # A holder without a key orders one; meanwhile a key is registered for them.
    expert_card = add_credential(engine, clock.now(), kind=K.EXPERT_CARD)
    command = f"demande creer --titulaire {email_of(engine, expert_card)} --type cle_rpva"
    new = request_id(run(cli, command, operator="gestion"))
    assert run(cli, f"demande recevoir {new} --numero-serie K-8").code == 0
    other = add_key(engine, clock, expert_card, kind=K.RPVA_KEY, state=S.ACTIVE, serial="K-9")
    refused(
        cli,
        engine,
        f"demande remettre {new}",
        operator="remise",
        says=f"déjà un autre support de ce type en service (n°{other})",
    )


def test_emergency_cards_are_not_a_second_card(cli, engine, clock):
    # An old-model card lent in emergency bridges the request: it does not block it.
    expert_card = add_credential(engine, clock.now(), kind=K.EXPERT_CARD, organisation="TJ Angers")
    lent = add_key(
        engine, clock, expert_card, kind=K.AGENT_CARD, model=CardModel.OLD, state=S.ACTIVE
    )
    command = f"demande creer --titulaire {email_of(engine, expert_card)} --type carte_agent"
    # Not flagged, the same card is the holder's own: a renewal must name it.
    refused(cli, engine, command, operator="gestion", says=f"en service (n°{lent})")
    with db.write_session(engine) as session:
        card = session.get(Credential, lent)
        assert card is not None
        card.emergency = True
        session.add(card)
    new = request_id(run(cli, command, operator="gestion"))
    assert run(cli, f"demande recevoir {new} --numero-serie N-1").code == 0
    assert run(cli, f"demande remettre {new}", operator="remise").code == 0


def test_refused_services_leave_the_session_untouched(engine, clock, old_key):
    """Inside a caller's transaction that goes on after a refusal, nothing was changed."""
    gestion, remise = get_operator(engine, "gestion"), get_operator(engine, "remise")
    lecture = get_operator(engine, "lecture")
    with db.write_session(engine) as session:
        issuer_only = operators.add(
            session, login="guichet", roles=[OperatorRole.ISSUER], by="admin", now=clock.now()
        )
        session.expunge(issuer_only)
        request = requests.create_request(
            session,
            holder_email=email_of(engine, old_key),
            kind=K.RPVA_KEY,
            replaces_id=old_key,
            operator=gestion,
            now=clock.now(),
        )
        assert request.id is not None
        new_id = request.id
        requests.receive(
            session, request_id=new_id, serial="K-10", operator=gestion, now=clock.now()
        )
    now = clock.now()

    def hand_over(operator, **kwargs):
        return lambda s: requests.hand_over(
            s, request_id=new_id, operator=operator, now=now, **kwargs
        )

    def attempt_each(*attempts):
        before = inventory(engine)
        for attempt in attempts:
            with db.write_session(engine) as session:
                with pytest.raises(InventaireError):
                    attempt(session)
                assert not session.dirty and not session.new
            assert inventory(engine) == before

    attempt_each(
        hand_over(issuer_only, old_returned=True),  # returning the old key needs MANAGER
        hand_over(remise, on=day(-1)),
        hand_over(gestion),
        lambda s: requests.receive(s, request_id=new_id, serial="K-11", operator=gestion, now=now),
        lambda s: requests.cancel(s, request_id=new_id, reason="erreur", operator=lecture, now=now),
    )
    with db.write_session(engine) as session:
        lifecycle.transition(
            session,
            credential_id=old_key,
            target=S.SUSPENDED,
            operator=gestion,
            reason="oubliée",
            now=now,
        )
    attempt_each(hand_over(remise, old_returned=True))  # a suspended key cannot be returned


# -- Listing -------------------------------------------------------------------------------


def test_listing_ages_and_lead_times(cli, engine, clock, old_key):
    expert_card = add_credential(engine, clock.now(), kind=K.EXPERT_CARD)
    create = f"demande creer --type cle_rpva --titulaire {email_of(engine, expert_card)}"
    first = renew(cli, engine, old_key)
    clock.advance(days=2)
    dropped = request_id(run(cli, create, operator="gestion"))
    assert run(cli, f"demande annuler {dropped} --motif doublon").code == 0
    clock.advance(days=10)
    second = request_id(run(cli, create, operator="gestion"))
    clock.advance(days=3)
    assert run(cli, f"demande recevoir {first} --numero-serie K-12").code == 0
    clock.advance(days=10)  # today: day 25

    lines = listed(cli)
    assert list(lines) == [first, dropped, second]  # the oldest request first
    fields = ("etat", "demandee_le", "recue_le", "age_jours", "delai_jours")
    summary = {number: tuple(line[f] for f in fields) for number, line in lines.items()}
    assert summary == {
        first: ("recue", TODAY.isoformat(), day(15).isoformat(), 25, 15),
        dropped: ("annulee", day(2).isoformat(), None, None, None),
        second: ("demandee", day(12).isoformat(), None, 13, 13),
    }
    assert list(listed(cli, "--en-attente")) == [first, second]

    clock.advance(days=1)
    assert listed(cli)[second]["delai_jours"] == 14  # still awaited: it grows
    assert listed(cli)[first]["delai_jours"] == 15  # received: it is measured

    result = run(cli, "demande liste --format csv", operator="lecture")
    rows = list(csv.reader(io.StringIO(result.out), delimiter=";"))
    assert rows[0] == [
        "id",
        "type",
        "modele",
        "etat",
        "titulaire",
        "email",
        "organisation",
        "numero_serie",
        "remplace",
        "demandee_le",
        "recue_le",
        "remise_le",
        "age_jours",
        "delai_jours",
    ]
    assert [row[0] for row in rows[1:]] == [str(first), str(dropped), str(second)]
    assert (rows[1][3], rows[1][7], rows[1][12]) == ("recue", "K-12", "26")

    table = run(cli, "demande liste --en-attente", operator="lecture")
    assert table.code == 0, table.err
    assert "demandée le" in table.out and "délai (j)" in table.out
    assert "reçue" in table.out and "annulée" not in table.out
    assert "2 demandes ; en attente : 2 (demandées : 1, reçues à remettre : 1)." in table.out


def test_empty_listing(cli):
    result = run(cli, "demande liste --en-attente", operator="lecture")
    assert (result.code, result.out) == (0, "Aucune demande en attente.\n")
    assert json.loads(run(cli, "demande liste --format json").out) == []


def test_lead_times_of_several_requests_are_measured(engine, clock):
    """Requests received after 10, 30 and 40 days: a median of 30 days over 3 cases (the
    fourth, still awaited, does not count)."""
    gestion = get_operator(engine, "gestion")
    ids = []
    for _ in range(4):
        key = add_credential(engine, clock.now(), expires_on=day(100))
        with db.write_session(engine) as session:
            created = requests.create_request(
                session,
                holder_email=email_of(engine, key),
                kind=K.RPVA_KEY,
                replaces_id=key,
                operator=gestion,
                now=clock.now(),
            )
            assert created.id is not None
            ids.append(created.id)
    clock.advance(days=40)
    for number, (request, waited) in enumerate(zip(ids, (10, 30, 40), strict=False)):
        with db.write_session(engine) as session:
            requests.receive(
                session,
                request_id=request,
                serial=f"M-{number}",
                on=day(waited),
                operator=gestion,
                now=clock.now(),
            )
    assert measured(engine, day(40)) == {K.RPVA_KEY: MeasuredLead(median_days=30.0, cases=3)}


def test_holder_found_by_any_spelling_of_the_address(engine, clock):
    """The address is matched as the holder's natural key (trimmed, lower-case); an
    old-model agent card can still be asked for explicitly."""
    admin = get_operator(engine, "admin")
    with db.write_session(engine) as session:
        laval = organisations.find(session, "TJ Laval")
        assert laval is not None and laval.id is not None
        holder = credentials.create_holder(
            session,
            last_name="Durand",
            first_name="Léa",
            email="lea.durand@justice.fr",
            role=HolderRole.CLERK,
            organisation_id=laval.id,
            operator=admin,
            now=clock.now(),
        )
        request = requests.create_request(
            session,
            holder_email=" Lea.Durand@Justice.fr ",
            kind=K.AGENT_CARD,
            model=CardModel.OLD,
            operator=admin,
            now=clock.now(),
        )
        assert (request.holder_id, request.model) == (holder.id, CardModel.OLD)


def test_a_pending_request_recorded_by_an_import_is_a_request(cli, engine, clock):
    """An import records pending requests without their day: they are listed (age
    unknown) and go through the same steps."""
    imported = add_credential(engine, clock.now(), state=CredentialState.REQUESTED)
    with db.write_session(engine) as session:
        session.get(Credential, imported).requested_on = None
    line = listed(cli, "--en-attente")[imported]
    assert (line["etat"], line["demandee_le"], line["age_jours"], line["delai_jours"]) == (
        "demandee",
        None,
        None,
        None,
    )
    result = cli("demande", "recevoir", str(imported), "--numero-serie", "imp-1",
                 operator="gestion")  # fmt: skip
    assert result.code == 0, result.err
    assert credential(engine, imported).state is CredentialState.RECEIVED
    assert credential(engine, imported).serial == "IMP-1"
