"""Shared fixtures. Keep these thin: the logic lives in fakes/."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fakes.postgres import PostgresServer, in_ci, postgres_available, start_postgres
from storage.db import open_database, upgrade
from storage.maintenance import Maintenance
from storage.repository import Repository


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the whole session. Skips without binaries, except in CI."""
    reason = postgres_available()
    if reason:
        if in_ci():
            pytest.fail(f"CI must run the PostgreSQL tests, but: {reason}", pytrace=False)
        pytest.skip(reason)
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    ids=["sqlite", "postgresql"],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/haven.db"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.temporary_database(hint=request.node.name) as url:
        yield url


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[tuple[Repository, Maintenance]]:
    """The repository and the maintenance queries on one fresh, migrated ``database_url``."""
    await upgrade(database_url)
    database = open_database(database_url)
    try:
        yield Repository(database), Maintenance(database)
    finally:
        await database.dispose()
