"""Workspaces Haven left, and deleting what it kept about one (``haven admin purge``).

Haven is removed from a workspace by Slack's ``app_uninstalled`` (or every token revoked) and Discord's
guild removal; the adapters record that here (``mark``) and a new installation clears it (``clear``).
``purge`` then deletes the workspace's data: every table with a ``platform`` and a ``workspace``
column, found from the models rather than listed, so a table added later is purged too. It is scoped
by both columns (a Slack team and a Discord guild may share an id) and runs in one transaction, which
also writes the purge's own admin-audit row, the one row the workspace keeps besides its departure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.engine import Connection

from storage.db import Database, dialect_insert
from storage.models import ADMIN_AUDIT, BOTS, DEPARTED, metadata
from storage.rows import aware

_D = DEPARTED.c
PURGE_ACTION = "workspace.purge"


@dataclass(frozen=True, slots=True)
class Departure:
    platform: str
    workspace: str
    reason: str
    departed_at: datetime


def workspace_tables() -> list[Table]:
    """The tables ``purge`` empties for a workspace, children before the rows they point at."""
    return [
        t
        for t in reversed(metadata.sorted_tables)
        if {"platform", "workspace"} <= set(t.c.keys()) and t is not DEPARTED
    ]


class Departures:
    """Each method is one synchronous function on a ``Database`` worker thread, like the repository."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._dialect = database.dialect.name

    # -- the record ----------------------------------------------------------------------------------

    async def mark(self, platform: str, workspace: str, reason: str, now: datetime | None = None) -> None:
        """Haven was removed from the workspace; the first departure's time is kept."""
        await self._db.run(self._mark, platform, workspace, reason[:32], now or datetime.now(UTC))

    def _mark(self, platform: str, workspace: str, reason: str, now: datetime) -> None:
        with self._db.write() as conn:
            conn.execute(upsert_departure(self._dialect, platform, workspace, reason, now))

    async def clear(self, platform: str, workspace: str) -> None:
        """Haven was installed there (again)."""
        await self._db.run(self._clear, platform, workspace)

    def _clear(self, platform: str, workspace: str) -> None:
        with self._db.write() as conn:
            conn.execute(delete(DEPARTED).where(_D.platform == platform, _D.workspace == workspace))

    async def get(self, platform: str, workspace: str) -> Departure | None:
        return await self._db.run(self._get, platform, workspace)

    def _get(self, platform: str, workspace: str) -> Departure | None:
        stmt = select(DEPARTED).where(_D.platform == platform, _D.workspace == workspace)
        with self._db.read() as conn:
            row = conn.execute(stmt).first()
        return (
            None
            if row is None
            else Departure(row.platform, row.workspace, row.reason, aware(row.departed_at))
        )

    async def all(self) -> list[Departure]:
        return await self._db.run(self._all)

    def _all(self) -> list[Departure]:
        stmt = select(DEPARTED).order_by(_D.departed_at.desc(), _D.platform, _D.workspace)
        with self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return [Departure(r.platform, r.workspace, r.reason, aware(r.departed_at)) for r in rows]

    async def slack_installed(self, team_id: str) -> bool:
        """Whether a Slack installation (a bot token) for the team is stored, by any app."""
        return await self._db.run(self._slack_installed, team_id)

    def _slack_installed(self, team_id: str) -> bool:
        bots = BOTS.c
        stmt = select(func.count()).where(bots.team_id == team_id, bots.bot_token.is_not(None))
        with self._db.read() as conn:
            return bool(conn.execute(stmt).scalar())

    # -- the purge -----------------------------------------------------------------------------------

    async def count(self, platform: str, workspace: str) -> dict[str, int]:
        """Rows per table that ``purge`` would delete (tables with none left out)."""
        return await self._db.run(self._count, platform, workspace)

    def _count(self, platform: str, workspace: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._db.read(snapshot=True) as conn:
            for table in workspace_tables():
                n = conn.execute(
                    select(func.count()).select_from(table).where(*_scope(table, platform, workspace))
                )
                counts[table.name] = int(n.scalar() or 0)
        return {name: n for name, n in counts.items() if n}

    async def purge(
        self,
        platform: str,
        workspace: str,
        *,
        actor_id: str,
        actor_name: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, int]:
        """Delete the workspace's rows from every workspace table, and audit it; the rows deleted per
        table (tables with none left out)."""
        actor = (actor_id, actor_name)
        return await self._db.run(self._purge, platform, workspace, actor, now or datetime.now(UTC))

    def _purge(
        self, platform: str, workspace: str, actor: tuple[str, str | None], now: datetime
    ) -> dict[str, int]:
        deleted: dict[str, int] = {}
        with self._db.write() as conn:
            for table in workspace_tables():
                result = conn.execute(delete(table).where(*_scope(table, platform, workspace)))
                deleted[table.name] = int(result.rowcount or 0)
            deleted = {name: n for name, n in deleted.items() if n}
            _audit(conn, platform, workspace, actor, deleted, now)
        self._db.bump_generation()  # cached histories of the purged conversations must go
        return deleted


def upsert_departure(dialect: str, platform: str, workspace: str, reason: str, now: datetime) -> Any:
    """The statement that records a departure; a workspace already departed keeps its first record."""
    stmt = dialect_insert(dialect)(DEPARTED).values(
        platform=platform, workspace=workspace, reason=reason[:32], departed_at=now
    )
    return stmt.on_conflict_do_nothing()


def _scope(table: Table, platform: str, workspace: str) -> tuple[Any, ...]:
    return (table.c.platform == platform, table.c.workspace == workspace)


def _audit(
    conn: Connection,
    platform: str,
    workspace: str,
    actor: tuple[str, str | None],
    deleted: dict[str, int],
    now: datetime,
) -> None:
    actor_id, actor_name = actor
    conn.execute(
        insert(ADMIN_AUDIT).values(
            platform=platform,
            workspace=workspace,
            actor_id=actor_id[:64],
            actor_name=actor_name[:128] if actor_name else None,
            action=PURGE_ACTION,
            setting="data",
            old_value=deleted,
            new_value=None,
            created_at=now,
        )
    )
