"""Alembic migrations of the inventory schema.

``HEAD`` names the newest revision so that commands can check the schema without loading
Alembic (a test keeps it equal to the scripts' head).
"""

HEAD = "0007"
