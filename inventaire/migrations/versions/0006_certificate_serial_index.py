"""index of certificates by serial number

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

The lawyers' status page finds the key of a certificate the inventory does not hold by its
issuer and serial number (``inventaire.selfcheck``): without this index each such request
read the whole certificate table.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_certificate_serial_number", "certificate", ["serial_number"])


def downgrade() -> None:
    op.drop_index("ix_certificate_serial_number", table_name="certificate")
