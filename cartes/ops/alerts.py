"""The alerts outbox: what it holds, what a send would mail, sending now, a test mail
(``cartes alertes`` and the « Alertes » screen)."""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cartes import dispatch
from cartes.workspace import Workspace
from inventaire import alerts, db, operators, outbox
from inventaire.alerts import AlertLine
from inventaire.clock import PARIS
from inventaire.enums import DigestState, OperatorRole
from inventaire.errors import InventaireError
from inventaire.outbox import DigestContent, DigestLine

__all__ = ["AlertLine", "DigestLine", "Outbox", "Preview", "PreviewMail", "ProbeResult"]

# The lease ``cartes service`` holds: a manual send takes it too, so that the two never
# send at the same time.
LEASE = "service"

# Called with (mails tried so far, mails due): a face shows how far a send is.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Outbox:
    """The outbox: how many digests in each state, and a page of them, the newest first."""

    counts: dict[DigestState, int]
    digests: list[DigestLine]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def outbox_overview(
    workspace: Workspace,
    *,
    states: tuple[DigestState, ...] = (),
    limit: int = 200,
    before_id: int | None = None,
) -> Outbox:
    """The digests of the outbox (a page, ``before_id`` for the next one) and the count of
    each state (READER)."""
    with db.read_session(workspace.engine) as session:
        operators.require(session, workspace.operator_login, OperatorRole.READER)
        return Outbox(
            counts=outbox.count_by_state(session),
            digests=outbox.list_digests(session, states=states, limit=limit, before_id=before_id),
        )


def alert_lines(
    workspace: Workspace,
    *,
    states: tuple[DigestState, ...] = (),
    recipient: str | None = None,
    limit: int | None = 200,
) -> list[AlertLine]:
    """Alerts of the outbox with the state of their e-mail, the newest first (READER)."""
    with db.read_session(workspace.engine) as session:
        operators.require(session, workspace.operator_login, OperatorRole.READER)
        return alerts.list_alerts(session, states=states, recipient=recipient, limit=limit)


def instant_of(workspace: Workspace, day: dt.date | None) -> dt.datetime:
    """Now, or the same time of day on ``day`` (Paris): a simulated day."""
    now = workspace.now()
    if day is None:
        return now
    local = now.astimezone(PARIS)
    return dt.datetime.combine(day, local.time(), tzinfo=PARIS).astimezone(dt.UTC)


@dataclass(frozen=True)
class PreviewMail:
    """One e-mail a send would mail now."""

    content: DigestContent
    subject: str
    mail: Any  # cartes.mail.Outgoing: the bytes that would be sent

    @property
    def text(self) -> str:
        """The plain-text part, as the recipient reads it."""
        body = self.mail.message.get_body(("plain",))
        return str(body.get_content()) if body is not None else ""


@dataclass(frozen=True)
class Preview:
    """What a send would mail on ``day``: nothing of it was recorded nor sent."""

    day: dt.date
    mails: tuple[PreviewMail, ...]

    @property
    def alerts(self) -> int:
        return sum(len(mail.content.items) for mail in self.mails)


def preview(workspace: Workspace, *, day: dt.date | None = None) -> Preview:
    """The mails a send would send now (or on ``day``), computed by the planner itself in a
    transaction then rolled back (READER)."""
    from cartes import mail

    settings = workspace.settings
    at = instant_of(workspace, day)
    today = at.astimezone(PARIS).date()
    with db.read_session(workspace.engine) as session:
        operators.require(session, workspace.operator_login, OperatorRole.READER)
    with db.dry_run_session(workspace.engine) as session:
        dispatch.plan_in(session, settings, now=at)
        ids = outbox.pending_ids(session, now=at, resend_after_s=settings.alerts.resend_after_s)
        contents = outbox.load(session, ids, today=today, leads=dispatch.lead_times(settings))
    return Preview(
        day=today,
        mails=tuple(
            PreviewMail(
                content=content,
                subject=mail.digest_subject(content),
                mail=mail.digest_mail(content, settings=settings),
            )
            for content in contents
        ),
    )


def owner_text(face: str) -> tuple[str, str, int]:
    """Who takes the lease: a name, this host, this process."""
    host, pid = socket.gethostname(), os.getpid()
    return f"{face} {host} pid {pid}", host, pid


_MAIL_EVENTS = frozenset({"courriel.envoye", "courriel.refuse", "courriel.reporte"})


def send_now(
    workspace: Workspace,
    *,
    day: dt.date | None = None,
    face: str = "cartes alertes envoyer",
    progress: Progress | None = None,
) -> dispatch.CycleReport:
    """Plan the due alerts and send the due digests now, as the service would (MANAGER).

    Takes the service's lease first, so that the two never send at once: refused with
    ``envoi_en_cours`` while another holds it. A mail server that cannot be reached ends
    the send with ``report.error`` and leaves the digests waiting.
    """
    from inventaire import lease

    engine = workspace.engine
    settings = workspace.settings
    at = instant_of(workspace, day)
    with db.read_session(engine) as session:
        operators.require(session, workspace.operator_login, OperatorRole.MANAGER)
    owner, host, pid = owner_text(face)
    holder: dict[str, Any] = {"name": LEASE, "owner": owner, "host": host, "pid": pid}
    lease_s = settings.service.lease_s
    status = lease.acquire(engine, **holder, now=workspace.now(), duration_s=lease_s)
    if not status.held:
        raise InventaireError(
            "envoi_en_cours",
            proprietaire=status.owner,
            jusqua=f"{status.expires_at.astimezone(PARIS):%d/%m/%Y %H:%M:%S}",
        )
    renewed_at = time.monotonic()

    def lease_lost() -> bool:
        # Checked between two mails: the lease must not lapse during a long send.
        nonlocal renewed_at
        if time.monotonic() - renewed_at < lease_s / 3:
            return False
        renewed_at = time.monotonic()
        return not lease.renew(engine, **holder, now=workspace.now(), duration_s=lease_s)

    try:
        planned = dispatch.plan(engine, settings, now=at)
        with db.read_session(engine) as session:
            total = len(
                outbox.pending_ids(session, now=at, resend_after_s=settings.alerts.resend_after_s)
            )
        tried = 0
        if progress is not None:
            progress(tried, total)

        def log(event: str, **_fields: Any) -> None:
            nonlocal tried
            if event in _MAIL_EVENTS:
                tried += 1
                if progress is not None:
                    progress(tried, total)

        report = dispatch.send_due(engine, settings, now=at, log=log, should_stop=lease_lost)
        report.planned = planned.alerts
    finally:
        lease.release(engine, **holder)
    return report


@dataclass(frozen=True)
class ProbeResult:
    """What became of a test mail."""

    address: str
    sent: bool
    server: str  # host:port
    security: str
    error: str | None  # French, with the server's answer (never a secret)


def send_test(workspace: Workspace, address: str) -> ProbeResult:
    """Send the short test mail of the SMTP settings to ``address`` (MANAGER)."""
    from cartes import mail

    settings = workspace.settings
    with db.read_session(workspace.engine) as session:
        operators.require(session, workspace.operator_login, OperatorRole.MANAGER)
    message = mail.probe_mail(address, settings=settings, now=workspace.now())
    with mail.SmtpSender(settings.smtp) as sender:
        result = sender.send(message)
    smtp = settings.smtp
    return ProbeResult(
        address=address.strip(),
        sent=result.outcome == "sent",
        server=f"{smtp.host}:{smtp.port}",
        security=smtp.security,
        error=None if result.outcome == "sent" else result.error,
    )
