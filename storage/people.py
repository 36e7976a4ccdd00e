"""One person's side of a workspace: the conversations they wrote in, and forgetting what they wrote."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from bot.inbox import forgotten
from bot.types import AuditRecord, ThreadRef, UserConversation
from storage.admin_audit import AdminAuditQueries
from storage.maintenance import redacted_content
from storage.models import CONVERSATIONS, FEEDBACK, INBOX, MESSAGES
from storage.rows import _C, _M, ENDED, aware

# How much of a person's latest message the Home shows them.
LATEST_TEXT_CHARS = 200


class PeopleQueries(AdminAuditQueries):
    """``list_user_conversations`` and ``forget_user`` (one workspace; the admin CLI's ``forget-user``
    is ``storage.maintenance.Maintenance.forget_user``, across every workspace of a platform)."""

    async def list_user_conversations(
        self, platform: str, workspace: str, user_id: str, limit: int = 10
    ) -> list[UserConversation]:
        return await self._db.run(self._list_user_conversations, platform, workspace, user_id, limit)

    def _list_user_conversations(
        self, platform: str, workspace: str, user_id: str, limit: int
    ) -> list[UserConversation]:
        # ix_messages_author (platform, author_id) finds the person's messages; the serial id orders
        # them (timestamps of one instant would tie).
        latest = (
            select(_M.conversation_id, func.max(_M.id).label("last_id"))
            .where(
                _M.platform == platform,
                _M.author_id == user_id,
                _M.workspace == workspace,
                _M.role == "user",
                _M.kind == "text",
            )
            .group_by(_M.conversation_id)
            .subquery()
        )
        stmt = (
            select(
                _C.id,
                _C.platform,
                _C.workspace,
                _C.channel,
                _C.thread,
                _C.status,
                _C.end_reason,
                _M.created_at,
                func.substr(_M.text, 1, LATEST_TEXT_CHARS).label("latest_text"),
            )
            .join_from(latest, CONVERSATIONS, _C.id == latest.c.conversation_id)
            .join(MESSAGES, _M.id == latest.c.last_id)
            .where(_C.platform == platform, _C.workspace == workspace)
            .order_by(latest.c.last_id.desc())
            .limit(limit)
        )
        with self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return [
            UserConversation(
                r.id,
                ThreadRef(r.platform, r.workspace, r.channel, r.thread),
                r.status == ENDED,
                r.end_reason,
                aware(r.created_at),
                r.latest_text,
            )
            for r in rows
        ]

    async def forget_user(
        self, platform: str, workspace: str, user_id: str, audit: AuditRecord
    ) -> dict[str, int]:
        return await self._db.run(self._forget_user, platform, workspace, user_id, audit)

    def _forget_user(self, platform: str, workspace: str, user_id: str, audit: AuditRecord) -> dict[str, int]:
        with self._db.write() as conn:
            removed = self._forget_in(conn, platform, workspace, user_id)
            self._add_admin_audit(conn, [dataclasses.replace(audit, new=removed)])
        self._db.bump_generation()  # cached histories must be read again
        return removed

    @staticmethod
    def _forget_in(conn: Connection, platform: str, workspace: str, user_id: str) -> dict[str, int]:
        # Already removed texts (retention, an earlier request) are not counted again.
        messages = conn.execute(
            update(MESSAGES)
            .where(
                _M.platform == platform,
                _M.author_id == user_id,
                _M.workspace == workspace,
                _M.role == "user",
                _M.redacted.is_(False),
            )
            .values(
                text=None,
                author_name=None,
                content=redacted_content("at the author's request"),
                redacted=True,
            )
        )
        f = FEEDBACK.c
        comments = conn.execute(
            update(FEEDBACK)
            .where(
                f.platform == platform,
                f.workspace == workspace,
                f.user_id == user_id,
                f.comment.is_not(None),
            )
            .values(comment=None)
        )
        # The inbox's copies of messages already answered (kept for days as dedupe records); a message
        # still waiting for its answer keeps its words until then.
        i = INBOX.c
        delivered = conn.execute(
            select(i.id, i.message).where(
                i.platform == platform, i.workspace == workspace, i.delivered_at.is_not(None)
            )
        )
        for entry_id, message in delivered.all():
            if (blank := forgotten(message, user_id)) is not None:
                conn.execute(update(INBOX).where(i.id == entry_id).values(message=blank))
        counts: dict[str, Any] = {"messages": messages.rowcount or 0, "comments": comments.rowcount or 0}
        return {k: int(v) for k, v in counts.items()}
