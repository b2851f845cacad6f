"""Forms of the « Alertes » screen: the address of a test mail; a credential to mute,
with the reason."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 72; max-width: 100%; height: auto; padding: 0 1;
    border: thick $primary; background: $surface;
}}
{name} Grid {{ grid-size: 2; grid-columns: 16 1fr; grid-rows: auto; height: auto; }}
{name} .question {{ margin-bottom: 1; height: auto; }}
{name} .error {{ color: $error; height: auto; }}
{name} Horizontal {{ height: auto; align-horizontal: right; margin-top: 1; }}
{name} Button {{ margin-left: 2; }}
"""


class ProbeForm(ModalScreen[str | None]):
    """Asks where to send a test mail; dismisses with the address, or None."""

    DEFAULT_CSS = _CSS.format(name="ProbeForm")
    BINDINGS = [Binding("escape", "cancel", "Annuler")]

    def __init__(self, server: str, address: str = "") -> None:
        super().__init__()
        self._server = server
        self._address = address

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Courriel d'essai[/b]")
            yield Static(
                f"Un court courriel part par le serveur {self._server} : il vérifie les "
                "réglages de messagerie.",
                classes="question",
            )
            with Grid():
                yield Label("Adresse")
                yield Input(value=self._address, placeholder="adresse@exemple.fr", id="address")
            yield Static("", classes="error", id="error")
            with Horizontal():
                yield Button("Annuler", id="cancel", compact=True)
                yield Button("Envoyer", variant="primary", id="confirm", compact=True)

    @on(Button.Pressed, "#confirm")
    @on(Input.Submitted, "#address")
    def confirm(self) -> None:
        address = self.query_one("#address", Input).value.strip()
        if "@" not in address.strip("@"):
            self.query_one("#error", Static).update("Indiquez une adresse e-mail.")
            self.query_one("#address", Input).focus()
            return
        self.dismiss(address)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class MuteForm(ModalScreen[tuple[int, str] | None]):
    """Asks which credential to mute and why; dismisses with (id, reason), or None."""

    DEFAULT_CSS = _CSS.format(name="MuteForm")
    BINDINGS = [Binding("escape", "cancel", "Annuler")]

    def __init__(self, credential_id: int | None = None) -> None:
        super().__init__()
        self._credential_id = credential_id

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Couper les alertes d'un support[/b]")
            yield Static(
                "Plus aucune alerte ne partira pour ce support, jusqu'à ce qu'on les "
                "rétablisse depuis sa fiche. Le motif est inscrit au journal.",
                classes="question",
            )
            with Grid():
                yield Label("Support n°")
                yield Input(
                    value="" if self._credential_id is None else str(self._credential_id),
                    placeholder="numéro du support",
                    type="integer",
                    id="credential",
                )
                yield Label("Motif")
                yield Input(placeholder="Motif (obligatoire)", id="reason")
            yield Static("", classes="error", id="error")
            with Horizontal():
                yield Button("Annuler", id="cancel", compact=True)
                yield Button("Couper les alertes", variant="primary", id="confirm", compact=True)

    @on(Button.Pressed, "#confirm")
    @on(Input.Submitted)
    def confirm(self) -> None:
        number = self.query_one("#credential", Input).value.strip()
        reason = self.query_one("#reason", Input).value.strip()
        error = self.query_one("#error", Static)
        if not number.isdigit():
            error.update("Indiquez le numéro du support.")
            self.query_one("#credential", Input).focus()
            return
        if not reason:
            error.update("Indiquez un motif : il sera journalisé.")
            self.query_one("#reason", Input).focus()
            return
        self.dismiss((int(number), reason))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
