"""What every screen of the app shares: the workspace, the operator, and failures of its
workers shown as notifications instead of ending the app."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen
from textual.worker import Worker, WorkerState

from cartes.ops.operator import Acting
from cartes.tui.failures import failure_text
from cartes.workspace import Workspace
from inventaire.enums import OperatorRole

if TYPE_CHECKING:
    from cartes.tui.app import CartesApp


class CartesScreen(Screen[None]):
    """A screen of cartes. Workers are started with ``exit_on_error=False``: a failure
    reaches ``on_worker_state_changed`` and is shown; the app keeps running."""

    @property
    def cartes(self) -> CartesApp:
        return cast("CartesApp", self.app)

    @property
    def workspace(self) -> Workspace:
        return self.cartes.workspace

    @property
    def acting(self) -> Acting | None:
        return self.cartes.acting

    def refusal(self, role: OperatorRole) -> str | None:
        """Why an action needing ``role`` is disabled (French), None when allowed."""
        return self.cartes.refusal(role)

    def allowed(self, role: OperatorRole) -> bool:
        """True when the operator may act as ``role``; otherwise say why and return False."""
        reason = self.refusal(role)
        if reason is not None:
            self.notify(reason, title="Action non autorisée", severity="warning")
            return False
        return True

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.notify(failure_text(event.worker.error), severity="error", timeout=10)
