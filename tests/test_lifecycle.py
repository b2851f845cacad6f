"""The credential lifecycle: every allowed and every refused transition, roles, versions."""

from __future__ import annotations

import itertools
import json

import pytest
from sqlmodel import Session

from inventaire import db, lifecycle
from inventaire.errors import (
    InvalidValue,
    PermissionDenied,
    StaleVersion,
    TransitionRefused,
)
from inventaire.models import Credential, CredentialState
from tests.conftest import get_operator
from tests.factories import add_credential, credential_state, journal_count, last_entry

S = CredentialState
ALLOWED = {
    (S.REQUESTED, S.RECEIVED),
    (S.REQUESTED, S.CANCELLED),
    (S.RECEIVED, S.ACTIVE),
    (S.RECEIVED, S.DAMAGED),
    (S.RECEIVED, S.CANCELLED),
    (S.ACTIVE, S.SUSPENDED),
    (S.ACTIVE, S.LOST),
    (S.ACTIVE, S.DAMAGED),
    (S.ACTIVE, S.RETURNED),
    (S.ACTIVE, S.REVOKED),
    (S.SUSPENDED, S.ACTIVE),
    (S.SUSPENDED, S.LOST),
    (S.SUSPENDED, S.REVOKED),
}
PAIRS = list(itertools.product(S, S))


def test_table_is_the_design_table():
    derived = {(s, t) for s, targets in lifecycle.TRANSITIONS.items() for t in targets}
    assert derived == ALLOWED
    assert {S.LOST, S.DAMAGED, S.RETURNED, S.REVOKED, S.CANCELLED} == lifecycle.FINAL_STATES


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{s}-{t}" for s, t in PAIRS])
def test_every_transition(engine, clock, source, target):
    credential_id = add_credential(engine, clock.now(), state=source)
    entries_before = journal_count(engine)
    operator = get_operator(engine, "remise")  # MANAGER and ISSUER: only the lifecycle decides
    clock.advance(hours=1)

    if (source, target) in ALLOWED:
        with db.write_session(engine) as session:
            lifecycle.transition(
                session,
                credential_id=credential_id,
                target=target,
                operator=operator,
                reason="contrôle",
                now=clock.now(),
            )
        assert credential_state(engine, credential_id) == (target, 2)
        assert journal_count(engine) == entries_before + 1
        entry = last_entry(engine)
        assert (entry.action, entry.entity_id, entry.operator) == (
            "support.transition",
            credential_id,
            "remise",
        )
        assert json.loads(entry.before)["state"] == source.value
        assert json.loads(entry.after)["state"] == target.value
    else:
        with pytest.raises(TransitionRefused), db.write_session(engine) as session:
            lifecycle.transition(
                session,
                credential_id=credential_id,
                target=target,
                operator=operator,
                reason="contrôle",
                now=clock.now(),
            )
        assert credential_state(engine, credential_id) == (source, 1)
        assert journal_count(engine) == entries_before


def _transition(engine, clock, credential_id, target, login, **kwargs):
    with db.write_session(engine) as session:
        return lifecycle.transition(
            session,
            credential_id=credential_id,
            target=target,
            operator=get_operator(engine, login),
            reason=kwargs.pop("reason", "motif"),
            now=clock.now(),
            **kwargs,
        )


def test_handover_needs_a_habilitated_operator(engine, clock):
    credential_id = add_credential(engine, clock.now(), state=S.RECEIVED)
    for login in ("gestion", "admin", "lecture"):
        with pytest.raises(PermissionDenied):
            _transition(engine, clock, credential_id, S.ACTIVE, login)
    assert credential_state(engine, credential_id) == (S.RECEIVED, 1)
    credential = _transition(engine, clock, credential_id, S.ACTIVE, "remise")
    assert credential.handed_over_on == clock.now().date()


def test_reader_cannot_change_anything(engine, clock):
    credential_id = add_credential(engine, clock.now(), state=S.ACTIVE)
    with pytest.raises(PermissionDenied):
        _transition(engine, clock, credential_id, S.SUSPENDED, "lecture")
    assert credential_state(engine, credential_id) == (S.ACTIVE, 1)


def test_reason_is_mandatory(engine, clock):
    credential_id = add_credential(engine, clock.now(), state=S.ACTIVE)
    with pytest.raises(InvalidValue):
        _transition(engine, clock, credential_id, S.SUSPENDED, "gestion", reason="   ")
    assert credential_state(engine, credential_id) == (S.ACTIVE, 1)


def test_receipt_records_the_day(engine, clock):
    credential_id = add_credential(engine, clock.now(), state=S.REQUESTED)
    credential = _transition(engine, clock, credential_id, S.RECEIVED, "gestion")
    assert credential.received_on == clock.now().date()


def test_stale_expected_version_is_refused(engine, clock):
    credential_id = add_credential(engine, clock.now(), state=S.ACTIVE)
    _transition(engine, clock, credential_id, S.SUSPENDED, "gestion", expected_version=1)
    entries = journal_count(engine)
    with pytest.raises(StaleVersion):
        # Someone read version 1, then the card was suspended: their change must not land.
        _transition(engine, clock, credential_id, S.LOST, "gestion", expected_version=1)
    assert credential_state(engine, credential_id) == (S.SUSPENDED, 2)
    assert journal_count(engine) == entries


def test_concurrent_update_of_a_read_credential_is_refused(engine, clock):
    """Two sessions read version 1; the second to write is refused by the version column."""
    credential_id = add_credential(engine, clock.now(), state=S.ACTIVE)
    with Session(engine, expire_on_commit=False) as first:
        stale = first.get(Credential, credential_id)
        assert stale is not None
        first.commit()  # the read is over; the object keeps the version it read
        _transition(engine, clock, credential_id, S.SUSPENDED, "gestion")
        stale.state = S.LOST
        first.add(stale)
        with pytest.raises(StaleVersion), db.translate_errors():
            first.commit()
    assert credential_state(engine, credential_id) == (S.SUSPENDED, 2)
