"""Alembic environment for the CRM store.

Run through ``crm_bridge.db.migrate`` (and ``ctiserver db upgrade``), which hands over an open
connection of the server's own async engine (Alembic's "sharing a connection" recipe): the
same URL, drivers and SQLite pragmas as the server, and no second configuration file.
"""

from __future__ import annotations

from alembic import context

from crm_bridge.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through crm_bridge.db.migrate (ctiserver db upgrade)")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
