"""Shared pieces of the benchmark scripts: where caches live, how commands are timed."""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache"
CARTES = str(Path(sys.executable).with_name("cartes"))


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/Paris")).date()


def user_environment(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no CARTES_* leftovers, and none of the
    interpreter switches some sandboxes set (unbuffered output, no bytecode cache), which a
    real installation does not have and which would slow every command."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CARTES_")
        and key not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")
    }
    environment.update(extra)
    return environment


@dataclass
class Run:
    seconds: float
    peak_mb: float
    stdout: bytes


def run(argv: list[str], env: dict[str, str], timeout_s: float | None = None) -> Run:
    """Run a command to completion: its wall time, its own peak resident memory (from
    ``wait4``), and what it printed. With ``timeout_s``, the command is killed once that
    much time has passed, so that a hang fails the benchmark instead of blocking it."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        killer = threading.Timer(timeout_s, process.kill) if timeout_s else None
        if killer is not None:
            killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            if killer is not None:
                killer.cancel()
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            sys.stderr.write(err.read().decode(errors="replace"))
            killed = " (tué : délai dépassé)" if timeout_s and seconds >= timeout_s else ""
            raise SystemExit(f"échec de {' '.join(argv)} (code {process.returncode}){killed}")
        return Run(seconds, usage.ru_maxrss / 1024, out.read())


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(measured: float, target: float) -> str:
    """For a ceiling: is ``measured`` at most ``target``?"""
    return "atteint" if measured <= target else "NON ATTEINT"


def at_least(measured: float, target: float) -> str:
    """For a floor: is ``measured`` at least ``target``?"""
    return "atteint" if measured >= target else "NON ATTEINT"
