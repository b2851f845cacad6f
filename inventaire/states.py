"""What the lifecycle's states mean to the rules that read them (standard library only:
the read paths that do without SQLAlchemy import them from here).

``inventaire.lifecycle`` enforces the moves between states; this module only names the
groups of states and the rules that depend on nothing else.
"""

from __future__ import annotations

import datetime as dt

from inventaire.enums import CredentialState

S = CredentialState

IN_SERVICE = frozenset({S.ACTIVE, S.SUSPENDED})
# Ordered and not yet handed over (nor cancelled): a pending request.
PENDING = frozenset({S.REQUESTED, S.RECEIVED})
# A credential with a replacement in one of these is ordered for, or renewed already.
REPLACEMENT = PENDING | IN_SERVICE


def is_outstanding(returned_on: dt.date | None, card_state: CredentialState) -> bool:
    """Whether an emergency card is still out: not given back, and still in service."""
    return returned_on is None and card_state in IN_SERVICE


def is_overdue(
    returned_on: dt.date | None,
    card_state: CredentialState,
    return_due_on: dt.date,
    *,
    today: dt.date,
) -> bool:
    """Whether an emergency card is still out after its planned return date."""
    return is_outstanding(returned_on, card_state) and return_due_on < today
