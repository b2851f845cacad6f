"""The « Lecteurs » screen: the cards in the readers, read every second, with what the desk
makes of them (validation, renewal outlook, the inventory's match); registration with one
key and, with the holder's PIN, the proof of possession.

The work is ``cartes.desk``'s, in thread workers: a read every second (one at a time, in an
exclusive group), which validates a card only when it is new or changed
(``desk.ValidationCache``) and matches it with the inventory once; the registration; the
proof, whose PIN goes from the form to the token and is kept nowhere.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.markup import escape
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Button, Footer, Header, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker, get_current_worker

from cartes import desk, messages
from cartes.messages import (
    DESK_MATCH_LABELS,
    KIND_LABELS,
    PIN_STATES,
    PROOF_ERROR_LABELS,
    READER_MESSAGES,
    VALIDATION_STATUS_LABELS,
    reader_text,
)
from cartes.ops.operator import Acting
from cartes.readers import Proof
from cartes.tui.base import CartesScreen
from cartes.tui.failures import failure_text
from cartes.tui.widgets.desk_forms import Handover, HandoverForm, OneTimePin, PinForm
from inventaire.clock import PARIS, paris_today
from inventaire.enums import CredentialState, OperatorRole
from pki import INVALID, UNDETERMINED, VALID, PkiError, Validator

if TYPE_CHECKING:  # SQLAlchemy is imported on first use of the inventory, not at start-up
    from inventaire.cards import Match

    # What a read keeps of a card for the next one: the Paris day, the outlooks, the match
    # and why it could not be made.
    _Known = tuple[dt.date, dict[str, desk.CertificateStatus], Match | None, str | None]

POLL_SECONDS = 1.0
_STATUS_STYLES = {VALID: "$success", INVALID: "$error", UNDETERMINED: "$warning"}
_ROLE_TITLES = {
    "authentification": "Certificat d'authentification",
    "signature": "Certificat de signature",
}


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _day(value: dt.date) -> str:
    return value.strftime("%d/%m/%Y")


# What the workers tell the screen ---------------------------------------------------------


@dataclass(frozen=True)
class CardRead:
    """One card as the screen shows it: the token validated, the renewal outlook of its
    certificates (by fingerprint) and the inventory's match (or why it is unknown)."""

    ident: str  # the card where it sits: module, slot, serial
    key: tuple[object, ...]  # desk.token_key: changes when the card's content does
    token: desk.ScannedToken
    outlooks: dict[str, desk.CertificateStatus]
    match: Match | None
    match_problem: str | None  # the inventory could not be asked (French)

    @property
    def label(self) -> str:
        return self.token.token.label or "carte sans nom"


class CardsRead(Message):
    """A read of the readers is done."""

    def __init__(
        self,
        cards: tuple[CardRead, ...],
        problems: tuple[str, ...] = (),
        problem: str | None = None,
    ) -> None:
        super().__init__()
        self.cards = cards
        self.problems = problems  # a module could not be read; the others were (French)
        self.problem = problem  # nothing could be read at all (French)


class CardRegistered(Message):
    """The registration of a card was done, or refused by the inventory."""

    def __init__(self, card: CardRead, outcome: desk.InventoryOutcome) -> None:
        super().__init__()
        self.card = card
        self.outcome = outcome


class PossessionChecked(Message):
    """The proof of possession of a card's keys is done (the PIN is gone)."""

    def __init__(self, card: CardRead, proofs: tuple[tuple[str, Proof | None], ...]) -> None:
        super().__init__()
        self.card = card
        self.proofs = proofs  # (certificate fingerprint or object label, proof)


# The French of a card ---------------------------------------------------------------------


def card_summary(card: CardRead) -> str:
    """One line of the list of cards (markup)."""
    token = card.token
    parts = [f"[b]{escape(card.label)}[/b]"]
    if token.token.error:
        parts.append(f"[$error]{escape(reader_text(token.token.error) or '')}[/]")
    else:
        statuses = [c.result.status for c in token.readable if c.result is not None]
        if statuses:
            worst = desk.worst_status(statuses)
            parts.append(f"[{_STATUS_STYLES[worst]}]{VALIDATION_STATUS_LABELS[worst]}[/]")
        else:
            parts.append("[$warning]aucun certificat lisible[/]")
        unreadable = len(token.certificates) - len(token.readable)
        if unreadable:
            parts.append(
                f"[$warning]{unreadable} objet{'s' if unreadable > 1 else ''} illisible[/]"
            )
    parts.append(_match_short(card))
    return " · ".join(parts)


def _match_short(card: CardRead) -> str:
    match = card.match
    if card.match_problem:
        return "[$error]inventaire indisponible[/]"
    if match is None:
        return ""
    if match.credential_id is not None:
        return f"support n°{match.credential_id}"
    if match.holder_id is not None:
        return f"titulaire n°{match.holder_id}, support à créer"
    return "[$warning]inconnue de l'inventaire[/]"


def match_text(card: CardRead) -> str:
    """What the inventory knows of the card, and why it is unknown when it is (markup)."""
    match = card.match
    if card.match_problem:
        return f"[$error]inventaire indisponible : {escape(card.match_problem)}[/]"
    if match is None:
        return "non consulté (carte illisible)"
    if match.by is None:
        return (
            "[$warning]inconnu de l'inventaire[/] : ni ses certificats, ni son numéro de "
            "série, ni son titulaire (adresse électronique, nom) n'y figurent ; enregistrez "
            "d'abord le titulaire."
        )
    how = DESK_MATCH_LABELS.get(match.by, match.by)
    if match.credential_id is not None:
        text = f"{how} : support n°{match.credential_id}, titulaire n°{match.holder_id}"
        if match.by in ("email", "nom"):
            text += " (support en attente de cette carte)"
        return text
    text = f"{how} (titulaire n°{match.holder_id}) : aucun support pour cette carte"
    if card.token.kind is None:
        return text + (
            " ; [$warning]type de carte indéterminé[/] : ses certificats ne remontent pas à "
            "une seule ancre de confiance configurée, elle ne peut pas être enregistrée."
        )
    return text + " ; « Enregistrer » le crée."


def registration_text(outcome: desk.InventoryOutcome) -> str:
    """What a registration did, or why it was refused (plain French)."""
    if outcome.refused is not None:
        return f"enregistrement refusé : {messages.error_text(outcome.refused)}"
    registration = outcome.registration
    if registration is None:
        return "rien à enregistrer : la carte n'a aucun certificat lisible."
    number = f"support n°{registration.credential_id}"
    state = messages.state_label(registration.state)
    day = registration.handed_over_on
    if not registration.created:
        return f"{number} mis à jour (état inchangé : {state})"
    if registration.handover == "remise" and day is not None:
        return f"{number} créé ({state}) : remis à son titulaire le {_day(day)}"
    if registration.handover == "deja_remise":
        when = f"le {_day(day)}" if day else "à une date inconnue"
        return f"{number} créé ({state}) : remise déjà faite {when}, enregistrée comme telle"
    if registration.state is CredentialState.RECEIVED:
        return f"{number} créé ({state}) : à remettre par une personne habilitée"
    return f"{number} créé ({state})"


def proof_text(proof: Proof) -> str:
    """The outcome of one proof of possession (plain French, never the PIN)."""
    if proof.proven:
        text = f"possession de la clé prouvée ({proof.mechanism})"
    else:
        error = PROOF_ERROR_LABELS.get(proof.error or "", proof.error or "raison inconnue")
        text = f"possession NON prouvée : {error}"
    if proof.pin_state:
        text += f" — {PIN_STATES[proof.pin_state]}"
    return text


def card_detail(
    card: CardRead,
    *,
    proofs: dict[str, Proof | None] | None = None,
    registration: str | None = None,
) -> str:
    """Everything the desk knows of the card (markup)."""
    token, read = card.token, card.token.token
    kind = KIND_LABELS[token.kind] if token.kind is not None else "type de carte indéterminé"
    lines = [f"[b]« {escape(card.label)} »[/b]  n° {escape(read.serial or '?')}"]
    maker = ", ".join(escape(part) for part in (read.manufacturer, read.model) if part)
    lines.append(f"{maker or 'fabricant inconnu'} · {kind}")
    if read.error:
        lines.append(f"[$error]{escape(_sentence(reader_text(read.error) or read.error))}[/]")
    if read.pin_state:
        lines.append(f"[$warning]{escape(_sentence(PIN_STATES[read.pin_state]))}[/]")
    if not token.certificates and not read.error:
        lines.append("[$warning]Aucun certificat sur la carte.[/]")
    lines.append(f"[b]Inventaire[/b] : {match_text(card)}")
    if registration:
        lines.append(f"[b]Enregistrement[/b] : {escape(registration)}")
    proofs = proofs or {}
    for found in token.certificates:
        lines.append("")
        name = f"{escape(found.label or 'sans nom')} (id {escape(found.id or '?')})"
        if found.info is None or found.result is None:
            lines.append(f"Objet {name} : [$error]{escape(reader_text(found.error) or '')}[/]")
            continue
        info, result = found.info, found.result
        title = _ROLE_TITLES.get(info.role or "", "Certificat (rôle inconnu)")
        holder = escape(info.holder_name or info.subject)
        lines.append(f"[b]{title}[/b] {name} — {holder}")
        status = f"[{_STATUS_STYLES[result.status]}]{VALIDATION_STATUS_LABELS[result.status]}[/]"
        expiry = info.not_after.astimezone(PARIS).date()
        outlook = card.outlooks.get(info.fingerprint_sha256)
        if outlook is not None and outlook.outlook.days_left < 0:
            lines.append(f"  {status} — [$error]expiré depuis le {_day(expiry)}[/]")
        elif outlook is not None:
            days = outlook.outlook.days_left
            lines.append(f"  {status} — expire le {_day(expiry)} ({days} jours)")
        else:
            lines.append(f"  {status} — expire le {_day(expiry)}")
        for reason in result.reasons:
            lines.append(f"  · {escape(messages.pki_text(reason.code, reason.params))}")
        if outlook is not None:
            lines.append(f"  {_outlook_text(outlook)}")
        if info.fingerprint_sha256 in proofs:
            proof = proofs[info.fingerprint_sha256]
            if proof is None:
                lines.append("  [$warning]possession non vérifiable (objet sans identifiant)[/]")
            else:
                style = "$success" if proof.proven else "$error"
                lines.append(f"  [{style}]{escape(proof_text(proof))}[/]")
    return "\n".join(lines)


def _outlook_text(status: desk.CertificateStatus) -> str:
    plan = status.outlook
    text = (
        f"renouvellement à commander au plus tard le {_day(plan.order_by)} "
        f"(délai {status.lead_days} j + marge {status.margin_days} j)"
    )
    if plan.order_late:
        text += " — [$warning]date limite passée : commander aujourd'hui[/]"
        if plan.predicted_gap_days > 0:
            text += f" — [$error]rupture prévisible de {plan.predicted_gap_days} jours[/]"
    return text


# The screen -------------------------------------------------------------------------------


class ReadersScreen(CartesScreen):
    """The cards present, read every second; register one, prove its keys."""

    TITLE = "Lecteurs"
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-narrow"),
        (120, "-wide"),
    ]
    DEFAULT_CSS = """
    ReadersScreen #reading { height: auto; padding: 0 1; color: $text-muted; }
    ReadersScreen #reading.problem { color: $error; }
    ReadersScreen #body { height: 1fr; }
    ReadersScreen #cards { height: auto; max-height: 8; border: round $primary; }
    ReadersScreen #cards:focus { border: round $accent; }
    ReadersScreen #detail { height: 1fr; border: round $primary; padding: 0 1; }
    ReadersScreen.-wide #body { layout: horizontal; }
    ReadersScreen.-wide #cards { width: 2fr; height: 1fr; max-height: 100%; }
    ReadersScreen.-wide #detail { width: 3fr; }
    ReadersScreen #actions { height: auto; padding: 0 1; }
    ReadersScreen #actions Button { margin-right: 2; }
    ReadersScreen #register-reason { height: auto; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "register", "Enregistrer"),
        Binding("p", "prove", "Preuve de possession"),
        Binding("o", "open_record", "Fiche"),
        Binding("r", "reread", "Relire"),
        Binding("f5", "reread", "Actualiser", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._cards: dict[str, CardRead] = {}
        self._proofs: dict[tuple[object, ...], dict[str, Proof | None]] = {}
        self._registrations: dict[tuple[object, ...], str] = {}
        self._shown: list[tuple[str, str]] = []
        self._timer: Timer | None = None
        self._reader: Worker[None] | None = None
        # The workers' own state, under _lock: one read at a time uses it.
        self._lock = threading.Lock()
        self._validator: Validator | None = None
        self._cache = desk.ValidationCache()
        self._known: dict[tuple[object, ...], _Known] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Lecture des cartes…", id="reading")
        with Vertical(id="body"):
            yield OptionList(id="cards")
            with VerticalScroll(id="detail"):
                yield Static("Insérez une carte ou une clé dans un lecteur.", id="card-detail")
        with Horizontal(id="actions"):
            yield Button("Enregistrer (e)", id="register", compact=True, disabled=True)
            yield Button("Preuve de possession (p)", id="prove", compact=True)
        yield Static("", id="register-reason", classes="disabled-reason")
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.app, "acting", self._acting_changed)
        self._timer = self.set_interval(POLL_SECONDS, self._tick)
        self._tick()

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.pause()

    def on_screen_resume(self) -> None:
        if self._timer is not None:
            self._timer.resume()
            self._tick()

    def _acting_changed(self, acting: Acting | None) -> None:
        refusal = self.refusal(OperatorRole.MANAGER)
        self.query_one("#register", Button).disabled = refusal is not None
        reason = self.query_one("#register-reason", Static)
        reason.update(f"Enregistrer : {refusal}" if refusal else "")
        reason.display = refusal is not None

    # Reading ------------------------------------------------------------------------------

    def _tick(self, fresh: bool = False) -> None:
        # One read at a time: a slow module must not pile reads up behind it.
        if self._reader is not None and self._reader.is_running and not fresh:
            return
        self._reader = self.read_cards(fresh)

    @work(thread=True, exit_on_error=False, exclusive=True, group="lecteurs-lecture")
    def read_cards(self, fresh: bool = False) -> None:
        worker = get_current_worker()
        with self._lock:
            if worker.is_cancelled:
                return
            if fresh:
                self._cache.clear()
                self._known.clear()
            message = self._read()
        if not worker.is_cancelled:
            self.post_message(message)

    def _read(self) -> CardsRead:
        """Read, validate (what is new), match (what is new). Worker thread, under _lock."""
        workspace = self.workspace
        settings = workspace.settings
        modules = desk.reader_modules(settings, workspace.reader_modules)
        if not modules:
            return CardsRead((), problem=_sentence(READER_MESSAGES["aucun_module"]))
        if self._validator is None:
            from cartes.trust import validator_from_settings

            try:
                self._validator = validator_from_settings(settings)
            except PkiError as exc:
                text = messages.pki_text(exc.code, exc.params)
                return CardsRead((), problem=f"Validation impossible : {text}")
        validator = self._validator
        at = workspace.now()
        day = paris_today(at)
        found = desk.scan_cards(
            settings, modules=modules, validator=validator, at=at, cache=self._cache
        )
        problems = tuple(
            f"{module} : {reader_text(code)}" + (f" ({detail})" if detail else "")
            for module, code, detail in found.problems
        )
        cards: list[CardRead] = []
        known: dict[tuple[object, ...], _Known] = {}
        for token in found.tokens:
            key = desk.token_key(token.token)
            previous = self._known.get(key)
            if previous is not None and previous[0] == day and previous[3] is None:
                _, outlooks, match, problem = previous
            else:
                outlooks = {
                    status.info.fingerprint_sha256: status
                    for status in desk.lawyer_status(
                        [token], renewal=settings.renewal, validator=validator, at=at
                    )
                }
                match, problem = self._match(token, at)
            known[key] = (day, outlooks, match, problem)
            read = token.token
            ident = f"{read.module}#{read.slot}#{read.serial}"
            cards.append(CardRead(ident, key, token, outlooks, match, problem))
        self._known = known
        cards.sort(key=lambda card: (card.label, card.ident))
        return CardsRead(tuple(cards), problems, problems[0] if found.failed else None)

    def _match(self, token: desk.ScannedToken, at: dt.datetime) -> tuple[Match | None, str | None]:
        if token.token.error is not None:
            return None, None
        workspace = self.workspace
        try:
            outcome = desk.match_and_register(
                workspace.engine, token, operator_login=workspace.operator_login, now=at
            )
        except Exception as exc:  # the database: shown on the card, the reads go on
            return None, failure_text(exc)
        return outcome.match, None

    def on_cards_read(self, message: CardsRead) -> None:
        count = len(message.cards)
        if message.problem:
            text = f"{escape(message.problem)} Nouvel essai chaque seconde."
        elif count:
            plural = "s" if count > 1 else ""
            text = f"{count} carte{plural} ou clé{plural} présente{plural}."
        else:
            text = "Aucune carte ni clé dans les lecteurs : insérez-en une."
        if message.problems and not message.problem:
            text += f" [$error]{escape(' ; '.join(message.problems))}[/]"
        reading = self.query_one("#reading", Static)
        reading.update(text)
        reading.set_class(bool(message.problem), "problem")
        self._cards = {card.ident: card for card in message.cards}
        present = {card.key for card in message.cards}
        self._proofs = {key: value for key, value in self._proofs.items() if key in present}
        self._registrations = {
            key: value for key, value in self._registrations.items() if key in present
        }
        self._refresh_list()

    def _refresh_list(self) -> None:
        cards = self.query_one("#cards", OptionList)
        shown = [(card.ident, card_summary(card)) for card in self._cards.values()]
        if shown != self._shown:
            highlighted = self._selected_ident()
            cards.clear_options()
            cards.add_options(
                [Option(Content.from_markup(summary), id=ident) for ident, summary in shown]
            )
            self._shown = shown
            idents = [ident for ident, _ in shown]
            if highlighted in idents:
                cards.highlighted = idents.index(highlighted)
            elif idents:
                cards.highlighted = 0
        self._refresh_detail()

    def _selected_ident(self) -> str | None:
        cards = self.query_one("#cards", OptionList)
        if cards.highlighted is None or cards.option_count == 0:
            return None
        return cards.get_option_at_index(cards.highlighted).id

    def selected(self) -> CardRead | None:
        """The card highlighted in the list (the one the keys act on)."""
        ident = self._selected_ident()
        return self._cards.get(ident) if ident is not None else None

    @on(OptionList.OptionHighlighted, "#cards")
    def _highlighted(self) -> None:
        self._refresh_detail()

    def _refresh_detail(self) -> None:
        detail = self.query_one("#card-detail", Static)
        card = self.selected()
        if card is None:
            detail.update("Insérez une carte ou une clé dans un lecteur.")
            return
        detail.update(
            card_detail(
                card,
                proofs=self._proofs.get(card.key),
                registration=self._registrations.get(card.key),
            )
        )

    def action_reread(self) -> None:
        """Read again, validating and matching every card afresh."""
        self._tick(fresh=True)

    # Registration -------------------------------------------------------------------------

    @on(Button.Pressed, "#register")
    def action_register(self) -> None:
        if not self.allowed(OperatorRole.MANAGER):
            return
        card = self._card_to_act_on()
        if card is None:
            return
        if card.token.token.error is not None or not card.token.readable:
            self.notify(
                "Cette carte n'a aucun certificat lisible : rien à enregistrer.",
                severity="warning",
            )
            return
        if card.match is not None and card.match.credential_id is not None:
            self.register_card(card, None)  # an update: nothing to ask
            return
        acting = self.acting
        otherwise = (
            "elle lui est remise maintenant, à ce guichet."
            if acting is not None and acting.may(OperatorRole.ISSUER)
            else "elle est enregistrée comme reçue au SAR, à remettre par une personne habilitée."
        )

        def answered(handover: Handover | None) -> None:
            if handover is not None:
                self.register_card(card, handover)

        self.app.push_screen(HandoverForm(card.label, otherwise), answered)

    @work(thread=True, exit_on_error=False, group="lecteurs-enregistrement")
    def register_card(self, card: CardRead, handover: Handover | None) -> None:
        workspace = self.workspace
        outcome = desk.match_and_register(
            workspace.engine,
            card.token,
            operator_login=workspace.operator_login,
            register=True,
            already_handed_over=handover is not None and handover.already,
            handed_over_on=handover.on if handover is not None else None,
            now=workspace.now(),
        )
        with self._lock:  # matched again at the next read
            self._known.pop(card.key, None)
        self.post_message(CardRegistered(card, outcome))

    def on_card_registered(self, message: CardRegistered) -> None:
        text = registration_text(message.outcome)
        self._registrations[message.card.key] = text
        refused = message.outcome.refused is not None
        self.notify(
            _sentence(text),
            title=f"« {message.card.label} »",
            severity="error" if refused else "information",
            timeout=10 if refused else None,
            markup=False,
        )
        self._refresh_detail()
        self._tick()

    # Proof of possession ------------------------------------------------------------------

    @on(Button.Pressed, "#prove")
    def action_prove(self) -> None:
        card = self._card_to_act_on()
        if card is None:
            return
        read = card.token.token
        if read.error is not None or not card.token.readable:
            self.notify(
                "Cette carte n'a aucun certificat lisible : aucune clé à éprouver.",
                severity="warning",
            )
            return
        if read.pin_state == "bloque":
            self.notify(_sentence(PIN_STATES["bloque"]), severity="error")
            return
        warning = PIN_STATES.get(read.pin_state or "")

        def typed(pin: OneTimePin | None) -> None:
            if pin is not None:
                self.check_possession(card, pin)

        self.app.push_screen(PinForm(card.label, _sentence(warning) if warning else None), typed)

    @work(thread=True, exit_on_error=False, exclusive=True, group="lecteurs-preuve")
    def check_possession(self, card: CardRead, secret: OneTimePin) -> None:
        pin = secret.take()
        proofs: list[tuple[str, Proof | None]] = []
        try:
            for found in card.token.readable:
                assert found.info is not None
                proof = desk.prove(card.token, found, pin)
                proofs.append((found.info.fingerprint_sha256, proof))
                if proof is not None and proof.error in ("pin_incorrect", "pin_bloque"):
                    break  # another try with the same PIN would only use up the card's tries
        finally:
            del pin
        self.post_message(PossessionChecked(card, tuple(proofs)))

    def on_possession_checked(self, message: PossessionChecked) -> None:
        self._proofs[message.card.key] = dict(message.proofs)
        done = [proof for _, proof in message.proofs if proof is not None]
        failed = [proof for proof in done if not proof.proven]
        if not done:
            text, severity = "Aucune clé à éprouver sur cette carte.", "warning"
        elif failed:
            text, severity = _sentence(proof_text(failed[0])), "error"
        else:
            count = len(done)
            text = f"Possession prouvée pour {count} clé{'s' if count > 1 else ''}."
            severity = "information"
        self.notify(text, title=f"« {message.card.label} »", severity=severity, markup=False)  # type: ignore[arg-type]
        self._refresh_detail()

    # The record ---------------------------------------------------------------------------

    def action_open_record(self) -> None:
        card = self._card_to_act_on()
        if card is None:
            return
        if card.match is None or card.match.credential_id is None:
            self.notify(
                "Cette carte n'est pas encore un support de l'inventaire.", severity="warning"
            )
            return
        self.cartes.open_record(card.match.credential_id)

    def _card_to_act_on(self) -> CardRead | None:
        card = self.selected()
        if card is None:
            self.notify("Aucune carte dans les lecteurs.", severity="warning")
        return card
