"""The renewal plan (DESIGN §4): order-by dates, gaps, replacements, measured lead times,
and ``cartes plan`` as a user reads it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import subprocess
import sys

import pytest
import sqlalchemy as sa

from inventaire import credentials, db, dbapi, lifecycle, operators, organisations
from inventaire import plan as plan_module
from inventaire.models import CardModel, Credential, CredentialKind, CredentialState, Holder
from inventaire.models import Organisation as OrganisationRow
from inventaire.plan import MeasuredLead, Replacement, measured_lead_times, plan_sql, renewal_plan
from tests.factories import add_credential

S = CredentialState
K = CredentialKind
TODAY = dt.date(2026, 11, 26)  # the test clock's day in Paris
# The default settings, which ``cartes plan`` uses in these tests.
LEADS = {K.RPVA_KEY: 45, K.AGENT_CARD: 60, K.EXPERT_CARD: 30, K.TEMPORARY_CARD: 15}
MARGIN = 15


def day(offset: int) -> dt.date:
    return TODAY + dt.timedelta(days=offset)


def url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def plan(engine, **kwargs):
    kwargs.setdefault("lead_days", LEADS)
    kwargs.setdefault("margin_days", MARGIN)
    with dbapi.connect(url(engine)) as connection:
        return renewal_plan(connection, today=TODAY, **kwargs)


def measured(engine, today=TODAY):
    with dbapi.connect(url(engine)) as connection:
        return measured_lead_times(connection, today=today)


@pytest.fixture
def add(engine, clock):
    """Adds a credential expiring in ``days`` days; returns its id."""

    def add(days, **kwargs):
        return add_credential(engine, clock.now(), expires_on=day(days), **kwargs)

    return add


def update(engine, credential_id, **values):
    with db.write_session(engine) as session:
        credential = session.get(Credential, credential_id)
        assert credential is not None
        for name, value in values.items():
            setattr(credential, name, value)
        session.add(credential)


def replace(engine, clock, old_id, state, *, requested_on=None, received_on=None):
    """A replacement of ``old_id`` for the same holder, created REQUESTED by the domain
    service, then brought to ``state``; returns its id."""
    with db.write_session(engine) as session:
        admin = operators.find(session, "admin")
        old = session.get(Credential, old_id)
        assert admin is not None and old is not None
        new = credentials.create_credential(
            session,
            holder_id=old.holder_id,
            kind=old.kind,
            state=S.REQUESTED,
            model=CardModel.NEW if old.kind is K.AGENT_CARD else None,
            operator=admin,
            now=clock.now(),
        )
        new.replaces_id = old_id
        new.state = state
        if requested_on is not None:
            new.requested_on = requested_on
        new.received_on = received_on
        session.add(new)
        session.flush()
        assert new.id is not None
        return new.id


# -- The arithmetic ------------------------------------------------------------------------


def test_order_by_and_gap_per_kind(engine, add):
    ids = {
        "rpva": add(20),
        "agent": add(100, kind=K.AGENT_CARD, organisation="TJ Angers"),
        "expert": add(10, kind=K.EXPERT_CARD),
        "temporary": add(40, kind=K.TEMPORARY_CARD),
        "expired": add(-3, state=S.SUSPENDED),
    }
    lines = {line.id: line for line in plan(engine)}
    assert set(lines) == set(ids.values())
    expected = {  # (order-by, late, gap): expiry − lead − margin; today + lead − expiry
        "rpva": (day(20 - 60), True, 25),
        "agent": (day(100 - 75), False, 0),
        "expert": (day(10 - 45), True, 20),
        "temporary": (day(40 - 30), False, 0),
        "expired": (day(-3 - 60), True, 48),
    }
    for name, (order_by, late, gap) in expected.items():
        line = lines[ids[name]]
        assert (line.order_by, line.order_late, line.gap_days) == (order_by, late, gap), name
        assert line.replacement is Replacement.NONE
    assert lines[ids["expired"]].days_left == -3
    assert lines[ids["expired"]].state is S.SUSPENDED
    assert lines[ids["rpva"]].arrival == day(45)
    # A longer lead time moves the order-by date and widens the gap.
    line = next(x for x in plan(engine, lead_days={**LEADS, K.RPVA_KEY: 90}) if x.id == ids["rpva"])
    assert (line.order_by, line.gap_days) == (day(20 - 105), 70)


def test_window_is_per_kind_and_includes_the_boundary(engine, add):
    # order-by = today + 60 exactly for each of these; one day later for the others.
    inside = {
        add(60 + 60, kind=K.RPVA_KEY),
        add(60 + 75, kind=K.AGENT_CARD, organisation="TJ Angers"),
        add(60 + 45, kind=K.EXPERT_CARD),
        add(60 + 30, kind=K.TEMPORARY_CARD),
    }
    outside = {
        add(61 + 60, kind=K.RPVA_KEY),
        add(61 + 75, kind=K.AGENT_CARD, organisation="TJ Angers"),
        add(61 + 45, kind=K.EXPERT_CARD),
        add(61 + 30, kind=K.TEMPORARY_CARD),
    }
    assert {line.id for line in plan(engine, within_days=60)} == inside
    assert {line.id for line in plan(engine, within_days=61)} == inside | outside
    assert {line.id for line in plan(engine, within_days=0)} == set()


def test_requested_and_received_replacements(engine, clock, add):
    requested_late = add(10)  # requested 30 days ago: arrives in 15 days, 5 days too late
    requested_early = add(10)  # requested 60 days ago: due already, arrives today
    received = add(-2)  # expired two days ago; the new one is here
    renewed = add(5)
    suspended_new = add(5)
    cancelled = add(5)
    unknown_day = add(30)
    replace(engine, clock, requested_late, S.REQUESTED, requested_on=day(-30))
    replace(engine, clock, requested_early, S.REQUESTED, requested_on=day(-60))
    replace(engine, clock, received, S.RECEIVED, requested_on=day(-40), received_on=day(-1))
    replace(engine, clock, renewed, S.ACTIVE, requested_on=day(-40), received_on=day(-5))
    replace(engine, clock, suspended_new, S.SUSPENDED, requested_on=day(-40), received_on=day(-5))
    replace(engine, clock, cancelled, S.CANCELLED, requested_on=day(-20))
    undated = replace(engine, clock, unknown_day, S.REQUESTED)
    update(engine, undated, requested_on=None)
    lines = {line.id: line for line in plan(engine)}
    assert renewed not in lines and suspended_new not in lines
    got = {
        i: (lines[i].replacement, lines[i].arrival, lines[i].gap_days, lines[i].requested_on)
        for i in (requested_late, requested_early, received, cancelled, unknown_day)
    }
    assert got == {
        requested_late: (Replacement.REQUESTED, day(15), 5, day(-30)),
        requested_early: (Replacement.REQUESTED, TODAY, 0, day(-60)),
        received: (Replacement.RECEIVED, TODAY, 2, None),
        cancelled: (Replacement.NONE, day(45), 40, None),
        # A request without a date counts as made today.
        unknown_day: (Replacement.REQUESTED, day(45), 15, None),
    }


def test_the_earliest_replacement_counts(engine, clock, add):
    old = add(10)
    replace(engine, clock, old, S.REQUESTED, requested_on=day(-5))
    replace(engine, clock, old, S.REQUESTED, requested_on=day(-50))  # here today
    (line,) = plan(engine)
    assert (line.replacement, line.requested_on, line.gap_days) == (
        Replacement.REQUESTED, day(-50), 0
    )  # fmt: skip
    replace(engine, clock, old, S.RECEIVED, requested_on=day(-3), received_on=TODAY)
    (line,) = plan(engine)
    assert line.replacement is Replacement.RECEIVED  # as early as the other: it is here
    new = replace(engine, clock, old, S.ACTIVE, requested_on=day(-50), received_on=day(-2))
    assert plan(engine) == []
    update(engine, new, state=S.LOST)  # the new one is lost: the old one is back
    assert [line.replacement for line in plan(engine)] == [Replacement.RECEIVED]


def test_credentials_out_of_service_never_appear(engine, add):
    for state in set(S) - lifecycle.IN_SERVICE:
        add(-10, state=state)
        add(10, state=state)
    no_expiry = add(10)
    update(engine, no_expiry, expires_on=None)
    assert plan(engine, within_days=3650) == []


def test_most_urgent_first(engine, add):
    # order-by dates: temporary today-20 (expiry 10), rpva today-20 (expiry 40) with a
    # smaller id later, agent today-15 (expiry 60), expert today-5 (expiry 40)
    rpva = add(40)
    temporary = add(10, kind=K.TEMPORARY_CARD)
    agent = add(60, kind=K.AGENT_CARD, organisation="TJ Angers")
    expert = add(40, kind=K.EXPERT_CARD)
    twin = add(40)  # same order-by and expiry as ``rpva``: the id decides
    assert [line.id for line in plan(engine)] == [temporary, rpva, twin, agent, expert]


def test_missing_lead_time_is_refused(engine):
    with pytest.raises(ValueError, match="AGENT_CARD"):
        plan(engine, lead_days={K.RPVA_KEY: 45})
    assert plan(engine, lead_days={K.RPVA_KEY: 45}, kinds=[K.RPVA_KEY]) == []


def test_sqlite_reads_the_indexes(engine):
    if not db.is_sqlite(engine):
        pytest.skip("plan de requête propre à SQLite")

    def steps(**filters):
        sql, params = plan_sql(
            today=TODAY, lead_days=LEADS, margin_days=MARGIN, within_days=60, **filters
        )
        with dbapi.connect(url(engine)) as connection:
            rows = connection.rows("EXPLAIN QUERY PLAN " + sql, params)
            return " | ".join(str(row[3]) for row in rows)

    plain = steps()
    assert "SEARCH c USING COVERING INDEX ix_credential_expiry (expires_on<?)" in plain, plain
    # With an organisation, SQLite may start from its holders instead: never a full scan.
    for text in (plain, steps(organisation_id=3, kinds=[K.RPVA_KEY])):
        assert "SEARCH r USING INDEX ix_credential_replaces_id (replaces_id=?)" in text, text
        assert "SCAN" not in text, text


def test_the_plan_command_does_without_sqlalchemy():
    assert plan_module.IN_SERVICE == lifecycle.IN_SERVICE
    code = (
        "import sys, cartes.cli.plan_cmd; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'sqlmodel'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- Measured lead times -------------------------------------------------------------------


def test_measured_lead_times(engine, add):
    def case(kind, requested, duration, state=S.ACTIVE):
        credential_id = add(300, kind=kind, state=state, organisation="TJ Angers")
        received = None if duration is None else day(requested + duration)
        update(engine, credential_id, requested_on=day(requested), received_on=received)

    for requested, duration in [(-100, 30), (-50, 50), (-300, 40)]:
        case(K.RPVA_KEY, requested, duration)
    case(K.RPVA_KEY, -730, 100)  # the first day of the window: counted
    case(K.RPVA_KEY, -731, 1)  # one day too old: not counted
    case(K.RPVA_KEY, -10, None, state=S.REQUESTED)  # not received yet: not counted
    case(K.RPVA_KEY, -10, -3)  # received before requested: an input error, not counted
    case(K.AGENT_CARD, -20, 21)
    assert measured(engine) == {
        K.RPVA_KEY: MeasuredLead(median_days=45.0, cases=4),
        K.AGENT_CARD: MeasuredLead(median_days=21.0, cases=1),
    }
    # A day later the case of 100 days leaves the window: 30, 40, 50.
    assert measured(engine, today=day(1))[K.RPVA_KEY] == MeasuredLead(40.0, 3)


# -- cartes plan ---------------------------------------------------------------------------


@pytest.fixture
def inventory(engine, clock, add):
    ids = {
        "rpva_10": add(10),  # order-by today-50, gap 35
        "rpva_100": add(100, organisation="Barreau de Laval"),  # order-by today+40
        "agent_90": add(90, kind=K.AGENT_CARD, organisation="TJ Angers"),  # today+15
        "expert_50": add(50, kind=K.EXPERT_CARD),  # order-by today+5, requested
        "expert_200": add(200, kind=K.EXPERT_CARD),  # order-by today+155: not in the plan
        "lost_5": add(5, state=S.LOST),
    }
    replace(engine, clock, ids["expert_50"], S.REQUESTED, requested_on=day(-10))
    return ids


def planned(cli, *args):
    result = cli("plan", "--format", "json", *args, operator=None)
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_json_fields_and_values(cli, inventory):
    lines = planned(cli)
    assert [line["support"] for line in lines] == [
        inventory[k] for k in ("rpva_10", "expert_50", "agent_90", "rpva_100")
    ]
    for line in lines:
        assert list(line) == [
            "support", "type", "titulaire", "email", "organisation", "numero_serie",
            "date_expiration", "jours_restants", "date_limite_commande",
            "rupture_previsible_jours", "remplacement",
        ]  # fmt: skip
    first = lines[0]
    assert first["type"] == "cle_rpva"
    assert first["titulaire"].startswith("Claire Martin")
    assert first["email"].startswith("claire.martin") and first["email"].endswith("@example.fr")
    assert first["organisation"] == "Barreau d'Angers"
    assert first["numero_serie"].startswith("SER-")
    assert first["date_expiration"] == "2026-12-06"
    assert first["jours_restants"] == 10
    assert first["date_limite_commande"] == "2026-10-07"
    assert first["rupture_previsible_jours"] == 35
    assert first["remplacement"] == "aucun"
    expert = lines[1]
    assert (expert["type"], expert["remplacement"], expert["rupture_previsible_jours"]) == (
        "carte_expert", "demande", 0
    )  # fmt: skip
    assert lines[2]["type"] == "carte_agent" and lines[2]["organisation"] == "TJ Angers"


def test_filters(cli, inventory):
    def ids(*args):
        return [line["support"] for line in planned(cli, *args)]

    assert ids("--jours", "0") == [inventory["rpva_10"]]
    assert ids("--jours", "15") == [inventory[k] for k in ("rpva_10", "expert_50", "agent_90")]
    assert ids("--jours", "155") == [
        inventory[k] for k in ("rpva_10", "expert_50", "agent_90", "rpva_100", "expert_200")
    ]
    assert ids("--type", "cle_rpva") == [inventory["rpva_10"], inventory["rpva_100"]]
    assert ids("--type", "carte_expert", "--type", "Carte agent") == [
        inventory["expert_50"], inventory["agent_90"]
    ]  # fmt: skip
    assert ids("--organisation", "barreau de laval") == [inventory["rpva_100"]]
    assert ids("--organisation", "Tribunal judiciaire d'Angers") == [inventory["agent_90"]]
    assert ids("--organisation", "TJ Saumur") == []


def test_csv(cli, inventory):
    result = cli("plan", "--format", "csv", operator=None)
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == (
        "support;type;titulaire;email;organisation;numero_serie;date_expiration;"
        "jours_restants;date_limite_commande;rupture_previsible_jours;remplacement"
    )
    rows = list(csv.DictReader(io.StringIO(result.out), delimiter=";"))
    assert [row["support"] for row in rows] == [
        str(inventory[k]) for k in ("rpva_10", "expert_50", "agent_90", "rpva_100")
    ]
    assert rows[0]["date_limite_commande"] == "2026-10-07"
    assert rows[0]["rupture_previsible_jours"] == "35"
    assert rows[1]["remplacement"] == "demande"


def test_table(cli, engine, inventory):
    update(engine, inventory["rpva_10"], requested_on=day(-80), received_on=day(-38))
    result = cli("plan", operator=None)
    assert result.code == 0, result.err
    out = result.out
    assert out.splitlines()[0].split() == [
        "support", "type", "titulaire", "organisation", "n°", "de", "série", "expiration",
        "jours", "commander", "avant", "rupture", "remplacement",
    ]  # fmt: skip
    assert "clé RPVA" in out and "carte expert" in out and "carte agent" in out
    assert "07/10/2026 (en retard)" in out and "35 j" in out
    assert "demandé le 16/11/2026" in out
    assert "À commander : 3 supports, dont 1 en retard." in out
    assert "Remplacements demandés : 1 ; reçus, à remettre : 0." in out
    assert "Ruptures certaines : 1 support, la plus longue de 35 jours." in out
    assert "Délais de renouvellement (marge de sécurité : 15 jours) :" in out
    assert "clé RPVA          configuré : 45 jours ; mesuré : 42 jours (médiane de 1 cas" in out
    assert "carte agent       configuré : 60 jours ; non mesuré" in out
    assert "carte temporaire  configuré : 15 jours ; non mesuré" in out
    result = cli("plan", "--type", "carte_temporaire", operator=None)
    assert result.code == 0, result.err
    assert result.out.startswith(
        "Rien à renouveler : aucune date limite de commande dépassée ou dans les 60 jours.\n"
    )
    assert "carte temporaire  configuré : 15 jours" in result.out
    assert "clé RPVA" not in result.out


def test_settings_lead_times_are_used(cli, inventory, monkeypatch):
    monkeypatch.setenv("CARTES_RENEWAL__RPVA_KEY_DAYS", "5")
    monkeypatch.setenv("CARTES_RENEWAL__SAFETY_MARGIN_DAYS", "0")
    (line,) = planned(cli, "--type", "cle_rpva", "--jours", "5")
    assert line["support"] == inventory["rpva_10"]
    assert (line["date_limite_commande"], line["rupture_previsible_jours"]) == ("2026-12-01", 0)


def test_errors_are_french(cli, inventory):
    result = cli("plan", "--type", "badge", operator=None)
    assert result.code == 1
    assert "Valeur « badge » inconnue pour type" in result.err
    result = cli("plan", "--organisation", "TJ Nantes", operator=None)
    assert result.code == 1 and "Organisation inconnue : « TJ Nantes »" in result.err
    result = cli("plan", "--jours", "-1", operator=None)
    assert result.code == 2 and "nombre positif attendu" in result.err


# -- The SQL plan against a plain Python computation ---------------------------------------


def test_sql_plan_agrees_with_python(engine, clock):
    rng = random.Random(20261126)
    now = clock.now()
    with db.write_session(engine) as session:
        admin = operators.find(session, "admin")
        assert admin is not None
        organisation_ids = [
            organisations.find(session, name).id
            for name in ("Barreau d'Angers", "TJ Angers", "TJ Laval")
        ]
        holders = [
            credentials.create_holder(
                session,
                last_name=f"Nom{n}",
                first_name="Prénom",
                email=f"titulaire{n}@example.fr",
                role=credentials.HolderRole.AGENT,
                organisation_id=rng.choice(organisation_ids),  # type: ignore[arg-type]
                operator=admin,
                now=now,
            )
            for n in range(40)
        ]
        created: list[Credential] = []
        for n in range(300):
            kind = rng.choice(list(K))
            state = rng.choice(list(S) + [S.ACTIVE] * 4)
            credential = credentials.create_credential(
                session,
                holder_id=rng.choice(holders).id,  # type: ignore[arg-type]
                kind=kind,
                state=state,
                serial=f"R{n:05d}",
                model=CardModel.OLD if kind is K.AGENT_CARD else None,
                expires_on=None if rng.random() < 0.05 else day(rng.randint(-120, 400)),
                operator=admin,
                now=now,
            )
            if created and rng.random() < 0.35:
                credential.replaces_id = rng.choice(created).id
            if state is S.REQUESTED:
                credential.requested_on = None if rng.random() < 0.1 else day(rng.randint(-150, 0))
            session.add(credential)
            created.append(credential)

    with db.read_session(engine) as session:
        everything = session.execute(
            sa.select(Credential, Holder.organisation_id, OrganisationRow.short_name)
            .join(Holder, Holder.id == Credential.holder_id)  # type: ignore[arg-type]
            .join(OrganisationRow, OrganisationRow.id == Holder.organisation_id)  # type: ignore[arg-type]
        ).all()
        rows = [(c.id, c.kind, c.state, c.expires_on, c.replaces_id, c.requested_on, o, name)
                for c, o, name in everything]  # fmt: skip

    def expected(within, kinds, organisation_id, leads):
        followers: dict[int, list[tuple[S, dt.date | None]]] = {}
        for _, _, state, _, replaces, requested_on, _, _ in rows:
            if replaces is not None:
                followers.setdefault(replaces, []).append((state, requested_on))
        result = []
        for cid, kind, state, expires, _, _, org, _ in rows:
            if state not in lifecycle.IN_SERVICE or expires is None:
                continue
            if (kinds and kind not in kinds) or organisation_id not in (None, org):
                continue
            mine = followers.get(cid, [])
            if any(s in lifecycle.IN_SERVICE for s, _ in mine):
                continue
            lead = leads[kind]
            order_by = expires - dt.timedelta(days=lead + MARGIN)
            if order_by > day(within):
                continue
            arrivals = []
            for s, requested_on in mine:
                if s is S.RECEIVED:
                    arrivals.append((TODAY, 0, "received"))
                elif s is S.REQUESTED:
                    start = requested_on or TODAY
                    arrivals.append((max(TODAY, start + dt.timedelta(days=lead)), 1, "requested"))
            arrival, _, status = min(arrivals or [(day(lead), 2, "none")])
            gap = max(0, (arrival - expires).days)
            result.append((order_by, expires, cid, status, arrival, gap))
        return sorted(result)

    names = {Replacement.NONE: "none", Replacement.REQUESTED: "requested",
             Replacement.RECEIVED: "received"}  # fmt: skip
    cases = [
        (60, (), None, LEADS),
        (0, (), None, LEADS),
        (365, (), None, LEADS),
        (30, (K.RPVA_KEY, K.TEMPORARY_CARD), None, LEADS),
        (90, (), organisation_ids[1], LEADS),
        (45, (K.AGENT_CARD,), organisation_ids[0], {**LEADS, K.AGENT_CARD: 120}),
    ]
    total = 0
    for within, kinds, organisation_id, leads in cases:
        lines = plan(
            engine,
            within_days=within,
            kinds=kinds,
            organisation_id=organisation_id,
            lead_days=leads,
        )
        got = [
            (x.order_by, x.expires_on, x.id, names[x.replacement], x.arrival, x.gap_days)
            for x in lines
        ]
        assert got == expected(within, kinds, organisation_id, leads), (within, kinds)
        total += len(got)
    # The inventory exercises every branch, or the comparison proves little.
    everyone = plan(engine, within_days=3650)
    assert {line.replacement for line in everyone} == set(Replacement)
    assert any(line.gap_days > 0 for line in everyone) and total > 50
