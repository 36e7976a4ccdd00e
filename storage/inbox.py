"""The durable inbox (``bot.ports.InboxStore``): accepting a message, leases, take-over and outcomes.

Every change names a hold, ``(entry id, owner)``, and is one ``UPDATE ... WHERE id = :id AND owner =
:owner``: a process that lost the entry changes nothing. The turn's own transactions (``begin_turn``,
``finish_turn`` in ``storage.turns``) fence the same way. Lease times come from the repository's clock
(the wall clock unless a test hands it another), never from the database server's, so that a test can
let a lease run out without sleeping; Haven's processes keep their clocks in step well within a lease.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from bot.inbox import encode_message, encode_result
from bot.ports import LeaseLost
from bot.types import (
    Accepted,
    InboxEntry,
    InboxHold,
    InboxState,
    IncomingMessage,
    ThreadRef,
    TurnResult,
    WorkspaceSettings,
)
from storage.db import Grouped
from storage.models import INBOX
from storage.rows import ENTRY_COLUMNS, entry_from_row, row_id, thread_params
from storage.workspace_settings import WorkspaceSettingsQueries

# What is kept of a dedupe key (``processed_events`` and ``inbox`` alike).
DEDUPE_KEY_CHARS = 128
OUTCOMES = (InboxState.ANSWERED, InboxState.FAILED)

_I = INBOX.c

Accepting = tuple[Accepted, InboxEntry | None]


@dataclass(frozen=True, slots=True)
class _Acceptance:
    """One ``accept`` call's arguments, waiting to be written with the others of its group."""

    msg: IncomingMessage
    owner: str
    lease_seconds: float
    may_answer: Callable[[WorkspaceSettings], bool] | None


class InboxQueries(WorkspaceSettingsQueries):
    """``accept``, ``renew``, ``take_expired``, ``take_earlier``, ``get_entry``, ``record_reply_ref``,
    ``complete``, ``mark_delivered``, ``release`` and ``pending``; and the fence the turn's transactions
    use. Accepting reads the workspace's settings in its own transaction, hence the base."""

    _clock: Callable[[], datetime]
    _accepts: Grouped[_Acceptance, Accepting]

    def _init_inbox(self) -> None:
        # Accepting is what a platform waits for (Slack: 3 s). In a burst, the events accepted while one
        # group is being written go together in the next one: one worker-thread hop, one transaction and
        # one settings read per workspace for all of them, instead of each of their own (bench/burst.py).
        self._accepts = Grouped(self._db, self._accept_group)

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    def _fence(self, conn: Connection, hold: InboxHold) -> InboxState:
        """Check that ``hold`` still holds its entry and lock the entry's row (PostgreSQL) until the
        transaction ends; its state. ``LeaseLost`` (so the transaction rolls back) when it does not."""
        params = {"e_id": row_id(hold.entry_id), "e_owner": hold.owner, "e_now": self._now()}
        state = conn.execute(self._sql.inbox_fence, params).scalar()
        if state is None:
            raise LeaseLost(f"inbox entry {hold.entry_id} is no longer held by this process")
        return InboxState(state)

    def _set_state(
        self, conn: Connection, hold: InboxHold, state: InboxState, result: TurnResult | None = None
    ) -> bool:
        params: dict[str, Any] = {
            "e_id": row_id(hold.entry_id),
            "e_owner": hold.owner,
            "e_state": state.value,
            "e_now": self._now(),
        }
        if result is None:
            return conn.execute(self._sql.inbox_set_state, params).first() is not None
        params["e_result"] = encode_result(result)
        return conn.execute(self._sql.inbox_set_outcome, params).first() is not None

    # -- accepting -------------------------------------------------------------------------------------

    async def accept(
        self,
        msg: IncomingMessage,
        owner: str,
        lease_seconds: float,
        may_answer: Callable[[WorkspaceSettings], bool] | None = None,
    ) -> Accepting:
        """Record ``msg`` unless Haven may not answer there, it is not ours or it is a duplicate: in one
        transaction, with whatever other messages arrive meanwhile (``Grouped``), each decided on its
        own exactly as alone."""
        return await self._accepts(_Acceptance(msg, owner, lease_seconds, may_answer))

    def _accept_group(self, group: list[_Acceptance]) -> list[Accepting]:
        now = self._now()
        settings: dict[tuple[str, str], WorkspaceSettings] = {}
        results: dict[int, Accepting] = {}
        # Threads in one order in every process, so that two processes' groups that claim the same keys
        # wait for each other in that order, never each for the other; a thread's messages keep their
        # arrival order (the entries' ids are its order across processes).
        order = sorted(range(len(group)), key=lambda i: group[i].msg.thread.key)
        with self._db.write() as conn:
            for i in order:
                results[i] = self._accept_in(conn, group[i], now, settings)
        return [results[i] for i in range(len(group))]

    def _accept_in(
        self,
        conn: Connection,
        call: _Acceptance,
        now: datetime,
        settings: dict[tuple[str, str], WorkspaceSettings],
    ) -> Accepting:
        msg = call.msg
        t = msg.thread
        key = msg.effective_dedupe_key[:DEDUPE_KEY_CHARS]
        if call.may_answer is not None:
            # Read once per workspace and group: the group is one transaction, as each call's was.
            found = settings.get((t.platform, t.workspace))
            if found is None:
                found = settings[(t.platform, t.workspace)] = self._settings_in(conn, t.platform, t.workspace)
            if not call.may_answer(found):
                return Accepted.ELSEWHERE, None
        if not msg.starts_conversation and conn.execute(self._sql.find, thread_params(t)).first() is None:
            return Accepted.NOT_OURS, None
        scope = {"platform": t.platform, "workspace": t.workspace, "dedupe_key": key}
        if conn.execute(self._sql.event_exists, scope).first() is not None:
            return Accepted.DUPLICATE, None  # claimed by a turn (or before the inbox existed)
        row = {
            **scope,
            "channel": t.channel,
            "thread": t.thread,
            "message": encode_message(msg),
            "state": InboxState.RECEIVED.value,
            "owner": call.owner,
            "lease_until": now + timedelta(seconds=call.lease_seconds),
            "attempts": 1,
            "received_at": now,
            "updated_at": now,
            "delivered_at": None,
            "reply_ref": None,
            "result": None,
        }
        # ON CONFLICT DO NOTHING ... RETURNING: of two processes accepting one key at once, the second
        # waits for the first's commit (PostgreSQL) and gets no row back; so does the second of one key
        # within a group (the ``app_mention`` and its ``message`` copy).
        inserted = conn.execute(self._sql.inbox_accept, row).first()
        if inserted is None:
            return Accepted.DUPLICATE, None
        return Accepted.NEW, entry_from_row(inserted)

    # -- leases ----------------------------------------------------------------------------------------

    async def renew(self, owner: str, entry_ids: Sequence[str], lease_seconds: float) -> set[str]:
        ids = [i for i in (row_id(e) for e in entry_ids) if i >= 0]
        if not ids:
            return set()
        return await self._db.run(self._renew, owner, ids, lease_seconds)

    def _renew(self, owner: str, ids: list[int], lease_seconds: float) -> set[str]:
        stmt = (
            update(INBOX)
            .where(_I.id.in_(ids), _I.owner == owner, _I.delivered_at.is_(None))
            .values(lease_until=self._now() + timedelta(seconds=lease_seconds))
            .returning(_I.id)
        )
        with self._db.write() as conn:
            return {str(i) for i in conn.execute(stmt).scalars()}

    async def take_expired(
        self,
        owner: str,
        lease_seconds: float,
        limit: int,
        thread: ThreadRef | None = None,
        *,
        platforms: Collection[str] | None = None,
    ) -> list[InboxEntry]:
        if limit <= 0 or (platforms is not None and not platforms):
            return []
        return await self._db.run(
            self._take_expired,
            owner,
            lease_seconds,
            limit,
            thread,
            None if platforms is None else list(platforms),
        )

    def _take_expired(
        self,
        owner: str,
        lease_seconds: float,
        limit: int,
        thread: ThreadRef | None,
        platforms: list[str] | None,
    ) -> list[InboxEntry]:
        now = self._now()
        due = [_I.delivered_at.is_(None), _I.lease_until <= now]
        where = list(due)
        if thread is not None:
            where += _in_thread(thread)
        if platforms is not None:
            where.append(_I.platform.in_(platforms))
        pick = select(_I.id).where(*where).order_by(_I.id).limit(limit)
        if self._dialect == "postgresql":
            # Lock what we take and step over what another taker (or a holder mid-transaction) has
            # locked: two processes never take the same entry, and neither waits for the other.
            pick = pick.with_for_update(skip_locked=True)
        # SQLite: the write transaction (BEGIN IMMEDIATE) already excludes every other writer.
        return self._take(pick, due, owner, lease_seconds, now)

    async def take_earlier(
        self, entry: InboxEntry, owner: str, lease_seconds: float, limit: int
    ) -> list[InboxEntry]:
        before = row_id(entry.id)
        if limit <= 0 or before < 0:
            return []
        return await self._db.run(
            self._take_earlier, entry.message.thread, before, owner, lease_seconds, limit
        )

    def _take_earlier(
        self, thread: ThreadRef, before: int, owner: str, lease_seconds: float, limit: int
    ) -> list[InboxEntry]:
        unfinished = [_I.delivered_at.is_(None)]
        where = [*unfinished, *_in_thread(thread), _I.id < before]
        pick = select(_I.id).where(*where).order_by(_I.id).limit(limit)
        if self._dialect == "postgresql":
            # Wait for (never skip) a row another transaction has locked: skipping it would let a
            # later message of the thread be answered before it.
            pick = pick.with_for_update()
        return self._take(pick, unfinished, owner, lease_seconds, self._now())

    def _take(
        self, pick: Any, still: Sequence[Any], owner: str, lease_seconds: float, now: datetime
    ) -> list[InboxEntry]:
        with self._db.write() as conn:
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return []
            taken = conn.execute(
                update(INBOX)
                .where(_I.id.in_(ids), *still)
                .values(
                    owner=owner,
                    lease_until=now + timedelta(seconds=lease_seconds),
                    attempts=_I.attempts + 1,
                    updated_at=now,
                )
                .returning(*ENTRY_COLUMNS)
            ).all()
        return sorted((entry_from_row(r) for r in taken), key=lambda e: int(e.id))

    async def release(self, owner: str) -> int:
        return await self._db.run(self._release, owner)

    def _release(self, owner: str) -> int:
        now = self._now()
        stmt = (
            update(INBOX)
            .where(_I.owner == owner, _I.delivered_at.is_(None))
            .values(lease_until=now, updated_at=now)
            .returning(_I.id)
        )
        with self._db.write() as conn:
            return len(conn.execute(stmt).all())

    # -- reading ---------------------------------------------------------------------------------------

    async def get_entry(self, entry_id: str) -> InboxEntry | None:
        return await self._db.run(self._get_entry, row_id(entry_id))

    def _get_entry(self, id_: int) -> InboxEntry | None:
        with self._db.read() as conn:
            row = conn.execute(self._sql.inbox_entry, {"e_id": id_}).first()
        return entry_from_row(row) if row is not None else None

    async def pending(self) -> int:
        return await self._db.run(self._pending)

    def _pending(self) -> int:
        with self._db.read() as conn:
            return int(conn.execute(self._sql.inbox_pending).scalar_one())

    # -- outcomes --------------------------------------------------------------------------------------

    async def record_reply_ref(self, hold: InboxHold, ref: str) -> bool:
        return await self._db.run(self._fenced, self._sql.inbox_set_reply_ref, hold, {"e_reply_ref": ref})

    async def complete(self, hold: InboxHold, state: InboxState, result: TurnResult) -> bool:
        if state not in OUTCOMES:
            raise ValueError(f"an outcome is answered or failed, not {state.value}")
        return await self._db.run(self._complete, hold, state, result)

    def _complete(self, hold: InboxHold, state: InboxState, result: TurnResult) -> bool:
        with self._db.write() as conn:
            return self._set_state(conn, hold, state, result)

    async def mark_delivered(self, hold: InboxHold) -> bool:
        return await self._db.run(self._fenced, self._sql.inbox_delivered, hold, {})

    def _fenced(self, stmt: Any, hold: InboxHold, params: dict[str, Any]) -> bool:
        with self._db.write() as conn:
            values = {"e_id": row_id(hold.entry_id), "e_owner": hold.owner, "e_now": self._now(), **params}
            return conn.execute(stmt, values).first() is not None


def _in_thread(thread: ThreadRef) -> list[Any]:
    return [
        _I.platform == thread.platform,
        _I.workspace == thread.workspace,
        _I.channel == thread.channel,
        _I.thread == thread.thread,
    ]
