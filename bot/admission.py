"""Admission: how many turns of this process call the model at once, and for how long.

- **A limit.** At most ``limit`` turns run their model part (every model call, retry, tool round and
  verifier call of one user message) at the same time; the others wait for a slot in arrival order.
  The queue is in memory: the turns waiting in it die with the process. (The durable queue is the
  inbox's job, not this module's.)
- **A deadline.** The model part of one turn gets at most ``deadline`` seconds; waiting for a slot does
  not count. Past it the turn stops with ``TurnStopped`` and the engine answers with a note.
- **Shutdown.** ``begin_shutdown(seconds)`` moves every deadline (of turns running or waiting for a slot,
  and of turns that arrive later) to at most ``seconds`` from now; what is unfinished then stops with
  ``TurnStopped(restarting=True)``. A turn with a durable inbox entry is then left to recovery (the
  engine releases its entry at close, and another process, or this one restarted, answers it); only a
  turn without one gets the restart note instead of silence.

Lock order: the engine takes the conversation's lock first and a slot second, and never waits for a lock
while it holds a slot. A slot holder therefore never waits on a turn that is waiting for a slot, and the
two cannot deadlock (the other order can: every slot held by turns waiting for locks whose holders wait
for slots).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import AsyncIterator

log = logging.getLogger(__name__)

# Said in the thread when a turn's model part is stopped (``bot.presentation`` draws it as the failure
# note, after whatever of the reply was already shown).
RESTARTING_NOTE = (
    "Sorry — Haven is restarting and couldn't finish answering. Please send your message again in a minute."
)
TOO_SLOW_NOTE = "Sorry — answering took me too long, so I stopped. Please send your message again."
# After the shutdown deadline, stopped turns get this long to post their notes before connectors close:
# a process stops within HAVEN_SHUTDOWN_SECONDS + NOTE_SECONDS (set the orchestrator's grace above it).
NOTE_SECONDS = 5.0


class TurnStopped(Exception):
    """The model part of a turn ran out of time: its deadline passed, or Haven is shutting down."""

    def __init__(self, *, restarting: bool) -> None:
        super().__init__("restarting" if restarting else "turn deadline passed")
        self.restarting = restarting

    @property
    def note(self) -> str:
        return RESTARTING_NOTE if self.restarting else TOO_SLOW_NOTE


class Admission:
    """One per engine (so one per process). Not thread-safe: one event loop uses it."""

    def __init__(self, limit: int = 64, deadline: float = 180.0) -> None:
        if limit < 1:
            raise ValueError("the limit of concurrent turns must be at least 1")
        self.limit = limit
        self.deadline = deadline
        self.running = 0
        self.peak = 0  # the most model parts that ever ran at once (for tests and metrics)
        self._queue: deque[asyncio.Future[None]] = deque()
        self._timers: set[asyncio.Timeout] = set()
        self._stop_at: float | None = None  # loop time at which shutdown stops every turn

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._queue if not f.done())

    @property
    def stopping(self) -> bool:
        return self._stop_at is not None

    @property
    def stopped(self) -> bool:
        """The shutdown's deadline has passed: any turn started now would be stopped at once."""
        return self._stop_at is not None and asyncio.get_running_loop().time() >= self._stop_at

    def begin_shutdown(self, seconds: float) -> None:
        """Give every turn, running, waiting or yet to come, at most ``seconds`` more. Idempotent: the
        first call sets the deadline."""
        if self._stop_at is not None:
            return
        self._stop_at = asyncio.get_running_loop().time() + max(0.0, seconds)
        for timer in list(self._timers):
            timer.reschedule(self._bounded(timer.when()))
        log.info(
            "shutdown: turns get a deadline",
            extra={"seconds": seconds, "running": self.running, "waiting": self.waiting},
        )

    def _bounded(self, when: float | None) -> float | None:
        if self._stop_at is None:
            return when
        return min(math.inf if when is None else when, self._stop_at)

    @contextlib.asynccontextmanager
    async def model_part(self) -> AsyncIterator[None]:
        """Wait for a slot (in arrival order), then run the body under the turn's deadline.

        Raises ``TurnStopped`` when the deadline or the shutdown's passes first, while waiting or running.
        """
        loop = asyncio.get_running_loop()
        timer = asyncio.timeout(self._bounded(None))
        self._timers.add(timer)
        try:
            async with timer:
                await self._acquire()
                try:
                    timer.reschedule(self._bounded(loop.time() + self.deadline))
                    yield
                finally:
                    self._release()
        except TimeoutError:
            if not timer.expired():
                raise  # a time-out of the body's own, not ours
            raise TurnStopped(restarting=self.stopping) from None
        finally:
            self._timers.discard(timer)

    async def _acquire(self) -> None:
        if self.running < self.limit and not self.waiting:
            self._took()
            return
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(slot)
        try:
            await slot
        except BaseException:
            if slot.done() and not slot.cancelled():
                self._release()  # handed a slot just as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._queue.remove(slot)
            raise

    def _took(self) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)

    def _release(self) -> None:
        # The slot goes straight to the oldest waiter (``running`` stays), so nobody can jump the queue.
        while self._queue:
            slot = self._queue.popleft()
            if not slot.done():
                slot.set_result(None)
                return
        self.running -= 1
