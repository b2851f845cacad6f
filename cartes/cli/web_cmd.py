"""``cartes web`` (the lawyers' status page behind nginx, and the metrics) and
``cartes web jeton`` (the secret nginx adds to each request)."""

from __future__ import annotations

import argparse

from cartes import messages
from cartes.cli.context import Context
from cartes.web import secret as web_secret
from inventaire.errors import InventaireError
from pki import PkiError


def cmd_web_jeton(ctx: Context, args: argparse.Namespace) -> int:
    """Create the shared secret (kept if it exists) and, with ``--nginx``, the file nginx
    includes to send it. The secret itself is never printed."""
    path = ctx.settings.web.secret_file
    existed = path.exists()
    try:
        value = web_secret.create(path)
        if args.nginx is not None:
            web_secret.write_nginx_include(args.nginx, value)
    except web_secret.SecretError as exc:
        ctx.err.write(f"{exc}\n")
        return 1
    ctx.out.write(f"Jeton {'conservé' if existed else 'créé'} : {path} (lisible par vous seul).\n")
    if args.nginx is not None:
        ctx.out.write(
            f"Directive pour nginx écrite dans {args.nginx} : incluez-la dans le bloc "
            "« location » de la page d'état, puis rechargez nginx.\n"
        )
    return 0


def cmd_web(ctx: Context, args: argparse.Namespace) -> int:
    """Serve the status page for nginx, and the metrics on loopback, until stopped."""
    from cartes.trust import FreshValidator
    from cartes.web import server
    from cartes.web.app import build_app
    from cartes.workspace import Workspace

    settings = ctx.settings
    web = settings.web
    try:
        secret = web_secret.read(web.secret_file)
    except web_secret.SecretError as exc:
        ctx.err.write(f"{exc}\n")
        return 1
    try:
        validators = FreshValidator(settings, check_s=web.crl_check_s)
    except PkiError as exc:
        ctx.err.write(f"Confiance : {messages.pki_text(exc.code, exc.params)}\n")
        return 1
    if validators.get().trust.empty:
        ctx.err.write(
            "Aucune ancre de confiance n'est configurée ([trust]) : la page ne pourrait "
            "reconnaître aucune clé.\n"
        )
        return 1
    workspace = Workspace(settings=settings, clock=ctx.clock, operator_login=ctx.operator_login)
    try:
        workspace.read().close()  # the inventory is there and at the current schema
    except InventaireError as exc:
        ctx.err.write(messages.error_text(exc) + "\n")
        return 1
    socket_path = args.socket or web.socket
    port = args.port or web.port
    if args.port is not None:
        socket_path = None
    if socket_path is None and port is None:
        ctx.err.write(
            "Indiquez où nginx joindra la page : --socket CHEMIN ou --port N "
            "(ou [web] socket / port dans la configuration).\n"
        )
        return 1
    metrics_port = args.port_metriques or web.metrics_port
    try:
        if socket_path is not None:
            page_socket = server.unix_socket(socket_path)
            where = f"socket {socket_path}"
        else:
            assert port is not None
            page_socket = server.loopback_socket(port)
            where = f"http://{server.LOOPBACK}:{port}"
        metrics_socket = None
        if not args.sans_metriques:
            metrics_socket = server.loopback_socket(metrics_port)
    except OSError as exc:
        ctx.err.write(f"Impossible d'écouter : {exc.strerror or exc}.\n")
        return 1
    metrics = None
    if metrics_socket is not None:
        from cartes.web.metrics import build_metrics_app

        metrics = build_metrics_app(
            workspace, crl_store=lambda: validators.get().crls, cache_s=web.metrics_cache_s
        )

    def ready() -> None:
        line = f"Page d'état des clés servie pour nginx sur {where}"
        if metrics_socket is not None:
            line += f" ; métriques sur http://{server.LOOPBACK}:{metrics_port}/metrics"
        ctx.out.write(line + ".\n")
        ctx.out.flush()

    try:
        server.run(
            build_app(workspace, secret=secret, validators=validators.get),
            page_socket,
            metrics=metrics,
            metrics_socket=metrics_socket,
            ready=ready,
        )
    finally:
        page_socket.close()
        if metrics_socket is not None:
            metrics_socket.close()
        if socket_path is not None:
            socket_path.unlink(missing_ok=True)
        workspace.close()
    ctx.out.write("Page d'état arrêtée.\n")
    return 0
