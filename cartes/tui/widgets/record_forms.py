"""Modal forms of the record (« fiche »): a change of state, the receipt and the handover
of a request. Each asks for confirmation and a reason, which the journal keeps; none
checks a rule of the domain (the operations do, and a refusal comes back as a
notification)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from inventaire.enums import CredentialState
from inventaire.vocabulary import parse_date

FORM_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 76; max-width: 100%; height: auto; max-height: 100%; padding: 1 2;
    border: thick $primary; background: $surface;
}}
{name} .question {{ margin-bottom: 1; }}
{name} .error {{ color: $error; height: auto; }}
{name} .field {{ height: auto; }}
{name} Label.caption {{ margin-top: 1; }}
{name} OptionList {{ height: auto; max-height: 9; }}
{name} Horizontal.buttons {{ height: auto; align-horizontal: right; margin-top: 1; }}
{name} Horizontal.buttons Button {{ margin-left: 2; }}
"""

REASON_MISSING = "Indiquez un motif : il sera journalisé."


@dataclass(frozen=True)
class Choice:
    """A state the credential may move to, with why it is refused to this operator."""

    target: CredentialState
    label: str
    refusal: str | None = None


class TransitionForm(ModalScreen[tuple[CredentialState, str] | None]):
    """Choose the new state among those the lifecycle allows, and say why; dismisses
    with (state, reason), or None if cancelled. The moves the operator's role does not
    allow are listed greyed out, with the reason."""

    DEFAULT_CSS = FORM_CSS.format(name="TransitionForm")
    BINDINGS = [Binding("escape", "cancel", "Annuler")]

    def __init__(self, title: str, question: str, choices: list[Choice]) -> None:
        super().__init__()
        self._title = title
        self._question = question
        self._choices = choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]{self._title}[/b]")
            yield Static(self._question, classes="question")
            yield OptionList(
                *(
                    Option(
                        choice.label
                        if choice.refusal is None
                        else f"{choice.label} — {choice.refusal}",
                        id=choice.target.value,
                        disabled=choice.refusal is not None,
                    )
                    for choice in self._choices
                ),
                id="targets",
                markup=False,
            )
            yield Input(placeholder="Motif (obligatoire)", id="reason")
            yield Static("", classes="error", id="error")
            with Horizontal(classes="buttons"):
                yield Button("Annuler", id="cancel")
                yield Button("Confirmer", variant="primary", id="confirm")

    def on_mount(self) -> None:
        targets = self.query_one("#targets", OptionList)
        for index, choice in enumerate(self._choices):
            if choice.refusal is None:
                targets.highlighted = index
                break
        targets.focus()

    @on(OptionList.OptionSelected, "#targets")
    def _chosen(self) -> None:
        self.query_one("#reason", Input).focus()

    @on(Button.Pressed, "#confirm")
    @on(Input.Submitted, "#reason")
    def confirm(self) -> None:
        targets = self.query_one("#targets", OptionList)
        error = self.query_one("#error", Static)
        index = targets.highlighted
        if index is None or self._choices[index].refusal is not None:
            error.update("Choisissez le nouvel état.")
            targets.focus()
            return
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            error.update(REASON_MISSING)
            self.query_one("#reason", Input).focus()
            return
        self.dismiss((self._choices[index].target, reason))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def _day(text: str, today: dt.date) -> dt.date | None:
    """The day typed (JJ/MM/AAAA or AAAA-MM-JJ), today when empty; None if unreadable."""
    if not text.strip():
        return today
    try:
        return parse_date(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Receipt:
    serial: str
    day: dt.date
    reason: str


class ReceiveForm(ModalScreen[Receipt | None]):
    """The requested credential arrived at the IT service: its serial number, the day
    (today by default) and a reason."""

    DEFAULT_CSS = FORM_CSS.format(name="ReceiveForm")
    BINDINGS = [Binding("escape", "cancel", "Annuler")]

    def __init__(self, title: str, question: str, *, today: dt.date) -> None:
        super().__init__()
        self._title = title
        self._question = question
        self._today = today

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]{self._title}[/b]")
            yield Static(self._question, classes="question")
            yield Input(placeholder="Numéro de série (obligatoire)", id="serial")
            yield Input(
                value=f"{self._today:%d/%m/%Y}", placeholder="Reçue le (JJ/MM/AAAA)", id="day"
            )
            yield Input(placeholder="Motif (obligatoire)", id="reason")
            yield Static("", classes="error", id="error")
            with Horizontal(classes="buttons"):
                yield Button("Annuler", id="cancel")
                yield Button("Réceptionner", variant="primary", id="confirm")

    @on(Button.Pressed, "#confirm")
    @on(Input.Submitted)
    def confirm(self) -> None:
        error = self.query_one("#error", Static)
        serial = self.query_one("#serial", Input).value.strip()
        day = _day(self.query_one("#day", Input).value, self._today)
        reason = self.query_one("#reason", Input).value.strip()
        if not serial:
            error.update("Indiquez le numéro de série du support reçu.")
            self.query_one("#serial", Input).focus()
        elif day is None:
            error.update("Date illisible : JJ/MM/AAAA attendu.")
            self.query_one("#day", Input).focus()
        elif not reason:
            error.update(REASON_MISSING)
            self.query_one("#reason", Input).focus()
        else:
            self.dismiss(Receipt(serial, day, reason))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class Handover:
    day: dt.date
    old_returned: bool
    reason: str


class HandOverForm(ModalScreen[Handover | None]):
    """Hand the received credential over to its holder: the day (today by default),
    whether the card it replaces is handed back now, and a reason."""

    DEFAULT_CSS = FORM_CSS.format(name="HandOverForm")
    BINDINGS = [Binding("escape", "cancel", "Annuler")]

    def __init__(self, title: str, question: str, *, today: dt.date, replaces: int | None) -> None:
        super().__init__()
        self._title = title
        self._question = question
        self._today = today
        self._replaces = replaces

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"[b]{self._title}[/b]")
            yield Static(self._question, classes="question")
            yield Input(
                value=f"{self._today:%d/%m/%Y}", placeholder="Remise le (JJ/MM/AAAA)", id="day"
            )
            if self._replaces is not None:
                yield Checkbox(
                    f"Le support remplacé n°{self._replaces} est restitué maintenant",
                    id="returned",
                )
            yield Input(placeholder="Motif (obligatoire)", id="reason")
            yield Static("", classes="error", id="error")
            with Horizontal(classes="buttons"):
                yield Button("Annuler", id="cancel")
                yield Button("Remettre", variant="primary", id="confirm")

    @on(Button.Pressed, "#confirm")
    @on(Input.Submitted)
    def confirm(self) -> None:
        error = self.query_one("#error", Static)
        day = _day(self.query_one("#day", Input).value, self._today)
        reason = self.query_one("#reason", Input).value.strip()
        returned = self.query("#returned")
        old_returned = bool(returned) and returned.first(Checkbox).value
        if day is None:
            error.update("Date illisible : JJ/MM/AAAA attendu.")
            self.query_one("#day", Input).focus()
        elif not reason:
            error.update(REASON_MISSING)
            self.query_one("#reason", Input).focus()
        else:
            self.dismiss(Handover(day, old_returned, reason))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
