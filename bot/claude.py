"""Claude through the official SDK: Haven's one seam to the Anthropic Messages API.

The SDK is imported on first use, not at start-up: ``import anthropic`` is 1.5–2.5 s of CPU and about
40 MB (its package imports every type and every cloud client), which would double a process's start-up
time and idle memory. The first model call imports it on a worker thread, so the event loop keeps
answering other events meanwhile (imported inline it would stall the loop for the whole import). The
start-up check (``check``) makes the same one request the SDK would, over aiohttp, without the SDK.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.model import (
    ChunkSink,
    ContextTooLong,
    ModelError,
    ModelReply,
    ModelRequest,
    ReplyStopped,
    Usage,
    canonical_block,
)
from bot.policy import Verification
from bot.prompts import VERDICT_TOOL, VERDICT_TOOLS, VERIFIER_SYSTEM, verifier_request

if TYPE_CHECKING:
    import anthropic

log = logging.getLogger(__name__)

# The least time between two pieces of a streamed reply handed on: a model streams a few tokens per
# event, and each piece costs the engine and the adapter a redraw of the whole reply so far.
CHUNK_SECONDS = 0.1
# Where the API is when ANTHROPIC_BASE_URL is not set (the SDK's default too).
DEFAULT_BASE_URL = "https://api.anthropic.com"
# The start-up check's API version: the first stable one, which every key and model accepts. The check
# asks only whether the key and the model are accepted; every other call goes through the SDK's version.
CHECK_API_VERSION = "2023-06-01"


def _sdk() -> Any:
    """The SDK's module, imported on first use (``AnthropicModel.client``)."""
    return importlib.import_module("anthropic")


def _retry_after(exc: anthropic.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _retryable(exc: Exception) -> bool:
    # Only ever asked about what a call raised: the SDK has been imported by then.
    import anthropic
    import httpx2

    if isinstance(exc, anthropic.APIConnectionError | anthropic.APITimeoutError):
        return True
    if isinstance(exc, anthropic.APIStatusError):
        # An error event inside a 200 stream (e.g. overloaded) carries its type, not a status.
        if exc.status_code == 200:
            return getattr(exc, "type", None) in ("overloaded_error", "api_error", "rate_limit_error")
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    # A stream cut mid-way is raised by the transport, unwrapped by the SDK.
    return isinstance(
        exc, httpx2.TransportError | ConnectionError | asyncio.IncompleteReadError | json.JSONDecodeError
    )


def _too_long(exc: Exception) -> bool:
    import anthropic

    return isinstance(exc, anthropic.BadRequestError) and "prompt is too long" in str(exc).lower()


class AnthropicModel:
    """AsyncAnthropic with Haven's own bounded retries (the SDK's are off so there is one retry layer)."""

    def __init__(self, settings: Settings, client: anthropic.AsyncAnthropic | None = None) -> None:
        self._settings = settings
        self._client = client  # built on first use (``client``): the SDK is imported then
        self._building = asyncio.Lock()  # concurrent first calls wait for one import

    async def client(self) -> anthropic.AsyncAnthropic:
        """The SDK's client, built by the first call that needs it. The import (seconds of CPU) runs on a
        worker thread: the event loop goes on acknowledging events and streaming other replies, and the
        thread yields the interpreter to it every few milliseconds."""
        if self._client is None:
            async with self._building:
                if self._client is None:
                    sdk = await asyncio.to_thread(_sdk)
                    self._client = self._new_client(sdk)
        return self._client

    def _new_client(self, sdk: Any) -> anthropic.AsyncAnthropic:
        key = self._settings.anthropic_api_key
        client: anthropic.AsyncAnthropic = sdk.AsyncAnthropic(
            api_key=key.get_secret_value() if key else None,
            base_url=self._settings.anthropic_base_url,
            timeout=self._settings.model_timeout_seconds,
            max_retries=0,
            # The SDK's aiohttp transport (proxies from the environment still apply): a streamed reply
            # arrives as many small reads, and aiohttp's parser costs a fraction of httpx's per read.
            http_client=sdk.DefaultAioHttpClient(),
        )
        return client

    @property
    def rehearsal(self) -> bool:
        return False

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def _backoff(self, attempt: int, exc: Exception) -> None:
        import anthropic  # a call failed: the SDK is imported

        s = self._settings
        delay = min(s.retry_max_seconds, s.retry_base_seconds * (2**attempt))
        if isinstance(exc, anthropic.APIStatusError):
            hinted = _retry_after(exc)
            if hinted is not None:
                delay = min(s.retry_max_seconds, max(delay, hinted))
        await asyncio.sleep(delay * (0.5 + random.random() / 2))

    async def _call(self, kwargs: dict[str, Any], sink: ChunkSink | None) -> Any:
        client = await self.client()
        if not self._settings.stream:
            return await client.messages.create(**kwargs)
        # The raw event stream, not ``messages.stream``: its helper builds a snapshot of the whole
        # message and a further event object for every delta, which was most of a turn's CPU with many
        # turns streaming at once. Haven needs the text as it comes and the final blocks, nothing more.
        message, clock = _Accumulated(), asyncio.get_running_loop().time
        pending, shown_at = "", -CHUNK_SECONDS
        try:
            async with await client.messages.create(**kwargs, stream=True) as events:
                async for event in events:
                    pending += message.add(event)
                    if not pending or sink is None:
                        continue
                    # Deltas are coalesced: the sink (the engine, then the adapter, which draw the whole
                    # reply so far each time) hears the first text at once, then at most every
                    # CHUNK_SECONDS, and whatever is left when a block ends.
                    if event.type == "content_block_stop" or clock() - shown_at >= CHUNK_SECONDS:
                        piece, pending, shown_at = pending, "", clock()
                        await sink.chunk(piece)
        except Exception:
            # A stream cut mid-way: what arrived is shown, as it would have been without coalescing,
            # before the retry takes it back or the turn fails with it on screen.
            if pending and sink is not None:
                await sink.chunk(pending)
            raise
        if pending and sink is not None:
            await sink.chunk(pending)
        if not message.complete:
            # A connection closed cleanly mid-message is a cut stream all the same: retried.
            raise ConnectionError("the model's stream ended before message_stop")
        return message

    async def respond(self, request: ModelRequest, sink: ChunkSink | None = None) -> ModelReply:
        kwargs: dict[str, Any] = {
            "model": self._settings.model,
            "max_tokens": request.max_tokens,
            "system": request.system,
            "tools": request.tools,
            "messages": request.messages,
        }
        attempts = self._settings.model_attempts
        for attempt in range(attempts):
            if attempt and sink is not None:
                await sink.restart()
            try:
                message = await self._call(kwargs, sink)
            except ReplyStopped:
                raise  # the person stopped the reply: leaving the stream ended the generation
            except Exception as exc:
                if _too_long(exc):
                    raise ContextTooLong(str(exc)) from exc
                if not _retryable(exc) or attempt == attempts - 1:
                    log.warning(
                        "model call failed",
                        extra={
                            "error": type(exc).__name__,
                            "status": getattr(exc, "status_code", None),
                            "attempt": attempt + 1,
                        },
                    )
                    raise ModelError(type(exc).__name__) from exc
                log.info("model call retry", extra={"error": type(exc).__name__, "attempt": attempt + 1})
                await self._backoff(attempt, exc)
                continue
            usage = message.usage
            return ModelReply(
                content=tuple(canonical_block(b) for b in message.content),
                stop_reason=str(message.stop_reason or "end_turn"),
                model=str(message.model or self._settings.model),
                usage=Usage(
                    input_tokens=usage.input_tokens or 0,
                    output_tokens=usage.output_tokens or 0,
                    cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
                    cache_read_input_tokens=usage.cache_read_input_tokens or 0,
                ),
            )
        raise ModelError("no attempts")  # unreachable: the loop returns or raises

    async def check(self) -> str | None:
        """The start-up check: one token count (free, no reply written) with the configured key and model.
        None when both are accepted; otherwise one line naming the setting and the fix. Passing faults
        (overload, rate limits, 5xx) are not the operator's to fix: they are logged and start-up goes on.

        The request is the SDK's ``messages.count_tokens``, made over aiohttp (already loaded for the
        platforms): importing the SDK for it would cost every start seconds and 40 MB before anyone
        writes (the module's docstring)."""
        import aiohttp

        model, key = self._settings.model, self._settings.anthropic_api_key
        base = (self._settings.anthropic_base_url or DEFAULT_BASE_URL).rstrip("/")
        timeout = aiohttp.ClientTimeout(total=min(15.0, self._settings.model_timeout_seconds))
        try:
            # trust_env: proxies from the environment apply, as they do to the SDK's own transport.
            async with (
                aiohttp.ClientSession(timeout=timeout, trust_env=True) as http,
                http.post(
                    f"{base}/v1/messages/count_tokens",
                    json={"model": model, "messages": [{"role": "user", "content": "ping"}]},
                    headers={
                        "x-api-key": key.get_secret_value() if key else "",
                        "anthropic-version": CHECK_API_VERSION,
                    },
                ) as resp,
            ):
                status, body = resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return (
                f"could not reach the Anthropic API ({type(exc).__name__}): check the network and "
                "ANTHROPIC_BASE_URL, or set HAVEN_SKIP_MODEL_CHECK=true"
            )
        if status < 400:
            return None
        if status == 401:
            return (
                "the Anthropic API rejected ANTHROPIC_API_KEY (401): set a valid key from the Claude "
                "Console, or unset it to run the offline rehearsal model"
            )
        if status == 403:
            return f"ANTHROPIC_API_KEY may not use the model {model!r} (403): use another key or HAVEN_MODEL"
        if status == 404:
            return (
                f"the Anthropic API does not know the model HAVEN_MODEL={model!r} (404): "
                "set HAVEN_MODEL to a current model id"
            )
        if status == 400:
            return (
                f"the Anthropic API refused a request for HAVEN_MODEL={model!r} "
                f"(400: {_error_message(body)}): check HAVEN_MODEL"
            )
        log.warning("model check inconclusive", extra={"status": status})
        return None

    async def count_tokens(self, request: ModelRequest) -> int | None:
        try:
            client = await self.client()
            counted = await client.messages.count_tokens(
                model=self._settings.model,
                system=request.system,  # type: ignore[arg-type]
                tools=request.tools,  # type: ignore[arg-type]
                messages=request.messages,  # type: ignore[arg-type]
            )
        except Exception as exc:
            log.warning("token count failed; using the estimate", extra={"error": type(exc).__name__})
            return None
        return int(counted.input_tokens)

    async def verify(self, transcript: str, cues: Sequence[str]) -> Verification:
        """One cheap classification call. Any failure or unclear answer is no answer (``risk=None``):
        the policy then does not end, since an ending is a last resort."""
        try:
            client = await self.client()
            message = await client.messages.create(  # type: ignore[call-overload]
                model=self._settings.verifier_model,
                max_tokens=200,
                system=VERIFIER_SYSTEM,
                tools=VERDICT_TOOLS,
                tool_choice={"type": "tool", "name": VERDICT_TOOL},
                messages=[{"role": "user", "content": verifier_request(transcript, cues)}],
            )
        except Exception as exc:
            log.warning("verifier failed; no answer", extra={"error": type(exc).__name__})
            return Verification(persistent_abuse=False, risk=None)
        return parse_verdict(message.content)


class _Accumulated:
    """A streamed message put together from its raw events: the blocks (dicts), stop reason, model and
    usage that ``respond`` reads. Tool input arrives as JSON in pieces and is parsed when its block stops.
    """

    def __init__(self) -> None:
        self.content: list[dict[str, Any]] = []
        self.stop_reason: str | None = None
        self.model = ""
        self.usage = _Usage()
        self.complete = False  # message_stop arrived
        self._json: dict[int, list[str]] = {}

    def add(self, event: Any) -> str:
        """Take one event in; the text it adds to the reply ("" for every other kind)."""
        kind = event.type
        if kind == "content_block_delta":
            delta, block = event.delta, self.content[event.index]
            if delta.type == "text_delta":
                block["text"] = block.get("text", "") + delta.text
                return str(delta.text)
            if delta.type == "input_json_delta":
                self._json.setdefault(event.index, []).append(delta.partial_json)
            elif delta.type == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta.thinking
            elif delta.type == "signature_delta":
                block["signature"] = delta.signature
        elif kind == "content_block_start":
            self.content.append(event.content_block.model_dump(mode="json", exclude_none=True))
        elif kind == "content_block_stop":
            pieces = self._json.pop(event.index, None)
            if pieces is not None:
                joined = "".join(pieces)
                self.content[event.index]["input"] = json.loads(joined) if joined.strip() else {}
        elif kind == "message_start":
            self.model = str(event.message.model or "")
            self.usage.take(event.message.usage)
        elif kind == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            self.usage.take(event.usage)
        elif kind == "message_stop":
            self.complete = True
        return ""


class _Usage:
    """The usage counts a stream reports: ``message_start`` has them all, ``message_delta`` the final
    output count (and, from newer API versions, updated input counts)."""

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_creation_input_tokens = 0
        self.cache_read_input_tokens = 0

    def take(self, usage: Any) -> None:
        for name in vars(self):
            value = getattr(usage, name, None)
            if value is not None:
                setattr(self, name, value)


def _error_message(body: str) -> str:
    """The API's error message from an error response's body (its first line, cut), else the body's."""
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = body
    lines = str(message).strip().splitlines()
    return lines[0][:160] if lines else "no message"


def parse_verdict(content: Any) -> Verification:
    """The verifier's ``record_verdict`` answer, read strictly: only a JSON boolean counts as an answer."""
    for block in content or ():
        if getattr(block, "type", None) == "tool_use" and getattr(block, "name", None) == VERDICT_TOOL:
            data = getattr(block, "input", None)
            if not isinstance(data, dict):
                break
            abuse, risk = data.get("persistent_abuse"), data.get("risk")
            return Verification(persistent_abuse=abuse is True, risk=risk if isinstance(risk, bool) else None)
    log.warning("verifier answered without a verdict; no answer")
    return Verification(persistent_abuse=False, risk=None)
