"""``cartes.ops.alerts`` on both databases: the outbox a page at a time, the preview
(nothing recorded), sending now to a real SMTP server (aiosmtpd on 127.0.0.1) with its
progress and the service's lease, a test mail, and the operator's rights."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from cartes.ops import alerts as alerts_ops
from cartes.settings import Settings
from cartes.workspace import Workspace
from inventaire import db, lease
from inventaire.enums import DigestState
from inventaire.errors import InventaireError, PermissionDenied
from inventaire.models import Digest
from tests.conftest import NOW
from tests.factories import add_credential

TODAY = NOW.date()
BAR = "ordre@avocats.test"


@pytest.fixture
def make_workspace(database, clock, smtp_server):
    made = []

    def make(login: str = "remise") -> Workspace:
        workspace = Workspace(
            settings=Settings(
                database_url=database.url,
                busy_timeout_s=2,
                smtp=smtp_server.settings(),
                alerts={"copies": {"rpva_key": [BAR]}},
            ),
            clock=clock,
            operator_login=login,
        )
        made.append(workspace)
        return workspace

    yield make
    for workspace in made:
        workspace.close()


def digests(engine) -> int:
    with db.read_session(engine) as session:
        return session.execute(sa.select(sa.func.count()).select_from(Digest)).scalar_one()


def test_preview_then_send_now_with_progress(database, make_workspace, smtp_server):
    for days in (10, 20, 30):
        add_credential(database.engine, NOW, expires_on=TODAY + dt.timedelta(days=days))
    reader = make_workspace("lecture")
    preview = alerts_ops.preview(reader)
    assert preview.day == TODAY and len(preview.mails) == 4 and preview.alerts == 6
    bar_mail = next(mail for mail in preview.mails if mail.content.recipient == BAR)
    assert len(bar_mail.content.items) == 3 and "RPVA" in bar_mail.text
    assert bar_mail.subject and digests(database.engine) == 0  # nothing recorded
    with pytest.raises(PermissionDenied):
        alerts_ops.send_now(reader)

    steps = []
    report = alerts_ops.send_now(
        make_workspace(), face="test", progress=lambda done, total: steps.append((done, total))
    )
    assert (report.planned, report.sent, report.failed, report.waiting) == (6, 4, 0, 0)
    assert report.ok and steps == [(n, 4) for n in range(5)]
    assert len(smtp_server.wait_for(4)) == 4
    overview = alerts_ops.outbox_overview(reader)
    assert overview.counts[DigestState.SENT] == 4 and overview.total == 4
    assert [line.id for line in overview.digests] == sorted(
        (line.id for line in overview.digests), reverse=True
    )
    assert {line.alerts for line in overview.digests} == {1, 3}
    # A page, and the next one.
    first = alerts_ops.outbox_overview(reader, limit=3)
    rest = alerts_ops.outbox_overview(reader, limit=3, before_id=first.digests[-1].id)
    assert [d.id for d in first.digests + rest.digests] == [d.id for d in overview.digests]
    assert alerts_ops.outbox_overview(reader, states=(DigestState.PENDING,)).digests == []
    # Nothing more is due: a second send mails nothing.
    again = alerts_ops.send_now(make_workspace())
    assert (again.planned, again.sent) == (0, 0)
    assert len(smtp_server.messages) == 4


def test_server_down_leaves_the_digests_waiting(database, make_workspace, smtp_server):
    add_credential(database.engine, NOW, expires_on=TODAY + dt.timedelta(days=10))
    smtp_server.stop()
    report = alerts_ops.send_now(make_workspace())
    assert report.error and report.sent == 0 and report.waiting == 2
    overview = alerts_ops.outbox_overview(make_workspace())
    assert overview.counts[DigestState.PENDING] == 2
    assert any(line.last_error for line in overview.digests)


def test_the_service_lease_is_respected(database, make_workspace, smtp_server):
    add_credential(database.engine, NOW, expires_on=TODAY + dt.timedelta(days=10))
    status = lease.acquire(
        database.engine,
        name=alerts_ops.LEASE,
        owner="cartes service autre-hote pid 1",
        host="autre-hote",
        pid=1,
        now=NOW,
        duration_s=600,
    )
    assert status.held
    with pytest.raises(InventaireError) as refused:
        alerts_ops.send_now(make_workspace())
    assert refused.value.code == "envoi_en_cours"
    assert digests(database.engine) == 0 and smtp_server.messages == []


def test_test_mail(make_workspace, smtp_server):
    result = alerts_ops.send_test(make_workspace("gestion"), "sar@justice.test")
    assert result.sent and result.error is None
    assert result.server == f"{smtp_server.host}:{smtp_server.port}"
    assert smtp_server.wait_for(1)[0].rcpt_tos == ("sar@justice.test",)
    smtp_server.stop()
    result = alerts_ops.send_test(make_workspace("gestion"), "sar@justice.test")
    assert not result.sent and result.error
    with pytest.raises(PermissionDenied):
        alerts_ops.send_test(make_workspace("lecture"), "sar@justice.test")
