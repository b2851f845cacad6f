"""The « Lecteurs » screen on real SoftHSM2 tokens: the cards and what the desk makes of
them, a card put in and pulled out, registration with one key, the proof of possession
with a PIN that is shown nowhere, and readers that fail."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from textual.widgets import Button, Input, OptionList, Static
from textual.worker import Worker

from fixtures.softhsm import softhsm_available

if softhsm_available():  # the reader tests' SoftHSM tokens and trust settings
    from tests.test_readers import PIN, hsm, trust_files  # noqa: F401
else:
    pytest.skip("SoftHSM2 n'est pas installé (paquet softhsm2)", allow_module_level=True)

from cartes import desk, readers
from cartes.settings import load
from cartes.tui.app import build_app
from cartes.tui.screens.readers import CardsRead, ReadersScreen
from cartes.tui.widgets.desk_forms import HandoverForm, PinForm
from fixtures.softhsm import (
    SOFTHSM_MODULE,
    TokenSpec,
    _read_object_file,
    standard_tokens,
)
from inventaire.enums import HolderRole
from pki import describe
from tests.tui_support import notifications, settle

RPVA = "Cle RPVA"
WRONG_PIN = "55" + PIN[2:]


@pytest.fixture
def desk_workspace(tui_workspace, trust_files, hsm):
    """Workspaces reading the test's SoftHSM tokens with the test PKI's trust settings."""
    loaded = load(trust_files).settings

    def make(login: str = "gestion", modules: tuple[str, ...] | None = (SOFTHSM_MODULE,)):
        return tui_workspace(
            login=login, reader_modules=modules, trust=loaded.trust, readers=loaded.readers
        )

    yield make
    with readers._LOCK:  # a read still running ends before the tokens' folder goes away
        pass


def add_rpva_holder(workspace, test_pki) -> int:
    """The RPVA key's holder known to the inventory (by e-mail), as in the reader tests."""
    from inventaire import credentials, db, operators, organisations

    spec = next(s for s in standard_tokens(test_pki) if s.label.startswith(RPVA))
    info = describe(spec.certificates[0][2])
    with db.write_session(workspace.engine) as session:
        holder = credentials.create_holder(
            session,
            last_name=info.holder_name.split()[-1],
            first_name=info.holder_name.split()[0],
            email=info.email,
            role=HolderRole.LAWYER,
            organisation_id=organisations.find(session, "Barreau d'Angers").id,
            operator=operators.find(session, "admin"),
            now=workspace.now(),
        )
    return holder.id


def text_of(widget: Static) -> str:
    return str(widget.render())


def screen_text(app) -> str:
    """What the operator reads on the Lecteurs screen."""
    screen = app.screen
    cards = screen.query_one("#cards", OptionList)
    parts = [text_of(screen.query_one(f"#{name}", Static)) for name in ("reading", "card-detail")]
    parts += [str(cards.get_option_at_index(i).prompt) for i in range(cards.option_count)]
    parts.append(text_of(screen.query_one("#register-reason", Static)))
    return "\n".join(parts)


def readers_screen(app) -> ReadersScreen:
    """The Lecteurs screen, also under a form."""
    screen = app._screen_stacks["lecteurs"][0]
    assert isinstance(screen, ReadersScreen)
    return screen


def card_labels(app) -> list[str]:
    screen = readers_screen(app)
    return [card.label for card in screen._cards.values()]


async def wait_for(pilot, condition, rounds: int = 150) -> None:
    """Wait (bounded, about 15 s at most) until ``condition()`` holds."""
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError("la condition attendue n'est jamais arrivée")


async def select(pilot, label_start: str) -> None:
    """Highlight the card whose label starts with ``label_start``."""
    screen = pilot.app.screen
    await wait_for(
        pilot, lambda: any(label.startswith(label_start) for label in card_labels(pilot.app))
    )
    cards = screen.query_one("#cards", OptionList)
    idents = [cards.get_option_at_index(i).id for i in range(cards.option_count)]
    wanted = next(
        i for i, ident in enumerate(idents) if screen._cards[ident].label.startswith(label_start)
    )
    cards.focus()
    while cards.highlighted != wanted:
        await pilot.press("down" if (cards.highlighted or 0) < wanted else "up")
    await pilot.pause()
    assert screen.selected().label.startswith(label_start)


def rows(workspace, query: str, **params: Any) -> list[Any]:
    with workspace.engine.connect() as connection:
        return list(connection.execute(sa.text(query), params).all())


# The cards and their result ---------------------------------------------------------------


async def test_cards_are_shown_with_their_result(desk_workspace, test_pki):
    workspace = desk_workspace()
    holder = add_rpva_holder(workspace, test_pki)
    app = build_app(workspace, start="lecteurs")
    async with app.run_test(size=(120, 50)) as pilot:
        await wait_for(pilot, lambda: len(card_labels(app)) == 5)
        text = screen_text(app)
        assert "5 cartes ou clés présentes" in text
        assert "Carte revoquee · invalide" in text

        await select(pilot, RPVA)
        text = screen_text(app)
        rpva = next(s for s in standard_tokens(test_pki) if s.label.startswith(RPVA))
        name = describe(rpva.certificates[0][2]).holder_name
        assert "SoftHSM" in text and "clé RPVA" in text  # manufacturer, kind
        assert f"Certificat d'authentification Authentification (id 01) — {name}" in text
        assert f"Certificat de signature Signature (id 02) — {name}" in text
        expiry = rpva.certificates[0][2].not_valid_after_utc.date()
        assert f"valide — expire le {expiry:%d/%m/%Y}" in text
        assert "renouvellement à commander au plus tard le" in text
        assert "(délai 45 j + marge 15 j)" in text
        assert f"titulaire reconnu par son adresse (titulaire n°{holder})" in text
        assert "« Enregistrer » le crée" in text

        await select(pilot, "Carte revoquee")
        text = screen_text(app)
        assert "invalide" in text and "révoqué" in text
        await select(pilot, "Objet vide")
        assert "Objet Objet vide (id 01) : objet certificat vide" in screen_text(app)
        await select(pilot, "Carte agent")
        text = screen_text(app)
        assert "inconnu de l'inventaire" in text and "enregistrez d'abord le titulaire" in text
        assert app.is_running


async def test_a_card_put_in_shows_and_pulled_out_goes(desk_workspace, hsm, test_pki):
    app = build_app(desk_workspace(), start="lecteurs")
    reads: list[CardsRead] = []

    def hook(message):
        if isinstance(message, CardsRead):
            reads.append(message)

    holder = test_pki.holders_of("agent")[-1]
    issued = holder.authentication
    spec = TokenSpec("Carte neuve", [("Authentification", b"\x01", issued.certificate, issued.key)])
    async with app.run_test(size=(80, 24), message_hook=hook) as pilot:
        await wait_for(pilot, lambda: len(card_labels(app)) == 5)
        screen = app.screen
        validated = screen._cache.validated
        assert validated == 5
        seen = len(reads)
        await wait_for(pilot, lambda: len(reads) >= seen + 3)
        # Read again and again, the unchanged cards are not validated again.
        assert screen._cache.validated == validated

        with readers._LOCK:  # not while the screen's worker reads the same library
            hsm.add_token(spec)
        await wait_for(pilot, lambda: "Carte neuve" in card_labels(app))
        assert screen._cache.validated == validated + 1
        await select(pilot, "Carte neuve")
        assert "Certificat d'authentification" in screen_text(app)

        hsm.delete_token("Carte neuve")
        await wait_for(pilot, lambda: "Carte neuve" not in card_labels(app))
        assert len(card_labels(app)) == 5
        assert "Carte neuve" not in screen_text(app)
        await settle(pilot)


# Registration -----------------------------------------------------------------------------


async def test_register_a_scanned_card_with_one_key(desk_workspace, test_pki):
    workspace = desk_workspace(login="gestion")
    holder = add_rpva_holder(workspace, test_pki)
    app = build_app(workspace, start="lecteurs")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not app.screen.query_one("#register", Button).disabled
        await select(pilot, RPVA)
        serial = app.screen.selected().token.token.serial
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, HandoverForm)
        await pilot.click("#confirm")  # not handed over yet: received at the desk
        await settle(pilot)
        assert isinstance(app.screen, ReadersScreen)
        await wait_for(pilot, lambda: "Enregistrement" in screen_text(app))
        ((credential, kind, state, stored_serial, owner),) = rows(
            workspace, "SELECT id, kind, state, serial, holder_id FROM credential"
        )
        assert (kind, state, stored_serial, owner) == (
            "RPVA_KEY",
            "RECEIVED",
            serial.upper(),
            holder,
        )
        certificates = rows(
            workspace, "SELECT role FROM certificate WHERE credential_id = :id", id=credential
        )
        assert sorted(role for (role,) in certificates) == ["AUTHENTICATION", "SIGNATURE"]
        journal = rows(
            workspace,
            "SELECT action, operator FROM journal_entry WHERE entity_type = 'credential' "
            "AND entity_id = :id",
            id=credential,
        )
        assert ("support.lecture_carte", "gestion") in journal
        text = screen_text(app)
        assert (
            f"support n°{credential} créé (reçue) : à remettre par une personne habilitée" in text
        )
        assert any(f"Support n°{credential} créé" in n for n in notifications(app))
        # Read again: the card is now known by its certificates.
        await wait_for(pilot, lambda: "certificat déjà connu" in screen_text(app))

        # The same key on a known card updates it, without a question.
        await pilot.press("e")
        await wait_for(pilot, lambda: "mis à jour" in screen_text(app))
        assert isinstance(app.screen, ReadersScreen)
        assert len(rows(workspace, "SELECT id FROM credential")) == 1


async def test_register_a_card_already_handed_over(desk_workspace, test_pki):
    workspace = desk_workspace(login="gestion")
    add_rpva_holder(workspace, test_pki)
    app = build_app(workspace, start="lecteurs")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await select(pilot, RPVA)
        await pilot.press("e")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, HandoverForm)
        await pilot.click("#already")
        form.query_one("#day", Input).value = "31/12/2026"  # a day to come: refused
        await settle(pilot)
        await pilot.click("#confirm")
        await wait_for(pilot, lambda: "enregistrement refusé" in screen_text(app))
        assert rows(workspace, "SELECT id FROM credential") == []
        assert any("refusé" in n for n in notifications(app))

        await pilot.press("e")
        await settle(pilot)
        form = app.screen
        await pilot.click("#already")
        form.query_one("#day", Input).value = "pas une date"
        await settle(pilot)
        await pilot.click("#confirm")
        assert "Date de remise illisible" in text_of(form.query_one("#error", Static))
        form.query_one("#day", Input).value = "02/11/2026"
        # The error line has pushed the buttons down: click where they are now.
        await settle(pilot)
        await pilot.click("#confirm")
        await wait_for(pilot, lambda: not isinstance(app.screen, HandoverForm))
        await wait_for(pilot, lambda: "remise déjà faite le 02/11/2026" in screen_text(app))
        ((state, day),) = rows(workspace, "SELECT state, handed_over_on FROM credential")
        assert state == "ACTIVE" and str(day).startswith("2026-11-02")


async def test_a_reader_sees_register_disabled_with_the_reason(desk_workspace, test_pki):
    workspace = desk_workspace(login="lecture")
    add_rpva_holder(workspace, test_pki)
    app = build_app(workspace, start="lecteurs")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await select(pilot, RPVA)
        screen = app.screen
        assert screen.query_one("#register", Button).disabled
        reason = text_of(screen.query_one("#register-reason", Static))
        assert reason.startswith("Enregistrer :") and "gestionnaire" in reason
        await pilot.press("e")
        await settle(pilot)
        assert isinstance(app.screen, ReadersScreen)  # no form
        assert any("gestionnaire" in n for n in notifications(app))
        assert rows(workspace, "SELECT id FROM credential") == []


async def test_a_card_of_an_unknown_holder_is_refused_with_the_reason(desk_workspace):
    workspace = desk_workspace(login="remise")
    app = build_app(workspace, start="lecteurs")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await select(pilot, "Carte agent")
        await pilot.press("e")
        await settle(pilot)
        assert "remise maintenant" in text_of(app.screen.query_one(".question", Static))
        await pilot.click("#confirm")
        await wait_for(pilot, lambda: "enregistrement refusé" in screen_text(app))
        assert "Titulaire inconnu" in screen_text(app)
        assert rows(workspace, "SELECT id FROM credential") == []


# Proof of possession ----------------------------------------------------------------------


def _no_pin_anywhere(app, pin: str, described: list[str]) -> None:
    """Not on the screen, in a notification, on the screen object, or in what Textual logs
    of the workers (their description shows their arguments)."""
    screen = readers_screen(app)
    assert pin not in screen_text(app)
    assert all(pin not in text for text in notifications(app))
    assert pin not in app.export_screenshot()
    assert pin not in repr(vars(screen))
    assert any(text.startswith("check_possession(") for text in described)
    assert all(pin not in text for text in described)


async def test_proof_of_possession_right_and_wrong_pin(desk_workspace):
    app = build_app(desk_workspace(login="lecture"), start="lecteurs")
    described: list[str] = []

    def hook(message):
        if isinstance(message, Worker.StateChanged):
            described.append(message.worker.description)

    async with app.run_test(size=(80, 24), message_hook=hook) as pilot:
        await settle(pilot)
        await select(pilot, RPVA)
        await pilot.press("p")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, PinForm)
        field = form.query_one("#pin", Input)
        assert field.password
        await pilot.press(*PIN)
        assert PIN not in form.app.export_screenshot()  # masked while typed
        await pilot.press("enter")
        assert field.value == ""  # emptied before the form closed
        await wait_for(pilot, lambda: "possession de la clé prouvée" in screen_text(app))
        await settle(pilot)
        assert "Possession prouvée pour 2 clés." in notifications(app)
        _no_pin_anywhere(app, PIN, described)

        await pilot.press("p")
        await settle(pilot)
        await pilot.press(*WRONG_PIN, "enter")
        await wait_for(pilot, lambda: "code PIN incorrect" in screen_text(app))
        await settle(pilot)
        text = screen_text(app)
        assert "possession NON prouvée : code PIN incorrect" in text
        assert "plusieurs codes PIN faux" in text  # the token's warning on the tries left
        assert any("NON prouvée : code PIN incorrect" in n and "plusieurs codes PIN faux" in n
                   for n in notifications(app))  # fmt: skip
        _no_pin_anywhere(app, WRONG_PIN, described)
        _no_pin_anywhere(app, PIN, described)


async def test_a_blocked_pin_is_not_even_asked(desk_workspace, hsm):
    label = next(label for label in hsm.serials if label.startswith(RPVA))
    hsm.lock_pin(label)
    app = build_app(desk_workspace(login="lecture"), start="lecteurs")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await select(pilot, RPVA)
        assert "Code PIN bloqué" in screen_text(app)
        await pilot.press("p")
        await settle(pilot)
        assert isinstance(app.screen, ReadersScreen)
        assert any("bloqué" in n for n in notifications(app))


# Readers that fail ------------------------------------------------------------------------


async def test_a_missing_module_is_said_and_the_app_keeps_working(desk_workspace, tmp_path):
    absent = str(tmp_path / "absent.so")
    app = build_app(desk_workspace(modules=(absent,)), start="lecteurs")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "introuvable" in screen_text(app))
        assert f"{absent} : module PKCS#11 introuvable" in screen_text(app)
        assert "Nouvel essai chaque seconde" in screen_text(app)
        await pilot.press("2")
        await settle(pilot)
        assert type(app.screen).__name__ == "InventoryScreen"
        await pilot.press("3")
        await settle(pilot)
        assert isinstance(app.screen, ReadersScreen)


async def test_a_missing_module_beside_a_working_one(desk_workspace, tmp_path):
    absent = str(tmp_path / "absent.so")
    app = build_app(desk_workspace(modules=(absent, SOFTHSM_MODULE)), start="lecteurs")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(card_labels(app)) == 5)
        text = screen_text(app)
        assert "5 cartes ou clés présentes." in text and "module PKCS#11 introuvable" in text
        await settle(pilot)


async def test_no_module_at_all(desk_workspace, monkeypatch):
    monkeypatch.setattr(readers, "OPENSC_MODULES", ())
    app = build_app(desk_workspace(modules=None), start="lecteurs")
    # The trust settings name SoftHSM in [readers]: this workspace has none.
    app.workspace.settings = app.workspace.settings.model_copy(
        update={"readers": type(app.workspace.settings.readers)()}
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "Aucun module PKCS#11" in screen_text(app))
        assert "installez OpenSC" in screen_text(app)
        assert app.is_running


async def test_a_card_pulled_out_mid_read(desk_workspace, hsm, monkeypatch):
    """The RPVA key goes (softhsm2-util deletes it) after its slot was listed and before its
    objects are read: the screen says so for that card, and the reads go on."""
    victim = next(label for label in hsm.serials if label.startswith(RPVA))
    original = readers._read_objects
    pulled: list[str] = []

    def remove_then_read(token):  # type: ignore[no-untyped-def]
        if token.label.strip() == victim and not pulled:
            pulled.append(victim)
            hsm.delete_token(victim)
        return original(token)

    app = build_app(desk_workspace(), start="lecteurs")

    def hook(message):
        # Hold the screen on the read that met the removal, to look at it.
        if isinstance(message, CardsRead) and any(c.token.token.error for c in message.cards):
            readers_screen(app)._timer.pause()

    async with app.run_test(size=(80, 24), message_hook=hook) as pilot:
        await wait_for(pilot, lambda: len(card_labels(app)) == 5)
        monkeypatch.setattr(readers, "_read_objects", remove_then_read)
        await wait_for(pilot, lambda: "retirée pendant la lecture" in screen_text(app))
        await select(pilot, RPVA)
        assert "La carte ou la clé a été retirée pendant la lecture." in screen_text(app)
        app.screen._timer.resume()
        await wait_for(pilot, lambda: len(card_labels(app)) == 4)
        assert "4 cartes ou clés présentes." in screen_text(app)
        await settle(pilot)


async def test_an_unreachable_inventory_leaves_the_cards_readable(
    tui_workspace, trust_files, hsm, tmp_path
):
    loaded = load(trust_files).settings
    workspace = tui_workspace(
        login="gestion",
        reader_modules=(SOFTHSM_MODULE,),
        trust=loaded.trust,
        readers=loaded.readers,
        database_url=f"sqlite:///{tmp_path}/absent/cartes.db",
    )
    app = build_app(workspace, start="lecteurs")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: len(card_labels(app)) == 5)
        await select(pilot, RPVA)
        text = screen_text(app)
        assert "Inventaire : inventaire indisponible :" in text
        assert "valide — expire le" in text  # the reading and the validation go on
        await pilot.press("e")  # refused with the reason: the operator is not identified
        await settle(pilot)
        assert isinstance(app.screen, ReadersScreen)
        assert any("Opérateur non identifié" in n for n in notifications(app))
    with readers._LOCK:
        pass


# What the desk keeps between reads --------------------------------------------------------


def test_the_validation_cache_validates_a_changed_token_only(hsm, trust_files):
    from cartes.trust import validator_from_settings
    from tests.pki_support import PKI_NOW

    settings = load(trust_files).settings
    validator = validator_from_settings(settings)
    cache = desk.ValidationCache()
    first = desk.scan_cards(settings, validator=validator, at=PKI_NOW, cache=cache)
    assert cache.validated == 5
    again = desk.scan_cards(settings, validator=validator, at=PKI_NOW, cache=cache)
    assert cache.validated == 5
    assert [t.certificates for t in again.tokens] == [t.certificates for t in first.tokens]
    # The next day, everything is validated again; a token gone is forgotten.
    desk.scan_cards(settings, validator=validator, at=PKI_NOW + dt.timedelta(days=1), cache=cache)
    assert cache.validated == 10
    hsm.delete_token(next(label for label in hsm.serials if label.startswith(RPVA)))
    desk.scan_cards(settings, validator=validator, at=PKI_NOW + dt.timedelta(days=1), cache=cache)
    assert cache.validated == 10 and len(cache._entries) == 4
    cache.clear()
    desk.scan_cards(settings, validator=validator, at=PKI_NOW, cache=cache)
    assert cache.validated == 14


# Snapshots --------------------------------------------------------------------------------

# SoftHSM's token.object: the token's label and serial number.
_CKA_OS_TOKENLABEL, _CKA_OS_TOKENSERIAL = 0x80005349, 0x8000534A


def fix_serials(hsm) -> None:
    """Give the tokens fixed serial numbers (SoftHSM draws them at random), written in
    SoftHSM's own token files as ``SoftHsm.lock_pin`` writes flags, so that the snapshots
    show the same numbers on every run."""
    from fixtures.softhsm import LOCK

    def label(path):  # the folders have random names: number the tokens by label
        return _read_object_file(path.read_bytes())[1][_CKA_OS_TOKENLABEL][1]

    paths = sorted((hsm.directory / "tokens").glob("*/token.object"), key=label)
    with LOCK:
        for number, path in enumerate(paths, 1):
            data = bytearray(path.read_bytes())
            generation, attributes = _read_object_file(bytes(data))
            offset, value = attributes[_CKA_OS_TOKENSERIAL]
            # SoftHSM numbers its slots after the serial's last digits: keep them apart, or
            # two tokens in one slot abort the process.
            serial = f"c0ffee005eca{number:04d}".encode()
            assert len(serial) == len(value)
            data[offset : offset + len(value)] = serial
            data[0:8] = (generation + 1).to_bytes(8, "big")
            path.write_bytes(bytes(data))


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
def test_snapshot(snap_compare, desk_workspace, hsm, test_pki, size):
    fix_serials(hsm)
    workspace = desk_workspace(login="gestion")
    add_rpva_holder(workspace, test_pki)

    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: len(card_labels(pilot.app)) == 5)
        await select(pilot, RPVA)
        await settle(pilot)

    assert snap_compare(build_app(workspace, start="lecteurs"), terminal_size=size,
                        run_before=run_before)  # fmt: skip
