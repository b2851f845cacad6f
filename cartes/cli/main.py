"""Entry point of ``cartes``: the parser, and the one place where errors become French
messages and exit codes.

Exit codes: 0 done; 1 refused or failed (a French message says why, nothing was changed);
2 bad command line. ``cartes journal verifier`` exits 1 when the chain is broken.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from cartes import messages
from cartes.cli.context import Context, os_login
from cartes.cli.french_argparse import Parser
from cartes.settings import SettingsError
from inventaire.clock import Clock, SystemClock
from inventaire.errors import InventaireError
from inventaire.vocabulary import parse_date

Command = Callable[[Context, argparse.Namespace], int]

# Journal entry types as the user names them.
ENTITY_TOKENS = {
    "support": "credential",
    "titulaire": "holder",
    "operateur": "operator",
    "organisation": "organisation",
    "import": "import",
}

EPILOG = """exemples :
  cartes init
  cartes importer inventaire.csv
  cartes liste --type cle_rpva --expire-dans 60
  cartes transition 42 suspendue --motif "carte oubliée au domicile"
  cartes journal verifier
  cartes valider carte.pem --ancre racine.pem --crl emettrice.crl
  cartes lecteurs
  cartes statut
  cartes plan --jours 90
  cartes alertes apercu --dossier /tmp/alertes
  cartes service
  cartes web --socket /run/cartes-web/web.sock
  cartes titulaire exporter 42 --format html --sortie titulaire-42.html
  cartes maintenance anonymiser --simulation
"""


def _date(text: str) -> dt.date:
    try:
        return parse_date(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"date invalide : « {text} » (JJ/MM/AAAA ou AAAA-MM-JJ)"
        ) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"nombre entier attendu : « {text} »") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"nombre positif attendu : « {text} »")
    return value


def _port(text: str) -> int:
    value = _positive(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port invalide : « {text} » (1 à 65535)")
    return value


def _instant(text: str) -> dt.datetime:
    from cartes.cli.validate_cmd import parse_instant

    return parse_instant(text)


def build_parser() -> Parser:
    parser = Parser(
        prog="cartes",
        description=(
            "Gestion des cartes agent, cartes expert, clés RPVA et cartes temporaires du "
            "ressort. Sans commande : l'interface en plein écran dans un terminal, sinon le "
            "résumé de l'inventaire."
        ),
        epilog=EPILOG,
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FICHIER",
        help="fichier de configuration TOML (sinon $CARTES_CONFIG)",
    )
    parser.add_argument(
        "--operateur",
        metavar="IDENTIFIANT",
        help="opérateur qui agit (par défaut : l'utilisateur du système)",
    )
    parser.set_defaults(command="tui_cmd:cmd_default")
    commands = parser.add_subparsers(title="commandes", metavar="COMMANDE")

    def add(name: str, command: str, help: str) -> Parser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(command=command)
        return sub  # type: ignore[return-value]

    def command_group(name: str, help: str) -> Callable[[str, str, str], argparse.ArgumentParser]:
        """A command made of subcommands (``cartes alertes envoyer``): its adder."""
        subcommands = add(name, "main:missing_subcommand", help).add_subparsers(
            title="commandes", metavar="COMMANDE"
        )

        def add_subcommand(name: str, command: str, help: str) -> argparse.ArgumentParser:
            parser = subcommands.add_parser(name, help=help, description=help)
            parser.set_defaults(command=command)
            return parser

        return add_subcommand

    add(
        "init",
        "inventory:cmd_init",
        "crée ou met à jour la base, les organisations du ressort et le premier administrateur",
    )
    add("config", "admin:cmd_config", "affiche la configuration effective (secrets masqués)")
    add(
        "resume",
        "summary_cmd:cmd_summary",
        "résumé de l'inventaire (ce qu'affiche « cartes » hors terminal)",
    )
    sub = add("tui", "tui_cmd:cmd_tui", "ouvre l'interface en plein écran du SAR")
    sub.add_argument(
        "--ecran",
        nargs="+",
        metavar="ÉCRAN",
        help=(
            "écran d'ouverture : tableau, inventaire, fiche ID, lecteurs, urgences, alertes, "
            "journal"
        ),
    )
    sub.add_argument("--theme", choices=["sombre", "clair"], help="thème (par défaut : sombre)")
    sub.add_argument(
        "--module",
        action="append",
        metavar="CHEMIN",
        help="module PKCS#11 des lecteurs (répétable ; sinon la configuration, sinon OpenSC)",
    )

    sub = add(
        "importer",
        "inventory:cmd_importer",
        "importe titulaires et supports depuis un fichier CSV ou XLSX",
    )
    sub.add_argument("fichier", metavar="FICHIER")
    sub.add_argument(
        "--ignorer-erreurs",
        action="store_true",
        help="enregistre les lignes valides et signale les autres",
    )
    sub.add_argument(
        "--feuille", metavar="NOM", help="feuille du classeur XLSX (sinon la première)"
    )

    sub = add("liste", "listing_cmd:cmd_liste", "liste les supports, avec filtres")
    sub.add_argument(
        "--type",
        action="append",
        metavar="TYPE",
        help="carte_agent, carte_expert, cle_rpva, carte_temporaire (répétable)",
    )
    sub.add_argument(
        "--etat",
        action="append",
        metavar="ETAT",
        help="demandee, recue, active, suspendue, perdue, defectueuse, "
        "restituee, revoquee, annulee (répétable)",
    )
    sub.add_argument("--organisation", metavar="NOM", help="nom court ou complet")
    sub.add_argument(
        "--recherche",
        metavar="TEXTE",
        help="texte cherché dans le nom, le prénom, l'adresse ou le n° de série",
    )
    sub.add_argument(
        "--expire-dans",
        type=_positive,
        metavar="N",
        help="expire entre aujourd'hui et dans N jours",
    )
    sub.add_argument(
        "--expire-avant",
        type=_date,
        metavar="DATE",
        help="expire avant cette date (expirés compris)",
    )
    sub.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sub.add_argument("--limite", type=_positive, metavar="N", help="N lignes au plus")

    sub = add(
        "transition", "inventory:cmd_transition", "change l'état d'un support (motif obligatoire)"
    )
    sub.add_argument("id", type=int, metavar="ID", help="numéro du support")
    sub.add_argument("etat", metavar="ETAT", help="nouvel état (recue, active, suspendue…)")
    sub.add_argument("--motif", required=True, metavar="TEXTE")
    sub.add_argument(
        "--version", type=int, metavar="N", help="refuse si le support n'est plus à cette version"
    )

    sub = add("journal", "journal_cmd:cmd_journal", "affiche le journal des modifications")
    sub.add_argument("--support", type=int, metavar="ID")
    sub.add_argument("--titulaire", type=int, metavar="ID")
    sub.add_argument("--objet", choices=sorted(ENTITY_TOKENS))
    sub.add_argument("--par", metavar="IDENTIFIANT", help="opérateur")
    sub.add_argument("--action", metavar="ACTION", help="par exemple support.transition")
    sub.add_argument("--depuis", type=_date, metavar="DATE")
    sub.add_argument("--jusqua", type=_date, metavar="DATE", help="jusqu'à cette date incluse")
    sub.add_argument(
        "--limite",
        type=_positive,
        default=100,
        metavar="N",
        help="N entrées au plus, les plus récentes (0 : toutes)",
    )
    sub.add_argument("--format", choices=("table", "json"), default="table")
    journal_sub = sub.add_subparsers(title="commandes", metavar="COMMANDE")
    verify = journal_sub.add_parser(
        "verifier",
        help="vérifie le chaînage du journal (code 1 si altéré)",
        description="vérifie le chaînage du journal (code 1 si altéré)",
    )
    verify.set_defaults(command="journal_cmd:cmd_journal_verifier")
    verify.add_argument(
        "--tete",
        metavar="SEQ:EMPREINTE",
        help="vérifie aussi que l'entrée SEQ est toujours là, avec cette empreinte "
        "(tête notée par « cartes service »)",
    )

    sub = add(
        "plan",
        "plan_cmd:cmd_plan",
        "plan de renouvellement : ce qu'il faut commander, les ruptures à venir",
    )
    sub.add_argument(
        "--jours",
        type=_positive,
        default=60,
        metavar="N",
        help="date limite de commande dans les N jours (défaut : 60), retards compris",
    )
    sub.add_argument("--type", action="append", metavar="TYPE", help="type de support (répétable)")
    sub.add_argument("--organisation", metavar="NOM", help="nom court ou complet")
    sub.add_argument("--format", choices=("table", "csv", "json"), default="table")

    add_alert = command_group("alertes", "alertes de renouvellement par courriel")

    sub = add_alert(
        "apercu",
        "alerts_cmd:cmd_apercu",
        "ce qui serait envoyé (rien n'est enregistré ni envoyé)",
    )
    sub.add_argument(
        "--date", type=_date, metavar="DATE", help="jour simulé (défaut : aujourd'hui)"
    )
    sub.add_argument(
        "--dossier", type=Path, metavar="DOSSIER", help="écrit chaque courriel en fichier .eml"
    )
    sub.add_argument("--format", choices=("texte", "json"), default="texte")
    sub = add_alert("envoyer", "alerts_cmd:cmd_envoyer", "planifie et envoie les alertes dues")
    sub.add_argument(
        "--date", type=_date, metavar="DATE", help="jour simulé (défaut : aujourd'hui)"
    )
    sub = add_alert("tester", "alerts_cmd:cmd_tester", "envoie un courriel d'essai")
    sub.add_argument("adresse", metavar="ADRESSE")
    sub = add_alert("liste", "alerts_cmd:cmd_liste", "liste les alertes de la file d'envoi")
    sub.add_argument(
        "--etat",
        action="append",
        metavar="ETAT",
        help="en_attente, envoi, envoyee, echec (répétable)",
    )
    sub.add_argument("--destinataire", metavar="ADRESSE")
    sub.add_argument("--format", choices=("table", "csv", "json"), default="table")
    sub.add_argument(
        "--limite", type=_positive, default=200, metavar="N", help="N alertes au plus (0 : toutes)"
    )
    sub = add_alert(
        "silence", "alerts_cmd:cmd_silence", "coupe (ou rétablit) les alertes d'un support"
    )
    sub.add_argument("id", type=int, metavar="ID", help="numéro du support")
    group = sub.add_mutually_exclusive_group(required=True)
    group.add_argument("--motif", metavar="TEXTE", help="pourquoi les alertes sont coupées")
    group.add_argument("--lever", action="store_true", help="rétablit les alertes")

    add_request = command_group("demande", "demandes de supports : commande, réception, remise")

    sub = add_request("creer", "requests_cmd:cmd_creer", "enregistre une demande de support")
    sub.add_argument("--titulaire", required=True, metavar="EMAIL")
    sub.add_argument("--type", required=True, metavar="TYPE", help="carte_agent, carte_expert…")
    sub.add_argument("--modele", metavar="MODELE", help="nouveau ou ancien (cartes agent)")
    sub.add_argument("--remplace", type=int, metavar="ID", help="support que la demande remplace")
    sub.add_argument("--motif", metavar="TEXTE")
    sub = add_request(
        "recevoir", "requests_cmd:cmd_recevoir", "le support demandé est arrivé au SAR"
    )
    sub.add_argument("id", type=int, metavar="ID", help="numéro de la demande (du support)")
    sub.add_argument("--numero-serie", required=True, metavar="S")
    sub.add_argument(
        "--date", type=_date, metavar="DATE", help="jour de réception (défaut : aujourd'hui)"
    )
    sub = add_request(
        "remettre", "requests_cmd:cmd_remettre", "remet le support à son titulaire (habilité)"
    )
    sub.add_argument("id", type=int, metavar="ID")
    sub.add_argument(
        "--date", type=_date, metavar="DATE", help="jour de remise (défaut : aujourd'hui)"
    )
    sub.add_argument(
        "--ancien-restitue",
        action="store_true",
        help="le support remplacé est rendu en même temps",
    )
    sub = add_request("annuler", "requests_cmd:cmd_annuler", "annule une demande")
    sub.add_argument("id", type=int, metavar="ID")
    sub.add_argument("--motif", required=True, metavar="TEXTE")
    sub = add_request("liste", "requests_cmd:cmd_liste", "liste les demandes")
    sub.add_argument("--en-attente", action="store_true", help="demandées ou reçues seulement")
    sub.add_argument("--format", choices=("table", "csv", "json"), default="table")

    add_emergency = command_group("urgence", "cartes agent ancien modèle remises en urgence")

    sub = add_emergency(
        "emettre",
        "emergency_cmd:cmd_emettre",
        "remet une carte ancien modèle en urgence (habilité)",
    )
    sub.add_argument("--titulaire", required=True, metavar="EMAIL")
    sub.add_argument("--numero-serie", required=True, metavar="S")
    sub.add_argument("--motif", required=True, metavar="TEXTE")
    bridge = sub.add_mutually_exclusive_group(required=True)
    bridge.add_argument(
        "--demande", type=int, metavar="ID", help="demande nouveau modèle en attente"
    )
    bridge.add_argument("--sans-demande", action="store_true", help="aucune demande (motif requis)")
    sub.add_argument("--retour-prevu", type=_date, metavar="DATE")
    sub = add_emergency("restituer", "emergency_cmd:cmd_restituer", "la carte d'urgence est rendue")
    sub.add_argument("id", type=int, metavar="ID", help="numéro de l'émission d'urgence")
    sub.add_argument("--date", type=_date, metavar="DATE")
    sub = add_emergency("liste", "emergency_cmd:cmd_liste", "registre des cartes d'urgence")
    sub.add_argument("--en-retard", action="store_true")
    sub.add_argument("--a-recuperer", action="store_true")
    sub.add_argument("--format", choices=("table", "csv", "json"), default="table")

    sub = add("stats", "stats_cmd:cmd_stats", "statistiques par organisation et par type")
    sub.add_argument(
        "--au", type=_date, metavar="DATE", help="jour de référence (défaut : aujourd'hui)"
    )
    sub.add_argument("--format", choices=("table", "csv", "json", "xlsx"), default="table")
    sub.add_argument("--sortie", type=Path, metavar="FICHIER", help="écrit dans ce fichier")

    sub = add(
        "service",
        "service_cmd:cmd_service",
        "service de fond : LCR, revalidation, alertes chaque jour (au premier plan)",
    )
    sub.add_argument("--une-fois", action="store_true", help="un seul cycle, puis s'arrête")

    add_holder = command_group(
        "titulaire", "titulaires : fiche complète et export de leurs données"
    )
    sub = add_holder(
        "voir",
        "holder_cmd:cmd_titulaire_voir",
        "affiche tout ce que l'inventaire tient d'un titulaire (la consultation est enregistrée)",
    )
    sub.add_argument("titulaire", metavar="EMAIL|ID")
    sub.add_argument("--format", choices=("texte", "json"), default="texte")
    sub = add_holder(
        "exporter",
        "holder_cmd:cmd_titulaire_exporter",
        "exporte toutes les données d'un titulaire, à lui remettre (l'export est enregistré)",
    )
    sub.add_argument("titulaire", metavar="EMAIL|ID")
    sub.add_argument("--format", choices=("json", "html"), default="json")
    sub.add_argument("--sortie", type=Path, metavar="FICHIER", help="écrit dans ce fichier")

    add_maintenance = command_group("maintenance", "opérations de maintenance de la base")
    sub = add_maintenance(
        "anonymiser",
        "maintenance_cmd:cmd_anonymiser",
        "anonymise les titulaires dont la durée de conservation ([retention] years) est passée",
    )
    sub.add_argument(
        "--simulation", action="store_true", help="liste qui serait anonymisé, sans rien changer"
    )
    sub.add_argument("--format", choices=("texte", "json"), default="texte")

    sub = add(
        "web",
        "web_cmd:cmd_web",
        "page d'état des clés pour les avocats (derrière nginx) et métriques de supervision",
    )
    sub.add_argument(
        "--socket", type=Path, metavar="CHEMIN", help="socket Unix pour nginx (sinon [web] socket)"
    )
    sub.add_argument(
        "--port", type=_port, metavar="N", help="port sur 127.0.0.1 au lieu d'un socket Unix"
    )
    sub.add_argument(
        "--port-metriques", type=_port, metavar="N", help="port des métriques sur 127.0.0.1"
    )
    sub.add_argument("--sans-metriques", action="store_true", help="ne sert pas les métriques")
    web_sub = sub.add_subparsers(title="commandes", metavar="COMMANDE", required=False)
    sub = web_sub.add_parser(
        "jeton",
        help="crée le jeton partagé avec nginx et la ligne que nginx inclut",
        description="crée le jeton partagé avec nginx et la ligne que nginx inclut",
    )
    sub.set_defaults(command="web_cmd:cmd_web_jeton")
    sub.add_argument(
        "--nginx",
        type=Path,
        metavar="FICHIER",
        help="écrit la directive proxy_set_header à inclure dans la configuration de nginx",
    )

    sub = add("operateur", "main:missing_subcommand", "opérateurs (personnels du SAR)")
    operator_sub = sub.add_subparsers(title="commandes", metavar="COMMANDE")
    sub = operator_sub.add_parser("ajouter", help="ajoute un opérateur")
    sub.set_defaults(command="admin:cmd_operateur_ajouter")
    sub.add_argument("login", metavar="IDENTIFIANT")
    sub.add_argument(
        "--role",
        action="append",
        required=True,
        metavar="ROLE",
        help="lecteur, gestionnaire, habilite, admin (répétable)",
    )
    sub = operator_sub.add_parser("liste", help="liste les opérateurs")
    sub.set_defaults(command="admin:cmd_operateur_liste")

    sub = add("organisation", "main:missing_subcommand", "juridictions, barreaux, services")
    organisation_sub = sub.add_subparsers(title="commandes", metavar="COMMANDE")
    sub = organisation_sub.add_parser("ajouter", help="ajoute une organisation")
    sub.set_defaults(command="admin:cmd_organisation_ajouter")
    sub.add_argument("nom", metavar="NOM", help="nom court, par exemple « TJ Cholet »")
    sub.add_argument(
        "--type",
        required=True,
        metavar="TYPE",
        help="cour_appel, tribunal_judiciaire, barreau, compagnie_experts, "
        "service_informatique, autre",
    )
    sub.add_argument("--nom-complet", metavar="NOM")
    sub = organisation_sub.add_parser("liste", help="liste les organisations")
    sub.set_defaults(command="admin:cmd_organisation_liste")

    sub = add(
        "demo",
        "inventory:cmd_demo",
        "remplit la base configurée avec un ressort fictif (données de démonstration)",
    )
    sub.add_argument("--titulaires", type=_positive, default=3000, metavar="N")
    sub.add_argument("--graine", type=int, default=1, metavar="S")

    sub = add(
        "valider",
        "validate_cmd:cmd_valider",
        "valide les certificats de fichiers (PEM, DER, P7B, P12) : chaîne et révocation",
    )
    sub.add_argument("fichiers", nargs="+", metavar="FICHIER")
    sub.add_argument(
        "--ancre",
        action="append",
        metavar="PEM",
        help="ancre de confiance (sinon celles de la configuration)",
    )
    sub.add_argument(
        "--intermediaire",
        action="append",
        metavar="PEM",
        help="certificat d'autorité intermédiaire",
    )
    sub.add_argument(
        "--crl", action="append", metavar="FICHIER", help="liste de révocation (DER ou PEM)"
    )
    sub.add_argument(
        "--date",
        type=_instant,
        metavar="ISO-8601",
        help="date de validation (par défaut : maintenant ; heure de Paris si non précisée)",
    )
    sub.add_argument("--format", choices=("texte", "json", "jsonl"), default="texte")
    sub.add_argument(
        "--reseau",
        action="store_true",
        help="télécharge les LCR et interroge les répondeurs OCSP (avec délai maximal)",
    )

    sub = add("lecteurs", "readers_cmd:cmd_lecteurs", "cartes et clés présentes dans les lecteurs")
    _reader_options(sub)
    sub.add_argument("--format", choices=("texte", "json"), default="texte")

    sub = add(
        "statut",
        "readers_cmd:cmd_statut",
        "état de la clé ou de la carte branchée : validité, révocation, date limite de commande",
    )
    _reader_options(sub)
    sub.add_argument("--format", choices=("texte", "json"), default="texte")
    sub.add_argument("--ancre", action="append", metavar="PEM", help="ancre de confiance")
    sub.add_argument("--intermediaire", action="append", metavar="PEM")
    sub.add_argument("--crl", action="append", metavar="FICHIER")
    sub.add_argument("--reseau", action="store_true", help="LCR et OCSP par le réseau")
    sub.add_argument("--date", type=_instant, metavar="ISO-8601", help=argparse.SUPPRESS)

    sub = add(
        "scanner",
        "readers_cmd:cmd_scanner",
        "lit les cartes, les valide et les rapproche de l'inventaire (enregistrement sur demande)",
    )
    _reader_options(sub)
    sub.add_argument("--format", choices=("texte", "json"), default="texte")
    sub.add_argument(
        "--enregistrer",
        action="store_true",
        help="enregistre ou met à jour le support et ses certificats",
    )
    sub.add_argument(
        "--etat",
        default=None,
        metavar="ETAT",
        help="état d'un support créé par l'enregistrement (défaut : active pour un opérateur "
        "habilité ou avec --deja-remise, sinon recue)",
    )
    sub.add_argument(
        "--deja-remise",
        action="store_true",
        help="avec --enregistrer : la carte est déjà en service chez son titulaire "
        "(enregistrement d'un fait passé, pas une remise)",
    )
    sub.add_argument(
        "--remise-le", type=_date, metavar="DATE", help="avec --deja-remise : jour de la remise"
    )
    sub.add_argument(
        "--preuve",
        action="store_true",
        help="preuve de possession : signe un défi avec la clé (code PIN demandé)",
    )
    sub.add_argument(
        "--pss",
        action="store_true",
        help="avec --preuve, signature RSA-PSS au lieu de PKCS#1 v1.5",
    )
    sub.add_argument(
        "--pin-depuis-stdin",
        action="store_true",
        help="lit le code PIN sur l'entrée standard (avec --preuve)",
    )
    sub.add_argument("--ancre", action="append", metavar="PEM", help="ancre de confiance")
    sub.add_argument("--intermediaire", action="append", metavar="PEM")
    sub.add_argument("--crl", action="append", metavar="FICHIER")
    sub.add_argument("--reseau", action="store_true", help="LCR et OCSP par le réseau")
    return parser


def _reader_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--module",
        action="append",
        metavar="CHEMIN",
        help="module PKCS#11 (répétable ; sinon la configuration, sinon OpenSC)",
    )
    sub.add_argument("--slot", type=int, metavar="N", help="un seul emplacement")


def missing_subcommand(ctx: Context, _args: argparse.Namespace) -> int:
    ctx.err.write("Précisez une commande (voir « --help »).\n")
    return 2


def resolve(command: str) -> Command:
    """The function of a command named ``module:function`` (modules of ``cartes.cli``).

    Commands are imported only when run: the database layers are slow to import, and
    some commands (the listing) do without them.
    """
    module, function = command.split(":")
    return getattr(importlib.import_module(f"cartes.cli.{module}"), function)  # type: ignore[no-any-return]


def main(
    argv: Sequence[str] | None = None,
    *,
    clock: Clock | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run one command; return its exit code. Tests call this with their own clock."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        # argparse prints usage, help and errors on the process streams.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    ctx = Context(
        config_file=args.config,
        operator_login=args.operateur or os_login(),
        clock=clock or SystemClock(),
        out=out,
        err=err,
    )
    try:
        return resolve(args.command)(ctx, args)
    except SettingsError as exc:
        err.write(exc.message + "\n")
        return 1
    except InventaireError as exc:
        err.write(messages.error_text(exc) + "\n")
        return 1
    except KeyboardInterrupt:
        err.write("Interrompu : la transaction en cours a été annulée.\n")
        return 130
    except BrokenPipeError:
        return 0
    finally:
        ctx.close()


def run() -> None:
    """Console-script entry point."""
    try:
        code = main()
    except Exception as exc:  # the last resort: never a traceback for the user
        if os.environ.get("CARTES_DEBUG"):
            raise
        sys.stderr.write(
            f"Erreur inattendue ({type(exc).__name__}). Relancez avec CARTES_DEBUG=1 pour "
            "le détail technique.\n"
        )
        code = 1
    sys.stdout.flush()
    sys.exit(code)
