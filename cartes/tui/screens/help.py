"""The help screen: what each key does, on this screen and everywhere."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Markdown

GENERAL = """\
# Aide de cartes

Tout se fait au clavier ; les touches de l'écran courant sont rappelées en bas.

| touche | effet |
|---|---|
| 1 … 6 | tableau de bord, inventaire, lecteurs, urgences, alertes, journal |
| Ctrl+P | palette de commandes (aller à un écran, ouvrir une fiche, changer de thème…) |
| Ctrl+T | thème clair ou sombre |
| F1 ou ? | cette aide |
| Échap | fermer une fenêtre, revenir en arrière |
| Tab / Maj+Tab | passer d'une zone à l'autre |
| Q | quitter |

Une action que votre rôle ne permet pas est grisée : la raison s'affiche quand vous la
demandez. Chaque changement demande un motif, inscrit au journal.
"""


class HelpScreen(ModalScreen[None]):
    """General keys, then the keys of the screen the operator came from."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 100%; height: 90%; border: thick $primary; background: $surface;
    }
    """
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Fermer"),
        Binding("q", "app.pop_screen", "Fermer", show=False),
    ]

    def __init__(self, origin: Screen[object]) -> None:
        super().__init__()
        self._origin = origin

    def compose(self) -> ComposeResult:
        lines = [GENERAL]
        own = [
            binding
            for _key, binding in self._origin._bindings
            if binding.show and binding.description
        ]
        if own:
            title = getattr(self._origin, "TITLE", None) or "cet écran"
            lines.append(f"\n## Sur l'écran « {title} »\n\n| touche | effet |\n|---|---|")
            for binding in own:
                key = binding.key_display or self.app.get_key_display(binding)
                lines.append(f"| {key} | {binding.description} |")
        with VerticalScroll():
            yield Markdown("\n".join(lines))
