"""The small repository API the core calls. Every query is scoped by platform and workspace."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from bot.types import (
    Conversation,
    ConversationStatus,
    Decision,
    HistoryMessage,
    NewMessage,
    StateChange,
    ThreadRef,
    UsageRecord,
    WorkspaceSettings,
)
from storage.models import (
    ConversationRow,
    DecisionRow,
    FeedbackRow,
    MessageRow,
    ModelUsageRow,
    ProcessedEventRow,
    ReminderRow,
    WorkspaceRow,
    utcnow,
)


@dataclass(frozen=True, slots=True)
class BeganTurn:
    """What ``begin_turn`` found: the conversation (if any) and whether the event was new."""

    duplicate: bool
    conversation: Conversation | None
    stored: bool  # the user message was appended to the history


@dataclass(frozen=True, slots=True)
class EndingRecord:
    conversation_id: str
    thread: ThreadRef
    reason: str | None
    warnings: int
    ended_at: datetime | None
    forked_from: str | None


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    conversation_id: str
    thread: ThreadRef
    user_id: str
    comment: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    conversation_id: str
    decision: str
    reason: str | None
    note: str | None
    warnings: int
    signals: dict[str, Any]
    created_at: datetime


def _conversation(row: ConversationRow) -> Conversation:
    return Conversation(
        id=row.id,
        thread=ThreadRef(row.platform, row.workspace, row.channel, row.thread),
        status=ConversationStatus(row.status),
        end_reason=row.end_reason,
        warnings=row.warnings,
        confirm_pending=row.confirm_pending,
        at_risk=row.at_risk,
        crisis_shown_turn=row.crisis_shown_turn,
        user_turns=row.user_turns,
        forked_from=row.forked_from,
        forked_from_message=row.forked_from_message,
    )


def _history(row: MessageRow) -> HistoryMessage:
    return HistoryMessage(
        seq=row.seq,
        role=row.role,
        kind=row.kind,
        content=tuple(row.content),
        author_id=row.author_id,
        platform_message_id=row.platform_message_id,
        text=row.text,
    )


def _settings(platform: str, workspace: str, row: WorkspaceRow | None) -> WorkspaceSettings:
    if row is None:
        return WorkspaceSettings(platform=platform, workspace=workspace)
    return WorkspaceSettings(
        platform=platform,
        workspace=workspace,
        crisis_message=row.crisis_message,
        crisis_locales=dict(row.crisis_locales or {}),
        ending_enabled=row.ending_enabled,
        abuse_warnings_before_end=row.abuse_warnings_before_end,
        verify_endings=row.verify_endings,
        alert_channel=row.alert_channel,
        retention_days=row.retention_days,
        admin_users=tuple(row.admin_users or ()),
    )


def _lock_id(key: str) -> int:
    """A stable signed 64-bit id for PostgreSQL advisory locks."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


class Repository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._dialect = engine.dialect.name
        # In-process per-conversation locks; cross-process exclusion comes from the database below.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        await self._engine.dispose()

    # -- helpers -------------------------------------------------------------------------------------

    def _insert(self, model: Any) -> Any:
        return (postgresql.insert if self._dialect == "postgresql" else sqlite.insert)(model)

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def conversation_lock(self, key: str) -> AsyncIterator[None]:
        """Serialise turns of one conversation: in this process always, across processes on PostgreSQL.

        SQLite deployments are single-process by design (see README); PostgreSQL gets a session-level
        advisory lock held on a dedicated connection for the whole turn, model call included.
        """
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        async with lock:
            if self._dialect != "postgresql":
                yield
                return
            async with self._engine.connect() as conn:
                await self._advisory(conn, "pg_advisory_lock", key)
                try:
                    yield
                finally:
                    with contextlib.suppress(Exception):
                        await self._advisory(conn, "pg_advisory_unlock", key)

    @staticmethod
    async def _advisory(conn: AsyncConnection, fn: str, key: str) -> None:
        await conn.execute(select(getattr(func, fn)(_lock_id(key))))
        await conn.commit()

    # -- workspace settings -------------------------------------------------------------------------

    async def get_settings(self, platform: str, workspace: str) -> WorkspaceSettings:
        async with self._sessions() as session:
            row = await session.get(WorkspaceRow, (platform, workspace))
            return _settings(platform, workspace, row)

    async def save_settings(self, settings: WorkspaceSettings) -> WorkspaceSettings:
        async with self._tx() as session:
            row = await session.get(WorkspaceRow, (settings.platform, settings.workspace))
            if row is None:
                row = WorkspaceRow(platform=settings.platform, workspace=settings.workspace)
                session.add(row)
            row.crisis_message = settings.crisis_message
            row.crisis_locales = dict(settings.crisis_locales)
            row.ending_enabled = settings.ending_enabled
            row.abuse_warnings_before_end = settings.abuse_warnings_before_end
            row.verify_endings = settings.verify_endings
            row.alert_channel = settings.alert_channel
            row.retention_days = settings.retention_days
            row.admin_users = list(settings.admin_users)
            row.updated_at = utcnow()
        return settings

    async def list_workspaces(self) -> list[WorkspaceSettings]:
        async with self._sessions() as session:
            rows = (await session.execute(select(WorkspaceRow))).scalars().all()
            return [_settings(r.platform, r.workspace, r) for r in rows]

    # -- conversations ------------------------------------------------------------------------------

    async def find_conversation(self, thread: ThreadRef) -> Conversation | None:
        async with self._sessions() as session:
            row = await self._find_row(session, thread)
            return _conversation(row) if row else None

    async def get_conversation(
        self, platform: str, workspace: str, conversation_id: str
    ) -> Conversation | None:
        async with self._sessions() as session:
            row = await self._get_row(session, platform, workspace, conversation_id)
            return _conversation(row) if row else None

    async def find_conversation_by_id(self, platform: str, conversation_id: str) -> Conversation | None:
        """For callbacks that carry only our own conversation id (e.g. a persistent button).

        The caller must still check that the returned thread's workspace is the one the click came from.
        """
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(ConversationRow).where(
                        ConversationRow.platform == platform, ConversationRow.id == conversation_id
                    )
                )
            ).scalar_one_or_none()
            return _conversation(row) if row else None

    @staticmethod
    async def _find_row(session: AsyncSession, thread: ThreadRef) -> ConversationRow | None:
        stmt = select(ConversationRow).where(
            ConversationRow.platform == thread.platform,
            ConversationRow.workspace == thread.workspace,
            ConversationRow.channel == thread.channel,
            ConversationRow.thread == thread.thread,
        )
        return (await session.execute(stmt)).scalar_one_or_none()

    @staticmethod
    async def _get_row(
        session: AsyncSession, platform: str, workspace: str, conversation_id: str
    ) -> ConversationRow | None:
        stmt = select(ConversationRow).where(
            ConversationRow.platform == platform,
            ConversationRow.workspace == workspace,
            ConversationRow.id == conversation_id,
        )
        return (await session.execute(stmt)).scalar_one_or_none()

    async def history(self, conversation_id: str, workspace: str) -> list[HistoryMessage]:
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(MessageRow)
                    .where(MessageRow.conversation_id == conversation_id, MessageRow.workspace == workspace)
                    .order_by(MessageRow.seq)
                )
            ).scalars()
            return [_history(r) for r in rows]

    async def _claim_event(self, session: AsyncSession, platform: str, workspace: str, key: str) -> bool:
        stmt = (
            self._insert(ProcessedEventRow)
            .values(platform=platform, workspace=workspace, dedupe_key=key[:128], created_at=utcnow())
            .on_conflict_do_nothing()
            .returning(ProcessedEventRow.id)
        )
        # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
        return (await session.execute(stmt)).first() is not None

    async def claim_event(self, platform: str, workspace: str, key: str) -> bool:
        """Insert-or-ignore a dedupe key; True when this delivery is the first."""
        async with self._tx() as session:
            return await self._claim_event(session, platform, workspace, key)

    async def begin_turn(
        self,
        thread: ThreadRef,
        dedupe_key: str,
        message: NewMessage,
        *,
        create: bool,
        started_by: str | None = None,
        at_risk: bool = False,
    ) -> BeganTurn:
        """Dedupe, find or create the conversation, and append the user message — one transaction.

        Nothing is appended to an ended conversation: an ended thread's history is closed.
        """
        async with self._tx() as session:
            if not await self._claim_event(session, thread.platform, thread.workspace, dedupe_key):
                return BeganTurn(duplicate=True, conversation=None, stored=False)
            row = await self._find_row(session, thread)
            if row is None:
                if not create:
                    return BeganTurn(duplicate=False, conversation=None, stored=False)
                row = ConversationRow(
                    platform=thread.platform,
                    workspace=thread.workspace,
                    channel=thread.channel,
                    thread=thread.thread,
                    started_by=started_by,
                )
                session.add(row)
                await session.flush()
            if row.status == ConversationStatus.ENDED:
                return BeganTurn(duplicate=False, conversation=_conversation(row), stored=False)
            await self._append(session, row, [message])
            row.user_turns += 1
            row.at_risk = row.at_risk or at_risk
            return BeganTurn(duplicate=False, conversation=_conversation(row), stored=True)

    async def _append(
        self, session: AsyncSession, row: ConversationRow, messages: Sequence[NewMessage]
    ) -> None:
        last = (
            await session.execute(
                select(func.max(MessageRow.seq)).where(MessageRow.conversation_id == row.id)
            )
        ).scalar_one_or_none()
        seq = (last or 0) + 1
        for m in messages:
            session.add(
                MessageRow(
                    conversation_id=row.id,
                    platform=row.platform,
                    workspace=row.workspace,
                    seq=seq,
                    role=m.role,
                    kind=m.kind,
                    author_id=m.author_id,
                    author_name=m.author_name,
                    platform_message_id=m.platform_message_id,
                    text=m.text,
                    content=[dict(b) for b in m.content],
                )
            )
            seq += 1
        await session.flush()

    async def finish_turn(
        self,
        conversation_id: str,
        workspace: str,
        messages: Sequence[NewMessage],
        change: StateChange,
        decisions: Sequence[Decision] = (),
        usage: Sequence[UsageRecord] = (),
    ) -> Conversation:
        """Append the model's side of a turn, apply the state change and write the audit — atomically."""
        async with self._tx() as session:
            stmt = select(ConversationRow).where(
                ConversationRow.id == conversation_id, ConversationRow.workspace == workspace
            )
            if self._dialect == "postgresql":
                stmt = stmt.with_for_update()
            row = (await session.execute(stmt)).scalar_one()
            if messages:
                await self._append(session, row, messages)
            if change.warnings is not None:
                row.warnings = change.warnings
            if change.confirm_pending is not None:
                row.confirm_pending = change.confirm_pending
            if change.at_risk:
                row.at_risk = True
            if change.crisis_shown_turn is not None:
                row.crisis_shown_turn = change.crisis_shown_turn
            if change.end_reason is not None and row.status != ConversationStatus.ENDED:
                row.status = ConversationStatus.ENDED
                row.end_reason = change.end_reason
                row.ended_at = utcnow()
            for d in decisions:
                session.add(
                    DecisionRow(
                        conversation_id=row.id,
                        platform=row.platform,
                        workspace=row.workspace,
                        decision=d.decision,
                        reason=d.reason,
                        note=d.note,
                        warnings=d.warnings,
                        signals=dict(d.signals),
                    )
                )
            self._add_usage(session, row.id, row.platform, row.workspace, usage)
            return _conversation(row)

    async def create_fork(
        self,
        source_id: str,
        workspace: str,
        before_seq: int,
        new_thread: ThreadRef,
        *,
        source_message_id: str,
        started_by: str,
    ) -> Conversation:
        """A new conversation holding every message of the source before ``before_seq``.

        Warnings start at zero; a risk mark is inherited, so a fork can never dodge the veto.
        """
        async with self._tx() as session:
            src = (
                await session.execute(
                    select(ConversationRow).where(
                        ConversationRow.id == source_id, ConversationRow.workspace == workspace
                    )
                )
            ).scalar_one()
            row = ConversationRow(
                platform=new_thread.platform,
                workspace=new_thread.workspace,
                channel=new_thread.channel,
                thread=new_thread.thread,
                at_risk=src.at_risk,
                forked_from=src.id,
                forked_from_message=source_message_id,
                started_by=started_by,
            )
            session.add(row)
            await session.flush()
            earlier = (
                await session.execute(
                    select(MessageRow)
                    .where(MessageRow.conversation_id == src.id, MessageRow.seq < before_seq)
                    .order_by(MessageRow.seq)
                )
            ).scalars()
            n_user = 0
            for m in earlier:
                session.add(
                    MessageRow(
                        conversation_id=row.id,
                        platform=row.platform,
                        workspace=row.workspace,
                        seq=m.seq,
                        role=m.role,
                        kind=m.kind,
                        author_id=m.author_id,
                        author_name=m.author_name,
                        platform_message_id=m.platform_message_id,
                        text=m.text,
                        content=list(m.content),
                        redacted=m.redacted,
                    )
                )
                n_user += m.role == "user" and m.kind == "text"
            row.user_turns = n_user
            await session.flush()
            return _conversation(row)

    async def find_user_message(
        self,
        conversation_id: str,
        workspace: str,
        *,
        platform_message_id: str | None = None,
        number: int | None = None,
    ) -> HistoryMessage | None:
        """A person's message by platform id, or by its 1-based number among the user's text messages."""
        async with self._sessions() as session:
            stmt = (
                select(MessageRow)
                .where(
                    MessageRow.conversation_id == conversation_id,
                    MessageRow.workspace == workspace,
                    MessageRow.role == "user",
                    MessageRow.kind == "text",
                )
                .order_by(MessageRow.seq)
            )
            if platform_message_id is not None:
                stmt = stmt.where(MessageRow.platform_message_id == platform_message_id)
                row = (await session.execute(stmt.limit(1))).scalar_one_or_none()
            elif number is not None and number >= 1:
                row = (await session.execute(stmt.offset(number - 1).limit(1))).scalar_one_or_none()
            else:
                row = None
            return _history(row) if row else None

    async def end_conversation(
        self, conversation_id: str, workspace: str, reason: str, decision: Decision
    ) -> bool:
        """End by command; False when it had already ended (another process may have been first)."""
        async with self._tx() as session:
            result = await session.execute(
                update(ConversationRow)
                .where(
                    ConversationRow.id == conversation_id,
                    ConversationRow.workspace == workspace,
                    ConversationRow.status != ConversationStatus.ENDED,
                )
                .values(status=ConversationStatus.ENDED, end_reason=reason, ended_at=utcnow())
            )
            if not getattr(result, "rowcount", 0):
                return False
            row = (
                await session.execute(select(ConversationRow).where(ConversationRow.id == conversation_id))
            ).scalar_one()
            session.add(
                DecisionRow(
                    conversation_id=conversation_id,
                    platform=row.platform,
                    workspace=workspace,
                    decision=decision.decision,
                    reason=decision.reason,
                    note=decision.note,
                    warnings=decision.warnings,
                    signals=dict(decision.signals),
                )
            )
            return True

    async def mark_reminded(self, conversation: Conversation, user_id: str) -> bool:
        """True the first time this user is told this thread has ended."""
        async with self._tx() as session:
            stmt = (
                self._insert(ReminderRow)
                .values(
                    conversation_id=conversation.id,
                    platform=conversation.thread.platform,
                    workspace=conversation.thread.workspace,
                    user_id=user_id,
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing()
                .returning(ReminderRow.id)
            )
            return (await session.execute(stmt)).first() is not None

    @staticmethod
    def _add_usage(
        session: AsyncSession,
        conversation_id: str,
        platform: str,
        workspace: str,
        usage: Sequence[UsageRecord],
    ) -> None:
        for u in usage:
            session.add(
                ModelUsageRow(
                    conversation_id=conversation_id,
                    platform=platform,
                    workspace=workspace,
                    model=u.model[:64],
                    purpose=u.purpose,
                    input_tokens=u.input_tokens,
                    cache_creation_input_tokens=u.cache_creation_input_tokens,
                    cache_read_input_tokens=u.cache_read_input_tokens,
                    output_tokens=u.output_tokens,
                )
            )

    async def record_usage(self, conversation: Conversation, usage: Sequence[UsageRecord]) -> None:
        """Usage of calls whose turn failed later: they were billed all the same."""
        if not usage:
            return
        async with self._tx() as session:
            t = conversation.thread
            self._add_usage(session, conversation.id, t.platform, t.workspace, usage)

    async def usage_totals(self, platform: str, workspace: str) -> dict[str, int]:
        cols = (
            ModelUsageRow.input_tokens,
            ModelUsageRow.cache_creation_input_tokens,
            ModelUsageRow.cache_read_input_tokens,
            ModelUsageRow.output_tokens,
        )
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(func.count(), *(func.coalesce(func.sum(c), 0) for c in cols)).where(
                        ModelUsageRow.platform == platform, ModelUsageRow.workspace == workspace
                    )
                )
            ).one()
        keys = (
            "calls",
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
        )
        return {k: int(v or 0) for k, v in zip(keys, row, strict=True)}

    # -- feedback and audit -------------------------------------------------------------------------

    async def record_feedback(self, conversation: Conversation, user_id: str, comment: str | None) -> None:
        async with self._tx() as session:
            session.add(
                FeedbackRow(
                    conversation_id=conversation.id,
                    platform=conversation.thread.platform,
                    workspace=conversation.thread.workspace,
                    user_id=user_id,
                    comment=comment,
                )
            )

    async def list_endings(self, platform: str, workspace: str, limit: int = 20) -> list[EndingRecord]:
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(ConversationRow)
                    .where(
                        ConversationRow.platform == platform,
                        ConversationRow.workspace == workspace,
                        ConversationRow.status == ConversationStatus.ENDED,
                    )
                    .order_by(ConversationRow.ended_at.desc())  # type: ignore[union-attr]
                    .limit(limit)
                )
            ).scalars()
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
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(FeedbackRow, ConversationRow)
                    .join(ConversationRow, ConversationRow.id == FeedbackRow.conversation_id)
                    .where(FeedbackRow.platform == platform, FeedbackRow.workspace == workspace)
                    .order_by(FeedbackRow.created_at.desc())  # type: ignore[attr-defined]
                    .limit(limit)
                )
            ).all()
            return [
                FeedbackRecord(
                    f.conversation_id,
                    ThreadRef(c.platform, c.workspace, c.channel, c.thread),
                    f.user_id,
                    f.comment,
                    f.created_at,
                )
                for f, c in rows
            ]

    async def list_decisions(
        self, platform: str, workspace: str, limit: int = 50, conversation_id: str | None = None
    ) -> list[DecisionRecord]:
        async with self._sessions() as session:
            stmt = select(DecisionRow).where(
                DecisionRow.platform == platform, DecisionRow.workspace == workspace
            )
            if conversation_id:
                stmt = stmt.where(DecisionRow.conversation_id == conversation_id)
            rows = (await session.execute(stmt.order_by(DecisionRow.id.desc()).limit(limit))).scalars()  # type: ignore[union-attr]
            return [
                DecisionRecord(
                    r.conversation_id, r.decision, r.reason, r.note, r.warnings, dict(r.signals), r.created_at
                )
                for r in rows
            ]

    async def delete_processed_events_before(self, cutoff: datetime) -> int:
        async with self._tx() as session:
            result = await session.execute(
                delete(ProcessedEventRow).where(ProcessedEventRow.created_at < cutoff)
            )
            return int(getattr(result, "rowcount", 0) or 0)
