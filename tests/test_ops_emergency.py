"""``cartes.ops.emergency`` on both databases: issuing, the register, taking back, the
holder as the form shows it, and the operator's rights."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from cartes.ops import emergency as emergency_ops
from cartes.settings import Settings
from cartes.workspace import Workspace
from inventaire import credentials, db, operators, organisations
from inventaire.enums import CardModel, CredentialKind, CredentialState, HolderRole
from inventaire.errors import Conflict, PermissionDenied, UnknownOperator
from inventaire.models import Credential, EmergencyIssuance, JournalEntry
from tests.conftest import NOW
from tests.factories import journal_count

S = CredentialState
JUDGE = "juliette.bernard@justice.fr"


@pytest.fixture
def make_workspace(database, clock):
    made = []

    def make(login: str = "remise") -> Workspace:
        workspace = Workspace(
            settings=Settings(database_url=database.url, busy_timeout_s=2),
            clock=clock,
            operator_login=login,
        )
        made.append(workspace)
        return workspace

    yield make
    for workspace in made:
        workspace.close()


def holder_with_requests(engine) -> tuple[int, list[int]]:
    """A judge with a pending new-model request, a received one, a cancelled one, and an
    expert card request (only the first two may be bridged)."""
    with db.write_session(engine) as session:
        admin = operators.find(session, "admin")
        holder = credentials.create_holder(
            session,
            last_name="Bernard",
            first_name="Juliette",
            email=JUDGE,
            role=HolderRole.MAGISTRATE,
            organisation_id=organisations.find(session, "TJ Angers").id,
            operator=admin,
            now=NOW,
        )
        ids = []
        for state, kind, model in [
            (S.REQUESTED, CredentialKind.AGENT_CARD, CardModel.NEW),
            (S.RECEIVED, CredentialKind.AGENT_CARD, CardModel.NEW),
            (S.CANCELLED, CredentialKind.AGENT_CARD, CardModel.NEW),
            (S.REQUESTED, CredentialKind.EXPERT_CARD, None),
        ]:
            credential = credentials.create_credential(
                session,
                holder_id=holder.id,
                kind=kind,
                state=state,
                model=model,
                serial=f"REQ-{len(ids)}" if state is not S.REQUESTED else None,
                operator=admin,
                now=NOW,
            )
            ids.append(credential.id)
        return holder.id, ids


def test_issue_list_and_give_back(database, make_workspace):
    workspace = make_workspace()
    _holder, requests = holder_with_requests(database.engine)
    issued = emergency_ops.issue(
        workspace,
        holder_email=" Juliette.Bernard@justice.fr ",
        serial="old 42",
        reason="nouvelle carte en retard",
        request_id=requests[0],
    )
    assert issued.serial == "OLD 42" and issued.holder_email == JUDGE
    assert issued.return_due_on == NOW.date() + dt.timedelta(days=90)
    [line] = emergency_ops.register(workspace)
    assert (line.id, line.outstanding, line.request_id) == (issued.issuance_id, True, requests[0])
    assert emergency_ops.register(workspace, overdue_only=True) == []

    returned = emergency_ops.give_back(
        workspace, issuance_id=issued.issuance_id, reason="rendue au SAR"
    )
    assert returned.returned_on == NOW.date() and returned.serial == "OLD 42"
    [line] = emergency_ops.register(workspace)
    assert not line.outstanding and line.returned_on == NOW.date()
    with db.read_session(database.engine) as session:
        assert session.get(Credential, issued.credential_id).state is S.RETURNED
        entry = session.execute(
            sa.select(JournalEntry).order_by(JournalEntry.seq.desc()).limit(1)
        ).scalar_one()
    assert (entry.action, entry.reason, entry.operator) == (
        "urgence.restitution",
        "rendue au SAR",
        "remise",
    )


def test_refusals_write_nothing(database, make_workspace):
    _holder, requests = holder_with_requests(database.engine)
    before = journal_count(database.engine)
    with pytest.raises(PermissionDenied):
        emergency_ops.issue(
            make_workspace("gestion"),
            holder_email=JUDGE,
            serial="OLD-1",
            reason="urgence",
            request_id=requests[0],
        )
    workspace = make_workspace()
    emergency_ops.issue(
        workspace, holder_email=JUDGE, serial="OLD-1", reason="urgence", without_request=True
    )
    middle = journal_count(database.engine)
    with pytest.raises(Conflict) as refused:
        emergency_ops.issue(
            workspace, holder_email=JUDGE, serial="OLD-2", reason="encore", without_request=True
        )
    assert refused.value.code == "urgence_en_cours"
    with pytest.raises(PermissionDenied):
        emergency_ops.give_back(make_workspace("lecture"), issuance_id=1)
    assert journal_count(database.engine) == middle == before + 1
    with db.read_session(database.engine) as session:
        assert (
            session.execute(sa.select(sa.func.count()).select_from(EmergencyIssuance)).scalar_one()
            == 1
        )


def test_holder_for_issuance(database, make_workspace):
    holder_id, requests = holder_with_requests(database.engine)
    workspace = make_workspace("lecture")
    found = emergency_ops.holder_for_issuance(workspace, "JULIETTE.bernard@justice.fr")
    assert found is not None and found.id == holder_id
    assert (found.name, found.organisation, found.active) == ("Juliette Bernard", "TJ Angers", True)
    assert [(r.id, r.state) for r in found.requests] == [
        (requests[0], S.REQUESTED),
        (requests[1], S.RECEIVED),
    ]
    assert emergency_ops.holder_for_issuance(workspace, "personne@nulle.part") is None
    with pytest.raises(UnknownOperator):
        emergency_ops.holder_for_issuance(make_workspace("inconnu"), JUDGE)
