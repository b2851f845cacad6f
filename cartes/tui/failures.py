"""Any failure a worker can meet, as one French sentence for a notification."""

from __future__ import annotations

from cartes import messages
from cartes.settings import SettingsError
from inventaire.errors import InventaireError


def failure_text(error: BaseException) -> str:
    """The French sentence that tells the operator what went wrong (never a secret: the
    errors below carry none, and an unexpected one is named by its type only)."""
    if isinstance(error, InventaireError):
        return messages.error_text(error)
    if isinstance(error, SettingsError):
        return error.message
    from cartes.readers import ReaderError  # here: it imports cryptography

    if isinstance(error, ReaderError):
        text = messages.reader_text(error.code) or error.code
        return text[:1].upper() + text[1:] + "."
    if isinstance(error, TimeoutError):
        return "Le délai d'attente est dépassé."
    if isinstance(error, ConnectionError):
        return "Connexion impossible au serveur."
    if isinstance(error, OSError) and error.strerror:
        return f"Erreur système : {error.strerror}."
    return f"Erreur inattendue ({type(error).__name__})."
