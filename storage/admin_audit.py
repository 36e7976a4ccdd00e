"""The admin audit: every settings change an admin made, written with the change, read back newest first."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from bot.types import AuditRecord
from storage.models import ADMIN_AUDIT
from storage.rows import aware
from storage.statements import RepositoryPart

_A = ADMIN_AUDIT.c


class AdminAuditQueries(RepositoryPart):
    """``list_admin_audit``, and ``_add_admin_audit`` for ``save_settings``'s transaction."""

    def _add_admin_audit(self, conn: Connection, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        conn.execute(
            insert(ADMIN_AUDIT),
            [
                {
                    "platform": r.platform,
                    "workspace": r.workspace,
                    "actor_id": r.actor_id[:64],
                    "actor_name": r.actor_name[:128] if r.actor_name else None,
                    "action": r.action[:32],
                    "setting": r.setting[:64],
                    "old_value": r.old,
                    "new_value": r.new,
                    "created_at": r.created_at,
                }
                for r in records
            ],
        )

    async def list_admin_audit(self, platform: str, workspace: str, limit: int = 20) -> list[AuditRecord]:
        return await self._db.run(self._list_admin_audit, platform, workspace, limit)

    def _list_admin_audit(self, platform: str, workspace: str, limit: int) -> list[AuditRecord]:
        stmt = (
            select(
                _A.platform,
                _A.workspace,
                _A.actor_id,
                _A.actor_name,
                _A.action,
                _A.setting,
                _A.old_value,
                _A.new_value,
                _A.created_at,
            )
            .where(_A.platform == platform, _A.workspace == workspace)
            .order_by(_A.created_at.desc(), _A.id.desc())
            .limit(limit)
        )
        with self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return [
            AuditRecord(
                r.platform,
                r.workspace,
                r.actor_id,
                r.actor_name,
                r.action,
                r.setting,
                r.old_value,
                r.new_value,
                aware(r.created_at),
            )
            for r in rows
        ]
