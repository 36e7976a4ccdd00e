"""Migration 0005: one feedback record per person per ending, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import DateTime, bindparam
from sqlalchemy import text as sql
from sqlalchemy.exc import IntegrityError

from storage.db import alembic_config, create_sync_engine, upgrade_sync

CONVERSATION = (
    "INSERT INTO conversations (id, platform, workspace, channel, thread, status, warnings, "
    "confirm_pending, at_risk, user_turns, created_at) "
    "VALUES (:id, 'slack', 'T1', 'C1', :id, 'ended', 0, :f, :f, 1, CURRENT_TIMESTAMP)"
)
TIME = DateTime(timezone=True)
# Times bound as the application binds them (SQLite keeps them as text in SQLAlchemy's format).
FEEDBACK = sql(
    "INSERT INTO feedback (conversation_id, platform, workspace, user_id, comment, created_at) "
    "VALUES (:c, 'slack', 'T1', :u, :comment, :at)"
).bindparams(bindparam("at", type_=TIME))


def _at(second: int) -> datetime:
    return datetime(2026, 1, 2, 3, 4, second, tzinfo=UTC)


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def test_duplicate_reports_collapse_into_one_holding_the_latest_comment(empty_database_url: str) -> None:
    from alembic import command

    upgrade_sync(empty_database_url, "0004")
    engine = create_sync_engine(empty_database_url)
    try:
        with engine.begin() as conn:
            for conv in ("c1", "c2"):
                conn.execute(sql(CONVERSATION), {"id": conv, "f": False})
            reports = [
                ("c1", "U1", None, 1),
                ("c1", "U1", "too early", 2),
                ("c1", "U1", "it really was a mistake", 3),
                ("c1", "U1", None, 4),  # pressed once more without a comment
                ("c1", "U1", None, 5),
                ("c1", "U2", "me too", 6),
                ("c2", "U1", None, 7),
            ]
            for c, u, comment, second in reports:
                conn.execute(FEEDBACK, {"c": c, "u": u, "comment": comment, "at": _at(second)})

        upgrade_sync(empty_database_url)

        with engine.begin() as conn:
            rows = conn.execute(
                sql(
                    "SELECT conversation_id, user_id, comment, created_at, updated_at FROM feedback "
                    "ORDER BY conversation_id, user_id"
                ).columns(created_at=TIME, updated_at=TIME)
            ).all()
            assert [(r[0], r[1], r[2]) for r in rows] == [
                ("c1", "U1", "it really was a mistake"),
                ("c1", "U2", "me too"),
                ("c2", "U1", None),
            ]
            first = rows[0]
            # The first report's time stays; the last one is the time of the last edit.
            assert (_utc(first.created_at), _utc(first.updated_at)) == (_at(1), _at(5))
            assert _utc(rows[1].created_at) == _utc(rows[1].updated_at) == _at(6)
            # The database itself now refuses a second record for the same person and ending.
            with pytest.raises(IntegrityError, match=r"(?i)unique"), conn.begin_nested():
                conn.execute(
                    sql(
                        "INSERT INTO feedback (conversation_id, platform, workspace, user_id, "
                        "created_at, updated_at) VALUES ('c1', 'slack', 'T1', 'U1', :at, :at)"
                    ).bindparams(bindparam("at", type_=TIME)),
                    {"at": _at(9)},
                )

        command.downgrade(alembic_config(empty_database_url), "0004")
        with engine.begin() as conn:
            columns = conn.execute(sql("SELECT * FROM feedback")).keys()
            assert "updated_at" not in columns
            # The old schema takes duplicates again.
            conn.execute(FEEDBACK, {"c": "c1", "u": "U1", "comment": None, "at": _at(10)})
            assert conn.execute(sql("SELECT count(*) FROM feedback")).scalar_one() == 4
        upgrade_sync(empty_database_url)  # and up again, collapsing the new duplicate
        with engine.begin() as conn:
            assert conn.execute(sql("SELECT count(*) FROM feedback")).scalar_one() == 3
    finally:
        engine.dispose()
