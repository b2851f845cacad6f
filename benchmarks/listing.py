"""``cartes liste --expire-dans 60 --format json`` over 1,000,000 credentials in SQLite.

Target (issue 2): ≤ 1 s, with the query plan showing the index in use.

Baselines, measured in the same run on the same database: the interpreter's own start-up
(``python -c pass``) and the bare listing query run with ``sqlite3`` (no settings, no
command line, no output). The database is built once through ``cartes importer`` and kept
in ``benchmarks/.cache`` for the day (expiries are relative to today).

    python benchmarks/listing.py [--supports 1000000] [--repetitions 7]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path

from _common import CACHE, CARTES, run, today, user_environment, verdict

from fixtures.synthetic import generate_rows, write_csv
from inventaire import migrations
from inventaire.listing import CredentialFilter, json_object_sql, listing_sql

TARGET = TARGET_SECONDS = 1.0


def database(credentials: int) -> Path:
    """A database of ``credentials`` synthetic credentials, built by the import."""
    CACHE.mkdir(parents=True, exist_ok=True)
    day = today()
    path = CACHE / f"listing-{credentials}-{day.isoformat()}-schema{migrations.HEAD}.db"
    if path.exists():
        return path
    source = CACHE / f"listing-{credentials}-{day.isoformat()}.csv"
    print(f"Construction de la base de {credentials} supports (import, une fois par jour)…")
    write_csv(source, itertools.islice(generate_rows(credentials, seed=1, today=day), credentials))
    building = path.with_suffix(".tmp")
    building.unlink(missing_ok=True)
    env = user_environment(CARTES_DATABASE_URL=f"sqlite:///{building}")
    run([CARTES, "init"], env)
    built = run([CARTES, "importer", str(source)], env)
    print(f"  import : {built.seconds:.1f} s, mémoire max {built.peak_mb:.0f} Mo")
    source.unlink()
    building.rename(path)
    for suffix in ("-wal", "-shm"):
        Path(f"{building}{suffix}").unlink(missing_ok=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description="Mesure de cartes liste")
    parser.add_argument("--supports", type=int, default=1_000_000)
    parser.add_argument("--repetitions", type=int, default=7)
    args = parser.parse_args()
    path = database(args.supports)
    env = user_environment(CARTES_DATABASE_URL=f"sqlite:///{path}")
    command = [CARTES, "liste", "--expire-dans", "60", "--format", "json"]
    run(command, env)  # warm the page cache, as a second listing of the day would be
    runs = [run(command, env) for _ in range(args.repetitions)]
    objects = len(json.loads(runs[0].stdout))
    startup = [run([sys.executable, "-c", "pass"], env).seconds for _ in range(args.repetitions)]

    sql, params = listing_sql(
        CredentialFilter(expires_within=60), today(), columns=json_object_sql("sqlite")
    )
    connection = sqlite3.connect(path)
    plan = connection.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    bare = []
    for _ in range(args.repetitions):
        start = time.perf_counter()
        connection.execute(sql, params).fetchall()
        bare.append(time.perf_counter() - start)
    connection.close()

    seconds = [r.seconds for r in runs]
    median = statistics.median(seconds)
    print(f"cartes liste --expire-dans 60 --format json : {args.supports} supports en base")
    print(f"  objets listés            : {objects}")
    print(
        f"  durée (médiane de {len(seconds)})    : {median:.3f} s "
        f"(min {min(seconds):.3f}, max {max(seconds):.3f}), mémoire max "
        f"{max(r.peak_mb for r in runs):.0f} Mo"
    )
    print(
        f"  objectif                 : ≤ {TARGET_SECONDS:.0f} s ({verdict(median, TARGET_SECONDS)})"
    )
    print(f"  référence python -c pass : {statistics.median(startup):.3f} s")
    print(f"  référence requête seule  : {statistics.median(bare):.3f} s (sqlite3, même SQL)")
    print(
        f"  rapports : commande/requête {median / statistics.median(bare):.1f}, "
        f"commande/démarrage {median / statistics.median(startup):.1f}"
    )
    print("  plan de requête :")
    for row in plan:
        print(f"    {row[-1]}")


if __name__ == "__main__":
    main()
