"""The text filter (``inventaire.search``): what a user typing in the filter box or
``cartes liste --recherche`` finds, the index triggers keep right, and the same answers
as a plain scan of the folded texts."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventaire import browse, db, search
from inventaire.models import Credential, CredentialKind, CredentialState, Holder
from inventaire.vocabulary import fold, holder_search_text
from tests.inventory_support import TODAY, generated, holder_with, import_rows, read

K, S = CredentialKind, CredentialState


def found(engine, text: str) -> set[int]:
    """The ids the inventory screen shows for ``text`` (every page), and checks that
    ``cartes liste --recherche`` and the count agree."""
    from inventaire.listing import CredentialFilter, list_credentials

    with read(engine) as connection:
        query = browse.InventoryQuery(text=text, sort=browse.SortKey.ID)
        renewal = browse.Renewal(lead_days=dict.fromkeys(K, 30), margin_days=10)
        shown = browse.page(connection, query, today=TODAY, renewal=renewal, offset=0, limit=10**6)
        listed = list_credentials(connection, CredentialFilter(text=text), today=TODAY)
        listed_ids = {line.id for line in listed}
        limited = list(
            list_credentials(connection, CredentialFilter(text=text), today=TODAY, limit=3)
        )
        counted = browse.count(connection, query, today=TODAY)
        bounded = browse.count(connection, query, today=TODAY, at_most=2)
    ids = {row.id for row in shown}
    assert len(ids) == len(shown) == counted
    assert listed_ids == ids
    assert {line.id for line in limited} <= ids and len(limited) == min(3, len(ids))
    assert bounded == min(counted, 2)
    return ids


@pytest.fixture
def dubois(engine, clock):
    _, ids = holder_with(
        engine,
        clock.now(),
        last_name="Dubois-Lefèvre",
        first_name="Élodie",
        email="e.dubois@avocats-saumur.test",
        organisation="Barreau de Saumur",
        cards=[(K.RPVA_KEY, S.ACTIVE, "RPVA-000123", TODAY + dt.timedelta(days=100))],
    )
    _, others = holder_with(
        engine,
        clock.now(),
        last_name="Martin",
        first_name="Jean",
        email="jean.martin@justice.test",
        organisation="TJ Angers",
        cards=[(K.AGENT_CARD, S.ACTIVE, "JUS-777", TODAY + dt.timedelta(days=10))],
    )
    return ids[0], others[0]


def test_names_with_or_without_accents_and_in_any_case(engine, dubois):
    card, _ = dubois
    for text in ("élodie", "ELODIE", "Elodie", "lefèvre", "LEFEVRE", "dubois-lef", "  élo  "):
        assert found(engine, text) == {card}, text


def test_email_serial_and_organisation(engine, dubois):
    card, other = dubois
    assert found(engine, "avocats-saumur") == {card}
    assert found(engine, "rpva-0001") == {card}
    assert found(engine, "000123") == {card}
    assert found(engine, "jus-7") == {other}
    # Organisation names, short or full, accents or not: "Tribunal judiciaire d'Angers".
    assert found(engine, "tj angers") == {other}
    assert found(engine, "JUDICIAIRE") == {other}
    assert found(engine, "saumur") == {card}


def test_every_word_must_match(engine, dubois):
    card, other = dubois
    assert found(engine, "dubois élodie") == {card}
    assert found(engine, "élodie martin") == set()
    assert found(engine, "martin jean angers") == {other}
    assert found(engine, "nobody") == set()


def test_short_words(engine, dubois):
    card, other = dubois
    assert found(engine, "é") == {card, other}  # "e" is in both
    assert found(engine, "el") == {card}
    assert found(engine, "jm") == set()
    assert found(engine, "tj") == {other}  # the organisation's short name
    assert found(engine, "jean ma") == {other}
    assert found(engine, "dubois 12") == {card}  # a short word among the serial's digits


def test_wildcards_are_plain_characters(engine, clock):
    _, ids = holder_with(
        engine,
        clock.now(),
        last_name="Under",
        first_name="Score",
        email="a_b%c@x.test",
        cards=[(K.EXPERT_CARD, S.ACTIVE, "X1", TODAY)],
    )
    holder_with(
        engine,
        clock.now(),
        last_name="Other",
        first_name="One",
        email="axbyc@x.test",
        cards=[(K.EXPERT_CARD, S.ACTIVE, "X2", TODAY)],
    )
    assert found(engine, "a_b%c") == set(ids)
    assert found(engine, "_b") == set(ids)
    assert found(engine, "b%") == set(ids)


def test_the_index_follows_every_change(engine, clock, dubois):
    card, other = dubois
    assert found(engine, "moreau") == set()
    # A holder renamed (names and e-mail, hence search text).
    with db.write_session(engine) as session:
        holder = session.execute(
            sa.select(Holder).where(Holder.email == "jean.martin@justice.test")
        ).scalar_one()
        holder.last_name, holder.email = "Moreau", "jean.moreau@justice.test"
        holder.search_text = holder_search_text("Moreau", "Jean", holder.email)
    assert found(engine, "martin") == set()
    assert found(engine, "moreau") == {other}
    # A serial changed (ORM update, version bumped).
    with db.write_session(engine) as session:
        credential = session.get(Credential, other)
        assert credential is not None
        credential.serial = "JUS-888"
    assert found(engine, "jus-777") == set()
    assert found(engine, "jus-888") == {other}
    # A credential moved to another holder.
    with db.write_session(engine) as session:
        credential = session.get(Credential, other)
        holder = session.execute(
            sa.select(Holder).where(Holder.last_name == "Dubois-Lefèvre")
        ).scalar_one()
        assert credential is not None
        credential.holder_id = holder.id  # type: ignore[assignment]
    assert found(engine, "moreau") == set()
    assert found(engine, "élodie") == {card, other}
    # A credential deleted.
    with db.write_session(engine) as session:
        session.execute(sa.text("DELETE FROM credential WHERE id = :id"), {"id": other})
    assert found(engine, "élodie") == {card}
    # Rows written by the import (bulk insert, then an update completing a request).
    row = {
        "nom": "Garnier",
        "prenom": "Zoé",
        "email": "zoe.garnier@avocat-laval.test",
        "role": "avocat",
        "organisation": "Barreau de Laval",
        "type": "cle_rpva",
        "etat": "demandee",
    }
    import_rows(engine, [row], clock.now())
    requested = found(engine, "garnier")
    assert len(requested) == 1 and found(engine, "rpva-55") == set()
    import_rows(engine, [row | {"numero_serie": "RPVA-5555", "etat": "recue"}], clock.now())
    assert found(engine, "rpva-55") == requested


def test_trigram_index_on_postgresql(database):
    if database.backend != "postgresql":
        pytest.skip("pg_trgm est propre à PostgreSQL")
    with database.engine.connect() as connection:
        assert (
            connection.exec_driver_sql(
                "SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'"
            ).scalar()
            == 1
        )
        assert (
            connection.exec_driver_sql(
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_credential_search_text'"
            ).scalar()
            == 1
        )


def test_sqlite_reads_the_trigram_index(engine, dubois):
    if engine.dialect.name != "sqlite":
        pytest.skip("plan de requête propre à SQLite")
    with read(engine) as connection:
        condition = search.condition(connection, "dubois", probe=None)
        assert condition is not None and condition.indexed
        plan = list(
            connection.rows("EXPLAIN QUERY PLAN " + condition.index_query, condition.params)
        )
    assert any("VIRTUAL TABLE INDEX 0:L" in row[-1] for row in plan), plan


def test_common_words_are_checked_row_by_row_for_a_page(engine, dubois):
    with read(engine) as connection:
        assert search.condition(connection, "dubois").indexed
        assert not search.condition(connection, "dubois", probe=1).indexed
        assert search.condition(connection, "  ") is None


@pytest.fixture
def small_inventory(engine, clock):
    generated(engine, 150, clock.now(), seed=3)
    holder_with(
        engine,
        clock.now(),
        last_name="Lefèvre",
        first_name="Anaïs",
        email="anais.lefevre@avocat-angers.test",
        cards=[(K.RPVA_KEY, S.ACTIVE, "RPVA-1", TODAY)],
    )
    with read(engine) as connection:
        rows = list(
            connection.rows(
                "SELECT c.id, h.search_text, c.serial, o.short_name, o.full_name "
                "FROM credential c JOIN holder h ON h.id = c.holder_id "
                "JOIN organisation o ON o.id = h.organisation_id",
                {},
            )
        )
    return rows


def _scan(rows, text: str) -> set[int]:
    """A plain folded scan: every word in the names and e-mail, serial or organisation."""
    words = fold(text).split()
    selected = set()
    for id_, search_text, serial, short_name, full_name in rows:
        fields = (search_text, (serial or "").lower(), fold(short_name), fold(full_name))
        if all(any(word in field for field in fields) for word in words):
            selected.add(id_)
    return selected


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_index_and_plain_scan_agree(engine, small_inventory, data):
    rows = small_inventory
    texts = [row[1] for row in rows] + [row[2] or "" for row in rows] + [row[4] for row in rows]
    source = data.draw(st.sampled_from(texts))
    start = data.draw(st.integers(0, max(len(source) - 1, 0)))
    length = data.draw(st.integers(1, 8))
    piece = source[start : start + length]
    extra = data.draw(st.sampled_from(["", " a", " DU", " é", " lefèvre", " zz", " ange"]))
    text = data.draw(st.sampled_from([piece, piece.upper()])) + extra
    assert found(engine, text) == _scan(rows, text)


def test_read_paths_do_without_sqlalchemy():
    code = (
        "import sys, cartes.cli.summary_cmd, inventaire.browse, inventaire.dashboard, "
        "inventaire.search, inventaire.listing; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'sqlmodel'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
