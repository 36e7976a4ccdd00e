"""Turn stored history into a Messages API request: labels, role merging, cache breakpoints, trimming.

The request for turn N+1 must extend the request for turn N byte for byte (up to the moving cache
breakpoint), so that the prompt cache is read. That is why history is append-only, blocks are stored in
canonical form, and trimming drops old turns in large steps instead of one message at a time.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from bot.model import ModelRequest
from bot.prompts import SYSTEM_PROMPT, TOOLS, system_texts
from bot.types import HistoryMessage

EPHEMERAL = {"type": "ephemeral"}
# Characters per token for a conservative estimate (English prose runs ~4; JSON and code lower).
CHARS_PER_TOKEN = 3.2
# When trimming, drop this many stored messages at a time so the cached prefix changes rarely.
TRIM_STEP = 24


_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,2}")


def label(author_name: str, text: str, locale: str | None = None) -> str:
    """``[Ana] text``, or ``[Ana · locale es-ES] text`` when the platform told us the author's locale.

    The locale rides in the stored user message, not in the system prompt: the system prompt and tools
    stay one cached prefix, the same for everyone, and history is append-only, so each request still
    extends the last byte for byte. Only a well-formed locale tag is written (it comes from the platform,
    but nothing user-shaped goes into the label unchecked)."""
    if locale and _LOCALE.fullmatch(locale):
        return f"[{author_name} · locale {locale}] {text}"
    return f"[{author_name}] {text}"


def user_text_block(author_name: str, text: str, locale: str | None = None) -> dict[str, Any]:
    return {"type": "text", "text": label(author_name, text, locale)}


def estimate_tokens(obj: Any) -> int:
    return int(len(json.dumps(obj, ensure_ascii=False)) / CHARS_PER_TOKEN) + 1


# Attached files as the budget counts them: an image costs at most about 1,600 tokens (the API scales
# larger ones down); a PDF about 1,500-3,000 tokens a page, guessed here from its size (base64: 4/3).
IMAGE_TOKENS = 1_600
PDF_TOKENS_PER_BASE64_CHAR = 0.02


def _block_chars(block: dict[str, Any]) -> int:
    # Cheaper than serialising every stored block on every turn; close enough for a budget check.
    kind = block.get("type")
    if kind == "image":
        return int(IMAGE_TOKENS * CHARS_PER_TOKEN)
    if kind == "document":
        data = str((block.get("source") or {}).get("data") or "")
        return 24 + int(len(data) * PDF_TOKENS_PER_BASE64_CHAR * CHARS_PER_TOKEN)
    size = 24 + len(str(block.get("text") or ""))
    if "input" in block:
        size += len(str(block["input"]))
    if "content" in block:
        size += len(str(block["content"]))
    return size


def message_tokens(message: HistoryMessage) -> int:
    return int(sum(_block_chars(b) for b in message.content) / CHARS_PER_TOKEN) + 4


FIXED_TOKENS = estimate_tokens(SYSTEM_PROMPT) + estimate_tokens(TOOLS)


def _system(instructions: str | None) -> list[dict[str, Any]]:
    # One breakpoint, on the last part: tools and the whole system prompt are one cached prefix.
    *rules, last = system_texts(instructions)
    return [
        *({"type": "text", "text": t} for t in rules),
        {"type": "text", "text": last, "cache_control": dict(EPHEMERAL)},
    ]


def _tools() -> list[dict[str, Any]]:
    # The schemas are never mutated downstream; only the breakpoint marker needs a fresh dict.
    return [*TOOLS[:-1], {**TOOLS[-1], "cache_control": dict(EPHEMERAL)}]


def merge_roles(history: Sequence[HistoryMessage]) -> list[dict[str, Any]]:
    """Consecutive messages of one role become one API message (several people, or a failed turn)."""
    out: list[dict[str, Any]] = []
    for m in history:
        blocks = list(m.content)  # blocks are shared, never mutated: build_request replaces the last
        if out and out[-1]["role"] == m.role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": m.role, "content": blocks})
    return out


def _valid_starts(history: Sequence[HistoryMessage]) -> list[int]:
    """Indexes where a trimmed history may begin: a person's message, never a tool result."""
    return [i for i, m in enumerate(history) if m.role == "user" and m.kind == "text"]


def trim(history: Sequence[HistoryMessage], budget_tokens: int) -> Sequence[HistoryMessage]:
    """Drop the oldest turns, in fixed steps of TRIM_STEP messages, until the history fits the budget.

    Fixed steps keep the start of the window still while a thread grows, so the cached prefix is
    invalidated once per step rather than on every turn. The newest user message is always kept.
    """
    fixed = FIXED_TOKENS
    sizes = [message_tokens(m) for m in history]
    if fixed + sum(sizes) <= budget_tokens:
        return history
    starts = _valid_starts(history)
    if not starts:
        return history
    for boundary in range(TRIM_STEP, len(history), TRIM_STEP):
        start = next((s for s in starts if s >= boundary), starts[-1])
        if fixed + sum(sizes[start:]) <= budget_tokens:
            return history[start:]
    return history[starts[-1] :]


class TokenTally:
    """Running token estimates per conversation, so a turn sizes only the messages added since the last.

    History is append-only, so the tally for the first N messages stays valid; a redaction only makes
    it an overestimate, which errs on the safe side of the budget.
    """

    def __init__(self, max_conversations: int = 10_000) -> None:
        self._max = max_conversations
        self._entries: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def total(self, key: str, history: Sequence[HistoryMessage]) -> int:
        counted, total = self._entries.pop(key, (0, 0))
        if counted > len(history):
            counted, total = 0, 0
        total += sum(message_tokens(m) for m in history[counted:])
        self._entries[key] = (len(history), total)
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return total


def build_request(
    history: Sequence[HistoryMessage],
    *,
    max_tokens: int,
    budget_tokens: int,
    known_tokens: int | None = None,
    instructions: str | None = None,
) -> ModelRequest:
    """``known_tokens``, when given, is the history's estimate; under budget, trimming is skipped.
    ``instructions``: the workspace's, placed after Haven's rules (``bot.prompts.system_texts``)."""
    # The instructions take their share of the budget before history does (at most a few hundred tokens).
    budget_tokens -= estimate_tokens(instructions) if instructions else 0
    within = known_tokens is not None and FIXED_TOKENS + known_tokens <= budget_tokens
    messages = merge_roles(history if within else trim(history, budget_tokens))
    if messages:
        last = messages[-1]["content"]
        last[-1] = {**last[-1], "cache_control": dict(EPHEMERAL)}
    return ModelRequest(
        system=_system(instructions), tools=_tools(), messages=messages, max_tokens=max_tokens
    )
