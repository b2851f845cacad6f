"""The backing service (DESIGN §8): the daily cycle, and the loop that runs it.

Once a day at ``service.daily_at`` (Europe/Paris), a cycle refreshes the revocation lists
(when the network is allowed), validates again the stored certificates whose last
validation is old, then plans and sends the renewal alerts (``cartes.dispatch``); the
first cycle of each month that gets to it also anonymises the holders whose retention
period is over (``inventaire.retention``; see ``retention_due``). Between
two cycles the service wakes every ``service.poll_s`` to send the digests due again after
a temporary failure. A cycle missed while the service was down is caught up at start.

Only the holder of the lease ``service`` (``inventaire.lease``) works: a second instance,
here or on another machine sharing the database, waits. SIGTERM or SIGINT asks the
service to stop: the mail in flight is finished, the lease released, the exit code is 0.

Everything the service does is logged on stdout, one JSON object per line (``EventLog``),
for journald and log shippers. Settings are never logged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import sqlalchemy as sa
from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import col

from cartes import messages
from cartes.ops.certificates import Revalidation, revalidate  # shared with the record
from cartes.settings import Settings, parse_daily_at
from inventaire import certificates, db, lease, retention, runs
from inventaire.clock import PARIS, Clock, from_db, paris_today
from inventaire.errors import InventaireError
from inventaire.models import ServiceRun
from pki import PkiError

LEASE_NAME = "service"
DAILY = "quotidien"
ONCE = "une_fois"
# Runs that do the whole cycle: a successful one serves the day's slot.
CYCLE_KINDS = (DAILY, ONCE)
# Who the journal says anonymised a holder when the service did: not a login an operator
# can have (``inventaire.operators`` refuses parentheses), so never mistaken for one.
SERVICE_OPERATOR = "(service)"

Log = Callable[..., None]


# --------------------------------------------------------------------------------------------
# Schedule


def _slot(day: dt.date, daily_at: dt.time) -> dt.datetime:
    # A wall-clock time skipped by the spring change (02:30 on the last Sunday of March)
    # is read with the offset in force before it, i.e. 03:30 summer time; one that occurs
    # twice in autumn is the first. Either way: one slot per calendar day.
    return dt.datetime.combine(day, daily_at, tzinfo=PARIS).astimezone(dt.UTC)


def next_daily_run(after: dt.datetime, daily_at: dt.time) -> dt.datetime:
    """The first daily slot strictly after ``after``: ``daily_at`` in Europe/Paris, as an
    aware UTC instant."""
    day = after.astimezone(PARIS).date()
    slot = _slot(day, daily_at)
    return slot if slot > after else _slot(day + dt.timedelta(days=1), daily_at)


def last_daily_slot(now: dt.datetime, daily_at: dt.time) -> dt.datetime:
    """The latest daily slot at or before ``now`` (aware UTC)."""
    day = now.astimezone(PARIS).date()
    slot = _slot(day, daily_at)
    return slot if slot <= now else _slot(day - dt.timedelta(days=1), daily_at)


def missed(last_run_start: dt.datetime | None, now: dt.datetime, daily_at: dt.time) -> bool:
    """Whether the latest slot at or before ``now`` was not served: the last successful
    cycle (``last_run_start``, None if there never was one) started before it."""
    return last_run_start is None or from_db(last_run_start) < last_daily_slot(now, daily_at)


def _paris(instant: dt.datetime) -> str:
    return f"{instant.astimezone(PARIS):%d/%m/%Y à %H:%M:%S}"


def retention_due(engine: Engine, now: dt.datetime) -> bool:
    """Whether the anonymisation of this Paris month is still to do: no cycle started
    since the first of the month recorded it done (``"anonymisation"`` of its summary,
    finished). A cycle that failed or was stopped before it leaves it to the next one.

    The step is recorded in the cycle's own ``service_run`` row rather than a row of its
    own: the dashboard shows the latest row as the service's last run, which must stay
    the cycle."""
    today = paris_today(now)
    month = dt.datetime.combine(today.replace(day=1), dt.time(), tzinfo=PARIS)
    query = sa.select(ServiceRun.summary).where(
        col(ServiceRun.kind).in_(CYCLE_KINDS),
        col(ServiceRun.started_at) >= month.astimezone(dt.UTC),
    )
    with db.read_session(engine) as session:
        summaries = session.execute(query).scalars().all()
    for summary in summaries:
        try:
            step = json.loads(summary or "null").get("anonymisation")
        except (ValueError, AttributeError):
            continue
        if isinstance(step, dict) and step.get("finished"):
            return False
    return True


# --------------------------------------------------------------------------------------------
# Logs


_SECRET_KEYS = ("password", "mot_de_passe", "secret")


class EventLog:
    """Writes one JSON object per line and flushes it: ``ts`` (ISO 8601, UTC),
    ``niveau`` (info, avertissement, erreur), ``evenement``, ``message`` (French), then
    the event's fields. Safe to call from several threads.

    Called as ``log(event, **fields)``; ``niveau`` and ``message`` may be among the
    fields. As a last guard, a field named like a password, or holding a secret or a
    settings object, is written as ``***``.
    """

    def __init__(self, stream: TextIO, clock: Clock) -> None:
        self.stream = stream
        self.clock = clock
        self._lock = threading.Lock()

    def __call__(self, event: str, /, **fields: Any) -> None:
        level = fields.pop("niveau", None) or "info"
        message = fields.pop("message", None) or event
        record: dict[str, Any] = {
            "ts": self.clock.now().astimezone(dt.UTC).isoformat(timespec="milliseconds"),
            "niveau": level,
            "evenement": event,
            "message": message,
        }
        for key, value in fields.items():
            if key not in record:
                record[key] = _loggable(key, value)
        line = json.dumps(record, ensure_ascii=False, default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def _loggable(key: str, value: Any) -> Any:
    if any(word in key.lower() for word in _SECRET_KEYS):
        return "***"
    if isinstance(value, SecretStr | BaseModel):
        return "***"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return value


# --------------------------------------------------------------------------------------------
# Revalidation of stored certificates (``cartes.ops.certificates``) and CRLs


def issuer_samples(engine: Engine) -> list[Any]:
    """One stored certificate per issuer (the latest), parsed: their distribution points
    name the lists that check the holders' certificates. Unreadable ones are skipped."""
    from cryptography import x509

    with db.read_session(engine) as session:
        ders = certificates.latest_per_issuer(session)
    samples = []
    for der in ders:
        try:
            samples.append(x509.load_der_x509_certificate(der))
        except ValueError:
            continue
    return samples


# --------------------------------------------------------------------------------------------
# One cycle


@dataclass
class CycleOutcome:
    """What one cycle did, as recorded in ``service_run``."""

    run_id: int
    kind: str
    started_at: dt.datetime
    crls_fetched: int | None = None  # None: not refreshed (network not allowed)
    crls_failed: int = 0
    revalidation: Revalidation | None = None
    alerts: Any = None  # cartes.dispatch.CycleReport, None if the step did not run
    # The monthly anonymisation; None when it was not due this cycle, or failed.
    retention_report: retention.Report | None = None
    errors: list[str] = field(default_factory=list)  # French, one per failed step
    interrupted: bool = False
    journal_seq: int = 0
    journal_hash: str = ""

    @property
    def ok(self) -> bool:
        """Every step ran to its end, no mail was refused, the mail server could be used."""
        return (
            not self.errors
            and not self.interrupted
            and self.alerts is not None
            and not self.alerts.failed
            and self.alerts.error is None
        )

    def summary(self) -> dict[str, Any]:
        alerts = self.alerts
        return {
            "crls": None
            if self.crls_fetched is None
            else {"fetched": self.crls_fetched, "failed": self.crls_failed},
            "revalidation": asdict(self.revalidation) if self.revalidation else None,
            "alerts": None
            if alerts is None
            else {
                "planned": alerts.planned,
                "sent": alerts.sent,
                "failed": alerts.failed,
                "waiting": alerts.waiting,
                "error": alerts.error,
            },
            "anonymisation": None
            if self.retention_report is None
            else {
                "anonymised": len(self.retention_report.anonymised),
                "finished": self.retention_report.finished,
            },
            "errors": self.errors,
            "interrupted": self.interrupted,
        }

    def french_summary(self) -> str:
        parts = []
        if self.crls_fetched is not None:
            parts.append(f"LCR téléchargées : {self.crls_fetched} (échecs : {self.crls_failed})")
        if self.revalidation is not None:
            r = self.revalidation
            parts.append(
                f"certificats revalidés : {r.checked} (valides : {r.valid}, invalides : "
                f"{r.invalid}, indéterminés : {r.undetermined}, illisibles : {r.unreadable})"
            )
        if self.alerts is not None:
            a = self.alerts
            parts.append(
                f"alertes planifiées : {a.planned}, courriels envoyés : {a.sent}, refusés : "
                f"{a.failed}, en attente : {a.waiting}"
            )
            if a.error:
                parts.append(f"serveur de messagerie : {a.error}")
        if self.retention_report is not None:
            parts.append(f"titulaires anonymisés : {len(self.retention_report.anonymised)}")
        parts.extend(self.errors)
        if self.interrupted:
            parts.append("cycle interrompu par une demande d'arrêt")
        return " ; ".join(parts) or "rien à faire"


def anonymise(
    engine: Engine,
    settings: Settings,
    *,
    now: dt.datetime,
    log: Log,
    should_stop: Callable[[], bool],
) -> retention.Report | None:
    """The monthly step, when due (``retention_due``; None otherwise): anonymise the
    holders whose retention period is over (``[retention] years``), journaled as done by
    ``SERVICE_OPERATOR``; log how many (never who) when there were some, or when it was
    stopped before the end (the count of a month with none is in the cycle's end)."""
    if not retention_due(engine, now):
        return None
    years = settings.retention.years
    report = retention.run(
        engine, years=years, by=SERVICE_OPERATOR, now=now, should_stop=should_stop
    )
    count = len(report.anonymised)
    if count or not report.finished:
        stopped = "" if report.finished else " (arrêt demandé : la suite au prochain cycle)"
        log(
            "anonymisation.bilan",
            message=f"Titulaires anonymisés, durée de conservation de {years} ans écoulée : "
            f"{count}{stopped}.",
            anonymises=count,
            termine=report.finished,
        )
    return report


def _start_run(engine: Engine, kind: str, started_at: dt.datetime) -> int:
    with db.write_session(engine) as session:
        return runs.start(session, kind=kind, started_at=started_at)


def _finish_run(engine: Engine, outcome: CycleOutcome, finished_at: dt.datetime) -> None:
    with db.write_session(engine) as session:
        outcome.journal_seq, outcome.journal_hash = runs.finish(
            session,
            run_id=outcome.run_id,
            finished_at=finished_at,
            ok=outcome.ok,
            summary=outcome.summary(),
        )


def last_successful_start(engine: Engine) -> dt.datetime | None:
    """When the last successful cycle started (aware UTC), or None."""
    with db.read_session(engine) as session:
        return runs.last_successful_start(session, kinds=CYCLE_KINDS)


def _guarded(
    label: str, step: Callable[[], Any], *, log: Log, errors: list[str]
) -> tuple[bool, Any]:
    """Run one step of a cycle; a failure is logged and recorded, and the cycle goes on.
    Unexpected exceptions are named by their type only: their text could quote anything
    (a server's answer, a URL with credentials)."""
    try:
        return True, step()
    except InventaireError as exc:
        text = messages.error_text(exc)
    except PkiError as exc:
        text = messages.pki_text(exc.code, exc.params)
    except Exception as exc:
        if os.environ.get("CARTES_DEBUG"):
            raise
        text = f"erreur inattendue ({type(exc).__name__})"
    errors.append(f"{label} : {text}")
    log(
        "cycle.etape_en_echec",
        niveau="erreur",
        message=f"Étape « {label} » en échec : {text}",
        etape=label,
    )
    return False, None


def run_cycle(
    engine: Engine,
    settings: Settings,
    *,
    kind: str,
    clock: Clock,
    log: Log,
    should_stop: Callable[[], bool],
) -> CycleOutcome:
    """One cycle: refresh the CRLs (network allowed), revalidate the stored certificates,
    plan and send the alerts, and once a month anonymise (``anonymise``); record it in
    ``service_run`` with the journal head, and log that head. A failed step is logged and
    the next one still runs. The caller must hold the lease."""
    from cartes import trust

    started_at = clock.now()
    outcome = CycleOutcome(_start_run(engine, kind, started_at), kind, started_at)
    label = "quotidien" if kind == DAILY else "unique"
    log("cycle.debut", message=f"Cycle {label} commencé.", cycle=outcome.run_id, type=kind)

    if settings.trust.network and not should_stop():
        done, refresh = _guarded(
            "mise à jour des LCR",
            lambda: trust.refresh_crls(settings, log=log, certificates=issuer_samples(engine)),
            log=log,
            errors=outcome.errors,
        )
        if done:
            outcome.crls_fetched, outcome.crls_failed = refresh.fetched, refresh.failed

    if not should_stop():

        def revalidation() -> Revalidation | None:
            validator = trust.validator_from_settings(settings)
            if validator.trust.empty:
                # Every certificate would come out "invalid" (unknown issuer).
                log(
                    "revalidation.sans_ancre",
                    niveau="avertissement",
                    message="Aucune ancre de confiance configurée (trust.agent_card, "
                    "trust.expert_card, trust.rpva_key, trust.temporary_card) : "
                    "certificats non revalidés.",
                )
                return None
            return revalidate(
                engine,
                validator,
                now=started_at,
                older_than=dt.timedelta(hours=settings.service.revalidate_after_h),
                log=log,
                should_stop=should_stop,
            )

        _, outcome.revalidation = _guarded(
            "revalidation des certificats", revalidation, log=log, errors=outcome.errors
        )

    if not should_stop():

        def plan_and_send() -> Any:
            from cartes import dispatch  # the mail stack is loaded only when it is needed

            return dispatch.plan_and_send(
                engine, settings, now=clock.now(), log=log, should_stop=should_stop
            )

        _, outcome.alerts = _guarded("alertes", plan_and_send, log=log, errors=outcome.errors)

    if not should_stop():
        _, outcome.retention_report = _guarded(
            "anonymisation",
            lambda: anonymise(engine, settings, now=clock.now(), log=log, should_stop=should_stop),
            log=log,
            errors=outcome.errors,
        )

    outcome.interrupted = should_stop()
    _finish_run(engine, outcome, clock.now())
    log(
        "journal.tete",
        message=(
            f"Tête du journal : entrée n°{outcome.journal_seq}, empreinte "
            f"{outcome.journal_hash}. Pour vérifier plus tard qu'elle n'a pas été réécrite : "
            f"cartes journal verifier --tete {outcome.journal_seq}:{outcome.journal_hash}"
        ),
        cycle=outcome.run_id,
        seq=outcome.journal_seq,
        empreinte=outcome.journal_hash,
    )
    log(
        "cycle.fin",
        niveau="info" if outcome.ok else "avertissement",
        message=f"Cycle {label} terminé{'' if outcome.ok else ' avec des problèmes'} : "
        f"{outcome.french_summary()}.",
        cycle=outcome.run_id,
        ok=outcome.ok,
        resume=outcome.summary(),
    )
    return outcome


# --------------------------------------------------------------------------------------------
# The process: lease, loop, signals


class StopRequest(threading.Event):
    """Set when the process is asked to stop; remembers by which signal."""

    signal_name: str | None = None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """SIGTERM and SIGINT set the yielded flag instead of interrupting the work (the
    handlers only set a flag: the loop notices it between two steps or two mails)."""
    stop = StopRequest()

    def handler(signum: int, _frame: object) -> None:
        stop.signal_name = signal.Signals(signum).name
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class Service:
    """``cartes service``: the lease, then the daily cycles (``run_forever``) or one
    cycle (``run_once``).

    The lease is renewed by a small thread every third of ``lease_s`` rather than between
    two mails: a single step can be long (an SMTP timeout, CRL downloads, revalidating a
    large inventory) and the lease must not expire under it. Should the lease be lost
    (taken by another process after it expired, or not renewable until it is about to
    expire), ``should_stop`` turns true: the mail in flight finishes, nothing more is
    sent, and the loop waits to take the lease again.
    """

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        clock: Clock,
        log: Log,
        stop: threading.Event,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.log = log
        self.stop = stop
        self.host = host or socket.gethostname()
        self.pid = pid or os.getpid()
        self.owner = lease.owner_name(self.host, self.pid)
        self.daily_at = parse_daily_at(settings.service.daily_at)
        self.lease_s = settings.service.lease_s
        self.failure: str | None = None  # French, when run_once gives up or fails
        self._lost = threading.Event()

    def should_stop(self) -> bool:
        return self.stop.is_set() or self._lost.is_set()

    # The lease -------------------------------------------------------------------------

    def _lease_args(self) -> dict[str, Any]:
        return {"name": LEASE_NAME, "owner": self.owner, "host": self.host, "pid": self.pid}

    def _acquire(self, *, wait_s: float | None) -> bool:
        """Take the lease, waiting while another live process holds it (at most
        ``wait_s`` seconds; None: until stopped). False if not taken."""
        deadline = None if wait_s is None else time.monotonic() + wait_s
        reported: tuple[str, str, int] | None = None
        while True:
            status = lease.acquire(
                self.engine, **self._lease_args(), now=self.clock.now(), duration_s=self.lease_s
            )
            if status.held:
                self._lost.clear()
                taken = (
                    f" (repris à « {status.taken_over} », expiré ou arrêté)"
                    if status.taken_over
                    else ""
                )
                self.log(
                    "bail.obtenu",
                    message=f"Bail « {LEASE_NAME} » obtenu par {self.owner}{taken}.",
                    titulaire=self.owner,
                    hote=self.host,
                    pid=self.pid,
                    jusqua=status.expires_at,
                    repris_de=status.taken_over,
                )
                return True
            holder = (
                f"« {status.owner} » (hôte {status.host}, pid {status.pid}) jusqu'au "
                f"{_paris(status.expires_at)} (heure de Paris)"
            )
            until_expiry = (status.expires_at - self.clock.now()).total_seconds()
            retry = max(0.5, min(self.lease_s / 4, self.settings.service.poll_s, until_expiry))
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.failure = (
                        f"Le bail « {LEASE_NAME} » est tenu par {holder}. "
                        f"Attente de {wait_s:g} s écoulée : abandon, aucun cycle n'a été lancé."
                    )
                    self.log(
                        "bail.abandon",
                        niveau="erreur",
                        message=self.failure,
                        titulaire=status.owner,
                        hote=status.host,
                        pid=status.pid,
                        jusqua=status.expires_at,
                    )
                    return False
                retry = min(retry, remaining)
            key = (status.owner, status.host, status.pid)
            if key != reported:
                reported = key
                waiting = f"attente de {wait_s:g} s au plus" if wait_s is not None else "attente"
                self.log(
                    "bail.occupe",
                    niveau="avertissement",
                    message=(
                        f"Le bail « {LEASE_NAME} » est tenu par {holder}. "
                        f"Rien n'est fait ni envoyé ici ({waiting}, nouvel essai toutes les "
                        f"{retry:g} s)."
                    ),
                    titulaire=status.owner,
                    hote=status.host,
                    pid=status.pid,
                    jusqua=status.expires_at,
                )
            if self.stop.wait(retry):
                return False

    def _keep(self, done: threading.Event) -> None:
        """Renew the lease until ``done``; on loss, set ``_lost``."""
        interval = self.lease_s / 3
        expires_at = self.clock.now() + dt.timedelta(seconds=self.lease_s)
        while not done.wait(interval):
            now = self.clock.now()
            try:
                renewed = lease.renew(
                    self.engine, **self._lease_args(), now=now, duration_s=self.lease_s
                )
            except InventaireError as exc:
                self.log(
                    "bail.renouvellement_impossible",
                    niveau="avertissement",
                    message=f"Bail non renouvelé : {messages.error_text(exc)}",
                )
                # Stop sending before the lease may expire: another process could take it.
                if now + dt.timedelta(seconds=interval) >= expires_at:
                    self._lose("impossible de le renouveler avant son expiration")
                    return
                continue
            if not renewed:
                self._lose(self._taken_by())
                return
            expires_at = now + dt.timedelta(seconds=self.lease_s)

    def _taken_by(self) -> str:
        try:
            holder = lease.current(self.engine, name=LEASE_NAME)
        except InventaireError:
            return "pris par un autre processus"
        return f"repris par {holder.owner}" if holder else "supprimé de la base"

    def _lose(self, why: str) -> None:
        self._lost.set()
        self.log(
            "bail.perdu",
            niveau="erreur",
            message=f"Bail « {LEASE_NAME} » perdu ({why}) : envois suspendus.",
        )

    @contextlib.contextmanager
    def _holding(self) -> Iterator[None]:
        """While the lease is held: the renewing thread runs; the lease is released at
        the end."""
        done = threading.Event()
        keeper = threading.Thread(target=self._keep, args=(done,), name="bail", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            done.set()
            keeper.join()
            try:
                if lease.release(self.engine, **self._lease_args()):
                    self.log("bail.libere", message=f"Bail « {LEASE_NAME} » libéré.")
            except InventaireError as exc:
                self.log(
                    "bail.liberation_impossible",
                    niveau="avertissement",
                    message=f"Bail non libéré (il expirera de lui-même) : "
                    f"{messages.error_text(exc)}",
                )

    # The work --------------------------------------------------------------------------

    def _cycle(self, kind: str) -> CycleOutcome:
        return run_cycle(
            self.engine,
            self.settings,
            kind=kind,
            clock=self.clock,
            log=self.log,
            should_stop=self.should_stop,
        )

    def _send_due(self) -> None:
        def send() -> Any:
            from cartes import dispatch

            return dispatch.send_due(
                self.engine,
                self.settings,
                now=self.clock.now(),
                log=self.log,
                should_stop=self.should_stop,
            )

        done, report = _guarded("relances", send, log=self.log, errors=[])
        if done and (report.sent or report.failed or report.error):
            self.log(
                "relances.bilan",
                niveau="info" if report.error is None and not report.failed else "avertissement",
                message=f"Relances : courriels envoyés : {report.sent}, refusés : "
                f"{report.failed}, en attente : {report.waiting}"
                + (f" ; serveur de messagerie : {report.error}" if report.error else "")
                + ".",
                envoyes=report.sent,
                refuses=report.failed,
                en_attente=report.waiting,
            )

    def _serve(self) -> None:
        """The daily loop while the lease is held; returns when stopped or lost."""
        now = self.clock.now()
        last = last_successful_start(self.engine)
        if missed(last, now, self.daily_at):
            self.log(
                "cycle.rattrapage",
                message="Le cycle quotidien du "
                f"{_paris(last_daily_slot(now, self.daily_at))} n'a pas eu lieu : rattrapage.",
                dernier_cycle_reussi=last,
            )
            self._cycle(DAILY)
        poll_s = self.settings.service.poll_s
        while not self.should_stop():
            next_run = next_daily_run(self.clock.now(), self.daily_at)
            self.log(
                "service.attente",
                message=f"Prochain cycle quotidien le {_paris(next_run)} (heure de Paris) ; "
                f"relances toutes les {poll_s:g} s.",
                prochain_cycle=next_run,
            )
            while not self.should_stop():
                remaining = (next_run - self.clock.now()).total_seconds()
                if remaining <= 0 or self.stop.wait(min(poll_s, remaining)):
                    break
                if not self.should_stop() and self.clock.now() < next_run:
                    self._send_due()
            if self.should_stop():
                return
            self._cycle(DAILY)

    def _stopped(self) -> str:
        name = getattr(self.stop, "signal_name", None)
        return f"arrêt demandé ({name})" if name else "arrêt demandé"

    def run_forever(self) -> int:
        """The foreground service: 0 when stopped by a signal, 1 when the database
        failed (a French line logged)."""
        service = self.settings.service
        self.log(
            "service.demarrage",
            message=f"Service démarré sur {self.host} (pid {self.pid}) : cycle quotidien à "
            f"{self.daily_at:%H:%M} (heure de Paris), bail de {service.lease_s:g} s.",
            hote=self.host,
            pid=self.pid,
            quotidien_a=f"{self.daily_at:%H:%M}",
            base=self.engine.dialect.name,
        )
        try:
            while not self.stop.is_set():
                if not self._acquire(wait_s=None):
                    break
                with self._holding():
                    self._serve()
        except InventaireError as exc:
            self.log(
                "service.arret",
                niveau="erreur",
                message=f"Service arrêté sur erreur : {messages.error_text(exc)}",
                code=1,
            )
            return 1
        self.log("service.arret", message=f"Service arrêté : {self._stopped()}.", code=0)
        return 0

    def run_once(self) -> int:
        """``--une-fois``: take the lease (waiting ``lease_s`` at most), run one cycle,
        release. 0 if the cycle went well; 1 if the lease could not be had, a step
        failed, a mail failed or waits for the server, or the cycle was interrupted."""
        if not self._acquire(wait_s=self.lease_s):
            if self.failure is None:
                self.failure = f"Cycle non lancé : {self._stopped()}."
            return 1
        with self._holding():
            outcome = self._cycle(ONCE)
        if outcome.ok:
            return 0
        self.failure = f"Cycle terminé avec des problèmes : {outcome.french_summary()}."
        return 1
