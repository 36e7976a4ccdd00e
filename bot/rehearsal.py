"""The offline rehearsal model: deterministic, driven by the local detectors, no network.

It answers the same ``ModelRequest`` with the same kinds of content blocks as Claude (text and tool_use),
so the engine path — tools, policy, notices — is exactly the one a real model takes.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from typing import Any

from bot.model import ChunkSink, ModelReply, ModelRequest
from bot.policy import Verification
from bot.prompts import CRISIS_TOOL, END_TOOL, TOOL_RESULTS, Verdict
from bot.types import RiskAssessment, RiskLevel

_LABEL = re.compile(r"^\[[^\]]*\]\s?")
_USER, _ASSISTANT = "USER: ", "ASSISTANT: "

_AFTER_RESULT: dict[str, str] = {
    TOOL_RESULTS[Verdict.HOLD_WARN]: (
        "I won't continue like this. Please stop the insults and abusive requests — if they continue, "
        "I'll end this conversation. I'm glad to help with something else."
    ),
    TOOL_RESULTS[Verdict.HOLD_CONFIRM]: (
        'Do you want me to close this thread for good? Reply "yes, end it" to confirm — you can always '
        "start a new conversation."
    ),
    TOOL_RESULTS[Verdict.VETO_RISK]: (
        "I'm staying right here with you. What you're going through matters, and you deserve support — "
        "the crisis resources I've shared are there any time. Would you like to tell me more about "
        "what's happening?"
    ),
    TOOL_RESULTS[Verdict.DISABLED]: "Let's keep this respectful. I'm happy to help with something else.",
}

_CRISIS_REPLY = (
    "Thank you for telling me. I'm really sorry you're going through this, and I'm glad you reached out. "
    "You don't have to face it alone — the crisis resources I've shared can help right now. "
    "I'm here to keep talking."
)


# How an attached text file's block begins (``bot.files.api_block``).
_FILE_OPEN = "<file name="


def _last_user_blocks(request: ModelRequest) -> list[dict[str, Any]]:
    for message in reversed(request.messages):
        if message["role"] == "user":
            return list(message["content"])
    return []


def _tool_id(seed: str) -> str:
    return "toolu_rehearsal_" + hashlib.sha256(seed.encode()).hexdigest()[:20]


class RehearsalModel:
    """Implements ``bot.model.ModelClient`` without a key."""

    @property
    def rehearsal(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None

    async def count_tokens(self, request: ModelRequest) -> int | None:
        return None  # the estimate is all there is offline

    async def verify(self, transcript: str, cues: Sequence[str]) -> Verification:
        """Risk when the local detector marks any user line at POSSIBLE or above; else an explicit no."""
        lines = _user_lines(transcript)
        risk = await asyncio.to_thread(lambda: any(_risk(line).level >= RiskLevel.POSSIBLE for line in lines))
        return Verification(persistent_abuse=True, risk=risk)

    async def respond(self, request: ModelRequest, sink: ChunkSink | None = None) -> ModelReply:
        # The detectors read the message off the event loop, as the engine does.
        reply = await asyncio.to_thread(self._reply, request)
        if sink is not None and reply.text:
            await sink.chunk(reply.text)
        return reply

    def _reply(self, request: ModelRequest) -> ModelReply:
        blocks = _last_user_blocks(request)
        results = [b for b in blocks if b.get("type") == "tool_result"]
        texts = [str(b.get("text", "")) for b in blocks if b.get("type") == "text"]
        if results and not texts:
            return _text(self._after_tool(results[-1]))
        # The person's words are the last block; attached text files come before them as blocks of
        # their own, and are read for risk too (as the engine's detector does).
        text = _LABEL.sub("", texts[-1] if texts else "")
        files = [t for t in texts if t.startswith(_FILE_OPEN)]
        seen = sum(1 for b in blocks if b.get("type") in ("image", "document")) + len(files)
        seed = f"{len(request.messages)}:{text}"
        from bot.detectors import is_abusive, is_end_request

        risk = _risk("\n\n".join((text, *files)))
        if risk.level >= RiskLevel.POSSIBLE:
            concern = risk.kind or "crisis"
            return _tool(CRISIS_TOOL, {"concern": concern}, seed)
        if is_end_request(text):
            return _tool(END_TOOL, {"reason": "user_request", "note": "the user asked to end the chat"}, seed)
        if is_abusive(text):
            return _tool(END_TOOL, {"reason": "abuse", "note": "abusive message after redirection"}, seed)
        words = len(text.split())
        attached = f" and {seen} attached file{'s' if seen != 1 else ''}" if seen else ""
        return _text(
            f"Thanks for your message ({words} word{'s' if words != 1 else ''}{attached}). I'm the offline "
            "rehearsal model, so I can't give a real answer — connect an Anthropic API key for that — but "
            "this conversation works just like the real one."
        )

    @staticmethod
    def _after_tool(result: dict[str, Any]) -> str:
        content = result.get("content")
        if isinstance(content, list):
            content = "".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
        content = str(content or "")
        if content in _AFTER_RESULT:
            return _AFTER_RESULT[content]
        if content == TOOL_RESULTS[Verdict.END]:
            return ""
        return _CRISIS_REPLY


def _user_lines(transcript: str) -> list[str]:
    """The lines of a ``transcript_for_verifier`` transcript that are not the assistant's.

    A user message may span lines; a line of it that itself starts with "ASSISTANT: " is read as the
    assistant's. To err towards risk, only lines starting so are skipped: a continuation line of an
    assistant message (the rehearsal model writes none) would count as the user's.
    """
    return [line.removeprefix(_USER) for line in transcript.splitlines() if not line.startswith(_ASSISTANT)]


def _text(text: str) -> ModelReply:
    return ModelReply(
        content=({"type": "text", "text": text},) if text else (), stop_reason="end_turn", model="rehearsal"
    )


def _tool(name: str, data: dict[str, Any], seed: str) -> ModelReply:
    return ModelReply(
        content=({"type": "tool_use", "id": _tool_id(seed + name), "name": name, "input": data},),
        stop_reason="tool_use",
        model="rehearsal",
    )


def _risk(text: str) -> RiskAssessment:
    from bot.detectors.risk import assess_risk  # on first use: the CLI's other commands never load it

    return assess_risk(text)
