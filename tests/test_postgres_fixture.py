"""The throwaway PostgreSQL server and the ``database_url`` and ``empty_database_url`` fixtures work."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import psycopg
import pytest

from fakes.postgres import PostgresServer, to_libpq_url
from storage.db import at_head


@pytest.mark.postgres
def test_server_roundtrip_and_restart(postgres_server: PostgresServer) -> None:
    url = postgres_server.url
    assert url.startswith("postgresql+psycopg://")
    assert url.endswith("/haven_test")

    with psycopg.connect(to_libpq_url(url), autocommit=True) as conn:
        version = conn.execute("select version()").fetchone()
        assert version is not None and str(version[0]).startswith("PostgreSQL")
        encoding = conn.execute("show server_encoding").fetchone()
        assert encoding == ("UTF8",)
        assert conn.execute("show fsync").fetchone() == ("off",)
        conn.execute("drop table if exists roundtrip")
        conn.execute("create table roundtrip (id serial primary key, note text not null)")
        conn.execute("insert into roundtrip (note) values (%s), (%s)", ("héllo", "wörld"))
        rows = conn.execute("select note from roundtrip order by id").fetchall()
        assert rows == [("héllo",), ("wörld",)]

    survivor = psycopg.connect(to_libpq_url(url), autocommit=True)
    postgres_server.restart()
    assert postgres_server.is_running
    with pytest.raises(psycopg.OperationalError):
        survivor.execute("select 1")  # the restart cut the old connection
    survivor.close()

    with psycopg.connect(to_libpq_url(url), autocommit=True) as conn:
        rows = conn.execute("select note from roundtrip order by id").fetchall()
        assert rows == [("héllo",), ("wörld",)]
        conn.execute("drop table roundtrip")


@pytest.mark.postgres
def test_create_and_drop_database(postgres_server: PostgresServer) -> None:
    with postgres_server.temporary_database("isolated") as url:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(to_libpq_url(url), autocommit=True) as conn:
            conn.execute("create table only_here (x int)")
        with postgres_server.connect() as admin:
            assert admin.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
    with postgres_server.connect() as admin:
        assert admin.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is None


@pytest.mark.postgres
def test_temporary_database_survives_a_stopped_server(postgres_server: PostgresServer) -> None:
    with postgres_server.temporary_database("fault") as url:
        postgres_server.shutdown()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(to_libpq_url(url), connect_timeout=2).close()
    assert postgres_server.is_running  # brought back for the next test


def test_empty_database_url_is_empty(empty_database_url: str) -> None:
    if empty_database_url.startswith("sqlite"):
        path = empty_database_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            tables = conn.execute("select name from sqlite_master where type = 'table'").fetchall()
        assert tables == []
        return
    assert empty_database_url.startswith("postgresql+psycopg://")
    with psycopg.connect(to_libpq_url(empty_database_url)) as conn:
        count = conn.execute(
            "select count(*) from information_schema.tables where table_schema = 'public'"
        ).fetchone()
        assert count == (0,)


def test_database_url_is_migrated_empty_and_a_copy_of_its_own(
    request: pytest.FixtureRequest, database_url: str
) -> None:
    """At the newest revision, no rows, and what a test writes stays out of the template."""
    assert at_head(database_url)
    rows = "select count(*) from conversations"
    write = "create table only_here (x int)"
    written = "select count(*) from only_here"
    if database_url.startswith("sqlite"):
        template = request.getfixturevalue("migrated_sqlite")
        with closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as conn:
            assert conn.execute(rows).fetchone() == (0,)
            conn.execute(write)
            assert conn.execute(written).fetchone() == (0,)
        with closing(sqlite3.connect(template)) as conn, pytest.raises(sqlite3.OperationalError):
            conn.execute(written)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with psycopg.connect(to_libpq_url(database_url), autocommit=True) as conn:
        assert conn.execute(rows).fetchone() == (0,)
        conn.execute(write)
        assert conn.execute(written).fetchone() == (0,)
    with (
        server.connect(request.getfixturevalue("migrated_postgres")) as conn,
        pytest.raises(psycopg.errors.UndefinedTable),
    ):
        conn.execute(written)
