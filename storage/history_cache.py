"""The in-process cache of recently active conversations' histories."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from bot.types import HistoryMessage

# The in-process history cache: conversations kept, and stored messages kept over all of them.
HISTORY_CACHE_CONVERSATIONS = 256
HISTORY_CACHE_MESSAGES = 50_000


@dataclass(frozen=True, slots=True)
class CachedHistory:
    generation: int  # ``Database.generation`` when read
    last_seq: int
    redacted: int
    messages: tuple[HistoryMessage, ...]


class HistoryCache:
    """The history of recently active conversations, re-validated against the database on every read.

    A conversation's stored messages only ever change in two ways: new ones are appended with a higher
    ``seq``, and old ones are redacted (``redacted`` set; never unset, never deleted). So (last ``seq``,
    number redacted), read in the same transaction, tells whether a cached copy is whole, needs only its
    tail, or must be read again — also when another process did the writing. Redacting an already
    redacted message again (forget-user after retention) changes only its placeholder text; this process
    notices that through ``Database.generation``.
    """

    def __init__(self, max_conversations: int, max_messages: int) -> None:
        self._entries: OrderedDict[tuple[str, str], CachedHistory] = OrderedDict()
        self._messages = 0
        self._max_conversations = max_conversations
        self._max_messages = max_messages
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> CachedHistory | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple[str, str], entry: CachedHistory) -> None:
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
