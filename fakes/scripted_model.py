"""``ScriptedModel``: a ``bot.model.ModelClient`` that answers from queues and records what it was asked.

Queue replies with ``then`` (text, a ``ModelReply``, or a ``ModelError`` to raise), tool calls with
``tool``/``propose``, and the verifier's answers with ``verdicts``. With the reply queue empty it answers
``default``; with the verdict queue empty a verifier call fails the test, so "not asked" is checked too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from bot.model import ChunkSink, ModelClient, ModelError, ModelReply, ModelRequest, Usage
from bot.policy import Verification
from bot.prompts import END_TOOL

MODEL = "scripted"


def say(text: str, usage: Usage | None = None) -> ModelReply:
    """A plain text reply."""
    return ModelReply(({"type": "text", "text": text},), "end_turn", usage or Usage(), MODEL)


class ScriptedModel:
    def __init__(self, default: str = "ok", *, usage: Usage | None = None) -> None:
        self.replies: deque[ModelReply | ModelError] = deque()
        self.verdicts: deque[Verification] = deque()
        self.requests: list[ModelRequest] = []
        self.verify_calls: list[tuple[str, tuple[str, ...]]] = []
        self.default = default
        self.usage = usage or Usage(input_tokens=10, output_tokens=5)
        # Each reply's text reaches the sink in this many pieces, as a streaming model delivers it;
        # ``delivered`` counts the pieces handed over (a stopped reply hands over no more).
        self.pieces = 1
        self.delivered = 0
        self._ids = 0

    @property
    def rehearsal(self) -> bool:
        return False

    def tool(self, name: str, data: dict[str, Any], *, text_before: str = "") -> ModelReply:
        """A reply calling ``name`` (after ``text_before``, if any)."""
        self._ids += 1
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text_before}] if text_before else []
        blocks.append({"type": "tool_use", "id": f"toolu_scripted_{self._ids}", "name": name, "input": data})
        return ModelReply(tuple(blocks), "tool_use", self.usage, MODEL)

    def then(self, *replies: ModelReply | ModelError | str) -> None:
        for r in replies:
            self.replies.append(say(r, self.usage) if isinstance(r, str) else r)

    def propose(self, reason: str, after: str = "I hear you.") -> None:
        """The model proposes ending for ``reason``, then says ``after`` when told the policy's answer."""
        self.then(self.tool(END_TOOL, {"reason": reason, "note": "scripted"}), after)

    async def respond(self, request: ModelRequest, sink: ChunkSink | None = None) -> ModelReply:
        self.requests.append(request)
        reply = self.replies.popleft() if self.replies else say(self.default, self.usage)
        if isinstance(reply, ModelError):
            raise reply
        if sink is not None and reply.text:
            size = -(-len(reply.text) // self.pieces)
            for at in range(0, len(reply.text), size):
                await sink.chunk(reply.text[at : at + size])
                self.delivered += 1
        return reply

    async def verify(self, transcript: str, cues: Sequence[str]) -> Verification:
        self.verify_calls.append((transcript, tuple(cues)))
        return self.verdicts.popleft()

    async def count_tokens(self, request: ModelRequest) -> int | None:
        return None

    async def aclose(self) -> None:
        return None

    def tool_results(self, request: int = -1) -> list[str]:
        """The tool results the engine sent in request number ``request`` (the last by default)."""
        return [
            str(b.get("content"))
            for m in self.requests[request].messages
            if m["role"] == "user"
            for b in m["content"]
            if b.get("type") == "tool_result"
        ]

    def user_texts(self, request: int = -1) -> list[str]:
        """The user text blocks of request number ``request`` (the last by default), in order."""
        return [
            str(b.get("text"))
            for m in self.requests[request].messages
            if m["role"] == "user"
            for b in m["content"]
            if b.get("type") == "text"
        ]


def _implements(model: ScriptedModel) -> ModelClient:
    """For mypy: ``ScriptedModel`` implements the model port."""
    return model
