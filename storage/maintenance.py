"""Maintenance queries: leases, once-per-period job claims, retention, forgetting a user, export, digests."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.types import Digest
from storage.models import (
    ConversationRow,
    DecisionRow,
    FeedbackRow,
    JobRunRow,
    LeaseRow,
    MessageRow,
    ProcessedEventRow,
    WorkspaceRow,
    utcnow,
)

DEFAULT_RETENTION_DAYS = 90


def redacted_content(reason: str) -> list[dict[str, Any]]:
    # The API rejects empty text blocks, and the history must stay replayable for ongoing threads.
    return [{"type": "text", "text": f"[message removed: {reason}]"}]


class Maintenance:
    """Every ``now``/``since`` argument is a timezone-aware UTC datetime (SQLite stores them naive)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._dialect = engine.dialect.name

    def _insert(self, model: Any) -> Any:
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(model)

    # -- leadership ----------------------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        """Take or renew ``name`` for ``holder`` unless someone else holds an unexpired lease."""
        stmt = self._insert(LeaseRow).values(name=name, holder=holder, expires_at=now + ttl)
        stmt = stmt.on_conflict_do_update(
            index_elements=[LeaseRow.name],
            set_={"holder": holder, "expires_at": now + ttl},
            where=or_(LeaseRow.expires_at < now, LeaseRow.holder == holder),
        ).returning(LeaseRow.holder)
        async with self._sessions() as session, session.begin():
            return (await session.execute(stmt)).first() is not None

    async def release_lease(self, name: str, holder: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder))

    async def lease_holder(self, name: str, now: datetime) -> str | None:
        async with self._sessions() as session:
            row = await session.get(LeaseRow, name)
            return row.holder if row is not None and _aware(row.expires_at) >= now else None

    async def claim_run(self, job: str, period: str, holder: str) -> bool:
        """True for exactly one caller per (job, period), across every process."""
        stmt = (
            self._insert(JobRunRow)
            .values(job=job, period=period, holder=holder, created_at=utcnow())
            .on_conflict_do_nothing()
            .returning(JobRunRow.id)
        )
        async with self._sessions() as session, session.begin():
            return (await session.execute(stmt)).first() is not None

    async def finish_run(self, job: str, period: str, result: str) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(JobRunRow)
                .where(JobRunRow.job == job, JobRunRow.period == period)
                .values(result=result[:256])
            )

    async def runs(self, job: str) -> list[tuple[str, str]]:
        async with self._sessions() as session:
            rows = (
                await session.execute(select(JobRunRow).where(JobRunRow.job == job).order_by(JobRunRow.id))
            ).scalars()
            return [(r.period, r.holder) for r in rows]

    # -- privacy ------------------------------------------------------------------------------------

    async def apply_retention(self, now: datetime) -> int:
        """Remove message text older than each workspace's retention; keep the audit metadata."""
        async with self._sessions() as session, session.begin():
            workspaces = (await session.execute(select(WorkspaceRow))).scalars().all()
            custom = {(w.platform, w.workspace): w.retention_days for w in workspaces}
            total = 0
            for (platform, workspace), days in custom.items():
                total += await self._redact_before(
                    session,
                    and_(MessageRow.platform == platform, MessageRow.workspace == workspace),
                    now - timedelta(days=days),
                    f"older than {days} days",
                )
            # Workspaces without a settings row get the default.
            others = [and_(MessageRow.platform == p, MessageRow.workspace == w) for p, w in custom]
            scope = ~or_(*others) if others else MessageRow.id.is_not(None)  # type: ignore[union-attr]
            total += await self._redact_before(
                session,
                scope,
                now - timedelta(days=DEFAULT_RETENTION_DAYS),
                f"older than {DEFAULT_RETENTION_DAYS} days",
            )
            return total

    @staticmethod
    async def _redact_before(session: Any, scope: Any, cutoff: datetime, reason: str) -> int:
        result = await session.execute(
            update(MessageRow)
            .where(
                scope,
                MessageRow.created_at < cutoff,
                MessageRow.redacted.is_(False),
                MessageRow.kind == "text",
            )  # type: ignore[attr-defined]
            .values(text=None, author_name=None, content=redacted_content(reason), redacted=True)
        )
        return int(result.rowcount or 0)

    async def forget_user(self, platform: str, user_id: str) -> int:
        """Remove every text that user wrote, in every workspace of the platform."""
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                update(MessageRow)
                .where(
                    MessageRow.platform == platform,
                    MessageRow.author_id == user_id,
                    MessageRow.role == "user",
                )
                .values(
                    text=None,
                    author_name=None,
                    content=redacted_content("at the author's request"),
                    redacted=True,
                )
            )
            fb = await session.execute(
                update(FeedbackRow)
                .where(FeedbackRow.platform == platform, FeedbackRow.user_id == user_id)
                .values(comment=None)
            )
            return int(result.rowcount or 0) + int(fb.rowcount or 0)

    async def export_conversation(
        self, platform: str, workspace: str, conversation_id: str
    ) -> dict[str, Any] | None:
        async with self._sessions() as session:
            conv = await session.get(ConversationRow, conversation_id)
            if conv is None or (conv.platform, conv.workspace) != (platform, workspace):
                return None
            messages = (
                await session.execute(
                    select(MessageRow).where(MessageRow.conversation_id == conv.id).order_by(MessageRow.seq)
                )
            ).scalars()
            decisions = (
                await session.execute(
                    select(DecisionRow).where(DecisionRow.conversation_id == conv.id).order_by(DecisionRow.id)
                )
            ).scalars()
            feedback = (
                await session.execute(
                    select(FeedbackRow).where(FeedbackRow.conversation_id == conv.id).order_by(FeedbackRow.id)
                )
            ).scalars()
            return {
                "conversation": conv.model_dump(mode="json"),
                "messages": [m.model_dump(mode="json", exclude={"id"}) for m in messages],
                "decisions": [d.model_dump(mode="json", exclude={"id"}) for d in decisions],
                "feedback": [f.model_dump(mode="json", exclude={"id"}) for f in feedback],
            }

    async def delete_processed_events_before(self, cutoff: datetime) -> int:
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                delete(ProcessedEventRow).where(ProcessedEventRow.created_at < cutoff)
            )
            return int(result.rowcount or 0)

    # -- digests ------------------------------------------------------------------------------------

    async def digests(self, since: datetime) -> list[Digest]:
        """Per workspace with an alert channel: what happened since ``since`` (counts and links only)."""
        out: list[Digest] = []
        async with self._sessions() as session:
            workspaces = (
                await session.execute(select(WorkspaceRow).where(WorkspaceRow.alert_channel.is_not(None)))  # type: ignore[union-attr]
            ).scalars()
            for w in workspaces:
                decisions = (
                    await session.execute(
                        select(DecisionRow.decision, DecisionRow.reason).where(
                            DecisionRow.platform == w.platform,
                            DecisionRow.workspace == w.workspace,
                            DecisionRow.created_at >= since,
                        )
                    )
                ).all()
                endings = Counter(reason or "unknown" for decision, reason in decisions if decision == "END")
                reported = (
                    await session.execute(
                        select(ConversationRow.channel, ConversationRow.thread)
                        .join(FeedbackRow, FeedbackRow.conversation_id == ConversationRow.id)
                        .where(
                            FeedbackRow.platform == w.platform,
                            FeedbackRow.workspace == w.workspace,
                            FeedbackRow.created_at >= since,
                        )
                    )
                ).all()
                out.append(
                    Digest(
                        platform=w.platform,
                        workspace=w.workspace,
                        channel=w.alert_channel or "",
                        since=since,
                        endings_by_reason=dict(endings),
                        vetoes=sum(d == "VETO_RISK" for d, _ in decisions),
                        warnings=sum(d == "HOLD_WARN" for d, _ in decisions),
                        feedback=len(reported),
                        reported=tuple((c, t) for c, t in reported),
                    )
                )
        return out


def _aware(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes; Haven only ever writes UTC.
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
