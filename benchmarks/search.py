"""The filter box, the inventory's pages and the dashboard over 1,000,000 credentials in
SQLite; ``cartes liste --recherche`` and the summary end to end.

Targets (issue: terminal UI): start → first rows ≤ 1.5 s; start → dashboard ≤ 1.5 s; a
character typed in the filter box → refreshed table: median ≤ 150 ms, p95 ≤ 300 ms; one
page of scrolling ≤ 50 ms; memory ≤ 300 MB; the same for ``cartes liste --recherche`` and
``cartes``.

Baselines, measured in the same run on the same database: ``python -c pass``; a bare
``SELECT 1``; the text search as it was before the trigram index (LIKE over every holder's
search text) and the summary's former GROUP BY over every credential, both with
``sqlite3``. The database is that of ``benchmarks/listing.py`` (built once a day), or a
copy of an older schema's one brought up to date by ``cartes init`` (the migration is
timed).

    python benchmarks/search.py [--supports 1000000] [--repetitions 7]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import CACHE, CARTES, run, today, user_environment, verdict
from listing import database as built_database

from inventaire import browse, dashboard, dbapi, migrations
from inventaire.enums import CredentialKind

RENEWAL = browse.Renewal(
    lead_days={
        CredentialKind.RPVA_KEY: 45,
        CredentialKind.AGENT_CARD: 60,
        CredentialKind.EXPERT_CARD: 30,
        CredentialKind.TEMPORARY_CARD: 15,
    },
    margin_days=15,
)
# The same, for the commands that time a fresh process.
RENEWAL_CODE = (
    "import datetime as dt; from inventaire.browse import Renewal; "
    "from inventaire.enums import CredentialKind as K; "
    "RENEWAL = Renewal({K.RPVA_KEY: 45, K.AGENT_CARD: 60, K.EXPERT_CARD: 30, "
    "K.TEMPORARY_CARD: 15}, 15)"
)
PAGE = 100
KEYSTROKE_MEDIAN, KEYSTROKE_P95 = 0.150, 0.300
SCROLL = 0.050
START = 1.5
MEMORY_MB = 300.0
# What people type in the filter box, one character at a time.
TYPED = ("dubois", "martin claire", "rpva-43", "élodie", "saumur", "jus")

OLD_SEARCH = """SELECT c.id FROM credential c
JOIN holder h ON h.id = c.holder_id JOIN organisation o ON o.id = h.organisation_id
WHERE (h.search_text LIKE :text ESCAPE '\\' OR lower(c.serial) LIKE :text ESCAPE '\\')
ORDER BY c.expires_on IS NULL, c.expires_on, c.id LIMIT 20"""
OLD_SUMMARY = "SELECT kind, state, count(*) FROM credential GROUP BY kind, state"


def database(credentials: int) -> Path:
    """The benchmark database at this schema: migrated from an older one of the day when
    there is one (and the migration timed), else built by ``listing.database``."""
    day = today()
    path = CACHE / f"listing-{credentials}-{day.isoformat()}-schema{migrations.HEAD}.db"
    older = sorted(CACHE.glob(f"listing-{credentials}-{day.isoformat()}-schema*.db"))
    older = [p for p in older if p != path]
    if not path.exists() and older:
        building = path.with_suffix(".tmp")
        shutil.copy(older[-1], building)
        env = user_environment(CARTES_DATABASE_URL=f"sqlite:///{building}")
        migrated = run([CARTES, "init"], env)
        print(
            f"Migration de {older[-1].name} : {migrated.seconds:.1f} s, "
            f"mémoire max {migrated.peak_mb:.0f} Mo"
        )
        building.rename(path)
        for suffix in ("-wal", "-shm"):
            Path(f"{building}{suffix}").unlink(missing_ok=True)
    return built_database(credentials) if not path.exists() else path


def timed(function: Callable[[], Any], repetitions: int) -> list[float]:
    function()  # warm the page cache and the statement cache
    seconds = []
    for _ in range(repetitions):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def show(label: str, seconds: list[float], target: float | None = None) -> float:
    middle = statistics.median(seconds)
    line = f"  {label:<44} médiane {middle * 1000:8.1f} ms  p95 {p95(seconds) * 1000:8.1f} ms"
    if target is not None:
        line += f"  (≤ {target * 1000:.0f} ms : {verdict(middle, target)})"
    print(line)
    return middle


def main() -> None:
    parser = argparse.ArgumentParser(description="Mesure de la recherche et du tableau de bord")
    parser.add_argument("--supports", type=int, default=1_000_000)
    parser.add_argument("--repetitions", type=int, default=7)
    args = parser.parse_args()
    reps = args.repetitions
    path = database(args.supports)
    url = f"sqlite:///{path}"
    env = user_environment(CARTES_DATABASE_URL=url)
    day = today()
    print(f"Recherche, pages et tableau de bord : {args.supports} supports en base ({path.name})")

    # Baselines.
    startup = [run([sys.executable, "-c", "pass"], env).seconds for _ in range(reps)]
    raw = sqlite3.connect(path)
    select_1 = timed(lambda: raw.execute("SELECT 1").fetchall(), reps)
    old_search = timed(lambda: raw.execute(OLD_SEARCH, {"text": "%dubois%"}).fetchall(), 3)
    old_summary = timed(lambda: raw.execute(OLD_SUMMARY).fetchall(), 3)
    raw.close()
    print("Références :")
    show("python -c pass", startup)
    show("SELECT 1 (sqlite3)", select_1)
    show("ancienne recherche LIKE « dubois » (sqlite3)", old_search)
    show("ancien comptage GROUP BY (sqlite3)", old_summary)

    print("Commandes, de bout en bout :")
    command = [CARTES, "liste", "--recherche", "dubois", "--limite", "20"]
    run(command, env)
    listing_runs = [run(command, env) for _ in range(reps)]
    listed = show(
        "cartes liste --recherche dubois --limite 20", [r.seconds for r in listing_runs], START
    )
    summary_runs = [run([CARTES, "resume"], env) for _ in range(reps)]
    summary = show("cartes resume", [r.seconds for r in summary_runs], START)
    # As the summary runs once main.py names the module without SQLAlchemy.
    direct = (
        "import sys; from cartes.cli.main import build_parser; "
        "from cartes.cli.context import Context; from cartes.cli.summary_cmd import cmd_summary; "
        "from inventaire.clock import SystemClock; "
        "sys.exit(cmd_summary(Context(config_file=None, operator_login='x', "
        "clock=SystemClock(), out=sys.stdout, err=sys.stderr), None))"
    )
    direct_runs = [run([sys.executable, "-c", direct], env) for _ in range(reps)]
    show("résumé sans SQLAlchemy (summary_cmd)", [r.seconds for r in direct_runs], START)
    dashboard_start = (
        f"{RENEWAL_CODE}; from inventaire import dashboard, dbapi; "
        f"c = dbapi.connect({url!r}); "
        "dashboard.compute(c, today=dt.date.today(), now=dt.datetime.now(dt.UTC), "
        "renewal=RENEWAL)"
    )
    dashboard_runs = [run([sys.executable, "-c", dashboard_start], env) for _ in range(reps)]
    show("démarrage → tableau de bord (processus neuf)", [r.seconds for r in dashboard_runs], START)
    first_rows = (
        f"{RENEWAL_CODE}; from inventaire import browse, dbapi; "
        f"c = dbapi.connect({url!r}); q = browse.InventoryQuery(); "
        "browse.page(c, q, today=dt.date.today(), renewal=RENEWAL, offset=0, limit=100); "
        "browse.count(c, q, today=dt.date.today())"
    )
    first_runs = [run([sys.executable, "-c", first_rows], env) for _ in range(reps)]
    show("démarrage → premières lignes (processus neuf)", [r.seconds for r in first_runs], START)
    peak = max(r.peak_mb for r in [*listing_runs, *summary_runs, *dashboard_runs, *first_runs])
    print(
        f"  mémoire max des commandes : {peak:.0f} Mo "
        f"(≤ {MEMORY_MB:.0f} : {verdict(peak, MEMORY_MB)})"
    )

    connection = dbapi.connect(url)

    def page(query: browse.InventoryQuery, offset: int = 0) -> list[browse.InventoryRow]:
        return browse.page(connection, query, today=day, renewal=RENEWAL, offset=offset, limit=PAGE)

    print(f"Première page ({PAGE} lignes) selon le filtre, tri par expiration :")
    for text in ("", "d", "dub", "dubois", "dubois jean"):
        query = browse.InventoryQuery(text=text)
        show(f"filtre « {text} »", timed(lambda query=query: page(query), reps))
    print("Première page selon le tri (sans filtre), croissant / décroissant :")
    for sort in browse.SortKey:
        for descending in (False, True):
            query = browse.InventoryQuery(sort=sort, descending=descending)
            label = f"{sort.value} {'décroissant' if descending else 'croissant'}"
            show(label, timed(lambda query=query: page(query), 3))
    print("Page suivante (défilement) selon la position :")
    for sort in (browse.SortKey.EXPIRY, browse.SortKey.ID, browse.SortKey.HOLDER):
        for offset in (0, 10_000, 500_000):
            query = browse.InventoryQuery(sort=sort)
            show(
                f"{sort.value}, position {offset}",
                timed(lambda query=query, offset=offset: page(query, offset), 3),
                SCROLL,
            )
    print("Frappe dans la zone de filtre (page + compte borné à 10 000), par caractère :")
    keystrokes = []
    for word in TYPED:
        for end in range(1, len(word) + 1):
            query = browse.InventoryQuery(text=word[:end])

            def refresh(query: browse.InventoryQuery = query) -> None:
                page(query)
                browse.count(connection, query, today=day, at_most=10_000)

            keystrokes += timed(refresh, 1)
    middle = statistics.median(keystrokes)
    print(
        f"  {len(keystrokes)} frappes : médiane {middle * 1000:.1f} ms "
        f"({verdict(middle, KEYSTROKE_MEDIAN)}),"
        f" p95 {p95(keystrokes) * 1000:.1f} ms ({verdict(p95(keystrokes), KEYSTROKE_P95)}),"
        f" max {max(keystrokes) * 1000:.1f} ms"
    )
    print("Comptes :")
    for text in ("", "dubois", "d"):
        query = browse.InventoryQuery(text=text)
        show(
            f"count(« {text} »)",
            timed(lambda query=query: browse.count(connection, query, today=day), 3),
        )
        show(
            f"count(« {text} », at_most=10 000)",
            timed(
                lambda query=query: browse.count(connection, query, today=day, at_most=10_000), 3
            ),
        )
    now = dt.datetime.now(dt.UTC)
    compute = timed(
        lambda: dashboard.compute(connection, today=day, now=now, renewal=RENEWAL), reps
    )
    print("Tableau de bord :")
    show("dashboard.compute", compute)
    connection.close()
    print(
        f"Rapports : recherche ancienne/nouvelle (requête) "
        f"{statistics.median(old_search) / max(statistics.median(keystrokes), 1e-9):.1f} ; "
        f"cartes liste --recherche / python -c pass {listed / statistics.median(startup):.1f} ; "
        f"cartes resume / ancien comptage seul {summary / statistics.median(old_summary):.1f}"
    )


if __name__ == "__main__":
    main()
