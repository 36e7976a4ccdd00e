"""The small repository API the core calls. Every query is scoped by platform and workspace.

Each public method is one synchronous function run on a ``Database`` worker thread (one thread hop per
call) over SQLAlchemy Core. The statements of the per-turn path are built once per repository: building
a statement costs several times more than executing a cached one.

``Repository`` is assembled from one part per concern:

- ``storage.conversation_locks``: ``conversation_lock`` (advisory locks on PostgreSQL);
- ``storage.workspace_settings``: a workspace's settings, saved with their admin audit
  (``storage.admin_audit``, which also lists it);
- ``storage.turns``: dedupe, history (``storage.history_cache``), ``begin_turn``, ``finish_turn`` and
  ``resume_turn`` (a turn reads the settings, records usage and moves its inbox entry, so this part
  builds on those three);
- ``storage.inbox``: the durable inbox (``bot.ports.InboxStore``), its leases timed by the repository's
  ``clock``;
- ``storage.conversations``: finding, forking and ending conversations, participants, reminders;
- ``storage.audit``: model usage, feedback and the audit log;
- ``storage.people``: one person's conversations in a workspace, and forgetting what they wrote there,

over ``storage.rows`` (tables, columns, row conversions) and ``storage.statements`` (the prepared
statements and the state the parts share).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from bot.types import DecisionRecord
from storage.admin_audit import AdminAuditQueries
from storage.audit import AuditQueries
from storage.conversation_locks import LOCK_IDLE_SECONDS, ConversationLocks
from storage.conversations import ConversationQueries
from storage.db import Database
from storage.history_cache import HISTORY_CACHE_CONVERSATIONS, HISTORY_CACHE_MESSAGES, HistoryCache
from storage.inbox import InboxQueries
from storage.people import PeopleQueries
from storage.statements import Statements
from storage.turns import TurnQueries
from storage.workspace_settings import WorkspaceSettingsQueries

# DecisionRecord: what ``list_decisions`` returns, importable from here as before the split.
__all__ = ["DecisionRecord", "Repository"]


class Repository(
    ConversationLocks,
    TurnQueries,
    ConversationQueries,
    PeopleQueries,
    InboxQueries,
    WorkspaceSettingsQueries,
    AdminAuditQueries,
    AuditQueries,
):
    """Implements ``bot.ports.ConversationStore``, ``bot.ports.AdminStore`` and ``bot.ports.InboxStore``.

    ``clock`` (UTC, default the wall clock) times the inbox's leases; tests move it instead of sleeping.
    ``lock_idle_seconds``: how soon a frozen process's advisory locks are freed (``conversation_locks``).
    """

    def __init__(
        self,
        database: Database,
        *,
        clock: Callable[[], datetime] | None = None,
        lock_idle_seconds: float = LOCK_IDLE_SECONDS,
    ) -> None:
        self._db = database
        self._clock = clock or _utcnow
        self._dialect = database.dialect.name
        self._sql = Statements(self._dialect)
        self._history_cache = HistoryCache(HISTORY_CACHE_CONVERSATIONS, HISTORY_CACHE_MESSAGES)
        self._init_locks(database, lock_idle_seconds)
        self._init_inbox()

    @property
    def database(self) -> Database:
        """The database handle (``bot.engine.Engine`` is the conversation engine, a different thing)."""
        return self._db

    async def close(self) -> None:
        await self._drain_unlocks()
        self._history_cache.clear()
        await self._db.dispose()  # closes the lock session too


def _utcnow() -> datetime:
    return datetime.now(UTC)
