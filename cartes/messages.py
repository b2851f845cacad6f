"""French sentences for the stable codes of ``inventaire`` errors and import reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from inventaire.enums import (
    AlertLevel,
    CredentialKind,
    CredentialState,
    DigestState,
    HolderRole,
    OperatorRole,
)
from inventaire.errors import InventaireError

if TYPE_CHECKING:  # messages is imported by every command: SQLAlchemy is not
    from inventaire.emergency import EmergencyLine

STATE_LABELS = {
    CredentialState.REQUESTED: "demandée",
    CredentialState.RECEIVED: "reçue",
    CredentialState.ACTIVE: "active",
    CredentialState.SUSPENDED: "suspendue",
    CredentialState.LOST: "perdue",
    CredentialState.DAMAGED: "défectueuse",
    CredentialState.RETURNED: "restituée",
    CredentialState.REVOKED: "révoquée",
    CredentialState.CANCELLED: "annulée",
}
KIND_LABELS = {
    CredentialKind.AGENT_CARD: "carte agent",
    CredentialKind.EXPERT_CARD: "carte expert",
    CredentialKind.RPVA_KEY: "clé RPVA",
    CredentialKind.TEMPORARY_CARD: "carte temporaire",
}
LEVEL_LABELS = {
    AlertLevel.TO_PLAN: "à prévoir",
    AlertLevel.ORDER_NOW: "à commander",
    AlertLevel.GAP: "rupture certaine",
    AlertLevel.EXPIRED: "expiré",
    AlertLevel.TO_RETURN: "carte d'urgence à récupérer",
    AlertLevel.OVERDUE: "carte d'urgence en retard",
}
DIGEST_STATE_LABELS = {
    DigestState.PENDING: "en attente",
    DigestState.SENDING: "en cours d'envoi",
    DigestState.SENT: "envoyée",
    DigestState.FAILED: "échec",
}
OPERATOR_ROLE_LABELS = {
    OperatorRole.READER: "lecteur",
    OperatorRole.MANAGER: "gestionnaire",
    OperatorRole.ISSUER: "habilité (remise des cartes)",
    OperatorRole.ADMIN: "administrateur",
}
HOLDER_ROLE_LABELS = {
    HolderRole.MAGISTRATE: "magistrat",
    HolderRole.CLERK: "greffier",
    HolderRole.CLERK_DIRECTOR: "directeur de greffe",
    HolderRole.AGENT: "agent",
    HolderRole.EXPERT: "expert",
    HolderRole.LAWYER: "avocat",
    HolderRole.PARTY: "partie",
    HolderRole.CONTRIBUTOR: "intervenant",
}

MESSAGES: dict[str, str] = {
    # Refusals and failures of the domain
    "introuvable": "Élément introuvable.",
    "support_introuvable": "Aucun support n°{id}.",
    "organisation_inconnue": "Organisation inconnue : « {nom} ». Voir « cartes organisation liste ».",
    "transition_refusee": (
        "Transition refusée pour le support n°{id} : « {depuis} » ne peut pas devenir "
        "« {vers} ». Depuis « {depuis} » : {permises}."
    ),
    "version_perimee": (
        "Le support{id_texte} a été modifié par ailleurs depuis sa lecture{versions} : "
        "rien n'a été changé. Relisez-le puis recommencez."
    ),
    "operateur_inconnu": (
        "Opérateur inconnu ou inactif : « {login} ». Un administrateur doit l'ajouter avec "
        "« cartes operateur ajouter {login} --role ROLE »."
    ),
    "droit_insuffisant": "L'opérateur « {login} » n'a pas le rôle requis : {role}.",
    "lecture_interrompue": "Lecture interrompue : sa réponse n'était plus attendue.",
    "base_verrouillee": (
        "Base de données verrouillée par une autre écriture en cours : réessayez dans un "
        "instant. Rien n'a été modifié."
    ),
    "base_inaccessible": "Base de données inaccessible : {detail}",
    "schema_absent": "La base de données n'est pas initialisée ou pas à jour : lancez « cartes init ».",
    "contrainte_violee": "Modification refusée par la base (doublon ou référence invalide) : rien n'a été modifié.",
    "jeton_inconnu": "Valeur « {valeur} » inconnue pour {champ} ; valeurs possibles : {attendus}.",
    "motif_obligatoire": "Le motif est obligatoire.",
    "identifiant_invalide": (
        "Identifiant d'opérateur invalide : « {login} » (lettres, chiffres, . _ @ -, "
        "64 caractères au plus)."
    ),
    "role_obligatoire": "Au moins un rôle est obligatoire.",
    "nom_obligatoire": "Le nom est obligatoire.",
    "titulaire_existe": "Un titulaire a déjà l'adresse « {email} ».",
    "titulaire_carte_inconnu": (
        "Titulaire inconnu de l'inventaire (ni l'adresse ni le nom du certificat) : "
        "importez-le d'abord, puis relancez le scan."
    ),
    "type_carte_inconnu": (
        "Type de support inconnu : la chaîne n'aboutit à aucune ancre configurée "
        "(trust.agent_card, trust.expert_card, trust.rpva_key)."
    ),
    "operateur_existe": "L'opérateur « {login} » existe déjà.",
    "organisation_existe": "Une organisation porte déjà le nom « {nom} ».",
    "import_rejete": "Import refusé : aucune ligne n'a été enregistrée.",
    "titulaire_inconnu": "Aucun titulaire n'a l'adresse « {email} » : enregistrez-le d'abord (import).",
    # Requests (cartes demande)
    "demande_introuvable": "Aucune demande n°{id}.",
    "demande_support_sans_demande": "Le support n°{id} (« {etat} ») n'a pas fait l'objet d'une demande : changez son état avec « cartes transition ».",
    "demande_remplace_autre_titulaire": "Le support n°{id} appartient à un autre titulaire : une demande ne remplace qu'un support de son propre titulaire.",
    "demande_remplace_autre_type": "Le support n°{id} n'est pas du type demandé : une demande remplace un support du même type.",
    "demande_remplace_hors_service": "Le support n°{id} est « {etat} » : seul un support en service (actif ou suspendu) peut être remplacé.",
    "demande_remplacement_en_cours": "Le support n°{id} a déjà un remplaçant en cours : la demande n°{demande} (« {etat} »).",
    "demande_support_en_service": "Le titulaire « {email} » a déjà un support de ce type en service (n°{id}) : une nouvelle demande doit le remplacer (--remplace {id}).",
    "demande_deja_en_cours": "Le titulaire « {email} » a déjà une demande en cours pour ce type de support : n°{demande} (« {etat} »).",
    "demande_reception_impossible": "La demande n°{id} est « {etat} » : seule une demande « demandée » peut être reçue.",
    "demande_remise_impossible": "La demande n°{id} est « {etat} » : seule une demande « reçue » au SAR peut être remise à son titulaire.",
    "demande_annulation_impossible": "La demande n°{id} est « {etat} » : seule une demande « demandée » ou « reçue » peut être annulée.",
    "demande_remise_second_support": "Remise refusée : le titulaire a déjà un autre support de ce type en service (n°{autre}), que la demande n°{id} ne remplace pas ; faites-le restituer d'abord.",
    "demande_numero_serie_existe": "Le numéro de série « {numero_serie} » est déjà celui du support n°{id}, du même type.",
    "demande_date_future": "Date refusée : le {date} est postérieur à aujourd'hui.",
    "demande_date_avant_demande": "Date de réception refusée : le {date} précède la demande, du {limite}.",
    "demande_date_avant_reception": "Date de remise refusée : le {date} précède la réception au SAR, du {limite}.",
    # Renewal alerts
    "alertes_non_coupees": "Les alertes du support n°{id} ne sont pas coupées.",
    "envoi_en_cours": (
        "Envoi impossible pour l'instant : {proprietaire} envoie déjà les alertes (jusqu'au "
        "{jusqua} au moins). Rien n'a été envoyé ; réessayez plus tard."
    ),
    "dossier_inaccessible": "Impossible d'écrire dans le dossier {dossier} : {detail}.",
    # Emergency cards (cartes urgence)
    "urgence_titulaire_inactif": "Le titulaire « {email} » n'est plus actif : pas de carte d'urgence pour lui.",
    "urgence_demande_obligatoire": "Indiquez la demande de carte agent nouveau modèle en attente que la carte d'urgence couvre (--demande ID), ou --sans-demande avec le motif.",
    "urgence_demande_ou_sans_demande": "Indiquez soit la demande couverte (--demande ID), soit --sans-demande, pas les deux.",
    "urgence_numero_serie_obligatoire": "Le numéro de série de la carte d'urgence est obligatoire.",
    "urgence_numero_serie_invalide": "Numéro de série invalide : « {valeur} » (lettres, chiffres, . - / et espaces, 64 caractères au plus).",
    "urgence_numero_serie_utilise": "Le numéro de série « {numero_serie} » est déjà celui d'une carte agent (support n°{id}).",
    "urgence_retour_prevu_passe": "Date de retour prévue refusée : le {date} est déjà passé.",
    "urgence_en_cours": "Le titulaire a déjà une carte d'urgence en circulation (émission n°{id}) : enregistrez d'abord sa restitution (« cartes urgence restituer {id} »).",
    "urgence_demande_autre_titulaire": "La demande n°{id} est celle d'un autre titulaire.",
    "urgence_demande_pas_nouveau_modele": "La demande n°{id} n'est pas une carte agent nouveau modèle : une carte d'urgence ne couvre que l'attente d'une carte agent nouveau modèle.",
    "urgence_demande_pas_en_attente": "La demande n°{id} est « {etat} » : seule une demande « demandée » ou « reçue » peut être couverte par une carte d'urgence.",
    "urgence_introuvable": "Aucune émission d'urgence n°{id} (voir « cartes urgence liste »).",
    "urgence_deja_restituee": "La carte d'urgence de l'émission n°{id} a déjà été restituée, le {date}.",
    "urgence_restitution_future": "Date de restitution refusée : le {date} est postérieur à aujourd'hui.",
    "urgence_restitution_avant_emission": "Date de restitution refusée : le {date} précède l'émission, du {emission}.",
    # Statistics (cartes stats)
    "sortie_obligatoire": "Le format {format} s'écrit dans un fichier : précisez « --sortie FICHIER ».",
    "sortie_impossible": "Impossible d'écrire {fichier} : {detail}. Rien n'a été écrit.",
    # Files that cannot be read at all
    "fichier_absent": "Fichier introuvable : {fichier}",
    "fichier_binaire": "{fichier} n'est pas un fichier CSV (contenu binaire) ; formats acceptés : CSV, XLSX.",
    "encodage_inconnu": "{fichier} : encodage non reconnu (UTF-8 ou Windows-1252 attendu).",
    "lecture_impossible": "Lecture impossible de {fichier} : {detail}",
    "fichier_vide": "{fichier} est vide : une ligne d'en-tête est attendue.",
    "csv_invalide": "{fichier}, ligne {ligne} : CSV mal formé ({detail}).",
    "xlsx_illisible": "{fichier} : classeur XLSX illisible ou endommagé.",
    "feuille_absente": "{fichier} : pas de feuille « {feuille} » (feuilles : {feuilles}).",
    "colonne_en_double": "La colonne « {colonne} » apparaît deux fois dans l'en-tête.",
    "colonnes_manquantes": "Colonnes obligatoires absentes de l'en-tête : {colonnes}.",
    # Bad rows
    "nombre_de_colonnes": "nombre de cellules incorrect ({compte} attendues).",
    "champ_obligatoire": "le champ « {champ} » est obligatoire.",
    "valeur_inconnue": "valeur « {valeur} » inconnue pour « {champ} » ; valeurs possibles : {attendus}.",
    "date_invalide": "date « {valeur} » invalide dans « {champ} » (JJ/MM/AAAA ou AAAA-MM-JJ).",
    "trop_long": "« {champ} » dépasse {maximum} caractères.",
    "email_invalide": "adresse électronique invalide : « {valeur} ».",
    "modele_obligatoire": "le modèle (ancien ou nouveau) est obligatoire pour une carte agent.",
    "modele_reserve_carte_agent": "le modèle ne s'indique que pour une carte agent.",
    "numero_serie_invalide": "numéro de série invalide : « {valeur} ».",
    "expiration_obligatoire": "la date d'expiration est obligatoire pour un support {etat}.",
    "dates_incoherentes": "la date de remise est postérieure à la date d'expiration.",
    "doublon": "même support que la ligne {ligne}.",
    "titulaire_incoherent": "même adresse électronique que la ligne {ligne}, mais titulaire décrit autrement.",
    "support_autre_titulaire": "le support {numero_serie} appartient déjà à un autre titulaire.",
    "transition_refusee_ligne": "le support passerait de « {depuis} » à « {vers} », ce que le cycle de vie interdit.",
    "droit_insuffisant_ligne": "ce changement d'état demande le rôle {role}.",
    # Registering a card read at the desk: a handover, or a past one recorded
    "remise_non_habilitee": (
        "L'opérateur « {login} » n'est pas habilité à remettre une carte (rôle {role}) : "
        "rien n'a été enregistré. Enregistrez la carte « reçue » pour qu'une personne "
        "habilitée la remette, ou, si son titulaire l'utilise déjà, avec --deja-remise."
    ),
    "deja_remise_etat": (
        "Une carte déjà remise à son titulaire s'enregistre « active », pas « {etat} »."
    ),
    "date_remise_future": "La date de remise {date} est dans le futur : une remise déjà faite est passée.",
    "remise_le_sans_deja_remise": "La date de remise ne s'indique que pour une carte déjà remise (--deja-remise).",
    "etat_enregistrement_refuse": (
        "Une carte lue pour la première fois entre dans l'inventaire « reçue » : elle ne peut "
        "pas y être enregistrée « {etat} » (voir le cycle de vie)."
    ),
    # Journal verification
    "entree_manquante": "entrée n°{seq} absente : une entrée a été supprimée.",
    "chainage_rompu": "entrée n°{seq} : chaînage rompu (entrée supprimée, déplacée ou insérée).",
    "empreinte_incorrecte": "entrée n°{seq} : contenu modifié (l'empreinte ne correspond plus).",
    "fin_tronquee": "les dernières entrées ont disparu à partir du n°{seq} (journal tronqué).",
    "ancre_absente": "l'entrée n°{seq} notée comme tête n'existe plus : le journal a été tronqué ou réécrit.",
    "ancre_modifiee": "l'entrée n°{seq} n'a plus l'empreinte notée ({empreinte}) : elle, ou une entrée antérieure, a été réécrite.",
    "tete_invalide": "Tête invalide : « {valeur} ». Attendu SEQ:EMPREINTE : le numéro d'une entrée, deux-points, puis son empreinte SHA-256 (64 caractères hexadécimaux), telle que « cartes service » la note dans ses journaux (événement journal.tete).",
}

ROW_CODE_ALIASES = {
    "transition_refusee": "transition_refusee_ligne",
    "droit_insuffisant": "droit_insuffisant_ligne",
}


def state_label(value: str | CredentialState) -> str:
    try:
        return STATE_LABELS[CredentialState(value)]
    except ValueError:
        return str(value)


def role_label(value: str | OperatorRole) -> str:
    try:
        return OPERATOR_ROLE_LABELS[OperatorRole(value)]
    except ValueError:
        return str(value)


def _prepare(code: str, params: Mapping[str, Any]) -> dict[str, Any]:
    from inventaire.lifecycle import TRANSITIONS

    prepared = dict(params)
    for key in ("depuis", "vers", "etat"):
        if prepared.get(key):
            prepared[key] = state_label(prepared[key])
    if "role" in prepared:
        prepared["role"] = role_label(prepared["role"])
    if code == "transition_refusee" and "depuis" in params:
        targets = TRANSITIONS.get(CredentialState(params["depuis"]), frozenset())
        prepared["permises"] = (
            ", ".join(sorted(state_label(t) for t in targets)) or "aucune (état final)"
        )
    if code == "version_perimee":
        prepared["id_texte"] = f" n°{params['id']}" if "id" in params else ""
        prepared["versions"] = (
            f" (version attendue {params['attendue']}, actuelle {params['actuelle']})"
            if "attendue" in params
            else ""
        )
    return prepared


def text(code: str, params: Mapping[str, Any] | None = None) -> str:
    """The French sentence for ``code``; unknown codes still give something readable."""
    template = MESSAGES.get(code)
    if template is None:
        return f"Erreur ({code})."
    try:
        return template.format_map(_prepare(code, params or {}))
    except (KeyError, ValueError):
        return template


def error_text(error: InventaireError) -> str:
    """The French sentence for a domain error."""
    return text(error.code, error.params)


def row_error_text(code: str, params: Mapping[str, Any]) -> str:
    """The French reason of a bad import row."""
    return text(ROW_CODE_ALIASES.get(code, code), params)


REVOCATION_REASONS = {
    "unspecified": "non précisé",
    "key_compromise": "compromission de la clé",
    "ca_compromise": "compromission de l'autorité",
    "affiliation_changed": "changement d'affiliation",
    "superseded": "remplacé",
    "cessation_of_operation": "cessation d'activité",
    "certificate_hold": "suspendu",
    "privilege_withdrawn": "privilège retiré",
    "aa_compromise": "compromission de l'autorité d'attributs",
    "remove_from_crl": "retiré de la liste",
}

CRL_PROBLEMS = {
    "lcr_absente": "aucune liste de révocation disponible",
    "lcr_perimee": "liste de révocation périmée (date de prochaine mise à jour dépassée)",
    "lcr_signature_invalide": "liste de révocation signée par une autre clé que celle de l'émetteur",
    "lcr_emetteur_non_habilite": "l'émetteur n'est pas habilité à signer des listes de révocation",
    "lcr_non_conforme": "liste de révocation non conforme",
    # Why a CRL is not conforming (``lcr_non_conforme:<defect>``)
    "extension_critique_inconnue": "extension critique non reconnue",
    "extensions_illisibles": "extensions illisibles",
    "numero_critique": "numéro de liste marqué critique, RFC 5280 §5.2.3",
    "numero_absent": "sans numéro de liste, RFC 5280 §5.2.3",
    "identifiant_cle_absent": "sans identifiant de la clé de l'autorité, RFC 5280 §5.2.1",
    "prochaine_mise_a_jour_absente": "sans date de prochaine mise à jour, RFC 5280 §5.1.2.5",
    "ocsp_absent": "aucun répondeur OCSP indiqué",
    "ocsp_injoignable": "répondeur OCSP injoignable",
    "ocsp_reponse_illisible": "réponse OCSP illisible",
    "ocsp_refus": "le répondeur OCSP a refusé de répondre",
    "ocsp_signature_invalide": "réponse OCSP mal signée",
    "ocsp_perime": "réponse OCSP périmée",
    "ocsp_statut_inconnu": "le répondeur OCSP ne connaît pas ce certificat",
    "ocsp_sans_reponse": "réponse OCSP sans statut pour ce certificat",
}

ROLE_LABELS = {"authentification": "d'authentification", "signature": "de signature"}


def certificate_role_text(role: str | None) -> str:
    """A ``pki`` role as the user reads it: no role, or ``inconnu`` (a certificate without
    key usage), both read « rôle inconnu »."""
    from pki import UNKNOWN_ROLE  # only where pki is loaded already

    return role if role not in (None, UNKNOWN_ROLE) else "rôle inconnu"


def certificate_object(info: Any) -> dict[str, Any]:
    """A described certificate (``pki.CertificateInfo``) as the JSON of ``cartes valider``
    and of the status page: French keys, ISO instants."""
    return {
        "sujet": info.subject,
        "emetteur": info.issuer,
        "numero_serie": info.serial_number,
        "empreinte_sha256": info.fingerprint_sha256,
        "non_avant": info.not_before.isoformat(),
        "non_apres": info.not_after.isoformat(),
        "role": info.role,
    }


PKI_MESSAGES: dict[str, str] = {
    "confiance_absente": "aucune ancre de confiance n'est configurée.",
    "expire": "certificat expiré depuis le {date_fr}.",
    "pas_encore_valide": "certificat pas encore valide (à partir du {date_fr}).",
    "revoque": "{objet_fr} révoqué le {date_fr} (motif : {motif_fr}).",
    "emetteur_inconnu": "émetteur inconnu : {emetteur} n'est relié à aucune ancre de confiance.",
    "chaine_invalide": "chaîne de certification invalide ({detail}).",
    "signature_invalide": "signature du certificat invalide : il n'a pas été signé par {emetteur}.",
    "usage_cle_incorrect": "usage de clé incorrect : {usage_fr}.",
    "certificat_non_conforme": "{objet_conforme_fr} non conforme au RFC 5280 (§{regle}) : {defaut_fr}.",
    "revocation_inconnue": "révocation inconnue pour {objet_fr} : {problemes_fr}.",
    # Inputs that cannot be read
    "fichier_vide": "fichier vide.",
    "fichier_illisible": "fichier illisible ({detail}).",
    "pem_invalide": "contenu PEM invalide.",
    "format_inconnu": "aucun certificat reconnu (formats acceptés : PEM, DER, P7B, P12 sans mot de passe).",
    "pkcs12_protege": "fichier PKCS#12 protégé par un mot de passe : exportez le certificat seul (.cer ou .pem).",
    "nom_illisible": "certificat mal formé (nom du titulaire ou de l'émetteur illisible).",
    "lcr_illisible": "liste de révocation illisible.",
    "lcr_fichier_illisible": "liste de révocation {fichier} illisible ({detail}).",
    "confiance_invalide": "ancres de confiance invalides.",
    "certificat_illisible": "certificat illisible dans {fichier} ({motif_fr}).",
}


def _french_date(value: object) -> str:
    import datetime as dt

    try:
        instant = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    from inventaire.clock import PARIS

    return f"{instant.astimezone(PARIS):%d/%m/%Y à %H:%M}"


def _problem_text(problem: str) -> str:
    code, _, detail = problem.partition(":")
    text = CRL_PROBLEMS.get(code, code)
    if not detail:
        return text
    return f"{text} ({CRL_PROBLEMS.get(detail, detail.replace('_', ' '))})"


# Why a certificate breaks the RFC 5280 profile (``certificat_non_conforme``'s ``defaut``).
PROFILE_DEFECTS = {
    "extension_dupliquee": "l'extension {extension_fr} figure plusieurs fois",
    "extension_illisible": "l'extension {extension_fr} est mal formée",
    "extension_critique_inconnue": "extension critique non reconnue : {extension_fr}",
    "extension_absente": "extension obligatoire absente : {extension_fr}",
    "extension_interdite": "extension interdite : {extension_fr}",
    "criticite_incorrecte": "criticité incorrecte de l'extension {extension_fr}",
    "numero_serie_non_positif": "numéro de série nul ou négatif",
    "identifiant_cle_autorite_absent": (
        "identifiant de la clé de l'autorité (authorityKeyIdentifier) absent"
    ),
    "identifiant_cle_autorite_incomplet": (
        "identifiant de la clé de l'autorité (authorityKeyIdentifier) sans keyIdentifier"
    ),
    "identifiant_cle_autorite_critique": (
        "identifiant de la clé de l'autorité (authorityKeyIdentifier) marqué critique"
    ),
    "identifiant_cle_sujet_absent": "identifiant de la clé du sujet (subjectKeyIdentifier) absent",
    "identifiant_cle_sujet_critique": (
        "identifiant de la clé du sujet (subjectKeyIdentifier) marqué critique"
    ),
    "signature_certificats_hors_ac": (
        "usage keyCertSign (signature de certificats) sur un certificat qui n'est pas une autorité"
    ),
    "contraintes_politique_non_critiques": (
        "contraintes de politique (policyConstraints) non marquées critiques"
    ),
    "usage_etendu_sans_authentification_client": (
        "l'usage étendu (extendedKeyUsage) d'un certificat d'authentification n'autorise "
        "pas l'authentification client (clientAuth)"
    ),
    "acces_autorite_critique": (
        "accès aux informations de l'autorité (authorityInformationAccess) marqué critique"
    ),
}


def _extension_name(dotted: object) -> str:
    """``extendedKeyUsage (2.5.29.37)``: the name cryptography knows, and the OID."""
    if not dotted:
        return "(non identifiée)"
    from cryptography.x509 import ObjectIdentifier

    try:
        name = ObjectIdentifier(str(dotted))._name
    except ValueError:
        return str(dotted)
    return str(dotted) if name == "Unknown OID" else f"{name} ({dotted})"


def _profile_params(params: dict[str, Any]) -> None:
    authority = params.get("autorite")
    if params.get("objet") != "autorite":
        params["objet_conforme_fr"] = "certificat"
    elif authority:
        params["objet_conforme_fr"] = f"autorité de certification « {authority} »"
    else:
        params["objet_conforme_fr"] = "autorité de certification"
    params["extension_fr"] = _extension_name(params.get("extension"))
    defect = PROFILE_DEFECTS.get(str(params.get("defaut")), str(params.get("defaut")))
    params["defaut_fr"] = defect.format_map(params)
    params.setdefault("regle", "4.2")


def pki_text(code: str, params: Mapping[str, Any] | None = None) -> str:
    """The French sentence for a ``pki`` reason or error code."""
    params = dict(params or {})
    if "date" in params:
        params["date_fr"] = _french_date(params["date"])
    params["objet_fr"] = (
        "l'autorité de certification" if params.get("objet") == "autorite" else "le certificat"
    )
    params["motif_fr"] = (
        REVOCATION_REASONS.get(str(params.get("motif")), "non précisé")
        if code == "revoque"
        else PKI_MESSAGES.get(str(params.get("motif")), str(params.get("motif", ""))).rstrip(".")
    )
    params["problemes_fr"] = "; ".join(_problem_text(p) for p in params.get("problemes", [])) or (
        "aucune source de révocation"
    )
    if code == "certificat_non_conforme":
        _profile_params(params)
    if code == "usage_cle_incorrect":
        role = params.get("role")
        params["usage_fr"] = (
            f"un certificat {ROLE_LABELS.get(str(role), str(role))} demande l'usage "
            + (
                "signature numérique"
                if params.get("requis") == "digital_signature"
                else "non-répudiation"
            )
            if role
            else "ni authentification ni signature"
        )
    template = PKI_MESSAGES.get(code)
    if template is None:
        return f"Erreur ({code})."
    try:
        return template.format_map(params)
    except (KeyError, ValueError):
        return template


# Card readers (PKCS#11): problems with a module, a token or an object.
READER_MESSAGES = {
    "aucun_module": (
        "aucun module PKCS#11 : installez OpenSC (paquet opensc) ou indiquez le module du "
        "lecteur avec --module ou readers.modules dans la configuration"
    ),
    "module_absent": "module PKCS#11 introuvable",
    "module_illisible": "module PKCS#11 impossible à charger",
    "jeton_retire": "la carte ou la clé a été retirée pendant la lecture",
    "jeton_non_reconnu": "carte ou clé non reconnue par le module",
    "jeton_illisible": "carte ou clé illisible",
    "objet_vide": "objet certificat vide",
    "certificat_illisible": "objet certificat illisible (contenu non reconnu)",
    "lecture_impossible": "objet certificat impossible à lire",
}
PIN_STATES = {
    "essais_faibles": "attention : plusieurs codes PIN faux ont déjà été saisis",
    "dernier_essai": "attention : un seul essai de code PIN reste avant blocage",
    "bloque": "code PIN bloqué : faites débloquer la carte",
}


def reader_text(code: str | None) -> str | None:
    """The French text of a reader problem code (``cartes.readers.ReaderError``)."""
    return None if code is None else READER_MESSAGES.get(code, code)


# The « Lecteurs » screen of the terminal UI (the same words as ``cartes scanner``).
DESK_MATCH_LABELS = {
    "empreinte": "certificat déjà connu",
    "numero_serie": "numéro de série connu",
    "email": "titulaire reconnu par son adresse",
    "nom": "titulaire reconnu par son nom",
}
PROOF_ERROR_LABELS = {
    "pin_incorrect": "code PIN incorrect",
    "pin_bloque": "code PIN bloqué",
    "cle_absente": "aucune clé privée avec cet identifiant sur la carte",
    "signature_fausse": "la clé de la carte ne correspond pas au certificat",
    "jeton_retire": "la carte a été retirée",
    "algorithme_non_pris_en_charge": "type de clé non pris en charge",
    "module_absent": "module PKCS#11 introuvable",
    "module_illisible": "module PKCS#11 impossible à charger",
    "jeton_illisible": "carte ou clé illisible",
    "jeton_non_reconnu": "carte ou clé non reconnue par le module",
}
VALIDATION_STATUS_LABELS = {
    "valide": "valide",
    "invalide": "invalide",
    "indetermine": "indéterminé",
}


# --- A holder's personal data: cartes titulaire voir / exporter (cartes/ops/personal.py) ---
MESSAGES.update(
    {
        "titulaire_introuvable": (
            "Aucun titulaire ne correspond à « {titulaire} » (adresse électronique ou numéro "
            "de titulaire) : rien n'a été lu."
        ),
        "acces_non_enregistre": (
            "Lecture refusée : la consultation des données du titulaire n°{id} n'a pas pu être "
            "inscrite au registre des consultations, et aucune lecture ne doit lui échapper. "
            "Rien n'a été montré ni écrit. Cause : {detail}"
        ),
    }
)


# --- Screen 3, the record (« fiche ») of one credential: cartes/tui/screens/record.py ---
MESSAGES.update(
    {
        "revalidation_sans_ancre": (
            "Aucune ancre de confiance configurée (trust.agent_card, trust.expert_card, "
            "trust.rpva_key, trust.temporary_card) : les certificats ne peuvent pas être validés."
        ),
    }
)
# Keys are the enums' values (StrEnum members find them too).
MODEL_LABELS = {"OLD": "ancien modèle", "NEW": "nouveau modèle"}
CERTIFICATE_ROLE_LABELS = {"AUTHENTICATION": "authentification", "SIGNATURE": "signature"}
CERTIFICATE_STATUS_LABELS = {
    "valide": "valide",
    "invalide": "invalide",
    "indetermine": "indéterminé",
    "illisible": "illisible",
}
REPLACEMENT_LABELS = {
    "NONE": "rien n'est commandé",
    "REQUESTED": "remplaçant commandé",
    "RECEIVED": "remplaçant reçu au SAR",
}
# What an operator asks, by the state a credential moves to (from the state in the key
# when the same target reads differently).
TRANSITION_VERBS = {
    "REQUESTED": "Redemander",
    "RECEIVED": "Réceptionner",
    "ACTIVE": "Remettre au titulaire",
    ("SUSPENDED", "ACTIVE"): "Réactiver (retrouvée)",
    "SUSPENDED": "Suspendre",
    "LOST": "Déclarer perdue",
    "DAMAGED": "Déclarer défectueuse",
    "RETURNED": "Enregistrer la restitution",
    "REVOKED": "Révoquer",
    "CANCELLED": "Annuler",
}


def transition_verb(source: str, target: str) -> str:
    """The French verb of the move from ``source`` to ``target`` (« Suspendre »)."""
    verb = TRANSITION_VERBS.get((str(source), str(target))) or TRANSITION_VERBS.get(str(target))
    return str(verb or f"Passer à « {state_label(target)} »")


def emergency_situation(line: EmergencyLine) -> str:
    """Where an emergency card is, in French (``cartes urgence liste``, the Urgences
    screen)."""
    if line.returned_on is not None:
        return f"restituée le {line.returned_on:%d/%m/%Y}"
    if not line.outstanding:
        return state_label(line.card_state)
    if line.overdue and line.to_take_back:
        return "en retard, à récupérer"
    if line.overdue:
        return "en retard"
    if line.to_take_back:
        return "à récupérer"
    return "en circulation"


# The next step of a holder's own key (``inventaire.selfcheck.Step``), for the status page.
# Parameters: dates as JJ/MM/AAAA (avant, date_limite, expiration, demande, reception,
# arrivee) and etat (the SAR's word for the key). Steps in STEPS_TO_ORDER are followed by
# how to renew that kind ([alerts.instructions]).
STEP_MESSAGES = {
    "revoquee": "Votre certificat est révoqué : il ne donne plus accès à la plateforme. "
    "Commandez une nouvelle clé dès aujourd'hui.",
    "hors_service": "Le SAR enregistre cette clé comme « {etat} ». Contactez le SAR.",
    "remplacee": "Une nouvelle clé vous a été remise : utilisez-la. Celle-ci n'est plus suivie.",
    "a_retirer": "Votre nouvelle clé est arrivée au SAR le {reception}. "
    "Venez la retirer avant le {avant}.",
    "commande_en_cours": "Le renouvellement a été commandé le {demande} ; "
    "la nouvelle clé est attendue vers le {arrivee}. Rien d'autre à faire d'ici là.",
    "expiree": "Votre certificat a expiré le {expiration}. Commandez une nouvelle clé aujourd'hui.",
    "invalide": "Ce certificat n'est pas accepté (voir les motifs). Contactez le SAR.",
    "commander_maintenant": "La date limite de commande ({date_limite}) est passée : "
    "commandez le renouvellement aujourd'hui.",
    "commander_avant": "Commandez le renouvellement au plus tard le {date_limite}.",
}
STEPS_TO_ORDER = frozenset({"revoquee", "expiree", "commander_maintenant", "commander_avant"})


def step_text(advice: Any, known: Any, instructions: str) -> tuple[str, str | None]:
    """The sentence of a holder's next step (``inventaire.selfcheck.Advice``, with the
    inventory's ``KnownKey`` or None), and how to renew (``instructions``, the kind's
    sentence of ``[alerts.instructions]``) when the step is to order; for the status page
    and ``cartes statut``."""

    def day(value: Any) -> str:
        return f"{value:%d/%m/%Y}" if value is not None else ""

    step = str(advice.step)
    sentence = STEP_MESSAGES[step].format(
        avant=day(advice.by),
        date_limite=day(advice.order_by),
        expiration=day(advice.expires_on),
        demande=day(known.requested_on) if known else "",
        reception=day(known.received_on) if known else "",
        arrivee=day(advice.arrival),
        etat=STATE_LABELS[known.state] if known else "",
    )
    return sentence, instructions if step in STEPS_TO_ORDER else None
