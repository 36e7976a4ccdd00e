"""Alembic environment: runs migrations through the same (synchronous) engine set-up Haven uses."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.db import create_sync_engine
from storage.models import metadata

target_metadata = metadata
MIGRATION_LOCK = 0x4861_7665_6E00  # "Haven\0": any constant shared by every process


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several Haven processes may start at once; the second waits, then finds nothing to do.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()


def _run_online() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=context.config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    _run_online()
