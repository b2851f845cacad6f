"""What the status page shows, built once from a ``KeyReport``: the JSON of ``/statut.json``
is this view, and the HTML of ``/`` renders the same view with its labels."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cartes import messages
from cartes.selfcheck import KeyReport
from cartes.settings import Settings
from inventaire.clock import PARIS
from inventaire.plan import Replacement
from inventaire.vocabulary import KIND_TOKENS, STATE_TOKENS

_KIND_TOKEN = {kind: token for token, kind in KIND_TOKENS.items()}
_STATE_TOKEN = {state: token for token, state in STATE_TOKENS.items()}
_RENEWAL = {
    Replacement.NONE: "aucun",
    Replacement.REQUESTED: "demande",
    Replacement.RECEIVED: "recu",
}

STATUS_LABELS = {"valide": "valide", "invalide": "invalide", "indetermine": "indéterminé"}
REVOCATION_LABELS = {
    "revoque": "révoqué",
    "non_revoque": "non révoqué",
    "inconnue": "inconnue (liste de révocation indisponible ou certificat invalide)",
}


def _day(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def report_view(report: KeyReport, settings: Settings) -> dict[str, Any]:
    """The page's content as JSON values (French keys, stable codes, ISO dates)."""
    status, advice, known = report.certificate, report.advice, report.known
    info = status.info
    sar: dict[str, Any] | None = None
    if known is not None:
        sar = {
            "etat": _STATE_TOKEN[known.state],
            "urgence": known.emergency,
            "renouvellement": "remplacee" if known.renewed else _RENEWAL[known.replacement],
            "demande_le": _day(known.requested_on),
            "recue_le": _day(known.received_on),
            "rapproche_par": known.matched_by,
        }
    step = advice.step.value
    sentence, how = messages.step_text(advice, known, settings.alerts.instructions.of(report.kind))
    return {
        "titulaire": report.holder_name,
        "type": _KIND_TOKEN[report.kind],
        "role": info.role,
        "certificat": messages.certificate_object(info),
        "valable_jusqu_au": info.not_after.astimezone(PARIS).date().isoformat(),
        "jours_restants": status.outlook.days_left,
        "statut": status.status,
        "revocation": status.revocation,
        "motifs": [
            {"code": reason.code, "message": messages.pki_text(reason.code, reason.params)}
            for reason in status.reasons
        ],
        # The key's expiry as planned: the earliest of its certificates, when the SAR knows it.
        "expiration_cle": advice.expires_on.isoformat(),
        "date_limite_commande": advice.order_by.isoformat(),
        "rupture_previsible_jours": advice.gap_days,
        "arrivee_previsible": advice.arrival.isoformat(),
        "connue_du_sar": known is not None,
        "sar": sar,
        "prochaine_etape": {
            "code": step,
            "avant_le": _day(advice.by),
            "message": sentence,
            "consigne": how,
        },
        "etabli_le": report.at.astimezone(dt.UTC).isoformat(),
    }
