"""Renewal alerts: planning over 1,000,000 credentials, sending 10,000 digests by SMTP.

Targets (issue): the planning over 1,000,000 credentials in ≤ 2 s, materialising only what
is due; sending 10,000 digests to an SMTP server on the loopback in ≤ 60 s over one
connection; the peak memory of each.

Planning, on copies of the database of ``listing.py`` (built once a day through
``cartes importer``), each call in its own process so that its peak memory is its own:

- the first planning, which materialises the whole backlog of the day (every alert due);
- the daily planning, the next morning on the same copy once the first digests are sent
  (marked so in SQL, as the service would have done): only the credentials that crossed a
  threshold overnight. The 2 s target is applied to this one, what the service does every
  day; the first planning is reported against it too.

Baseline, same run, same database: a bare ``sqlite3`` count of the credentials in service
(the rows the planner considers, one full scan).

Sending: ``cartes alertes envoyer`` on a fresh database of ``--courriels`` holders, each
with one RPVA key expiring in 10 days (one alert, one digest each), to an aiosmtpd server
on 127.0.0.1 (``tests/smtp_support.py``). Baseline, same run, same server: bare
``smtplib`` sending as many small pre-built messages over one connection.

    python benchmarks/alerts.py [--supports 1000000] [--courriels 10000] [--repetitions 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import CARTES, ROOT, run, today, user_environment, verdict

TARGET_PLAN_S = 2.0
TARGET_SEND_S = 60.0
# Every subprocess is bounded: well above what a working run takes, so that a hang fails
# the benchmark instead of blocking ``make bench``.
PLAN_TIMEOUT_S = 600.0
SEND_TIMEOUT_S = 900.0
SERVICE_TIME = dt.time(6, 30)  # the service's daily cycle (settings.service.daily_at)
SENDER = "cartes@ca-angers.test"


def service_instant(day: dt.date) -> dt.datetime:
    from inventaire.clock import PARIS

    return dt.datetime.combine(day, SERVICE_TIME, tzinfo=PARIS).astimezone(dt.UTC)


# ---------------------------------------------------------------------------------------
# Workers: run in their own process by the measuring side


def worker_plan(path: str, day: str) -> None:
    """One ``cartes.dispatch.plan`` on ``path`` at the service's hour of ``day``; prints
    its counts, its in-process time and the peak memory before the call."""
    from cartes.dispatch import plan
    from cartes.settings import Settings
    from inventaire.db import make_engine

    settings = Settings()
    engine = make_engine(f"sqlite:///{path}", busy_timeout_s=settings.busy_timeout_s)
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    planned = plan(engine, settings, now=service_instant(dt.date.fromisoformat(day)))
    seconds = time.perf_counter() - start
    engine.dispose()
    print(
        json.dumps(
            {
                "alerts": planned.alerts,
                "digests": planned.digests,
                "seconds": seconds,
                "before_mb": before_mb,
            }
        )
    )


def worker_smtp(port: str, count: str) -> None:
    """Bare ``smtplib``: ``count`` small pre-built messages over one connection."""
    import smtplib

    messages = [
        (
            recipient,
            (
                f"From: {SENDER}\r\nTo: {recipient}\r\n"
                "Subject: =?utf-8?q?Renouvellement_de_votre_cl=C3=A9_RPVA?=\r\n"
                "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                "Votre clé RPVA expire dans 10 jours.\r\n"
            ).encode(),
        )
        for recipient in (f"titulaire{index:06d}@avocat-angers.test" for index in range(int(count)))
    ]
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", int(port), timeout=30) as smtp:
        for recipient, raw in messages:
            smtp.sendmail(SENDER, [recipient], raw)
    print(json.dumps({"seconds": time.perf_counter() - start}))


# ---------------------------------------------------------------------------------------
# Planning


@dataclass
class Planning:
    alerts: int
    digests: int
    call_s: float  # the plan() call, timed inside the worker
    process_s: float  # the whole worker process
    peak_mb: float
    before_mb: float  # peak memory before the call (interpreter, imports, engine)


def measure_plan(path: Path, day: dt.date) -> Planning:
    env = user_environment()
    argv = [sys.executable, __file__, "--worker", "plan", str(path), day.isoformat()]
    done = run(argv, env, PLAN_TIMEOUT_S)
    figures = json.loads(done.stdout)
    return Planning(
        alerts=figures["alerts"],
        digests=figures["digests"],
        call_s=figures["seconds"],
        process_s=done.seconds,
        peak_mb=done.peak_mb,
        before_mb=figures["before_mb"],
    )


def mark_digests_sent(path: Path, day: dt.date) -> int:
    """What the first morning's sending leaves: every pending digest sent."""
    from inventaire.enums import DigestState

    connection = sqlite3.connect(path)
    with connection:
        sent = connection.execute(
            "UPDATE digest SET state = ?, sent_at = ?, attempts = 1 WHERE state = ?",
            (
                DigestState.SENT.value,
                service_instant(day).replace(tzinfo=None).isoformat(sep=" "),
                DigestState.PENDING.value,
            ),
        ).rowcount
    connection.close()
    return sent


def planning_plan(path: Path, day: dt.date) -> list[str]:
    """``EXPLAIN QUERY PLAN`` of the planning statement, as the planner builds it."""
    from cartes.dispatch import policy
    from cartes.settings import Settings
    from inventaire.alerts import _planning_sql

    sql, params, _dates = _planning_sql("sqlite", policy(Settings()), day)
    values = {
        key: value.isoformat() if isinstance(value, dt.date) else value
        for key, value in params.items()
    }
    values["now"] = service_instant(day).replace(tzinfo=None).isoformat(sep=" ")
    connection = sqlite3.connect(path)
    rows = connection.execute("EXPLAIN QUERY PLAN " + sql, values).fetchall()
    connection.close()
    return [f"{'  ' * _depth(rows, row)}{row[-1]}" for row in rows]


def _depth(rows: list[Any], row: Any) -> int:
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent in parents:
        depth, parent = depth + 1, parents[parent]
    return depth


def bare_count(path: Path, repetitions: int) -> tuple[int, float, list[str]]:
    """The baseline: count the credentials in service with ``sqlite3`` (median seconds)."""
    from inventaire.lifecycle import IN_SERVICE

    states = ", ".join(f"'{state.value}'" for state in sorted(IN_SERVICE))
    sql = f"SELECT count(*) FROM credential WHERE state IN ({states})"
    connection = sqlite3.connect(path)
    plan = [row[-1] for row in connection.execute("EXPLAIN QUERY PLAN " + sql)]
    timings = []
    count = 0
    for _ in range(repetitions):
        start = time.perf_counter()
        count = connection.execute(sql).fetchone()[0]
        timings.append(time.perf_counter() - start)
    connection.close()
    return count, statistics.median(timings), plan


def bench_planning(credentials: int, repetitions: int) -> None:
    import listing

    source = listing.database(credentials)
    day = today()
    firsts: list[Planning] = []
    dailies: list[Planning] = []
    with tempfile.TemporaryDirectory(prefix="cartes-bench-alertes-") as folder:
        copy = Path(folder) / "alertes.db"
        for _ in range(repetitions):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)
            shutil.copyfile(source, copy)
            firsts.append(measure_plan(copy, day))
            mark_digests_sent(copy, day)
            dailies.append(measure_plan(copy, day + dt.timedelta(days=1)))
    count, count_s, count_plan = bare_count(source, max(repetitions, 3))
    query_plan = planning_plan(source, day)

    def line(label: str, runs: list[Planning]) -> None:
        call = statistics.median(r.call_s for r in runs)
        whole = statistics.median(r.process_s for r in runs)
        print(f"  {label}")
        print(f"    alertes écrites        : {runs[0].alerts}")
        print(f"    courriels (digests)    : {runs[0].digests}")
        print(
            f"    durée de plan()        : {call:.3f} s (médiane de {len(runs)}, "
            f"min {min(r.call_s for r in runs):.3f}, max {max(r.call_s for r in runs):.3f})"
        )
        print(f"    durée du processus     : {whole:.3f} s")
        print(
            f"    mémoire max            : {max(r.peak_mb for r in runs):.0f} Mo "
            f"(dont {max(r.before_mb for r in runs):.0f} Mo avant l'appel)"
        )
        print(
            f"    objectif ≤ {TARGET_PLAN_S:.0f} s          : {verdict(call, TARGET_PLAN_S)}"
            f" ; rapport plan()/comptage {call / count_s:.1f}"
        )

    print(f"Planification des alertes : {credentials} supports en base, jour {day:%d/%m/%Y}")
    line("première planification (tout l'arriéré du jour) :", firsts)
    line("planification quotidienne (le lendemain, objectif du ticket) :", dailies)
    print(
        f"  référence comptage seul  : {count_s:.3f} s, {count} supports en service "
        "(sqlite3, count(*) sur state, parcours complet)"
    )
    print("  plan du comptage :")
    for row in count_plan:
        print(f"    {row}")
    uses_index = any("ix_credential_expiry" in row for row in query_plan)
    print(
        "  plan de la requête de planification "
        f"(ix_credential_expiry utilisé : {'oui' if uses_index else 'NON'}) :"
    )
    for row in query_plan:
        print(f"    {row}")


# ---------------------------------------------------------------------------------------
# Sending


def holder_rows(count: int, day: dt.date) -> list[dict[str, str]]:
    """``count`` lawyers of the bar of Angers, each with an RPVA key expiring in 10 days."""
    from fixtures.synthetic import FIRST_NAMES, LAST_NAMES

    handed_over = (day - dt.timedelta(days=3 * 365 - 10)).isoformat()
    expires = (day + dt.timedelta(days=10)).isoformat()
    return [
        {
            "nom": LAST_NAMES[index % len(LAST_NAMES)],
            "prenom": FIRST_NAMES[index // len(LAST_NAMES) % len(FIRST_NAMES)],
            "email": f"avocat{index:06d}@avocat-angers.test",
            "role": "avocat",
            "organisation": "Barreau d'Angers",
            "type": "cle_rpva",
            "modele": "",
            "numero_serie": f"RPVA-{index:09d}",
            "etat": "active",
            "date_remise": handed_over,
            "date_expiration": expires,
        }
        for index in range(count)
    ]


def counting_server() -> Any:
    """The test server of ``tests/smtp_support.py`` (127.0.0.1, a free port, connections
    counted at EHLO) with a handler that counts messages and bytes instead of keeping them:
    the recording handler parses every message with the ``email`` package (about 3 ms for
    a digest here), a cost of the test server that the sender would be charged with."""
    sys.path.insert(0, str(ROOT))
    from tests.smtp_support import RecordingHandler, SmtpTestServer

    class CountingHandler(RecordingHandler):
        messages = 0
        size = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with self.condition:
                self.messages += 1
                self.size += len(envelope.original_content or b"")
                self.condition.notify_all()
            return "250 2.0.0 OK"

        def reset(self) -> None:
            with self.condition:
                self.messages = self.size = self.connections = 0

        def wait_for(self, count: int, timeout: float) -> int:
            with self.condition:
                self.condition.wait_for(lambda: self.messages >= count, timeout)
                return self.messages

    server = SmtpTestServer()
    server.handler = CountingHandler()
    return server


@dataclass
class Received:
    messages: int
    connections: int
    mean_bytes: float


def received(server: Any, count: int) -> Received:
    """What the server got (waiting a little for the last message), then forget it."""
    handler = server.handler
    messages = handler.wait_for(count, timeout=30.0)
    with handler.condition:
        got = Received(messages, handler.connections, handler.size / max(messages, 1))
    handler.reset()
    return got


def bench_sending(count: int) -> None:
    from cartes.cli.context import os_login
    from fixtures.synthetic import write_csv

    login = os_login()
    day = today()
    with tempfile.TemporaryDirectory(prefix="cartes-bench-envoi-") as folder:
        base = Path(folder)
        (base / "cartes.toml").write_text("", encoding="utf-8")
        env = user_environment(
            CARTES_CONFIG=str(base / "cartes.toml"),
            CARTES_DATABASE_URL=f"sqlite:///{base / 'envoi.db'}",
        )
        source = base / "titulaires.csv"
        write_csv(source, holder_rows(count, day))
        run([CARTES, "--operateur", login, "init"], env, PLAN_TIMEOUT_S)
        imported = run([CARTES, "--operateur", login, "importer", str(source)], env, PLAN_TIMEOUT_S)
        with counting_server() as server:
            smtp_env = {
                **env,
                "CARTES_SMTP__HOST": server.host,
                "CARTES_SMTP__PORT": str(server.port),
                "CARTES_SMTP__SENDER": SENDER,
            }
            command = [CARTES, "--operateur", login, "alertes", "envoyer"]
            sent = run(command, smtp_env, SEND_TIMEOUT_S)
            got = received(server, count)
            argv = [sys.executable, __file__, "--worker", "smtp", str(server.port), str(count)]
            bare = run(argv, user_environment(), SEND_TIMEOUT_S)
            bare_got = received(server, count)
    bare_s = json.loads(bare.stdout)["seconds"]
    conform = got.messages == count and got.connections == 1

    print(f"Envoi des alertes : {count} titulaires, une clé RPVA expirant dans 10 jours chacun")
    print(f"  import préalable         : {imported.seconds:.1f} s (hors mesure)")
    print(f"  cartes alertes envoyer   : {sent.stdout.decode().strip()}")
    print(
        f"  durée                    : {sent.seconds:.2f} s "
        f"({count / sent.seconds:.0f} courriels/s), mémoire max {sent.peak_mb:.0f} Mo"
    )
    print(
        f"  serveur                  : {got.messages} messages reçus "
        f"({got.mean_bytes:.0f} octets en moyenne), {got.connections} connexion"
        f"{'s' if got.connections > 1 else ''}"
        + (" (réutilisée)" if got.connections == 1 else " (ATTENDU : 1)")
    )
    print(
        f"  objectif                 : ≤ {TARGET_SEND_S:.0f} s "
        f"({verdict(sent.seconds, TARGET_SEND_S)})"
        + ("" if conform else " ; MESSAGES OU CONNEXIONS NON CONFORMES")
    )
    print(
        f"  référence smtplib seul   : {bare_s:.2f} s pour {bare_got.messages} messages de "
        f"{bare_got.mean_bytes:.0f} octets ({bare_got.connections} connexion), "
        f"processus {bare.seconds:.2f} s, mémoire max {bare.peak_mb:.0f} Mo"
    )
    print(
        f"  rapport commande/smtplib : {sent.seconds / bare_s:.1f} "
        "(commande entière / boucle d'envoi)"
    )


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        workers = {"plan": worker_plan, "smtp": worker_smtp}
        workers[sys.argv[2]](*sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description="Mesure de la planification et de l'envoi")
    parser.add_argument("--supports", type=int, default=1_000_000)
    parser.add_argument("--courriels", type=int, default=10_000)
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()
    bench_planning(args.supports, args.repetitions)
    print()
    bench_sending(args.courriels)


if __name__ == "__main__":
    main()
