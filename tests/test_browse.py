"""The inventory a page at a time (``inventaire.browse``): every sort in both directions
pages through every row exactly once, filters select what they say, and each row's
urgency and order-by date follow the renewal rules."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from inventaire import browse, db
from inventaire.browse import InventoryQuery, Renewal, SortKey, Urgency
from inventaire.models import Credential, CredentialKind, CredentialState
from tests.inventory_support import TODAY, generated, holder_with, read

K, S = CredentialKind, CredentialState
RENEWAL = Renewal(
    lead_days={K.RPVA_KEY: 45, K.AGENT_CARD: 60, K.EXPERT_CARD: 30, K.TEMPORARY_CARD: 15},
    margin_days=15,
)


def day(offset: int) -> dt.date:
    return TODAY + dt.timedelta(days=offset)


def every_page(engine, query: InventoryQuery, size: int) -> list[browse.InventoryRow]:
    rows: list[browse.InventoryRow] = []
    with read(engine) as connection:
        while True:
            chunk = browse.page(
                connection, query, today=TODAY, renewal=RENEWAL, offset=len(rows), limit=size
            )
            assert len(chunk) <= size
            rows += chunk
            if len(chunk) < size:
                return rows


def _key(sort: SortKey, row: browse.InventoryRow, descending: bool):
    """The documented order, written again in Python (unknown expiries last either way)."""
    if sort is SortKey.EXPIRY:
        unknown = row.expires_on is None
        ordinal = row.expires_on.toordinal() if row.expires_on else 0
        return (unknown, -ordinal if descending else ordinal, -row.id if descending else row.id)
    value = {
        SortKey.HOLDER: (row.last_name, row.first_name, row.holder_id),
        SortKey.KIND: (row.kind.value,),
        SortKey.STATE: (row.state.value,),
        SortKey.ORGANISATION: (row.organisation,),
        SortKey.ID: (),
    }[sort]
    return (value, row.id)


@pytest.fixture
def inventory(engine, clock):
    generated(engine, 120, clock.now(), seed=11)
    with read(engine) as connection:
        return {row[0] for row in connection.rows("SELECT id FROM credential", {})}


@pytest.mark.parametrize("sort", list(SortKey))
def test_every_sort_pages_through_every_row_once(engine, inventory, sort):
    for descending in (False, True):
        query = InventoryQuery(sort=sort, descending=descending)
        rows = every_page(engine, query, size=17)
        assert [row.id for row in rows].count(rows[0].id) == 1
        assert sorted(row.id for row in rows) == sorted(inventory)
        if sort is SortKey.EXPIRY:
            expected = sorted(rows, key=lambda row: _key(sort, row, descending))
        else:
            # Byte order of the names, as both test databases compare (C collation).
            expected = sorted(rows, key=lambda row: _key(sort, row, descending), reverse=descending)
        assert [row.id for row in rows] == [row.id for row in expected], (sort, descending)


def test_filters_select_what_they_say(engine, inventory):
    with read(engine) as connection:
        total = browse.count(connection, InventoryQuery(), today=TODAY)
    assert total == len(inventory)
    query = InventoryQuery(
        kinds=(K.RPVA_KEY, K.AGENT_CARD), states=(S.ACTIVE,), expires_within=90, text="a"
    )
    rows = every_page(engine, query, size=10)
    assert rows and all(row.kind in (K.RPVA_KEY, K.AGENT_CARD) for row in rows)
    assert all(row.state is S.ACTIVE for row in rows)
    assert all(row.expires_on is not None and TODAY <= row.expires_on <= day(90) for row in rows)
    with read(engine) as connection:
        assert browse.count(connection, query, today=TODAY) == len(rows)
        assert browse.count(connection, query, today=TODAY, at_most=3) == min(3, len(rows))
        assert browse.count(connection, InventoryQuery(), today=TODAY, at_most=5) == 5
        # Kinds and states alone are counted from the tally: the same as the rows.
        only = InventoryQuery(kinds=(K.RPVA_KEY,), states=(S.ACTIVE, S.REQUESTED))
        counted = browse.count(connection, only, today=TODAY)
    assert counted == len(every_page(engine, only, size=50)) > 0
    with read(engine) as connection:
        beyond = browse.page(
            connection, query, today=TODAY, renewal=RENEWAL, offset=len(rows), limit=10
        )
    assert beyond == []


def test_urgency_and_order_by(engine, clock):
    now = clock.now()
    cases = {
        "expired": (K.RPVA_KEY, S.ACTIVE, day(-1)),
        "gap": (K.RPVA_KEY, S.ACTIVE, day(44)),  # fewer than 45 days left
        "late": (K.RPVA_KEY, S.SUSPENDED, day(50)),  # order-by = day(-10)
        "late_today": (K.RPVA_KEY, S.ACTIVE, day(60)),  # order-by is today
        "in_time": (K.RPVA_KEY, S.ACTIVE, day(61)),
        "gap_ordered": (K.AGENT_CARD, S.ACTIVE, day(10)),
        "late_renewed": (K.EXPERT_CARD, S.ACTIVE, day(40)),
        "returned": (K.RPVA_KEY, S.RETURNED, day(-30)),
        "requested": (K.RPVA_KEY, S.REQUESTED, None),
    }
    ids = {}
    for number, (name, (kind, state, expires)) in enumerate(cases.items()):
        _, (ids[name],) = holder_with(
            engine,
            now,
            last_name=f"Cas{number}",
            first_name=name,
            email=f"{name}@x.test",
            cards=[(kind, state, f"S{number}" if state is not S.REQUESTED else None, expires)],
        )
    # Replacements: one requested for the agent card, one in service for the expert card.
    for name, state in (("gap_ordered", S.REQUESTED), ("late_renewed", S.ACTIVE)):
        kind = cases[name][0]
        _, (replacement,) = holder_with(
            engine,
            now,
            last_name="Remplace",
            first_name=name,
            email=f"r.{name}@x.test",
            cards=[(kind, state, None if state is S.REQUESTED else "R" + name, day(900))],
        )
        with db.write_session(engine) as session:
            session.execute(
                sa.update(Credential)
                .where(Credential.id == replacement)
                .values(replaces_id=ids[name])
            )
    with read(engine) as connection:
        rows = browse.page(
            connection,
            InventoryQuery(sort=SortKey.ID),
            today=TODAY,
            renewal=RENEWAL,
            offset=0,
            limit=100,
        )
    by_id = {row.id: row for row in rows}
    urgency = {name: by_id[id_].urgency for name, id_ in ids.items()}
    assert urgency == {
        "expired": Urgency.EXPIRED,
        "gap": Urgency.GAP,
        "late": Urgency.ORDER_LATE,
        "late_today": Urgency.ORDER_LATE,
        "in_time": Urgency.NONE,
        "gap_ordered": Urgency.NONE,
        "late_renewed": Urgency.NONE,
        "returned": Urgency.NONE,
        "requested": Urgency.NONE,
    }
    assert by_id[ids["late"]].order_by == day(50 - 45 - 15)
    assert by_id[ids["in_time"]].order_by == day(1)
    assert by_id[ids["expired"]].days_left == -1
    assert by_id[ids["returned"]].order_by is None
    assert by_id[ids["requested"]].order_by is None and by_id[ids["requested"]].days_left is None


def test_a_count_can_be_interrupted_from_another_thread(database):
    """The inventory screen stops a count whose answer is no longer wanted: the read
    fails with QueryInterrupted, and the connection serves the next one."""
    import threading

    from inventaire import dbapi
    from inventaire.errors import QueryInterrupted

    with dbapi.connect(database.url) as connection:
        # A statement long enough to be caught running: a recursive count to 10⁷.
        slow = """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n
                  WHERE i < 10000000) SELECT count(*) FROM n"""
        done = threading.Event()

        def keep_interrupting() -> None:  # until the statement has been caught running
            while not done.wait(0.05):
                connection.interrupt()

        stopper = threading.Thread(target=keep_interrupting)
        stopper.start()
        try:
            with pytest.raises(QueryInterrupted):
                list(connection.rows(slow, {}))
        finally:
            done.set()
            stopper.join()
        assert next(iter(connection.rows("SELECT 1", {})))[0] == 1
