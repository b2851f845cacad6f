"""Statistics (issue 8, part 4): every figure of a small inventory checked against values
computed by hand, and ``cartes stats`` in each of its forms."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys

import openpyxl
import pytest

from cartes.cli import stats_cmd
from inventaire import db, dbapi, operators
from inventaire.models import (
    CardModel,
    Credential,
    CredentialKind,
    CredentialState,
    EmergencyIssuance,
    Operator,
    OperatorRole,
)
from inventaire.plan import measured_lead_times, renewal_plan
from inventaire.stats import Figures, compute, median
from tests.conftest import NOW
from tests.factories import add_credential

S = CredentialState
K = CredentialKind
TODAY = dt.date(2026, 11, 26)  # the test clock's day in Paris
# The default settings, which ``cartes stats`` uses in these tests.
LEADS = {K.RPVA_KEY: 45, K.AGENT_CARD: 60, K.EXPERT_CARD: 30, K.TEMPORARY_CARD: 15}
MARGIN = 15

BAR_ANGERS, BAR_LAVAL, TJ_ANGERS = "Barreau d'Angers", "Barreau de Laval", "TJ Angers"


def day(offset: int) -> dt.date:
    return TODAY + dt.timedelta(days=offset)


def url(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def statistics(engine, today=TODAY):
    with dbapi.connect(url(engine)) as connection:
        return compute(connection, today=today, lead_days=LEADS, margin_days=MARGIN)


def update(engine, credential_id, **values):
    with db.write_session(engine) as session:
        credential = session.get(Credential, credential_id)
        assert credential is not None
        for name, value in values.items():
            setattr(credential, name, value)
        session.add(credential)


def follower(engine, of, state, **values):
    """A credential of the same holder and kind as ``of`` (its replacement when
    ``replaces_id`` is given), inserted with the model; returns its id."""
    with db.write_session(engine) as session:
        base = session.get(Credential, of)
        assert base is not None
        credential = Credential(
            kind=base.kind,
            model=CardModel.NEW if base.kind is K.AGENT_CARD else None,
            holder_id=base.holder_id,
            state=state,
            created_at=NOW,
            updated_at=NOW,
            **values,
        )
        session.add(credential)
        session.flush()
        assert credential.id is not None
        return credential.id


def emergency(engine, card, *, request=None, issued, due, returned=None):
    """Records ``card`` (an agent card, made an old-model emergency one) as handed out in
    emergency, with the model: the emergency service is tested on its own."""
    update(engine, card, model=CardModel.OLD, emergency=True)
    with db.write_session(engine) as session:
        credential = session.get(Credential, card)
        assert credential is not None
        session.add(
            EmergencyIssuance(
                credential_id=card,
                holder_id=credential.holder_id,
                issued_by="remise",
                reason="carte nouveau modèle en retard",
                request_id=request,
                issued_on=day(issued),
                return_due_on=day(due),
                returned_on=None if returned is None else day(returned),
                created_at=NOW,
            )
        )


@pytest.fixture
def inventory(engine, clock):
    """A small inventory; the figures each credential contributes are in the comments
    (lead times: RPVA 45 days, agent card 60, temporary card 15; margin 15)."""
    now = clock.now()

    def add(org, kind, days, state=S.ACTIVE, **values):
        credential_id = add_credential(
            engine, now, kind=kind, state=state, expires_on=day(days), organisation=org
        )
        if values:
            update(engine, credential_id, **values)
        return credential_id

    ids = {}
    # Barreau d'Angers, RPVA keys.
    ids["a1"] = add(BAR_ANGERS, K.RPVA_KEY, 10)  # ≤30, ≤60, ≤90; gap 45 − 10 = 35
    ids["a2"] = add(BAR_ANGERS, K.RPVA_KEY, 50, S.SUSPENDED)  # ≤60, ≤90; no gap
    ids["a3"] = add(BAR_ANGERS, K.RPVA_KEY, -5)  # expired in service; gap 45 + 5 = 50
    ids["a4"] = add(BAR_ANGERS, K.RPVA_KEY, 20)  # ≤30, ≤60, ≤90; replacement due at +5: none
    ids["a4r"] = follower(
        engine, ids["a4"], S.REQUESTED, replaces_id=ids["a4"], requested_on=day(-40)
    )  # pending, 40 days old
    ids["a5"] = add(BAR_ANGERS, K.RPVA_KEY, 10, S.LOST)  # out of service: nothing
    ids["a6"] = add(
        BAR_ANGERS, K.RPVA_KEY, 200, requested_on=day(-300), received_on=day(-260)
    )  # in service; lead time 40
    # Barreau de Laval, RPVA keys.
    ids["l1"] = add(BAR_LAVAL, K.RPVA_KEY, 30)  # ≤30 (its last day), ≤60, ≤90; gap 15
    ids["l2"] = add(BAR_LAVAL, K.RPVA_KEY, 90)  # ≤90 (its last day)
    ids["l3"] = add(BAR_LAVAL, K.RPVA_KEY, 91)  # in service only
    ids["l4"] = add(
        BAR_LAVAL, K.RPVA_KEY, 400, S.RECEIVED, requested_on=day(-10), received_on=day(-2)
    )  # pending, 10 days old; lead time 8
    ids["l5"] = add(
        BAR_LAVAL, K.RPVA_KEY, 400, S.REQUESTED, requested_on=day(-31)
    )  # pending, 31 days old
    ids["l6"] = add(
        BAR_LAVAL, K.RPVA_KEY, 400, requested_on=day(-800), received_on=day(-750)
    )  # in service; lead time too old
    # TJ Angers, agent cards.
    ids["t1"] = add(TJ_ANGERS, K.AGENT_CARD, 40)  # ≤60, ≤90; replacement received: no gap
    ids["t1r"] = follower(
        engine,
        ids["t1"],
        S.RECEIVED,
        replaces_id=ids["t1"],
        requested_on=day(-50),
        received_on=day(-5),
    )  # pending 50; lead 45
    ids["t2"] = add(TJ_ANGERS, K.AGENT_CARD, 5)  # ≤30, ≤60, ≤90; gap 60 − 5 = 55
    ids["t3"] = add(TJ_ANGERS, K.AGENT_CARD, 100)  # in service, renewed: not in the plan
    ids["t3r"] = follower(
        engine,
        ids["t3"],
        S.ACTIVE,
        replaces_id=ids["t3"],
        expires_on=day(1000),
        requested_on=day(-100),
        received_on=day(-70),
    )  # in service; lead 30
    ids["e1"] = add(TJ_ANGERS, K.AGENT_CARD, 300)  # in service; outstanding, overdue
    emergency(engine, ids["e1"], request=ids["t1r"], issued=-30, due=-1)
    ids["e2"] = add(TJ_ANGERS, K.AGENT_CARD, 300)  # in service; outstanding, to take back
    emergency(engine, ids["e2"], request=ids["t3r"], issued=-60, due=10)
    ids["e3"] = add(TJ_ANGERS, K.AGENT_CARD, 300, S.RETURNED)  # returned: nothing
    emergency(engine, ids["e3"], request=ids["t3r"], issued=-40, due=50, returned=-3)
    ids["e4"] = add(TJ_ANGERS, K.AGENT_CARD, 300, S.LOST)  # lost, never returned: nothing
    emergency(engine, ids["e4"], issued=-40, due=-20)
    # TJ Angers, temporary cards.
    ids["t4"] = add(TJ_ANGERS, K.TEMPORARY_CARD, 3)  # ≤30, ≤60, ≤90; gap 15 − 3 = 12
    ids["t5"] = add(TJ_ANGERS, K.TEMPORARY_CARD, -1, S.SUSPENDED)  # expired; gap 16
    # TJ Saumur: nothing in service, pending or measured.
    ids["s1"] = add("TJ Saumur", K.AGENT_CARD, 30, S.CANCELLED)
    return ids


# Hand-computed figures of ``inventory``.
ANGERS_RPVA = Figures(
    in_service=5, expiring_30=2, expiring_60=3, expiring_90=3, expired_in_service=1,
    gaps=2, gap_days_total=85, gap_days_max=50,
    requests_pending=1, request_age_median_days=40.0,
    lead_time_median_days=40.0, lead_time_cases=1,
)  # fmt: skip
LAVAL_RPVA = Figures(
    in_service=4, expiring_30=1, expiring_60=1, expiring_90=2,
    gaps=1, gap_days_total=15, gap_days_max=15,
    requests_pending=2, request_age_median_days=20.5,  # 10 and 31
    lead_time_median_days=8.0, lead_time_cases=1,
)  # fmt: skip
TJ_AGENT = Figures(
    in_service=6, expiring_30=1, expiring_60=2, expiring_90=2,  # t1 t2 t3 t3r e1 e2
    gaps=1, gap_days_total=55, gap_days_max=55,
    requests_pending=1, request_age_median_days=50.0,
    lead_time_median_days=37.5, lead_time_cases=2,  # 45 and 30
    emergency_outstanding=2, emergency_to_take_back=1, emergency_overdue=1,
)  # fmt: skip
TJ_TEMPORARY = Figures(
    in_service=2, expiring_30=1, expiring_60=1, expiring_90=1, expired_in_service=1,
    gaps=2, gap_days_total=28, gap_days_max=16,
)  # fmt: skip
TJ_TOTAL = Figures(
    in_service=8, expiring_30=2, expiring_60=3, expiring_90=3, expired_in_service=1,
    gaps=3, gap_days_total=83, gap_days_max=55,
    requests_pending=1, request_age_median_days=50.0,
    lead_time_median_days=37.5, lead_time_cases=2,
    emergency_outstanding=2, emergency_to_take_back=1, emergency_overdue=1,
)  # fmt: skip
RPVA_TOTAL = Figures(
    in_service=9, expiring_30=3, expiring_60=4, expiring_90=5, expired_in_service=1,
    gaps=3, gap_days_total=100, gap_days_max=50,
    requests_pending=3, request_age_median_days=31.0,  # 10, 31, 40
    lead_time_median_days=24.0, lead_time_cases=2,  # 8 and 40
)  # fmt: skip
OVERALL = Figures(
    in_service=17, expiring_30=5, expiring_60=7, expiring_90=8, expired_in_service=2,
    gaps=6, gap_days_total=183, gap_days_max=55,
    requests_pending=4, request_age_median_days=35.5,  # 10, 31, 40, 50
    lead_time_median_days=35.0, lead_time_cases=4,  # 8, 30, 40, 45
    emergency_outstanding=2, emergency_to_take_back=1, emergency_overdue=1,
)  # fmt: skip


def test_every_figure_matches_the_hand_count(engine, inventory):
    stats = statistics(engine)
    assert stats.today == TODAY
    assert stats.cells == {
        (BAR_ANGERS, K.RPVA_KEY): ANGERS_RPVA,
        (BAR_LAVAL, K.RPVA_KEY): LAVAL_RPVA,
        (TJ_ANGERS, K.AGENT_CARD): TJ_AGENT,
        (TJ_ANGERS, K.TEMPORARY_CARD): TJ_TEMPORARY,
    }
    # Organisations in alphabetical order; TJ Saumur has nothing to count.
    assert stats.by_organisation == {
        BAR_ANGERS: ANGERS_RPVA,
        BAR_LAVAL: LAVAL_RPVA,
        TJ_ANGERS: TJ_TOTAL,
    }
    assert list(stats.by_organisation) == [BAR_ANGERS, BAR_LAVAL, TJ_ANGERS]
    assert stats.by_kind == {
        K.AGENT_CARD: TJ_AGENT,
        K.EXPERT_CARD: Figures(),
        K.RPVA_KEY: RPVA_TOTAL,
        K.TEMPORARY_CARD: TJ_TEMPORARY,
    }
    assert stats.overall == OVERALL
    groups = [(g.organisation, g.kind) for g in stats.groups()]
    assert groups == [
        (BAR_ANGERS, K.RPVA_KEY), (BAR_ANGERS, None),
        (BAR_LAVAL, K.RPVA_KEY), (BAR_LAVAL, None),
        (TJ_ANGERS, K.AGENT_CARD), (TJ_ANGERS, K.TEMPORARY_CARD), (TJ_ANGERS, None),
        (None, K.AGENT_CARD), (None, K.EXPERT_CARD), (None, K.RPVA_KEY),
        (None, K.TEMPORARY_CARD), (None, None),
    ]  # fmt: skip


def test_the_reference_day_moves_every_dated_figure(engine, inventory):
    later = statistics(engine, today=day(11))
    # Expired by then: a3 (−5), t5 (−1), t4 (+3), t2 (+5), a1 (+10).
    assert later.overall.expired_in_service == 5
    # Expiring from +11 to +41: a4 (+20), l1 (+30), t1 (+40).
    assert later.overall.expiring_30 == 3
    # e2 was due back at +10.
    assert later.overall.emergency_overdue == 2
    # Requests 11 days older: 21, 42, 51, 61.
    assert later.overall.requests_pending == 4
    assert later.overall.request_age_median_days == 46.5

    earlier = statistics(engine, today=day(-20))
    # l4 was requested at −10: not yet a request 20 days ago (ages 20, 11, 30 remain).
    assert earlier.overall.requests_pending == 3
    assert earlier.overall.request_age_median_days == 20.0
    # e1 and e2 were out, neither was late yet.
    assert earlier.overall.emergency_outstanding == 2
    assert earlier.overall.emergency_overdue == 0
    # The window of measured lead times ends then: l4 (requested −10) leaves it, while
    # l6 (−800) is still too old for it (−750): 30, 40, 45.
    assert earlier.overall.lead_time_cases == 3
    assert earlier.overall.lead_time_median_days == 40.0


def test_lead_times_per_kind_are_those_of_the_plan(engine, inventory):
    for today in (TODAY, day(-20)):
        stats = statistics(engine, today=today)
        with dbapi.connect(url(engine)) as connection:
            measured = measured_lead_times(connection, today=today)
        for kind, figures in stats.by_kind.items():
            seen = measured.get(kind)
            assert figures.lead_time_cases == (seen.cases if seen else 0)
            assert figures.lead_time_median_days == (seen.median_days if seen else None)


def test_gaps_are_those_of_the_whole_plan(engine, inventory):
    """The narrow plan window that ``compute`` reads holds every gap of a wide one."""
    for today in (TODAY, day(11), day(-20)):
        with dbapi.connect(url(engine)) as connection:
            lines = renewal_plan(
                connection, today=today, lead_days=LEADS, margin_days=MARGIN, within_days=3650
            )
        gaps = [line.gap_days for line in lines if line.gap_days > 0]
        overall = statistics(engine, today=today).overall
        assert (overall.gaps, overall.gap_days_total, overall.gap_days_max) == (
            len(gaps),
            sum(gaps),
            max(gaps),
        )


def test_empty_inventory(engine):
    stats = statistics(engine)
    assert stats.cells == {} and stats.by_organisation == {}
    assert stats.overall == Figures()
    assert stats.overall.request_age_median_days is None


def test_median():
    assert median({}) is None
    assert median({7: 1}) == 7.0
    assert median({1: 1, 3: 1}) == 2.0
    assert median({1: 2, 10: 1}) == 1.0
    assert median({1: 1, 2: 1, 10: 2}) == 6.0


# -- cartes stats ----------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path):
    """An empty folder for output files (the SQLite database lives in ``tmp_path``)."""
    path = tmp_path / "sorties"
    path.mkdir()
    return path


def stats_json(cli, *args, operator="lecture"):
    result = cli("stats", "--format", "json", *args, operator=operator)
    assert result.code == 0, result.err
    return json.loads(result.out)


FIGURE_KEYS = [
    "en_service", "expirent_30_jours", "expirent_60_jours", "expirent_90_jours",
    "expires_en_service", "ruptures_prevues", "ruptures_jours_total", "ruptures_jours_max",
    "demandes_en_attente", "demandes_age_median_jours", "delai_mesure_median_jours",
    "delai_mesure_cas", "urgence_en_cours", "urgence_a_recuperer", "urgence_en_retard",
]  # fmt: skip


def test_json(cli, inventory):
    document = stats_json(cli)
    assert list(document) == [
        "au", "delais_configures_jours", "marge_securite_jours", "lignes", "par_organisation",
        "par_type", "total",
    ]  # fmt: skip
    assert document["au"] == "2026-11-26"
    assert document["delais_configures_jours"] == {
        "carte_agent": 60, "carte_expert": 30, "cle_rpva": 45, "carte_temporaire": 15
    }  # fmt: skip
    assert document["marge_securite_jours"] == 15
    for entry in [*document["lignes"], *document["par_organisation"], *document["par_type"]]:
        assert list(entry) == ["organisation", "type", *FIGURE_KEYS]
    assert [(e["organisation"], e["type"]) for e in document["lignes"]] == [
        (BAR_ANGERS, "cle_rpva"), (BAR_LAVAL, "cle_rpva"),
        (TJ_ANGERS, "carte_agent"), (TJ_ANGERS, "carte_temporaire"),
    ]  # fmt: skip
    agent = document["lignes"][2]
    assert [agent[key] for key in FIGURE_KEYS] == [
        6,
        1,
        2,
        2,
        0,
        1,
        55,
        55,
        1,
        50,
        37.5,
        2,
        2,
        1,
        1,
    ]
    assert [(e["organisation"], e["type"]) for e in document["par_organisation"]] == [
        (BAR_ANGERS, None), (BAR_LAVAL, None), (TJ_ANGERS, None)
    ]  # fmt: skip
    assert [e["type"] for e in document["par_type"]] == [
        "carte_agent", "carte_expert", "cle_rpva", "carte_temporaire"
    ]  # fmt: skip
    expert = document["par_type"][1]
    assert expert["en_service"] == 0 and expert["delai_mesure_median_jours"] is None
    total = document["total"]
    assert total["organisation"] is None and total["type"] is None
    assert [total[key] for key in FIGURE_KEYS] == [
        17, 5, 7, 8, 2, 6, 183, 55, 4, 35.5, 35, 4, 2, 1, 1
    ]  # fmt: skip


def test_au_changes_the_figures(cli, inventory):
    now = stats_json(cli)["total"]
    later = stats_json(cli, "--au", "07/12/2026")["total"]  # 11 days later
    assert (now["expires_en_service"], later["expires_en_service"]) == (2, 5)
    assert (now["urgence_en_retard"], later["urgence_en_retard"]) == (1, 2)
    assert later["demandes_age_median_jours"] == 46.5
    document = stats_json(cli, "--au", "2026-11-06")  # 20 days before
    assert document["au"] == "2026-11-06"
    assert document["total"]["demandes_en_attente"] == 3
    assert document["total"]["urgence_en_retard"] == 0


def sections(text):
    """The three tables of the terminal form, by title: their lines, header first."""
    found = {}
    for title, block in zip(TITLES, text.split("\n\n")[1:4], strict=True):
        lines = block.splitlines()
        assert lines[0] == title
        found[title] = lines[1:]
    return found


TITLES = ("Supports", "Demandes et délais", "Cartes d'urgence")


def test_table(cli, inventory):
    result = cli("stats", operator="lecture")
    assert result.code == 0, result.err
    text = result.out
    assert text.startswith("Statistiques au 26/11/2026\n\n")
    assert [line for line in text.splitlines() if len(line) > 100] == []
    tables = sections(text)
    supports = tables["Supports"]
    assert supports[0].split() == [
        "en", "service", "≤", "30", "j", "≤", "60", "j", "≤", "90", "j", "expirés", "ruptures",
        "jours", "max", "(j)",
    ]  # fmt: skip
    # Numbers are right-aligned under their headers.
    rows = [line for line in supports[2:] if line.startswith("  ")]
    assert {len(line) for line in rows} == {len(supports[0])}
    body = [line.split() for line in supports[2:15]]
    # TJ Angers has two kinds, so a total; each bar has one kind, so none.
    assert body == [
        ["Barreau", "d'Angers"],
        ["clé", "RPVA", "5", "2", "3", "3", "1", "2", "85", "50"],
        ["Barreau", "de", "Laval"],
        ["clé", "RPVA", "4", "1", "1", "2", "0", "1", "15", "15"],
        ["TJ", "Angers"],
        ["carte", "agent", "6", "1", "2", "2", "0", "1", "55", "55"],
        ["carte", "temporaire", "2", "1", "1", "1", "1", "2", "28", "16"],
        ["total", "8", "2", "3", "3", "1", "3", "83", "55"],
        ["Toutes", "organisations"],
        ["carte", "agent", "6", "1", "2", "2", "0", "1", "55", "55"],
        ["clé", "RPVA", "9", "3", "4", "5", "1", "3", "100", "50"],
        ["carte", "temporaire", "2", "1", "1", "1", "1", "2", "28", "16"],
        ["total", "17", "5", "7", "8", "2", "6", "183", "55"],
    ]  # fmt: skip
    assert supports[15].startswith("en service : actifs ou suspendus ;")  # the legend
    requests = [line.split() for line in tables["Demandes et délais"][2:]]
    assert ["clé", "RPVA", "2", "20,5", "8", "1"] in requests  # Laval
    assert ["carte", "temporaire"] not in [line[:2] for line in requests]  # nothing there
    assert ["total", "4", "35,5", "35", "4"] in requests
    emergency = [line.split() for line in tables["Cartes d'urgence"][2:]]
    # Only the groups with emergency cards, and the overall total.
    assert emergency[:5] == [
        ["TJ", "Angers"],
        ["carte", "agent", "2", "1", "1"],
        ["Toutes", "organisations"],
        ["carte", "agent", "2", "1", "1"],
        ["total", "2", "1", "1"],
    ]
    assert text.endswith(
        "Délais configurés : carte agent 60 j, carte expert 30 j, clé RPVA 45 j, "
        "carte temporaire 15 j ;\nmarge de sécurité : 15 j.\n"
    )


def test_table_of_an_empty_inventory(cli):
    result = cli("stats", operator="lecture")
    assert result.code == 0, result.err
    assert result.out.count("Toutes organisations\n  total ") == 3


def test_csv(cli, inventory):
    result = cli("stats", "--format", "csv", operator="lecture")
    assert result.code == 0, result.err
    sections = result.out.split("\n\n")
    assert len(sections) == 3
    tables = [list(csv.reader(io.StringIO(section), delimiter=";")) for section in sections]
    assert [table[0][:3] for table in tables] == [["tableau", "organisation", "type"]] * 3
    assert tables[0][0][3:] == [
        "en_service", "expirent_30_jours", "expirent_60_jours", "expirent_90_jours",
        "expires_en_service", "ruptures_prevues", "ruptures_jours_total", "ruptures_jours_max",
    ]  # fmt: skip
    assert {row[0] for table in tables for row in table[1:]} == {"supports", "demandes", "urgence"}
    assert [row[0] for row in tables[1][1:]] == ["demandes"] * (len(tables[1]) - 1)
    requests = {(row[1], row[2]): row[3:] for row in tables[1][1:]}
    assert requests[TJ_ANGERS, "carte_agent"] == ["1", "50", "37,5", "2"]
    assert requests["toutes", "tous"] == ["4", "35,5", "35", "4"]
    assert requests[TJ_ANGERS, "tous"] == ["1", "50", "37,5", "2"]
    assert (TJ_ANGERS, "carte_temporaire") not in requests  # nothing pending or measured
    emergency = {(row[1], row[2]): row[3:] for row in tables[2][1:]}
    assert emergency == {
        (TJ_ANGERS, "carte_agent"): ["2", "1", "1"],
        (TJ_ANGERS, "tous"): ["2", "1", "1"],
        ("toutes", "carte_agent"): ["2", "1", "1"],
        ("toutes", "tous"): ["2", "1", "1"],
    }


def test_xlsx_read_back(cli, inventory, folder):
    path = folder / "stats.xlsx"
    result = cli("stats", "--format", "xlsx", "--sortie", str(path), operator="lecture")
    assert result.code == 0, result.err
    assert result.out == f"Statistiques au 26/11/2026 écrites dans {path}.\n"
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Supports", "Demandes et délais", "Cartes d'urgence",
                                   "Définitions"]  # fmt: skip
    supports = workbook["Supports"]
    assert supports.freeze_panes == "C2"
    rows = list(supports.iter_rows(values_only=True))
    assert rows[0] == (
        "Organisation", "Type", "En service", "Expirent sous 30 jours",
        "Expirent sous 60 jours", "Expirent sous 90 jours", "Expirés encore en service",
        "Ruptures prévues", "Jours de rupture (total)", "Rupture la plus longue (jours)",
    )  # fmt: skip
    by_group = {row[:2]: row[2:] for row in rows[1:]}
    assert by_group[TJ_ANGERS, "carte agent"] == (6, 1, 2, 2, 0, 1, 55, 55)
    assert by_group[TJ_ANGERS, "Tous types"] == (8, 2, 3, 3, 1, 3, 83, 55)
    assert by_group["Toutes organisations", "clé RPVA"] == (9, 3, 4, 5, 1, 3, 100, 50)
    assert by_group["Toutes organisations", "Tous types"] == (17, 5, 7, 8, 2, 6, 183, 55)
    assert ("Toutes organisations", "carte expert") not in by_group  # all zero
    assert all(isinstance(value, int) for row in rows[1:] for value in row[2:])
    requests = list(workbook["Demandes et délais"].iter_rows(values_only=True))
    assert requests[0] == ("Organisation", "Type", "Demandes en attente",
                           "Âge médian des demandes (jours)", "Délai médian mesuré (jours)",
                           "Cas mesurés")  # fmt: skip
    assert {row[:2]: row[2:] for row in requests[1:]}[BAR_LAVAL, "clé RPVA"] == (2, 20.5, 8, 1)
    emergency = list(workbook["Cartes d'urgence"].iter_rows(values_only=True))
    assert emergency[0] == ("Organisation", "Type", "En cours", "À récupérer", "En retard")
    assert emergency[-1] == ("Toutes organisations", "Tous types", 2, 1, 1)
    definitions = workbook["Définitions"]
    assert definitions["A2"].value == "Jour de référence"
    assert definitions["B2"].value.date() == TODAY
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_xlsx_needs_an_output_file(cli, inventory):
    result = cli("stats", "--format", "xlsx", operator="lecture")
    assert result.code == 2
    assert result.out == ""
    assert result.err == "Le format xlsx s'écrit dans un fichier : précisez « --sortie FICHIER ».\n"


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_output_file_for_text_forms(cli, inventory, folder, fmt):
    path = folder / f"stats.{fmt}"
    path.write_text("ancien contenu")
    result = cli("stats", "--format", fmt, "--sortie", str(path), operator="lecture")
    assert result.code == 0, result.err
    shown = cli("stats", "--format", fmt, operator="lecture").out
    encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
    assert path.read_text(encoding=encoding) == shown
    if fmt == "csv":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM for French Excel
    assert list(folder.iterdir()) == [path]


def test_unwritable_output(cli, inventory, folder):
    missing = folder / "absent" / "stats.xlsx"
    result = cli("stats", "--format", "xlsx", "--sortie", str(missing), operator="lecture")
    assert result.code == 1
    assert result.out == ""
    assert result.err == (
        f"Impossible d'écrire {missing} : dossier introuvable. Rien n'a été écrit.\n"
    )
    directory = folder / "dossier"
    directory.mkdir()
    result = cli("stats", "--format", "json", "--sortie", str(directory), operator="lecture")
    assert result.code == 1
    assert result.err == (
        f"Impossible d'écrire {directory} : c'est un dossier. Rien n'a été écrit.\n"
    )
    assert list(folder.iterdir()) == [directory]  # no temporary file left
    assert list(directory.iterdir()) == []


def test_a_failed_write_leaves_the_old_file(cli, inventory, folder, monkeypatch):
    path = folder / "stats.xlsx"
    path.write_bytes(b"ancien classeur")

    def half_written(statistics, target):
        target.write_bytes(b"PK\x03\x04 moitie")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(stats_cmd, "write_xlsx", half_written)
    result = cli("stats", "--format", "xlsx", "--sortie", str(path), operator="lecture")
    assert result.code == 1
    assert "plus de place sur le disque" in result.err
    assert path.read_bytes() == b"ancien classeur"
    assert list(folder.iterdir()) == [path]


def test_operators(cli, engine, inventory):
    # Every role implies READER: any registered, active operator may read statistics.
    assert all(OperatorRole.READER in implied for implied in operators.IMPLIED.values())
    for login in ("lecture", "gestion", "remise", "admin"):
        assert cli("stats", operator=login).code == 0
    result = cli("stats", operator="inconnu")
    assert result.code == 1
    assert "Opérateur inconnu ou inactif : « inconnu »" in result.err
    assert result.out == ""
    with db.write_session(engine) as session:
        operator = operators.find(session, "lecture")
        assert isinstance(operator, Operator)
        operator.active = False
        session.add(operator)
    result = cli("stats", operator="lecture")
    assert result.code == 1 and "Opérateur inconnu ou inactif" in result.err


def test_unknown_operator_writes_no_file(cli, inventory, folder):
    path = folder / "stats.json"
    result = cli("stats", "--format", "json", "--sortie", str(path), operator="inconnu")
    assert result.code == 1
    assert list(folder.iterdir()) == []


def test_the_stats_command_does_without_sqlalchemy():
    code = (
        "import sys, cartes.cli.stats_cmd; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'sqlmodel'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
