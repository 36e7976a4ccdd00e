"""The engine's side of the durable inbox, on the in-memory store: live turns, recovery from every state,
the retry budget, fencing, thread order, bounded lock waits and shutdown.

Two engines on one ``MemoryStore`` stand for two processes (each its own ``owner``); the store's clock is
moved by hand, so a lease runs out without sleeping. A ``RecordingSink`` is an adapter's
``RecoverySink``: what it draws is what a person would see from a recovered turn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

import bot.engine
from bot.admission import RESTARTING_NOTE
from bot.config import SettingsError, load_settings
from bot.engine import MAX_ATTEMPTS, Engine, EngineOptions
from bot.locks import KeyedLocks
from bot.model import ChunkSink, ModelError, ModelReply, ModelRequest
from bot.notices import TURN_FAILED
from bot.ports import ConversationStore, ReplyStream
from bot.prompts import MODEL_ERROR_REPLY
from bot.types import (
    Accepted,
    Author,
    ForkRequest,
    InboxEntry,
    InboxState,
    IncomingMessage,
    Origin,
    RiskAssessment,
    RiskLevel,
    ThreadRef,
    TurnResult,
    TurnStatus,
    WorkspaceSettings,
)
from fakes import MemoryStore, ScriptedModel
from fakes.harness import make_settings, services_for
from storage.conversation_locks import HEARTBEATS_PER_IDLE, LOCK_IDLE_SECONDS

THREAD = ThreadRef("slack", "T1", "C1", "100.1")
ALICE = Author("U1", "Alice")
LEASE = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def pass_lease(self) -> None:
        self.now += timedelta(seconds=LEASE + 1)


class RecordingStream:
    def __init__(self, on_ref: Callable[[str], Awaitable[None]], ref: str) -> None:
        self.snapshots: list[str] = []
        self._on_ref = on_ref
        self._ref = ref

    async def update(self, text: str) -> None:
        if not self.snapshots:
            await self._on_ref(self._ref)
        self.snapshots.append(text)


class RecordingSink:
    """``bot.ports.RecoverySink``: records each drawn result with the entry and the reply ref it had."""

    def __init__(self) -> None:
        self.drawn: list[tuple[str, TurnResult, str | None]] = []
        self.streams: list[RecordingStream] = []

    def reply_stream(self, entry: InboxEntry, on_ref: Callable[[str], Awaitable[None]]) -> ReplyStream:
        stream = RecordingStream(on_ref, f"ref-{entry.id}")
        self.streams.append(stream)
        return stream

    async def draw(self, entry: InboxEntry, result: TurnResult, stream: ReplyStream | None) -> None:
        self.drawn.append((entry.id, result, entry.reply_ref))

    async def message(self, entry: InboxEntry) -> IncomingMessage:
        return entry.message

    def texts(self) -> list[str]:
        return [r.error or " ".join(r.replies) for _, r, _ in self.drawn]


class GatedModel(ScriptedModel):
    """A scripted model whose calls wait for ``gate`` (a model still thinking when its process dies)."""

    def __init__(self, default: str = "ok") -> None:
        super().__init__(default)
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def respond(self, request: ModelRequest, sink: ChunkSink | None = None) -> ModelReply:
        self.waiting.set()
        await self.gate.wait()
        return await super().respond(request, sink)


class LostLock:
    """The store as a process sees it whose lock session was lost (its advisory locks went with it):
    its conversation locks are its own, so another process can take the conversation meanwhile."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._locks = KeyedLocks()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @contextlib.asynccontextmanager
    async def conversation_lock(self, key: str) -> AsyncIterator[None]:
        async with self._locks(key):
            yield


def no_risk(text: str) -> RiskAssessment:
    return RiskAssessment(RiskLevel.NONE, None, ())


@pytest.fixture(autouse=True)
def _detector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.engine, "assess_risk", no_risk)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(clock: Clock) -> MemoryStore:
    s = MemoryStore(clock=clock)
    await s.save_settings(WorkspaceSettings("slack", "T1", verify_endings=False))
    return s


def engine(store: MemoryStore, model: ScriptedModel, owner: str, **options: float) -> Engine:
    return Engine(store, model, EngineOptions(inbox_lease_seconds=LEASE, **options), inbox=store, owner=owner)


def message(
    n: int, text: str = "hello", *, start: bool = False, thread: ThreadRef = THREAD
) -> IncomingMessage:
    origin = Origin.MENTION if start else Origin.THREAD_REPLY
    return IncomingMessage(thread, ALICE, text, f"{thread.thread}.{n}", origin=origin)


async def accepted(e: Engine, msg: IncomingMessage) -> InboxEntry:
    status, entry = await e.accept(msg)
    assert status is Accepted.NEW and entry is not None
    return entry


async def entry_of(store: MemoryStore, entry_id: str) -> InboxEntry:
    found = await store.get_entry(entry_id)
    assert found is not None
    return found


async def user_messages(store: MemoryStore) -> list[str | None]:
    conv = await store.find_conversation(THREAD)
    assert conv is not None
    return [m.text for m in await store.history(conv.id, "T1") if m.role == "user" and m.kind == "text"]


class Drawn:
    """A live adapter's ``deliver``: what the live turn drew."""

    def __init__(self) -> None:
        self.results: list[TurnResult] = []

    async def __call__(self, result: TurnResult) -> None:
        self.results.append(result)


# -- live ------------------------------------------------------------------------------------------------


async def test_a_live_turn_stores_its_outcome_with_the_turn_and_finishes_the_entry(
    store: MemoryStore,
) -> None:
    e = engine(store, ScriptedModel("Hi there."), "p1")
    msg = message(1, start=True)
    entry = await accepted(e, msg)
    assert await e.accept(msg) == (Accepted.DUPLICATE, None)  # Slack's retry or the app_mention twin

    drawn = Drawn()
    result = await e.handle_message(msg, None, drawn, entry)

    assert result.replies == ("Hi there.",) and drawn.results == [result]
    done = await entry_of(store, entry.id)
    assert done.state is InboxState.ANSWERED and done.delivered and done.result == result
    assert await store.pending() == 0
    assert await e.accept(msg) == (Accepted.DUPLICATE, None)


async def test_an_empty_message_or_a_stranger_thread_is_not_recorded(store: MemoryStore) -> None:
    e = engine(store, ScriptedModel(), "p1")
    assert await e.accept(message(1, " \x00 ", start=True)) == (Accepted.NOT_OURS, None)
    assert await e.accept(message(2, "not for Haven")) == (Accepted.NOT_OURS, None)
    assert await store.pending() == 0


async def test_a_model_outage_fails_the_entry_with_its_note_and_draws_it_once(store: MemoryStore) -> None:
    model = ScriptedModel()
    model.then(ModelError("overloaded"))
    e = engine(store, model, "p1")
    msg = message(1, start=True)
    entry = await accepted(e, msg)
    drawn = Drawn()
    result = await e.handle_message(msg, None, drawn, entry)
    assert result.status is TurnStatus.ERROR and result.error == MODEL_ERROR_REPLY
    done = await entry_of(store, entry.id)
    assert done.state is InboxState.FAILED and done.delivered and done.result == result
    assert drawn.results == [result]


# -- recovery by state ------------------------------------------------------------------------------------


async def test_a_received_entry_whose_holder_died_is_answered_once_by_another_process(
    store: MemoryStore, clock: Clock
) -> None:
    dead = engine(store, ScriptedModel(), "dead")
    entry = await accepted(dead, message(1, "plan my week", start=True))  # … and the process died
    model = ScriptedModel("Here is a plan.")
    alive, sink = engine(store, model, "alive"), RecordingSink()

    assert await alive.recover({"slack": sink}) == 0  # its lease has not run out yet
    clock.pass_lease()
    assert await alive.recover({"slack": sink}) == 1
    assert await alive.recover({"slack": sink}) == 0

    assert sink.texts() == ["Here is a plan."]
    assert model.user_texts() == ["[Alice] plan my week"]
    done = await entry_of(store, entry.id)
    assert done.state is InboxState.ANSWERED and done.delivered and done.owner == "alive"
    # The recovered stream reported its message as soon as it existed: a later recovery would update it.
    assert done.reply_ref == f"ref-{entry.id}"


async def test_an_answering_entry_is_resumed_from_the_stored_history_and_the_stale_turn_draws_nothing(
    store: MemoryStore, clock: Clock
) -> None:
    frozen_model = GatedModel("Stale answer.")
    frozen = Engine(
        cast(ConversationStore, LostLock(store)),
        frozen_model,
        EngineOptions(inbox_lease_seconds=LEASE),
        inbox=store,
        owner="frozen",
    )
    msg = message(1, "are you there?", start=True)
    entry = await accepted(frozen, msg)
    stale_drawn = Drawn()
    stale = asyncio.create_task(frozen.handle_message(msg, None, stale_drawn, entry))
    await frozen_model.waiting.wait()  # the message is stored, the model is at work … and the process froze
    assert (await entry_of(store, entry.id)).state is InboxState.ANSWERING

    clock.pass_lease()
    model = ScriptedModel("Fresh answer.")
    alive, sink = engine(store, model, "alive"), RecordingSink()
    assert await alive.recover({"slack": sink}) == 1

    # The model saw the person's message once (no second user message was stored), and answered it.
    assert model.user_texts() == ["[Alice] are you there?"]
    assert await user_messages(store) == ["are you there?"]
    assert sink.texts() == ["Fresh answer."]

    # The frozen process wakes up: its finish_turn presents a hold it lost, so nothing is stored or drawn.
    frozen_model.gate.set()
    result = await stale
    assert result.status is TurnStatus.IGNORED and stale_drawn.results == []
    conv = await store.find_conversation(THREAD)
    assert conv is not None
    replies = [m for m in await store.history(conv.id, "T1") if m.role == "assistant"]
    assert len(replies) == 1
    done = await entry_of(store, entry.id)
    assert done.delivered and done.result is not None and done.result.replies == ("Fresh answer.",)


async def test_an_answered_entry_not_delivered_is_redrawn_once_without_the_model(
    store: MemoryStore, clock: Clock
) -> None:
    model = ScriptedModel("Stored answer.")
    crashing = engine(store, model, "p1")
    msg = message(1, start=True)
    entry = await accepted(crashing, msg)

    async def platform_down(result: TurnResult) -> None:
        raise ConnectionError("the platform went away while drawing")

    with pytest.raises(ConnectionError):
        await crashing.handle_message(msg, None, platform_down, entry)
    stored = await entry_of(store, entry.id)
    assert stored.state is InboxState.ANSWERED and not stored.delivered

    other, sink = engine(store, ScriptedModel("never asked"), "p2"), RecordingSink()
    # The failed turn let go of its entry: recovery need not wait for the lease.
    assert await other.recover({"slack": sink}) == 1
    assert await other.recover({"slack": sink}) == 0
    clock.pass_lease()
    assert await other.recover({"slack": sink}) == 0
    assert sink.texts() == ["Stored answer."] and len(model.requests) == 1
    assert (await entry_of(store, entry.id)).delivered


async def test_a_failed_entry_not_delivered_gets_its_note_redrawn(store: MemoryStore, clock: Clock) -> None:
    model = ScriptedModel()
    model.then(ModelError("overloaded"))
    e = engine(store, model, "p1")
    msg = message(1, start=True)
    entry = await accepted(e, msg)

    async def platform_down(result: TurnResult) -> None:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        await e.handle_message(msg, None, platform_down, entry)
    assert (await entry_of(store, entry.id)).state is InboxState.FAILED
    sink = RecordingSink()
    clock.pass_lease()
    assert await engine(store, ScriptedModel(), "p2").recover({"slack": sink}) == 1
    assert sink.texts() == [MODEL_ERROR_REPLY]
    assert (await entry_of(store, entry.id)).delivered


async def test_past_the_retry_budget_the_person_gets_the_failure_note_not_silence(
    store: MemoryStore, clock: Clock
) -> None:
    e = engine(store, ScriptedModel(), "p1")
    entry = await accepted(e, message(1, start=True))
    for n in range(MAX_ATTEMPTS):  # taken again and again by processes that all died
        clock.pass_lease()
        [taken] = await store.take_expired(f"crashed-{n}", LEASE, 10)
    assert taken.attempts == MAX_ATTEMPTS + 1

    model, sink = ScriptedModel(), RecordingSink()
    clock.pass_lease()
    assert await engine(store, model, "last").recover({"slack": sink}) == 1
    assert sink.texts() == [TURN_FAILED] and model.requests == []
    done = await entry_of(store, entry.id)
    assert done.state is InboxState.FAILED and done.delivered


# -- order, waits, shutdown -------------------------------------------------------------------------------


async def test_a_new_message_answers_its_threads_older_orphaned_entry_first(
    store: MemoryStore, clock: Clock
) -> None:
    first = engine(store, ScriptedModel(), "first")
    drawn = Drawn()
    await first.handle_message(
        message(1, "start", start=True), None, drawn, await accepted(first, message(1, "start", start=True))
    )
    orphan = await accepted(first, message(2, "older"))  # … and the process died with it
    clock.pass_lease()

    model = ScriptedModel()
    model.then("Answer to older.", "Answer to newer.")
    second, sink = engine(store, model, "second"), RecordingSink()
    second.attach("slack", sink)
    try:
        newer = message(3, "newer")
        live = Drawn()
        await second.handle_message(newer, None, live, await accepted(second, newer))
    finally:
        await second.aclose()

    assert sink.texts() == ["Answer to older."] and [r.replies for r in live.results] == [
        ("Answer to newer.",)
    ]
    assert await user_messages(store) == ["start", "older", "newer"]
    assert (await entry_of(store, orphan.id)).delivered


async def test_a_turn_that_waits_too_long_for_its_lock_is_left_for_recovery(
    store: MemoryStore, clock: Clock
) -> None:
    e = engine(store, ScriptedModel("Answered later."), "p1", lock_wait_seconds=0.2)
    msg = message(1, start=True)
    entry = await accepted(e, msg)
    drawn = Drawn()
    async with store.conversation_lock(THREAD.key):  # a frozen holder of the thread
        result = await asyncio.wait_for(e.handle_message(msg, None, drawn, entry), 2)
        assert result.status is TurnStatus.IGNORED and drawn.results == []
        stays = await entry_of(store, entry.id)
        assert stays.state is InboxState.RECEIVED and not stays.delivered
        await e.renew_leases()  # its lease is no longer renewed …
    clock.pass_lease()
    sink = RecordingSink()
    assert await e.recover({"slack": sink}) == 1  # … so recovery answers it, once
    assert sink.texts() == ["Answered later."] and drawn.results == []
    await e.aclose()


async def test_shutdown_leaves_an_unfinished_turn_to_recovery_instead_of_the_restart_note(
    store: MemoryStore,
) -> None:
    slow = GatedModel("Never finished.")
    stopping = engine(store, slow, "stopping")
    msg = message(1, start=True)
    entry = await accepted(stopping, msg)
    drawn = Drawn()
    turn = asyncio.create_task(stopping.handle_message(msg, None, drawn, entry))
    await slow.waiting.wait()
    stopping.begin_shutdown(0.1)
    result = await asyncio.wait_for(turn, 2)
    assert result.status is TurnStatus.IGNORED and drawn.results == []  # no "send it again" note
    await stopping.aclose()  # releases the entry: no need to wait for its lease

    model, sink = ScriptedModel("Answered after the restart."), RecordingSink()
    assert await engine(store, model, "restarted").recover({"slack": sink}) == 1
    assert sink.texts() == ["Answered after the restart."]
    assert await user_messages(store) == ["hello"]


async def test_after_the_shutdown_deadline_queued_turns_do_not_spend_an_earlier_entrys_budget(
    store: MemoryStore,
) -> None:
    slow = GatedModel("Never finished.")
    stopping = engine(store, slow, "stopping")
    stopping.attach("slack", RecordingSink())
    first = message(1, start=True)
    turn = asyncio.create_task(stopping.handle_message(first, None, Drawn(), await accepted(stopping, first)))
    await slow.waiting.wait()
    stopping.begin_shutdown(0.05)
    assert (await asyncio.wait_for(turn, 2)).status is TurnStatus.IGNORED
    earlier = (await store.take_expired("probe", LEASE, 10)) or []
    assert earlier == []  # still held by "stopping" until aclose releases it
    # Six messages queued behind it reach the lock after the deadline: each leaves itself and the
    # earlier entry to the next process instead of taking it over again (an attempt each).
    queued = [message(n, f"queued {n}") for n in range(2, 8)]
    drawn = Drawn()
    for msg in queued:
        result = await stopping.handle_message(msg, None, drawn, await accepted(stopping, msg))
        assert result.status is TurnStatus.IGNORED
    assert drawn.results == []
    await stopping.aclose()

    model = ScriptedModel()
    model.then("Answer 1.", *(f"Answer {n}." for n in range(2, 8)))
    sink = RecordingSink()
    restarted = engine(store, model, "restarted")
    while await restarted.recover({"slack": sink}):
        pass
    assert sink.texts() == ["Answer 1.", *(f"Answer {n}." for n in range(2, 8))]  # in order, no note
    assert TURN_FAILED not in sink.texts()


async def test_a_result_drawn_while_the_database_went_away_is_marked_delivered_when_it_returns(
    store: MemoryStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.ports import StorageUnavailable

    e = engine(store, ScriptedModel("Drawn once."), "p1")
    msg = message(1, start=True)
    entry = await accepted(e, msg)
    real = store.mark_delivered
    failures = [StorageUnavailable("restarting"), StorageUnavailable("restarting")]

    async def flaky(hold: Any) -> bool:
        if failures:
            raise failures.pop(0)
        return await real(hold)

    monkeypatch.setattr(store, "mark_delivered", flaky)
    monkeypatch.setattr(bot.engine, "MARK_FIRST_DELAY", 0.01)
    drawn = Drawn()
    await e.handle_message(msg, None, drawn, entry)
    assert [r.replies for r in drawn.results] == [("Drawn once.",)] and failures == []
    assert (await entry_of(store, entry.id)).delivered
    clock.pass_lease()
    sink = RecordingSink()
    assert await e.recover({"slack": sink}) == 0 and sink.drawn == []  # nothing to draw twice
    await e.aclose()


async def test_a_turn_without_an_entry_still_gets_the_restart_note_at_shutdown(store: MemoryStore) -> None:
    slow = GatedModel()
    e = engine(store, slow, "p1")
    turn = asyncio.create_task(e.handle_message(message(1, start=True)))
    await slow.waiting.wait()
    e.begin_shutdown(0.1)
    result = await asyncio.wait_for(turn, 2)
    assert result.status is TurnStatus.ERROR and result.error == RESTARTING_NOTE


# -- thread order across processes, and one run per entry in a process --------------------------------


async def test_the_lock_holder_answers_its_threads_earlier_message_held_live_by_another_process_first(
    store: MemoryStore,
) -> None:
    """Process A accepted the thread's message 2, process B message 3; B gets the conversation's lock
    first. B answers 2 (taken from A, whose lease still runs) and then 3; A's turn for 2 draws nothing."""
    model = ScriptedModel()
    model.then("Started.", "Answer to two.", "Answer to three.")
    a, b = engine(store, model, "A"), engine(store, model, "B")
    sink_a, sink_b = RecordingSink(), RecordingSink()
    a.attach("slack", sink_a)
    b.attach("slack", sink_b)
    try:
        start = message(1, "start", start=True)
        await a.handle_message(start, None, Drawn(), await accepted(a, start))
        two, three = message(2, "two"), message(3, "three")
        entry_two = await accepted(a, two)  # A acknowledged it; its turn has not got the lock yet
        live_b = Drawn()
        await b.handle_message(three, None, live_b, await accepted(b, three))
        live_a = Drawn()
        late = await a.handle_message(two, None, live_a, entry_two)
    finally:
        await a.aclose()
        await b.aclose()

    assert sink_b.texts() == ["Answer to two."] and [r.replies for r in live_b.results] == [
        ("Answer to three.",)
    ]
    assert late.status is TurnStatus.IGNORED and live_a.results == [] and sink_a.drawn == []
    assert await user_messages(store) == ["start", "two", "three"]
    assert len(model.requests) == 3  # each message answered once
    assert (await entry_of(store, entry_two.id)).delivered and await store.pending() == 0


class BrokenSink(RecordingSink):
    """A platform that cannot be drawn on right now."""

    async def draw(self, entry: InboxEntry, result: TurnResult, stream: ReplyStream | None) -> None:
        raise RuntimeError("platform unavailable")


async def test_a_turn_whose_earlier_message_cannot_be_answered_now_is_not_answered_before_it(
    store: MemoryStore, clock: Clock
) -> None:
    model = ScriptedModel()
    model.then("Started.", "Answer to two.", "Answer to three.")
    a, b = engine(store, model, "A"), engine(store, model, "B")
    b.attach("slack", BrokenSink())
    start = message(1, "start", start=True)
    await a.handle_message(start, None, Drawn(), await accepted(a, start))
    two, three = message(2, "two"), message(3, "three")
    entry_two = await accepted(a, two)
    entry_three = await accepted(b, three)
    live_b = Drawn()
    with pytest.raises(RuntimeError):
        await b.handle_message(three, None, live_b, entry_three)
    assert live_b.results == []  # three was not answered before two
    await a.aclose()
    await b.aclose()

    clock.pass_lease()
    model.then("Answer to three.")
    sink = RecordingSink()
    assert await engine(store, model, "C").recover({"slack": sink}) == 2
    assert [entry_id for entry_id, _, _ in sink.drawn] == [entry_two.id, entry_three.id]
    assert sink.texts() == ["Answer to two.", "Answer to three."]  # two's stored answer drawn again
    assert await user_messages(store) == ["start", "two", "three"]


async def test_this_process_never_runs_an_entry_twice_when_its_own_lease_lapsed(
    store: MemoryStore, clock: Clock
) -> None:
    """A stalled loop: the turn's lease lapsed while it ran, another process took the entry (and died),
    and this process's own recovery takes it back. A hold is only (entry, owner), so fencing cannot tell
    the turn still at work from a second run: the engine must, and keeps renewing it for that turn."""
    slow = GatedModel("Answered once.")
    e, sink = engine(store, slow, "p1"), RecordingSink()
    msg = message(1, start=True)
    entry = await accepted(e, msg)
    drawn = Drawn()
    turn = asyncio.create_task(e.handle_message(msg, None, drawn, entry))
    await slow.waiting.wait()
    clock.pass_lease()  # no renewal reached the store in time …
    assert [t.id for t in await store.take_expired("other", LEASE, 10)] == [entry.id]
    await e.renew_leases()  # … this process learns it lost the entry …
    clock.pass_lease()  # … and the other process died with it
    recovering = asyncio.create_task(e.recover({"slack": sink}))
    await asyncio.sleep(0.05)
    assert (await entry_of(store, entry.id)).owner == "p1"  # this process's again
    await e.renew_leases()  # and renewed for the turn still at work on it
    clock.now += timedelta(seconds=LEASE / 2)
    assert await store.take_expired("other", LEASE, 10) == []
    slow.gate.set()
    result = await asyncio.wait_for(turn, 2)
    assert await asyncio.wait_for(recovering, 2) == 0
    await e.aclose()

    assert result.replies == ("Answered once.",) and drawn.results == [result] and sink.drawn == []
    assert len(slow.requests) == 1
    assert (await entry_of(store, entry.id)).delivered


async def test_recovery_takes_only_entries_of_platforms_it_can_answer(
    store: MemoryStore, clock: Clock
) -> None:
    dead, e = engine(store, ScriptedModel(), "dead"), engine(store, ScriptedModel("Recovered."), "p1")
    discord = ThreadRef("discord", "G1", "c1", "t1")
    await accepted(dead, message(1, start=True))
    theirs = await accepted(dead, message(1, start=True, thread=discord))
    clock.pass_lease()
    sink = RecordingSink()
    assert await e.recover({"slack": sink}) == 1 and sink.texts() == ["Recovered."]
    left = await entry_of(store, theirs.id)
    assert left.attempts == 1 and not left.delivered  # not taken: another process can answer it
    await e.aclose()
    await dead.aclose()


async def test_a_forks_first_message_is_on_the_inbox_and_recovered_in_the_new_thread(
    store: MemoryStore, clock: Clock
) -> None:
    """A fork opens a new thread and answers the edited message there. When the process dies during that
    turn, the fork's message is an inbox entry like any other: another process answers it, in the new
    thread, once."""
    first = engine(store, ScriptedModel("Sure."), "p1")
    await first.handle_message(message(1, "plan my week", start=True))
    source = await store.find_conversation(THREAD)
    assert source is not None
    new_thread = ThreadRef("slack", "T1", "C1", "300.1")
    request = ForkRequest(source.id, f"{THREAD.thread}.1", new_thread, ALICE, "plan my month", "300.1")
    model = GatedModel("Here is a month.")
    dying = engine(store, model, "dying")
    turn = asyncio.ensure_future(dying.fork(request))
    await model.waiting.wait()
    turn.cancel()  # the process dies while the model thinks
    with contextlib.suppress(asyncio.CancelledError):
        await turn
    assert await store.pending() == 1  # the fork's message, not yet answered

    alive, sink = engine(store, ScriptedModel("Here is a month."), "alive"), RecordingSink()
    clock.pass_lease()
    assert await alive.recover({"slack": sink}) == 1
    assert sink.texts() == ["Here is a month."]
    done = await entry_of(store, sink.drawn[0][0])
    assert done.delivered and done.message.thread == new_thread and done.message.text == "plan my month"
    assert await alive.recover({"slack": sink}) == 0 and await store.pending() == 0


# -- the settings that time recovery and a frozen holder's locks -----------------------------------------


def test_recovery_and_lock_idle_settings_default_to_5_s_and_10_s_and_refuse_nonsense(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = load_settings(_env_file=None)
    assert (defaults.recovery_seconds, defaults.lock_idle_seconds) == (5.0, 10.0)
    assert EngineOptions().recovery_seconds == 5.0 and LOCK_IDLE_SECONDS == 10.0
    monkeypatch.setenv("HAVEN_RECOVERY_SECONDS", "0.5")
    monkeypatch.setenv("HAVEN_LOCK_IDLE_SECONDS", "2.5")
    s = load_settings(_env_file=None)
    assert (s.recovery_seconds, s.lock_idle_seconds) == (0.5, 2.5)
    # A lock session idle for under a second: a live process's heartbeat could miss it on a busy host.
    for name, value in (("HAVEN_RECOVERY_SECONDS", "0"), ("HAVEN_LOCK_IDLE_SECONDS", "0.5")):
        monkeypatch.setenv(name, value)
        with pytest.raises(SettingsError, match=f"^invalid setting {name}: "):
            load_settings(_env_file=None)
        monkeypatch.delenv(name)


async def test_the_recovery_and_lock_idle_settings_reach_the_engine_and_the_lock_session(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path}/haven.db", HAVEN_RECOVERY_SECONDS=0.5, HAVEN_LOCK_IDLE_SECONDS=2.5
    )
    async with services_for(settings) as services:
        assert services.engine._options.recovery_seconds == 0.5
        assert services.repo._idle_ms == 2500
        assert services.repo._heartbeat_seconds == 2.5 / HEARTBEATS_PER_IDLE
