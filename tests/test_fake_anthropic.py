"""The fake Anthropic server, exercised through the real `anthropic` SDK."""

from __future__ import annotations

import anthropic
import httpx2
import pytest
from anthropic import AsyncAnthropic

from fakes.fake_anthropic import (
    FakeAnthropic,
    cut_stream,
    delay,
    error,
    max_tokens,
    refusal,
    stream_error,
    text,
    tool_use,
)

MODEL = "claude-sonnet-4-6"
MSGS = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def server():
    async with FakeAnthropic() as s:
        yield s


@pytest.fixture
async def client(server):
    c = AsyncAnthropic(api_key="test", base_url=server.url, max_retries=0)
    yield c
    await c.close()


async def create(client, **kw):
    return await client.messages.create(model=MODEL, max_tokens=100, messages=kw.pop("messages", MSGS), **kw)


async def stream_final(client, **kw):
    async with client.messages.stream(
        model=MODEL, max_tokens=100, messages=kw.pop("messages", MSGS), **kw
    ) as s:
        chunks = [c async for c in s.text_stream]
        return chunks, await s.get_final_message()


async def test_text_reply_non_stream_and_default(server, client):
    server.enqueue(text("Hello there"))
    msg = await create(client)
    assert msg.content[0].text == "Hello there" and msg.stop_reason == "end_turn"
    assert msg.id.startswith("msg_") and msg.model == MODEL and msg.usage.output_tokens > 0
    assert (await create(client)).content[0].text == "ok"  # default when the queue is empty
    server.default = text("configured")
    assert (await create(client)).content[0].text == "configured"
    server.responder = lambda body: text(f"echo {body['messages'][-1]['content']}")
    assert (await create(client)).content[0].text == "echo hi"


async def test_text_reply_stream(server, client):
    server.enqueue(text("Hello there, streaming world"))
    chunks, msg = await stream_final(client)
    assert len(chunks) > 1 and "".join(chunks) == "Hello there, streaming world"
    assert msg.content[0].text == "Hello there, streaming world" and msg.stop_reason == "end_turn"
    assert server.model_requests()[0]["stream"] is True


async def test_content_types(client):
    raw = await client.messages.with_raw_response.create(model=MODEL, max_tokens=10, messages=MSGS)
    assert raw.headers["content-type"] == "application/json"
    async with client.messages.with_streaming_response.create(
        model=MODEL, max_tokens=10, messages=MSGS, stream=True
    ) as resp:
        assert resp.headers["content-type"] == "text/event-stream"
        lines = [line async for line in resp.iter_lines() if line]
    assert lines[:2] == ["event: message_start", lines[1]] and lines[1].startswith(
        'data: {"type": "message_start"'
    )
    assert lines[-2:] == ["event: message_stop", 'data: {"type": "message_stop"}']


@pytest.mark.parametrize("streaming", [False, True])
async def test_tool_use_reply(server, client, streaming):
    args = {"reason": "abuse", "note": "repeated slurs after two warnings", "n": [1, 2]}
    server.enqueue(tool_use("end_conversation", args, text_before="Ending this."))
    msg = (await stream_final(client))[1] if streaming else await create(client)
    assert msg.stop_reason == "tool_use"
    assert msg.content[0].type == "text" and msg.content[0].text == "Ending this."
    block = msg.content[1]
    assert block.type == "tool_use" and block.name == "end_conversation" and block.input == args
    assert block.id.startswith("toolu_")


@pytest.mark.parametrize("streaming", [False, True])
async def test_refusal_and_max_tokens(server, client, streaming):
    server.enqueue(refusal(), max_tokens("cut sh"))
    call = (lambda: stream_final(client)) if streaming else (lambda: create(client))
    first = await call()
    first = first[1] if streaming else first
    assert first.stop_reason == "refusal" and first.content == []
    second = await call()
    second = second[1] if streaming else second
    assert second.stop_reason == "max_tokens" and second.content[0].text == "cut sh"


ERRORS = [
    (error(429, "rate_limit_error", "slow down", {"retry-after": "1"}), anthropic.RateLimitError),
    (error(529, "overloaded_error", "Overloaded"), anthropic.OverloadedError),
    (error(500, "api_error", "Internal server error"), anthropic.InternalServerError),
    (
        error(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
        anthropic.BadRequestError,
    ),
]


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize(("step", "exc"), ERRORS)
async def test_error_statuses(server, client, step, exc, streaming):
    server.enqueue(step)
    with pytest.raises(exc) as info:
        await (stream_final(client) if streaming else create(client))
    err = info.value
    assert isinstance(err, anthropic.APIStatusError) and err.status_code == step.status
    assert err.type == step.type_ and err.api_message == step.message
    assert err.request_id and err.request_id.startswith("req_")
    if step.status == 529:
        assert isinstance(err, anthropic.InternalServerError)
    if step.status == 429:
        assert err.response.headers["retry-after"] == "1"


@pytest.mark.parametrize("streaming", [False, True])
async def test_delay_times_out(server, streaming):
    server.enqueue(delay(2, then=text("too late")), text("on time"))
    async with AsyncAnthropic(api_key="test", base_url=server.url, max_retries=0, timeout=0.2) as client:
        with pytest.raises(anthropic.APITimeoutError):
            await (stream_final(client) if streaming else create(client))
        assert (await create(client)).content[0].text == "on time"


async def test_cut_stream_mid_stream(server, client):
    server.enqueue(cut_stream(after_events=4, reply=text("a long answer that never finishes")))
    seen = []
    # The SDK does not wrap errors raised while reading an SSE body: the transport's own error surfaces.
    with pytest.raises(httpx2.RemoteProtocolError):
        async with client.messages.stream(model=MODEL, max_tokens=100, messages=MSGS) as s:
            async for chunk in s.text_stream:
                seen.append(chunk)
    assert seen  # some text arrived before the cut
    assert (await create(client)).content[0].text == "ok"  # the server keeps working


async def test_cut_non_stream_is_connection_error(server, client):
    server.enqueue(cut_stream())
    with pytest.raises(anthropic.APIConnectionError) as info:
        await create(client)
    assert not isinstance(info.value, anthropic.APITimeoutError)


async def test_stream_error_event(server, client):
    server.enqueue(stream_error("overloaded_error", "Overloaded", after_events=3))
    with pytest.raises(anthropic.APIStatusError) as info:
        await stream_final(client)
    assert info.value.type == "overloaded_error" and info.value.status_code == 200


async def test_usage_reports_cache_read_for_same_prefix(server, client):
    cc = {"type": "ephemeral"}
    system = [{"type": "text", "text": "You are Haven. " * 50, "cache_control": cc}]
    tools = [{"name": "end_conversation", "description": "End.", "input_schema": {"type": "object"}}]
    turn1 = [{"role": "user", "content": [{"type": "text", "text": "hello", "cache_control": cc}]}]
    first = await create(client, system=system, tools=tools, messages=turn1)
    assert first.usage.cache_read_input_tokens == 0 and first.usage.cache_creation_input_tokens > 0
    again = await create(client, system=system, tools=tools, messages=turn1)
    assert again.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert again.usage.cache_creation_input_tokens == 0
    # An append-only extension reads the old prefix and writes only the new part.
    turn2 = [
        {"role": "user", "content": [{"type": "text", "text": "hello"}]},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "more", "cache_control": cc}]},
    ]
    _, streamed = await stream_final(client, system=system, tools=tools, messages=turn2)
    assert streamed.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert 0 < streamed.usage.cache_creation_input_tokens < first.usage.cache_creation_input_tokens
    # No breakpoint: nothing cached.
    plain = await create(client)
    assert plain.usage.cache_read_input_tokens == plain.usage.cache_creation_input_tokens == 0


async def test_count_tokens_and_recording(server, client):
    counted = await client.messages.count_tokens(model=MODEL, messages=MSGS)
    assert counted.input_tokens > 0
    await create(client, system="be kind")
    assert [r.path for r in server.requests] == ["/v1/messages/count_tokens", "/v1/messages"]
    assert server.model_requests() == [server.requests[1].body]
    rec = server.requests[1]
    assert rec.body["system"] == "be kind" and rec.body["messages"] == MSGS
    headers = {k.lower(): v for k, v in rec.headers.items()}
    assert headers.get("authorization") == "Bearer test" or headers.get("x-api-key") == "test"
    assert headers["anthropic-version"]
    server.reset()
    assert server.requests == [] and not server.queue


async def test_validation_rejects_unanswered_tool_use(server, client):
    msgs = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "x", "input": {}}]},
        {"role": "user", "content": "no result"},
    ]
    with pytest.raises(anthropic.BadRequestError, match="without `tool_result`"):
        await create(client, messages=msgs)


def test_thread_mode_with_sync_client():
    server = FakeAnthropic(text("from a thread")).start_in_thread()
    try:
        client = anthropic.Anthropic(api_key="test", base_url=server.url, max_retries=0)
        assert (
            client.messages.create(model=MODEL, max_tokens=10, messages=MSGS).content[0].text
            == "from a thread"
        )
        assert len(server.model_requests()) == 1
    finally:
        server.stop_thread()
