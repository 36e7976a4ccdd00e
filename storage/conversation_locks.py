"""Serialising the turns of one conversation: in this process, and across processes on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from bot.locks import KeyedLocks
from storage.db import Database
from storage.statements import RepositoryPart

log = logging.getLogger(__name__)

# Polling an advisory lock another process holds: first wait, and the longest wait between tries.
LOCK_POLL_FIRST = 0.002
LOCK_POLL_MAX = 0.1
# A frozen holder (SIGSTOP, a stalled VM) keeps its TCP connection — the kernel still answers keepalives —
# so its advisory locks would outlive it. The lock session is ended by the server after ``idle_seconds``
# without a statement (``idle_session_timeout``, PostgreSQL 14+; HAVEN_LOCK_IDLE_SECONDS, this by
# default) and kept busy by a heartbeat thread meanwhile: a live process never loses its locks, a frozen
# one gives them up within the idle limit.
LOCK_IDLE_SECONDS = 10.0
# Heartbeats per idle limit: a live process's lock session survives four missed beats (a busy machine).
HEARTBEATS_PER_IDLE = 5


def _lock_id(key: str) -> int:
    """A stable signed 64-bit id for PostgreSQL advisory locks."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


class ConversationLocks(RepositoryPart):
    """``conversation_lock`` and the lock session that holds this process's advisory locks."""

    _locks: KeyedLocks
    _lock_conn: Connection | None
    _lock_conn_mutex: threading.Lock
    _lock_epoch: int
    _background: set[asyncio.Future[Any]]
    _heartbeat: threading.Thread | None
    _heartbeat_stop: threading.Event
    _idle_ms: int
    _heartbeat_seconds: float

    def _init_locks(self, database: Database, idle_seconds: float) -> None:
        # In-process per-conversation locks; cross-process exclusion comes from the database below.
        self._locks = KeyedLocks()
        # PostgreSQL: one autocommit session holds this process's advisory locks (see conversation_lock).
        self._lock_conn = None
        self._lock_conn_mutex = threading.Lock()
        self._lock_epoch = 0
        database.on_dispose(self._close_lock_session)
        self._background = set()
        self._heartbeat = None
        self._heartbeat_stop = threading.Event()
        self._idle_ms = max(1, round(idle_seconds * 1000))
        self._heartbeat_seconds = idle_seconds / HEARTBEATS_PER_IDLE

    async def _drain_unlocks(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

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
            try:
                conn.exec_driver_sql(f"SET idle_session_timeout = {self._idle_ms}")
            except DBAPIError:
                # Before PostgreSQL 14: a frozen holder's locks last until it resumes or its host is gone.
                log.warning("lock session: idle_session_timeout unavailable; frozen holders keep locks")
                if conn.invalidated:
                    raise
            self._lock_conn = conn
            self._lock_epoch += 1
            self._start_heartbeat()
        return conn

    def _start_heartbeat(self) -> None:
        """The thread that keeps the lock session from looking idle (its ``idle_session_timeout``).

        A thread, not a task: a busy event loop must not cost the locks of turns that are running; a
        frozen process stops it with everything else, which is the point."""
        beat = self._heartbeat
        if beat is not None and beat.is_alive() and not self._heartbeat_stop.is_set():
            return
        # A stopping thread finishes on its own event; the new one gets a fresh event.
        self._heartbeat_stop = stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(stop,), name="haven-lock-heartbeat", daemon=True)
        self._heartbeat = beat
        beat.start()

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self._heartbeat_seconds):
            with self._lock_conn_mutex:
                conn = self._lock_conn
                if conn is None or conn.closed or conn.invalidated:
                    continue
                try:
                    conn.exec_driver_sql("SELECT 1")
                except DBAPIError:
                    # The server ended the session (a restart, or this process was frozen past the idle
                    # limit): its locks are gone. The next lock starts a new session and epoch, and an
                    # unlock of the old epoch is skipped (``_unlock``).
                    log.warning("lock session lost; its advisory locks were released")
                    self._drop_lock_session()

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
        self._heartbeat_stop.set()
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None and heartbeat is not threading.current_thread():
            heartbeat.join(timeout=self._heartbeat_seconds + 1)
        with self._lock_conn_mutex:
            self._drop_lock_session()
