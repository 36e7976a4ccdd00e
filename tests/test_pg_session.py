"""PostgreSQL sessions of Haven bound their waits: lock and idle-in-transaction time-outs, keepalives."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from fakes.postgres import PostgresServer
from storage.db import (
    PG_IDLE_IN_TRANSACTION_MS,
    PG_KEEPALIVES_IDLE,
    PG_LOCK_TIMEOUT_MS,
    open_database,
    postgres_session_args,
)


@pytest.mark.postgres
async def test_a_haven_connection_shows_the_configured_timeouts(postgres_server: PostgresServer) -> None:
    with postgres_server.temporary_database(hint="pg_session") as url:
        database = open_database(url)
        try:

            def show() -> dict[str, str]:
                with database.sync_engine.connect() as conn:
                    return {
                        name: str(conn.execute(sa.text(f"SHOW {name}")).scalar())
                        for name in ("lock_timeout", "idle_in_transaction_session_timeout")
                    }

            shown = await database.run(show)
        finally:
            await database.dispose()
    assert shown == {
        "lock_timeout": f"{PG_LOCK_TIMEOUT_MS // 1000}s",
        "idle_in_transaction_session_timeout": f"{PG_IDLE_IN_TRANSACTION_MS // 1000}s",
    }


def test_the_url_wins_over_haven_defaults() -> None:
    args = postgres_session_args("postgresql://h/db?keepalives_idle=99&options=-c%20lock_timeout%3D1s")
    assert "keepalives_idle" not in args  # left to the URL's own value
    assert args["keepalives"] == 1 and args["keepalives_count"] > 0
    # The operator's -c comes after Haven's, so PostgreSQL applies it last.
    assert args["options"].endswith("-c lock_timeout=1s")
    assert f"-c tcp_keepalives_idle={PG_KEEPALIVES_IDLE}" in args["options"]
