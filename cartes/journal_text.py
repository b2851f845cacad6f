"""Journal entries as people read them (French): when, what, on what, and what changed.

Shared by ``cartes journal`` and the terminal UI (the record's history, the journal
screen), so that an entry reads the same everywhere.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from cartes import messages
from inventaire.clock import PARIS, from_db
from inventaire.models import JournalEntry

ACTION_LABELS = {
    "titulaire.anonymisation": "titulaire anonymisé",
    "support.creation": "support créé",
    "support.modification": "support modifié",
    "support.transition": "changement d'état",
    "support.enregistrement": "remise passée enregistrée",
    "support.lecture_carte": "carte lue au guichet",
    "support.alertes_coupees": "alertes coupées",
    "support.alertes_retablies": "alertes rétablies",
    "demande.creation": "demande enregistrée",
    "demande.reception": "demande reçue au SAR",
    "demande.remise": "remise au titulaire",
    "demande.annulation": "demande annulée",
    "urgence.emission": "carte d'urgence émise",
    "urgence.restitution": "carte d'urgence restituée",
    "titulaire.creation": "titulaire créé",
    "titulaire.modification": "titulaire modifié",
    "operateur.creation": "opérateur créé",
    "organisation.creation": "organisation créée",
}
ENTITY_LABELS = {
    "credential": "support",
    "holder": "titulaire",
    "operator": "opérateur",
    "organisation": "organisation",
    "import": "import",
}
# Fields of the journal's snapshots, as people name them (a mute's flag and reason are
# said by the action and the entry's reason).
FIELD_LABELS = {
    "kind": "type",
    "model": "modèle",
    "serial": "n° de série",
    "holder_id": "titulaire",
    "state": "état",
    "emergency": "urgence",
    "replaces_id": "remplace",
    "requested_on": "demandée le",
    "received_on": "reçue le",
    "handed_over_on": "remise le",
    "expires_on": "expiration",
    "last_name": "nom",
    "first_name": "prénom",
    "email": "adresse",
    "role": "rôle",
    "organisation_id": "organisation",
    "active": "actif",
}


def paris_time(instant: dt.datetime) -> str:
    """A stored instant as Paris time, ``JJ/MM/AAAA HH:MM:SS`` (SQLite's naive UTC too)."""
    return f"{from_db(instant).astimezone(PARIS):%d/%m/%Y %H:%M:%S}"


def action_label(action: str) -> str:
    """The French name of a journal action (the code itself for an unknown one)."""
    return ACTION_LABELS.get(action, action)


def subject(entry: JournalEntry) -> str:
    """What the entry is about: ``support n°12``, ``titulaire n°3``."""
    label = ENTITY_LABELS.get(entry.entity_type, entry.entity_type)
    return f"{label} n°{entry.entity_id}" if entry.entity_id is not None else label


def _state(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _value(name: str, value: Any) -> str:
    if value is None:
        return "—"
    if name == "state":
        return messages.state_label(str(value))
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return f"{dt.date.fromisoformat(value):%d/%m/%Y}"
        except ValueError:
            return value
    return str(value)


def changes(entry: JournalEntry) -> str:
    """What the entry changed, in French: ``état : active → suspendue ; n° de série :
    — → AB12``; empty when it records no before/after difference."""
    before, after = _state(entry.before), _state(entry.after)
    if not before:
        return ""
    parts = []
    # The state first: it is what people look for in a history.
    names = sorted(set(before) | set(after), key=lambda name: (name != "state", name))
    for name in names:
        if name not in FIELD_LABELS or before.get(name) == after.get(name):
            continue
        old, new = _value(name, before.get(name)), _value(name, after.get(name))
        parts.append(f"{FIELD_LABELS[name]} : {old} → {new}")
    return " ; ".join(parts)
