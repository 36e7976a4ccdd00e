"""The streamed model call (``bot.claude``): the raw event stream put together into the reply, its text
handed on in coalesced pieces, through the real SDK against the local scripted server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest

from bot.claude import CHUNK_SECONDS, AnthropicModel
from bot.model import ModelRequest
from fakes.fake_anthropic import FakeAnthropic, Reply, cut_stream, tool_use
from fakes.harness import make_settings

ANSWER = "".join(f"Sentence {n} of a long, careful answer. " for n in range(40))


class Pieces:
    """A ChunkSink that records what it is handed."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.restarts = 0
        self.taken_back: list[str] = []  # what each restart took back

    async def chunk(self, text: str) -> None:
        self.pieces.append(text)

    async def restart(self) -> None:
        self.restarts += 1
        self.taken_back.append("".join(self.pieces))
        self.pieces.clear()


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


@pytest.fixture
async def model(fake: FakeAnthropic, tmp_path: Any) -> AsyncIterator[AnthropicModel]:
    m = AnthropicModel(make_settings(f"sqlite:///{tmp_path}/c.db", fake.url, HAVEN_STREAM=True))
    try:
        yield m
    finally:
        await m.aclose()


def request() -> ModelRequest:
    return ModelRequest(
        system=[{"type": "text", "text": "Be kind."}],
        tools=[],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
        max_tokens=500,
    )


async def test_many_quick_deltas_reach_the_sink_as_a_few_pieces(
    fake: FakeAnthropic, model: AnthropicModel
) -> None:
    fake.enqueue(Reply([{"type": "text", "text": ANSWER}], delta_chars=4))  # ~400 deltas at once
    sink = Pieces()
    reply = await model.respond(request(), sink)
    assert reply.text == ANSWER.strip() and reply.stop_reason == "end_turn"
    assert "".join(sink.pieces) == ANSWER
    assert 1 <= len(sink.pieces) <= 5, len(sink.pieces)
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0


async def test_a_paced_stream_still_shows_progress_at_most_every_chunk_interval(
    fake: FakeAnthropic, model: AnthropicModel
) -> None:
    deltas, gap = 24, 0.025
    text = ANSWER[: deltas * 20]
    fake.enqueue(Reply([{"type": "text", "text": text}], delta_chars=20, delta_seconds=gap))
    sink = Pieces()
    reply = await model.respond(request(), sink)
    assert reply.text == text.strip() and "".join(sink.pieces) == text
    # The first words at once, then a piece per interval, not one per delta.
    assert len(sink.pieces[0]) == 20
    expected = deltas * gap / CHUNK_SECONDS
    assert 2 <= len(sink.pieces) <= expected + 3, (len(sink.pieces), expected)


async def test_tool_input_streamed_in_pieces_is_parsed(fake: FakeAnthropic, model: AnthropicModel) -> None:
    fake.enqueue(tool_use("share_crisis_resources", {"concern": "self_harm"}, text_before="I hear you."))
    sink = Pieces()
    reply = await model.respond(request(), sink)
    assert reply.stop_reason == "tool_use"
    assert "".join(sink.pieces) == "I hear you."  # flushed when the text block ended
    (call,) = reply.tool_uses
    assert call["name"] == "share_crisis_resources" and call["input"] == {"concern": "self_harm"}
    assert call["id"].startswith("toolu_")
    assert json.loads(json.dumps(reply.content))  # plain JSON, storable as history


async def test_a_cut_stream_is_retried_and_the_sink_told(fake: FakeAnthropic, model: AnthropicModel) -> None:
    fake.enqueue(cut_stream(after_events=5), Reply([{"type": "text", "text": ANSWER}], delta_chars=50))
    sink = Pieces()
    reply = await model.respond(request(), sink)
    assert sink.restarts == 1 and "".join(sink.pieces) == ANSWER and reply.text == ANSWER.strip()
    # Everything the cut attempt received was shown before the retry took it back (its two deltas
    # arrived together: the second was still waiting to be coalesced when the stream broke).
    assert sink.taken_back == ["This reply will be cut o"]


async def test_the_sdk_talks_through_its_aiohttp_transport(tmp_path: Any) -> None:
    m = AnthropicModel(make_settings(f"sqlite:///{tmp_path}/c.db", "http://127.0.0.1:9"))
    assert m._client is None  # built by the first call that needs it (the SDK is imported then)
    client = await m.client()
    assert isinstance(client._client, anthropic.DefaultAioHttpClient)
    assert await m.client() is client  # once
    await m.aclose()
