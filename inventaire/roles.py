"""What operators' roles let them do: the rule alone, without the database layers, so that
a face can tell at start-up which actions to offer without importing SQLAlchemy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from inventaire.dbapi import ReadConnection
from inventaire.enums import OperatorRole
from inventaire.errors import PermissionDenied, UnknownOperator

R = OperatorRole

# What each role lets an operator do. ADMIN implies MANAGER, but never ISSUER: the
# habilitation to hand cards over is personal and granted explicitly.
IMPLIED: dict[OperatorRole, frozenset[OperatorRole]] = {
    R.READER: frozenset({R.READER}),
    R.MANAGER: frozenset({R.MANAGER, R.READER}),
    R.ISSUER: frozenset({R.ISSUER, R.READER}),
    R.ADMIN: frozenset({R.ADMIN, R.MANAGER, R.READER}),
}


def parse(stored: str) -> frozenset[OperatorRole]:
    """The roles as stored in ``operator.roles`` (comma-separated names)."""
    return frozenset(OperatorRole(name) for name in stored.split(",") if name)


def effective(roles: Iterable[OperatorRole]) -> frozenset[OperatorRole]:
    """Every role held through ``roles``, directly or implied."""
    return frozenset().union(*(IMPLIED[role] for role in roles))


@dataclass(frozen=True)
class OperatorRights:
    """An operator as far as rights go: login, roles held, still active."""

    login: str
    roles: frozenset[OperatorRole]
    active: bool


def refusal(
    rights: OperatorRights | None, login: str, role: OperatorRole
) -> UnknownOperator | PermissionDenied | None:
    """Why the operator (``rights``, None if ``login`` is unknown) may not act as ``role``,
    as the error to raise; None when it may."""
    if rights is None or not rights.active:
        return UnknownOperator(login=login)
    if role not in effective(rights.roles):
        return PermissionDenied(login=rights.login, role=role.value)
    return None


def read_rights(connection: ReadConnection, login: str) -> OperatorRights | None:
    """The rights of operator ``login`` through the bare driver, or None if unknown."""
    for roles, active in connection.rows(
        "SELECT roles, active FROM operator WHERE login = :login", {"login": login}
    ):
        return OperatorRights(login, parse(roles), bool(active))
    return None
