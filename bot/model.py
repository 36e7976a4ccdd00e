"""The model seam: the protocol both the Claude client and the rehearsal model implement.

The Anthropic SDK itself is imported only by ``bot.claude``, on the first model call (it takes seconds
to import), so every mode starts fast and an idle process does not hold it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.policy import Verification


class ChunkSink(Protocol):
    """Where a streaming model call delivers text as it arrives.

    ``chunk`` and ``restart`` may raise ``ReplyStopped``: the model call then ends at once (its stream
    closed, so generation stops) and is not retried.
    """

    async def chunk(self, text: str) -> None: ...

    async def restart(self) -> None:
        """What this call streamed so far is void: the call is being retried from scratch."""


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ModelRequest:
    system: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    max_tokens: int


@dataclass(frozen=True, slots=True)
class ModelReply:
    content: tuple[dict[str, Any], ...]
    stop_reason: str
    usage: Usage = field(default_factory=Usage)
    model: str = ""

    @property
    def text(self) -> str:
        return "".join(str(b.get("text", "")) for b in self.content if b.get("type") == "text").strip()

    @property
    def tool_uses(self) -> list[dict[str, Any]]:
        return [b for b in self.content if b.get("type") == "tool_use"]


class ReplyStopped(Exception):
    """The person stopped the reply while it was being written (Slack's Stop button on a streamed reply).

    Raised by a ``bot.ports.ReplyStream``'s ``update``; ``shown`` is the whole reply as the person saw
    it when it stopped, which is what the conversation keeps.
    """

    def __init__(self, shown: str) -> None:
        super().__init__("reply stopped by the person")
        self.shown = shown


class ModelError(Exception):
    """The model could not answer after retries; the turn must leave no trace but the user message."""


class ContextTooLong(ModelError):
    """The API said the prompt is too long; the caller trims harder and tries again."""


class ModelClient(Protocol):
    @property
    def rehearsal(self) -> bool: ...

    async def respond(self, request: ModelRequest, sink: ChunkSink | None = None) -> ModelReply: ...

    async def verify(self, transcript: str, cues: Sequence[str]) -> Verification:
        """The independent check of a proposed ending: is there persistent abuse, and any sign of risk?

        ``cues`` are the local risk detector's cue names that soft-marked the conversation (never text).
        ``risk`` is None when there is no clear answer; failures must not raise.
        """

    async def count_tokens(self, request: ModelRequest) -> int | None:
        """The request's exact input tokens, or None when the model cannot say (or the call failed)."""

    async def aclose(self) -> None: ...


def canonical_block(block: Any) -> dict[str, Any]:
    """Keep only what we replay, so stored history is byte-stable across SDK versions."""
    data = block if isinstance(block, dict) else block.model_dump(mode="json")
    kind = data.get("type")
    if kind == "text":
        return {"type": "text", "text": data.get("text", "")}
    if kind == "tool_use":
        return {"type": "tool_use", "id": data["id"], "name": data["name"], "input": data.get("input") or {}}
    return {k: v for k, v in data.items() if v is not None}


def transcript_for_verifier(lines: Sequence[tuple[str, str]]) -> str:
    """A plain transcript; only the verifier model ever sees it."""
    return "\n".join(f"{role.upper()}: {text}" for role, text in lines)
