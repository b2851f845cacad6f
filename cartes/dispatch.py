"""Planning and sending the renewal alerts: the work that ``cartes alertes envoyer`` and
the backing service share.

Planning writes the due alerts and their digests in one transaction. Sending takes one
digest at a time (``SENDING``, committed), hands it to the mail server, then records what
the server said: sent, refused for good (``FAILED``, with its answer), or to be tried
again later with backoff. A crash between the two leaves the digest ``SENDING``; it is
sent again after ``alerts.resend_after_s`` with the same Message-ID (at least once).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from cartes import mail
from cartes.settings import Settings
from inventaire import db, outbox
from inventaire.alerts import AlertPolicy, Planned, plan_alerts
from inventaire.clock import paris_today
from inventaire.emergency import plan_emergency_alerts
from inventaire.enums import CredentialKind

Log = Callable[..., None]

# A run stops at the first failure to reach the server (it is down: no use knocking at a
# closed door), and after this many temporary refusals in a row (4xx: it is busy).
MAX_TEMPORARY_IN_A_ROW = 5
# Digests taken from the outbox at once (one transaction for the lot; each is then
# recorded as sent in its own).
CLAIM_BATCH = 50


def lead_times(settings: Settings) -> outbox.LeadTimes:
    """Renewal lead time per kind and the safety margin, from ``[renewal]``."""
    renewal = settings.renewal
    return outbox.LeadTimes(days=renewal.lead_days(), margin_days=renewal.safety_margin_days)


def policy(settings: Settings) -> AlertPolicy:
    """When alerts are due and who gets copies, from ``[renewal]`` and ``[alerts]``."""
    leads = lead_times(settings)
    alerts = settings.alerts
    return AlertPolicy(
        lead_days=leads.days,
        margin_days=leads.margin_days,
        to_plan_days=alerts.to_plan_days,
        expired_every_days=alerts.expired_every_days,
        expired_times=alerts.expired_times,
        copies={
            kind: tuple(address.strip().lower() for address in alerts.copies.of(kind))
            for kind in CredentialKind
        },
    )


def message_domain(settings: Settings) -> str:
    """The right-hand side of Message-IDs: the sender's domain."""
    domain = settings.smtp.sender.rpartition("@")[2].strip(" >")
    return domain or "localhost"


def emergency_recipients(settings: Settings) -> list[str]:
    """Who gets the reminders about emergency cards: ``[emergency] notify``, else the
    copies of agent cards (``[alerts.copies] agent_card``); never the holder."""
    addresses = settings.emergency.notify or settings.alerts.copies.agent_card
    return sorted({address.strip().lower() for address in addresses if address.strip()})


def plan(engine: Engine, settings: Settings, *, now: dt.datetime) -> Planned:
    """Write the alerts due on the Paris day of ``now`` to the outbox (one transaction)."""
    with db.write_session(engine) as session:
        return plan_in(session, settings, now=now)


def plan_in(session: Session, settings: Settings, *, now: dt.datetime) -> Planned:
    """Plan, in the caller's transaction, everything due on the Paris day of ``now``: the
    renewal alerts, and the IT service's reminders about emergency cards. (The preview
    runs this very function in a transaction it rolls back.)"""
    today = paris_today(now)
    renewal = plan_alerts(
        session,
        policy=policy(settings),
        now=now,
        today=today,
        message_domain=message_domain(settings),
    )
    emergency = plan_emergency_alerts(
        session,
        today=today,
        now=now,
        recipients=emergency_recipients(settings),
        message_domain=message_domain(settings),
    )
    return Planned(
        alerts=renewal.alerts + emergency.alerts, digests=renewal.digests + emergency.digests
    )


@dataclass
class CycleReport:
    """What one planning and sending did."""

    planned: int = 0  # new alerts
    sent: int = 0  # digests accepted by the server
    failed: int = 0  # digests refused for good
    waiting: int = 0  # digests left for a later attempt
    error: str | None = None  # French: why the mail server could not be used, if so

    @property
    def ok(self) -> bool:
        return not self.failed and self.error is None


def _quiet(_event: str, **_fields: Any) -> None:
    return None


def send_due(
    engine: Engine,
    settings: Settings,
    *,
    now: dt.datetime,
    log: Log = _quiet,
    should_stop: Callable[[], bool] = lambda: False,
    sender_factory: Callable[[], Any] | None = None,
) -> CycleReport:
    """Send every digest that is due at ``now``, one at a time, until none is left, the
    mail server fails, or ``should_stop()`` says so (the mail in flight is finished)."""
    report = CycleReport()
    make_sender = sender_factory or (lambda: mail.SmtpSender(settings.smtp))
    # One connection records every result, each in its own short transaction.
    with make_sender() as sender, db.translate_errors(), engine.connect() as records:
        run = _Run(engine, settings, sender, records, now=now, log=log, report=report)
        while not should_stop() and report.error is None:
            taken = run.take()
            if not taken:
                break
            run.send(taken, should_stop)
    with db.read_session(engine) as session:
        report.waiting = outbox.waiting(session)
    return report


class _Run:
    """One sending run: takes digests from the outbox, mails them, records the results
    and keeps the report."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        sender: Any,
        records: Connection,
        *,
        now: dt.datetime,
        log: Log,
        report: CycleReport,
    ) -> None:
        self.engine, self.settings, self.sender, self.records = engine, settings, sender, records
        self.now, self.log, self.report = now, log, report
        self.leads = lead_times(settings)
        self.temporary_in_a_row = 0

    def take(self) -> list[outbox.DigestContent]:
        """The next due digests, marked as being sent, with what their mails say."""
        with db.write_session(self.engine) as session:
            taken = outbox.claim(
                session,
                now=self.now,
                resend_after_s=self.settings.alerts.resend_after_s,
                limit=CLAIM_BATCH,
            )
        if not taken:
            return []
        with db.read_session(self.engine) as session:
            contents = outbox.load(session, taken, today=paris_today(self.now), leads=self.leads)
        empty = set(taken) - {content.id for content in contents}
        for digest_id in empty:  # nothing to say (the planner makes none): never retried
            with self.records.begin():
                outbox.mark_failed(self.records, digest_id, now=self.now, error="aucune alerte")
        return contents

    def send(self, contents: list[outbox.DigestContent], should_stop: Callable[[], bool]) -> None:
        """Mail ``contents`` one at a time; those not tried go back to the queue."""
        untried = [content.id for content in contents]
        for content in contents:
            if should_stop() or self.report.error is not None:
                break
            untried.remove(content.id)
            self._send_one(content)
        if untried:  # stopped, or the server is down
            with db.write_session(self.engine) as session:
                outbox.unclaim(session, untried)

    def _send_one(self, content: outbox.DigestContent) -> None:
        """Hand one digest to the mail server, record what it said, log it."""
        result = self.sender.send(mail.digest_mail(content, settings=self.settings))
        error = result.error or ""
        fields = {"digest": content.id, "alertes": [item.alert_id for item in content.items]}
        with self.records.begin():
            if result.outcome == "sent":
                outbox.mark_sent(self.records, content.id, now=self.now)
            elif result.outcome == "permanent":
                outbox.mark_failed(self.records, content.id, now=self.now, error=error)
            else:
                due = outbox.mark_retry(
                    self.records,
                    content.id,
                    now=self.now,
                    error=error,
                    first_delay_s=self.settings.alerts.retry_first_s,
                    max_delay_s=self.settings.alerts.retry_max_s,
                )
        if result.outcome == "sent":
            self.report.sent += 1
            self.temporary_in_a_row = 0
            self.log("courriel.envoye", message="Courriel envoyé.", **fields)
            return
        if result.outcome == "permanent":
            self.report.failed += 1
            self.temporary_in_a_row = 0
            self.log(
                "courriel.refuse",
                niveau="erreur",
                message=f"Courriel refusé définitivement : {_without_addresses(error)}",
                **fields,
            )
            return
        self.temporary_in_a_row += 1
        self.log(
            "courriel.reporte",
            niveau="avertissement",
            message=f"Envoi reporté au {_paris(due)} : {_without_addresses(error)}",
            **fields,
        )
        if (
            result.outcome == "fatal"
            or result.connection_failed
            or self.temporary_in_a_row >= MAX_TEMPORARY_IN_A_ROW
        ):
            self.report.error = error or "serveur de messagerie indisponible"


_ADDRESS = re.compile(r"[^\s<>«»()\"']+@[^\s<>«»()\"']+")


def _without_addresses(text: str) -> str:
    """``text`` without the e-mail addresses a server's answer may quote: logs name
    alerts by id and hold no personal data (the outbox keeps the full answer)."""
    return _ADDRESS.sub("<adresse>", text)


def _paris(instant: dt.datetime) -> str:
    from inventaire.clock import PARIS

    return f"{instant.astimezone(PARIS):%d/%m/%Y à %H:%M}"


def plan_and_send(
    engine: Engine,
    settings: Settings,
    *,
    now: dt.datetime,
    log: Log = _quiet,
    should_stop: Callable[[], bool] = lambda: False,
    sender_factory: Callable[[], Any] | None = None,
) -> CycleReport:
    """Plan the alerts due at ``now``, then send every due digest."""
    planned = plan(engine, settings, now=now)
    log(
        "alertes.planifiees",
        message=f"{planned.alerts} alertes planifiées, {planned.digests} nouveaux courriels.",
        alertes=planned.alerts,
        courriels=planned.digests,
    )
    report = send_due(
        engine,
        settings,
        now=now,
        log=log,
        should_stop=should_stop,
        sender_factory=sender_factory,
    )
    report.planned = planned.alerts
    return report
