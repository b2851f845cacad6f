"""``cartes service``: the backing service in the foreground, or one cycle (``--une-fois``).

Its logs go to stdout, one JSON object per line (see ``cartes.service``). Exit codes: 0
stopped by SIGTERM/SIGINT, or the single cycle went well; 1 the lease stayed held by
another instance (``--une-fois`` waits ``service.lease_s`` seconds), the cycle had
problems, or the database failed.
"""

from __future__ import annotations

import argparse

from cartes.cli.context import Context


def cmd_service(ctx: Context, args: argparse.Namespace) -> int:
    from cartes import service

    settings = ctx.settings  # a bad daily_at is refused here, with a French message
    engine = ctx.ready_engine()
    with service.stop_on_signals() as stop:
        runner = service.Service(
            engine,
            settings,
            clock=ctx.clock,
            log=service.EventLog(ctx.out, ctx.clock),
            stop=stop,
        )
        code = runner.run_once() if args.une_fois else runner.run_forever()
    if code and runner.failure:
        ctx.err.write(runner.failure + "\n")
    return code
