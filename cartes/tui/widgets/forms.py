"""Modal forms shared by the screens: a confirmation with a mandatory reason."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


class ReasonForm(ModalScreen[str | None]):
    """Asks to confirm an action and why; dismisses with the reason, or None if cancelled.

    Every change of the inventory names a reason in the journal: the form refuses to
    confirm without one.
    """

    DEFAULT_CSS = """
    ReasonForm { align: center middle; }
    ReasonForm > Vertical {
        width: 72; max-width: 100%; height: auto; padding: 1 2;
        border: thick $primary; background: $surface;
    }
    ReasonForm .question { margin-bottom: 1; }
    ReasonForm .error { color: $error; height: auto; }
    ReasonForm Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    ReasonForm Button { margin-left: 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Annuler")]

    def __init__(
        self,
        title: str,
        question: str,
        *,
        confirm_label: str = "Confirmer",
        reason: str = "",
        reason_required: bool = True,
    ) -> None:
        super().__init__()
        self._title = title
        self._question = question
        self._confirm_label = confirm_label
        self._reason = reason
        self._reason_required = reason_required

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]{self._title}[/b]")
            yield Static(self._question, classes="question")
            yield Input(
                value=self._reason,
                placeholder="Motif (obligatoire)" if self._reason_required else "Motif",
                id="reason",
            )
            yield Static("", classes="error", id="error")
            with Horizontal():
                yield Button("Annuler", id="cancel")
                yield Button(self._confirm_label, variant="primary", id="confirm")

    @on(Button.Pressed, "#confirm")
    @on(Input.Submitted, "#reason")
    def confirm(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        if self._reason_required and not reason:
            self.query_one("#error", Static).update("Indiquez un motif : il sera journalisé.")
            self.query_one("#reason", Input).focus()
            return
        self.dismiss(reason)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
