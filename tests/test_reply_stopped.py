"""The core's side of a reply the person stops (Slack's Stop button) and of the "thinking" feedback.

A ``ReplyStream`` raises ``bot.model.ReplyStopped`` from ``update``; the engine ends the model call there
(no more of the reply is generated or retried) and stores what the person saw as the turn's reply. The
wire-level half (Bolt, the mock Slack Web API, the Anthropic SDK) is in ``tests/slack/test_streaming.py``.
"""

from __future__ import annotations

import pytest

from bot.engine import Engine
from bot.model import ReplyStopped
from bot.prompts import END_TOOL
from bot.types import Author, IncomingMessage, Origin, ThreadRef, TurnResult, TurnStatus, WorkspaceSettings
from fakes import MemoryStore, ScriptedModel

THREAD = ThreadRef("slack", "T1", "C1", "100.1")
ALICE = Author("U1", "Alice")
REPLY = "First part of the answer. Second part of the answer. Third part. Fourth part."


class StoppedAtTheEnd:
    """A reply stream the person stopped after its first snapshot, which it learns only when the model
    is done (``bot.ports.Settles``: Slack hears nothing from the stream between batched appends)."""

    def __init__(self) -> None:
        self.snapshots: list[str] = []
        self.settled: list[str] = []

    async def update(self, text: str) -> None:
        self.snapshots.append(text)

    async def settle(self, text: str) -> None:
        self.settled.append(text)
        raise ReplyStopped(self.snapshots[0])


class StoppedAfter:
    """A reply stream whose person presses Stop once ``shows`` snapshots have been shown."""

    def __init__(self, shows: int) -> None:
        self.shows = shows
        self.snapshots: list[str] = []
        self.events: list[str] = []

    async def thinking(self) -> None:
        self.events.append("thinking")

    async def update(self, text: str) -> None:
        if len(self.snapshots) == self.shows:
            raise ReplyStopped(self.snapshots[-1])
        self.snapshots.append(text)
        self.events.append("text")


def message(n: int, text: str) -> IncomingMessage:
    origin = Origin.MENTION if n == 1 else Origin.THREAD_REPLY
    return IncomingMessage(THREAD, ALICE, text, f"100.{n}", origin=origin)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel()


@pytest.fixture
async def engine(store: MemoryStore, model: ScriptedModel) -> Engine:
    await store.save_settings(WorkspaceSettings("slack", "T1", verify_endings=False))
    return Engine(store, model)


async def assistant_texts(store: MemoryStore) -> list[str]:
    conv = await store.find_conversation(THREAD)
    assert conv is not None
    history = await store.history(conv.id, "T1")
    return [str(b.get("text")) for m in history if m.role == "assistant" for b in m.content if "text" in b]


async def test_a_stopped_reply_ends_generation_and_stores_what_was_shown(
    engine: Engine, store: MemoryStore, model: ScriptedModel
) -> None:
    model.pieces = 4
    model.then(REPLY)
    stream = StoppedAfter(shows=2)

    result = await engine.handle_message(message(1, "hello"), stream)

    assert model.delivered == 2  # the third piece was refused: the model call ended there
    shown = stream.snapshots[-1]
    assert 0 < len(shown) < len(REPLY)
    assert result.status is TurnStatus.REPLIED and result.replies == (shown,)
    assert await assistant_texts(store) == [shown]
    assert stream.events[0] == "thinking"  # before the model was asked

    # The next turn's request carries exactly what the person saw.
    model.then("Carrying on.")
    await engine.handle_message(message(2, "go on"), StoppedAfter(shows=10))
    assert await assistant_texts(store) == [shown, "Carrying on."]
    assert len(model.requests) == 2  # a stop is not retried


async def test_a_stop_before_any_text_stores_no_reply(
    engine: Engine, store: MemoryStore, model: ScriptedModel
) -> None:
    model.then(REPLY)

    class StoppedAtOnce(StoppedAfter):
        async def update(self, text: str) -> None:
            raise ReplyStopped("")

    result = await engine.handle_message(message(1, "hello"), StoppedAtOnce(shows=0))

    assert result.status is TurnStatus.REPLIED and result.replies == ()
    assert await assistant_texts(store) == []


async def test_a_stop_in_a_later_model_call_keeps_the_tool_round(
    engine: Engine, store: MemoryStore, model: ScriptedModel
) -> None:
    """Stopped while the model writes after a held ending: the tool call and its result stay paired,
    and only the words the person saw of the second call are added."""
    model.pieces = 4
    model.then(model.tool(END_TOOL, {"reason": "abuse", "note": "x"}, text_before="Let's keep it civil."))
    model.then(REPLY)
    stream = StoppedAfter(shows=6)  # the first call's text (four pieces), then two of the second

    result: TurnResult = await engine.handle_message(message(1, "you are useless"), stream)

    said = stream.snapshots[-1]
    assert said.startswith("Let's keep it civil.") and said != "Let's keep it civil."
    part = said[len("Let's keep it civil.") :].strip()
    assert REPLY.startswith(part) and part != REPLY
    assert result.replies == (f"Let's keep it civil.\n\n{part}",)
    conv = await store.find_conversation(THREAD)
    assert conv is not None and conv.warnings == 1  # the held ending still counted
    history = await store.history(conv.id, "T1")
    assert [m.kind for m in history] == ["text", "tool_use", "tool_result", "text"]
    assert history[-1].content == ({"type": "text", "text": part},)


async def test_a_stop_found_when_the_model_is_done_keeps_what_was_shown(
    engine: Engine, store: MemoryStore, model: ScriptedModel
) -> None:
    model.pieces = 4
    model.then(REPLY)
    stream = StoppedAtTheEnd()

    result = await engine.handle_message(message(1, "hello"), stream)

    assert stream.settled == [REPLY]  # asked before the turn was stored
    shown = stream.snapshots[0]
    assert result.replies == (shown,) and await assistant_texts(store) == [shown]


async def test_a_settled_reply_is_stored_whole(
    engine: Engine, store: MemoryStore, model: ScriptedModel
) -> None:
    class Settled(StoppedAtTheEnd):
        async def settle(self, text: str) -> None:
            self.settled.append(text)

    model.pieces = 3
    model.then(REPLY)
    stream = Settled()

    result = await engine.handle_message(message(1, "hello"), stream)

    assert stream.settled == [REPLY] and result.replies == (REPLY,)
    assert await assistant_texts(store) == [REPLY]
