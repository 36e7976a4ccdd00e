"""A scripted, local Anthropic Messages API server for tests (aiohttp, 127.0.0.1, ephemeral port).

    async with FakeAnthropic() as server:
        server.enqueue(tool_use("end_conversation", {"reason": "abuse", "note": "x"}), text("Bye."))
        client = AsyncAnthropic(api_key="test", base_url=server.url, max_retries=0)

Each ``POST /v1/messages`` takes the next queued step; with the queue empty it asks ``responder(body)``
(if set and it returns a step), else uses ``default`` (a step, or a callable ``body -> step``).
Non-streaming replies are ``application/json``; ``"stream": true`` gets SSE events like the real API.
Requests are validated loosely like the real API (required fields, tool_use/tool_result pairing, at most
4 cache_control breakpoints) and answered with a 400 ``invalid_request_error`` when malformed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import string
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fakes.serving import InThread, serve


def _id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(22))


# ----------------------------------------------------------------------------------------------- steps
@dataclass
class Reply:
    content: list[dict[str, Any]]
    stop_reason: str = "end_turn"
    stop_details: dict[str, Any] | None = None
    # Streaming like the real API: text in deltas of this many characters (0: each block in thirds),
    # ``delta_seconds`` apart (the bench's per-turn overhead needs a model that streams at a pace).
    delta_chars: int = 0
    delta_seconds: float = 0.0


@dataclass
class Error:
    status: int
    type_: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Delay:
    seconds: float
    then: Step | None = None  # None: the next scripted/default step


@dataclass
class CutStream:
    """Streaming: send ``after_events`` SSE events (of a text reply), then ``error_event`` if set, then
    abort the connection. Non-streaming: close the connection without a response."""

    after_events: int = 4
    reply: Reply | None = None
    error_event: dict[str, str] | None = None  # {"type": ..., "message": ...}, sent as `event: error`


Step = Reply | Error | Delay | CutStream


def text(t: str) -> Reply:
    return Reply([{"type": "text", "text": t}])


def tool_use(
    name: str, input: dict[str, Any], text_before: str | None = None, id: str | None = None
) -> Reply:
    block = {"type": "tool_use", "id": id or _id("toolu_01"), "name": name, "input": input}
    return Reply([*([{"type": "text", "text": text_before}] if text_before else []), block], "tool_use")


def refusal(t: str = "") -> Reply:
    return Reply([{"type": "text", "text": t}] if t else [], "refusal", {"type": "refusal", "category": None})


def max_tokens(t: str) -> Reply:
    return Reply([{"type": "text", "text": t}], "max_tokens")


def error(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> Error:
    return Error(status, type_, message, dict(headers or {}))


def delay(seconds: float, then: Step | None = None) -> Delay:
    return Delay(seconds, then)


def cut_stream(after_events: int = 4, reply: Reply | None = None) -> CutStream:
    return CutStream(after_events, reply)


def stream_error(
    type_: str = "overloaded_error", message: str = "Overloaded", after_events: int = 2
) -> CutStream:
    """A mid-stream `event: error` (what the API sends when it fails after the 200 was already sent)."""
    return CutStream(after_events, None, {"type": type_, "message": message})


@dataclass
class StreamRecord:
    """One streamed reply as the server sent it: how many of its SSE events went out, and when it ended
    (monotonic). ``sent < total``: the client closed the stream early (the reply was stopped)."""

    sent: int
    total: int
    ended_at: float


@dataclass
class RecordedRequest:
    body: dict[str, Any]
    headers: dict[str, str]
    path: str = "/v1/messages"


# ------------------------------------------------------------------------------------- token estimates
def estimate_tokens(obj: Any) -> int:
    return max(1, len(json.dumps(obj, separators=(",", ":"), sort_keys=True)) // 4)


def _thirds(s: str) -> list[str]:
    n = max(1, -(-len(s) // 3))
    return [s[i : i + n] for i in range(0, len(s), n)]


def _strip_cc(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_cc(v) for k, v in obj.items() if k != "cache_control"}
    return [_strip_cc(v) for v in obj] if isinstance(obj, list) else obj


def _blocks(body: dict[str, Any]) -> list[tuple[Any, bool]]:
    """The prompt in cache order (tools, system, messages): ((where, block sans cache_control), is_bp)."""
    system, tagged = body.get("system"), [("tool", t) for t in body.get("tools") or []]
    tagged += [
        ("system", b)
        for b in ([{"type": "text", "text": system}] if isinstance(system, str) else system or [])
    ]
    for m in body.get("messages") or []:
        content = m.get("content")
        tagged += [
            (m.get("role"), b)
            for b in ([{"type": "text", "text": content}] if isinstance(content, str) else content or [])
        ]
    return [((where, _strip_cc(b)), isinstance(b, dict) and "cache_control" in b) for where, b in tagged]


def _ids(message: Any, block_type: str, key: str) -> list[str]:
    content = message.get("content") if isinstance(message, dict) else None
    return [b.get(key) for b in content if b.get("type") == block_type] if isinstance(content, list) else []


def _validate(body: Any, required: tuple[str, ...]) -> str | None:
    if not isinstance(body, dict):
        return "body: Input should be an object"
    if missing := [key for key in required if key not in body]:
        return f"{missing[0]}: Field required"
    msgs = body["messages"]
    if not msgs:
        return "messages: at least one message is required"
    if (n := sum(cc for _, cc in _blocks(body))) > 4:
        return f"A maximum of 4 blocks with cache_control may be provided. Found {n}."
    for i, m in enumerate(msgs):
        prev = _ids(msgs[i - 1], "tool_use", "id") if i and msgs[i - 1].get("role") == "assistant" else []
        if stray := [r for r in _ids(m, "tool_result", "tool_use_id") if r not in prev]:
            return (
                f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {stray[0]}. "
                "Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
            )
        answered = set(_ids(msgs[i + 1], "tool_result", "tool_use_id")) if i + 1 < len(msgs) else None
        if answered is not None and (unanswered := set(_ids(m, "tool_use", "id")) - answered):
            return (
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(sorted(unanswered))}. Each `tool_use` block must have a corresponding "
                "`tool_result` block in the next message."
            )
    return None


# ------------------------------------------------------------------------------------------------ server
class FakeAnthropic(InThread):
    thread_name = "fake Anthropic server"

    def __init__(self, *steps: Step, default: Step | Callable[[dict], Step] | None = None) -> None:
        self.queue: deque[Step] = deque(steps)
        self.default: Step | Callable[[dict], Step] = default or text("ok")
        self.responder: Callable[[dict], Step | None] | None = None
        self.requests: list[RecordedRequest] = []
        self.streams: list[StreamRecord] = []
        self.validate = True
        self.url = ""
        self._cache: set[str] = set()
        self._runner: web.AppRunner | None = None

    # -- scripting
    def enqueue(self, *steps: Step) -> None:
        self.queue.extend(steps)

    def model_requests(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path == "/v1/messages"]

    def reset(self) -> None:
        """Forget requests, queued steps and the prompt cache; restore the default reply."""
        self.queue.clear()
        self.requests.clear()
        self._cache.clear()
        self.default, self.responder = text("ok"), None

    def _next_step(self, body: dict[str, Any]) -> Step:
        if self.queue:
            return self.queue.popleft()
        if self.responder and (step := self.responder(body)) is not None:
            return step
        return self.default(body) if callable(self.default) else self.default

    # -- lifecycle
    async def __aenter__(self) -> FakeAnthropic:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        self._runner, self.url = await serve(app)
        return self

    async def __aexit__(self, *exc: object) -> None:  # in-flight handlers get cancelled after 0.5 s
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    # -- handlers
    async def _read(self, request: web.Request) -> tuple[Any, web.Response | None]:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self.requests.append(RecordedRequest(body, dict(request.headers), request.path))
        if not (request.headers.get("x-api-key") or request.headers.get("authorization")):
            return body, self._error(Error(401, "authentication_error", "x-api-key header is required"))
        required = (
            ("model", "messages")
            if request.path.endswith("count_tokens")
            else ("model", "max_tokens", "messages")
        )
        problem = _validate(body, required) if self.validate else None
        return body, self._error(Error(400, "invalid_request_error", problem)) if problem else None

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        body, failure = await self._read(request)
        return failure or self._json({"input_tokens": sum(estimate_tokens(b) for b, _ in _blocks(body))})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body, failure = await self._read(request)
        if failure:
            return failure
        step = self._next_step(body)
        while isinstance(step, Delay):
            await asyncio.sleep(step.seconds)
            step = step.then if step.then is not None else self._next_step(body)
        if isinstance(step, Error):
            return self._error(step)
        if isinstance(step, CutStream) and not body.get("stream"):
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        reply = step if isinstance(step, Reply) else step.reply or text("This reply will be cut off mid-way.")
        message = self._message(body, reply)
        if not body.get("stream"):
            return self._json(message)
        return await self._stream(request, message, step if isinstance(step, CutStream) else None, reply)

    def _usage(self, body: dict[str, Any]) -> dict[str, int]:
        blocks = _blocks(body)
        sizes = [estimate_tokens(b) for b, _ in blocks]
        keys = [json.dumps([body.get("model"), *(b for b, _ in blocks[: i + 1])]) for i in range(len(blocks))]
        last_bp = max((i for i, (_, cc) in enumerate(blocks) if cc), default=-1)
        hit = max((i for i in range(last_bp + 1) if keys[i] in self._cache), default=-1)
        self._cache.update(keys[i] for i, (_, cc) in enumerate(blocks) if cc)
        read, cached = sum(sizes[: hit + 1]), sum(sizes[: last_bp + 1])
        return {
            "input_tokens": sum(sizes) - cached,
            "cache_creation_input_tokens": cached - read,
            "cache_read_input_tokens": read,
            "output_tokens": 0,
        }

    def _message(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        usage = self._usage(body) | {"output_tokens": estimate_tokens(reply.content)}
        return {
            "id": _id("msg_01"),
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": reply.content,
            "stop_reason": reply.stop_reason,
            "stop_sequence": None,
            "stop_details": reply.stop_details,
            "usage": usage,
        }

    @staticmethod
    def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        return web.Response(
            body=json.dumps(data).encode(),
            status=status,
            content_type="application/json",
            headers={"request-id": _id("req_01"), **(headers or {})},
        )

    def _error(self, e: Error) -> web.Response:
        body = {
            "type": "error",
            "error": {"type": e.type_, "message": e.message},
            "request_id": _id("req_01"),
        }
        return self._json(
            body,
            e.status,
            {"x-should-retry": str(e.status in (408, 409, 429) or e.status >= 500).lower(), **e.headers},
        )

    @staticmethod
    def _events(message: dict[str, Any], delta_chars: int = 0) -> list[tuple[str, dict[str, Any]]]:
        start = message | {"content": [], "stop_reason": None, "stop_details": None}
        start["usage"] = message["usage"] | {"output_tokens": 1}
        events: list[tuple[str, dict[str, Any]]] = [("message_start", {"message": start}), ("ping", {})]
        for i, block in enumerate(message["content"]):
            if block["type"] == "tool_use":  # the real API starts with an empty partial_json
                kind, key, empty = "input_json_delta", "partial_json", block | {"input": {}}
                pieces = ["", *_thirds(json.dumps(block["input"]))]
            else:
                kind, key, empty = "text_delta", "text", block | {"text": ""}
                text = block["text"]
                pieces = (
                    [text[i : i + delta_chars] for i in range(0, len(text), delta_chars)] or [""]
                    if delta_chars > 0
                    else _thirds(text)
                )
            events.append(("content_block_start", {"index": i, "content_block": empty}))
            events += [("content_block_delta", {"index": i, "delta": {"type": kind, key: p}}) for p in pieces]
            events.append(("content_block_stop", {"index": i}))
        delta = {
            "stop_reason": message["stop_reason"],
            "stop_sequence": None,
            "stop_details": message["stop_details"],
        }
        events.append(
            ("message_delta", {"delta": delta, "usage": {"output_tokens": message["usage"]["output_tokens"]}})
        )
        events.append(("message_stop", {}))
        return [(name, {"type": name, **data}) for name, data in events]

    async def _stream(
        self, request: web.Request, message: dict[str, Any], cut: CutStream | None, reply: Reply
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"request-id": _id("req_01"), "Cache-Control": "no-cache"})
        resp.content_type = "text/event-stream"
        await resp.prepare(request)
        events = self._events(message, reply.delta_chars)
        if cut:
            events = events[: cut.after_events]
            if cut.error_event:
                events.append(("error", {"type": "error", "error": cut.error_event}))
        sent = 0
        try:
            for name, data in events:
                if reply.delta_seconds and name == "content_block_delta":
                    await asyncio.sleep(reply.delta_seconds)
                await resp.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                sent += 1
        except ConnectionError:
            return resp  # the client went away (a stopped reply): what it got is recorded below
        finally:
            self.streams.append(StreamRecord(sent, len(events), time.monotonic()))
        if cut and not cut.error_event:
            assert request.transport is not None
            request.transport.abort()
            return resp
        await resp.write_eof()
        return resp
