"""The emergency issuance form: an old-model agent card handed over to a holder while their
new-model card is awaited (``cartes urgence emettre``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from cartes import messages
from cartes.ops import emergency as emergency_ops
from cartes.ops.emergency import HolderForIssuance, Issued
from cartes.tui.failures import failure_text
from inventaire.enums import CredentialState
from inventaire.vocabulary import parse_date

if TYPE_CHECKING:
    from cartes.tui.app import CartesApp

# The choice « no pending request » in the list of requests an emergency card bridges.
WITHOUT_REQUEST = -1


def request_options(holder: HolderForIssuance | None) -> list[tuple[str, int]]:
    """The choices of « Demande couverte » for a holder: their pending new-model requests,
    then « sans demande »."""
    options: list[tuple[str, int]] = []
    for request in holder.requests if holder else ():
        state = messages.state_label(request.state)
        if request.requested_on is not None:
            state += (
                f" le {request.requested_on:%d/%m/%Y}"
                if request.state is CredentialState.REQUESTED
                else f", demandée le {request.requested_on:%d/%m/%Y}"
            )
        options.append((f"n°{request.id} ({state})", request.id))
    options.append(("Sans demande (dites pourquoi dans le motif)", WITHOUT_REQUEST))
    return options


class EmergencyForm(ModalScreen[Issued | None]):
    """Asks for the holder, the pending request bridged, the card's serial, the reason and
    the planned return date; issues the card and dismisses with what was issued, or None
    if cancelled. A refusal is shown in the form: nothing was written."""

    DEFAULT_CSS = """
    EmergencyForm { align: center middle; }
    EmergencyForm > Vertical {
        width: 84; max-width: 100%; height: auto; max-height: 100%;
        padding: 0 1; border: thick $primary; background: $surface;
    }
    EmergencyForm Grid {
        grid-size: 2; grid-columns: 18 1fr; grid-rows: auto; height: auto;
        grid-gutter: 0 1;
    }
    EmergencyForm Grid Label { padding: 0 0; }
    EmergencyForm #holder-info { color: $text-muted; height: auto; }
    EmergencyForm .error { color: $error; height: auto; }
    EmergencyForm Horizontal { height: auto; align-horizontal: right; }
    EmergencyForm Button { margin-left: 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Annuler")]

    def __init__(self, default_return: dt.date) -> None:
        super().__init__()
        self._default_return = default_return
        self._busy = False

    @property
    def cartes(self) -> CartesApp:
        return cast("CartesApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Remettre une carte d'urgence (ancien modèle)[/b]")
            with Grid():
                yield Label("Titulaire (e-mail)")
                yield Input(placeholder="prenom.nom@justice.fr", id="holder", compact=True)
                yield Label("")
                yield Static("Saisissez l'adresse du titulaire.", id="holder-info")
                yield Label("Demande couverte")
                yield Select(
                    request_options(None),
                    prompt="Choisissez la demande en attente",
                    id="request",
                    compact=True,
                )
                yield Label("N° de série")
                yield Input(placeholder="numéro imprimé sur la carte", id="serial", compact=True)
                yield Label("Motif")
                yield Input(placeholder="Motif (obligatoire)", id="reason", compact=True)
                yield Label("Retour prévu le")
                yield Input(
                    placeholder=f"JJ/MM/AAAA (par défaut le {self._default_return:%d/%m/%Y})",
                    id="return",
                    compact=True,
                )
            yield Static("", classes="error", id="error")
            with Horizontal():
                yield Button("Annuler", id="cancel", compact=True)
                yield Button("Remettre la carte", variant="primary", id="issue", compact=True)

    # -- the holder, looked up as the address is typed

    @on(Input.Changed, "#holder")
    def holder_changed(self, event: Input.Changed) -> None:
        address = event.value.strip()
        if "@" not in address or address.endswith("@"):
            self._show_holder(None, address, looked_up=False)
            return
        self.look_up_holder(address)

    @work(thread=True, exit_on_error=False, exclusive=True, group="holder")
    def look_up_holder(self, address: str) -> None:
        try:
            holder = emergency_ops.holder_for_issuance(self.cartes.workspace, address)
        except Exception as exc:
            self.app.call_from_thread(self._show_error, failure_text(exc))
            return
        self.app.call_from_thread(self._show_holder, holder, address, looked_up=True)

    def _show_holder(
        self, holder: HolderForIssuance | None, address: str, *, looked_up: bool
    ) -> None:
        if self.query_one("#holder", Input).value.strip() != address:
            return  # typed on since: a later look-up answers
        info = self.query_one("#holder-info", Static)
        if holder is not None:
            pending = len(holder.requests)
            info.update(
                f"{holder.name} — {holder.organisation}"
                + ("" if holder.active else " (titulaire inactif)")
                + f" — {pending} demande{'s' if pending > 1 else ''} en attente"
            )
        elif looked_up:
            info.update("Aucun titulaire avec cette adresse.")
        else:
            info.update("Saisissez l'adresse du titulaire.")
        select = cast("Select[int]", self.query_one("#request", Select))
        select.set_options(request_options(holder))
        if holder is not None and len(holder.requests) == 1:
            select.value = holder.requests[0].id

    # -- issuing

    @on(Button.Pressed, "#issue")
    @on(Input.Submitted)
    def submit(self) -> None:
        if self._busy:
            return
        values = self._values()
        if values is None:
            return
        self._busy = True
        self._show_error("")
        self.issue(values)

    def _values(self) -> dict[str, Any] | None:
        holder = self.query_one("#holder", Input).value.strip()
        serial = self.query_one("#serial", Input).value.strip()
        reason = self.query_one("#reason", Input).value.strip()
        request = self.query_one("#request", Select).value
        return_text = self.query_one("#return", Input).value.strip()
        problem, focus = None, None
        if not holder:
            problem, focus = "Indiquez l'adresse e-mail du titulaire.", "#holder"
        elif request is Select.NULL:
            problem, focus = (
                "Choisissez la demande en attente que la carte couvre, ou « sans demande ».",
                "#request",
            )
        elif not serial:
            problem, focus = "Indiquez le numéro de série de la carte remise.", "#serial"
        elif not reason:
            problem, focus = "Indiquez un motif : il sera journalisé.", "#reason"
        return_due_on = None
        if problem is None and return_text:
            try:
                return_due_on = parse_date(return_text)
            except ValueError:
                problem, focus = (
                    f"Date de retour invalide : « {return_text} » (JJ/MM/AAAA).",
                    "#return",
                )
        if problem is not None:
            self._show_error(problem)
            if focus:
                self.query_one(focus).focus()
            return None
        without = request == WITHOUT_REQUEST
        return {
            "holder_email": holder,
            "serial": serial,
            "reason": reason,
            "request_id": None if without else int(cast(int, request)),
            "without_request": without,
            "return_due_on": return_due_on,
        }

    @work(thread=True, exit_on_error=False, exclusive=True, group="issue")
    def issue(self, values: dict[str, Any]) -> None:
        try:
            issued = emergency_ops.issue(self.cartes.workspace, **values)
        except Exception as exc:
            self.app.call_from_thread(self._refused, failure_text(exc))
            return
        self.app.call_from_thread(self.dismiss, issued)

    def _refused(self, text: str) -> None:
        self._busy = False
        self._show_error(text)
        self.notify(text, title="Carte d'urgence non remise", severity="error")

    def _show_error(self, text: str) -> None:
        self.query_one("#error", Static).update(text)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
