"""alerts outbox, mutes, service lease and runs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

The outbox of renewal alerts (``alert``, one row per credential, level, recipient and
occurrence, grouped into ``digest`` e-mails), the credentials whose alerts are muted, the
lease that keeps a second service from sending, and the record of the service's runs. An
index on ``credential.replaces_id`` serves the renewal plan.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "digest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("state", sa.String(length=7), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _instant("next_attempt_at"),
        _instant("claimed_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _instant("created_at"),
        _instant("sent_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest")),
        sa.UniqueConstraint("message_id", name=op.f("uq_digest_message_id")),
    )
    with op.batch_alter_table("digest", schema=None) as batch_op:
        batch_op.create_index("ix_digest_recipient_state", ["recipient", "state"], unique=False)
        batch_op.create_index(
            "ix_digest_state_next_attempt_at", ["state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "service_lease",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        _instant("acquired_at"),
        _instant("expires_at"),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_lease")),
    )
    op.create_table(
        "service_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        _instant("started_at"),
        _instant("finished_at", nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("journal_seq", sa.Integer(), nullable=True),
        sa.Column("journal_hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_run")),
    )
    with op.batch_alter_table("service_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_run_started_at"), ["started_at"], unique=False)

    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=9), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("digest_id", sa.Integer(), nullable=True),
        _instant("created_at"),
        sa.ForeignKeyConstraint(
            ["credential_id"], ["credential.id"], name=op.f("fk_alert_credential_id_credential")
        ),
        sa.ForeignKeyConstraint(
            ["digest_id"], ["digest.id"], name=op.f("fk_alert_digest_id_digest")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
        sa.UniqueConstraint(
            "credential_id",
            "level",
            "recipient",
            "occurrence",
            name=op.f("uq_alert_credential_id_level_recipient_occurrence"),
        ),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_digest_id"), ["digest_id"], unique=False)

    op.create_table(
        "alert_mute",
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        _instant("muted_at"),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credential.id"],
            name=op.f("fk_alert_mute_credential_id_credential"),
        ),
        sa.PrimaryKeyConstraint("credential_id", name=op.f("pk_alert_mute")),
    )
    with op.batch_alter_table("credential", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_credential_replaces_id"), ["replaces_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("credential", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credential_replaces_id"))
    op.drop_table("alert_mute")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_digest_id"))
    op.drop_table("alert")
    with op.batch_alter_table("service_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_run_started_at"))
    op.drop_table("service_run")
    op.drop_table("service_lease")
    with op.batch_alter_table("digest", schema=None) as batch_op:
        batch_op.drop_index("ix_digest_state_next_attempt_at")
        batch_op.drop_index("ix_digest_recipient_state")
    op.drop_table("digest")
