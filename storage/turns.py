"""A turn's storage: dedupe, the conversation's history (through the cache), and the one transaction that
starts a turn and the one that finishes it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import NoResultFound

from bot.inbox import decode_message
from bot.ports import LeaseLost, StorageUnavailable
from bot.types import (
    BeganTurn,
    Conversation,
    ConversationStatus,
    Decision,
    HistoryMessage,
    InboxHold,
    InboxState,
    NewMessage,
    StateChange,
    ThreadRef,
    TurnResult,
    UsageRecord,
)
from storage.audit import AuditQueries
from storage.history_cache import CachedHistory
from storage.inbox import InboxQueries
from storage.models import new_id, utcnow
from storage.rows import (
    DETECTOR,
    ENDED,
    conversation_from_row,
    encode_cues,
    history_from_row,
    merge_cues,
    message_row,
    new_conversation_row,
    row_id,
    stored_message,
    thread_params,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
# Waits between attempts of a write that must not be lost; a PostgreSQL restart takes about a second.
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0)


class TurnQueries(InboxQueries, AuditQueries):
    """``history``, ``claim_event``, ``begin_turn``, ``finish_turn`` and ``resume_turn``. A turn reads the
    workspace's settings, records the model's usage and moves its inbox entry in its own transaction,
    hence the bases (the inbox's brings the settings')."""

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
    ) -> tuple[tuple[HistoryMessage, ...], CachedHistory | None]:
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
            messages = kept + tuple(history_from_row(r) for r in rows)
        if not messages or (cached is not None and cached.messages is messages):
            return messages, None
        return messages, CachedHistory(generation, messages[-1].seq, redacted, messages)

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
        hold: InboxHold | None = None,
    ) -> BeganTurn:
        """Dedupe, find or create the conversation, and append the user message — one transaction.

        ``at_risk`` sets the hard mark (source "detector"); ``soft_cues`` are added to the soft mark.
        Nothing is appended to an ended conversation: an ended thread's history is closed. A stored
        message comes back with the workspace's settings and the history ending with it, read in the
        same transaction, so the turn needs no further thread hop to start. With ``hold``, the transaction
        first checks (and on PostgreSQL locks) the inbox entry, and moves it to ``ANSWERING`` with the
        message; a lost hold raises ``LeaseLost`` before anything is written.
        """
        return await self._db.run(
            self._begin_turn, thread, dedupe_key, message, create, started_by, at_risk, soft_cues, hold
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
        hold: InboxHold | None,
    ) -> BeganTurn:
        generation = self._db.generation
        cached: CachedHistory | None = None  # to cache once committed
        with self._db.write() as conn:
            if hold is not None:
                self._fence(conn, hold)  # first: the entry's row lock comes before the conversation's
            if not create and conn.execute(self._sql.find, thread_params(thread)).first() is None:
                # Not our thread: no dedupe key either, so unrelated chatter never fills that table.
                return BeganTurn(duplicate=False, conversation=None, stored=False)
            if not self._claim(conn, thread.platform, thread.workspace, dedupe_key):
                return BeganTurn(duplicate=True, conversation=None, stored=False)
            bump = self._sql.bump_at_risk if at_risk else self._sql.bump
            updated = conn.execute(bump, thread_params(thread)).first()
            if updated is None:
                row = conn.execute(self._sql.find, thread_params(thread)).first()
                if row is not None and row.status != ENDED:
                    # Created by another process after the update looked (PostgreSQL, no lock held).
                    updated = conn.execute(bump, thread_params(thread)).first()
                    if updated is None:  # ... and ended since
                        row = conn.execute(self._sql.find, thread_params(thread)).one()
                if updated is None and row is not None:  # ended: its history is closed
                    return BeganTurn(duplicate=False, conversation=conversation_from_row(row), stored=False)
            if updated is not None:
                conv = conversation_from_row(updated)
                merged = merge_cues(conv.soft_cues, soft_cues)
                if merged != conv.soft_cues:  # the row is locked (PostgreSQL) by the update above
                    conn.execute(
                        self._sql.set_soft_cues,
                        {"conv_id": conv.id, "new_soft_risk_cues": encode_cues(merged)},
                    )
                    conv = dataclasses.replace(conv, soft_cues=merged)
                params = message_row(conv, message, None)
                seq = conn.execute(self._sql.append_next, {**params, "seq_of": conv.id}).scalar_one()
                appended = stored_message(seq, message, params)
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
                    soft_cues=merge_cues((), soft_cues),
                    risk_source=DETECTOR if at_risk else None,
                )
                conn.execute(self._sql.create, new_conversation_row(conv, started_by))
                params = message_row(conv, message, 1)
                conn.execute(self._sql.append, params)
                history = (stored_message(1, message, params),)
                cached = CachedHistory(generation, 1, 0, history)
            else:
                return BeganTurn(duplicate=False, conversation=None, stored=False)
            if hold is not None:
                self._set_state(conn, hold, InboxState.ANSWERING)  # held: the fence above locked it
            settings = self._settings_in(conn, thread.platform, thread.workspace)
        if cached is not None:
            self._history_cache.put((conv.id, thread.workspace), cached)
        return BeganTurn(duplicate=False, conversation=conv, stored=True, settings=settings, history=history)

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
        outcome: tuple[InboxHold, TurnResult] | None = None,
    ) -> Conversation:
        """Append the model's side of a turn, apply the state change and write the audit — atomically;
        with ``outcome``, the inbox entry becomes ``ANSWERED`` in the same transaction (fenced)."""
        return await self._retry_transient(
            self._finish_turn, conversation_id, workspace, messages, change, decisions, usage, outcome
        )

    def _finish_turn(
        self,
        conversation_id: str,
        workspace: str,
        messages: Sequence[NewMessage],
        change: StateChange,
        decisions: Sequence[Decision],
        usage: Sequence[UsageRecord],
        outcome: tuple[InboxHold, TurnResult] | None,
    ) -> Conversation:
        generation = self._db.generation
        added: list[HistoryMessage] = []
        with self._db.write() as conn:
            # The fence comes first (the inbox row's lock before the conversation's, as in begin_turn).
            # ``_retry_transient`` may run this again after a commit whose acknowledgement was lost (the
            # connection dropped during COMMIT). That attempt did commit when the entry, still ours, is
            # ANSWERED: only this transaction sets ANSWERED on an entry whose turn it stores (``complete``
            # is for turns with nothing to store), so we write nothing again — appending the reply
            # twice would be worse than any error — and return the conversation as stored. Had another
            # process taken the entry over meanwhile, ``LeaseLost`` is right: the stored answer is
            # theirs to deliver. Had the attempt not committed, the entry is still ANSWERING and this
            # run stores the turn as if for the first time.
            answered = outcome is not None and self._fence(conn, outcome[0]) is InboxState.ANSWERED
            row = conn.execute(self._sql.for_update, {"id": conversation_id, "workspace": workspace}).first()
            if row is None:
                raise NoResultFound("No row was found when one was required")
            before = conversation_from_row(row[:-1])
            if answered:
                return before
            last = row[-1] or 0
            if messages:
                rows = [message_row(before, m, last + i) for i, m in enumerate(messages, start=1)]
                conn.execute(self._sql.append, rows[0] if len(rows) == 1 else rows)
                added = [stored_message(r["seq"], m, r) for r, m in zip(rows, messages, strict=True)]
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
                conv = dataclasses.replace(conv, soft_cues=merge_cues(conv.soft_cues, change.soft_cues))
            if change.crisis_shown_turn is not None:
                conv = dataclasses.replace(conv, crisis_shown_turn=change.crisis_shown_turn)
            state: dict[str, Any] = {
                "conv_id": conv.id,
                "new_warnings": conv.warnings,
                "new_confirm_pending": conv.confirm_pending,
                "new_at_risk": conv.at_risk,
                "new_risk_source": conv.risk_source,
                "new_soft_risk_cues": encode_cues(conv.soft_cues),
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
            if outcome is not None:
                self._set_state(conn, outcome[0], InboxState.ANSWERED, outcome[1])
        if added:  # committed: bring a cached history up to date
            self._extend_history(conversation_id, workspace, generation, last, added)
        return conv

    async def resume_turn(self, thread: ThreadRef, hold: InboxHold) -> BeganTurn:
        """What ``begin_turn`` returned for the entry's stored message, read again (nothing written)."""
        return await self._db.run(self._resume_turn, thread, hold)

    def _resume_turn(self, thread: ThreadRef, hold: InboxHold) -> BeganTurn:
        generation = self._db.generation  # before reading: a later bump must invalidate what we read
        cached: CachedHistory | None = None
        with self._db.read(snapshot=True) as conn:
            held = {"e_id": row_id(hold.entry_id), "e_owner": hold.owner}
            message = conn.execute(self._sql.inbox_held_message, held).scalar()
            if message is None:
                raise LeaseLost(f"inbox entry {hold.entry_id} is no longer held by this process")
            row = conn.execute(self._sql.find, thread_params(thread)).first()
            conv = conversation_from_row(row) if row is not None else None
            if conv is None or conv.ended:
                return BeganTurn(duplicate=False, conversation=conv, stored=False)
            history, cached = self._current_history(conn, conv.id, thread.workspace, generation)
            settings = self._settings_in(conn, thread.platform, thread.workspace)
        if cached is not None:
            self._history_cache.put((conv.id, thread.workspace), cached)
        upto = history_through(history, decode_message(message).message_id)
        return BeganTurn(duplicate=False, conversation=conv, stored=True, settings=settings, history=upto)


def history_through(history: Sequence[HistoryMessage], message_id: str) -> tuple[HistoryMessage, ...]:
    """``history`` up to and including the person's last message ``message_id``: a resumed turn answers
    that message, even if later ones were stored after it (the whole history when it is not found)."""
    for i in range(len(history) - 1, -1, -1):
        m = history[i]
        if m.role == "user" and m.kind == "text" and m.platform_message_id == message_id:
            return tuple(history[: i + 1])
    return tuple(history)
