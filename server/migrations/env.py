"""Alembic environment: runs on the connection the server hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import server.fleet.releases  # agent releases, offers, update states
import server.fleet.tables  # device health, alerts: their tables
import server.review.models  # noqa: F401  (review queue tables)
from server.models import Base
from server.transcripts import tables as _transcript_tables  # noqa: F401  (its tables)

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
