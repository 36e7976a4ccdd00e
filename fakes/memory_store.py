"""``MemoryStore``: the core's storage ports in memory, faithful to ``storage.repository.Repository``.

Every call is one atomic step, like the repository's one transaction per call: it suspends once (the
repository hops to a database thread there, so other turns may run in between) and then reads and writes
without awaiting again. What it returns is copied out, and what it stores is copied in (message content and
audit signals through JSON, as the database columns do), so a caller can never change what was stored.
Never ``StorageUnavailable``: there is no database to lose.

``tests/test_store_contract.py`` runs the same suite over this store and the repository on SQLite and
PostgreSQL; a behaviour the two disagree on is a bug in one of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.inbox import decode_message, decode_result, encode_message, encode_result, forgotten
from bot.locks import KeyedLocks
from bot.ports import AdminStore, ConversationStore, InboxStore, LeaseLost
from bot.types import (
    Accepted,
    AuditRecord,
    BeganTurn,
    Conversation,
    ConversationStatus,
    Decision,
    DecisionRecord,
    EndingRecord,
    FeedbackRecord,
    HistoryMessage,
    InboxEntry,
    InboxHold,
    InboxState,
    IncomingMessage,
    NewMessage,
    StateChange,
    ThreadRef,
    TurnResult,
    UsageGrouping,
    UsageLine,
    UsageRecord,
    UserConversation,
    WorkspaceSettings,
)

# The risk_source of a hard mark the local detector set (the engine names the others).
DETECTOR = "detector"
# What the repository keeps of a dedupe key and of a cue name (its columns' widths).
DEDUPE_KEY_CHARS = 128
CUE_CHARS = 64
_CUE = re.compile(r"[^A-Za-z0-9_:.\-]")
# What "forget me" leaves of a message (``storage.maintenance.redacted_content``), and how much of a
# person's latest message their conversation list carries (``storage.people``).
FORGOTTEN: tuple[dict[str, object], ...] = (
    {"type": "text", "text": "[message removed: at the author's request]"},
)
LATEST_TEXT_CHARS = 200

_Thread = tuple[str, str, str, str]


def _now() -> datetime:
    return datetime.now(UTC)


def _thread_key(thread: ThreadRef) -> _Thread:
    return (thread.platform, thread.workspace, thread.channel, thread.thread)


def _through_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def merge_cues(old: Sequence[str], new: Sequence[str]) -> tuple[str, ...]:
    """Cue names as the repository stores them: cleaned, at most 64 characters, unique and sorted."""
    clean = {_CUE.sub("", c)[:CUE_CHARS] for c in (*old, *new)} - {""}
    return tuple(sorted(clean))


@dataclass
class _Message:
    seq: int
    role: str
    kind: str
    content: tuple[dict[str, object], ...]
    author_id: str | None
    author_name: str | None
    platform_message_id: str | None
    text: str | None
    redacted: bool = False
    # The repository's serial id: the order messages were stored in, across every conversation.
    order: int = 0
    created_at: datetime = field(default_factory=_now)

    @classmethod
    def new(cls, seq: int, m: NewMessage, order: int) -> _Message:
        content = tuple(_through_json([dict(b) for b in m.content]))
        return cls(
            seq,
            m.role,
            m.kind,
            content,
            m.author_id,
            m.author_name,
            m.platform_message_id,
            m.text,
            order=order,
        )

    def view(self) -> HistoryMessage:
        return HistoryMessage(
            seq=self.seq,
            role=self.role,
            kind=self.kind,
            content=tuple(_through_json(list(self.content))),
            author_id=self.author_id,
            platform_message_id=self.platform_message_id,
            text=self.text,
        )


@dataclass
class _Conversation:
    state: Conversation
    started_by: str | None
    messages: list[_Message] = field(default_factory=list)
    ended_at: datetime | None = None
    ended_order: int = 0  # breaks ties between endings of the same instant

    @property
    def workspace(self) -> str:
        return self.state.thread.workspace

    def next_seq(self) -> int:
        return self.messages[-1].seq + 1 if self.messages else 1


@dataclass(frozen=True)
class _Decision:
    platform: str
    workspace: str
    record: DecisionRecord


@dataclass(frozen=True)
class _Feedback:
    conversation_id: str
    platform: str
    workspace: str
    user_id: str
    comment: str | None
    created_at: datetime
    updated_at: datetime


@dataclass
class _Entry:
    """An inbox entry as the ``inbox`` table holds it (message and result as their JSON encodings)."""

    id: int
    platform: str
    workspace: str
    dedupe_key: str
    thread: _Thread
    message: dict[str, Any]
    state: InboxState
    owner: str
    lease_until: datetime
    attempts: int
    received_at: datetime
    updated_at: datetime
    delivered_at: datetime | None = None
    reply_ref: str | None = None
    result: dict[str, Any] | None = None

    def view(self) -> InboxEntry:
        return InboxEntry(
            id=str(self.id),
            message=decode_message(_through_json(self.message)),
            state=self.state,
            owner=self.owner,
            attempts=self.attempts,
            received_at=self.received_at,
            delivered=self.delivered_at is not None,
            reply_ref=self.reply_ref,
            result=decode_result(_through_json(self.result)) if self.result is not None else None,
        )


@dataclass(frozen=True)
class _Usage:
    platform: str
    workspace: str
    record: UsageRecord
    conversation_id: str = ""
    created_at: datetime = field(default_factory=_now)


def _copy_settings(s: WorkspaceSettings) -> WorkspaceSettings:
    return dataclasses.replace(s, crisis_locales=dict(s.crisis_locales), admin_users=tuple(s.admin_users))


class MemoryStore:
    """Implements ``bot.ports.ConversationStore``, ``bot.ports.AdminStore`` and ``bot.ports.InboxStore``
    in one process's memory.

    For tests and benchmarks of the core: a turn costs no thread hop and no SQL. Conversation locks are
    in-process only, which is all one process can share anyway. Inbox leases are measured with ``clock``
    (default: the wall clock), so a test can let a lease run out by moving its clock instead of sleeping.
    """

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self._clock = clock or _now
        self._settings: dict[tuple[str, str], WorkspaceSettings] = {}
        self._conversations: dict[str, _Conversation] = {}
        self._by_thread: dict[_Thread, str] = {}
        self._events: set[tuple[str, str, str]] = set()
        self._reminders: set[tuple[str, str]] = set()
        self._decisions: list[_Decision] = []
        self._admin_audit: list[AuditRecord] = []
        self._feedback: list[_Feedback] = []
        self._usage: list[_Usage] = []
        self._endings = itertools.count(1)
        self._locks = KeyedLocks()
        self._inbox: dict[int, _Entry] = {}
        self._inbox_ids = itertools.count(1)
        self._message_order = itertools.count(1)

    async def close(self) -> None:
        """Nothing to release; here so that tests can close any store alike."""

    @staticmethod
    async def _hop() -> None:
        # Where the repository waits for its database thread: other tasks may run before the call.
        await asyncio.sleep(0)

    # -- lookups inside one call ---------------------------------------------------------------------

    def _scoped(self, conversation_id: str, workspace: str) -> _Conversation | None:
        conv = self._conversations.get(conversation_id)
        return conv if conv is not None and conv.workspace == workspace else None

    def _in_thread(self, thread: ThreadRef) -> _Conversation | None:
        cid = self._by_thread.get(_thread_key(thread))
        return self._conversations[cid] if cid is not None else None

    def _claim(self, platform: str, workspace: str, key: str) -> bool:
        event = (platform, workspace, key[:DEDUPE_KEY_CHARS])
        if event in self._events:
            return False
        self._events.add(event)
        return True

    def _settings_of(self, platform: str, workspace: str) -> WorkspaceSettings:
        stored = self._settings.get((platform, workspace))
        if stored is None:
            return WorkspaceSettings(platform=platform, workspace=workspace)
        return _copy_settings(stored)

    def _add(self, conv: _Conversation, conversation: Conversation) -> None:
        key = _thread_key(conversation.thread)
        if key in self._by_thread:
            raise ValueError("the thread already holds a conversation")
        self._conversations[conversation.id] = conv
        self._by_thread[key] = conversation.id

    def _end(self, conv: _Conversation, reason: str) -> None:
        conv.state = dataclasses.replace(conv.state, status=ConversationStatus.ENDED, end_reason=reason)
        conv.ended_at = _now()
        conv.ended_order = next(self._endings)

    def _audit(self, conv: _Conversation, decisions: Sequence[Decision]) -> None:
        t = conv.state.thread
        for d in decisions:
            record = DecisionRecord(
                conv.state.id,
                d.decision,
                d.reason,
                d.note,
                d.warnings,
                _through_json(dict(d.signals)),
                _now(),
            )
            self._decisions.append(_Decision(t.platform, t.workspace, record))

    def _bill(self, conv: Conversation, usage: Sequence[UsageRecord]) -> None:
        t = conv.thread
        self._usage.extend(_Usage(t.platform, t.workspace, u, conv.id) for u in usage)

    # -- ConversationStore -----------------------------------------------------------------------------

    async def get_settings(self, platform: str, workspace: str) -> WorkspaceSettings:
        await self._hop()
        return self._settings_of(platform, workspace)

    def conversation_lock(self, key: str) -> AbstractAsyncContextManager[None]:
        return self._lock(key)

    @asynccontextmanager
    async def _lock(self, key: str) -> AsyncIterator[None]:
        async with self._locks(key):
            yield

    async def begin_turn(
        self,
        thread: ThreadRef,
        dedupe_key: str,
        message: NewMessage,
        *,
        create: bool,
        started_by: str | None = None,
        at_risk: bool = False,
        soft_cues: Sequence[str] = (),
        hold: InboxHold | None = None,
    ) -> BeganTurn:
        await self._hop()
        entry = self._held(hold) if hold is not None else None  # LeaseLost before anything changes
        conv = self._in_thread(thread)
        if conv is None and not create:
            # Not our thread: no dedupe key either.
            return BeganTurn(duplicate=False, conversation=None, stored=False)
        if not self._claim(thread.platform, thread.workspace, dedupe_key):
            return BeganTurn(duplicate=True, conversation=None, stored=False)
        if conv is not None and conv.state.ended:
            return BeganTurn(duplicate=False, conversation=conv.state, stored=False)
        if conv is None:
            state = Conversation(
                id=uuid.uuid4().hex,
                thread=thread,
                status=ConversationStatus.ACTIVE,
                end_reason=None,
                warnings=0,
                confirm_pending=False,
                at_risk=at_risk,
                crisis_shown_turn=None,
                user_turns=1,
                soft_cues=merge_cues((), soft_cues),
                risk_source=DETECTOR if at_risk else None,
            )
            conv = _Conversation(state, started_by)
            self._add(conv, state)
        else:
            state = conv.state
            conv.state = dataclasses.replace(
                state,
                user_turns=state.user_turns + 1,
                at_risk=state.at_risk or at_risk,
                risk_source=state.risk_source or (DETECTOR if at_risk else None),
                soft_cues=merge_cues(state.soft_cues, soft_cues),
            )
        conv.messages.append(_Message.new(conv.next_seq(), message, next(self._message_order)))
        if entry is not None:
            self._set_state(entry, InboxState.ANSWERING)
        return BeganTurn(
            duplicate=False,
            conversation=conv.state,
            stored=True,
            settings=self._settings_of(thread.platform, thread.workspace),
            history=tuple(m.view() for m in conv.messages),
        )

    async def finish_turn(
        self,
        conversation_id: str,
        workspace: str,
        messages: Sequence[NewMessage],
        change: StateChange,
        decisions: Sequence[Decision] = (),
        usage: Sequence[UsageRecord] = (),
        outcome: tuple[InboxHold, TurnResult] | None = None,
    ) -> Conversation:
        await self._hop()
        conv = self._scoped(conversation_id, workspace)
        if conv is None:
            raise LookupError(f"no conversation {conversation_id} in workspace {workspace}")
        if outcome is not None:
            entry = self._held(outcome[0])
            if entry.state is InboxState.ANSWERED:
                # Already stored (the repository's retry after a commit whose acknowledgement was lost).
                return conv.state
            self._set_state(entry, InboxState.ANSWERED, outcome[1])
        for m in messages:
            conv.messages.append(_Message.new(conv.next_seq(), m, next(self._message_order)))
        state = conv.state
        if change.warnings is not None:
            state = dataclasses.replace(state, warnings=change.warnings)
        if change.confirm_pending is not None:
            state = dataclasses.replace(state, confirm_pending=change.confirm_pending)
        if change.at_risk:
            state = dataclasses.replace(
                state, at_risk=True, risk_source=state.risk_source or change.risk_source
            )
        if change.soft_cues:
            state = dataclasses.replace(state, soft_cues=merge_cues(state.soft_cues, change.soft_cues))
        if change.crisis_shown_turn is not None:
            state = dataclasses.replace(state, crisis_shown_turn=change.crisis_shown_turn)
        conv.state = state
        if change.end_reason is not None and not state.ended:
            self._end(conv, change.end_reason)
        self._audit(conv, decisions)
        self._bill(conv.state, usage)
        return conv.state

    async def resume_turn(self, thread: ThreadRef, hold: InboxHold) -> BeganTurn:
        await self._hop()
        entry = self._held(hold)
        conv = self._in_thread(thread)
        if conv is None or conv.state.ended:
            return BeganTurn(duplicate=False, conversation=conv.state if conv else None, stored=False)
        history = [m.view() for m in conv.messages]
        return BeganTurn(
            duplicate=False,
            conversation=conv.state,
            stored=True,
            settings=self._settings_of(thread.platform, thread.workspace),
            history=tuple(history[: _through(history, entry.message["message_id"])]),
        )

    async def find_conversation(self, thread: ThreadRef) -> Conversation | None:
        await self._hop()
        conv = self._in_thread(thread)
        return conv.state if conv is not None else None

    async def get_conversation(
        self, platform: str, workspace: str, conversation_id: str
    ) -> Conversation | None:
        await self._hop()
        conv = self._scoped(conversation_id, workspace)
        return conv.state if conv is not None and conv.state.thread.platform == platform else None

    async def history(self, conversation_id: str, workspace: str) -> list[HistoryMessage]:
        await self._hop()
        conv = self._scoped(conversation_id, workspace)
        return [m.view() for m in conv.messages] if conv is not None else []

    async def claim_event(self, platform: str, workspace: str, key: str) -> bool:
        await self._hop()
        return self._claim(platform, workspace, key)

    async def mark_reminded(self, conversation: Conversation, user_id: str) -> bool:
        await self._hop()
        reminder = (conversation.id, user_id)
        if reminder in self._reminders:
            return False
        self._reminders.add(reminder)
        return True

    async def is_participant(self, conversation_id: str, workspace: str, user_id: str) -> bool:
        await self._hop()
        conv = self._scoped(conversation_id, workspace)
        if conv is None:
            return False
        return conv.started_by == user_id or any(
            m.role == "user" and m.author_id == user_id for m in conv.messages
        )

    async def find_user_message(
        self,
        conversation_id: str,
        workspace: str,
        *,
        platform_message_id: str | None = None,
        number: int | None = None,
    ) -> HistoryMessage | None:
        await self._hop()
        conv = self._scoped(conversation_id, workspace)
        if conv is None:
            return None
        texts = [m for m in conv.messages if m.role == "user" and m.kind == "text"]
        if platform_message_id is not None:
            found = next((m for m in texts if m.platform_message_id == platform_message_id), None)
        elif number is not None and 1 <= number <= len(texts):
            found = texts[number - 1]
        else:
            found = None
        return found.view() if found is not None else None

    async def end_conversation(
        self, conversation_id: str, workspace: str, reason: str, decision: Decision
    ) -> bool:
        await self._hop()
        conv = self._scoped(conversation_id, workspace)
        if conv is None or conv.state.ended:
            return False
        self._end(conv, reason)
        self._audit(conv, [decision])
        return True

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
        await self._hop()
        source = self._scoped(source_id, workspace)
        if source is None:
            raise LookupError(f"no conversation {source_id} in workspace {workspace}")
        # Copies are new rows: stored now, after every message before them.
        earlier = [
            dataclasses.replace(m, order=next(self._message_order), created_at=_now())
            for m in source.messages
            if m.seq < before_seq
        ]
        src = source.state
        state = Conversation(
            id=uuid.uuid4().hex,
            thread=new_thread,
            status=ConversationStatus.ACTIVE,
            end_reason=None,
            warnings=0,
            confirm_pending=False,
            at_risk=src.at_risk,
            risk_source=src.risk_source,
            soft_cues=src.soft_cues,
            crisis_shown_turn=None,
            user_turns=sum(m.role == "user" and m.kind == "text" for m in earlier),
            forked_from=src.id,
            forked_from_message=source_message_id,
        )
        self._add(_Conversation(state, started_by, earlier), state)
        return state

    async def record_usage(self, conversation: Conversation, usage: Sequence[UsageRecord]) -> None:
        await self._hop()
        self._bill(conversation, usage)

    async def record_feedback(self, conversation: Conversation, user_id: str, comment: str | None) -> bool:
        await self._hop()
        t, now = conversation.thread, _now()
        for i, f in enumerate(self._feedback):
            if (f.conversation_id, f.user_id) == (conversation.id, user_id):
                # An edit of the person's one report; a blank submission keeps its comment.
                edited = comment if comment is not None else f.comment
                self._feedback[i] = dataclasses.replace(f, comment=edited, updated_at=now)
                return False
        self._feedback.append(_Feedback(conversation.id, t.platform, t.workspace, user_id, comment, now, now))
        return True

    # -- AdminStore ------------------------------------------------------------------------------------

    async def save_settings(
        self, settings: WorkspaceSettings, audit: Sequence[AuditRecord] = ()
    ) -> WorkspaceSettings:
        await self._hop()
        self._settings[(settings.platform, settings.workspace)] = _copy_settings(settings)
        # What the repository's columns keep: the ids and names cut to their widths, the values as JSON.
        self._admin_audit.extend(
            dataclasses.replace(
                r,
                actor_id=r.actor_id[:64],
                actor_name=r.actor_name[:128] if r.actor_name else None,
                action=r.action[:32],
                setting=r.setting[:64],
                old=_through_json(r.old),
                new=_through_json(r.new),
            )
            for r in audit
        )
        return settings

    async def list_admin_audit(self, platform: str, workspace: str, limit: int = 20) -> list[AuditRecord]:
        await self._hop()
        mine = [
            (r.created_at, n, r)
            for n, r in enumerate(self._admin_audit)
            if r.platform == platform and r.workspace == workspace
        ]
        mine.sort(key=lambda t: (t[0], t[1]), reverse=True)
        return [
            dataclasses.replace(r, old=_through_json(r.old), new=_through_json(r.new))
            for _, _, r in mine[:limit]
        ]

    async def list_endings(self, platform: str, workspace: str, limit: int = 20) -> list[EndingRecord]:
        await self._hop()
        ended = [
            c
            for c in self._conversations.values()
            if c.state.ended and c.state.thread.platform == platform and c.workspace == workspace
        ]
        ended.sort(key=lambda c: (c.ended_at, c.ended_order), reverse=True)
        return [
            EndingRecord(
                c.state.id,
                c.state.thread,
                c.state.end_reason,
                c.state.warnings,
                c.ended_at,
                c.state.forked_from,
            )
            for c in ended[:limit]
        ]

    async def list_feedback(self, platform: str, workspace: str, limit: int = 20) -> list[FeedbackRecord]:
        await self._hop()
        mine = [f for f in reversed(self._feedback) if f.platform == platform and f.workspace == workspace]
        return [
            FeedbackRecord(
                f.conversation_id,
                self._conversations[f.conversation_id].state.thread,
                f.user_id,
                f.comment,
                f.created_at,
            )
            for f in mine[:limit]
        ]

    async def list_decisions(
        self, platform: str, workspace: str, limit: int = 50, conversation_id: str | None = None
    ) -> list[DecisionRecord]:
        await self._hop()
        mine = [
            dataclasses.replace(d.record, signals=_through_json(d.record.signals))
            for d in reversed(self._decisions)
            if d.platform == platform
            and d.workspace == workspace
            and (not conversation_id or d.record.conversation_id == conversation_id)
        ]
        return mine[:limit]

    async def usage_totals(
        self, platform: str, workspace: str, since: datetime | None = None
    ) -> dict[str, int]:
        await self._hop()
        mine = [
            u.record
            for u in self._usage
            if u.platform == platform
            and u.workspace == workspace
            and (since is None or u.created_at >= since)
        ]
        return {
            "calls": len(mine),
            "input_tokens": sum(u.input_tokens for u in mine),
            "cache_creation_input_tokens": sum(u.cache_creation_input_tokens for u in mine),
            "cache_read_input_tokens": sum(u.cache_read_input_tokens for u in mine),
            "output_tokens": sum(u.output_tokens for u in mine),
        }

    async def usage_lines(
        self,
        platform: str,
        workspace: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        by: UsageGrouping | None = None,
    ) -> list[UsageLine]:
        await self._hop()
        sums: dict[tuple[str, str], list[int]] = {}
        for u in self._usage:
            if (u.platform, u.workspace) != (platform, workspace):
                continue
            if (since is not None and u.created_at < since) or (until is not None and u.created_at >= until):
                continue
            if by == "conversation":
                key = u.conversation_id
            elif by == "user":
                conv = self._conversations.get(u.conversation_id)
                key = (conv.started_by if conv is not None else None) or ""
            else:
                key = ""
            r = u.record
            counts = sums.setdefault((key, r.model), [0, 0, 0, 0, 0])
            for i, n in enumerate(
                (1, r.input_tokens, r.cache_creation_input_tokens, r.cache_read_input_tokens, r.output_tokens)
            ):
                counts[i] += n
        lines = [UsageLine(key, model, *counts) for (key, model), counts in sums.items()]
        return sorted(lines, key=lambda x: (-x.tokens, x.key, x.model))

    async def list_user_conversations(
        self, platform: str, workspace: str, user_id: str, limit: int = 10
    ) -> list[UserConversation]:
        await self._hop()
        found: list[tuple[_Message, _Conversation]] = []
        for conv in self._conversations.values():
            t = conv.state.thread
            if (t.platform, t.workspace) != (platform, workspace):
                continue
            mine = [
                m for m in conv.messages if m.role == "user" and m.kind == "text" and m.author_id == user_id
            ]
            if mine:
                found.append((max(mine, key=lambda m: m.order), conv))
        found.sort(key=lambda pair: pair[0].order, reverse=True)
        return [
            UserConversation(
                conv.state.id,
                conv.state.thread,
                conv.state.ended,
                conv.state.end_reason,
                latest.created_at,
                latest.text[:LATEST_TEXT_CHARS] if latest.text is not None else None,
            )
            for latest, conv in found[:limit]
        ]

    async def forget_user(
        self, platform: str, workspace: str, user_id: str, audit: AuditRecord
    ) -> dict[str, int]:
        await self._hop()
        messages = 0
        for conv in self._conversations.values():
            if (conv.state.thread.platform, conv.workspace) != (platform, workspace):
                continue
            for m in conv.messages:
                if m.role == "user" and m.author_id == user_id and not m.redacted:
                    m.text, m.author_name, m.redacted = None, None, True
                    m.content = FORGOTTEN
                    messages += 1
        comments = 0
        for i, f in enumerate(self._feedback):
            if (f.platform, f.workspace, f.user_id) == (
                platform,
                workspace,
                user_id,
            ) and f.comment is not None:
                self._feedback[i] = dataclasses.replace(f, comment=None)
                comments += 1
        for entry in self._inbox.values():
            if (entry.platform, entry.workspace) == (platform, workspace) and entry.delivered_at is not None:
                entry.message = forgotten(entry.message, user_id) or entry.message
        removed = {"messages": messages, "comments": comments}
        self._admin_audit.append(
            dataclasses.replace(
                audit,
                actor_id=audit.actor_id[:64],
                actor_name=audit.actor_name[:128] if audit.actor_name else None,
                action=audit.action[:32],
                setting=audit.setting[:64],
                old=_through_json(audit.old),
                new=dict(removed),
            )
        )
        return removed

    # -- InboxStore -----------------------------------------------------------------------------------

    def _held(self, hold: InboxHold) -> _Entry:
        """The entry ``hold`` names, if it is still held by its owner; else ``LeaseLost``."""
        entry = self._holding(hold)
        if entry is None:
            raise LeaseLost(f"inbox entry {hold.entry_id} is no longer held by this process")
        return entry

    def _holding(self, hold: InboxHold) -> _Entry | None:
        entry = self._inbox.get(_entry_id(hold.entry_id))
        return entry if entry is not None and entry.owner == hold.owner else None

    def _set_state(self, entry: _Entry, state: InboxState, result: TurnResult | None = None) -> None:
        entry.state = state
        if result is not None:
            entry.result = _through_json(encode_result(result))
        entry.updated_at = self._clock()

    async def accept(
        self,
        msg: IncomingMessage,
        owner: str,
        lease_seconds: float,
        may_answer: Callable[[WorkspaceSettings], bool] | None = None,
    ) -> tuple[Accepted, InboxEntry | None]:
        await self._hop()
        t = msg.thread
        if may_answer is not None and not may_answer(self._settings_of(t.platform, t.workspace)):
            return Accepted.ELSEWHERE, None
        if not msg.starts_conversation and self._in_thread(t) is None:
            return Accepted.NOT_OURS, None
        key = msg.effective_dedupe_key[:DEDUPE_KEY_CHARS]
        if (t.platform, t.workspace, key) in self._events or any(
            (e.platform, e.workspace, e.dedupe_key) == (t.platform, t.workspace, key)
            for e in self._inbox.values()
        ):
            return Accepted.DUPLICATE, None
        now = self._clock()
        entry = _Entry(
            id=next(self._inbox_ids),
            platform=t.platform,
            workspace=t.workspace,
            dedupe_key=key,
            thread=_thread_key(t),
            message=_through_json(encode_message(msg)),
            state=InboxState.RECEIVED,
            owner=owner,
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=1,
            received_at=now,
            updated_at=now,
        )
        self._inbox[entry.id] = entry
        return Accepted.NEW, entry.view()

    async def renew(self, owner: str, entry_ids: Sequence[str], lease_seconds: float) -> set[str]:
        await self._hop()
        now = self._clock()
        held = set()
        for entry_id in entry_ids:
            entry = self._holding(InboxHold(entry_id, owner))
            if entry is not None and entry.delivered_at is None:
                entry.lease_until = now + timedelta(seconds=lease_seconds)
                held.add(entry_id)
        return held

    async def take_expired(
        self,
        owner: str,
        lease_seconds: float,
        limit: int,
        thread: ThreadRef | None = None,
        *,
        platforms: Collection[str] | None = None,
    ) -> list[InboxEntry]:
        await self._hop()
        now = self._clock()
        expired = [
            e
            for e in sorted(self._inbox.values(), key=lambda e: e.id)
            if e.delivered_at is None
            and e.lease_until <= now
            and (thread is None or e.thread == _thread_key(thread))
            and (platforms is None or e.platform in platforms)
        ][: max(limit, 0)]
        return self._take(expired, owner, lease_seconds, now)

    async def take_earlier(
        self, entry: InboxEntry, owner: str, lease_seconds: float, limit: int
    ) -> list[InboxEntry]:
        await self._hop()
        thread, before = _thread_key(entry.message.thread), _entry_id(entry.id)
        earlier = [
            e
            for e in sorted(self._inbox.values(), key=lambda e: e.id)
            if e.delivered_at is None and e.thread == thread and e.id < before
        ][: max(limit, 0)]
        return self._take(earlier, owner, lease_seconds, self._clock())

    def _take(
        self, entries: list[_Entry], owner: str, lease_seconds: float, now: datetime
    ) -> list[InboxEntry]:
        for e in entries:
            e.owner = owner
            e.lease_until = now + timedelta(seconds=lease_seconds)
            e.attempts += 1
            e.updated_at = now
        return [e.view() for e in entries]

    async def get_entry(self, entry_id: str) -> InboxEntry | None:
        await self._hop()
        entry = self._inbox.get(_entry_id(entry_id))
        return entry.view() if entry is not None else None

    async def record_reply_ref(self, hold: InboxHold, ref: str) -> bool:
        await self._hop()
        entry = self._holding(hold)
        if entry is None:
            return False
        entry.reply_ref = ref
        entry.updated_at = self._clock()
        return True

    async def complete(self, hold: InboxHold, state: InboxState, result: TurnResult) -> bool:
        _check_outcome(state)
        await self._hop()
        entry = self._holding(hold)
        if entry is None:
            return False
        self._set_state(entry, state, result)
        return True

    async def mark_delivered(self, hold: InboxHold) -> bool:
        await self._hop()
        entry = self._holding(hold)
        if entry is None:
            return False
        if entry.delivered_at is None:
            entry.delivered_at = entry.updated_at = self._clock()
        return True

    async def release(self, owner: str) -> int:
        await self._hop()
        now = self._clock()
        mine = [e for e in self._inbox.values() if e.owner == owner and e.delivered_at is None]
        for e in mine:
            e.lease_until = e.updated_at = now
        return len(mine)

    async def pending(self) -> int:
        await self._hop()
        return sum(e.delivered_at is None for e in self._inbox.values())


def _entry_id(entry_id: str) -> int:
    # Entry ids are the table's serial numbers, as strings; anything else names no entry.
    return int(entry_id) if entry_id.isascii() and entry_id.isdigit() else -1


def _check_outcome(state: InboxState) -> None:
    if state not in (InboxState.ANSWERED, InboxState.FAILED):
        raise ValueError(f"an outcome is answered or failed, not {state.value}")


def _through(history: Sequence[HistoryMessage], message_id: str) -> int:
    """How many messages of ``history`` lead up to (and include) the person's message ``message_id``:
    a resumed turn answers that message, even if later ones were stored after it."""
    for i in range(len(history) - 1, -1, -1):
        m = history[i]
        if m.role == "user" and m.kind == "text" and m.platform_message_id == message_id:
            return i + 1
    return len(history)


def _implements(store: MemoryStore) -> tuple[ConversationStore, AdminStore, InboxStore]:
    """For mypy: ``MemoryStore`` implements the three storage ports."""
    return store, store, store
