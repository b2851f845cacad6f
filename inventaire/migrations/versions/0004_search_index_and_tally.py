"""search index of credentials, tally by kind and state, index on digest sent_at

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

The filter box of the terminal UI and ``cartes liste --recherche`` look for a piece of
text in a million credentials; the summary and the dashboard count them by kind and state.
Both read what triggers keep up to date instead of scanning the inventory:

- ``credential_search``: per credential, its holder's folded names and e-mail and its
  lower-cased serial (``holder.search_text || ' ' || lower(serial)``). On SQLite an FTS5
  table with the ``trigram`` tokenizer (rowid = credential id; ``detail=none``: substring
  search goes through LIKE, which needs no positions, and the index is half the size); on
  PostgreSQL a table with a ``pg_trgm`` GIN index, when the extension can be installed
  (without it the table is scanned: slower, same results). Organisation names are not
  in it: they are a few dozen, folded and matched in Python (``inventaire.search``), so a
  renamed organisation needs no reindexing of its 100,000 credentials.
- ``credential_tally``: how many credentials of each (kind, state).
- ``search_index_pause``: a row there (written and removed within the import's own
  transaction) pauses SQLite's per-row triggers on new credentials while the import
  inserts a batch, then indexes and counts it in one statement each.

SQLite triggers are per row; PostgreSQL ones per statement, with transition tables, so
that a bulk insert of 5,000 rows updates the tally once per (kind, state).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _document(holder: str, credential: str) -> str:
    """The indexed text of a credential, from its holder's and its own columns."""
    return f"{holder}.search_text || ' ' || coalesce(lower({credential}.serial), '')"


SQLITE_TRIGGERS = (
    # Both paused while the import inserts a batch: FTS5 writes its pending terms out at
    # every statement a trigger runs, which makes a row-by-row fill four times slower than
    # one INSERT ... SELECT for the batch, which the import then runs itself (and one
    # grouped update of the tally).
    f"""CREATE TRIGGER credential_search_insert AFTER INSERT ON credential
WHEN NOT EXISTS (SELECT 1 FROM search_index_pause) BEGIN
  INSERT INTO credential_search (rowid, text)
    SELECT NEW.id, {_document("h", "NEW")} FROM holder h WHERE h.id = NEW.holder_id;
END""",
    """CREATE TRIGGER credential_tally_insert AFTER INSERT ON credential
WHEN NOT EXISTS (SELECT 1 FROM search_index_pause) BEGIN
  INSERT INTO credential_tally (kind, state, total) VALUES (NEW.kind, NEW.state, 1)
    ON CONFLICT (kind, state) DO UPDATE SET total = total + 1;
END""",
    """CREATE TRIGGER credential_indexes_delete AFTER DELETE ON credential BEGIN
  DELETE FROM credential_search WHERE rowid = OLD.id;
  UPDATE credential_tally SET total = total - 1 WHERE kind = OLD.kind AND state = OLD.state;
END""",
    f"""CREATE TRIGGER credential_search_update AFTER UPDATE OF serial, holder_id ON credential
WHEN OLD.serial IS NOT NEW.serial OR OLD.holder_id IS NOT NEW.holder_id BEGIN
  DELETE FROM credential_search WHERE rowid = OLD.id;
  INSERT INTO credential_search (rowid, text)
    SELECT NEW.id, {_document("h", "NEW")} FROM holder h WHERE h.id = NEW.holder_id;
END""",
    """CREATE TRIGGER credential_tally_update AFTER UPDATE OF kind, state ON credential
WHEN OLD.kind IS NOT NEW.kind OR OLD.state IS NOT NEW.state BEGIN
  UPDATE credential_tally SET total = total - 1 WHERE kind = OLD.kind AND state = OLD.state;
  INSERT INTO credential_tally (kind, state, total) VALUES (NEW.kind, NEW.state, 1)
    ON CONFLICT (kind, state) DO UPDATE SET total = total + 1;
END""",
    f"""CREATE TRIGGER holder_search_update AFTER UPDATE OF search_text ON holder
WHEN OLD.search_text IS NOT NEW.search_text BEGIN
  DELETE FROM credential_search
    WHERE rowid IN (SELECT id FROM credential WHERE holder_id = NEW.id);
  INSERT INTO credential_search (rowid, text)
    SELECT c.id, {_document("NEW", "c")} FROM credential c WHERE c.holder_id = NEW.id;
END""",
)
SQLITE_TRIGGER_NAMES = (
    "credential_search_insert",
    "credential_tally_insert",
    "credential_indexes_delete",
    "credential_search_update",
    "credential_tally_update",
    "holder_search_update",
)

POSTGRESQL_TRIGGERS = (
    f"""CREATE FUNCTION credential_indexes_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO credential_search (credential_id, text)
    SELECT n.id, {_document("h", "n")} FROM new_rows n JOIN holder h ON h.id = n.holder_id;
  INSERT INTO credential_tally (kind, state, total)
    SELECT kind, state, count(*) FROM new_rows GROUP BY kind, state
    ON CONFLICT (kind, state) DO UPDATE SET total = credential_tally.total + EXCLUDED.total;
  RETURN NULL;
END $$""",
    """CREATE TRIGGER credential_indexes_insert AFTER INSERT ON credential
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION credential_indexes_insert()""",
    """CREATE FUNCTION credential_indexes_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM credential_search WHERE credential_id IN (SELECT id FROM old_rows);
  UPDATE credential_tally t SET total = t.total - o.total
    FROM (SELECT kind, state, count(*) AS total FROM old_rows GROUP BY kind, state) o
    WHERE t.kind = o.kind AND t.state = o.state;
  RETURN NULL;
END $$""",
    """CREATE TRIGGER credential_indexes_delete AFTER DELETE ON credential
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION credential_indexes_delete()""",
    # Transition tables do not go with a column list (UPDATE OF): the function compares.
    f"""CREATE FUNCTION credential_indexes_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE credential_search s SET text = {_document("h", "n")}
    FROM new_rows n JOIN old_rows o ON o.id = n.id JOIN holder h ON h.id = n.holder_id
    WHERE s.credential_id = n.id
      AND (n.serial IS DISTINCT FROM o.serial OR n.holder_id <> o.holder_id);
  INSERT INTO credential_tally (kind, state, total)
    SELECT kind, state, sum(change) FROM (
      SELECT kind, state, -1 AS change FROM old_rows
      UNION ALL SELECT kind, state, 1 FROM new_rows) AS changes
    GROUP BY kind, state HAVING sum(change) <> 0
    ON CONFLICT (kind, state) DO UPDATE SET total = credential_tally.total + EXCLUDED.total;
  RETURN NULL;
END $$""",
    """CREATE TRIGGER credential_indexes_update AFTER UPDATE ON credential
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION credential_indexes_update()""",
    f"""CREATE FUNCTION holder_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE credential_search s SET text = {_document("n", "c")}
    FROM new_rows n JOIN old_rows o ON o.id = n.id JOIN credential c ON c.holder_id = n.id
    WHERE s.credential_id = c.id AND n.search_text IS DISTINCT FROM o.search_text;
  RETURN NULL;
END $$""",
    """CREATE TRIGGER holder_search_update AFTER UPDATE ON holder
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION holder_search_update()""",
)
POSTGRESQL_TRIGGER_NAMES = (
    ("credential_indexes_insert", "credential"),
    ("credential_indexes_delete", "credential"),
    ("credential_indexes_update", "credential"),
    ("holder_search_update", "holder"),
)

# pg_trgm may be missing (no contrib package) or refused (no right to create it): the
# migration goes on without it, in a subtransaction, and search scans the table instead.
POSTGRESQL_TRIGRAM = (
    """DO $$ BEGIN
  CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'pg_trgm indisponible (%), recherche sans index', SQLERRM;
END $$""",
    """DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
    CREATE INDEX ix_credential_search_text ON credential_search USING gin (text gin_trgm_ops);
  END IF;
END $$""",
)


def upgrade() -> None:
    op.create_table(
        "credential_tally",
        sa.Column("kind", sa.String(length=14), nullable=False),
        sa.Column("state", sa.String(length=9), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "state", name=op.f("pk_credential_tally")),
    )
    op.create_table(
        "search_index_pause",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_index_pause")),
    )
    with op.batch_alter_table("digest", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_digest_sent_at"), ["sent_at"], unique=False)

    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute(
            "CREATE TABLE credential_search ("
            "credential_id INTEGER NOT NULL CONSTRAINT pk_credential_search PRIMARY KEY, "
            "text TEXT NOT NULL)"
        )
        op.execute(
            f"INSERT INTO credential_search (credential_id, text) "
            f"SELECT c.id, {_document('h', 'c')} FROM credential c JOIN holder h "
            f"ON h.id = c.holder_id"
        )
        for statement in POSTGRESQL_TRIGRAM:
            op.execute(statement)
    else:
        op.execute(
            "CREATE VIRTUAL TABLE credential_search "
            "USING fts5(text, tokenize='trigram', detail='none')"
        )
        op.execute(
            f"INSERT INTO credential_search (rowid, text) "
            f"SELECT c.id, {_document('h', 'c')} FROM credential c JOIN holder h "
            f"ON h.id = c.holder_id"
        )
    op.execute(
        "INSERT INTO credential_tally (kind, state, total) "
        "SELECT kind, state, count(*) FROM credential GROUP BY kind, state"
    )
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table in POSTGRESQL_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    else:
        for name in SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE credential_search")
    with op.batch_alter_table("digest", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_digest_sent_at"))
    op.drop_table("search_index_pause")
    op.drop_table("credential_tally")
