"""The record of one credential (``cartes.ops.records``), on SQLite and PostgreSQL: what
it shows, the actions it offers with their roles, and each action in its own
transaction, refused with nothing written when it must be."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from cartes.ops import records
from cartes.ops.records import ActionKind
from cartes.settings import Settings
from cartes.workspace import Workspace
from fixtures.pki import write_test_pki
from inventaire import db, lifecycle
from inventaire.enums import AlertLevel, CertificateRole, CredentialState, OperatorRole
from inventaire.errors import (
    InvalidValue,
    NotFound,
    PermissionDenied,
    StaleVersion,
    TransitionRefused,
)
from inventaire.models import Certificate, Credential, JournalEntry
from inventaire.plan import Replacement
from tests.conftest import get_operator
from tests.factories import add_credential, credential_state, journal_count
from tests.test_service import der, trust_settings

S = CredentialState


@pytest.fixture
def workspaces(database, clock) -> Iterator:
    made: list[Workspace] = []

    def make(login: str = "admin", **settings) -> Workspace:
        workspace = Workspace(
            settings=Settings(database_url=database.url, busy_timeout_s=2, **settings),
            clock=clock,
            operator_login=login,
        )
        made.append(workspace)
        return workspace

    yield make
    for workspace in made:
        workspace.close()


def expiring_in(clock, days: int) -> dt.date:
    return clock.now().date() + dt.timedelta(days=days)


def test_the_record_shows_the_credential_its_holder_and_its_renewal(database, clock, workspaces):
    # An RPVA key expiring in 50 days: lead 45 days, so order-by is already passed and a
    # replacement ordered today arrives after the expiry.
    credential_id = add_credential(database.engine, clock.now(), expires_on=expiring_in(clock, 50))
    record = records.load_record(workspaces(), credential_id)

    assert record.id == credential_id
    assert record.state is S.ACTIVE
    assert record.holder.first_name == "Claire"
    assert record.holder.email.startswith("claire.martin")
    assert record.holder.organisation == "Barreau d'Angers"
    assert record.expires_on == expiring_in(clock, 50)
    renewal = record.renewal
    assert renewal is not None
    assert renewal.days_left == 50
    lead = workspaces().renewal()
    assert renewal.order_by == record.expires_on - dt.timedelta(
        days=lead.lead_days[record.kind] + lead.margin_days
    )
    assert renewal.order_late
    assert renewal.replacement is Replacement.NONE
    assert renewal.gap_days == max(0, lead.lead_days[record.kind] - 50)
    assert renewal.due_level in (AlertLevel.ORDER_NOW, AlertLevel.GAP)
    assert record.mute is None
    # The history: the holder's creation and the credential's, newest first.
    assert [line.action for line in record.history] == ["support créé", "titulaire créé"]


def test_the_actions_are_the_lifecycle_s_with_their_roles(database, clock, workspaces):
    credential_id = add_credential(database.engine, clock.now())
    record = records.load_record(workspaces(), credential_id)

    transitions = {a.target: a.role for a in record.actions if a.kind is ActionKind.TRANSITION}
    assert set(transitions) == set(lifecycle.TRANSITIONS[S.ACTIVE])
    assert all(role is OperatorRole.MANAGER for role in transitions.values())
    kinds = [a.kind for a in record.actions]
    assert ActionKind.ORDER_REPLACEMENT in kinds and ActionKind.MUTE in kinds
    assert ActionKind.REVALIDATE not in kinds  # no certificate to validate


def test_an_unknown_credential_is_not_found(workspaces):
    with pytest.raises(NotFound) as refused:
        records.load_record(workspaces(), 999_999)
    assert refused.value.code == "support_introuvable"


def test_a_transition_is_made_and_journaled(database, clock, workspaces):
    credential_id = add_credential(database.engine, clock.now())
    workspace = workspaces(login="gestion")
    before = records.load_record(workspace, credential_id)

    moved = records.transition(
        workspace, credential_id, S.SUSPENDED, "  égarée au tribunal ", expected_version=1
    )

    assert (moved.source, moved.target) == (S.ACTIVE, S.SUSPENDED)
    assert credential_state(database.engine, credential_id) == (S.SUSPENDED, moved.version)
    after = records.load_record(workspace, credential_id)
    assert after.version == moved.version > before.version
    newest = after.history[0]
    assert (newest.action, newest.operator, newest.reason) == (
        "changement d'état",
        "gestion",
        "égarée au tribunal",
    )
    assert "état : active → suspendue" in newest.changes
    # From SUSPENDED, the lifecycle's moves: ACTIVE again among them.
    targets = {a.target for a in after.actions if a.kind is ActionKind.TRANSITION}
    assert targets == set(lifecycle.TRANSITIONS[S.SUSPENDED])


@pytest.mark.parametrize(
    ("login", "target", "version", "error"),
    [
        ("gestion", S.SUSPENDED, 0, StaleVersion),  # changed since it was read
        ("gestion", S.RECEIVED, None, TransitionRefused),  # the lifecycle forbids it
        ("lecture", S.SUSPENDED, None, PermissionDenied),  # a reader may not
    ],
)
def test_a_refused_transition_changes_nothing(
    database, clock, workspaces, login, target, version, error
):
    credential_id = add_credential(database.engine, clock.now())
    entries = journal_count(database.engine)
    with pytest.raises(error):
        records.transition(
            workspaces(login=login), credential_id, target, "motif", expected_version=version
        )
    assert credential_state(database.engine, credential_id) == (S.ACTIVE, 1)
    assert journal_count(database.engine) == entries


def test_an_empty_reason_is_refused(database, clock, workspaces):
    credential_id = add_credential(database.engine, clock.now())
    with pytest.raises(InvalidValue) as refused:
        records.transition(workspaces(), credential_id, S.SUSPENDED, "   ")
    assert refused.value.code == "motif_obligatoire"
    assert credential_state(database.engine, credential_id) == (S.ACTIVE, 1)


def test_a_replacement_is_ordered_received_and_handed_over(database, clock, workspaces):
    old_id = add_credential(database.engine, clock.now(), expires_on=expiring_in(clock, 60))
    manager = workspaces(login="gestion")

    request_id = records.order_replacement(
        manager, old_id, reason="expire bientôt", expected_version=1
    )

    old = records.load_record(manager, old_id)
    assert [(r.id, r.state) for r in old.replacements] == [(request_id, S.REQUESTED)]
    assert old.renewal is not None and old.renewal.replacement is Replacement.REQUESTED
    assert ActionKind.ORDER_REPLACEMENT not in [a.kind for a in old.actions]
    request = records.load_record(manager, request_id)
    assert request.is_request and request.replaces is not None and request.replaces.id == old_id
    steps = {(a.kind, a.target, a.role) for a in request.actions}
    assert steps >= {
        (ActionKind.RECEIVE, S.RECEIVED, OperatorRole.MANAGER),
        (ActionKind.CANCEL, S.CANCELLED, OperatorRole.MANAGER),
    }
    assert not any(a.kind is ActionKind.TRANSITION for a in request.actions)

    received = records.receive(
        manager, request_id, serial="rpva-777", reason="colis reçu", expected_version=1
    )
    assert received.target is S.RECEIVED
    request = records.load_record(manager, request_id)
    assert request.serial == "RPVA-777" and request.received_on == clock.now().date()
    assert request.history[0].reason == "colis reçu"
    hand_over = next(a for a in request.actions if a.kind is ActionKind.HAND_OVER)
    assert hand_over.role is OperatorRole.ISSUER

    # A manager is not habilitated: refused, nothing changes.
    with pytest.raises(PermissionDenied):
        records.hand_over(manager, request_id, reason="au guichet")
    assert credential_state(database.engine, request_id)[0] is S.RECEIVED

    done = records.hand_over(
        workspaces(login="remise"),
        request_id,
        reason="au guichet",
        old_returned=True,
        expected_version=request.version,
    )
    assert done.target is S.ACTIVE and done.returned_id == old_id
    assert credential_state(database.engine, old_id)[0] is S.RETURNED
    assert records.load_record(manager, old_id).renewal is None


def test_a_request_is_cancelled_with_its_reason(database, clock, workspaces):
    old_id = add_credential(database.engine, clock.now())
    manager = workspaces(login="gestion")
    request_id = records.order_replacement(manager, old_id, reason="renouvellement")
    with pytest.raises(StaleVersion):
        records.cancel(manager, request_id, reason="erreur", expected_version=7)
    moved = records.cancel(manager, request_id, reason="commande en double", expected_version=1)
    assert moved.target is S.CANCELLED
    record = records.load_record(manager, request_id)
    assert record.history[0].action == "demande annulée"
    assert record.history[0].reason == "commande en double"


def test_alerts_are_muted_and_let_go_again(database, clock, workspaces):
    credential_id = add_credential(database.engine, clock.now())
    manager = workspaces(login="gestion")
    with pytest.raises(PermissionDenied):
        records.mute(workspaces(login="lecture"), credential_id, "départ")

    records.mute(manager, credential_id, "départ à la retraite")

    record = records.load_record(manager, credential_id)
    assert record.mute is not None
    assert (record.mute.reason, record.mute.operator) == ("départ à la retraite", "gestion")
    assert ActionKind.UNMUTE in [a.kind for a in record.actions]
    assert record.history[0].action == "alertes coupées"

    records.unmute(manager, credential_id, "retour de congé")
    record = records.load_record(manager, credential_id)
    assert record.mute is None
    assert (record.history[0].action, record.history[0].reason) == (
        "alertes rétablies",
        "retour de congé",
    )


@pytest.fixture(scope="module")
def pki_files(test_pki, tmp_path_factory) -> dict[str, Path]:
    return write_test_pki(test_pki, tmp_path_factory.mktemp("record-pki"))


def store(engine, credential_id: int, labelled: dict[str, bytes], now: dt.datetime) -> list[int]:
    ids = []
    with db.write_session(engine) as session:
        for label, content in labelled.items():
            row = Certificate(
                credential_id=credential_id,
                der=content,
                fingerprint_sha256=hashlib.sha256(content).hexdigest(),
                issuer="CN=test",
                serial_number=label,
                subject=f"CN={label}",
                not_before=now,
                not_after=now + dt.timedelta(days=300),
                role=CertificateRole.AUTHENTICATION,
                last_status="ancien",
                last_validated_at=now,
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
    return ids


def crl_files(files: dict[str, Path]) -> list[Path]:
    families = ("agent", "expert", "avocat")
    return [files[f"{name}.crl"] for f in families for name in (f, f"{f}_racine")]


def test_revalidation_records_the_status_of_each_certificate(
    database, clock, workspaces, pki_files, tmp_path
):
    credential_id = add_credential(database.engine, clock.now())
    other_id = add_credential(database.engine, clock.now())
    valid, revoked = store(
        database.engine,
        credential_id,
        {
            "valide": der(pki_files, "agent-1-auth.pem"),
            "revoque": der(pki_files, "cas-revoque.pem"),
        },
        clock.now(),
    )
    (untouched,) = store(
        database.engine, other_id, {"autre": der(pki_files, "agent-1-sign.pem")}, clock.now()
    )
    settings = trust_settings(pki_files, tmp_path / "lcr", crls=crl_files(pki_files))
    workspace = workspaces(login="lecture", trust=settings)
    assert ActionKind.REVALIDATE in [
        a.kind for a in records.load_record(workspace, credential_id).actions
    ]

    counts = records.revalidate(workspace, credential_id)

    assert (counts.checked, counts.valid, counts.invalid) == (2, 1, 1)
    shown = {c.id: c.status for c in records.load_record(workspace, credential_id).certificates}
    assert shown == {valid: "valide", revoked: "invalide"}
    with db.read_session(database.engine) as session:
        other = session.get(Certificate, untouched)
        assert other is not None and other.last_status == "ancien"  # another credential's


def test_revalidation_without_trust_anchor_is_refused(database, clock, workspaces, pki_files):
    credential_id = add_credential(database.engine, clock.now())
    store(database.engine, credential_id, {"a": der(pki_files, "agent-1-auth.pem")}, clock.now())
    with pytest.raises(InvalidValue) as refused:
        records.revalidate(workspaces(), credential_id)
    assert refused.value.code == "revalidation_sans_ancre"


def test_a_change_by_someone_else_is_seen_on_reload(database, clock, workspaces):
    credential_id = add_credential(database.engine, clock.now())
    workspace = workspaces()
    first = records.load_record(workspace, credential_id)
    with db.write_session(database.engine) as session:
        lifecycle.transition(
            session,
            credential_id=credential_id,
            target=S.LOST,
            operator=get_operator(database.engine, "gestion"),
            reason="perdue",
            now=clock.now(),
        )
    with pytest.raises(StaleVersion):
        records.transition(
            workspace, credential_id, S.SUSPENDED, "x", expected_version=first.version
        )
    with db.read_session(database.engine) as session:
        credential = session.get(Credential, credential_id)
        assert credential is not None and credential.state is S.LOST
        transitions = session.execute(
            sa.select(sa.func.count())
            .select_from(JournalEntry)
            .where(JournalEntry.action == "support.transition")  # type: ignore[arg-type]
        ).scalar_one()
    assert transitions == 1  # the other session's only
    assert records.load_record(workspace, credential_id).state is S.LOST
