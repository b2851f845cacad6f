"""Import of 200,000 CSV rows: time and peak memory of ``cartes importer``.

Targets (issue 2): ≤ 20 s and ≤ 500 MB on the 2-core reference machine.

Baseline, measured in the same run on the same file: the same rows read with the ``csv``
module and inserted as they are into a bare SQLite table (no checks, no journal, no
index). The ratio says what validation, natural keys and the hash-chained journal cost.

    python benchmarks/import_csv.py [--lignes 200000]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sqlite3
import tempfile
import time
from pathlib import Path

from _common import CACHE, CARTES, run, today, user_environment, verdict

from fixtures.synthetic import IMPORT_COLUMNS, generate_rows, write_csv

TARGET_SECONDS = 20.0
TARGET_MB = 500.0


def sample_file(rows: int) -> Path:
    """The CSV of ``rows`` synthetic rows (kept in the cache for the day)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    day = today()
    path = CACHE / f"import-{rows}-{day.isoformat()}.csv"
    if not path.exists():
        generated = itertools.islice(generate_rows(rows, seed=1, today=day), rows)
        write_csv(path.with_suffix(".tmp"), generated)
        path.with_suffix(".tmp").rename(path)
    return path


def baseline(path: Path, database: Path) -> float:
    start = time.perf_counter()
    connection = sqlite3.connect(database)
    columns = ", ".join(IMPORT_COLUMNS)
    connection.execute(f"CREATE TABLE raw ({columns})")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter=";")
        next(reader)
        marks = ", ".join("?" * len(IMPORT_COLUMNS))
        connection.executemany(f"INSERT INTO raw VALUES ({marks})", reader)
    connection.commit()
    connection.close()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description="Mesure de l'import CSV")
    parser.add_argument("--lignes", type=int, default=200_000)
    args = parser.parse_args()
    path = sample_file(args.lignes)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/cartes.db"
        env = user_environment(CARTES_DATABASE_URL=url)
        run([CARTES, "init"], env)
        first = run([CARTES, "importer", str(path)], env)
        again = run([CARTES, "importer", str(path)], env)
        base = baseline(path, Path(folder) / "baseline.db")
    rows = args.lignes
    print(f"Import CSV : {rows} lignes ({path.stat().st_size / 1e6:.1f} Mo, UTF-8, « ; »)")
    print(
        f"  cartes importer       : {first.seconds:6.2f} s  {rows / first.seconds:8.0f} lignes/s"
        f"  mémoire max {first.peak_mb:5.0f} Mo"
    )
    time_verdict = verdict(first.seconds, TARGET_SECONDS)
    memory_verdict = verdict(first.peak_mb, TARGET_MB)
    print(
        f"  objectif              : ≤ {TARGET_SECONDS:.0f} s ({time_verdict}), "
        f"≤ {TARGET_MB:.0f} Mo ({memory_verdict})"
    )
    print(f"  réimport (idempotent) : {again.seconds:6.2f} s  mémoire max {again.peak_mb:5.0f} Mo")
    print(f"  référence csv+sqlite3 : {base:6.2f} s (lecture et insertion brutes)")
    print(f"  rapport cartes/référence : {first.seconds / base:.1f}")


if __name__ == "__main__":
    main()
