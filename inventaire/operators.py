"""Operators (IT staff) and what their roles let them do (the rule itself is in
``inventaire.roles``)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import Session, col

from inventaire import journal
from inventaire.errors import Conflict, InvalidValue, PermissionDenied, UnknownOperator
from inventaire.models import Operator, OperatorRole
from inventaire.roles import IMPLIED as IMPLIED  # re-exported: the rule lives there
from inventaire.roles import OperatorRights, effective
from inventaire.roles import refusal as rights_refusal

_LOGIN = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


def effective_roles(operator: Operator) -> frozenset[OperatorRole]:
    """Every role ``operator`` holds, directly or implied."""
    return effective(operator.role_set)


def check_role(operator: Operator, role: OperatorRole) -> None:
    """Raise ``PermissionDenied`` unless ``operator`` may act as ``role``."""
    if role not in effective_roles(operator):
        raise PermissionDenied(login=operator.login, role=role.value)


def find(session: Session, login: str) -> Operator | None:
    """The operator with this login, if any."""
    query = sa.select(Operator).where(col(Operator.login) == login)
    return session.execute(query).scalar_one_or_none()


def refusal(
    operator: Operator | None, login: str, role: OperatorRole
) -> UnknownOperator | PermissionDenied | None:
    """Why ``operator`` (found under ``login``, or None) may not act as ``role``, as the
    error ``require`` would raise; None when it may (``inventaire.roles.refusal``)."""
    rights = (
        None
        if operator is None
        else OperatorRights(operator.login, operator.role_set, operator.active)
    )
    return rights_refusal(rights, login, role)


def require(session: Session, login: str, role: OperatorRole) -> Operator:
    """The active operator ``login``, checked for ``role``; unknown logins cannot act."""
    operator = find(session, login)
    error = refusal(operator, login, role)
    if error is not None:
        raise error
    assert operator is not None
    return operator


def count(session: Session) -> int:
    """How many operators are registered."""
    return session.execute(sa.select(sa.func.count()).select_from(Operator)).scalar_one()


def add(
    session: Session,
    *,
    login: str,
    roles: Iterable[OperatorRole],
    by: str,
    now: dt.datetime,
) -> Operator:
    """Register an operator (journaled as done by ``by``)."""
    role_set = frozenset(roles)
    if not _LOGIN.match(login):
        raise InvalidValue("identifiant_invalide", login=login)
    if not role_set:
        raise InvalidValue("role_obligatoire")
    if find(session, login) is not None:
        raise Conflict("operateur_existe", login=login)
    operator = Operator(login=login, roles=",".join(sorted(role_set)), active=True, created_at=now)
    session.add(operator)
    session.flush()
    journal.record(
        session,
        operator=by,
        now=now,
        action="operateur.creation",
        entity_type="operator",
        entity_id=operator.id,
        after={"login": login, "roles": operator.roles, "active": True},
    )
    return operator


def list_all(session: Session) -> list[Operator]:
    """All operators, by login."""
    return list(session.execute(sa.select(Operator).order_by(Operator.login)).scalars())
