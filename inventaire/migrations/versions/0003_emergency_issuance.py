"""emergency issuance register

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27

The register of old-model agent cards handed out in emergency: to whom, by whom, why,
which pending new-model request each bridges, when it must come back and when it did.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "emergency_issuance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("issued_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("return_due_on", sa.Date(), nullable=False),
        sa.Column("returned_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credential.id"],
            name=op.f("fk_emergency_issuance_credential_id_credential"),
        ),
        sa.ForeignKeyConstraint(
            ["holder_id"], ["holder.id"], name=op.f("fk_emergency_issuance_holder_id_holder")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["credential.id"],
            name=op.f("fk_emergency_issuance_request_id_credential"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_issuance")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_emergency_issuance_credential_id")),
    )
    with op.batch_alter_table("emergency_issuance", schema=None) as batch_op:
        for column in ("holder_id", "request_id", "returned_on"):
            batch_op.create_index(
                batch_op.f(f"ix_emergency_issuance_{column}"), [column], unique=False
            )


def downgrade() -> None:
    with op.batch_alter_table("emergency_issuance", schema=None) as batch_op:
        for column in ("holder_id", "request_id", "returned_on"):
            batch_op.drop_index(batch_op.f(f"ix_emergency_issuance_{column}"))
    op.drop_table("emergency_issuance")
