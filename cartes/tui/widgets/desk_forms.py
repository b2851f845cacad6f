"""The small forms of the « Lecteurs » screen: the holder's PIN for a proof of possession,
and the question a registration asks (has the card already been handed over?)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static


class OneTimePin:
    """The PIN typed in the form, handed over once: ``take`` returns it and forgets it, so
    that nothing keeps it after the proof (not the screen, not the worker's result). Its
    representation never shows it."""

    __slots__ = ("_pin",)

    def __init__(self, pin: str) -> None:
        self._pin: str | None = pin

    def take(self) -> str:
        pin, self._pin = self._pin, None
        if pin is None:
            raise RuntimeError("PIN already used")
        return pin

    def __repr__(self) -> str:
        return "OneTimePin(***)"


_FORM_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 72; max-width: 100%; height: auto; padding: 1 2;
    border: thick $primary; background: $surface;
}}
{name} .question {{ margin-bottom: 1; }}
{name} .error {{ color: $error; height: auto; }}
{name} Horizontal {{ height: auto; align-horizontal: right; margin-top: 1; }}
{name} Button {{ margin-left: 2; }}
"""


class PinForm(ModalScreen[OneTimePin | None]):
    """Asks the holder's PIN, masked; dismisses with it (once) or None if cancelled. The
    field is emptied before the form closes."""

    DEFAULT_CSS = _FORM_CSS.format(name="PinForm")
    BINDINGS = [Binding("escape", "cancel", "Annuler")]

    def __init__(self, card_label: str, warning: str | None = None) -> None:
        super().__init__()
        self._card_label = card_label
        self._warning = warning

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Preuve de possession[/b]")
            yield Static(
                f"Le titulaire de « {self._card_label} » saisit son code PIN : la carte "
                "signe un défi, vérifié avec le certificat. Le code n'est ni affiché, ni "
                "conservé.",
                classes="question",
                markup=False,
            )
            if self._warning:
                yield Static(self._warning, classes="error", markup=False)
            yield Input(password=True, placeholder="Code PIN", id="pin")
            yield Static("", classes="error", id="error")
            with Horizontal():
                yield Button("Annuler", id="cancel")
                yield Button("Vérifier", variant="primary", id="confirm")

    def on_mount(self) -> None:
        self.query_one("#pin", Input).focus()

    @on(Button.Pressed, "#confirm")
    @on(Input.Submitted, "#pin")
    def confirm(self) -> None:
        field = self.query_one("#pin", Input)
        if not field.value:
            self.query_one("#error", Static).update("Saisissez le code PIN.")
            field.focus()
            return
        pin = OneTimePin(field.value)
        field.value = ""
        self.dismiss(pin)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.query_one("#pin", Input).value = ""
        self.dismiss(None)


@dataclass(frozen=True)
class Handover:
    """The operator's answer: the card was already handed over (on that day, if known)."""

    already: bool
    on: dt.date | None = None


def parse_day(text: str) -> dt.date:
    """A day typed as JJ/MM/AAAA (or AAAA-MM-JJ). Raises ValueError."""
    text = text.strip()
    for pattern in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ValueError(text)


class HandoverForm(ModalScreen[Handover | None]):
    """Before a new card is registered: has it already been handed over to its holder (the
    CLI's ``--deja-remise`` / ``--remise-le``)? Dismisses with the answer, or None."""

    DEFAULT_CSS = (
        _FORM_CSS.format(name="HandoverForm")
        + """
    HandoverForm #day { margin-top: 1; }
    """
    )
    BINDINGS = [Binding("escape", "cancel", "Annuler")]

    def __init__(self, card_label: str, otherwise: str) -> None:
        super().__init__()
        self._card_label = card_label
        self._otherwise = otherwise

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Enregistrer la carte[/b]")
            yield Static(
                f"« {self._card_label} » n'est pas encore dans l'inventaire. A-t-elle déjà "
                f"été remise à son titulaire ? Sinon, {self._otherwise}",
                classes="question",
                markup=False,
            )
            yield Checkbox("Déjà remise à son titulaire", id="already")
            yield Input(placeholder="Remise le (JJ/MM/AAAA, facultatif)", id="day", disabled=True)
            yield Static("", classes="error", id="error")
            with Horizontal():
                yield Button("Annuler", id="cancel")
                yield Button("Enregistrer", variant="primary", id="confirm")

    def on_mount(self) -> None:
        self.query_one("#already", Checkbox).focus()

    @on(Checkbox.Changed, "#already")
    def _already_changed(self, event: Checkbox.Changed) -> None:
        self.query_one("#day", Input).disabled = not event.value

    @on(Button.Pressed, "#confirm")
    @on(Input.Submitted, "#day")
    def confirm(self) -> None:
        already = self.query_one("#already", Checkbox).value
        text = self.query_one("#day", Input).value.strip()
        day = None
        if already and text:
            try:
                day = parse_day(text)
            except ValueError:
                self.query_one("#error", Static).update(
                    "Date de remise illisible : écrivez-la JJ/MM/AAAA (par exemple 02/11/2026)."
                )
                self.query_one("#day", Input).focus()
                return
        self.dismiss(Handover(already, day))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
