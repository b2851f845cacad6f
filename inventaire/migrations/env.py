"""Alembic environment: migrations run on the connection handed over by ``inventaire.db``."""

from alembic import context
from sqlmodel import SQLModel

from inventaire.models import SEARCH_INDEX_TABLES  # and registers the tables


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    """Leave the search index out of comparisons: the models do not describe it."""
    return not (type_ == "table" and name in SEARCH_INDEX_TABLES)


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
