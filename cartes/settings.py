"""Settings: a TOML file, overridden by ``CARTES_*`` environment variables.

The file is ``--config FILE``, else ``$CARTES_CONFIG``, else ``cartes.toml`` in the user's
configuration folder (it may be absent). Nested values use ``__`` in variable names:
``CARTES_SMTP__HOST``; top-level ones do not: ``CARTES_DATABASE_URL``. Secrets are
``SecretStr``: masked whenever settings are shown.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cartes import locations
from inventaire.enums import CredentialKind


class SmtpSettings(BaseModel):
    """The mail server the alerts go through. The password comes from ``password``
    (``CARTES_SMTP__PASSWORD``) or from ``password_file``; it is never shown or logged."""

    model_config = ConfigDict(extra="forbid")

    host: str = "localhost"
    port: int = Field(default=25, ge=1, le=65535)
    # "tls": implicit TLS (port 465); "starttls": plain connection upgraded (port 587).
    security: Literal["none", "starttls", "tls"] = "none"
    user: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    sender: str = "cartes@localhost"
    timeout_s: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "starttls" in data:
            raise ValueError(
                'smtp.starttls n\'existe plus : écrivez security = "starttls" (ou "tls", ou "none")'
            )
        return data

    def secret(self) -> str | None:
        """The password, read from the settings or from ``password_file`` at the moment
        it is needed (``SettingsError`` if the file cannot be read)."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is None:
            return None
        try:
            return self.password_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            detail = getattr(exc, "strerror", None) or "contenu illisible"
            raise SettingsError(
                f"Fichier du mot de passe SMTP illisible : {self.password_file} ({detail})"
            ) from None


class RenewalSettings(BaseModel):
    """Renewal lead times in days per kind of credential (DESIGN §4)."""

    model_config = ConfigDict(extra="forbid")

    rpva_key_days: int = Field(default=45, ge=0)
    agent_card_days: int = Field(default=60, ge=0)
    expert_card_days: int = Field(default=30, ge=0)
    temporary_card_days: int = Field(default=15, ge=0)
    safety_margin_days: int = Field(default=15, ge=0)

    def lead_days(self) -> dict[CredentialKind, int]:
        """The lead time of each kind of credential, in days."""
        return {
            CredentialKind.AGENT_CARD: self.agent_card_days,
            CredentialKind.EXPERT_CARD: self.expert_card_days,
            CredentialKind.RPVA_KEY: self.rpva_key_days,
            CredentialKind.TEMPORARY_CARD: self.temporary_card_days,
        }


class TrustSettings(BaseModel):
    """Trust anchors per kind of credential, shared intermediates, CRLs (DESIGN §6).

    Each list names PEM/DER files or folders of them.
    """

    model_config = ConfigDict(extra="forbid")

    agent_card: list[Path] = Field(default_factory=list)
    expert_card: list[Path] = Field(default_factory=list)
    rpva_key: list[Path] = Field(default_factory=list)
    temporary_card: list[Path] = Field(default_factory=list)
    intermediates: list[Path] = Field(default_factory=list)
    crls: list[Path] = Field(default_factory=list)
    crl_cache_dir: Path = Field(default_factory=lambda: locations.data_dir() / "lcr")
    # Fetch CRLs from distribution points and ask OCSP responders (with the timeout).
    network: bool = False
    timeout_s: float = Field(default=5.0, gt=0, le=60)


class ReaderSettings(BaseModel):
    """PKCS#11 modules of the card middleware (DESIGN §5); several may be used at once.
    Empty: OpenSC's ``opensc-pkcs11.so`` when it is installed."""

    model_config = ConfigDict(extra="forbid")

    modules: list[str] = Field(default_factory=list)
    # Configuration of SoftHSM2 software tokens (tests, demonstration): set as
    # SOFTHSM2_CONF for the modules, when the environment does not set it already.
    softhsm2_conf: Path | None = None


class KindAddresses(BaseModel):
    """E-mail addresses per kind of credential."""

    model_config = ConfigDict(extra="forbid")

    agent_card: list[str] = Field(default_factory=list)
    expert_card: list[str] = Field(default_factory=list)
    rpva_key: list[str] = Field(default_factory=list)
    temporary_card: list[str] = Field(default_factory=list)

    def of(self, kind: CredentialKind) -> list[str]:
        """The addresses for ``kind`` (fields are named after the kinds, in lower case)."""
        addresses: list[str] = getattr(self, kind.value.lower())
        return addresses


class KindInstructions(BaseModel):
    """What a holder must do to renew, per kind of credential: a sentence of the e-mail."""

    model_config = ConfigDict(extra="forbid")

    agent_card: str = (
        "Contactez le SAR de la cour d'appel pour commander votre nouvelle carte agent."
    )
    expert_card: str = (
        "Commandez le renouvellement de votre carte auprès de CertEurope, puis prévenez "
        "la compagnie des experts."
    )
    rpva_key: str = (
        "Commandez le renouvellement de votre clé RPVA auprès de votre ordre (comptez "
        "environ 45 jours de délai)."
    )
    temporary_card: str = "Contactez le greffe qui suit votre procédure."

    def of(self, kind: CredentialKind) -> str:
        """The sentence for ``kind`` (fields are named after the kinds, in lower case)."""
        sentence: str = getattr(self, kind.value.lower())
        return sentence


class AlertSettings(BaseModel):
    """When renewal alerts are due (offsets in days) and who gets a copy (DESIGN §4)."""

    model_config = ConfigDict(extra="forbid")

    # a_prevoir: this many days before the order-by date.
    to_plan_days: int = Field(default=30, ge=1, le=365)
    # expire: after expiry, every so many days, so many times.
    expired_every_days: int = Field(default=7, ge=1, le=365)
    expired_times: int = Field(default=8, ge=0, le=100)
    # A digest left "sending" by a crash is sent again after this many seconds.
    resend_after_s: float = Field(default=900.0, gt=0)
    # Backoff after a temporary failure: first delay, doubled at each attempt, capped.
    retry_first_s: float = Field(default=60.0, gt=0)
    retry_max_s: float = Field(default=3600.0, gt=0)
    copies: KindAddresses = Field(default_factory=KindAddresses)
    instructions: KindInstructions = Field(default_factory=KindInstructions)


class EmergencySettings(BaseModel):
    """Old-model agent cards handed out in emergency."""

    model_config = ConfigDict(extra="forbid")

    # The planned return date, when the issuance does not give one.
    return_after_days: int = Field(default=90, ge=1, le=3650)
    # Who gets the IT service's digest of cards to take back and overdue ones (empty: the
    # copies of agent cards, [alerts.copies] agent_card).
    notify: list[str] = Field(default_factory=list)


class ServiceSettings(BaseModel):
    """The backing service (``cartes service``)."""

    model_config = ConfigDict(extra="forbid")

    # Time of the daily cycle, Europe/Paris, HH:MM.
    daily_at: str = "06:30"
    # The lease that keeps a second instance from sending, renewed while running.
    lease_s: float = Field(default=120.0, ge=2, le=3600)
    # How often the service looks for digests due again (retries after a failure).
    poll_s: float = Field(default=60.0, gt=0, le=3600)
    # Stored certificates whose last validation is older than this are validated again.
    revalidate_after_h: float = Field(default=24.0, gt=0)

    @field_validator("daily_at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        parse_daily_at(value)
        return value


class RetentionSettings(BaseModel):
    """How long a holder's personal data is kept once none of their credentials is in
    service (README, « Données personnelles »)."""

    model_config = ConfigDict(extra="forbid")

    # Years after the end of the holder's last credential; then the data is anonymised.
    years: int = Field(default=5, ge=1, le=100)


class WebSettings(BaseModel):
    """The lawyers' status page (``cartes web``), served behind nginx, and the monitoring
    metrics beside it (README, « Page d'état des clés »)."""

    model_config = ConfigDict(extra="forbid")

    # Where nginx reaches the page: a Unix socket (preferred), else a loopback port.
    socket: Path | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    # The shared secret nginx sends in X-Cartes-Jeton (``cartes web jeton`` writes it).
    secret_file: Path = Field(default_factory=lambda: locations.data_dir() / "web-jeton")
    # Prometheus metrics, on loopback only, never through nginx.
    metrics_port: int = Field(default=9464, ge=1, le=65535)
    metrics_cache_s: float = Field(default=60.0, gt=0, le=3600)
    # How often the page looks for revocation lists the service refreshed on disk.
    crl_check_s: float = Field(default=30.0, gt=0, le=3600)


def parse_daily_at(value: str) -> dt.time:
    """``HH:MM`` (24 h) as a time; ``ValueError`` with a French message otherwise."""
    try:
        hours, minutes = value.strip().split(":")
        if len(minutes) != 2 or not hours.isdigit() or not minutes.isdigit():
            raise ValueError(value)
        return dt.time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"heure invalide « {value} » : HH:MM attendu, par exemple 06:30") from None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CARTES_", env_nested_delimiter="__", extra="forbid"
    )

    database_url: str = Field(default_factory=locations.default_database_url)
    # How long a writer waits for another one before giving up (SQLite busy timeout,
    # PostgreSQL lock timeout).
    busy_timeout_s: float = Field(default=5.0, gt=0, le=600)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    renewal: RenewalSettings = Field(default_factory=RenewalSettings)
    trust: TrustSettings = Field(default_factory=TrustSettings)
    readers: ReaderSettings = Field(default_factory=ReaderSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    emergency: EmergencySettings = Field(default_factory=EmergencySettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init values (see ``load``): the environment wins over it.
        return (env_settings, init_settings)


class SettingsError(Exception):
    """The settings file or variables are not acceptable; ``message`` is French."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    source: Path | None  # the file read, if any


def config_path(explicit: Path | None, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The settings file to read, and whether the user named it (then it must exist)."""
    if explicit is not None:
        return explicit, True
    if environ.get("CARTES_CONFIG"):
        return Path(environ["CARTES_CONFIG"]), True
    return locations.config_file(), False


def load(explicit: Path | None = None, environ: Mapping[str, str] | None = None) -> LoadedSettings:
    """Read the settings; raise ``SettingsError`` with a French message when they are bad."""
    environ = os.environ if environ is None else environ
    path, named = config_path(explicit, environ)
    data: dict[str, Any] = {}
    source: Path | None = None
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"Fichier de configuration {path} illisible : {exc}") from exc
        source = path
    elif named:
        raise SettingsError(f"Fichier de configuration introuvable : {path}")
    try:
        return LoadedSettings(Settings(**data), source)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '?'} : {_french(error)}"
            for error in exc.errors()
        )
        where = f" ({path})" if source else ""
        raise SettingsError(f"Configuration invalide{where} : {problems}") from None


def _french(error: Any) -> str:
    kind = error.get("type", "")
    # The bound pydantic names, so that the message says what would be accepted.
    limits = error.get("ctx", {})
    return {
        "extra_forbidden": "paramètre inconnu",
        "missing": "valeur manquante",
        "int_parsing": "nombre entier attendu",
        "int_from_float": "nombre entier attendu",
        "float_parsing": "nombre attendu",
        "bool_parsing": "booléen attendu (true ou false)",
        "greater_than": "valeur trop petite (plus de {} attendu)".format(limits.get("gt")),
        "greater_than_equal": "valeur trop petite (au moins {} attendu)".format(limits.get("ge")),
        "less_than": "valeur trop grande (moins de {} attendu)".format(limits.get("lt")),
        "less_than_equal": "valeur trop grande (au plus {} attendu)".format(limits.get("le")),
        "string_type": "texte attendu",
        "literal_error": "valeur non prévue ({})".format(error.get("ctx", {}).get("expected", "")),
        "value_error": str(error.get("ctx", {}).get("error", "valeur invalide")),
    }.get(kind, "valeur invalide")


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data, secrets masked (and passwords in URLs)."""
    data = settings.model_dump(mode="json")
    data["database_url"] = mask_url(settings.database_url)
    return data


def mask_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url
