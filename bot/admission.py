"""Admission: how many turns of this process call the model at once, and for how long.

- **A limit.** At most ``limit`` turns run their model part (every model call, retry, tool round and
  verifier call of one user message) at the same time; the others wait for a slot in arrival order.
  The queue is in memory: the turns waiting in it die with the process. (The durable queue is the
  inbox's job, not this module's.)
- **A deadline.** The model part of one turn gets at most ``deadline`` seconds; waiting for a slot does
  not count. Past it the turn stops with ``TurnStopped`` and the engine answers with a note.
- **Acknowledgements first.** While the process is acknowledging events (``intake()`` around each one,
  from the adapter's HTTP or socket handler), a turn that is about to start waits (``after_intake()``)
  until none is left (in a burst, until none has been for ``INTAKE_QUIET_SECONDS``), for at most
  ``INTAKE_FIRST_SECONDS``; a turn already running does the same between its pieces of work (each
  streamed chunk, each further model call: ``yield_to_intake()``). An acknowledgement is a platform's
  deadline (Slack: 3 s, then it counts the delivery as failed and sends it again), a turn's start is not: in a
  burst of a thousand new threads the turns of the first events would otherwise take the CPU, the
  database workers and the event loop from the acknowledgements of the later ones. The message is
  already durable in the inbox while its turn waits, so waiting costs latency, never the message.
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
from collections.abc import AsyncIterator, Iterator

log = logging.getLogger(__name__)

# Said in the thread when a turn's model part is stopped (``bot.presentation`` draws it as the failure
# note, after whatever of the reply was already shown).
RESTARTING_NOTE = (
    "Sorry — Haven is restarting and couldn't finish answering. Please send your message again in a minute."
)
TOO_SLOW_NOTE = "Sorry — answering took me too long, so I stopped. Please send your message again."
# A turn waits at most this long for the acknowledgements in progress: enough for a burst of a few
# thousand events (about 2 ms of CPU each), and well inside the lock wait the turn's wait is taken from
# (HAVEN_LOCK_WAIT_SECONDS, 30 s by default), so that a steady overload delays turns but never stops them.
INTAKE_FIRST_SECONDS = 10.0
# ... and until no acknowledgement has ended for this long. In a burst the count of acknowledgements in
# progress touches 0 between two requests (the next one still unread in its socket) hundreds of times;
# each such moment used to let waiting turns in, whose CPU then delayed the acknowledgements behind them
# (bench/burst.py: 1,500 threads, max 8.3 s). Only in a burst: at least INTAKE_BURST_EVENTS
# acknowledgements ended within INTAKE_BURST_SECONDS (250 a second); a lone turn, or ten threads
# answered at once, never waits for the quiet.
INTAKE_QUIET_SECONDS = 0.02
INTAKE_BURST_EVENTS = 50
INTAKE_BURST_SECONDS = 0.2
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
        self.intake_first = INTAKE_FIRST_SECONDS
        self.acknowledging = 0  # events being acknowledged now (``intake``)
        self.intake_quiet = INTAKE_QUIET_SECONDS
        self.intake_burst = INTAKE_BURST_EVENTS
        # Loop times at which the latest acknowledgements ended (at most ``intake_burst`` of them).
        self._ended: deque[float] = deque(maxlen=INTAKE_BURST_EVENTS)
        self._acknowledged = asyncio.Event()  # set while ``acknowledging`` is 0
        self._acknowledged.set()

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

    @contextlib.contextmanager
    def intake(self) -> Iterator[None]:
        """Around the acknowledgement of one event: turns about to start wait until there is none."""
        self.acknowledging += 1
        self._acknowledged.clear()
        try:
            yield
        finally:
            self.acknowledging -= 1
            self._ended.append(asyncio.get_running_loop().time())
            if not self.acknowledging:
                self._acknowledged.set()

    def _quiet_for(self) -> float:
        """How much longer until a burst of acknowledgements has been quiet long enough (≤ 0: now, or
        no burst under way)."""
        ended, n = self._ended, self.intake_burst
        if len(ended) < n or ended[-1] - ended[-n] > INTAKE_BURST_SECONDS:
            return 0.0
        return ended[-1] + self.intake_quiet - asyncio.get_running_loop().time()

    def intake_pending(self) -> bool:
        """Events are being acknowledged, or a burst of them has not been quiet long enough yet: a turn
        should let them go first. Cheap (no await): a running turn asks before each piece of its work."""
        return bool(self.acknowledging) or self._quiet_for() > 0

    async def yield_to_intake(self) -> None:
        """Between two pieces of a running turn's work (a streamed chunk, the next model call): wait as
        ``after_intake`` does while events are being acknowledged, return at once otherwise. A turn that
        only waited at its start would, in a burst, keep the CPU through its whole stream once started."""
        if self.intake_pending():
            await self.after_intake()

    async def after_intake(self) -> None:
        """Before a turn starts: wait until no event is being acknowledged and, in a burst, none was
        for ``intake_quiet`` s; at most ``intake_first`` s in all. Returns at once when nothing is being
        acknowledged and no burst is under way (the usual case)."""
        quiet_for = self._quiet_for
        if not self.acknowledging and quiet_for() <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.intake_first):
                # Woken by a moment without acknowledgements, the turn looks again: in a burst the
                # next event's acknowledgement has often begun by then.
                while True:
                    if self.acknowledging:
                        await self._acknowledged.wait()
                    elif (left := quiet_for()) > 0:
                        await asyncio.sleep(left)
                    else:
                        return

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
                    # A slot can come free in the middle of a burst; the acknowledgements still go first.
                    await self.yield_to_intake()
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
