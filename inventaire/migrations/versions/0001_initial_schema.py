"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26

The journal is append-only in the database itself: triggers refuse UPDATE and DELETE (and
TRUNCATE on PostgreSQL). The journal head starts at the genesis hash.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64
APPEND_ONLY = "journal en ajout seul : modification et suppression interdites"

SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER journal_entry_no_update BEFORE UPDATE ON journal_entry
    BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END""",
    f"""CREATE TRIGGER journal_entry_no_delete BEFORE DELETE ON journal_entry
    BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END""",
)

POSTGRESQL_TRIGGERS = (
    f"""CREATE FUNCTION journal_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '{APPEND_ONLY}' USING ERRCODE = 'insufficient_privilege'; END $$""",
    """CREATE TRIGGER journal_entry_append_only BEFORE UPDATE OR DELETE ON journal_entry
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change()""",
    """CREATE TRIGGER journal_entry_no_truncate BEFORE TRUNCATE ON journal_entry
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change()""",
)


def upgrade() -> None:
    op.create_table(
        "journal_entry",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=32), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_journal_entry")),
    )
    with op.batch_alter_table("journal_entry", schema=None) as batch_op:
        batch_op.create_index("ix_journal_entry_entity", ["entity_type", "entity_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_journal_entry_recorded_at"), ["recorded_at"], unique=False
        )

    op.create_table(
        "journal_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_head")),
    )
    op.create_table(
        "operator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("login", sa.String(length=64), nullable=False),
        sa.Column("roles", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator")),
        sa.UniqueConstraint("login", name=op.f("uq_operator_login")),
    )
    op.create_table(
        "organisation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("short_name", sa.String(length=80), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=15), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisation")),
        sa.UniqueConstraint("full_name", name=op.f("uq_organisation_full_name")),
        sa.UniqueConstraint("short_name", name=op.f("uq_organisation_short_name")),
    )
    op.create_table(
        "holder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_name", sa.String(length=120), nullable=False),
        sa.Column("first_name", sa.String(length=120), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=14), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("search_text", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_holder_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holder")),
        sa.UniqueConstraint("email", name=op.f("uq_holder_email")),
    )
    with op.batch_alter_table("holder", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_holder_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "credential",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=14), nullable=False),
        sa.Column("model", sa.String(length=3), nullable=True),
        sa.Column("serial", sa.String(length=64), nullable=True),
        sa.Column("holder_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=9), nullable=False),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("replaces_id", sa.Integer(), nullable=True),
        sa.Column("requested_on", sa.Date(), nullable=True),
        sa.Column("received_on", sa.Date(), nullable=True),
        sa.Column("handed_over_on", sa.Date(), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["holder_id"], ["holder.id"], name=op.f("fk_credential_holder_id_holder")
        ),
        sa.ForeignKeyConstraint(
            ["replaces_id"], ["credential.id"], name=op.f("fk_credential_replaces_id_credential")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credential")),
        sa.UniqueConstraint("serial", "kind", name=op.f("uq_credential_serial_kind")),
    )
    with op.batch_alter_table("credential", schema=None) as batch_op:
        batch_op.create_index(
            "ix_credential_expiry",
            [
                "expires_on",
                "id",
                "holder_id",
                "kind",
                "state",
                "model",
                "serial",
                "handed_over_on",
            ],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_credential_holder_id"), ["holder_id"], unique=False)

    op.create_table(
        "certificate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.Integer(), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("serial_number", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("role", sa.String(length=14), nullable=False),
        sa.Column("last_status", sa.String(length=20), nullable=True),
        sa.Column("last_validated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["credential.id"],
            name=op.f("fk_certificate_credential_id_credential"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate")),
        sa.UniqueConstraint("fingerprint_sha256", name=op.f("uq_certificate_fingerprint_sha256")),
    )
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_certificate_credential_id"), ["credential_id"], unique=False
        )

    op.execute(f"INSERT INTO journal_head (id, seq, hash) VALUES (1, 0, '{GENESIS_HASH}')")
    if op.get_bind().dialect.name == "postgresql":
        for statement in POSTGRESQL_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS journal_entry_append_only ON journal_entry")
        op.execute("DROP TRIGGER IF EXISTS journal_entry_no_truncate ON journal_entry")
        op.execute("DROP FUNCTION IF EXISTS journal_refuse_change()")
    else:
        op.execute("DROP TRIGGER IF EXISTS journal_entry_no_update")
        op.execute("DROP TRIGGER IF EXISTS journal_entry_no_delete")
    with op.batch_alter_table("certificate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificate_credential_id"))

    op.drop_table("certificate")
    with op.batch_alter_table("credential", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credential_holder_id"))
        batch_op.drop_index("ix_credential_expiry")

    op.drop_table("credential")
    with op.batch_alter_table("holder", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_holder_organisation_id"))

    op.drop_table("holder")
    op.drop_table("organisation")
    op.drop_table("operator")
    op.drop_table("journal_head")
    with op.batch_alter_table("journal_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journal_entry_recorded_at"))
        batch_op.drop_index("ix_journal_entry_entity")

    op.drop_table("journal_entry")
