"""The lease that keeps a second ``cartes service`` from sending: taken, refused, expired,
taken from a dead process of this host, renewed, released, and raced for."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading

import pytest

from inventaire import db, lease
from inventaire.lease import LeaseStatus

NAME = "service"


def take(engine, now, *, host: str, pid: int, duration_s: float = 60) -> LeaseStatus:
    return lease.acquire(
        engine,
        name=NAME,
        owner=lease.owner_name(host, pid),
        host=host,
        pid=pid,
        now=now,
        duration_s=duration_s,
    )


def who(host: str, pid: int) -> dict[str, object]:
    return {"name": NAME, "owner": lease.owner_name(host, pid), "host": host, "pid": pid}


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_free_lease_is_taken_and_then_refused_to_another(engine, clock):
    mine = take(engine, clock.now(), host="serveur-a", pid=os.getpid())
    assert mine.held and mine.taken_over is None
    assert mine.expires_at == clock.now() + dt.timedelta(seconds=60)

    theirs = take(engine, clock.now(), host="serveur-b", pid=4242)
    assert not theirs.held
    assert (theirs.owner, theirs.host, theirs.pid, theirs.expires_at) == (
        "cartes service serveur-a pid " + str(os.getpid()),
        "serveur-a",
        os.getpid(),
        clock.now() + dt.timedelta(seconds=60),
    )


def test_taking_it_again_extends_our_own_lease(engine, clock):
    take(engine, clock.now(), host="serveur-a", pid=os.getpid())
    clock.advance(seconds=30)
    again = take(engine, clock.now(), host="serveur-a", pid=os.getpid())
    assert again.held and again.taken_over is None
    assert lease.current(engine, name=NAME).expires_at == clock.now() + dt.timedelta(seconds=60)


def test_expired_lease_is_taken_over(engine, clock):
    take(engine, clock.now(), host="serveur-a", pid=4242)
    clock.advance(seconds=59)
    assert not take(engine, clock.now(), host="serveur-b", pid=4343).held
    clock.advance(seconds=1)
    status = take(engine, clock.now(), host="serveur-b", pid=4343)
    assert status.held
    assert status.taken_over == "cartes service serveur-a pid 4242"
    assert lease.current(engine, name=NAME).owner == "cartes service serveur-b pid 4343"


def test_lease_of_a_dead_process_of_this_host_is_taken_at_once(engine, clock, dead_pid):
    take(engine, clock.now(), host="serveur-a", pid=dead_pid)
    status = take(engine, clock.now(), host="serveur-a", pid=os.getpid())
    assert status.held
    assert status.taken_over == f"cartes service serveur-a pid {dead_pid}"


def test_lease_of_another_host_is_not_judged_by_our_processes(engine, clock, dead_pid):
    # That pid means nothing here: the holder runs elsewhere, we wait for the expiry.
    take(engine, clock.now(), host="serveur-a", pid=dead_pid)
    assert not take(engine, clock.now(), host="serveur-b", pid=os.getpid()).held


def test_lease_of_a_live_process_of_this_host_is_respected(engine, clock):
    take(engine, clock.now(), host="serveur-a", pid=os.getppid())
    assert not take(engine, clock.now(), host="serveur-a", pid=os.getpid()).held


def test_renew_extends_and_fails_once_taken_by_another(engine, clock):
    take(engine, clock.now(), host="serveur-a", pid=4242, duration_s=60)
    clock.advance(seconds=40)
    assert lease.renew(engine, **who("serveur-a", 4242), now=clock.now(), duration_s=60)
    assert lease.current(engine, name=NAME).expires_at == clock.now() + dt.timedelta(seconds=60)
    assert not lease.renew(engine, **who("serveur-b", 4343), now=clock.now(), duration_s=60)

    clock.advance(seconds=61)  # serveur-a stalled: its lease expired and was taken
    assert take(engine, clock.now(), host="serveur-b", pid=4343).held
    assert not lease.renew(engine, **who("serveur-a", 4242), now=clock.now(), duration_s=60)
    assert lease.current(engine, name=NAME).owner == "cartes service serveur-b pid 4343"


def test_release_only_by_the_holder(engine, clock):
    take(engine, clock.now(), host="serveur-a", pid=4242)
    assert not lease.release(engine, **who("serveur-b", 4343))
    assert lease.current(engine, name=NAME) is not None
    assert lease.release(engine, **who("serveur-a", 4242))
    assert lease.current(engine, name=NAME) is None
    assert not lease.release(engine, **who("serveur-a", 4242))
    # Released: the next one takes it at once, without waiting for the old expiry.
    assert take(engine, clock.now(), host="serveur-b", pid=4343).held


@pytest.mark.parametrize("situation", ["libre", "expire"])
def test_racing_processes_exactly_one_wins(database, clock, situation):
    """Six would-be services, each with its own engine (its own connections), ask for the
    lease at the same moment: one gets it, the others are told who has it."""
    contenders = 6
    if situation == "expire":
        take(database.engine, clock.now() - dt.timedelta(minutes=5), host="ancien", pid=1)
    engines = [db.make_engine(database.url, busy_timeout_s=10) for _ in range(contenders)]
    for engine in engines:  # connect before the race, not during it
        with engine.connect():
            pass
    barrier = threading.Barrier(contenders)
    results: list[LeaseStatus | BaseException] = [None] * contenders  # type: ignore[list-item]

    def contend(index: int) -> None:
        barrier.wait(timeout=10)
        try:
            results[index] = take(engines[index], clock.now(), host=f"serveur-{index}", pid=100)
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for engine in engines:
        engine.dispose()

    assert all(isinstance(result, LeaseStatus) for result in results), results
    winners = [result for result in results if result.held]  # type: ignore[union-attr]
    assert len(winners) == 1
    holder = lease.current(database.engine, name=NAME)
    assert holder is not None and holder.owner == winners[0].owner
    # The losers were told who won.
    losers = [result for result in results if not result.held]  # type: ignore[union-attr]
    assert {loser.owner for loser in losers} == {winners[0].owner}
