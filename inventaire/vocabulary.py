"""The French tokens of files and command lines, and the domain values they stand for.

These tokens are a documented exchange format (import columns, ``--type``, ``--etat``,
JSON output), so they belong to the domain; display sentences live in ``cartes``.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from enum import StrEnum
from typing import TypeVar

from inventaire.enums import (
    AlertLevel,
    CardModel,
    CredentialKind,
    CredentialState,
    DigestState,
    HolderRole,
    OperatorRole,
    OrganisationType,
)
from inventaire.errors import InvalidValue

# The columns of the import file (and of the CSV listing), in their documented order.
IMPORT_COLUMNS: tuple[str, ...] = (
    "nom",
    "prenom",
    "email",
    "role",
    "organisation",
    "type",
    "modele",
    "numero_serie",
    "etat",
    "date_remise",
    "date_expiration",
)

KIND_TOKENS: dict[str, CredentialKind] = {
    "carte_agent": CredentialKind.AGENT_CARD,
    "carte_expert": CredentialKind.EXPERT_CARD,
    "cle_rpva": CredentialKind.RPVA_KEY,
    "carte_temporaire": CredentialKind.TEMPORARY_CARD,
}
MODEL_TOKENS: dict[str, CardModel] = {"ancien": CardModel.OLD, "nouveau": CardModel.NEW}
STATE_TOKENS: dict[str, CredentialState] = {
    "demandee": CredentialState.REQUESTED,
    "recue": CredentialState.RECEIVED,
    "active": CredentialState.ACTIVE,
    "suspendue": CredentialState.SUSPENDED,
    "perdue": CredentialState.LOST,
    "defectueuse": CredentialState.DAMAGED,
    "restituee": CredentialState.RETURNED,
    "revoquee": CredentialState.REVOKED,
    "annulee": CredentialState.CANCELLED,
}
ROLE_TOKENS: dict[str, HolderRole] = {
    "magistrat": HolderRole.MAGISTRATE,
    "greffier": HolderRole.CLERK,
    "directeur_de_greffe": HolderRole.CLERK_DIRECTOR,
    "agent": HolderRole.AGENT,
    "expert": HolderRole.EXPERT,
    "avocat": HolderRole.LAWYER,
    "partie": HolderRole.PARTY,
    "intervenant": HolderRole.CONTRIBUTOR,
}
OPERATOR_ROLE_TOKENS: dict[str, OperatorRole] = {
    "lecteur": OperatorRole.READER,
    "gestionnaire": OperatorRole.MANAGER,
    "habilite": OperatorRole.ISSUER,
    "admin": OperatorRole.ADMIN,
}
ORGANISATION_TYPE_TOKENS: dict[str, OrganisationType] = {
    "cour_appel": OrganisationType.COURT_OF_APPEAL,
    "tribunal_judiciaire": OrganisationType.JUDICIAL_COURT,
    "barreau": OrganisationType.BAR,
    "compagnie_experts": OrganisationType.EXPERTS,
    "service_informatique": OrganisationType.IT_SERVICE,
    "autre": OrganisationType.OTHER,
}

ALERT_LEVEL_TOKENS: dict[str, AlertLevel] = {
    "a_prevoir": AlertLevel.TO_PLAN,
    "a_commander": AlertLevel.ORDER_NOW,
    "rupture": AlertLevel.GAP,
    "expire": AlertLevel.EXPIRED,
    "a_recuperer": AlertLevel.TO_RETURN,
    "en_retard": AlertLevel.OVERDUE,
}
DIGEST_STATE_TOKENS: dict[str, DigestState] = {
    "en_attente": DigestState.PENDING,
    "envoi": DigestState.SENDING,
    "envoyee": DigestState.SENT,
    "echec": DigestState.FAILED,
}

E = TypeVar("E", bound=StrEnum)


_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss", "’": "'"})


def fold(text: str) -> str:
    """Lower-case ASCII without accents, blanks collapsed: for lenient matching and search."""
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
        text = decomposed.encode("ascii", "ignore").decode("ascii")
    return " ".join(text.lower().split())


def holder_search_text(last_name: str, first_name: str, email: str) -> str:
    """What the accent-insensitive search of holders looks into (``Holder.search_text``)."""
    return fold(f"{last_name} {first_name} {email}")


@functools.lru_cache(maxsize=4096)
def token_key(text: str) -> str:
    """``fold`` with blanks, hyphens and apostrophes as underscores: 'Directeur de greffe'
    and 'directeur_de_greffe' are the same token."""
    folded = fold(text)
    for sep in (" ", "-", "'"):
        folded = folded.replace(sep, "_")
    return folded


def parse_token(field: str, value: str, tokens: dict[str, E]) -> E:
    """The domain value of ``value`` in ``tokens``, or ``InvalidValue`` naming the allowed
    tokens. Also accepts the English name (``ACTIVE``)."""
    key = token_key(value)
    if key in tokens:
        return tokens[key]
    for member in tokens.values():
        if key == member.value.lower():
            return member
    raise InvalidValue("jeton_inconnu", champ=field, valeur=value, attendus=", ".join(tokens))


_REVERSED: dict[int, dict[StrEnum, str]] = {}


def token_of(value: StrEnum, tokens: dict[str, E]) -> str:
    """The French token of a domain value (inverse of ``parse_token``)."""
    # The token tables are module constants: their reverse is built once, by identity.
    reverse = _REVERSED.get(id(tokens))
    if reverse is None:
        reverse = _REVERSED[id(tokens)] = {member: token for token, member in tokens.items()}
    return reverse[value]


# A serial number of a card or key, as files and command lines may give it: letters,
# digits and a few separators, 64 characters at most.
SERIAL_PATTERN = re.compile(r"^[\w.\-/ ]{1,64}$")

_FR_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def parse_date(text: str) -> dt.date:
    """A date written ``JJ/MM/AAAA`` or ISO ``AAAA-MM-JJ``; ``ValueError`` otherwise."""
    text = text.strip()
    match = _FR_DATE.match(text)
    if match:
        day, month, year = (int(part) for part in match.groups())
        return dt.date(year, month, day)
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        return dt.date.fromisoformat(text)
    raise ValueError(text)
