"""Model usage, feedback and the audit log: what administrators read back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select, update
from sqlalchemy.engine import Connection

from bot.types import (
    Conversation,
    DecisionRecord,
    EndingRecord,
    FeedbackRecord,
    ThreadRef,
    UsageGrouping,
    UsageLine,
    UsageRecord,
)
from storage.models import CONVERSATIONS, DECISIONS, FEEDBACK, USAGE, utcnow
from storage.rows import _C, ENDED
from storage.statements import RepositoryPart


class AuditQueries(RepositoryPart):
    """``record_usage``, ``usage_totals``, ``record_feedback``, ``list_endings``, ``list_feedback`` and
    ``list_decisions``."""

    def _add_usage(
        self,
        conn: Connection,
        conversation_id: str,
        platform: str,
        workspace: str,
        usage: Sequence[UsageRecord],
    ) -> None:
        if not usage:
            return
        now = utcnow()
        conn.execute(
            self._sql.usage,
            [
                {
                    "conversation_id": conversation_id,
                    "platform": platform,
                    "workspace": workspace,
                    "model": u.model[:64],
                    "purpose": u.purpose,
                    "input_tokens": u.input_tokens,
                    "cache_creation_input_tokens": u.cache_creation_input_tokens,
                    "cache_read_input_tokens": u.cache_read_input_tokens,
                    "output_tokens": u.output_tokens,
                    "created_at": now,
                }
                for u in usage
            ],
        )

    async def record_usage(self, conversation: Conversation, usage: Sequence[UsageRecord]) -> None:
        """Usage of calls whose turn failed later: they were billed all the same."""
        if not usage:
            return
        await self._db.run(self._record_usage, conversation, usage)

    def _record_usage(self, conversation: Conversation, usage: Sequence[UsageRecord]) -> None:
        t = conversation.thread
        with self._db.write() as conn:
            self._add_usage(conn, conversation.id, t.platform, t.workspace, usage)

    async def usage_totals(
        self, platform: str, workspace: str, since: datetime | None = None
    ) -> dict[str, int]:
        return await self._db.run(self._usage_totals, platform, workspace, since)

    def _usage_totals(self, platform: str, workspace: str, since: datetime | None) -> dict[str, int]:
        u = USAGE.c
        cols = (u.input_tokens, u.cache_creation_input_tokens, u.cache_read_input_tokens, u.output_tokens)
        stmt = select(func.count(), *(func.coalesce(func.sum(c), 0) for c in cols)).where(
            u.platform == platform, u.workspace == workspace
        )
        if since is not None:
            # ix_usage_workspace (platform, workspace, created_at) answers the window.
            stmt = stmt.where(u.created_at >= since)
        with self._db.read() as conn:
            row = conn.execute(stmt).one()
        keys = (
            "calls",
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
        )
        return {k: int(v or 0) for k, v in zip(keys, row, strict=True)}

    async def usage_lines(
        self,
        platform: str,
        workspace: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        by: UsageGrouping | None = None,
    ) -> list[UsageLine]:
        return await self._db.run(self._usage_lines, platform, workspace, since, until, by)

    def _usage_lines(
        self,
        platform: str,
        workspace: str,
        since: datetime | None,
        until: datetime | None,
        by: UsageGrouping | None,
    ) -> list[UsageLine]:
        u, c = USAGE.c, CONVERSATIONS.c
        sums = (u.input_tokens, u.cache_creation_input_tokens, u.cache_read_input_tokens, u.output_tokens)
        key: ColumnElement[Any]
        if by == "user":
            # Usage rows carry their conversation; the person is the one who started it.
            key = func.coalesce(c.started_by, "")
        elif by == "conversation":
            key = u.conversation_id
        else:
            key = literal("")
        stmt = select(key.label("key"), u.model, func.count(), *(func.coalesce(func.sum(x), 0) for x in sums))
        if by == "user":
            stmt = stmt.select_from(
                USAGE.outerjoin(CONVERSATIONS, (c.id == u.conversation_id) & (c.workspace == u.workspace))
            )
        # ix_usage_workspace (platform, workspace, created_at) answers the window.
        stmt = stmt.where(u.platform == platform, u.workspace == workspace)
        if since is not None:
            stmt = stmt.where(u.created_at >= since)
        if until is not None:
            stmt = stmt.where(u.created_at < until)
        stmt = stmt.group_by(key, u.model)
        with self._db.read() as conn:
            rows = conn.execute(stmt).all()
        lines = [UsageLine(str(r[0] or ""), str(r[1]), *(int(v or 0) for v in r[2:])) for r in rows]
        return sorted(lines, key=_usage_order)

    async def record_feedback(self, conversation: Conversation, user_id: str, comment: str | None) -> bool:
        return await self._db.run(self._record_feedback, conversation, user_id, comment)

    def _record_feedback(self, conversation: Conversation, user_id: str, comment: str | None) -> bool:
        f = FEEDBACK.c
        now = utcnow()
        with self._db.write() as conn:
            first = conn.execute(
                self._insert(FEEDBACK)
                .values(
                    conversation_id=conversation.id,
                    platform=conversation.thread.platform,
                    workspace=conversation.thread.workspace,
                    user_id=user_id,
                    comment=comment,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["conversation_id", "user_id"])
                .returning(f.id)
            ).first()
            if first is not None:
                return True
            # The person's report exists: this submission edits it (a blank one keeps the comment).
            conn.execute(
                update(FEEDBACK)
                .where(f.conversation_id == conversation.id, f.user_id == user_id)
                .values(comment=func.coalesce(comment, f.comment), updated_at=now)
            )
            return False

    async def list_endings(self, platform: str, workspace: str, limit: int = 20) -> list[EndingRecord]:
        return await self._db.run(self._list_endings, platform, workspace, limit)

    def _list_endings(self, platform: str, workspace: str, limit: int) -> list[EndingRecord]:
        stmt = (
            select(
                _C.id,
                _C.platform,
                _C.workspace,
                _C.channel,
                _C.thread,
                _C.end_reason,
                _C.warnings,
                _C.ended_at,
                _C.forked_from,
            )
            .where(_C.platform == platform, _C.workspace == workspace, _C.status == ENDED)
            .order_by(_C.ended_at.desc())
            .limit(limit)
        )
        with self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return [
            EndingRecord(
                r.id,
                ThreadRef(r.platform, r.workspace, r.channel, r.thread),
                r.end_reason,
                r.warnings,
                r.ended_at,
                r.forked_from,
            )
            for r in rows
        ]

    async def list_feedback(self, platform: str, workspace: str, limit: int = 20) -> list[FeedbackRecord]:
        return await self._db.run(self._list_feedback, platform, workspace, limit)

    def _list_feedback(self, platform: str, workspace: str, limit: int) -> list[FeedbackRecord]:
        f = FEEDBACK.c
        stmt = (
            select(
                f.conversation_id,
                f.user_id,
                f.comment,
                f.created_at,
                _C.platform,
                _C.workspace,
                _C.channel,
                _C.thread,
            )
            .join_from(FEEDBACK, CONVERSATIONS, _C.id == f.conversation_id)
            .where(f.platform == platform, f.workspace == workspace)
            .order_by(f.created_at.desc())
            .limit(limit)
        )
        with self._db.read() as conn:
            rows = conn.execute(stmt).all()
        return [
            FeedbackRecord(
                r.conversation_id,
                ThreadRef(r.platform, r.workspace, r.channel, r.thread),
                r.user_id,
                r.comment,
                r.created_at,
            )
            for r in rows
        ]

    async def list_decisions(
        self, platform: str, workspace: str, limit: int = 50, conversation_id: str | None = None
    ) -> list[DecisionRecord]:
        return await self._db.run(self._list_decisions, platform, workspace, limit, conversation_id)

    def _list_decisions(
        self, platform: str, workspace: str, limit: int, conversation_id: str | None
    ) -> list[DecisionRecord]:
        d = DECISIONS.c
        stmt = select(
            d.conversation_id, d.decision, d.reason, d.note, d.warnings, d.signals, d.created_at
        ).where(d.platform == platform, d.workspace == workspace)
        if conversation_id:
            stmt = stmt.where(d.conversation_id == conversation_id)
        with self._db.read() as conn:
            rows = conn.execute(stmt.order_by(d.id.desc()).limit(limit)).all()
        return [
            DecisionRecord(
                r.conversation_id, r.decision, r.reason, r.note, r.warnings, dict(r.signals), r.created_at
            )
            for r in rows
        ]


def _usage_order(line: UsageLine) -> tuple[int, str, str]:
    tokens = (
        line.input_tokens
        + line.cache_creation_input_tokens
        + line.cache_read_input_tokens
        + line.output_tokens
    )
    return (-tokens, line.key, line.model)
