"""The one keyed-lock helper adapters share."""

from __future__ import annotations

import asyncio
import weakref


class KeyedLocks:
    """One ``asyncio.Lock`` per key (a conversation, a thread), kept only while someone holds or waits
    for it. Taken before a handler's first await, it keeps one key's events in arrival order."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock
