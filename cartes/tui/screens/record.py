"""The record (« fiche ») of one credential: its holder, its state and dates, its
certificates and their last validation, where its renewal stands, its history from the
journal, and the actions an operator may take on it, each in a modal form with a reason.

Everything comes from ``cartes.ops.records`` in thread workers; an action ends with the
record read again and a notification, a refusal of the domain with a notification and
nothing changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from rich.markup import escape
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Footer, Header, Static

from cartes import messages
from cartes.ops import records
from cartes.ops.records import Action, ActionKind, Record
from cartes.tui.base import CartesScreen
from cartes.tui.failures import failure_text
from cartes.tui.widgets.forms import ReasonForm
from cartes.tui.widgets.record_forms import (
    Choice,
    Handover,
    HandOverForm,
    Receipt,
    ReceiveForm,
    TransitionForm,
)
from inventaire.clock import PARIS, from_db
from inventaire.enums import CredentialState
from inventaire.errors import InventaireError
from inventaire.plan import Replacement

# From this width the panels go two by two.
WIDE = 120

ACTION_LABELS = {
    ActionKind.RECEIVE: "Réceptionner la demande",
    ActionKind.HAND_OVER: "Remettre au titulaire",
    ActionKind.CANCEL: "Annuler la demande",
    ActionKind.ORDER_REPLACEMENT: "Commander le remplacement",
    ActionKind.MUTE: "Couper les alertes",
    ActionKind.UNMUTE: "Rétablir les alertes",
    ActionKind.REVALIDATE: "Revalider les certificats",
}
# The key of each kind of action (transitions: ``t``, which lists them).
ACTION_KEYS = {
    ActionKind.TRANSITION: "t",
    ActionKind.RECEIVE: "e",
    ActionKind.HAND_OVER: "m",
    ActionKind.CANCEL: "a",
    ActionKind.ORDER_REPLACEMENT: "c",
    ActionKind.MUTE: "s",
    ActionKind.UNMUTE: "s",
    ActionKind.REVALIDATE: "v",
}


def _date(day: dt.date | None) -> str:
    return f"{day:%d/%m/%Y}" if day else "—"


def _instant(instant: dt.datetime | None) -> str:
    return f"{from_db(instant).astimezone(PARIS):%d/%m/%Y %H:%M}" if instant else "—"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if abs(count) > 1 else ''}"


def action_label(record: Record, action: Action) -> str:
    if action.kind is ActionKind.TRANSITION:
        assert action.target is not None
        return messages.transition_verb(record.state, action.target)
    return ACTION_LABELS[action.kind]


class RecordLoaded(Message):
    def __init__(self, record: Record) -> None:
        super().__init__()
        self.record = record


class RecordFailed(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class ActionDone(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class ActionRefused(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class RecordScreen(CartesScreen):
    TITLE = "Fiche"
    DEFAULT_CSS = """
    RecordScreen #body { height: 1fr; padding: 0 1; }
    RecordScreen #headline { text-style: bold; height: auto; margin-bottom: 1; }
    RecordScreen #problem { color: $error; height: auto; }
    RecordScreen #panels { layout: grid; grid-size: 1; grid-rows: auto; height: auto; }
    RecordScreen #panels.wide { grid-size: 2; grid-columns: 1fr 1fr; grid-gutter: 0 1; }
    RecordScreen .panel { height: auto; }
    RecordScreen #actions { height: auto; }
    RecordScreen #actions Horizontal { height: auto; }
    RecordScreen #actions Button { min-width: 30; margin-right: 1; }
    RecordScreen #actions .disabled-reason { width: 1fr; }
    """
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Retour"),
        Binding("t", "transition", "Changer d'état"),
        Binding("e", "step('RECEIVE')", "Réceptionner"),
        Binding("m", "step('HAND_OVER')", "Remettre"),
        Binding("a", "step('CANCEL')", "Annuler la demande"),
        Binding("c", "step('ORDER_REPLACEMENT')", "Commander"),
        Binding("s", "mute", "Alertes"),
        Binding("v", "step('REVALIDATE')", "Revalider"),
        Binding("r", "reload", "Actualiser"),
        Binding("f5", "reload", "Actualiser", show=False),
    ]

    def __init__(self, credential_id: int) -> None:
        super().__init__()
        self.credential_id = credential_id
        self.record: Record | None = None
        self._buttons: dict[str, Action] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="body"):
            yield Static(f"Support n°{self.credential_id} : lecture…", id="headline")
            yield Static("", id="problem")
            with Vertical(id="panels"):
                yield Static("", id="holder", classes="panel")
                yield Static("", id="credential", classes="panel")
                yield Static("", id="renewal", classes="panel")
                yield Static("", id="certificates", classes="panel")
            yield Vertical(id="actions", classes="panel")
            yield Static("", id="history", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        titles = {
            "holder": "Titulaire",
            "credential": "Support",
            "renewal": "Renouvellement",
            "certificates": "Certificats",
            "actions": "Actions",
            "history": "Historique (journal)",
        }
        for name, title in titles.items():
            self.query_one(f"#{name}").border_title = title
        self.query_one("#panels").display = False
        self.query_one("#actions").display = False
        self.query_one("#history").display = False
        self.watch(self.app, "acting", self._acting_changed, init=False)
        self.load()

    def on_resize(self, event: events.Resize) -> None:
        self.query_one("#panels").set_class(event.size.width >= WIDE, "wide")

    def _acting_changed(self, _acting: object) -> None:
        if self.record is not None:
            self._show_actions(self.record)

    # Loading ---------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="record", exclusive=True)
    def load(self) -> None:
        try:
            record = records.load_record(self.workspace, self.credential_id)
        except InventaireError as error:
            self.post_message(RecordFailed(failure_text(error)))
            return
        self.post_message(RecordLoaded(record))

    def action_reload(self) -> None:
        self.load()

    def on_record_failed(self, message: RecordFailed) -> None:
        self.record = None
        self.query_one("#headline", Static).update(f"Support n°{self.credential_id}")
        self.query_one("#problem", Static).update(message.text)
        for name in ("#panels", "#actions", "#history"):
            self.query_one(name).display = False
        self.refresh_bindings()

    def on_record_loaded(self, message: RecordLoaded) -> None:
        record = message.record
        self.record = record
        self.query_one("#problem", Static).update("")
        model = f" {messages.MODEL_LABELS[record.model]}" if record.model else ""
        emergency = " — carte d'urgence" if record.emergency else ""
        self.query_one("#headline", Static).update(
            f"{_cap(messages.KIND_LABELS[record.kind])}{model} {escape(record.serial or '')}"
            f" (support n°{record.id})"
            f" — {escape(record.holder.name)} — {messages.state_label(record.state)}{emergency}"
        )
        self.query_one("#holder", Static).update(self._holder_text(record))
        self.query_one("#credential", Static).update(self._credential_text(record))
        self._show_renewal(record)
        self.query_one("#certificates", Static).update(self._certificates_text(record))
        self.query_one("#history", Static).update(self._history_text(record))
        self._show_actions(record)
        for name in ("#panels", "#actions", "#history"):
            self.query_one(name).display = True
        self.refresh_bindings()

    # Rendering -------------------------------------------------------------------------

    def _holder_text(self, record: Record) -> str:
        holder = record.holder
        return "\n".join(
            [
                f"[b]{escape(holder.name)}[/b]",
                f"Adresse : {escape(holder.email)}",
                f"Rôle : {messages.HOLDER_ROLE_LABELS[holder.role]}",
                f"Organisation : {escape(holder.organisation)}",
                "Actif" if holder.active else "[b]Inactif[/b] (a quitté son poste)",
            ]
        )

    def _credential_text(self, record: Record) -> str:
        days = ""
        if record.expires_on is not None:
            left = (record.expires_on - record.today).days
            days = (
                f" (expiré depuis {_plural(-left, 'jour')})"
                if left < 0
                else f" (dans {_plural(left, 'jour')})"
            )
        lines = [
            f"Type : {messages.KIND_LABELS[record.kind]}"
            + (f", {messages.MODEL_LABELS[record.model]}" if record.model else ""),
            f"N° de série : {escape(record.serial or '—')}",
            f"État : [b]{messages.state_label(record.state)}[/b]"
            + (" — carte d'urgence" if record.emergency else ""),
            f"Demandé le {_date(record.requested_on)} · reçu le {_date(record.received_on)}"
            f" · remis le {_date(record.handed_over_on)}",
            f"Expiration : [b]{_date(record.expires_on)}[/b]{days}",
        ]
        if record.replaces is not None:
            replaced = record.replaces
            lines.append(
                f"Remplace le support n°{replaced.id} ({messages.state_label(replaced.state)})"
            )
        issuance = record.emergency_issuance
        if issuance is not None:
            back = (
                f"restituée le {_date(issuance.returned_on)}"
                if issuance.returned_on
                else f"à rendre le {_date(issuance.return_due_on)}"
            )
            bridge = f", couvre la demande n°{issuance.request_id}" if issuance.request_id else ""
            lines.append(
                f"Émise en urgence le {_date(issuance.issued_on)} par "
                f"{escape(issuance.issued_by)}{bridge} ; {back}"
            )
            lines.append(f"Motif : {escape(issuance.reason)}")
        if record.bridged_by:
            cards = ", ".join(f"n°{number}" for number in record.bridged_by)
            lines.append(f"Couverte par la carte d'urgence {cards}")
        return "\n".join(lines)

    def _show_renewal(self, record: Record) -> None:
        panel = self.query_one("#renewal", Static)
        panel.remove_class("urgency-expired", "urgency-gap", "urgency-order-late")
        lines = []
        renewal = record.renewal
        if renewal is None:
            if record.renewed_by is not None:
                lines.append(f"Renouvelé : remplacé par le support n°{record.renewed_by}.")
            elif record.state not in (CredentialState.ACTIVE, CredentialState.SUSPENDED):
                lines.append("Hors service : pas de renouvellement à prévoir.")
            else:
                lines.append("Expiration inconnue : aucun certificat lu, aucune date importée.")
        else:
            late = " — [b]dépassée[/b]" if renewal.order_late else ""
            lines.append(f"Commander avant le : [b]{_date(renewal.order_by)}[/b]{late}")
            if renewal.replacement is Replacement.NONE:
                lines.append(f"Commandé aujourd'hui, arriverait le {_date(renewal.arrival)}")
            else:
                label = messages.REPLACEMENT_LABELS[renewal.replacement]
                since = (
                    f" le {_date(renewal.replacement_requested_on)}"
                    if renewal.replacement_requested_on
                    else ""
                )
                lines.append(f"{_cap(label)}{since} ; arrivée prévue le {_date(renewal.arrival)}")
            if renewal.gap_days:
                lines.append(
                    f"[b]Rupture prévue : {_plural(renewal.gap_days, 'jour')} sans support[/b]"
                )
            else:
                lines.append("Pas de rupture prévue")
            if renewal.due_level is not None:
                lines.append(f"Alerte du jour : {messages.LEVEL_LABELS[renewal.due_level]}")
            if renewal.days_left < 0:
                panel.add_class("urgency-expired")
            elif renewal.gap_days:
                panel.add_class("urgency-gap")
            elif renewal.order_late:
                panel.add_class("urgency-order-late")
        for replacement in record.replacements:
            lines.append(
                f"Remplaçant n°{replacement.id} : {messages.state_label(replacement.state)}"
                f" (demandé le {_date(replacement.requested_on)})"
            )
        if record.mute is not None:
            lines.append(
                f"Alertes [b]coupées[/b] le {_instant(record.mute.muted_at)} par "
                f"{escape(record.mute.operator)} : {escape(record.mute.reason)}"
            )
        else:
            lines.append("Alertes actives")
        panel.update("\n".join(lines))

    def _certificates_text(self, record: Record) -> str:
        if not record.certificates:
            return "Aucun certificat lu (la carte n'est pas encore passée au lecteur)."
        lines = []
        for certificate in record.certificates:
            status = (
                messages.CERTIFICATE_STATUS_LABELS.get(certificate.status, certificate.status)
                if certificate.status
                else "jamais validé"
            )
            validated = (
                f" le {_instant(certificate.validated_at)}" if certificate.validated_at else ""
            )
            expires = from_db(certificate.not_after).astimezone(PARIS).date()
            lines.append(
                f"{_cap(messages.CERTIFICATE_ROLE_LABELS[certificate.role])} : "
                f"[b]{escape(status)}[/b]{validated} · expire le {_date(expires)}"
            )
            lines.append(f"  {escape(certificate.subject)}")
        return "\n".join(lines)

    def _history_text(self, record: Record) -> str:
        if not record.history:
            return "Aucune entrée."
        lines = []
        for line in record.history:
            what = line.action
            if line.subject.startswith("titulaire"):
                what += " (titulaire)"
            details = [escape(part) for part in (line.changes, line.reason) if part]
            lines.append(
                f"{line.when}  {escape(line.operator)}  [b]{escape(what)}[/b]"
                + (f" — {' — '.join(details)}" if details else "")
            )
        return "\n".join(lines)

    def _show_actions(self, record: Record) -> None:
        panel = self.query_one("#actions", Vertical)
        panel.remove_children()
        self._buttons = {}
        rows = []
        for index, action in enumerate(record.actions):
            refusal = self.refusal(action.role)
            key = ACTION_KEYS[action.kind]
            button = Button(
                f"{action_label(record, action)} ({key})",
                id=f"action-{index}",
                disabled=refusal is not None,
                compact=True,
            )
            self._buttons[f"action-{index}"] = action
            reason = Static(escape(refusal or ""), classes="disabled-reason")
            rows.append(Horizontal(button, reason))
        panel.mount_all(rows)

    # Actions ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys for what this record offers only (an operator refused still gets told
        why when pressing them)."""
        record = self.record
        kinds = {
            "transition": {ActionKind.TRANSITION},
            "mute": {ActionKind.MUTE, ActionKind.UNMUTE},
        }.get(action)
        if action == "step" and parameters:
            kinds = {ActionKind(str(parameters[0]))}
        if kinds is None:
            return True
        return record is not None and any(a.kind in kinds for a in record.actions)

    @on(Button.Pressed, "#actions Button")
    def _pressed(self, event: Button.Pressed) -> None:
        action = self._buttons.get(event.button.id or "")
        if action is not None:
            self._ask(action)

    def _offered(self, *kinds: ActionKind) -> list[Action]:
        return [a for a in (self.record.actions if self.record else ()) if a.kind in kinds]

    def action_transition(self) -> None:
        record = self.record
        moves = self._offered(ActionKind.TRANSITION)
        if record is None or not moves:
            return
        choices = [
            Choice(action.target, action_label(record, action), self.refusal(action.role))
            for action in moves
            if action.target is not None
        ]
        if all(choice.refusal is not None for choice in choices):
            self.allowed(moves[0].role)
            return
        self.app.push_screen(
            TransitionForm(
                f"Changer l'état du support n°{record.id}",
                f"{self._what(record)} est « {messages.state_label(record.state)} ». Nouvel état :",
                choices,
            ),
            lambda answer: self._transition(record, answer) if answer else None,
        )

    def action_step(self, kind: str) -> None:
        offered = self._offered(ActionKind(kind))
        if offered:
            self._ask(offered[0])

    def action_mute(self) -> None:
        offered = self._offered(ActionKind.MUTE, ActionKind.UNMUTE)
        if offered:
            self._ask(offered[0])

    def _what(self, record: Record) -> str:
        serial = f" {record.serial}" if record.serial else ""
        return escape(f"{_cap(messages.KIND_LABELS[record.kind])}{serial} de {record.holder.name}")

    def _ask(self, action: Action) -> None:
        """The form of ``action``, then the operation in a worker."""
        record = self.record
        if record is None or not self.allowed(action.role):
            return
        ops = records
        version = record.version
        credential_id = record.id
        label = action_label(record, action)
        what = self._what(record)
        kind = action.kind
        if kind is ActionKind.TRANSITION:
            target = action.target
            assert target is not None
            self._confirm(
                f"{label} le support n°{credential_id}",
                f"{what} : {messages.state_label(record.state)} → {messages.state_label(target)}.",
                lambda reason: self._transition(record, (target, reason)),
            )
        elif kind is ActionKind.RECEIVE:
            self.app.push_screen(
                ReceiveForm(
                    f"Réception de la demande n°{credential_id}",
                    f"{what} est arrivée au SAR.",
                    today=record.today,
                ),
                lambda answer: self._receive(record, answer) if answer else None,
            )
        elif kind is ActionKind.HAND_OVER:
            self.app.push_screen(
                HandOverForm(
                    f"Remise du support n°{credential_id}",
                    f"{what} : remise en main propre au titulaire.",
                    today=record.today,
                    replaces=record.replaces.id if record.replaces else None,
                ),
                lambda answer: self._hand_over(record, answer) if answer else None,
            )
        elif kind is ActionKind.CANCEL:
            self._confirm(
                f"Annuler la demande n°{credential_id}",
                f"{what} : la demande sera annulée.",
                lambda reason: self.run_action(
                    lambda: ops.cancel(
                        self.workspace, credential_id, reason=reason, expected_version=version
                    ),
                    lambda _moved: f"Demande n°{credential_id} annulée.",
                ),
                confirm_label="Annuler la demande",
            )
        elif kind is ActionKind.ORDER_REPLACEMENT:
            self._confirm(
                f"Commander le remplacement du support n°{credential_id}",
                f"{what} : une demande du même type sera enregistrée pour son titulaire, "
                "en remplacement de ce support.",
                lambda reason: self.run_action(
                    lambda: ops.order_replacement(
                        self.workspace, credential_id, reason=reason, expected_version=version
                    ),
                    lambda request_id: f"Remplacement commandé : demande n°{request_id}.",
                ),
                confirm_label="Commander",
            )
        elif kind is ActionKind.MUTE:
            self._confirm(
                f"Couper les alertes du support n°{credential_id}",
                f"{what} : plus aucune alerte de renouvellement ne sera envoyée.",
                lambda reason: self.run_action(
                    lambda: ops.mute(self.workspace, credential_id, reason),
                    lambda _none: f"Alertes coupées pour le support n°{credential_id}.",
                ),
                confirm_label="Couper",
            )
        elif kind is ActionKind.UNMUTE:
            self._confirm(
                f"Rétablir les alertes du support n°{credential_id}",
                f"{what} : les alertes de renouvellement partiront de nouveau.",
                lambda reason: self.run_action(
                    lambda: ops.unmute(self.workspace, credential_id, reason),
                    lambda _none: f"Alertes rétablies pour le support n°{credential_id}.",
                ),
                confirm_label="Rétablir",
            )
        elif kind is ActionKind.REVALIDATE:
            self.notify("Validation des certificats en cours…", timeout=3)
            self.run_action(
                lambda: ops.revalidate(self.workspace, credential_id),
                lambda counts: (
                    f"Certificats revalidés : {counts.checked} (valides : {counts.valid}, "
                    f"invalides : {counts.invalid}, indéterminés : {counts.undetermined}"
                    + (f", illisibles : {counts.unreadable}" if counts.unreadable else "")
                    + ")."
                ),
            )

    def _confirm(
        self,
        title: str,
        question: str,
        then: Callable[[str], None],
        *,
        confirm_label: str = "Confirmer",
    ) -> None:
        self.app.push_screen(
            ReasonForm(title, question, confirm_label=confirm_label),
            lambda reason: then(reason) if reason else None,
        )

    def _transition(self, record: Record, answer: tuple[CredentialState, str]) -> None:
        target, reason = answer
        self.run_action(
            lambda: records.transition(
                self.workspace, record.id, target, reason, expected_version=record.version
            ),
            lambda moved: (
                f"Support n°{record.id} : {messages.state_label(moved.source)} → "
                f"{messages.state_label(moved.target)}."
            ),
        )

    def _receive(self, record: Record, answer: Receipt) -> None:
        self.run_action(
            lambda: records.receive(
                self.workspace,
                record.id,
                serial=answer.serial,
                on=answer.day,
                reason=answer.reason,
                expected_version=record.version,
            ),
            lambda moved: (
                f"Demande n°{record.id} reçue le {_date(moved.day)}, n° de série {moved.serial}."
            ),
        )

    def _hand_over(self, record: Record, answer: Handover) -> None:
        self.run_action(
            lambda: records.hand_over(
                self.workspace,
                record.id,
                on=answer.day,
                old_returned=answer.old_returned,
                reason=answer.reason,
                expected_version=record.version,
            ),
            lambda moved: (
                f"Support n°{record.id} remis au titulaire le {_date(moved.day)}"
                + (
                    f" ; support n°{moved.returned_id} restitué"
                    if moved.returned_id is not None
                    else ""
                )
                + "."
            ),
        )

    @work(thread=True, exit_on_error=False, group="record-action")
    def run_action(self, call: Callable[[], Any], done: Callable[[Any], str]) -> None:
        """Run one operation; a refusal of the domain (or of the trust settings) is a
        notification, and the record is read again either way."""
        from pki import PkiError

        try:
            result = call()
        except InventaireError as error:
            self.post_message(ActionRefused(failure_text(error)))
            return
        except PkiError as error:
            self.post_message(ActionRefused(messages.pki_text(error.code, error.params)))
            return
        self.post_message(ActionDone(done(result)))

    def on_action_done(self, message: ActionDone) -> None:
        self.notify(message.text, title="Fait")
        self.load()

    def on_action_refused(self, message: ActionRefused) -> None:
        self.notify(message.text, title="Refusé", severity="error", timeout=10)
        self.load()
