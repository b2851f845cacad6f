"""Renewal alerts (DESIGN §4): which are due, writing them to the outbox, muting.

Levels, for a credential in service that is not replaced yet, with expiry E, the lead time
L of its kind, the safety margin M and the order-by date E − L − M:

- ``TO_PLAN`` from ``to_plan_days`` before the order-by date;
- ``ORDER_NOW`` from the order-by date;
- ``GAP`` once a replacement ordered today would arrive after E (fewer than L days left);
- ``EXPIRED`` the day after E, then every ``expired_every_days``, ``expired_times`` times
  (occurrences 0, 1, 2...).

On a given day only the highest level that applies is due: a credential first seen late
gets the alert that matters now, not the whole history. An emergency card gets none of
these (the IT service is reminded to take it back: ``inventaire.emergency``). A
replacement requested or received stops every level but ``EXPIRED``; an active replacement,
or a mute, stops all.

``due_level`` says it in Python; ``plan_alerts`` does the same in one SQL statement over
the whole inventory (a test keeps the two in agreement), so that a million credentials are
planned without loading them: only what is due becomes rows. Each (credential, level,
recipient, occurrence) is inserted at most once, whoever plans it and however often: a
unique constraint says so, and inserts that would repeat one are skipped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from inventaire import journal
from inventaire.dbapi import days_between_sql
from inventaire.enums import AlertLevel, CredentialKind, CredentialState, DigestState
from inventaire.errors import InvalidValue, NotFound
from inventaire.lifecycle import IN_SERVICE, PENDING
from inventaire.models import Alert, AlertMute, Credential, Digest, Operator, OperatorRole
from inventaire.operators import check_role

# Pure rules, in ``renewal`` for the read paths without SQLAlchemy; still found here.
from inventaire.renewal import AlertPolicy, due_level  # noqa: F401

L = AlertLevel

# Replacements by state: one in these stops the reminders to order...
ORDERED = PENDING
# ...one in these has replaced the credential, which leaves the plan.
REPLACED = IN_SERVICE


def _by_kind(name: str, kinds: list[CredentialKind]) -> str:
    branches = " ".join(f"WHEN '{kind.value}' THEN :{name}_{kind.value}" for kind in kinds)
    return f"CASE c.kind {branches} END"


def _states(states: frozenset[CredentialState]) -> str:
    return ", ".join(f"'{state.value}'" for state in sorted(states))


def _planning_sql(
    dialect: str, policy: AlertPolicy, today: dt.date
) -> tuple[str, dict[str, Any], list[str]]:
    """The statement that inserts every due alert, its parameters, and the names of its
    date parameters."""
    kinds = list(policy.lead_days)
    params: dict[str, Any] = {"today": today}
    dates = ["today", "low"]
    horizon = policy.to_plan_days + policy.margin_days
    for kind in kinds:
        lead = policy.lead_days[kind]
        params[f"gap_{kind.value}"] = today + dt.timedelta(days=lead)
        params[f"order_{kind.value}"] = today + dt.timedelta(days=lead + policy.margin_days)
        params[f"high_{kind.value}"] = today + dt.timedelta(days=lead + horizon)
        dates += [f"gap_{kind.value}", f"order_{kind.value}", f"high_{kind.value}"]
    params["low"] = today - dt.timedelta(days=policy.expired_every_days * policy.expired_times)
    params["high"] = max((params[f"high_{kind.value}"] for kind in kinds), default=today)
    params["every"] = policy.expired_every_days
    dates.append("high")
    kind_list = ", ".join(f"'{kind.value}'" for kind in kinds) or "''"

    copies = [
        (kind, address) for kind in kinds for address in sorted(set(policy.copies.get(kind, ())))
    ]
    copies_cte = ""
    copies_select = ""
    if copies:
        rows = []
        for index, (kind, address) in enumerate(copies):
            params[f"copy_kind_{index}"] = kind.value
            params[f"copy_to_{index}"] = address
            rows.append(f"(:copy_kind_{index}, :copy_to_{index})")
        cast = "" if dialect == "sqlite" else "::varchar"
        copies_cte = f""",
copies (kind, recipient) AS (VALUES {", ".join(rows)})"""
        copies_select = f"""
  UNION ALL
  SELECT d.credential_id, d.level, cp.recipient{cast}, d.occurrence
  FROM due d JOIN copies cp ON cp.kind{cast} = d.kind"""
    days_since = days_between_sql(dialect, ":today", "c.expires_on")
    # INSERT first, then its query: drivers count the rows of a statement that starts so.
    sql = f"""
INSERT INTO alert (credential_id, level, recipient, occurrence, due_on, created_at)
WITH candidates AS (
  SELECT c.id AS credential_id, c.holder_id AS holder_id, c.kind AS kind,
    CASE
      WHEN c.expires_on < :today THEN '{L.EXPIRED.value}'
      WHEN c.expires_on < {_by_kind("gap", kinds)} THEN '{L.GAP.value}'
      WHEN c.expires_on <= {_by_kind("order", kinds)} THEN '{L.ORDER_NOW.value}'
      ELSE '{L.TO_PLAN.value}'
    END AS level,
    CASE WHEN c.expires_on < :today THEN ({days_since} - 1) / :every ELSE 0 END AS occurrence
  FROM credential c
  WHERE c.expires_on >= :low AND c.expires_on <= :high
    AND c.kind IN ({kind_list})
    AND c.expires_on <= {_by_kind("high", kinds)}
    AND c.state IN ({_states(IN_SERVICE)})
    AND NOT EXISTS (SELECT 1 FROM alert_mute m WHERE m.credential_id = c.id)
    AND NOT EXISTS (
      SELECT 1 FROM credential r
      WHERE r.replaces_id = c.id AND r.state IN ({_states(REPLACED)}))
    AND (c.expires_on < :today OR NOT EXISTS (
      SELECT 1 FROM credential r
      WHERE r.replaces_id = c.id AND r.state IN ({_states(ORDERED)})))
),
due AS (
  SELECT * FROM candidates d WHERE NOT EXISTS (
    SELECT 1 FROM alert a
    WHERE a.credential_id = d.credential_id AND a.level = d.level
      AND a.occurrence = d.occurrence)
  -- An emergency card is a bridge: the IT service is reminded to take it back instead.
  AND NOT EXISTS (SELECT 1 FROM credential e WHERE e.id = d.credential_id AND e.emergency)
){copies_cte},
recipients AS (
  SELECT d.credential_id, d.level, h.email AS recipient, d.occurrence
  FROM due d JOIN holder h ON h.id = d.holder_id
  WHERE h.active{copies_select}
)
SELECT credential_id, level, recipient, occurrence, :today, :now FROM recipients WHERE 1 = 1
ON CONFLICT (credential_id, level, recipient, occurrence) DO NOTHING
"""
    return sql, params, dates


def _text(sql: str, dates: list[str], instants: list[str]) -> sa.TextClause:
    """``sql`` with typed parameters, so that each database gets its own date format."""
    binds = [sa.bindparam(name, type_=sa.Date()) for name in dates]
    binds += [sa.bindparam(name, type_=sa.DateTime(timezone=True)) for name in instants]
    return sa.text(sql).bindparams(*binds)


@dataclass(frozen=True)
class Planned:
    """What one planning wrote to the outbox."""

    alerts: int  # new alerts
    digests: int  # new digests (recipients who had no digest waiting)


def plan_alerts(
    session: Session,
    *,
    policy: AlertPolicy,
    now: dt.datetime,
    today: dt.date,
    message_domain: str,
) -> Planned:
    """Write every alert due ``today`` to the outbox and group the new ones into digests,
    in the caller's transaction.

    A recipient's new alerts join the digest already waiting for them, if any (a digest
    held back by a failure goes out with everything due since), else a new digest, whose
    Message-ID ``<cartes.RANDOM@message_domain>`` is fixed now.

    What was already planned is left out before recipients are looked up (it is most of
    the candidates on a daily run): a copy address added to the settings, or a holder
    made active again, gets the levels still to come, not one already sent to others.
    """
    # On the connection: its results tell how many rows a statement wrote.
    connection = session.connection()
    sql, params, dates = _planning_sql(connection.dialect.name, policy, today)
    inserted = connection.execute(_text(sql, dates, ["now"]), {**params, "now": now}).rowcount
    digests = group_into_digests(session, now=now, message_domain=message_domain)
    return Planned(alerts=max(inserted, 0), digests=digests)


def group_into_digests(session: Session, *, now: dt.datetime, message_domain: str) -> int:
    """Attach every alert not yet in a digest to its recipient's waiting digest, or to a
    new one whose Message-ID ``<cartes.RANDOM@message_domain>`` is fixed now; return how
    many digests were created. Whoever writes alerts to the outbox calls this in the
    same transaction."""
    connection = session.connection()
    pending = DigestState.PENDING.value
    if connection.dialect.name == "sqlite":
        unique = "lower(hex(randomblob(8)))"
    else:
        unique = "substr(md5(random()::text || clock_timestamp()::text), 1, 16)"
    digests = connection.execute(
        _text(
            f"""
INSERT INTO digest (recipient, state, message_id, attempts, next_attempt_at, created_at)
SELECT recipient, '{pending}', :prefix || {unique} || :suffix, 0, :now, :now
FROM (SELECT DISTINCT a.recipient FROM alert a
      WHERE a.digest_id IS NULL AND NOT EXISTS (
        SELECT 1 FROM digest d WHERE d.recipient = a.recipient AND d.state = '{pending}')
     ) AS recipients
""",
            [],
            ["now"],
        ),
        {"now": now, "prefix": "<cartes.", "suffix": f"@{message_domain}>"},
    ).rowcount
    connection.execute(
        sa.text(
            f"""
UPDATE alert SET digest_id = (
  SELECT min(d.id) FROM digest d WHERE d.recipient = alert.recipient AND d.state = '{pending}')
WHERE digest_id IS NULL
"""
        )
    )
    return max(digests, 0)


def mute(
    session: Session,
    *,
    credential_id: int,
    operator: Operator,
    reason: str,
    now: dt.datetime,
) -> AlertMute:
    """Silence every alert of a credential, with a reason (journaled). Muting again
    replaces the reason."""
    check_role(operator, OperatorRole.MANAGER)
    reason = reason.strip()
    if not reason:
        raise InvalidValue("motif_obligatoire")
    if session.get(Credential, credential_id) is None:
        raise NotFound("support_introuvable", id=credential_id)
    existing = session.get(AlertMute, credential_id)
    before = {"muted": True, "reason": existing.reason} if existing else {"muted": False}
    row = existing or AlertMute(
        credential_id=credential_id, reason=reason, operator="", muted_at=now
    )
    row.reason, row.operator, row.muted_at = reason, operator.login, now
    session.add(row)
    session.flush()
    journal.record(
        session,
        operator=operator.login,
        now=now,
        action="support.alertes_coupees",
        entity_type="credential",
        entity_id=credential_id,
        reason=reason,
        before=before,
        after={"muted": True, "reason": reason},
    )
    return row


def unmute(
    session: Session,
    *,
    credential_id: int,
    operator: Operator,
    now: dt.datetime,
    reason: str | None = None,
) -> None:
    """Let the alerts of a muted credential go again (journaled, with ``reason`` if
    any)."""
    check_role(operator, OperatorRole.MANAGER)
    if session.get(Credential, credential_id) is None:
        raise NotFound("support_introuvable", id=credential_id)
    existing = session.get(AlertMute, credential_id)
    if existing is None:
        raise InvalidValue("alertes_non_coupees", id=credential_id)
    before = {"muted": True, "reason": existing.reason}
    session.delete(existing)
    session.flush()
    journal.record(
        session,
        operator=operator.login,
        now=now,
        action="support.alertes_retablies",
        entity_type="credential",
        entity_id=credential_id,
        reason=(reason or "").strip() or None,
        before=before,
        after={"muted": False},
    )


@dataclass(frozen=True)
class AlertLine:
    """One alert of the outbox as listed, with the state of its digest."""

    id: int
    credential_id: int
    level: AlertLevel
    occurrence: int
    recipient: str
    state: DigestState
    due_on: dt.date
    sent_at: dt.datetime | None
    attempts: int
    last_error: str | None
    message_id: str | None


def list_alerts(
    session: Session,
    *,
    states: tuple[DigestState, ...] = (),
    recipient: str | None = None,
    limit: int | None = 200,
) -> list[AlertLine]:
    """Alerts of the outbox, the newest first."""
    a, d = Alert.__table__, Digest.__table__  # type: ignore[attr-defined]
    query = sa.select(
        a.c.id,
        a.c.credential_id,
        a.c.level,
        a.c.occurrence,
        a.c.recipient,
        d.c.state,
        a.c.due_on,
        d.c.sent_at,
        d.c.attempts,
        d.c.last_error,
        d.c.message_id,
    ).join(d, d.c.id == a.c.digest_id)
    if states:
        query = query.where(d.c.state.in_([state.value for state in states]))
    if recipient:
        query = query.where(a.c.recipient == recipient.strip().lower())
    query = query.order_by(a.c.id.desc())
    if limit:
        query = query.limit(limit)
    return [
        AlertLine(
            id=row.id,
            credential_id=row.credential_id,
            level=AlertLevel(row.level),
            occurrence=row.occurrence,
            recipient=row.recipient,
            state=DigestState(row.state),
            due_on=row.due_on,
            sent_at=row.sent_at,
            attempts=row.attempts,
            last_error=row.last_error,
            message_id=row.message_id,
        )
        for row in session.execute(query)
    ]
