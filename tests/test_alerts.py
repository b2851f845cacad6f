"""Renewal alerts: which are due, the outbox they are written to, muting, the commands
that read it. The SQL planner is checked against the rule written in Python."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
import sqlalchemy as sa

from inventaire import alerts, credentials, db, lifecycle, operators, organisations
from inventaire.enums import AlertLevel, CardModel, CredentialKind, CredentialState, HolderRole
from inventaire.errors import Conflict
from inventaire.models import Alert, Credential, Digest, Holder
from tests.conftest import NOW
from tests.factories import add_credential, journal_count, last_entry

K = CredentialKind
L = AlertLevel
TODAY = NOW.date()
POLICY = alerts.AlertPolicy(
    lead_days={K.RPVA_KEY: 45, K.AGENT_CARD: 60, K.EXPERT_CARD: 30, K.TEMPORARY_CARD: 15},
    margin_days=15,
    copies={K.AGENT_CARD: ("sar@justice.test",), K.RPVA_KEY: ("ordre@avocats.test",)},
)


def plan(engine, day: dt.date = TODAY, policy: alerts.AlertPolicy = POLICY) -> alerts.Planned:
    now = dt.datetime.combine(day, dt.time(6, 30), tzinfo=dt.UTC)
    with db.write_session(engine) as session:
        return alerts.plan_alerts(
            session, policy=policy, now=now, today=day, message_domain="justice.test"
        )


def outbox_rows(engine) -> set[tuple[int, str, str, int]]:
    with db.read_session(engine) as session:
        rows = session.execute(
            sa.select(Alert.credential_id, Alert.level, Alert.recipient, Alert.occurrence)
        ).all()
    return {(c, AlertLevel(level).value, r, o) for c, level, r, o in rows}


def email_of(engine, credential_id: int) -> str:
    with db.read_session(engine) as session:
        credential = session.get(Credential, credential_id)
        holder = session.get(Holder, credential.holder_id)
        return holder.email


def test_due_level_rule():
    rpva = K.RPVA_KEY  # lead 45, margin 15: order-by = expiry - 60

    def level(days_left, ordered=False):
        return alerts.due_level(
            POLICY, rpva, TODAY + dt.timedelta(days=days_left), today=TODAY, ordered=ordered
        )

    assert level(91) is None
    assert level(90) == (L.TO_PLAN, 0)  # order-by in 30 days
    assert level(61) == (L.TO_PLAN, 0)
    assert level(60) == (L.ORDER_NOW, 0)  # order-by today
    assert level(45) == (L.ORDER_NOW, 0)  # ordered today, it arrives on the expiry day
    assert level(44) == (L.GAP, 0)
    assert level(0) == (L.GAP, 0)  # valid until the end of the day
    assert level(-1) == (L.EXPIRED, 0)
    assert level(-7) == (L.EXPIRED, 0)
    assert level(-8) == (L.EXPIRED, 1)
    assert level(-56) == (L.EXPIRED, 7)
    assert level(-57) is None  # eight weekly reminders, then silence
    assert level(50, ordered=True) is None
    assert level(-1, ordered=True) == (L.EXPIRED, 0)


def test_planning_agrees_with_the_rule_over_a_random_inventory(engine):
    """Every (credential, level, recipient, occurrence) the SQL writes over several days is
    what ``due_level`` says, for a random inventory with every case in it."""
    rng = random.Random(7)
    now = NOW
    expected_inputs = []
    with db.write_session(engine) as session:
        admin = operators.find(session, "remise")
        bar = organisations.find(session, "Barreau d'Angers")
        for number in range(160):
            kind = rng.choice(list(K))
            holder = credentials.create_holder(
                session,
                last_name=f"Nom{number}",
                first_name="Prénom",
                email=f"titulaire{number}@example.fr",
                role=HolderRole.LAWYER,
                organisation_id=bar.id,
                operator=admin,
                now=now,
            )
            holder.active = rng.random() > 0.1
            state = rng.choice(
                [CredentialState.ACTIVE] * 5
                + [CredentialState.SUSPENDED, CredentialState.LOST, CredentialState.RETURNED]
            )
            credential = credentials.create_credential(
                session,
                holder_id=holder.id,
                kind=kind,
                state=state,
                serial=f"RND-{number:04d}",
                model=CardModel.NEW if kind is K.AGENT_CARD else None,
                expires_on=TODAY + dt.timedelta(days=rng.randint(-90, 160)),
                operator=admin,
                now=now,
            )
            replacement = rng.choice([None, None, None, *CredentialState])
            if replacement is not None:
                credentials.create_credential(
                    session,
                    holder_id=holder.id,
                    kind=kind,
                    state=CredentialState.REQUESTED,
                    serial=f"REP-{number:04d}",
                    model=CardModel.NEW if kind is K.AGENT_CARD else None,
                    operator=admin,
                    now=now,
                ).replaces_id = credential.id
                # Set the replacement's state directly: the lifecycle is not what is tested.
                session.flush()
                session.execute(
                    sa.update(Credential)
                    .where(Credential.serial == f"REP-{number:04d}")
                    .values(state=replacement)
                )
            muted = rng.random() < 0.1
            if muted:
                alerts.mute(
                    session, credential_id=credential.id, operator=admin, reason="test", now=now
                )
            expected_inputs.append((credential.id, kind, credential.expires_on, state,
                                    replacement, muted, holder.email, holder.active))  # fmt: skip

    expected: set[tuple[int, str, str, int]] = set()
    for offset in (0, 1, 9, 30):
        day = TODAY + dt.timedelta(days=offset)
        plan(engine, day)
        for cid, kind, expires, state, replacement, muted, email, active in expected_inputs:
            if state not in lifecycle.IN_SERVICE or muted or replacement in lifecycle.IN_SERVICE:
                continue
            ordered = replacement in (CredentialState.REQUESTED, CredentialState.RECEIVED)
            due = alerts.due_level(POLICY, kind, expires, today=day, ordered=ordered)
            if due is None:
                continue
            recipients = [email] if active else []
            recipients += POLICY.copies.get(kind, ())
            expected |= {(cid, due[0].value, r, due[1]) for r in recipients}
        assert outbox_rows(engine) == expected, f"jour +{offset}"
    assert len(expected) > 100  # the random inventory did exercise the planner


def test_each_alert_once_and_one_digest_per_recipient(engine):
    first = add_credential(engine, NOW, expires_on=TODAY + dt.timedelta(days=10))
    holder_email = email_of(engine, first)
    # A second credential of the same holder, due too: same digest.
    with db.write_session(engine) as session:
        admin = operators.find(session, "admin")
        holder_id = session.get(Credential, first).holder_id
        second = credentials.create_credential(
            session,
            holder_id=holder_id,
            kind=K.AGENT_CARD,
            model=CardModel.NEW,
            state=CredentialState.ACTIVE,
            serial="AG-2",
            expires_on=TODAY + dt.timedelta(days=70),
            operator=admin,
            now=NOW,
        ).id
    planned = plan(engine)
    assert planned.alerts == 4  # two for the holder, one copy for the bar, one for the SAR
    assert planned.digests == 3
    assert plan(engine).alerts == 0  # planning again the same day adds nothing
    with db.read_session(engine) as session:
        digests = {d.recipient: d for d in session.execute(sa.select(Digest)).scalars()}
        holder_digest = digests[holder_email]
        lines = session.execute(
            sa.select(Alert.credential_id).where(Alert.digest_id == holder_digest.id)
        ).scalars()
        assert sorted(lines) == sorted([first, second])
        assert holder_digest.message_id.startswith("<cartes.")
        assert holder_digest.message_id.endswith("@justice.test>")
        assert len({d.message_id for d in digests.values()}) == 3
    # The unique constraint itself refuses a second copy of an alert.
    with pytest.raises(Conflict), db.write_session(engine) as session:
        session.add(
            Alert(
                credential_id=first,
                level=L.GAP,
                recipient=holder_email,
                occurrence=0,
                due_on=TODAY,
                created_at=NOW,
            )
        )


def test_new_alerts_join_the_digest_still_waiting(engine):
    credential = add_credential(engine, NOW, expires_on=TODAY + dt.timedelta(days=61))
    plan(engine)  # TO_PLAN
    plan(engine, TODAY + dt.timedelta(days=1))  # ORDER_NOW, the first mail not sent yet
    email = email_of(engine, credential)
    with db.read_session(engine) as session:
        digests = session.execute(sa.select(Digest).where(Digest.recipient == email)).all()
        assert len(digests) == 1
        levels = session.execute(
            sa.select(Alert.level).where(Alert.recipient == email).order_by(Alert.id)
        ).scalars()
        assert list(levels) == [L.TO_PLAN, L.ORDER_NOW]


def test_inactive_holder_gets_nothing_but_copies_go(engine):
    credential = add_credential(engine, NOW, expires_on=TODAY + dt.timedelta(days=5))
    with db.write_session(engine) as session:
        holder = session.get(Holder, session.get(Credential, credential).holder_id)
        holder.active = False
    plan(engine)
    assert outbox_rows(engine) == {(credential, "GAP", "ordre@avocats.test", 0)}


def test_mute_and_unmute_are_journaled(engine, cli):
    credential = add_credential(engine, NOW, expires_on=TODAY + dt.timedelta(days=5))
    before = journal_count(engine)
    result = cli("alertes", "silence", str(credential), "--motif", "départ en retraite",
                 operator="lecture")  # fmt: skip
    assert result.code == 1 and "rôle requis" in result.err
    result = cli("alertes", "silence", str(credential), "--motif", "départ en retraite",
                 operator="gestion")  # fmt: skip
    assert result.code == 0, result.err
    assert "alertes coupées" in result.out
    entry = last_entry(engine)
    assert (entry.action, entry.entity_id, entry.reason) == (
        "support.alertes_coupees",
        credential,
        "départ en retraite",
    )
    assert plan(engine).alerts == 0
    result = cli("alertes", "silence", str(credential), "--lever", operator="gestion")
    assert result.code == 0, result.err
    assert last_entry(engine).action == "support.alertes_retablies"
    assert journal_count(engine) == before + 2
    assert plan(engine).alerts == 2  # holder and the bar's copy
    result = cli("alertes", "silence", str(credential), "--lever", operator="gestion")
    assert result.code == 1 and "ne sont pas coupées" in result.err
    result = cli("alertes", "silence", "999999", "--motif", "x", operator="gestion")
    assert result.code == 1 and "Aucun support n°999999" in result.err
    result = cli("alertes", "silence", str(credential), "--motif", "  ", operator="gestion")
    assert result.code == 1 and "motif est obligatoire" in result.err


def test_alert_listing(engine, cli):
    credential = add_credential(engine, NOW, expires_on=TODAY - dt.timedelta(days=8))
    plan(engine)
    result = cli("alertes", "liste", "--format", "json", operator="lecture")
    assert result.code == 0, result.err
    objects = json.loads(result.out)
    assert {tuple(sorted(o)) for o in objects} == {
        tuple(
            sorted(
                (
                    "id",
                    "support",
                    "niveau",
                    "destinataire",
                    "etat",
                    "prevue_le",
                    "envoyee_le",
                    "tentatives",
                    "erreur",
                    "message_id",
                )
            )
        )
    }
    mine = [o for o in objects if o["destinataire"] == email_of(engine, credential)]
    assert len(mine) == 1
    assert mine[0] | {"id": None, "message_id": None} == {
        "id": None,
        "support": credential,
        "niveau": "expire",
        "destinataire": email_of(engine, credential),
        "etat": "en_attente",
        "prevue_le": TODAY.isoformat(),
        "envoyee_le": None,
        "tentatives": 0,
        "erreur": None,
        "message_id": None,
    }
    result = cli("alertes", "liste", "--etat", "envoyee", "--format", "json", operator="lecture")
    assert json.loads(result.out) == []
    result = cli("alertes", "liste", "--destinataire", "ordre@avocats.test", operator="lecture")
    assert result.code == 0 and "1 alerte." in result.out and "expiré" in result.out
    result = cli("alertes", "liste", "--etat", "perdue", operator="lecture")
    assert result.code == 1 and "en_attente, envoi, envoyee, echec" in result.err
    result = cli("alertes", "liste", operator="inconnu")
    assert result.code == 1 and "Opérateur inconnu" in result.err


def test_an_emergency_card_gets_no_renewal_alert(engine):
    credential = add_credential(
        engine, NOW, kind=K.AGENT_CARD, expires_on=TODAY + dt.timedelta(days=5)
    )
    with db.write_session(engine) as session:
        session.get(Credential, credential).emergency = True
    assert plan(engine).alerts == 0
    with db.write_session(engine) as session:
        session.get(Credential, credential).emergency = False
    assert plan(engine).alerts == 2  # the holder and the SAR's copy
