"""The application: its screens, keys, themes and command palette.

Built through ``build_app`` by the CLI (``cartes tui``, ``cartes`` in a terminal) and by the
tests, so that both run the same app.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.command import CommandPalette
from textual.reactive import reactive
from textual.screen import Screen

from cartes.ops import operator as operator_ops
from cartes.ops.operator import Acting
from cartes.tui.failures import failure_text
from cartes.workspace import Workspace
from inventaire.enums import OperatorRole

# The main screens, in the order of their keys (1 to 6) and of ``--ecran``: title and
# where the class lives. A screen's module is imported when the screen is first opened:
# some pull in SQLAlchemy or the mail code, which the first paint should not wait for.
SCREENS_BY_NAME: dict[str, tuple[str, str]] = {
    "tableau": ("Tableau de bord", "dashboard:DashboardScreen"),
    "inventaire": ("Inventaire", "inventory:InventoryScreen"),
    "lecteurs": ("Lecteurs", "readers:ReadersScreen"),
    "urgences": ("Urgences", "emergency:EmergencyScreen"),
    "alertes": ("Alertes", "alerts:AlertsScreen"),
    "journal": ("Journal", "journal:JournalScreen"),
}


def screen_class(where: str) -> type[Screen[None]]:
    """The screen class at ``module:Class`` under ``cartes.tui.screens``."""
    module, name = where.split(":")
    return getattr(importlib.import_module(f"cartes.tui.screens.{module}"), name)  # type: ignore[no-any-return]


def _factory(where: str) -> Callable[[], Screen[None]]:
    return lambda: screen_class(where)()


LIGHT, DARK = "textual-light", "textual-dark"


class CartesApp(App[None]):
    TITLE = "cartes"
    CSS_PATH = "cartes.tcss"
    MODES: ClassVar[dict[str, Callable[[], Screen[None]]]] = {  # type: ignore[assignment]
        name: _factory(where) for name, (_title, where) in SCREENS_BY_NAME.items()
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(str(number), f"go('{name}')", title, show=False)
            for number, (name, (title, _screen)) in enumerate(SCREENS_BY_NAME.items(), 1)
        ),
        Binding("f1", "help", "Aide", key_display="F1"),
        Binding("question_mark", "help", "Aide", show=False),
        Binding("ctrl+p", "command_palette", "Commandes", key_display="^P"),
        Binding("ctrl+t", "toggle_theme", "Thème", show=False),
        Binding("q", "quit", "Quitter"),
    ]
    NOTIFICATION_TIMEOUT = 6

    # The operator, resolved in a worker at start; None until then or if the database
    # cannot be reached (every action then says why it is disabled).
    acting: reactive[Acting | None] = reactive(None, init=False)

    def __init__(
        self,
        workspace: Workspace,
        *,
        start: str = "tableau",
        record_id: int | None = None,
        theme: str = DARK,
        notices: Sequence[str] = (),
    ) -> None:
        super().__init__()
        # Warnings found before the UI opened (files other users can read), shown at start.
        self._notices = tuple(notices)
        if start not in SCREENS_BY_NAME:
            raise ValueError(f"unknown screen {start!r}")
        self.workspace = workspace
        self._start = start
        self._record_id = record_id
        self._operator_problem: str | None = "Identification de l'opérateur en cours."
        self.theme = theme

    def on_mount(self) -> None:
        self.sub_title = f"opérateur {self.workspace.operator_login}"
        self.resolve_operator()
        self.switch_mode(self._start)
        if self._record_id is not None:
            self.open_record(self._record_id)
        for notice in self._notices:
            self.notify(
                notice, title="Fichiers lisibles par d'autres", severity="warning", timeout=30
            )

    @work(thread=True, exit_on_error=False, group="operator")
    def resolve_operator(self) -> None:
        try:
            acting = operator_ops.resolve(self.workspace)
        except Exception as exc:
            problem = failure_text(exc)
            self.call_from_thread(self._operator_failed, problem)
            return
        self.call_from_thread(self._operator_resolved, acting)

    def _operator_resolved(self, acting: Acting) -> None:
        self._operator_problem = None
        self.acting = acting
        self.sub_title = f"opérateur {acting.login} ({acting.roles_text})"

    def _operator_failed(self, problem: str) -> None:
        self._operator_problem = f"Opérateur non identifié : {problem}"
        self.sub_title = f"opérateur {self.workspace.operator_login} (non identifié)"
        self.notify(problem, title="Base de données", severity="error", timeout=10)

    def refusal(self, role: OperatorRole) -> str | None:
        """Why an action needing ``role`` is disabled (French), None when allowed."""
        if self.acting is None:
            return self._operator_problem or "Opérateur non identifié."
        return self.acting.refusal(role)

    def action_go(self, name: str) -> None:
        # A record or a form on top: back to the main screen of that mode first.
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.switch_mode(name)

    def action_help(self) -> None:
        from cartes.tui.screens.help import HelpScreen  # Markdown costs 0.1 s to import

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT if self.theme == DARK else DARK

    def action_command_palette(self) -> None:
        if not CommandPalette.is_open(self):
            self.push_screen(
                CommandPalette(placeholder="Rechercher une commande…", id="--command-palette")
            )

    def open_record(self, credential_id: int) -> None:
        """Open the record of one credential over the current screen."""
        from cartes.tui.screens.record import RecordScreen

        self.push_screen(RecordScreen(credential_id))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        for name, (title, _screen) in SCREENS_BY_NAME.items():
            yield SystemCommand(
                f"Aller à : {title}", f"écran {name}", partial(self.action_go, name)
            )
        yield SystemCommand("Thème clair / sombre", "change de thème", self.action_toggle_theme)
        yield SystemCommand("Aide", "les touches de chaque écran", self.action_help)
        yield SystemCommand("Quitter", "ferme cartes", self.action_quit)


def build_app(
    workspace: Workspace,
    *,
    start: str = "tableau",
    record_id: int | None = None,
    theme: str = DARK,
    notices: Sequence[str] = (),
) -> CartesApp:
    """The app on ``workspace``, opening on screen ``start`` (and the record of
    ``record_id`` over it, if given), with ``notices`` shown as warnings at start."""
    return CartesApp(workspace, start=start, record_id=record_id, theme=theme, notices=notices)
