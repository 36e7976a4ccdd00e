"""The small repository API the core calls. Every query is scoped by platform and workspace.

Each public method is one synchronous function run on a ``Database`` worker thread (one thread hop per
call) over SQLAlchemy Core. The statements of the per-turn path are built once per repository: building
a statement costs several times more than executing a cached one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Table,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, NoResultFound

from bot.locks import KeyedLocks
from bot.ports import StorageUnavailable
from bot.types import (
    BeganTurn,
    Conversation,
    ConversationStatus,
    Decision,
    DecisionRecord,
    EndingRecord,
    FeedbackRecord,
    HistoryMessage,
    NewMessage,
    StateChange,
    ThreadRef,
    UsageRecord,
    WorkspaceSettings,
)
from storage.db import Database
from storage.models import (
    ConversationRow,
    DecisionRow,
    FeedbackRow,
    MessageRow,
    ModelUsageRow,
    ProcessedEventRow,
    ReminderRow,
    WorkspaceRow,
    new_id,
    utcnow,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
# Waits between attempts of a write that must not be lost; a PostgreSQL restart takes about a second.
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)

CONVERSATIONS: Table = ConversationRow.__table__
MESSAGES: Table = MessageRow.__table__
WORKSPACES: Table = WorkspaceRow.__table__
EVENTS: Table = ProcessedEventRow.__table__
DECISIONS: Table = DecisionRow.__table__
USAGE: Table = ModelUsageRow.__table__
FEEDBACK: Table = FeedbackRow.__table__
REMINDERS: Table = ReminderRow.__table__

ENDED = ConversationStatus.ENDED.value
# The risk_source of a hard mark set by the local detector (the engine names the others).
DETECTOR = "detector"
# The in-process history cache: conversations kept, and stored messages kept over all of them.
HISTORY_CACHE_CONVERSATIONS = 256
HISTORY_CACHE_MESSAGES = 50_000
# Polling an advisory lock another process holds: first wait, and the longest wait between tries.
LOCK_POLL_FIRST = 0.002
LOCK_POLL_MAX = 0.1


_C = CONVERSATIONS.c
_M = MESSAGES.c
_W = WORKSPACES.c
# The columns a ``Conversation`` is made of, in ``_conversation``'s order.
_CONVERSATION_COLUMNS = (
    _C.id,
    _C.platform,
    _C.workspace,
    _C.channel,
    _C.thread,
    _C.status,
    _C.end_reason,
    _C.warnings,
    _C.confirm_pending,
    _C.at_risk,
    _C.crisis_shown_turn,
    _C.user_turns,
    _C.forked_from,
    _C.forked_from_message,
    _C.soft_risk_cues,
    _C.risk_source,
)
# The columns a ``HistoryMessage`` is made of, in ``_history``'s order.
_HISTORY_COLUMNS = (_M.seq, _M.role, _M.kind, _M.content, _M.author_id, _M.platform_message_id, _M.text)
_SETTINGS_COLUMNS = (
    _W.crisis_message,
    _W.crisis_locales,
    _W.ending_enabled,
    _W.abuse_warnings_before_end,
    _W.verify_endings,
    _W.alert_channel,
    _W.retention_days,
    _W.admin_users,
)


def _conversation(row: Sequence[Any]) -> Conversation:
    (
        id_,
        platform,
        workspace,
        channel,
        thread,
        status,
        end_reason,
        warnings,
        confirm_pending,
        at_risk,
        crisis_shown_turn,
        user_turns,
        forked_from,
        forked_from_message,
        soft_risk_cues,
        risk_source,
    ) = row
    return Conversation(
        id=id_,
        thread=ThreadRef(platform, workspace, channel, thread),
        status=ConversationStatus(status),
        end_reason=end_reason,
        warnings=warnings,
        confirm_pending=confirm_pending,
        at_risk=at_risk,
        crisis_shown_turn=crisis_shown_turn,
        user_turns=user_turns,
        forked_from=forked_from,
        forked_from_message=forked_from_message,
        soft_cues=_decode_cues(soft_risk_cues),
        risk_source=risk_source,
    )


_CUE = re.compile(r"[^A-Za-z0-9_:.\-]")


def _decode_cues(stored: str | None) -> tuple[str, ...]:
    return tuple(c for c in (stored or "").split(",") if c)


def _encode_cues(cues: Sequence[str]) -> str | None:
    """Cue names as stored: sorted, unique, comma-separated; None when there are none."""
    clean = {_CUE.sub("", c)[:64] for c in cues} - {""}
    return ",".join(sorted(clean)) or None


def _merge_cues(old: Sequence[str], new: Sequence[str]) -> tuple[str, ...]:
    return _decode_cues(_encode_cues([*old, *new]))


def _history(row: Sequence[Any]) -> HistoryMessage:
    seq, role, kind, content, author_id, platform_message_id, text = row
    return HistoryMessage(
        seq=seq,
        role=role,
        kind=kind,
        content=tuple(content),
        author_id=author_id,
        platform_message_id=platform_message_id,
        text=text,
    )


def _stored(seq: int, m: NewMessage, row: dict[str, Any]) -> HistoryMessage:
    """A message as reading it back would give it (content through JSON, like the column)."""
    return HistoryMessage(
        seq=seq,
        role=m.role,
        kind=m.kind,
        content=tuple(json.loads(json.dumps(row["content"]))),
        author_id=m.author_id,
        platform_message_id=m.platform_message_id,
        text=m.text,
    )


def _settings(platform: str, workspace: str, row: Any) -> WorkspaceSettings:
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


def _thread_params(thread: ThreadRef) -> dict[str, str]:
    return {
        "t_platform": thread.platform,
        "t_workspace": thread.workspace,
        "t_channel": thread.channel,
        "t_thread": thread.thread,
    }


class _Statements:
    """The statements of the per-turn path, built once (parameters are bound at execution)."""

    def __init__(self, dialect: str) -> None:
        pg = dialect == "postgresql"
        self.insert = postgresql.insert if pg else sqlite.insert
        self.find = select(*_CONVERSATION_COLUMNS).where(
            _C.platform == bindparam("t_platform"),
            _C.workspace == bindparam("t_workspace"),
            _C.channel == bindparam("t_channel"),
            _C.thread == bindparam("t_thread"),
        )
        self.get = select(*_CONVERSATION_COLUMNS).where(
            _C.platform == bindparam("platform"),
            _C.workspace == bindparam("workspace"),
            _C.id == bindparam("id"),
        )
        # The conversation and its last message number. PostgreSQL: lock the row, so that concurrent
        # finishes of one conversation apply one after the other.
        last_seq = select(func.max(_M.seq)).where(_M.conversation_id == _C.id).scalar_subquery()
        scoped = select(*_CONVERSATION_COLUMNS, last_seq).where(
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
            .returning(*_CONVERSATION_COLUMNS)
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
            select(*_HISTORY_COLUMNS).where(*scope, _M.seq > bindparam("after")).order_by(_M.seq)
        )
        self.settings = select(*_SETTINGS_COLUMNS).where(
            _W.platform == bindparam("platform"), _W.workspace == bindparam("workspace")
        )
        self.decision = insert(DECISIONS)
        self.usage = insert(USAGE)
        lock_id = bindparam("id", type_=BigInteger)
        self.try_lock = select(func.pg_try_advisory_lock(lock_id))
        self.unlock = select(func.pg_advisory_unlock(lock_id))


@dataclass(frozen=True, slots=True)
class _CachedHistory:
    generation: int  # ``Database.generation`` when read
    last_seq: int
    redacted: int
    messages: tuple[HistoryMessage, ...]


class _HistoryCache:
    """The history of recently active conversations, re-validated against the database on every read.

    A conversation's stored messages only ever change in two ways: new ones are appended with a higher
    ``seq``, and old ones are redacted (``redacted`` set; never unset, never deleted). So (last ``seq``,
    number redacted), read in the same transaction, tells whether a cached copy is whole, needs only its
    tail, or must be read again — also when another process did the writing. Redacting an already
    redacted message again (forget-user after retention) changes only its placeholder text; this process
    notices that through ``Database.generation``.
    """

    def __init__(self, max_conversations: int, max_messages: int) -> None:
        self._entries: OrderedDict[tuple[str, str], _CachedHistory] = OrderedDict()
        self._messages = 0
        self._max_conversations = max_conversations
        self._max_messages = max_messages
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> _CachedHistory | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple[str, str], entry: _CachedHistory) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._messages -= len(old.messages)
            if len(entry.messages) > self._max_messages:
                return
            self._entries[key] = entry
            self._messages += len(entry.messages)
            while len(self._entries) > self._max_conversations or self._messages > self._max_messages:
                _, evicted = self._entries.popitem(last=False)
                self._messages -= len(evicted.messages)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._messages = 0


class Repository:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._dialect = database.dialect.name
        self._sql = _Statements(self._dialect)
        self._history_cache = _HistoryCache(HISTORY_CACHE_CONVERSATIONS, HISTORY_CACHE_MESSAGES)
        # In-process per-conversation locks; cross-process exclusion comes from the database below.
        self._locks = KeyedLocks()
        # PostgreSQL: one autocommit session holds this process's advisory locks (see conversation_lock).
        self._lock_conn: Connection | None = None
        self._lock_conn_mutex = threading.Lock()
        self._lock_epoch = 0
        database.on_dispose(self._close_lock_session)
        self._background: set[asyncio.Future[Any]] = set()

    @property
    def database(self) -> Database:
        """The database handle (``bot.engine.Engine`` is the conversation engine, a different thing)."""
        return self._db

    async def close(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        self._history_cache.clear()
        await self._db.dispose()  # closes the lock session too

    # -- helpers -------------------------------------------------------------------------------------

    def _insert(self, table: Table) -> Any:
        return self._sql.insert(table)

    @contextlib.asynccontextmanager
    async def conversation_lock(self, key: str) -> AsyncIterator[None]:
        """Serialise turns of one conversation: in this process always, across processes on PostgreSQL.

        SQLite deployments are single-process by design (see README). On PostgreSQL a session-level
        advisory lock is held for the whole turn, model call included, on the repository's *lock
        session*: one autocommit connection per process that holds every advisory lock of the process,
        so however many turns run at once they never take connections from the pool (no starvation, no
        deadlock between processes). Taking the lock never blocks a thread: ``pg_try_advisory_lock``,
        and while another process holds it, sleep with a growing backoff and try again. Same-key turns
        of one process queue on the asyncio lock first, so the session never takes one key twice.
        """
        async with self._locks(key):
            lock_id = _lock_id(key) if self._dialect == "postgresql" else None
            epoch = await self._acquire_advisory(lock_id) if lock_id is not None else None
            try:
                yield
            finally:
                if lock_id is not None and epoch is not None:
                    self._unlock_later(lock_id, epoch)

    async def _acquire_advisory(self, lock_id: int) -> int:
        """Take the lock on the lock session; returns the session's epoch (see ``_unlock``)."""
        delay = LOCK_POLL_FIRST
        while True:
            attempt = asyncio.ensure_future(self._db.run(self._try_lock, lock_id))
            try:
                epoch = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                # The attempt may still succeed on its thread: give the lock back if so.
                attempt.add_done_callback(self._unlock_if_taken(lock_id))
                raise
            if epoch is not None:
                return epoch
            await asyncio.sleep(delay)
            delay = min(delay * 2, LOCK_POLL_MAX)

    def _unlock_if_taken(self, lock_id: int) -> Callable[[asyncio.Future[int | None]], None]:
        def done(attempt: asyncio.Future[int | None]) -> None:
            if not attempt.cancelled() and attempt.exception() is None:
                epoch = attempt.result()
                if epoch is not None:
                    self._unlock_later(lock_id, epoch)

        return done

    def _unlock_later(self, lock_id: int, epoch: int) -> None:
        """Release an advisory lock without making the turn wait for it (nor letting it be cancelled).

        Safe because every lock of this process lives on the one lock session, where advisory locks are
        re-entrant: if this process's next turn of the conversation takes the lock before this unlock
        runs, it holds it twice and the unlock gives back one. Other processes poll anyway.
        """
        task = asyncio.ensure_future(self._db.run(self._unlock, lock_id, epoch))
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("advisory unlock failed", exc_info=task.exception())

    def _lock_session(self) -> Connection:
        """The lock session (caller holds ``_lock_conn_mutex``); a new one starts a new epoch."""
        conn = self._lock_conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._db.sync_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._lock_conn = conn
            self._lock_epoch += 1
        return conn

    def _drop_lock_session(self) -> None:
        """Close the lock session for good (caller holds ``_lock_conn_mutex``).

        Invalidated, not returned to the pool: ending the session is what releases its locks; a pooled
        connection still holding them would block other processes indefinitely.
        """
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()

    def _try_lock(self, lock_id: int) -> int | None:
        """``pg_try_advisory_lock`` on the lock session: its epoch when taken, else None.

        A server restart ends the session (and its locks): reconnect once and try again.
        """
        with self._lock_conn_mutex:
            for attempt in range(2):
                conn = self._lock_session()
                try:
                    taken = conn.execute(self._sql.try_lock, {"id": lock_id}).scalar()
                except DBAPIError as exc:
                    self._drop_lock_session()
                    if not exc.connection_invalidated or attempt:
                        raise
                    continue
                return self._lock_epoch if taken else None
            raise AssertionError("unreachable")

    def _unlock(self, lock_id: int, epoch: int) -> None:
        """``pg_advisory_unlock``, on the session that took the lock — if it is still there.

        A lock taken on an earlier session ended with it; unlocking on the new session could release
        the same key taken there since, by the next turn.
        """
        with self._lock_conn_mutex:
            conn = self._lock_conn
            if conn is None or conn.closed or conn.invalidated or epoch != self._lock_epoch:
                return
            try:
                conn.execute(self._sql.unlock, {"id": lock_id})
            except DBAPIError:
                self._drop_lock_session()
                raise

    def _close_lock_session(self) -> None:
        with self._lock_conn_mutex:
            self._drop_lock_session()

    # -- workspace settings -------------------------------------------------------------------------

    async def get_settings(self, platform: str, workspace: str) -> WorkspaceSettings:
        return await self._db.run(self._get_settings, platform, workspace)

    def _get_settings(self, platform: str, workspace: str) -> WorkspaceSettings:
        with self._db.read() as conn:
            return self._settings_in(conn, platform, workspace)

    def _settings_in(self, conn: Connection, platform: str, workspace: str) -> WorkspaceSettings:
        row = conn.execute(self._sql.settings, {"platform": platform, "workspace": workspace}).first()
        return _settings(platform, workspace, row)

    async def save_settings(self, settings: WorkspaceSettings) -> WorkspaceSettings:
        await self._db.run(self._save_settings, settings)
        return settings

    def _save_settings(self, settings: WorkspaceSettings) -> None:
        values = {
            "crisis_message": settings.crisis_message,
            "crisis_locales": dict(settings.crisis_locales),
            "ending_enabled": settings.ending_enabled,
            "abuse_warnings_before_end": settings.abuse_warnings_before_end,
            "verify_endings": settings.verify_endings,
            "alert_channel": settings.alert_channel,
            "retention_days": settings.retention_days,
            "admin_users": list(settings.admin_users),
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

    # -- conversations ------------------------------------------------------------------------------

    async def find_conversation(self, thread: ThreadRef) -> Conversation | None:
        return await self._db.run(self._find_conversation, thread)

    def _find_conversation(self, thread: ThreadRef) -> Conversation | None:
        with self._db.read() as conn:
            row = conn.execute(self._sql.find, _thread_params(thread)).first()
        return _conversation(row) if row else None

    async def get_conversation(
        self, platform: str, workspace: str, conversation_id: str
    ) -> Conversation | None:
        return await self._db.run(self._get_conversation, platform, workspace, conversation_id)

    def _get_conversation(self, platform: str, workspace: str, conversation_id: str) -> Conversation | None:
        params = {"platform": platform, "workspace": workspace, "id": conversation_id}
        with self._db.read() as conn:
            row = conn.execute(self._sql.get, params).first()
        return _conversation(row) if row else None

    async def history(self, conversation_id: str, workspace: str) -> list[HistoryMessage]:
        """The conversation's messages in order. They are shared with an in-process cache: read-only
        (``HistoryMessage`` is frozen; do not modify its content blocks either)."""
        return await self._db.run(self._history, conversation_id, workspace)

    def _history(self, conversation_id: str, workspace: str) -> list[HistoryMessage]:
        generation = self._db.generation  # before reading: a later bump must invalidate what we read
        with self._db.read() as conn:
            messages, cached = self._current_history(conn, conversation_id, workspace, generation)
        if cached is not None:
            self._history_cache.put((conversation_id, workspace), cached)
        return list(messages)

    def _current_history(
        self,
        conn: Connection,
        conversation_id: str,
        workspace: str,
        generation: int,
        appended: HistoryMessage | None = None,
    ) -> tuple[tuple[HistoryMessage, ...], _CachedHistory | None]:
        """The conversation's history: the cached copy, checked against the database and brought up to
        date; and the new cache entry, if any, for the caller to store once its transaction committed.
        ``appended`` is a message this transaction just added (so it need not be read back).
        """
        params: dict[str, Any] = {"id": conversation_id, "workspace": workspace}
        last, redacted = conn.execute(self._sql.history_state, params).one()
        if last is None:
            return (), None
        cached = self._history_cache.get((conversation_id, workspace))
        kept: tuple[HistoryMessage, ...] = ()
        after = -1
        if (
            cached is not None
            and cached.generation == generation
            and cached.redacted == redacted
            and cached.last_seq <= last
        ):
            kept, after = cached.messages, cached.last_seq
            if appended is not None and appended.seq == last and after == last - 1:
                kept, after = (*kept, appended), last
        if after == last:
            messages = kept
        else:
            params["after"] = after
            rows = conn.execute(self._sql.history_after, params).all()
            messages = kept + tuple(_history(r) for r in rows)
        if not messages or (cached is not None and cached.messages is messages):
            return messages, None
        return messages, _CachedHistory(generation, messages[-1].seq, redacted, messages)

    def _extend_history(
        self, conversation_id: str, workspace: str, generation: int, last: int, added: list[HistoryMessage]
    ) -> None:
        """Messages this transaction appended after ``last``, added to an up-to-date cached copy."""
        key = (conversation_id, workspace)
        cached = self._history_cache.get(key)
        if cached is not None and cached.generation == generation and cached.last_seq == last:
            extended = dataclasses.replace(
                cached, last_seq=added[-1].seq, messages=cached.messages + tuple(added)
            )
            self._history_cache.put(key, extended)

    def _claim(self, conn: Connection, platform: str, workspace: str, key: str) -> bool:
        params = {
            "platform": platform,
            "workspace": workspace,
            "dedupe_key": key[:128],
            "created_at": utcnow(),
        }
        # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
        return conn.execute(self._sql.claim, params).first() is not None

    async def claim_event(self, platform: str, workspace: str, key: str) -> bool:
        """Insert-or-ignore a dedupe key; True when this delivery is the first."""
        return await self._db.run(self._claim_event, platform, workspace, key)

    def _claim_event(self, platform: str, workspace: str, key: str) -> bool:
        with self._db.write() as conn:
            return self._claim(conn, platform, workspace, key)

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
    ) -> BeganTurn:
        """Dedupe, find or create the conversation, and append the user message — one transaction.

        ``at_risk`` sets the hard mark (source "detector"); ``soft_cues`` are added to the soft mark.
        Nothing is appended to an ended conversation: an ended thread's history is closed. A stored
        message comes back with the workspace's settings and the history ending with it, read in the
        same transaction, so the turn needs no further thread hop to start.
        """
        return await self._db.run(
            self._begin_turn, thread, dedupe_key, message, create, started_by, at_risk, soft_cues
        )

    def _begin_turn(
        self,
        thread: ThreadRef,
        dedupe_key: str,
        message: NewMessage,
        create: bool,
        started_by: str | None,
        at_risk: bool,
        soft_cues: Sequence[str],
    ) -> BeganTurn:
        generation = self._db.generation
        cached: _CachedHistory | None = None  # to cache once committed
        with self._db.write() as conn:
            if not create and conn.execute(self._sql.find, _thread_params(thread)).first() is None:
                # Not our thread: no dedupe key either, so unrelated chatter never fills that table.
                return BeganTurn(duplicate=False, conversation=None, stored=False)
            if not self._claim(conn, thread.platform, thread.workspace, dedupe_key):
                return BeganTurn(duplicate=True, conversation=None, stored=False)
            bump = self._sql.bump_at_risk if at_risk else self._sql.bump
            updated = conn.execute(bump, _thread_params(thread)).first()
            if updated is None:
                row = conn.execute(self._sql.find, _thread_params(thread)).first()
                if row is not None and row.status != ENDED:
                    # Created by another process after the update looked (PostgreSQL, no lock held).
                    updated = conn.execute(bump, _thread_params(thread)).first()
                    if updated is None:  # ... and ended since
                        row = conn.execute(self._sql.find, _thread_params(thread)).one()
                if updated is None and row is not None:  # ended: its history is closed
                    return BeganTurn(duplicate=False, conversation=_conversation(row), stored=False)
            if updated is not None:
                conv = _conversation(updated)
                merged = _merge_cues(conv.soft_cues, soft_cues)
                if merged != conv.soft_cues:  # the row is locked (PostgreSQL) by the update above
                    conn.execute(
                        self._sql.set_soft_cues,
                        {"conv_id": conv.id, "new_soft_risk_cues": _encode_cues(merged)},
                    )
                    conv = dataclasses.replace(conv, soft_cues=merged)
                params = self._message_row(conv, message, None)
                seq = conn.execute(self._sql.append_next, {**params, "seq_of": conv.id}).scalar_one()
                appended = _stored(seq, message, params)
                history, cached = self._current_history(conn, conv.id, thread.workspace, generation, appended)
            elif create:
                conv = Conversation(
                    id=new_id(),
                    thread=thread,
                    status=ConversationStatus.ACTIVE,
                    end_reason=None,
                    warnings=0,
                    confirm_pending=False,
                    at_risk=at_risk,
                    crisis_shown_turn=None,
                    user_turns=1,
                    soft_cues=_merge_cues((), soft_cues),
                    risk_source=DETECTOR if at_risk else None,
                )
                conn.execute(self._sql.create, self._new_conversation(conv, started_by))
                params = self._message_row(conv, message, 1)
                conn.execute(self._sql.append, params)
                history = (_stored(1, message, params),)
                cached = _CachedHistory(generation, 1, 0, history)
            else:
                return BeganTurn(duplicate=False, conversation=None, stored=False)
            settings = self._settings_in(conn, thread.platform, thread.workspace)
        if cached is not None:
            self._history_cache.put((conv.id, thread.workspace), cached)
        return BeganTurn(duplicate=False, conversation=conv, stored=True, settings=settings, history=history)

    @staticmethod
    def _new_conversation(conv: Conversation, started_by: str | None) -> dict[str, Any]:
        t = conv.thread
        return {
            "id": conv.id,
            "platform": t.platform,
            "workspace": t.workspace,
            "channel": t.channel,
            "thread": t.thread,
            "status": conv.status.value,
            "end_reason": conv.end_reason,
            "ended_at": None,
            "warnings": conv.warnings,
            "confirm_pending": conv.confirm_pending,
            "at_risk": conv.at_risk,
            "risk_source": conv.risk_source,
            "soft_risk_cues": _encode_cues(conv.soft_cues),
            "crisis_shown_turn": conv.crisis_shown_turn,
            "user_turns": conv.user_turns,
            "forked_from": conv.forked_from,
            "forked_from_message": conv.forked_from_message,
            "started_by": started_by,
            "created_at": utcnow(),
        }

    @staticmethod
    def _message_row(conv: Conversation, m: NewMessage, seq: int | None) -> dict[str, Any]:
        row: dict[str, Any] = {
            "conversation_id": conv.id,
            "platform": conv.thread.platform,
            "workspace": conv.thread.workspace,
            "role": m.role,
            "kind": m.kind,
            "author_id": m.author_id,
            "author_name": m.author_name,
            "platform_message_id": m.platform_message_id,
            "text": m.text,
            "content": [dict(b) for b in m.content],
            "redacted": False,
            "created_at": utcnow(),
        }
        if seq is not None:
            row["seq"] = seq
        return row

    async def _retry_transient(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a write again when the database connection dropped under it (e.g. a server restart).

        Only for writes whose inputs are already in memory (a finished model turn): losing them would
        lose a reply, and the redelivered event would be dropped as a duplicate.
        """
        for delay in RETRY_DELAYS:
            try:
                return await self._db.run(fn, *args)
            except StorageUnavailable as exc:
                log.warning("database write failed; retrying", extra={"error": str(exc)})
                await asyncio.sleep(delay)
        return await self._db.run(fn, *args)

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
        return await self._retry_transient(
            self._finish_turn, conversation_id, workspace, messages, change, decisions, usage
        )

    def _finish_turn(
        self,
        conversation_id: str,
        workspace: str,
        messages: Sequence[NewMessage],
        change: StateChange,
        decisions: Sequence[Decision],
        usage: Sequence[UsageRecord],
    ) -> Conversation:
        generation = self._db.generation
        added: list[HistoryMessage] = []
        with self._db.write() as conn:
            row = conn.execute(self._sql.for_update, {"id": conversation_id, "workspace": workspace}).first()
            if row is None:
                raise NoResultFound("No row was found when one was required")
            before = _conversation(row[:-1])
            last = row[-1] or 0
            if messages:
                rows = [self._message_row(before, m, last + i) for i, m in enumerate(messages, start=1)]
                conn.execute(self._sql.append, rows[0] if len(rows) == 1 else rows)
                added = [_stored(r["seq"], m, r) for r, m in zip(rows, messages, strict=True)]
            conv = before
            if change.warnings is not None:
                conv = dataclasses.replace(conv, warnings=change.warnings)
            if change.confirm_pending is not None:
                conv = dataclasses.replace(conv, confirm_pending=change.confirm_pending)
            if change.at_risk:
                conv = dataclasses.replace(
                    conv, at_risk=True, risk_source=conv.risk_source or change.risk_source
                )
            if change.soft_cues:
                conv = dataclasses.replace(conv, soft_cues=_merge_cues(conv.soft_cues, change.soft_cues))
            if change.crisis_shown_turn is not None:
                conv = dataclasses.replace(conv, crisis_shown_turn=change.crisis_shown_turn)
            state: dict[str, Any] = {
                "conv_id": conv.id,
                "new_warnings": conv.warnings,
                "new_confirm_pending": conv.confirm_pending,
                "new_at_risk": conv.at_risk,
                "new_risk_source": conv.risk_source,
                "new_soft_risk_cues": _encode_cues(conv.soft_cues),
                "new_crisis_shown_turn": conv.crisis_shown_turn,
            }
            if change.end_reason is not None and not conv.ended:
                conv = dataclasses.replace(
                    conv, status=ConversationStatus.ENDED, end_reason=change.end_reason
                )
                state.update(new_end_reason=change.end_reason, new_ended_at=utcnow())
                conn.execute(self._sql.set_state_ended, state)
            elif conv != before:
                conn.execute(self._sql.set_state, state)
            t = conv.thread
            if decisions:
                now = utcnow()
                conn.execute(
                    self._sql.decision,
                    [
                        {
                            "conversation_id": conv.id,
                            "platform": t.platform,
                            "workspace": t.workspace,
                            "decision": d.decision,
                            "reason": d.reason,
                            "note": d.note,
                            "warnings": d.warnings,
                            "signals": dict(d.signals),
                            "created_at": now,
                        }
                        for d in decisions
                    ],
                )
            self._add_usage(conn, conv.id, t.platform, t.workspace, usage)
        if added:  # committed: bring a cached history up to date
            self._extend_history(conversation_id, workspace, generation, last, added)
        return conv

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
                soft_cues=_decode_cues(src.soft_risk_cues),
                crisis_shown_turn=None,
                user_turns=sum(m.role == "user" and m.kind == "text" for m in earlier),
                forked_from=src.id,
                forked_from_message=source_message_id,
            )
            conn.execute(self._sql.create, self._new_conversation(conv, started_by))
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
            select(*_HISTORY_COLUMNS)
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
        return _history(row) if row else None

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

    async def usage_totals(self, platform: str, workspace: str) -> dict[str, int]:
        return await self._db.run(self._usage_totals, platform, workspace)

    def _usage_totals(self, platform: str, workspace: str) -> dict[str, int]:
        u = USAGE.c
        cols = (u.input_tokens, u.cache_creation_input_tokens, u.cache_read_input_tokens, u.output_tokens)
        stmt = select(func.count(), *(func.coalesce(func.sum(c), 0) for c in cols)).where(
            u.platform == platform, u.workspace == workspace
        )
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

    # -- feedback and audit -------------------------------------------------------------------------

    async def record_feedback(self, conversation: Conversation, user_id: str, comment: str | None) -> None:
        await self._db.run(self._record_feedback, conversation, user_id, comment)

    def _record_feedback(self, conversation: Conversation, user_id: str, comment: str | None) -> None:
        with self._db.write() as conn:
            conn.execute(
                insert(FEEDBACK).values(
                    conversation_id=conversation.id,
                    platform=conversation.thread.platform,
                    workspace=conversation.thread.workspace,
                    user_id=user_id,
                    comment=comment,
                    created_at=utcnow(),
                )
            )

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
