"""``cartes tui`` (the terminal UI), and ``cartes`` alone: the UI in a terminal, else the
summary."""

from __future__ import annotations

import argparse
import sys

from cartes.cli.context import Context

SCREENS = ("tableau", "inventaire", "fiche", "lecteurs", "urgences", "alertes", "journal")
THEMES = {"sombre": "textual-dark", "clair": "textual-light"}


def cmd_default(ctx: Context, args: argparse.Namespace) -> int:
    """``cartes`` without a command: the UI when a person is at a terminal, otherwise
    (a pipe, a script, cron) the summary, as before the UI existed."""
    if sys.stdin.isatty() and ctx.out.isatty():
        return cmd_tui(ctx, args)
    from cartes.cli.summary_cmd import cmd_summary

    return cmd_summary(ctx, args)


def parse_screen(words: list[str] | None) -> tuple[str, int | None]:
    """``--ecran`` as (screen, record id): ``fiche 12`` opens that record."""
    if not words:
        return "tableau", None
    name, *rest = words
    if name not in SCREENS:
        raise argparse.ArgumentTypeError(
            f"écran inconnu : « {name} » ; écrans possibles : {', '.join(SCREENS)}"
        )
    if name == "fiche":
        if len(rest) != 1 or not rest[0].isdigit():
            raise argparse.ArgumentTypeError("« --ecran fiche » attend un numéro de support")
        return "inventaire", int(rest[0])
    if rest:
        raise argparse.ArgumentTypeError(f"« --ecran {name} » ne prend pas d'argument")
    return name, None


def cmd_tui(ctx: Context, args: argparse.Namespace) -> int:
    """Open the terminal UI on the workspace of this command's settings and operator."""
    try:
        start, record_id = parse_screen(getattr(args, "ecran", None))
    except argparse.ArgumentTypeError as exc:
        ctx.err.write(f"{exc}.\n")
        return 2
    from cartes.tui.app import build_app
    from cartes.workspace import Workspace

    workspace = Workspace(
        settings=ctx.settings,
        clock=ctx.clock,
        operator_login=ctx.operator_login,
        reader_modules=tuple(args.module) if getattr(args, "module", None) else None,
    )
    theme = THEMES[getattr(args, "theme", None) or "sombre"]
    try:
        build_app(
            workspace,
            start=start,
            record_id=record_id,
            theme=theme,
            notices=ctx.at_rest_warnings,
        ).run()
    finally:
        workspace.close()
    return 0
