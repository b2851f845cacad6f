"""personal data: who read a holder's record, and holders anonymised

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27

``record_access`` is the register of readings of one holder's full record (``cartes
titulaire voir``, the terminal UI's record, an export): who, when, how, whose (by id).
``holder.anonymised_at`` marks a holder whose personal data the retention rule replaced.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "record_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("accessed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["holder_id"], ["holder.id"], name=op.f("fk_record_access_holder_id_holder")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_access")),
    )
    op.create_index("ix_record_access_holder_id", "record_access", ["holder_id", "accessed_at"])
    with op.batch_alter_table("holder", schema=None) as batch_op:
        batch_op.add_column(sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("holder", schema=None) as batch_op:
        batch_op.drop_column("anonymised_at")
    op.drop_index("ix_record_access_holder_id", table_name="record_access")
    op.drop_table("record_access")
