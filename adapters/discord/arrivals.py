"""Per thread, the order in which its messages reached this process, in two steps.

Discord hands every gateway event to its own task, and a message's way to its turn awaits the database
twice: to be recorded in the inbox (``Engine.accept``), then to be answered. Each message takes its
``Place`` in its thread's line before its first await; it is recorded only after the message before it
was (``after_accepted``), and answered only after the message before it was (``after_done``). So a
message is durable as soon as the ones before it are, even while an earlier turn of its thread is still
being answered, and the thread's replies keep the order of its messages.

A command that opens or continues a conversation (``/haven new``, a fork) holds its place for the whole
of its work (``Arrivals.hold``): what arrives behind it waits until it is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator


class Place:
    """One message's (or command's) place in its thread's line."""

    def __init__(self, arrivals: Arrivals, key: str, before: Place | None) -> None:
        loop = asyncio.get_running_loop()
        self._arrivals = arrivals
        self._key = key
        self._before = before
        self.since = time.monotonic()  # when it arrived: waiting for the database is bounded from here
        self.accepted_at: float | None = None  # when it was recorded: waiting for its turn, from here
        self._accepted: asyncio.Future[None] = loop.create_future()
        self._done: asyncio.Future[None] = loop.create_future()

    @property
    def behind_running(self) -> bool:
        """Whether the one before it is still at work (its conversation may not exist yet)."""
        return self._before is not None and not self._before._done.done()

    async def after_accepted(self) -> None:
        """Until the one before it was recorded (or gave up)."""
        before = self._before
        if before is not None and not before._accepted.done():
            await asyncio.shield(before._accepted)

    async def after_done(self, seconds: float | None = None) -> None:
        """Until the one before it is done; ``TimeoutError`` after ``seconds`` (None: no limit)."""
        before = self._before
        if before is not None and not before._done.done():
            async with asyncio.timeout(seconds):
                await asyncio.shield(before._done)
        self._before = None  # nothing more to wait for: let the chain be collected

    def accepted(self) -> None:
        """Recorded in the inbox: the next one may be recorded too."""
        if not self._accepted.done():
            self.accepted_at = time.monotonic()
            self._accepted.set_result(None)

    def leave(self) -> None:
        """Done (answered, left to recovery, or nothing to do): the next one may go. Safe twice."""
        self.accepted()
        if not self._done.done():
            self._done.set_result(None)
        self._arrivals.forget(self._key, self)


class Arrivals:
    def __init__(self) -> None:
        self._last: dict[str, Place] = {}

    def enter(self, key: str) -> Place:
        """The next place in ``key``'s line; call it before any await to keep arrival order."""
        place = Place(self, key, self._last.get(key))
        self._last[key] = place
        return place

    def forget(self, key: str, place: Place) -> None:
        if self._last.get(key) is place:
            del self._last[key]

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[Place]:
        """The whole line of ``key`` for the body: after everything before it, before everything after."""
        place = self.enter(key)
        try:
            await place.after_done()
            yield place
        finally:
            place.leave()
