"""The domain's enumerations, stored by name (standard library only: cheap to import)."""

from __future__ import annotations

from enum import StrEnum


class OrganisationType(StrEnum):
    COURT_OF_APPEAL = "COURT_OF_APPEAL"
    JUDICIAL_COURT = "JUDICIAL_COURT"
    BAR = "BAR"
    EXPERTS = "EXPERTS"
    IT_SERVICE = "IT_SERVICE"
    OTHER = "OTHER"


class HolderRole(StrEnum):
    MAGISTRATE = "MAGISTRATE"
    CLERK = "CLERK"
    CLERK_DIRECTOR = "CLERK_DIRECTOR"
    AGENT = "AGENT"
    EXPERT = "EXPERT"
    LAWYER = "LAWYER"
    PARTY = "PARTY"
    CONTRIBUTOR = "CONTRIBUTOR"


class CredentialKind(StrEnum):
    AGENT_CARD = "AGENT_CARD"
    EXPERT_CARD = "EXPERT_CARD"
    RPVA_KEY = "RPVA_KEY"
    TEMPORARY_CARD = "TEMPORARY_CARD"


class CardModel(StrEnum):
    OLD = "OLD"
    NEW = "NEW"


class CredentialState(StrEnum):
    REQUESTED = "REQUESTED"
    RECEIVED = "RECEIVED"
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    LOST = "LOST"
    DAMAGED = "DAMAGED"
    RETURNED = "RETURNED"
    REVOKED = "REVOKED"
    CANCELLED = "CANCELLED"


class OperatorRole(StrEnum):
    READER = "READER"
    MANAGER = "MANAGER"
    ISSUER = "ISSUER"
    ADMIN = "ADMIN"


class CertificateRole(StrEnum):
    AUTHENTICATION = "AUTHENTICATION"
    SIGNATURE = "SIGNATURE"


class AlertLevel(StrEnum):
    """How urgent a renewal alert is (DESIGN §4), from the least to the most."""

    TO_PLAN = "TO_PLAN"  # the order-by date is near
    ORDER_NOW = "ORDER_NOW"  # the order-by date is reached
    GAP = "GAP"  # a gap is now certain and nothing is ordered
    EXPIRED = "EXPIRED"  # expired, repeated weekly for a while
    # Emergency old-model cards, for the IT service (DESIGN §1):
    TO_RETURN = "TO_RETURN"  # the new card it bridges was handed over: take it back
    OVERDUE = "OVERDUE"  # its planned return date has passed


class DigestState(StrEnum):
    """Where an e-mail digest of the outbox stands; its alerts share its state."""

    PENDING = "PENDING"
    SENDING = "SENDING"
    SENT = "SENT"
    FAILED = "FAILED"
