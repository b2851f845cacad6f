"""Who is at the keyboard, and what their roles let them do."""

from __future__ import annotations

from dataclasses import dataclass

from cartes import messages
from cartes.workspace import Workspace
from inventaire.enums import OperatorRole
from inventaire.roles import effective, read_rights, refusal


@dataclass(frozen=True)
class Acting:
    """The operator of a session, resolved once (login as in the CLI: ``--operateur``,
    else the system user) with the reason each role is refused, if it is."""

    login: str
    known: bool
    roles: frozenset[OperatorRole]  # effective roles (implied ones included)
    refusals: dict[OperatorRole, str]  # French reason, for each role refused

    def may(self, role: OperatorRole) -> bool:
        return role not in self.refusals

    def refusal(self, role: OperatorRole) -> str | None:
        """Why an action needing ``role`` is disabled, in French; None if allowed."""
        return self.refusals.get(role)

    @property
    def roles_text(self) -> str:
        if not self.known:
            return "opérateur inconnu"
        return ", ".join(
            messages.OPERATOR_ROLE_LABELS[role] for role in OperatorRole if role in self.roles
        )


def resolve(workspace: Workspace) -> Acting:
    """The operator of ``workspace``, with what each role allows. Read through the bare
    driver: the UI asks this at start-up, before SQLAlchemy is needed."""
    with workspace.read() as connection:
        rights = read_rights(connection, workspace.operator_login)
    refusals: dict[OperatorRole, str] = {}
    for role in OperatorRole:
        error = refusal(rights, workspace.operator_login, role)
        if error is not None:
            refusals[role] = messages.error_text(error)
    known = rights is not None and rights.active
    roles = effective(rights.roles) if rights is not None and known else frozenset()
    return Acting(workspace.operator_login, known, roles, refusals)
