"""``cartes web`` running: the status page on a Unix socket (or a loopback port) for nginx,
and the metrics on their own loopback port, in one process and one event loop (uvicorn).

SIGTERM or SIGINT stops both cleanly: requests under way are finished first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

LOOPBACK = "127.0.0.1"


class _Server(uvicorn.Server):
    """A uvicorn server that leaves the signals to ``run``, which stops both servers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def unix_socket(path: Path) -> socket.socket:
    """A listening socket at ``path``, readable and writable by its owner and group only
    (0660): nginx's user reaches it through the group. A stale socket file is replaced."""
    if path.is_socket():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o117)
    try:
        listener.bind(str(path))
    finally:
        os.umask(previous)
    listener.listen(2048)
    return listener


def loopback_socket(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:``port`` (0: a free port)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((LOOPBACK, port))
        listener.listen(2048)
    except OSError:
        listener.close()
        raise
    return listener


def _config(app: ASGIApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_config=None,  # our own French lines; nginx keeps the access log
        access_log=False,
        lifespan="off",
        http="httptools",
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=75,  # above nginx's upstream keepalive_timeout (60 s)
    )


def run(
    page: ASGIApp,
    page_socket: socket.socket,
    *,
    metrics: ASGIApp | None = None,
    metrics_socket: socket.socket | None = None,
    ready: Callable[[], None] = lambda: None,
) -> None:
    """Serve ``page`` on ``page_socket`` and ``metrics`` on ``metrics_socket`` (both
    listening already: see ``unix_socket`` and ``loopback_socket``) until SIGTERM or
    SIGINT; ``ready`` is called once both serve."""
    pairs = [(_Server(_config(page)), page_socket)]
    if metrics is not None and metrics_socket is not None:
        pairs.append((_Server(_config(metrics)), metrics_socket))
    asyncio.run(_serve(pairs, ready))


async def _serve(pairs: list[tuple[_Server, socket.socket]], ready: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    servers = [server for server, _ in pairs]

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    tasks = [asyncio.create_task(server.serve(sockets=[listener])) for server, listener in pairs]
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks):
            break
        await asyncio.sleep(0.02)
    else:
        ready()
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop()
    await asyncio.gather(*tasks)
