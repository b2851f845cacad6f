"""Commands for settings, operators and organisations."""

from __future__ import annotations

import argparse

from cartes import messages
from cartes.cli import output
from cartes.cli.context import Context
from cartes.settings import masked
from inventaire import db, operators, organisations
from inventaire.models import OperatorRole
from inventaire.vocabulary import (
    OPERATOR_ROLE_TOKENS,
    ORGANISATION_TYPE_TOKENS,
    parse_token,
    token_of,
)


def cmd_config(ctx: Context, _args: argparse.Namespace) -> int:
    """Print the effective settings, secrets masked."""
    source = ctx.settings_source
    ctx.out.write(f"# fichier : {source}\n" if source else "# aucun fichier de configuration lu\n")
    _print_settings(ctx, masked(ctx.settings), prefix="")
    return 0


def _print_settings(ctx: Context, data: dict[str, object], prefix: str) -> None:
    nested = []
    for key, value in data.items():
        if isinstance(value, dict):
            nested.append((key, value))
        elif value is None:
            ctx.out.write(f"# {key} : non défini\n")
        else:
            ctx.out.write(f"{key} = {_toml_value(value)}\n")
    for key, value in nested:
        ctx.out.write(f"\n[{prefix}{key}]\n")
        _print_settings(ctx, value, prefix=f"{prefix}{key}.")


def _toml_value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def cmd_operateur_ajouter(ctx: Context, args: argparse.Namespace) -> int:
    roles = [parse_token("--role", role, OPERATOR_ROLE_TOKENS) for role in args.role]
    engine = ctx.ready_engine()
    with db.write_session(engine) as session:
        operators.require(session, ctx.operator_login, OperatorRole.ADMIN)
        operator = operators.add(
            session, login=args.login, roles=roles, by=ctx.operator_login, now=ctx.now()
        )
    labels = ", ".join(messages.role_label(role) for role in sorted(operator.role_set))
    ctx.out.write(f"Opérateur {operator.login} ajouté : {labels}.\n")
    return 0


def cmd_operateur_liste(ctx: Context, _args: argparse.Namespace) -> int:
    engine = ctx.ready_engine()
    with db.read_session(engine) as session:
        rows = [
            [
                operator.login,
                ", ".join(sorted(token_of(r, OPERATOR_ROLE_TOKENS) for r in operator.role_set)),
                "oui" if operator.active else "non",
                f"{operator.created_at:%d/%m/%Y}",
            ]
            for operator in operators.list_all(session)
        ]
    output.table(ctx.out, ["identifiant", "rôles", "actif", "créé le"], rows)
    return 0


def cmd_organisation_ajouter(ctx: Context, args: argparse.Namespace) -> int:
    kind = parse_token("--type", args.type, ORGANISATION_TYPE_TOKENS)
    engine = ctx.ready_engine()
    with db.write_session(engine) as session:
        operators.require(session, ctx.operator_login, OperatorRole.ADMIN)
        organisation = organisations.add(
            session,
            short_name=args.nom,
            full_name=args.nom_complet,
            type=kind,
            by=ctx.operator_login,
            now=ctx.now(),
        )
    ctx.out.write(f"Organisation ajoutée : {organisation.short_name} ({organisation.full_name}).\n")
    return 0


def cmd_organisation_liste(ctx: Context, _args: argparse.Namespace) -> int:
    engine = ctx.ready_engine()
    with db.read_session(engine) as session:
        rows = [
            [o.id, o.short_name, o.full_name, token_of(o.type, ORGANISATION_TYPE_TOKENS)]
            for o in organisations.list_all(session)
        ]
    output.table(ctx.out, ["id", "nom", "nom complet", "type"], rows)
    return 0
