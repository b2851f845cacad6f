"""The dashboard's figures (``inventaire.dashboard``) equal what a brute-force count over
every row says, and the tally kept by triggers equals a GROUP BY after any change."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import sqlalchemy as sa

from inventaire import dashboard, db, emergency, lifecycle, operators, runs
from inventaire.browse import Renewal
from inventaire.models import (
    Credential,
    CredentialKind,
    CredentialState,
    EmergencyIssuance,
    Holder,
)
from tests.inventory_support import TODAY, generated, import_rows, read

K, S = CredentialKind, CredentialState
RENEWAL = Renewal(
    lead_days={K.RPVA_KEY: 45, K.AGENT_CARD: 60, K.EXPERT_CARD: 30, K.TEMPORARY_CARD: 15},
    margin_days=15,
)
IN_SERVICE = {S.ACTIVE, S.SUSPENDED}


def tally(engine) -> tuple[dict, dict]:
    """The tally's non-zero rows, and a GROUP BY over the credentials."""
    with engine.connect() as connection:
        kept = {
            (kind, state): total
            for kind, state, total in connection.execute(
                sa.text("SELECT kind, state, total FROM credential_tally WHERE total <> 0")
            )
        }
        counted = {
            (kind, state): total
            for kind, state, total in connection.execute(
                sa.text("SELECT kind, state, count(*) FROM credential GROUP BY kind, state")
            )
        }
    return kept, counted


def shuffle_states(engine, clock, rng: random.Random, moves: int) -> None:
    """Random allowed transitions, through the lifecycle (ORM updates)."""
    with db.write_session(engine) as session:
        admin = operators.find(session, "remise")
        assert admin is not None
        candidates = session.execute(sa.select(Credential.id, Credential.state)).all()
        for credential_id, state in rng.sample(candidates, moves):
            targets = sorted(lifecycle.TRANSITIONS[S(state)])
            if targets:
                lifecycle.transition(
                    session,
                    credential_id=credential_id,
                    target=rng.choice(targets),
                    operator=admin,
                    reason="test",
                    now=clock.now(),
                )


def test_tally_equals_group_by_after_imports_transitions_and_deletions(engine, clock):
    rng = random.Random(5)
    generated(engine, 80, clock.now(), seed=1)
    assert tally(engine)[0] == tally(engine)[1]
    shuffle_states(engine, clock, rng, 40)
    kept, counted = tally(engine)
    assert kept == counted
    # Re-importing rows with other states: transitions written by the import's bulk path.
    row = {
        "nom": "Roux",
        "prenom": "Paul",
        "email": "paul.roux@avocat-angers.test",
        "role": "avocat",
        "organisation": "Barreau d'Angers",
        "type": "cle_rpva",
        "numero_serie": "RPVA-42",
        "etat": "recue",
    }
    import_rows(engine, [row], clock.now())
    import_rows(engine, [row | {"etat": "active", "date_expiration": "2027-01-01"}], clock.now())
    with db.write_session(engine) as session:
        session.execute(sa.text("DELETE FROM credential WHERE serial = 'RPVA-42'"))
        victims = session.execute(
            sa.select(Credential.id).where(Credential.state == S.CANCELLED.value).limit(3)
        ).scalars()
        for victim in list(victims):
            session.execute(sa.delete(Credential).where(Credential.id == victim))
    kept, counted = tally(engine)
    assert kept == counted and sum(kept.values()) > 0


def test_figures_equal_a_brute_force_count(engine, clock):
    rng = random.Random(9)
    now = clock.now()
    generated(engine, 250, now, seed=2)
    shuffle_states(engine, clock, rng, 30)
    # Emergency cards: one out and overdue, one out in time, one given back.
    with db.write_session(engine) as session:
        issuer = operators.find(session, "remise")
        assert issuer is not None
        emails = session.execute(sa.select(Holder.email).order_by(Holder.id).limit(3)).scalars()
        for number, email in enumerate(list(emails)):
            emergency.issue(
                session,
                holder_email=email,
                serial=f"OLD-{number}",
                reason="carte en retard",
                without_request=True,
                return_due_on=TODAY + dt.timedelta(days=(-5, 20, 3)[number]),
                return_after_days=30,
                operator=issuer,
                now=now - dt.timedelta(days=10),
            )
        session.execute(
            sa.update(EmergencyIssuance).where(EmergencyIssuance.id == 3).values(returned_on=TODAY)
        )
    # The outbox: digests sent, failed (recently and long ago) and waiting.
    with engine.begin() as connection:
        for state, sent_days_ago, claimed_days_ago in [
            ("SENT", 1, 1),
            ("SENT", 6, 6),
            ("SENT", 9, 9),
            ("FAILED", None, 2),
            ("FAILED", None, 30),
            ("PENDING", None, None),
            ("SENDING", None, 0),
        ]:
            connection.execute(
                sa.text(
                    "INSERT INTO digest (recipient, state, attempts, next_attempt_at, "
                    "claimed_at, created_at, sent_at) VALUES ('x@y.test', :state, 1, :now, "
                    ":claimed, :created, :sent)"
                ).bindparams(
                    sa.bindparam("now", type_=sa.DateTime(timezone=True)),
                    sa.bindparam("claimed", type_=sa.DateTime(timezone=True)),
                    sa.bindparam("created", type_=sa.DateTime(timezone=True)),
                    sa.bindparam("sent", type_=sa.DateTime(timezone=True)),
                ),
                {
                    "state": state,
                    "now": now,
                    "created": now - dt.timedelta(days=40),
                    "claimed": None
                    if claimed_days_ago is None
                    else now - dt.timedelta(days=claimed_days_ago),
                    "sent": None
                    if sent_days_ago is None
                    else now - dt.timedelta(days=sent_days_ago),
                },
            )
    with db.write_session(engine) as session:
        run_id = runs.start(session, kind="cycle", started_at=now - dt.timedelta(hours=1))
        runs.finish(session, run_id=run_id, finished_at=now, ok=True, summary={"envoyes": 2})

    with read(engine) as connection:
        figures = dashboard.compute(connection, today=TODAY, now=now, renewal=RENEWAL, weeks=26)

    with db.read_session(engine) as session:
        credentials = session.execute(sa.select(Credential)).scalars().all()
        holders = session.execute(sa.select(sa.func.count()).select_from(Holder)).scalar_one()
        issuances = session.execute(sa.select(EmergencyIssuance)).scalars().all()
        states = {c.id: c.state for c in credentials}
    replaced = {
        c.replaces_id
        for c in credentials
        if c.replaces_id is not None and c.state in {*IN_SERVICE, S.REQUESTED, S.RECEIVED}
    }
    weeks = [Counter() for _ in range(26)]
    expired, gaps, late = Counter(), Counter(), Counter()
    for c in credentials:
        if c.state not in IN_SERVICE or c.expires_on is None:
            continue
        left = (c.expires_on - TODAY).days
        if 0 <= left < 26 * 7:
            weeks[left // 7][c.kind] += 1
        if left < 0:
            expired[c.kind] += 1
        elif c.id not in replaced:
            lead = RENEWAL.lead_days[c.kind]
            if left < lead:
                gaps[c.kind] += 1
            elif left <= lead + RENEWAL.margin_days:
                late[c.kind] += 1
    by_kind_state = Counter((c.kind, c.state) for c in credentials)

    assert figures.by_kind_state == dict(by_kind_state)
    assert figures.holders == holders
    assert figures.week_starts[0] == TODAY and figures.week_starts[1] == TODAY + dt.timedelta(7)
    assert figures.expiring_per_week == tuple(sum(week.values()) for week in weeks)
    assert figures.expiring_per_week_by_kind == {
        kind: tuple(week[kind] for week in weeks) for kind in K
    }
    assert figures.expired_in_service == {kind: expired[kind] for kind in K}
    assert figures.predicted_gaps == {kind: gaps[kind] for kind in K}
    assert figures.order_late == {kind: late[kind] for kind in K}
    assert sum(figures.predicted_gaps.values()) > 0 and sum(figures.order_late.values()) > 0
    assert figures.requests_pending == {
        S.REQUESTED: sum(n for (_, s), n in by_kind_state.items() if s is S.REQUESTED),
        S.RECEIVED: sum(n for (_, s), n in by_kind_state.items() if s is S.RECEIVED),
    }
    out = [i for i in issuances if i.returned_on is None and states[i.credential_id] in IN_SERVICE]
    assert figures.emergency_outstanding == len(out) == 2
    assert figures.emergency_overdue == sum(i.return_due_on < TODAY for i in out) == 1
    assert (figures.alerts_sent_7d, figures.alerts_failed_7d, figures.alerts_waiting) == (2, 1, 2)
    assert figures.last_run is not None
    assert figures.last_run.kind == "cycle" and figures.last_run.ok is True
    assert figures.last_run.started_at == now - dt.timedelta(hours=1)
    assert figures.last_run.finished_at == now
    assert '"envoyes": 2' in (figures.last_run.summary or "")


def test_a_run_in_progress_and_an_empty_inventory(engine, clock):
    with db.write_session(engine) as session:
        runs.start(session, kind="envoi", started_at=clock.now())
    with read(engine) as connection:
        figures = dashboard.compute(
            connection, today=TODAY, now=clock.now(), renewal=RENEWAL, weeks=4
        )
    assert figures.by_kind_state == {} and figures.expiring_per_week == (0, 0, 0, 0)
    assert figures.last_run is not None and figures.last_run.ok is None
    assert figures.last_run.finished_at is None
