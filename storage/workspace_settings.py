"""A workspace's settings: read (alone or inside a turn's transaction) and saved, with the admin audit
of the change in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Connection

from bot.types import AuditRecord, WorkspaceSettings
from storage.admin_audit import AdminAuditQueries
from storage.models import WORKSPACES, utcnow
from storage.rows import _W, settings_from_row


class WorkspaceSettingsQueries(AdminAuditQueries):
    """``get_settings`` and ``save_settings`` (which writes the admin audit records it is given)."""

    async def get_settings(self, platform: str, workspace: str) -> WorkspaceSettings:
        return await self._db.run(self._get_settings, platform, workspace)

    def _get_settings(self, platform: str, workspace: str) -> WorkspaceSettings:
        with self._db.read() as conn:
            return self._settings_in(conn, platform, workspace)

    def _settings_in(self, conn: Connection, platform: str, workspace: str) -> WorkspaceSettings:
        row = conn.execute(self._sql.settings, {"platform": platform, "workspace": workspace}).first()
        return settings_from_row(platform, workspace, row)

    async def save_settings(
        self, settings: WorkspaceSettings, audit: Sequence[AuditRecord] = ()
    ) -> WorkspaceSettings:
        await self._db.run(self._save_settings, settings, audit)
        return settings

    def _save_settings(self, settings: WorkspaceSettings, audit: Sequence[AuditRecord] = ()) -> None:
        values = {
            "crisis_message": settings.crisis_message,
            "crisis_locales": dict(settings.crisis_locales),
            "ending_enabled": settings.ending_enabled,
            "abuse_warnings_before_end": settings.abuse_warnings_before_end,
            "verify_endings": settings.verify_endings,
            "alert_channel": settings.alert_channel,
            "retention_days": settings.retention_days,
            "admin_users": list(settings.admin_users),
            "instructions": settings.instructions,
            "allowed_channels": list(settings.allowed_channels),
            "denied_channels": list(settings.denied_channels),
            "suggested_prompts": (
                None if settings.suggested_prompts is None else list(settings.suggested_prompts)
            ),
            "updated_at": utcnow(),
        }
        stmt = self._insert(WORKSPACES).values(
            platform=settings.platform, workspace=settings.workspace, **values
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[_W.platform, _W.workspace], set_={k: stmt.excluded[k] for k in values}
        )
        with self._db.write() as conn:
            conn.execute(stmt)
            self._add_admin_audit(conn, audit)
