"""The terminal UI over 1,000,000 credentials in SQLite, headless.

Targets (issue 9): from start to the first rows of the inventory painted ≤ 1.5 s, and to
the dashboard painted ≤ 1.5 s; a character typed in the filter box to the refreshed table,
median ≤ 150 ms and p95 ≤ 300 ms; one page of scrolling ≤ 50 ms; memory ≤ 300 MB.

Each measure runs in a process of its own (``benchmarks/_tui_probe.py``), the app built by
``build_app`` as ``cartes tui`` builds it. Baselines, measured in the same run on the same
database: the start of an interpreter that imports Textual (``python -c "import
textual.app"``), and the bare ``browse.page`` call behind the table. For comparison,
Textual's own DataTable loaded with 100,000 rows of the same inventory. The database is the
one ``benchmarks/search.py`` uses (``listing.py``'s, brought to the current schema; same
helper, same cache).

    python benchmarks/tui.py [--supports 1000000] [--repetitions 5] [--datatable 100000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from _common import ROOT, run, user_environment, verdict
from search import database

PROBE = str(ROOT / "benchmarks" / "_tui_probe.py")
FIRST_PAINT_S = 1.5
TYPING_MEDIAN_S = 0.150
TYPING_P95_S = 0.300
PAGE_S = 0.050
MEMORY_MB = 300
# What an operator types: names, a town, a kind written in serials, serial fragments.
WORDS = ["dubois", "martin", "angers", "rpva", "ce00", "jus0a", "beatrice"]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed_paint(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Start → paint of a probe (seconds), and its peak memory (MB)."""
    started = time.time()
    result = run([sys.executable, PROBE, *argv], env, timeout_s=300)
    reported = json.loads(result.stdout)
    return reported["painted_at"] - started, max(result.peak_mb, reported["peak_mb"])


def main() -> None:
    parser = argparse.ArgumentParser(description="Mesure de l'interface en terminal")
    parser.add_argument("--supports", type=int, default=1_000_000)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--datatable", type=int, default=100_000)
    args = parser.parse_args()
    path: Path = database(args.supports)
    env = user_environment(CARTES_DATABASE_URL=f"sqlite:///{path}")

    # Warm the page cache, as a second start of the day would be.
    timed_paint(["premier-affichage", "inventaire"], env)
    timed_paint(["premier-affichage", "tableau"], env)

    baseline = [
        run([sys.executable, "-c", "import textual.app"], env).seconds
        for _ in range(args.repetitions)
    ]
    inventory = [
        timed_paint(["premier-affichage", "inventaire"], env) for _ in range(args.repetitions)
    ]
    board = [timed_paint(["premier-affichage", "tableau"], env) for _ in range(args.repetitions)]
    session = run([sys.executable, PROBE, "session", *WORDS], env, timeout_s=600)
    figures = json.loads(session.stdout)
    stock = timed_paint(["datatable", str(args.datatable)], env) if args.datatable else None

    start = statistics.median(baseline)
    inventory_s = statistics.median(seconds for seconds, _ in inventory)
    board_s = statistics.median(seconds for seconds, _ in board)
    typing = [entry["seconds"] for entry in figures["typing"]]
    paging = figures["paging"]
    bare_typing = statistics.median(figures["bare_typing"])
    bare_paging = statistics.median(figures["bare_paging"])
    peak = max(
        session.peak_mb,
        figures["peak_mb"],
        *(mb for _, mb in inventory),
        *(mb for _, mb in board),
    )

    print(f"Interface en terminal (sans affichage, 160×50) : {args.supports} supports en base")
    print(
        f"  démarrage → premières lignes de l'inventaire : {inventory_s:.3f} s "
        f"(médiane de {len(inventory)}), objectif ≤ {FIRST_PAINT_S} s "
        f"({verdict(inventory_s, FIRST_PAINT_S)})"
    )
    print(
        f"  démarrage → tableau de bord affiché          : {board_s:.3f} s "
        f"(médiane de {len(board)}), objectif ≤ {FIRST_PAINT_S} s "
        f"({verdict(board_s, FIRST_PAINT_S)})"
    )
    print(
        f"  caractère tapé → liste filtrée               : médiane "
        f"{statistics.median(typing) * 1000:.0f} ms, p95 {p95(typing) * 1000:.0f} ms, "
        f"max {max(typing) * 1000:.0f} ms sur {len(typing)} caractères "
        f"({', '.join(WORDS)})"
    )
    print(
        f"    objectif médiane ≤ {TYPING_MEDIAN_S * 1000:.0f} ms "
        f"({verdict(statistics.median(typing), TYPING_MEDIAN_S)}), p95 ≤ "
        f"{TYPING_P95_S * 1000:.0f} ms ({verdict(p95(typing), TYPING_P95_S)})"
    )
    slowest = sorted(figures["typing"], key=lambda entry: -entry["seconds"])[:3]
    print(
        "    plus lents : "
        + ", ".join(f"« {e['text']} » {e['seconds'] * 1000:.0f} ms" for e in slowest)
    )
    print(
        f"  une page plus bas (PgDn)                     : médiane "
        f"{statistics.median(paging) * 1000:.1f} ms, p95 {p95(paging) * 1000:.1f} ms, max "
        f"{max(paging) * 1000:.1f} ms sur {len(paging)} pages, objectif ≤ "
        f"{PAGE_S * 1000:.0f} ms ({verdict(p95(paging), PAGE_S)})"
    )
    print(
        f"  mémoire max (tous les processus de l'interface) : {peak:.0f} Mo, objectif ≤ "
        f"{MEMORY_MB} Mo ({verdict(peak, MEMORY_MB)})"
    )
    print(f"  référence python -c 'import textual.app'     : {start:.3f} s")
    print(
        f"  référence browse.page seul                   : filtre {bare_typing * 1000:.1f} ms, "
        f"page suivante {bare_paging * 1000:.1f} ms (médianes)"
    )
    print(
        f"  rapports : inventaire/démarrage Textual {inventory_s / start:.1f}, "
        f"tableau/démarrage Textual {board_s / start:.1f}, "
        f"frappe/requête {statistics.median(typing) / bare_typing:.1f}, "
        f"page/requête {statistics.median(paging) / bare_paging:.1f}"
    )
    if stock is not None:
        stock_s, stock_mb = stock
        print(
            f"  comparaison : DataTable de Textual chargée de {args.datatable} lignes : "
            f"{stock_s:.2f} s jusqu'au premier affichage, {stock_mb:.0f} Mo "
            f"({stock_s / inventory_s:.0f} fois l'inventaire paginé)"
        )


if __name__ == "__main__":
    main()
