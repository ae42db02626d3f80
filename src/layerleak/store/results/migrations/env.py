"""Alembic's entry point for the results database: always run from layerleak with a connection
(``config.attributes["connection"]``), never from an ``alembic.ini``."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
