"""Shared fixtures. Keep these thin: the logic lives in fakes/."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fakes.harness import sqlite_copy
from fakes.postgres import PostgresServer, in_ci, postgres_available, start_postgres, unique_database_name
from storage.db import open_database, upgrade, upgrade_sync
from storage.maintenance import Maintenance
from storage.repository import Repository

# Files of tests that run real ``haven`` processes, 5-25 s each, longest first. They go to the front of
# the run: xdist hands each worker a contiguous share and a worker that runs dry takes from the end of
# the other's, so one of them started last would leave a worker idle while it runs to its end.
RUN_FIRST = (
    "tests/slack/test_faults.py",
    "tests/test_lightness.py",
    "tests/slack/test_shutdown.py",
    "tests/slack/test_multiprocess.py",
    "tests/slack/test_blackbox.py",
    "tests/slack/test_many_threads.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.partition("::")[0]
        return RUN_FIRST.index(path) if path in RUN_FIRST else len(RUN_FIRST)

    items.sort(key=rank)  # stable: every other test keeps its place


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


# Migrating costs 0.1-1 s a database (Alembic runs every script); hundreds of tests want a database at
# the newest revision, so each gets a copy of one migrated once per session (per xdist worker). The
# migrations themselves still run from nothing here, and in the tests that take ``empty_database_url``.


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the newest revision: copy it with ``sqlite_copy``, never use it directly."""
    path = tmp_path_factory.mktemp("migrated") / "haven.db"
    upgrade_sync(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres(postgres_server: PostgresServer) -> str:
    """The name of a PostgreSQL database at the newest revision, the template of each test's database."""
    name = unique_database_name("migrated_template")
    upgrade_sync(postgres_server.create_database(name))
    return name


@pytest.fixture
def sqlite_url(migrated_sqlite: Path, tmp_path: Path) -> str:
    """A fresh SQLite database at the newest revision, for the tests that run on SQLite only."""
    return sqlite_copy(migrated_sqlite, tmp_path)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    ids=["sqlite", "postgresql"],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database per test at the newest revision, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield sqlite_copy(request.getfixturevalue("migrated_sqlite"), tmp_path)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    template: str = request.getfixturevalue("migrated_postgres")
    with server.temporary_database(hint=request.node.name, template=template) as url:
        yield url


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    ids=["sqlite", "postgresql"],
)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test (for the migrations' own tests), on SQLite and on PostgreSQL."""
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
