"""Conversations outside the turn: finding them, forking, participants, ending by command, reminders."""

from __future__ import annotations

from sqlalchemy import exists, or_, select, update

from bot.types import Conversation, ConversationStatus, Decision, HistoryMessage, ThreadRef
from storage.models import CONVERSATIONS, REMINDERS, new_id, utcnow
from storage.rows import (
    _C,
    _M,
    ENDED,
    HISTORY_COLUMNS,
    conversation_from_row,
    decode_cues,
    history_from_row,
    new_conversation_row,
    thread_params,
)
from storage.statements import RepositoryPart


class ConversationQueries(RepositoryPart):
    """``find_conversation``, ``get_conversation``, ``create_fork``, ``is_participant``,
    ``find_user_message``, ``end_conversation`` and ``mark_reminded``."""

    async def find_conversation(self, thread: ThreadRef) -> Conversation | None:
        return await self._db.run(self._find_conversation, thread)

    def _find_conversation(self, thread: ThreadRef) -> Conversation | None:
        with self._db.read() as conn:
            row = conn.execute(self._sql.find, thread_params(thread)).first()
        return conversation_from_row(row) if row else None

    async def get_conversation(
        self, platform: str, workspace: str, conversation_id: str
    ) -> Conversation | None:
        return await self._db.run(self._get_conversation, platform, workspace, conversation_id)

    def _get_conversation(self, platform: str, workspace: str, conversation_id: str) -> Conversation | None:
        params = {"platform": platform, "workspace": workspace, "id": conversation_id}
        with self._db.read() as conn:
            row = conn.execute(self._sql.get, params).first()
        return conversation_from_row(row) if row else None

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

        Warnings start at zero; both risk marks (hard and soft) are inherited, so a fork can never
        dodge the veto or the verifier.
        """
        return await self._db.run(
            self._create_fork, source_id, workspace, before_seq, new_thread, source_message_id, started_by
        )

    def _create_fork(
        self,
        source_id: str,
        workspace: str,
        before_seq: int,
        new_thread: ThreadRef,
        source_message_id: str,
        started_by: str,
    ) -> Conversation:
        with self._db.write() as conn:
            src = conn.execute(
                select(_C.id, _C.at_risk, _C.risk_source, _C.soft_risk_cues).where(
                    _C.id == source_id, _C.workspace == workspace
                )
            ).one()
            earlier = conn.execute(
                select(
                    _M.seq,
                    _M.role,
                    _M.kind,
                    _M.author_id,
                    _M.author_name,
                    _M.platform_message_id,
                    _M.text,
                    _M.content,
                    _M.redacted,
                )
                .where(_M.conversation_id == src.id, _M.seq < before_seq)
                .order_by(_M.seq)
            ).all()
            conv = Conversation(
                id=new_id(),
                thread=new_thread,
                status=ConversationStatus.ACTIVE,
                end_reason=None,
                warnings=0,
                confirm_pending=False,
                at_risk=src.at_risk,
                risk_source=src.risk_source,
                soft_cues=decode_cues(src.soft_risk_cues),
                crisis_shown_turn=None,
                user_turns=sum(m.role == "user" and m.kind == "text" for m in earlier),
                forked_from=src.id,
                forked_from_message=source_message_id,
            )
            conn.execute(self._sql.create, new_conversation_row(conv, started_by))
            if earlier:
                now = utcnow()
                conn.execute(
                    self._sql.append,
                    [
                        {
                            "conversation_id": conv.id,
                            "platform": new_thread.platform,
                            "workspace": new_thread.workspace,
                            "seq": m.seq,
                            "role": m.role,
                            "kind": m.kind,
                            "author_id": m.author_id,
                            "author_name": m.author_name,
                            "platform_message_id": m.platform_message_id,
                            "text": m.text,
                            "content": list(m.content),
                            "redacted": m.redacted,
                            "created_at": now,
                        }
                        for m in earlier
                    ],
                )
            return conv

    async def is_participant(self, conversation_id: str, workspace: str, user_id: str) -> bool:
        """Whether the user started the conversation or wrote in it (forks count the copied messages)."""
        return await self._db.run(self._is_participant, conversation_id, workspace, user_id)

    def _is_participant(self, conversation_id: str, workspace: str, user_id: str) -> bool:
        started = exists().where(
            _C.id == conversation_id, _C.workspace == workspace, _C.started_by == user_id
        )
        wrote = exists().where(
            _M.conversation_id == conversation_id,
            _M.workspace == workspace,
            _M.author_id == user_id,
            _M.role == "user",
        )
        with self._db.read() as conn:
            return bool(conn.execute(select(or_(started, wrote))).scalar())

    async def find_user_message(
        self,
        conversation_id: str,
        workspace: str,
        *,
        platform_message_id: str | None = None,
        number: int | None = None,
    ) -> HistoryMessage | None:
        """A person's message by platform id, or by its 1-based number among the user's text messages."""
        return await self._db.run(
            self._find_user_message, conversation_id, workspace, platform_message_id, number
        )

    def _find_user_message(
        self, conversation_id: str, workspace: str, platform_message_id: str | None, number: int | None
    ) -> HistoryMessage | None:
        stmt = (
            select(*HISTORY_COLUMNS)
            .where(
                _M.conversation_id == conversation_id,
                _M.workspace == workspace,
                _M.role == "user",
                _M.kind == "text",
            )
            .order_by(_M.seq)
        )
        if platform_message_id is not None:
            stmt = stmt.where(_M.platform_message_id == platform_message_id).limit(1)
        elif number is not None and number >= 1:
            stmt = stmt.offset(number - 1).limit(1)
        else:
            return None
        with self._db.read() as conn:
            row = conn.execute(stmt).first()
        return history_from_row(row) if row else None

    async def end_conversation(
        self, conversation_id: str, workspace: str, reason: str, decision: Decision
    ) -> bool:
        """End by command; False when it had already ended (another process may have been first)."""
        return await self._db.run(self._end_conversation, conversation_id, workspace, reason, decision)

    def _end_conversation(
        self, conversation_id: str, workspace: str, reason: str, decision: Decision
    ) -> bool:
        with self._db.write() as conn:
            row = conn.execute(
                update(CONVERSATIONS)
                .where(_C.id == conversation_id, _C.workspace == workspace, _C.status != ENDED)
                .values(status=ENDED, end_reason=reason, ended_at=utcnow())
                .returning(_C.platform)
            ).first()
            if row is None:
                return False
            conn.execute(
                self._sql.decision,
                {
                    "conversation_id": conversation_id,
                    "platform": row.platform,
                    "workspace": workspace,
                    "decision": decision.decision,
                    "reason": decision.reason,
                    "note": decision.note,
                    "warnings": decision.warnings,
                    "signals": dict(decision.signals),
                    "created_at": utcnow(),
                },
            )
            return True

    async def mark_reminded(self, conversation: Conversation, user_id: str) -> bool:
        """True the first time this user is told this thread has ended."""
        return await self._db.run(self._mark_reminded, conversation, user_id)

    def _mark_reminded(self, conversation: Conversation, user_id: str) -> bool:
        stmt = (
            self._insert(REMINDERS)
            .values(
                conversation_id=conversation.id,
                platform=conversation.thread.platform,
                workspace=conversation.thread.workspace,
                user_id=user_id,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing()
            .returning(REMINDERS.c.id)
        )
        with self._db.write() as conn:
            return conn.execute(stmt).first() is not None
