"""The statements of the per-turn path, built once per repository, and the state every part of the
repository shares: building a statement costs several times more than executing a cached one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Table, bindparam, func, insert, select, true, update

from storage.db import Database, dialect_insert
from storage.history_cache import HistoryCache
from storage.models import CONVERSATIONS, DECISIONS, EVENTS, INBOX, MESSAGES, USAGE
from storage.rows import (
    _C,
    _M,
    _W,
    CONVERSATION_COLUMNS,
    DETECTOR,
    ENDED,
    ENTRY_COLUMNS,
    HISTORY_COLUMNS,
    SETTINGS_COLUMNS,
)


class Statements:
    """The statements of the per-turn path, built once (parameters are bound at execution)."""

    def __init__(self, dialect: str) -> None:
        pg = dialect == "postgresql"
        self.insert = dialect_insert(dialect)
        self.find = select(*CONVERSATION_COLUMNS).where(
            _C.platform == bindparam("t_platform"),
            _C.workspace == bindparam("t_workspace"),
            _C.channel == bindparam("t_channel"),
            _C.thread == bindparam("t_thread"),
        )
        self.get = select(*CONVERSATION_COLUMNS).where(
            _C.platform == bindparam("platform"),
            _C.workspace == bindparam("workspace"),
            _C.id == bindparam("id"),
        )
        # The conversation and its last message number. PostgreSQL: lock the row, so that concurrent
        # finishes of one conversation apply one after the other.
        last_seq = select(func.max(_M.seq)).where(_M.conversation_id == _C.id).scalar_subquery()
        scoped = select(*CONVERSATION_COLUMNS, last_seq).where(
            _C.id == bindparam("id"), _C.workspace == bindparam("workspace")
        )
        self.for_update = scoped.with_for_update(of=CONVERSATIONS) if pg else scoped
        ev = EVENTS.c
        self.claim = (
            self.insert(EVENTS)
            .values(
                platform=bindparam("platform"),
                workspace=bindparam("workspace"),
                dedupe_key=bindparam("dedupe_key"),
                created_at=bindparam("created_at"),
            )
            .on_conflict_do_nothing()
            .returning(ev.id)
        )
        self.create = insert(CONVERSATIONS)
        # One more user turn in the thread's conversation, unless it has ended (the usual case of a turn:
        # find and update in one statement; PostgreSQL locks the row).
        bump = (
            update(CONVERSATIONS)
            .where(
                _C.platform == bindparam("t_platform"),
                _C.workspace == bindparam("t_workspace"),
                _C.channel == bindparam("t_channel"),
                _C.thread == bindparam("t_thread"),
                _C.status != ENDED,
            )
            .returning(*CONVERSATION_COLUMNS)
        )
        self.bump = bump.values(user_turns=_C.user_turns + 1)
        self.bump_at_risk = bump.values(
            user_turns=_C.user_turns + 1,
            at_risk=True,
            risk_source=func.coalesce(_C.risk_source, DETECTOR),
        )
        self.set_soft_cues = (
            update(CONVERSATIONS)
            .where(_C.id == bindparam("conv_id"))
            .values(soft_risk_cues=bindparam("new_soft_risk_cues"))
        )
        # (Update statements may not reuse column names for their parameters.)
        state: dict[str, Any] = {
            "warnings": bindparam("new_warnings"),
            "confirm_pending": bindparam("new_confirm_pending"),
            "at_risk": bindparam("new_at_risk"),
            "risk_source": bindparam("new_risk_source"),
            "soft_risk_cues": bindparam("new_soft_risk_cues"),
            "crisis_shown_turn": bindparam("new_crisis_shown_turn"),
        }
        by_id = update(CONVERSATIONS).where(_C.id == bindparam("conv_id"))
        self.set_state = by_id.values(**state)
        self.set_state_ended = by_id.values(
            **state,
            status=ENDED,
            end_reason=bindparam("new_end_reason"),
            ended_at=bindparam("new_ended_at"),
        )
        self.append = insert(MESSAGES)
        # One message numbered after the conversation's last.
        self.append_next = (
            insert(MESSAGES)
            .values(
                seq=select(func.coalesce(func.max(_M.seq), 0) + 1)
                .where(_M.conversation_id == bindparam("seq_of"))
                .scalar_subquery()
            )
            .returning(_M.seq)
        )
        # What the history cache is checked against: the last message, and how many were redacted.
        # (By conversation only, so that an index on (conversation_id, redacted) can answer it; the
        # messages themselves are read scoped to the workspace.)
        self.history_state = select(
            select(func.max(_M.seq)).where(_M.conversation_id == bindparam("id")).scalar_subquery(),
            select(func.count())
            .where(_M.conversation_id == bindparam("id"), _M.redacted == true())
            .scalar_subquery(),
        )
        scope = (_M.conversation_id == bindparam("id"), _M.workspace == bindparam("workspace"))
        self.history_after = (
            select(*HISTORY_COLUMNS).where(*scope, _M.seq > bindparam("after")).order_by(_M.seq)
        )
        self.settings = select(*SETTINGS_COLUMNS).where(
            _W.platform == bindparam("platform"), _W.workspace == bindparam("workspace")
        )
        self.decision = insert(DECISIONS)
        self.usage = insert(USAGE)
        # -- the inbox (``storage.inbox``; the turn's transactions fence with the first two) --
        inbox = INBOX.c
        held = (inbox.id == bindparam("e_id"), inbox.owner == bindparam("e_owner"))
        # Check a hold and lock its row (PostgreSQL) for the rest of the transaction: its state back.
        self.inbox_fence = (
            update(INBOX).where(*held).values(updated_at=bindparam("e_now")).returning(inbox.state)
        )
        # (Update statements may not reuse column names for their parameters, hence the e_ prefix.)
        self.inbox_set_state = (
            update(INBOX)
            .where(*held)
            .values(state=bindparam("e_state"), updated_at=bindparam("e_now"))
            .returning(inbox.id)
        )
        self.inbox_set_outcome = (
            update(INBOX)
            .where(*held)
            .values(state=bindparam("e_state"), result=bindparam("e_result"), updated_at=bindparam("e_now"))
            .returning(inbox.id)
        )
        self.inbox_set_reply_ref = (
            update(INBOX)
            .where(*held)
            .values(reply_ref=bindparam("e_reply_ref"), updated_at=bindparam("e_now"))
            .returning(inbox.id)
        )
        self.inbox_delivered = (
            update(INBOX)
            .where(*held)
            .values(
                delivered_at=func.coalesce(inbox.delivered_at, bindparam("e_now")),
                updated_at=bindparam("e_now"),
            )
            .returning(inbox.id)
        )
        self.inbox_accept = self.insert(INBOX).on_conflict_do_nothing().returning(*ENTRY_COLUMNS)
        self.event_exists = select(ev.id).where(
            ev.platform == bindparam("platform"),
            ev.workspace == bindparam("workspace"),
            ev.dedupe_key == bindparam("dedupe_key"),
        )
        self.inbox_entry = select(*ENTRY_COLUMNS).where(inbox.id == bindparam("e_id"))
        self.inbox_held_message = select(inbox.message).where(*held)
        self.inbox_pending = select(func.count()).select_from(INBOX).where(inbox.delivered_at.is_(None))
        lock_id = bindparam("id", type_=BigInteger)
        self.try_lock = select(func.pg_try_advisory_lock(lock_id))
        self.unlock = select(func.pg_advisory_unlock(lock_id))


class RepositoryPart:
    """What the repository's parts share: the database, its dialect, the statements and the cache."""

    _db: Database
    _dialect: str
    _sql: Statements
    _history_cache: HistoryCache

    def _insert(self, table: Table) -> Any:
        return self._sql.insert(table)
