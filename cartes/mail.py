"""E-mails of renewal alerts: rendering a digest in French, and sending through SMTP.

Rendering turns a ``DigestContent`` of the outbox into a multipart (text and HTML) message
whose Message-ID is the digest's own, so that a digest sent again after a crash is the same
mail. ``SmtpSender`` keeps one connection for many messages and tells, for each message,
whether it went, should be tried again later, will never go, or whether the configuration
stops every message (DESIGN §4, §8).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import email.policy
import errno
import functools
import hashlib
import logging
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import jinja2

from cartes.messages import KIND_LABELS
from cartes.settings import Settings, SettingsError, SmtpSettings
from inventaire.clock import PARIS
from inventaire.enums import AlertLevel, CredentialKind
from inventaire.outbox import DigestContent, DigestItem, EmergencyDetails

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"

LEVEL_LABELS = {
    AlertLevel.TO_PLAN: "à prévoir",
    AlertLevel.ORDER_NOW: "à commander maintenant",
    AlertLevel.GAP: "rupture certaine : commandez sans attendre",
    AlertLevel.EXPIRED: "expiré",
    AlertLevel.TO_RETURN: "à récupérer, la nouvelle carte est remise",
    AlertLevel.OVERDUE: "en retard, la date de retour est dépassée",
}

SECURITY_LABELS = {
    "none": "sans chiffrement",
    "starttls": "STARTTLS",
    "tls": "TLS implicite",
}

# ---------------------------------------------------------------------------------------
# Rendering


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        auto_reload=False,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def french_date(day: dt.date) -> str:
    """``JJ/MM/AAAA``."""
    return f"{day:%d/%m/%Y}"


def _days(count: int) -> str:
    return f"{count} jour" if count == 1 else f"{count} jours"


def _expiry_text(item: DigestItem) -> str:
    date = french_date(item.expires_on)
    if item.days_left > 1:
        return f"le {date} (dans {_days(item.days_left)})"
    if item.days_left == 1:
        return f"le {date} (demain)"
    if item.days_left == 0:
        return f"le {date} (aujourd'hui)"
    return f"le {date} (expiré depuis {_days(-item.days_left)})"


def _order_by_text(item: DigestItem, day: dt.date) -> str:
    date = french_date(item.order_by)
    remaining = (item.order_by - day).days
    if remaining > 0:
        return f"avant le {date} (dans {_days(remaining)})"
    if remaining == 0:
        return f"aujourd'hui au plus tard ({date})"
    return f"dépassée depuis le {date}, commandez sans attendre"


def _gap_text(item: DigestItem) -> str:
    if item.days_left < 0:
        text = f"en cours depuis le {french_date(item.expires_on)}"
        # gap_days counts from expiry: what is left of it counts from today.
        remaining = item.gap_days + item.days_left
        if remaining > 0:
            text += f" ; un support commandé aujourd'hui arriverait dans {_days(remaining)}"
        return text
    if item.gap_days > 0:
        return f"{_days(item.gap_days)} sans support valide, même en commandant aujourd'hui"
    return "aucune si la commande part avant la date limite"


def kind_label(kind: CredentialKind) -> str:
    """The French name of a kind of credential, capitalised: « Clé RPVA »."""
    label = KIND_LABELS.get(kind, str(kind))
    return label[:1].upper() + label[1:]


def _return_text(due: dt.date, day: dt.date) -> str:
    date = french_date(due)
    remaining = (due - day).days
    if remaining > 1:
        return f"le {date} (dans {_days(remaining)})"
    if remaining == 1:
        return f"le {date} (demain)"
    if remaining == 0:
        return f"le {date} (aujourd'hui)"
    return f"le {date}, dépassé de {_days(-remaining)}"


def _emergency_view(item: DigestItem, emergency: EmergencyDetails, day: dt.date) -> dict[str, Any]:
    if emergency.new_card_handed_over_on is not None:
        new_card = f"remise le {french_date(emergency.new_card_handed_over_on)}"
    elif emergency.request_id is not None:
        new_card = f"pas encore remise (demande n°{emergency.request_id})"
    else:
        new_card = "aucune demande liée (carte émise sans demande)"
    return {
        "emergency": True,
        "kind_label": "Carte d'urgence",
        "serial": (f"n° {item.serial}" if item.serial else "(numéro inconnu)")
        + " (carte agent ancien modèle)",
        "level_label": LEVEL_LABELS.get(item.level, str(item.level)),
        "holder_name": item.holder_name,
        "organisation": item.organisation,
        "issued": f"le {french_date(emergency.issued_on)} par {emergency.issued_by}",
        "return_due": _return_text(emergency.return_due_on, day),
        "new_card": new_card,
        "instructions": "Récupérez la carte auprès de son titulaire, puis enregistrez sa "
        f"restitution (« cartes urgence restituer {emergency.issuance_id} »).",
    }


def _item_view(item: DigestItem, day: dt.date, settings: Settings) -> dict[str, Any]:
    if item.emergency is not None:
        return _emergency_view(item, item.emergency, day)
    return {
        "emergency": False,
        "kind_label": kind_label(item.kind),
        "serial": f"n° {item.serial}" if item.serial else "(numéro inconnu)",
        "level_label": LEVEL_LABELS.get(item.level, str(item.level)),
        "holder_name": item.holder_name,
        "organisation": item.organisation,
        "expiry": _expiry_text(item),
        "order_by": _order_by_text(item, day),
        "gap": _gap_text(item),
        "instructions": settings.alerts.instructions.of(item.kind),
    }


def digest_subject(digest: DigestContent) -> str:
    """« cartes : 3 supports à renouveler — commande avant le 12/01/2027 », and the
    emergency cards to take back, if any: « cartes : 1 carte d'urgence à récupérer »."""
    renewal, emergency = digest.renewal_items, digest.emergency_items
    if not emergency:
        return _renewal_subject(renewal, digest.day)
    if not renewal:
        return f"cartes : {_emergency_subject(emergency)}"
    return f"{_renewal_subject(renewal, digest.day)} ; {_emergency_subject(emergency)}"


def _emergency_subject(items: tuple[DigestItem, ...]) -> str:
    count = len(items)
    plural = "s" if count > 1 else ""
    late = sum(1 for item in items if item.level == AlertLevel.OVERDUE)
    if late == count:
        return f"{count} carte{plural} d'urgence en retard — date de retour dépassée"
    if late:
        return f"{count} carte{plural} d'urgence à récupérer, dont {late} en retard"
    return f"{count} carte{plural} d'urgence à récupérer"


def _renewal_subject(items: tuple[DigestItem, ...], day: dt.date) -> str:
    count = len(items)
    plural = "s" if count > 1 else ""
    if all(item.level == AlertLevel.EXPIRED for item in items):
        return f"cartes : {count} support{plural} expiré{plural} — à renouveler sans attendre"
    earliest = min(item.order_by for item in items)
    date = french_date(earliest)
    if earliest > day:
        when = f"commande avant le {date}"
    elif earliest == day:
        when = f"commande au plus tard aujourd'hui, {date}"
    else:
        when = f"date limite de commande dépassée ({date})"
    return f"cartes : {count} support{plural} à renouveler — {when}"


def _one_line(value: str) -> str:
    # A header value never spans lines (no header injection from stored data).
    return " ".join(value.split()) if ("\n" in value or "\r" in value) else value


def _now(now: dt.datetime | None) -> dt.datetime:
    instant = now if now is not None else dt.datetime.now(dt.UTC)
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(PARIS)


@dataclass(frozen=True)
class Outgoing:
    """A mail ready to go: its one recipient and its bytes (RFC 5322, CRLF line ends).

    Thousands of digests go out each day: they are written straight to bytes, which costs
    a fraction of what the standard library's message objects and generator cost.
    ``message`` parses those very bytes, for a preview or a test.
    """

    recipient: str
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        # With the line ends the email package works with ("\n"), as if read from a file.
        native = self.raw.replace(b"\r\n", b"\n")
        parsed = BytesParser(policy=email.policy.default).parsebytes(native)
        assert isinstance(parsed, EmailMessage)
        return parsed


_CRLF = b"\r\n"


def _header(name: str, value: str) -> bytes:
    """One header line: as it is when it is short ASCII, else encoded (RFC 2047) and
    folded. Stored data never spans lines (no header injection)."""
    value = _one_line(value)
    if value.isascii() and len(name) + len(value) + 2 <= 78:
        return f"{name}: {value}".encode("ascii") + _CRLF
    return f"{name}: {_encoded_words(value)}".encode("ascii") + _CRLF


# UTF-8 bytes per encoded word: 52 characters of base64, a line of at most 78 once
# folded. (The standard library's Header does the same, at a hundred times the cost.)
_WORD_BYTES = 39


def _encoded_words(value: str) -> str:
    """``value`` as RFC 2047 encoded words (UTF-8, base64), one per folded line, never
    cutting a character in two."""
    words: list[bytes] = []
    current = b""
    for char in value:
        encoded = char.encode("utf-8")
        if len(current) + len(encoded) > _WORD_BYTES:
            words.append(current)
            current = b""
        current += encoded
    words.append(current)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word).decode('ascii')}?=" for word in words)


def _quoted_printable(text: str) -> bytes:
    # 7-bit safe for any server, still readable in the source.
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    return encoded.replace(b"\r\n", b"\n").replace(b"\n", _CRLF)


def _text_part(text: str, subtype: str) -> bytes:
    return (
        _header("Content-Type", f'text/{subtype}; charset="utf-8"')
        + _header("Content-Transfer-Encoding", "quoted-printable")
        + _CRLF
        + _quoted_printable(text)
    )


def _headers(
    *, subject: str, sender: str, recipient: str, now: dt.datetime, message_id: str
) -> bytes:
    return b"".join(
        (
            _header("From", sender),
            _header("To", recipient),
            _header("Subject", subject),
            _header("Date", format_datetime(now)),
            _header("Message-ID", message_id),
            _header("Auto-Submitted", "auto-generated"),
            # Outlook/Exchange: no out-of-office answers to an automatic mail.
            _header("X-Auto-Response-Suppress", "All"),
            _header("Content-Language", "fr"),
            _header("MIME-Version", "1.0"),
        )
    )


def _emergency_intro(
    renewal: tuple[DigestItem, ...], emergency: tuple[DigestItem, ...], renewal_closing: str
) -> tuple[str, str]:
    """The introduction and closing of a digest that lists emergency cards to take back
    (with renewal alerts or without)."""
    count = len(emergency)
    closing = (
        "Une carte d'urgence est une exception : récupérez-la dès que la nouvelle carte "
        "est remise, et enregistrez sa restitution."
    )
    if renewal:
        cards = f"{count} carte{'s' if count > 1 else ''} d'urgence"
        supports = f"{len(renewal)} support{'s' if len(renewal) > 1 else ''} d'accès"
        intro = f"Ci-dessous : {supports} à renouveler, puis {cards} à récupérer."
        return intro, f"{renewal_closing} {closing}"
    if count == 1:
        intro = "La carte d'urgence ci-dessous doit être récupérée auprès de son titulaire :"
    else:
        intro = (
            f"Les {count} cartes d'urgence ci-dessous doivent être récupérées auprès de "
            "leurs titulaires :"
        )
    return intro, closing


def digest_mail(
    digest: DigestContent, *, settings: Settings, now: dt.datetime | None = None
) -> Outgoing:
    """The French e-mail of a digest, ready to send: text and HTML alternatives, the
    digest's Message-ID.

    ``now`` is the Date header (default: the current time); everything else depends on
    the digest and the settings only, so rendering the same digest again gives the same
    mail.
    """
    if not digest.items:
        raise ValueError("a digest without items has nothing to say")
    copy = not digest.for_holder
    greeting = "Bonjour," if copy else f"Bonjour {digest.items[0].holder_name},"
    renewal, emergency = digest.renewal_items, digest.emergency_items
    intro = closing = ""
    if renewal:
        count = len(renewal)
        expired = all(item.level == AlertLevel.EXPIRED for item in renewal)
        if count == 1:
            intro = "Le support d'accès ci-dessous " + (
                "a expiré et doit être renouvelé :" if expired else "doit être renouvelé :"
            )
        else:
            intro = f"Les {count} supports d'accès ci-dessous " + (
                "ont expiré et doivent être renouvelés :"
                if expired
                else "doivent être renouvelés :"
            )
        closing = (
            "Sans support valide, l'accès à la plateforme d'échanges dématérialisés est "
            "impossible : "
            + (
                "commandez le renouvellement sans attendre."
                if expired
                else "commandez le renouvellement avant la date limite."
            )
        )
    if emergency:
        intro, closing = _emergency_intro(renewal, emergency, closing)
    subject = digest_subject(digest)
    context: dict[str, Any] = {
        "subject": subject,
        "greeting": greeting,
        "copy": copy,
        # The copy notice is about renewal alerts: the reminders about emergency cards
        # are the IT service's own business.
        "copy_notice": copy and bool(renewal),
        "intro": intro,
        "closing": closing,
        "day": french_date(digest.day),
        "items": [_item_view(item, digest.day, settings) for item in digest.items],
    }
    environment = _environment()
    text = environment.get_template("digest.txt").render(context)
    html = environment.get_template("digest.html").render(context)
    # Derived from the Message-ID: the same digest renders to the same bytes. It cannot
    # occur in quoted-printable parts, where "=" is always "=3D".
    boundary = "=_" + hashlib.sha256(digest.message_id.encode("utf-8")).hexdigest()[:24]
    separator = f"--{boundary}".encode("ascii")
    raw = b"".join(
        (
            _headers(
                subject=subject,
                sender=settings.smtp.sender,
                recipient=digest.recipient,
                now=_now(now),
                message_id=digest.message_id,
            ),
            _header("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
            _CRLF,
            separator + _CRLF,
            _text_part(text, "plain"),
            _CRLF + separator + _CRLF,
            _text_part(html, "html"),
            _CRLF + separator + b"--" + _CRLF,
        )
    )
    return Outgoing(digest.recipient, raw)


def render_digest(
    digest: DigestContent, *, settings: Settings, now: dt.datetime | None = None
) -> EmailMessage:
    """The e-mail of a digest as a message object (``digest_mail``, parsed back)."""
    return digest_mail(digest, settings=settings, now=now).message


def probe_mail(address: str, *, settings: Settings, now: dt.datetime) -> Outgoing:
    """The short French test mail of ``cartes alertes tester``."""
    smtp = settings.smtp
    instant = _now(now)
    text = (
        _environment()
        .get_template("test.txt")
        .render(
            when=f"{instant:%d/%m/%Y à %H:%M}",
            host=smtp.host,
            port=smtp.port,
            security=SECURITY_LABELS.get(smtp.security, smtp.security),
            sender=smtp.sender,
            auth=f"utilisateur {smtp.user}" if smtp.user else "aucune",
        )
    )
    domain = smtp.sender.rpartition("@")[2] or "localhost"
    raw = _headers(
        subject="cartes : courriel d'essai",
        sender=smtp.sender,
        recipient=address,
        now=instant,
        message_id=make_msgid("cartes-essai", domain=_one_line(domain)),
    ) + _text_part(text, "plain")
    return Outgoing(address.strip(), raw)


def render_test(address: str, *, settings: Settings, now: dt.datetime) -> EmailMessage:
    """The test mail as a message object (``probe_mail``, parsed back)."""
    return probe_mail(address, settings=settings, now=now).message


def write_eml(message: EmailMessage | Outgoing, path: Path) -> None:
    """Write ``message`` as an ``.eml`` file (what a mail client opens)."""
    path.write_bytes(message.raw if isinstance(message, Outgoing) else message.as_bytes())


# ---------------------------------------------------------------------------------------
# Sending

# The usual reasons a server certificate is refused, and socket errors, in French.
VERIFY_REASONS = {
    "unable to get local issuer": "autorité de certification inconnue",
    "self-signed": "certificat autosigné",
    "self signed": "certificat autosigné",
    "has expired": "certificat expiré",
    "not yet valid": "certificat pas encore valide",
    "hostname mismatch": "le certificat est celui d'un autre nom",
    "ip address mismatch": "le certificat est celui d'une autre adresse",
}
SOCKET_ERRORS = {
    errno.ECONNRESET: "connexion réinitialisée par le serveur",
    errno.ECONNABORTED: "connexion interrompue",
    errno.EPIPE: "connexion rompue",
    errno.ENETUNREACH: "réseau inaccessible",
    errno.EHOSTUNREACH: "hôte inaccessible",
    errno.EHOSTDOWN: "hôte éteint",
    errno.ENETDOWN: "réseau hors service",
}

Outcome = Literal["sent", "temporary", "permanent", "fatal"]

SENT: Outcome = "sent"
TEMPORARY: Outcome = "temporary"
PERMANENT: Outcome = "permanent"
FATAL: Outcome = "fatal"

# A connection left unused this long is checked (NOOP) before it is used again: servers
# close idle sessions after a few minutes.
IDLE_CHECK_S = 10.0
# A server's answer is cut to this length in an error text.
MAX_ANSWER = 300


@dataclass(frozen=True)
class SendResult:
    """What became of one message.

    ``outcome``: ``sent``; ``temporary`` (try again later); ``permanent`` (this message will
    never go, the others can); ``fatal`` (the configuration stops every message: leave them
    all pending). ``error`` is a French text with the server's code and answer, if any.
    ``connection_failed`` says that a temporary failure concerns the server rather than this
    message (unreachable, disconnected): the next messages would likely fail alike.
    """

    outcome: Outcome
    error: str | None = None
    connection_failed: bool = False

    @property
    def sent(self) -> bool:
        return self.outcome == SENT


class _Failure(Exception):
    """Internal: a failure already diagnosed."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.error)
        self.result = result


def address_problem(address: str) -> str | None:
    """Why ``address`` cannot be an envelope address (French), or None when it can."""
    if not address:
        return "adresse vide"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in address):
        return "l'adresse contient un espace ou un caractère de contrôle"
    if address.count("@") != 1:
        return "l'adresse doit contenir un et un seul @"
    local, domain = address.split("@")
    if not local or not domain:
        return "il manque une partie avant ou après le @"
    if any(ch in '"(),:;<>[\\]' for ch in address):
        return "l'adresse contient un caractère interdit"
    if not local.isascii():
        return (
            "caractères accentués ou non ASCII avant le @ : le serveur de messagerie ne peut "
            "pas les transmettre"
        )
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "point mal placé avant le @"
    try:
        ascii_domain = _ascii_domain(domain)
    except UnicodeError:
        return "nom de domaine invalide après le @"
    labels = ascii_domain.split(".")
    if any(not label or label.startswith("-") or label.endswith("-") for label in labels):
        return "nom de domaine invalide après le @"
    return None


def _ascii_domain(domain: str) -> str:
    # An accented domain name travels in its IDNA form (xn--…).
    return domain if domain.isascii() else domain.encode("idna").decode("ascii")


def _envelope_address(address: str) -> str:
    local, domain = address.split("@")
    return f"{local}@{_ascii_domain(domain)}"


def _answer(code: int, response: bytes | str) -> str:
    if isinstance(response, bytes):
        response = response.decode("utf-8", errors="replace")
    text = " ".join(response.split())
    if len(text) > MAX_ANSWER:
        text = text[: MAX_ANSWER - 1] + "…"
    return f"{code} {text}".strip() if code else text


def _where(settings: SmtpSettings | None) -> str:
    return f"{settings.host}:{settings.port}" if settings else "le serveur SMTP"


def _server(settings: SmtpSettings | None) -> str:
    return f"Le serveur SMTP {settings.host}:{settings.port}" if settings else "Le serveur SMTP"


def _tls_hint() -> str:
    return (
        "vérifiez smtp.port et smtp.security (« tls » pour le port 465, « starttls » pour "
        "le port 587)"
    )


def _port_hint(settings: SmtpSettings | None) -> str:
    # A plain client on an implicit-TLS port waits for a greeting that never comes.
    if settings and settings.port == 465 and settings.security != "tls":
        return ' (le port 465 demande en général security = "tls")'
    return ""


def _diagnose(exc: BaseException, settings: SmtpSettings | None) -> SendResult:
    """The outcome and the French text of an exception met while talking to a server."""
    where = _where(settings)
    server = _server(settings)
    if isinstance(exc, _Failure):
        return exc.result
    if isinstance(exc, SettingsError):
        return SendResult(
            FATAL,
            f"{exc.message} : corrigez smtp.password_file (ou donnez le mot de passe dans "
            "smtp.password ou CARTES_SMTP__PASSWORD)",
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, response = next(iter(exc.recipients.values()), (0, b""))
        if 500 <= code < 600:
            return SendResult(
                PERMANENT, f"{_answer(code, response)} (le serveur a refusé le destinataire)"
            )
        return SendResult(
            TEMPORARY,
            f"{_answer(code, response)} (destinataire refusé pour le moment, nouvel essai plus "
            "tard)",
            connection_failed=code == 421,
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        answer = _answer(exc.smtp_code, exc.smtp_error)
        if exc.smtp_code == 530:
            return SendResult(
                FATAL,
                f"{server} exige une authentification ou une connexion chiffrée : vérifiez "
                f"smtp.user et smtp.security ({answer})",
            )
        if exc.smtp_code == 552:
            return SendResult(PERMANENT, f"{answer} (message trop volumineux pour le serveur)")
        if 500 <= exc.smtp_code < 600:
            return SendResult(
                FATAL,
                f"Adresse d'expéditeur {exc.sender} refusée par {where} : vérifiez smtp.sender "
                f"({answer})",
            )
        return SendResult(
            TEMPORARY,
            f"{answer} (expéditeur refusé pour le moment, nouvel essai plus tard)",
            connection_failed=exc.smtp_code == 421,
        )
    if isinstance(exc, smtplib.SMTPDataError):
        answer = _answer(exc.smtp_code, exc.smtp_error)
        if 500 <= exc.smtp_code < 600:
            return SendResult(PERMANENT, f"{answer} (le serveur a refusé le message)")
        return SendResult(
            TEMPORARY,
            f"{answer} (message refusé pour le moment, nouvel essai plus tard)",
            connection_failed=exc.smtp_code == 421,
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        answer = _answer(exc.smtp_code, exc.smtp_error)
        if 400 <= exc.smtp_code < 500:
            return SendResult(
                TEMPORARY,
                f"Authentification SMTP impossible pour le moment sur {where} ({answer})",
                connection_failed=True,
            )
        return SendResult(
            FATAL,
            f"Authentification SMTP refusée par {where} : vérifiez smtp.user et le mot de "
            f"passe ({answer})",
        )
    if isinstance(exc, smtplib.SMTPConnectError):
        answer = _answer(exc.smtp_code, exc.smtp_error)
        if 400 <= exc.smtp_code < 500:
            return SendResult(
                TEMPORARY,
                f"{server} refuse la connexion pour le moment ({answer})",
                connection_failed=True,
            )
        return SendResult(
            FATAL,
            f"{server} refuse la connexion : vérifiez smtp.host et smtp.port ({answer})",
        )
    if isinstance(exc, smtplib.SMTPHeloError):
        answer = _answer(exc.smtp_code, exc.smtp_error)
        if 400 <= exc.smtp_code < 500:
            return SendResult(
                TEMPORARY, f"{server} refuse la salutation ({answer})", connection_failed=True
            )
        return SendResult(FATAL, f"{server} refuse la salutation EHLO/HELO ({answer})")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return SendResult(
            PERMANENT,
            f"{server} ne prend pas en charge ce message ({' '.join(map(str, exc.args))})",
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        answer = _answer(exc.smtp_code, exc.smtp_error)
        if 400 <= exc.smtp_code < 500:
            return SendResult(
                TEMPORARY,
                f"{answer} (refus temporaire de {where}, nouvel essai plus tard)",
                connection_failed=exc.smtp_code == 421,
            )
        return SendResult(PERMANENT, f"{answer} (refusé par {where})")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        detail = " ".join(str(arg) for arg in exc.args)
        timed_out = "timed out" in detail
        delay = f" ({settings.timeout_s:g} s)" if settings else ""
        return SendResult(
            TEMPORARY,
            (
                f"{server} ne répond plus dans le délai imparti{delay}"
                if timed_out
                else f"{server} a coupé la connexion"
            )
            + f" : nouvel essai plus tard{_port_hint(settings)}",
            connection_failed=True,
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or "certificat invalide"
        reason = next(
            (french for english, french in VERIFY_REASONS.items() if english in reason.lower()),
            reason,
        )
        return SendResult(
            FATAL,
            f"Certificat du serveur SMTP {where} refusé ({reason}) : vérifiez smtp.host (le nom "
            "doit être celui du certificat) et les autorités de confiance du système",
        )
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or exc.__class__.__name__
        return SendResult(
            FATAL,
            f"Négociation TLS impossible avec {where} ({reason}) : {_tls_hint()}",
        )
    if isinstance(exc, socket.gaierror):
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            host = settings.host if settings else "?"
            return SendResult(
                FATAL,
                f"Serveur SMTP introuvable : « {host} » n'est pas un nom connu ; vérifiez "
                "smtp.host",
            )
        return SendResult(
            TEMPORARY,
            f"Nom du serveur SMTP {where} impossible à résoudre pour le moment "
            f"({exc.strerror or exc})",
            connection_failed=True,
        )
    if isinstance(exc, ConnectionRefusedError):
        return SendResult(
            TEMPORARY,
            f"Serveur SMTP {where} injoignable (connexion refusée) : nouvel essai plus tard",
            connection_failed=True,
        )
    if isinstance(exc, TimeoutError):
        delay = f" ({settings.timeout_s:g} s)" if settings else ""
        return SendResult(
            TEMPORARY,
            f"{server} ne répond pas dans le délai imparti{delay} : nouvel essai plus tard"
            f"{_port_hint(settings)}",
            connection_failed=True,
        )
    if isinstance(exc, OSError):
        reason = (
            SOCKET_ERRORS.get(exc.errno or 0)
            or exc.strerror
            or errno.errorcode.get(exc.errno or 0, "")
            or exc.__class__.__name__
        )
        return SendResult(
            TEMPORARY,
            f"Connexion au serveur SMTP {where} impossible ou interrompue ({reason}) : nouvel "
            "essai plus tard",
            connection_failed=True,
        )
    if isinstance(exc, UnicodeError | ValueError | LookupError):
        return SendResult(PERMANENT, f"Message impossible à encoder pour l'envoi ({exc})")
    if isinstance(exc, smtplib.SMTPException):
        return SendResult(
            TEMPORARY,
            f"Échange avec le serveur SMTP {where} interrompu ({exc}) : nouvel essai plus tard",
            connection_failed=True,
        )
    return SendResult(
        TEMPORARY,
        f"Erreur inattendue pendant l'envoi ({exc.__class__.__name__}) : nouvel essai plus tard",
        connection_failed=True,
    )


def smtp_problem_text(exc: BaseException, settings: SmtpSettings | None = None) -> str:
    """A French sentence about a failure met while talking to a mail server (what to fix
    when it is a matter of configuration). The password is never part of it."""
    return _diagnose(exc, settings).error or "Erreur SMTP inconnue."


def _scrub(result: SendResult, secrets: list[str]) -> SendResult:
    """``result`` with any of ``secrets`` masked in its text (a server may echo what it
    received)."""
    if result.error is None:
        return result
    text = result.error
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    if text == result.error:
        return result
    return SendResult(result.outcome, text, result.connection_failed)


def _secret_forms(user: str, password: str) -> list[str]:
    # The password as such and as AUTH PLAIN/LOGIN carry it (base64).
    forms = [password]
    for raw in (password, f"\0{user}\0{password}", f"{user}\0{user}\0{password}"):
        forms.append(base64.b64encode(raw.encode("utf-8")).decode("ascii"))
    return sorted(forms, key=len, reverse=True)


class SmtpSender:
    """Sends messages through the configured SMTP server, over one connection opened on the
    first ``send`` and reused; reconnects after a connection-level failure.

    ``with SmtpSender(settings.smtp) as sender: result = sender.send(message)``. Not shared
    between threads. ``ssl_context`` replaces the default one (the system's authorities).
    """

    def __init__(self, settings: SmtpSettings, *, ssl_context: ssl.SSLContext | None = None):
        self.settings = settings
        self._ssl_context = ssl_context
        self._smtp: smtplib.SMTP | None = None
        self._last_used = 0.0
        self.connections = 0  # connections opened so far

    def __repr__(self) -> str:
        return (
            f"SmtpSender({self.settings.host}:{self.settings.port}, {self.settings.security}, "
            f"connecte={self._smtp is not None})"
        )

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._smtp is not None and self._smtp.sock is not None

    def close(self) -> None:
        """Say goodbye to the server (QUIT) and close the connection, if any."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            if smtp.sock is not None:
                smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            smtp.close()

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            with contextlib.suppress(OSError):
                smtp.close()

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        password: str | None = None
        if settings.user:
            try:
                password = settings.secret()
            except SettingsError as exc:
                raise _Failure(_diagnose(exc, settings)) from None
            if password is None:
                raise _Failure(
                    SendResult(
                        FATAL,
                        "smtp.user est renseigné mais aucun mot de passe n'est donné : "
                        "renseignez smtp.password, CARTES_SMTP__PASSWORD ou smtp.password_file",
                    )
                )
        secrets = _secret_forms(settings.user or "", password) if password else []
        smtp: smtplib.SMTP | None = None
        try:
            if settings.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    settings.host,
                    settings.port,
                    timeout=settings.timeout_s,
                    context=self._context(),
                )
            else:
                smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
            smtp.ehlo()
            if settings.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise _Failure(
                        SendResult(
                            FATAL,
                            f"{_server(settings)} ne propose pas STARTTLS : "
                            f'{_tls_hint()}, ou security = "none" si le serveur '
                            "n'offre aucun chiffrement",
                        )
                    )
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if settings.user and password is not None:
                if not smtp.has_extn("auth"):
                    raise _Failure(
                        SendResult(
                            FATAL,
                            f"{_server(settings)} ne propose pas l'authentification (AUTH) : "
                            "retirez smtp.user, ou activez le chiffrement (security = "
                            '"starttls" ou "tls") si le serveur ne l\'offre qu\'après',
                        )
                    )
                try:
                    smtp.login(settings.user, password)
                finally:
                    # smtplib keeps them for its AUTH callbacks only: do not keep them longer.
                    smtp.password = ""
                    password = None
        except _Failure as failure:
            if smtp is not None:
                smtp.close()
            raise _Failure(_scrub(failure.result, secrets)) from None
        except (OSError, ValueError) as exc:  # smtplib's and ssl's errors are OSError
            if smtp is not None:
                smtp.close()
            if type(exc) is smtplib.SMTPException:
                # smtplib's own complaints (no common AUTH mechanism…): configuration.
                result = SendResult(
                    FATAL,
                    f"Échange impossible avec {_where(settings)} ({exc}) : vérifiez "
                    "smtp.security et smtp.user",
                )
            else:
                result = _diagnose(exc, settings)
                if result.outcome == PERMANENT:
                    # Refused before any message: it concerns them all.
                    result = SendResult(FATAL, result.error)
            raise _Failure(_scrub(result, secrets)) from None
        self.connections += 1
        log.debug("connexion SMTP ouverte vers %s:%s", settings.host, settings.port)
        return smtp

    def _connection(self) -> smtplib.SMTP:
        smtp = self._smtp
        if smtp is not None and smtp.sock is None:
            self._drop()
            smtp = None
        if smtp is not None and time.monotonic() - self._last_used > IDLE_CHECK_S:
            try:
                code, _ = smtp.noop()
            except (smtplib.SMTPException, OSError):
                code = 0
            if code != 250:
                self._drop()
                smtp = None
        if smtp is None:
            smtp = self._smtp = self._connect()
        return smtp

    def send(self, message: Outgoing | EmailMessage) -> SendResult:
        """Send ``message`` to its To address (the only envelope recipient), from
        ``smtp.sender``; never raises for a mail problem, tells it in the result."""
        settings = self.settings
        if isinstance(message, Outgoing):
            raw_to, raw = message.recipient, message.raw
        else:
            raw_to = str(message.get("To", "") or "").strip()
            raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
        recipient = parseaddr(raw_to)[1] if "<" in raw_to else raw_to
        problem = address_problem(recipient)
        if problem is not None:
            return SendResult(
                PERMANENT, f"Adresse du destinataire invalide « {raw_to} » : {problem}"
            )
        problem = address_problem(settings.sender)
        if problem is not None:
            return SendResult(
                FATAL,
                f"Adresse d'expéditeur invalide « {settings.sender} » : {problem} ; corrigez "
                "smtp.sender",
            )
        try:
            smtp = self._connection()
        except _Failure as failure:
            return failure.result
        try:
            smtp.sendmail(_envelope_address(settings.sender), [_envelope_address(recipient)], raw)
        except Exception as exc:  # every failure becomes a result, never an exception
            result = _diagnose(exc, settings)
            if result.connection_failed or smtp.sock is None:
                self._drop()
            else:
                self._last_used = time.monotonic()
            return result
        self._last_used = time.monotonic()
        return SendResult(SENT)
