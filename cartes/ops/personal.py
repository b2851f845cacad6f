"""One holder's personal data, read and handed over: ``cartes titulaire voir`` and
``cartes titulaire exporter`` today, the terminal UI tomorrow (DESIGN §2: one set of
services, several faces).

Every reading of a holder's full record is written to the register (``record_access``) in
a transaction of its own, *after* the data was read and *before* any of it leaves this
module: a reading that fails (unknown holder, operator refused) records nothing, and
nothing is shown, printed or written to its final file unless the register holds the
reading. A register that cannot be written refuses the reading (``AccessNotRecorded``):
the register is the only trace of who read whose data, and a trace that can be skipped
when the database is busy or read-only is no trace at all. Refusing costs a retry;
skipping would cost the person the answer to « who looked at my record? ».

The rendering is face-independent: a JSON document with stable French keys and ISO dates,
an HTML page (``templates/titulaire_export.html``) to print and hand over, and the French
sections both that page and the text summary of ``cartes titulaire voir`` are made of.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from cartes import journal_text, messages
from cartes.workspace import Workspace
from inventaire import db, operators, personal
from inventaire.clock import PARIS, from_db
from inventaire.enums import OperatorRole
from inventaire.errors import InventaireError, PermissionDenied, UnknownOperator
from inventaire.models import JournalEntry
from inventaire.personal import (
    AccessData,
    AccessNotRecorded,
    AccessPurpose,
    AlertData,
    CredentialData,
    HolderData,
)
from inventaire.vocabulary import (
    ALERT_LEVEL_TOKENS,
    DIGEST_STATE_TOKENS,
    KIND_TOKENS,
    MODEL_TOKENS,
    ROLE_TOKENS,
    STATE_TOKENS,
    token_of,
)

__all__ = ["AccessPurpose", "Exported", "Reading", "Section"]

DOCUMENT = "cartes.titulaire"
VERSION = 1
TEMPLATE = "titulaire_export.html"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

PURPOSE_LABELS = {
    AccessPurpose.VIEW: "consultation de la fiche complète (cartes titulaire voir)",
    AccessPurpose.RECORD: "fiche d'un de ses supports (interface du SAR)",
    AccessPurpose.EXPORT: "export de ses données",
}
COPY_TO_SERVICE = "copie au service"
OTHER_HOLDER = "support d'un autre titulaire (copie reçue pour le service)"


@dataclass(frozen=True)
class Reading:
    """A holder's data as read at ``at``; its ``accesses`` end with this very reading."""

    data: HolderData
    at: dt.datetime


@dataclass(frozen=True)
class Exported:
    """An export written to its file."""

    holder_id: int
    path: Path
    size: int  # bytes


# -- Reading and recording ---------------------------------------------------------------------


def read(workspace: Workspace, *, holder: str, purpose: AccessPurpose) -> Reading:
    """Everything held about ``holder`` (an e-mail address or a holder number), read by
    the workspace's operator (READER) and recorded in the register before it is returned."""
    data = _gather(workspace, holder)
    at = workspace.now()
    access = record(workspace, holder_id=data.identity.id, purpose=purpose, now=at)
    return Reading(_with(data, access), at)


def export_file(workspace: Workspace, *, holder: str, form: str, path: Path) -> Exported:
    """Write everything held about ``holder`` to ``path`` as ``form`` (json or html),
    readable by its owner only (0600), and record the export.

    The file is written to a temporary file beside ``path`` first, then renamed: never
    half-written. Its order is the point: the temporary file is created before anything is
    read (a path that cannot be written is an ``OSError`` with nothing read nor recorded),
    filled and synced before the export is recorded (a file that cannot be written records
    nothing), and renamed only once recorded (an export the register misses never reaches
    its place). A rename failing after the record would leave a recorded export without a
    file: an over-report, which is the harmless way to be wrong; checking that ``path`` is
    no folder beforehand leaves little else to fail there.
    """
    render = RENDERERS[form]
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            os.fchmod(out.fileno(), 0o600)  # what mkstemp gives, said: the file is personal
            data = _gather(workspace, holder)
            at = workspace.now()
            holder_id = data.identity.id
            # The export lists itself among the readings, as the register will.
            pending = AccessData(workspace.operator_login, AccessPurpose.EXPORT, at)
            out.write(render(Reading(_with(data, pending), at)))
            out.flush()
            os.fsync(out.fileno())
        record(workspace, holder_id=holder_id, purpose=AccessPurpose.EXPORT, now=at)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    _sync_folder(path.parent)
    return Exported(holder_id=holder_id, path=path, size=path.stat().st_size)


def record(
    workspace: Workspace, *, holder_id: int, purpose: AccessPurpose, now: dt.datetime
) -> AccessData:
    """Write the reading of ``holder_id``'s record by the workspace's operator to the
    register, in a transaction of its own; ``AccessNotRecorded`` if it cannot be written
    (the caller then shows nothing). A reading the register already covers (a record
    screen refreshed: ``inventaire.personal.COALESCED``) writes nothing."""
    try:
        with db.write_session(workspace.engine) as session:
            operator = operators.require(session, workspace.operator_login, OperatorRole.READER)
            return personal.record_access(
                session, holder_id=holder_id, operator=operator, purpose=purpose, now=now
            )
    except (UnknownOperator, PermissionDenied):
        raise  # its own message says it better
    except InventaireError as error:
        raise AccessNotRecorded(id=holder_id, detail=messages.error_text(error)) from error
    except SQLAlchemyError as error:
        raise AccessNotRecorded(id=holder_id, detail=_refusal(error)) from error


def _gather(workspace: Workspace, holder: str) -> HolderData:
    with db.read_session(workspace.engine) as session:
        operators.require(session, workspace.operator_login, OperatorRole.READER)
        holder_id = personal.find_holder(session, holder)
        return personal.holder_data(session, holder_id=holder_id)


def _with(data: HolderData, access: AccessData) -> HolderData:
    return dataclasses.replace(data, accesses=(*data.accesses, access))


def _refusal(error: SQLAlchemyError) -> str:
    text = str(getattr(error, "orig", error)).lower()
    if any(word in text for word in ("readonly", "read-only", "permission denied", "privilege")):
        return (
            "la base de données refuse l'écriture (base en lecture seule, ou droits "
            "insuffisants pour ce compte)."
        )
    return f"erreur de la base de données ({type(error).__name__})."


def _sync_folder(folder: Path) -> None:
    # The rename is durable once the folder is synced; some file systems cannot.
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


# -- JSON ----------------------------------------------------------------------------------------


def _day(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _instant(value: dt.datetime | None) -> str | None:
    # Paris time with its offset: as exact as UTC, and the hour the person lived.
    return value.astimezone(PARIS).isoformat(timespec="seconds") if value is not None else None


def document(reading: Reading) -> dict[str, Any]:
    """The JSON document of a reading: stable French keys, tokens as ``cartes liste``
    writes them, dates ``AAAA-MM-JJ``, instants ISO 8601 in Paris time with the offset."""
    data = reading.data
    who = data.identity
    return {
        "document": DOCUMENT,
        "version": VERSION,
        "etabli_le": _instant(reading.at),
        "titulaire": {
            "id": who.id,
            "nom": who.last_name,
            "prenom": who.first_name,
            "email": who.email,
            "role": token_of(who.role, ROLE_TOKENS),
            "organisation": who.organisation,
            "organisation_nom_complet": who.organisation_full_name,
            "actif": who.active,
            "cree_le": _instant(who.created_at),
            "modifie_le": _instant(who.updated_at),
            "anonymise_le": _instant(who.anonymised_at),
        },
        "supports": [_credential_object(c) for c in data.credentials],
        "certificats": [
            {
                "id": c.id,
                "support": c.credential_id,
                "role": messages.CERTIFICATE_ROLE_LABELS[c.role],
                "sujet": c.subject,
                "emetteur": c.issuer,
                "numero_serie": c.serial_number,
                "valide_du": _instant(c.not_before),
                "valide_au": _instant(c.not_after),
                "empreinte_sha256": c.fingerprint_sha256,
                "dernier_statut": c.last_status,
                "statut_obtenu_le": _instant(c.last_validated_at),
            }
            for c in data.certificates
        ],
        "demandes": [
            {
                **_credential_object(c),
                "historique": [entry.seq for entry in data.history(c.id)],
            }
            for c in data.requests
        ],
        "cartes_urgence": [
            {
                "id": e.id,
                "support": e.credential_id,
                "emise_par": e.issued_by,
                "motif": e.reason,
                "demande_couverte": e.request_id,
                "emise_le": _day(e.issued_on),
                "retour_prevu_le": _day(e.return_due_on),
                "restituee_le": _day(e.returned_on),
                "enregistree_le": _instant(e.created_at),
            }
            for e in data.emergencies
        ],
        "alertes": [_alert_object(a) for a in data.alerts],
        "alertes_coupees": [
            {
                "support": m.credential_id,
                "motif": m.reason,
                "operateur": m.operator,
                "coupees_le": _instant(m.muted_at),
            }
            for m in data.mutes
        ],
        "journal": [
            {
                "n": e.seq,
                "date": _instant(from_db(e.recorded_at)),
                "operateur": e.operator,
                "action": e.action,
                "action_libelle": journal_text.action_label(e.action),
                "objet": journal_text.ENTITY_LABELS.get(e.entity_type, e.entity_type),
                "id": e.entity_id,
                "motif": e.reason,
                "avant": _decoded(e.before),
                "apres": _decoded(e.after),
            }
            for e in data.journal
        ],
        "consultations": [
            {
                "date": _instant(a.accessed_at),
                "operateur": a.operator,
                "motif": a.purpose.value,
                "motif_libelle": PURPOSE_LABELS[a.purpose],
            }
            for a in data.accesses
        ],
    }


def _decoded(stored: str | None) -> Any:
    # The journal's before and after are JSON; shown decoded, or as stored if they are not.
    if stored is None:
        return None
    try:
        return json.loads(stored)
    except ValueError:
        return stored


def _credential_object(c: CredentialData) -> dict[str, Any]:
    return {
        "id": c.id,
        "type": token_of(c.kind, KIND_TOKENS),
        "modele": token_of(c.model, MODEL_TOKENS) if c.model else None,
        "numero_serie": c.serial,
        "etat": token_of(c.state, STATE_TOKENS),
        "urgence": c.emergency,
        "remplace": c.replaces_id,
        "demande_le": _day(c.requested_on),
        "recu_le": _day(c.received_on),
        "remis_le": _day(c.handed_over_on),
        "expire_le": _day(c.expires_on),
        "cree_le": _instant(c.created_at),
        "modifie_le": _instant(c.updated_at),
    }


def _alert_object(a: AlertData) -> dict[str, Any]:
    return {
        "id": a.id,
        "support": a.credential_id,
        "autre_titulaire": a.credential_id is None,
        "niveau": token_of(a.level, ALERT_LEVEL_TOKENS),
        "destinataire": a.recipient,
        "copie_au_service": a.recipient is None,
        "occurrence": a.occurrence,
        "prevue_le": _day(a.due_on),
        "creee_le": _instant(a.created_at),
        "envoi": token_of(a.digest_state, DIGEST_STATE_TOKENS) if a.digest_state else None,
        "envoyee_le": _instant(a.sent_at),
    }


def json_text(reading: Reading) -> str:
    """``document`` as indented UTF-8 JSON text."""
    return json.dumps(document(reading), ensure_ascii=False, indent=2) + "\n"


# -- French sections (HTML and text) -------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One part of the French rendering: a heading and a table (cells may hold several
    lines, separated by ``\\n``)."""

    key: str  # the HTML anchor
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: str  # said instead of an empty table
    note: str = ""  # how to read the section, when it needs saying
    # The columns the text summary shows (None: all); the export shows them all.
    summary: tuple[int, ...] | None = None
    code: tuple[int, ...] = ()  # columns of codes (fingerprints, stored JSON): monospace


def _date(value: dt.date | None) -> str:
    return f"{value:%d/%m/%Y}" if value is not None else "—"


def _time(value: dt.datetime | None) -> str:
    return journal_text.paris_time(value) if value is not None else "—"


def _yes(value: bool) -> str:
    return "oui" if value else "non"


def _kind(c: CredentialData) -> str:
    model = f" {messages.MODEL_LABELS[c.model]}" if c.model else ""
    return f"{messages.KIND_LABELS[c.kind]}{model}"


def identity_fields(reading: Reading) -> tuple[tuple[str, str], ...]:
    """The holder's identity as (French label, value) pairs."""
    who = reading.data.identity
    fields = [
        ("Numéro de titulaire", str(who.id)),
        ("Nom", who.last_name),
        ("Prénom", who.first_name),
        ("Adresse électronique", who.email),
        ("Rôle", messages.HOLDER_ROLE_LABELS[who.role]),
        ("Organisation", f"{who.organisation} ({who.organisation_full_name})"),
        ("Actif", _yes(who.active)),
        ("Enregistré le", _time(who.created_at)),
        ("Modifié le", _time(who.updated_at)),
    ]
    if who.anonymised_at is not None:
        fields.append(("Anonymisé le", _time(who.anonymised_at)))
    return tuple(fields)


def title(reading: Reading) -> str:
    """The French title of the document."""
    who = reading.data.identity
    return f"Données personnelles de {who.first_name} {who.last_name} (titulaire n°{who.id})"


def sections(reading: Reading) -> tuple[Section, ...]:
    """The French sections of a reading, in the order the export shows them."""
    data = reading.data
    return (
        Section(
            "supports",
            "Supports (cartes et clés)",
            (
                "N°",
                "Type",
                "N° de série",
                "État",
                "Urgence",
                "Remplace",
                "Demandé le",
                "Reçu le",
                "Remis le",
                "Expire le",
            ),
            tuple(
                (
                    str(c.id),
                    _kind(c),
                    c.serial or "—",
                    messages.state_label(c.state),
                    _yes(c.emergency),
                    f"n°{c.replaces_id}" if c.replaces_id else "—",
                    _date(c.requested_on),
                    _date(c.received_on),
                    _date(c.handed_over_on),
                    _date(c.expires_on),
                )
                for c in data.credentials
            ),
            "Aucun support enregistré.",
        ),
        Section(
            "certificats",
            "Certificats",
            (
                "Support",
                "Rôle",
                "Sujet",
                "Émetteur",
                "N° de série",
                "Valide du",
                "Valide au",
                "Empreinte SHA-256",
                "Dernière validation",
            ),
            tuple(
                (
                    f"n°{c.credential_id}",
                    messages.CERTIFICATE_ROLE_LABELS[c.role],
                    c.subject or "—",
                    c.issuer,
                    c.serial_number,
                    _time(c.not_before),
                    _time(c.not_after),
                    c.fingerprint_sha256,
                    (
                        f"{messages.CERTIFICATE_STATUS_LABELS.get(c.last_status, c.last_status)}"
                        f" le {_time(c.last_validated_at)}"
                        if c.last_status
                        else "jamais validé"
                    ),
                )
                for c in data.certificates
            ),
            "Aucun certificat lu.",
            summary=(0, 1, 2, 6, 8),
            code=(2, 3, 4, 7),
        ),
        Section(
            "demandes",
            "Demandes",
            ("Support", "Type", "État", "Demandé le", "Reçu le", "Remis le", "Historique"),
            tuple(
                (
                    f"n°{c.id}",
                    _kind(c),
                    messages.state_label(c.state),
                    _date(c.requested_on),
                    _date(c.received_on),
                    _date(c.handed_over_on),
                    "\n".join(
                        f"{_time(e.recorded_at)} : {journal_text.action_label(e.action)}"
                        f" ({e.operator})"
                        for e in data.history(c.id)
                    )
                    or "—",
                )
                for c in data.requests
            ),
            "Aucune demande.",
        ),
        Section(
            "urgences",
            "Cartes remises en urgence",
            (
                "N°",
                "Support",
                "Remise par",
                "Motif",
                "Demande couverte",
                "Remise le",
                "Retour prévu le",
                "Restituée le",
            ),
            tuple(
                (
                    str(e.id),
                    f"n°{e.credential_id}",
                    e.issued_by,
                    e.reason,
                    f"n°{e.request_id}" if e.request_id else "aucune",
                    _date(e.issued_on),
                    _date(e.return_due_on),
                    _date(e.returned_on),
                )
                for e in data.emergencies
            ),
            "Aucune carte remise en urgence.",
        ),
        Section(
            "alertes",
            "Alertes de renouvellement",
            ("Prévue le", "Support", "Niveau", "Destinataire", "Envoi", "Envoyée le"),
            tuple(
                (
                    _date(a.due_on),
                    f"n°{a.credential_id}" if a.credential_id is not None else OTHER_HOLDER,
                    messages.LEVEL_LABELS[a.level],
                    a.recipient or COPY_TO_SERVICE,
                    messages.DIGEST_STATE_LABELS[a.digest_state]
                    if a.digest_state
                    else "pas encore préparée",
                    _time(a.sent_at),
                )
                for a in data.alerts
            ),
            "Aucune alerte.",
            note=(
                "Les alertes sur vos supports envoyées au service informatique figurent ici "
                f"comme « {COPY_TO_SERVICE} » : elles vous concernent, mais l'adresse qui "
                "les a reçues n'est pas la vôtre."
            ),
        ),
        Section(
            "alertes-coupees",
            "Alertes coupées",
            ("Support", "Motif", "Par", "Le"),
            tuple(
                (f"n°{m.credential_id}", m.reason, m.operator, _time(m.muted_at))
                for m in data.mutes
            ),
            "Aucune alerte coupée.",
        ),
        Section(
            "journal",
            "Journal des modifications",
            (
                "N°",
                "Date",
                "Opérateur",
                "Action",
                "Objet",
                "Motif",
                "Modifications",
                "Avant",
                "Après",
            ),
            tuple(_journal_row(e) for e in data.journal),
            "Aucune entrée.",
            note=(
                "Le journal nomme les titulaires et les supports par leur numéro ; « Avant » "
                "et « Après » sont les valeurs telles qu'enregistrées."
            ),
            summary=(0, 1, 2, 3, 4, 5, 6),
            code=(7, 8),
        ),
        Section(
            "consultations",
            "Consultations de la fiche",
            ("Date", "Opérateur", "Motif"),
            tuple(
                (_time(a.accessed_at), a.operator, PURPOSE_LABELS[a.purpose]) for a in data.accesses
            ),
            "Aucune consultation.",
        ),
    )


def _journal_row(entry: JournalEntry) -> tuple[str, ...]:
    return (
        str(entry.seq),
        _time(entry.recorded_at),
        entry.operator,
        journal_text.action_label(entry.action),
        journal_text.subject(entry),
        entry.reason or "",
        journal_text.changes(entry),
        entry.before or "",
        entry.after or "",
    )


def html_text(reading: Reading) -> str:
    """The export as an HTML page in French, to print and hand over (no script)."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    who = reading.data.identity
    return environment.get_template(TEMPLATE).render(
        title=title(reading),
        at=_time(reading.at),
        identity=identity_fields(reading),
        anonymised=_time(who.anonymised_at) if who.anonymised_at else None,
        sections=sections(reading),
    )


RENDERERS = {"json": json_text, "html": html_text}


def render(reading: Reading, form: str) -> str:
    """The reading as ``form``: json or html."""
    return RENDERERS[form](reading)
